"""`kpixel`: the command-line entry point. Each subcommand is a thin wrapper.

Nothing here imports Keras or TensorFlow, so `kpixel --help` and `kpixel CMD --help` are quick;
a command imports TensorFlow (quietly, see `quiet.py`) only once its arguments are parsed.
"""

import functools
import sys

import click

from keras_pixelcnn._version import __version__
from keras_pixelcnn.cli import quiet, xla_cache
from keras_pixelcnn.cli.architectures import architectures
from keras_pixelcnn.cli.complete import complete
from keras_pixelcnn.cli.evaluate import evaluate
from keras_pixelcnn.cli.export import export
from keras_pixelcnn.cli.fit import fit
from keras_pixelcnn.cli.sample import sample
from keras_pixelcnn.cli.score import score


class _OneLineErrors(click.Group):
    """A group whose usage errors print one `Error: ...` line (exit 2), without click's
    "Usage:" and "Try ... --help" lines before it: every bad input reads the same,
    whether click or a command found it."""

    def main(self, *args, standalone_mode=True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as error:  # bare `kpixel`: the help, as click shows it
            error.show()
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"Error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:  # Ctrl-C at a prompt, as click reports it
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", is_flag=True,
              help="Show TensorFlow's start-up and C++ log lines (also: environment KPIXEL_LOG=debug).")
@click.version_option(__version__, prog_name="kpixel")
def cli(verbose):
    """Train, sample from, score and export autoregressive pixel models."""
    quiet.configure(quiet.verbose_requested(verbose))


def _after_tensorflow(callback):
    """Run a command's callback once TensorFlow is imported (after parsing, so `CMD --help` never imports it)."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        xla_cache.configure()  # before TensorFlow reads TF_XLA_FLAGS
        quiet.import_tensorflow()
        with quiet.filtered_stderr():
            return callback(*args, **kwargs)

    return run


for command in (architectures, fit, evaluate, sample, complete, score, export):
    command.callback = _after_tensorflow(command.callback)
    cli.add_command(command)


def main():
    cli()


if __name__ == "__main__":
    main()
