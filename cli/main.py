"""`kpixel`: the command-line entry point. Each subcommand is a thin wrapper."""

import click

from keras_pixelcnn._version import __version__
from keras_pixelcnn.cli.architectures import architectures
from keras_pixelcnn.cli.complete import complete
from keras_pixelcnn.cli.evaluate import evaluate
from keras_pixelcnn.cli.export import export
from keras_pixelcnn.cli.fit import fit
from keras_pixelcnn.cli.sample import sample
from keras_pixelcnn.cli.score import score


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kpixel")
def cli():
    """Train, sample from, score and export autoregressive pixel models."""


for command in (architectures, fit, evaluate, sample, complete, score, export):
    cli.add_command(command)


def main():
    cli()


if __name__ == "__main__":
    main()
