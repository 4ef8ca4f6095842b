"""`kpixel architectures`: the models `build_model` accepts and their options."""

import click


@click.command()
def architectures():
    """List architectures with their hyperparameters and defaults."""
    from keras_pixelcnn.models import ARCHITECTURES, config_class

    for name in ARCHITECTURES:
        options = ", ".join(f"{key}={value}" for key, value in config_class(name)().to_dict().items())
        click.echo(f"{name}: {options}")
