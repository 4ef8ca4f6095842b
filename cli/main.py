"""`kpixel`: the command-line entry point. Each subcommand is a thin wrapper."""

import click

import keras_pixelcnn
from keras_pixelcnn.cli.architectures import architectures


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(keras_pixelcnn.__version__, prog_name="kpixel")
def cli():
    """Train, sample from, score and export autoregressive pixel models."""


cli.add_command(architectures)


def main():
    cli()
