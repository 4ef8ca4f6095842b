"""`kpixel`: the command-line entry point. Each subcommand is a thin wrapper.

Nothing here imports Keras or TensorFlow, so `kpixel --help` and `kpixel CMD --help` are quick;
a command imports TensorFlow (quietly, see `quiet.py`) only once its arguments are parsed.
"""

import contextlib
import functools

import click

from keras_pixelcnn._version import __version__
from keras_pixelcnn.cli import quiet, xla_cache
from keras_pixelcnn.cli.architectures import architectures
from keras_pixelcnn.cli.backends import check_installed
from keras_pixelcnn.cli.complete import complete
from keras_pixelcnn.cli.evaluate import evaluate
from keras_pixelcnn.cli.export import export
from keras_pixelcnn.cli.fit import fit
from keras_pixelcnn.cli.sample import sample
from keras_pixelcnn.cli.score import score


class _OneLineError(click.ClickException):
    """A click error shown as one `Error: ...` line (its message's line breaks folded), same exit status."""

    def __init__(self, error):
        super().__init__(" ".join(error.format_message().split()))
        self.exit_code = error.exit_code

    def show(self, file=None):
        click.echo(f"Error: {self.format_message()}", file=file, err=file is None)


@contextlib.contextmanager
def _one_line():
    try:
        yield
    except (_OneLineError, click.exceptions.NoArgsIsHelpError):  # bare `kpixel`: the help, as click shows it
        raise
    except click.ClickException as error:
        raise _OneLineError(error) from None


class _OneLineErrors(click.Group):
    """A group whose usage errors print one `Error: ...` line, without click's "Usage:" and
    "Try ... --help" lines before it: every bad input reads the same, whether click or a
    command found it. Click's own standalone handling (exit codes, Abort, a closed pipe) stays."""

    def make_context(self, *args, **kwargs):
        with _one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):  # parses the subcommand's options and runs it
        with _one_line():
            return super().invoke(ctx)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", is_flag=True,
              help="Show TensorFlow's start-up and C++ log lines (also: environment KPIXEL_LOG=debug).")
@click.version_option(__version__, prog_name="kpixel")
def cli(verbose):
    """Train, sample from, score and export autoregressive pixel models."""
    quiet.configure(quiet.verbose_requested(verbose))


def _after_tensorflow(callback, name):
    """Run a command's callback once TensorFlow is imported (after parsing, so `CMD --help` never imports it),
    and once the packages the command needs are known to be installed (`backends.check_installed`)."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        check_installed(name, kwargs.get("backend"))
        xla_cache.configure()  # before TensorFlow reads TF_XLA_FLAGS
        quiet.import_tensorflow()
        with quiet.filtered_stderr():
            return callback(*args, **kwargs)

    return run


for command in (architectures, fit, evaluate, sample, complete, score, export):
    command.callback = _after_tensorflow(command.callback, command.name)
    cli.add_command(command)


def main():
    cli()


if __name__ == "__main__":
    main()
