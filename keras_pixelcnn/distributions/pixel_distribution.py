"""The layer that ends every model and names the distribution its parameters describe.

A model's last layer is a `PixelDistribution`: an identity layer whose config
records which distribution the parameters before it describe, so likelihood,
loss and sampling code read it off any model (also one loaded from `.keras`).
"""

import keras

from keras_pixelcnn.distributions.base import DISTRIBUTIONS, at_least_float32


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class PixelDistribution(keras.layers.Layer):
    """Identity layer that tags a model's output with its distribution.

    Args:
        distribution: a name in `DISTRIBUTIONS`.
        channels: colour channels C of the modelled images.
        options: dict of extra constructor arguments of the distribution
            (e.g. `{"num_mix": 5}`), or None.

    Input shape / Output shape:
        `(B, H, W, P)` distribution parameters, unchanged; half precision
        (mixed-precision training) is cast to float32.
    """

    def __init__(self, distribution, channels, options=None, **kwargs):
        super().__init__(**kwargs)
        if distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"Expected distribution in {sorted(DISTRIBUTIONS)}. Received: distribution={distribution!r}"
            )
        self.distribution = distribution
        self.channels = channels
        self.options = dict(options or {})

    def call(self, inputs):
        return at_least_float32(inputs)

    def get_distribution(self):
        """The `Categorical` (or other) object these parameters describe."""
        return DISTRIBUTIONS[self.distribution](self.channels, **self.options)

    def get_config(self):
        config = super().get_config()
        config.update({"distribution": self.distribution, "channels": self.channels,
                       "options": dict(self.options)})
        return config


def distribution_of(model):
    """The output distribution of a keras_pixelcnn model.

    Raises:
        ValueError: if the model does not end in a `PixelDistribution` layer.
    """
    layer = model.layers[-1]
    if not isinstance(layer, PixelDistribution):
        raise ValueError(
            "Expected a keras_pixelcnn model ending in a PixelDistribution layer. "
            f"Received: a model whose last layer is {type(layer).__name__} {layer.name!r}"
        )
    return layer.get_distribution()
