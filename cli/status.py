"""A status line on stderr while the user waits: `Converting to TFLite ... done in 12.3 s`."""

import time

import click


class Status:
    """`MESSAGE ...` on stderr when entered, `done in T s` when the work ends.

    The work ends at `done()` (e.g. at a sampler's first progress report) or when the block
    exits. An exception ends the line with `stopped after T s`, so an `Error:` line that
    follows starts a line of its own.

    Example:
        >>> with Status("Converting to TFLite"):
        ...     export_tflite(model, path)
    """

    def __init__(self, message):
        self.message = message
        self._start = None

    def __enter__(self):
        click.echo(f"{self.message} ...", err=True, nl=False)
        self._start = time.perf_counter()
        return self

    def _end(self, word):
        if self._start is not None:
            click.echo(f" {word} {time.perf_counter() - self._start:.1f} s", err=True)
            self._start = None

    def done(self):
        """End the line with the elapsed time (later calls do nothing)."""
        self._end("done in")

    def __exit__(self, kind, value, traceback):
        self._end("done in" if kind is None else "stopped after")
        return False
