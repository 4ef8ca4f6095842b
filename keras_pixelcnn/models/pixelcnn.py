"""The PixelCNN of van den Oord et al. (2016): masked convolutions and residual blocks.

Reference:
    van den Oord, Kalchbrenner, Kavukcuoglu. "Pixel Recurrent Neural
    Networks", ICML 2016 (section 3.5 and figure 5).
"""

import dataclasses

import keras

from keras_pixelcnn.layers.masked_conv import MaskedConv2D
from keras_pixelcnn.models import common


@dataclasses.dataclass(frozen=True)
class PixelCNNConfig(common.HyperParameters):
    """Hyperparameters of `build`.

    Attributes:
        filters: width 2h of the residual stream (h inside each block).
        num_layers: residual blocks after the 7x7 mask-A stem.
        kernel_size: spatial size of each block's masked "B" convolution.
        stem_kernel_size: spatial size of the first (mask "A") convolution.
        head_filters: width of the 1x1 layer before the logits.
    """

    filters: int = 64
    num_layers: int = 5
    kernel_size: int = 3
    stem_kernel_size: int = 7
    head_filters: int = 256


def _residual_block(x, bias, config, channels, name):
    """ReLU, 1x1 (2h -> h), ReLU, kxk mask "B" (h), ReLU, 1x1 (h -> 2h), skip."""
    half = config.filters // 2
    y = keras.layers.ReLU(name=f"{name}_relu1")(x)
    y = MaskedConv2D(half, 1, "B", channels, name=f"{name}_in")(y)
    y = keras.layers.ReLU(name=f"{name}_relu2")(y)
    y = MaskedConv2D(half, config.kernel_size, "B", channels, name=f"{name}_conv")(y)
    y = common.add_class_bias(y, bias, name)
    y = keras.layers.ReLU(name=f"{name}_relu3")(y)
    y = MaskedConv2D(config.filters, 1, "B", channels, name=f"{name}_out")(y)
    return keras.layers.Add(name=f"{name}_skip")([x, y])


def build(config, image_shape, num_classes=None, name="pixelcnn"):
    """Functional PixelCNN over `image_shape = (H, W, C)` integer images.

    Args:
        config: a `PixelCNNConfig`.
        image_shape: `(H, W, C)`.
        num_classes: number of classes for a class-conditional model, or None.
        name: model name.

    Returns:
        `keras.Model` mapping images `(B, H, W, C)` [and labels `(B,)`] to
        logits `(B, H, W, C * 256)`.
    """
    channels = image_shape[-1]
    if config.filters < 2 * channels:
        raise ValueError(
            f"Expected filters >= {2 * channels} for {channels} colour channels. "
            f"Received: filters={config.filters}"
        )
    inputs, x, labels = common.model_inputs(image_shape, num_classes)
    x = MaskedConv2D(config.filters, config.stem_kernel_size, "A", channels, name="stem")(x)
    x = common.add_class_bias(x, common.class_bias(labels, num_classes, config.filters, "stem"), "stem")
    for index in range(config.num_layers):
        block = f"block{index}"
        bias = common.class_bias(labels, num_classes, config.filters // 2, block)
        x = _residual_block(x, bias, config, channels, block)
    outputs = common.categorical_head(x, config.head_filters, channels)
    return keras.Model(inputs, outputs, name=name)
