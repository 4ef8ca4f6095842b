"""PixelCNN++ (Salimans et al. 2017): two causal streams over three resolutions.

The network never reads any sub-pixel of the pixel it predicts: the `u`
stream at `(i, j)` reads rows `< i` and the `ul` stream the pixels before
`(i, j)` in raster order. The colour channels of a pixel depend on each other
through the discretized logistic mixture's linear coefficients.

At a resolution divided by `s`, the features at `(i, j)` stand for the image
block whose top-left pixel is `(s*i, s*j)`; the invariants, kept by every
layer, are: `u` reads image rows `< s*i`, `ul` reads pixels before
`(s*i, s*j)` in raster order. Mask "V" convolutions read rows `<= i` of `u`
(image rows `< s*i`); mask "B" ones (one colour group) read `ul` at or
before `(i, j)` plus row `i - 1`, all before `(s*i, s*j)`. A centred stride-2
convolution's output `(i, j)` reads input rows `2i - 1, 2i` (mask "V") or
`(2i - 1, *)` and `(2i, <= 2j)` (mask "B"), i.e. image rows `< 2s*i` or pixels
before `(2s*i, 2s*j)`. `Conv2DTranspose(2, strides=2)` gives output `(i, j)`
from input `(i // 2, j // 2)`, whose image block starts at or before the
output's own.

Reference:
    Salimans, Karpathy, Chen, Kingma. "PixelCNN++: Improving the PixelCNN with
    Discretized Logistic Mixture Likelihood and Other Modifications", ICLR 2017.
"""

import dataclasses

import keras

from keras_pixelcnn.layers.masked_conv import MaskedConv2D
from keras_pixelcnn.models import blocks, common
from keras_pixelcnn.layers.shifts import ShiftDown

NUM_RESOLUTIONS = 3  # full, /2, /4


@dataclasses.dataclass(frozen=True)
class PixelCNNPPConfig(common.HyperParameters):
    """Hyperparameters of `build`.

    Attributes:
        filters: feature maps F of both streams.
        num_layers: gated resnet blocks per resolution in the down pass (the
            up pass has one more at the two finer resolutions).
        num_logistic_mix: mixture components K of the output distribution.
        dropout: dropout rate in each gated resnet block, in [0, 1).
    """

    filters: int = 80
    num_layers: int = 5
    num_logistic_mix: int = 10
    dropout: float = 0.5

    def __post_init__(self):
        blocks.check_dropout(self.dropout)


def _block_pair(u, ul, u_aux, ul_aux, labels, num_classes, config, name):
    """One gated resnet block on each stream; `ul` also reads the new `u` (and `ul_aux`)."""
    width = 2 * config.filters
    bias = common.class_bias(labels, num_classes, width, f"{name}_u")
    u = blocks.gated_resnet(u, u_aux, bias, "u", config, f"{name}_u")
    aux = u if ul_aux is None else keras.layers.Concatenate(name=f"{name}_ul_aux")([u, ul_aux])
    bias = common.class_bias(labels, num_classes, width, f"{name}_ul")
    ul = blocks.gated_resnet(ul, aux, bias, "ul", config, f"{name}_ul")
    return u, ul


def _initial_streams(x, filters):
    """`u` reads rows i-2..i-1 (cols j-1..j+1); `ul` row i-1 (cols j-1..j+1) and pixel (i, j-1)."""
    u = MaskedConv2D(filters, 3, "V", 1, name="init_u_conv")(x)
    u = ShiftDown(name="init_u_shift")(u)
    above = MaskedConv2D(filters, (1, 3), "V", 1, name="init_ul_above_conv")(x)
    above = ShiftDown(name="init_ul_above_shift")(above)
    left = MaskedConv2D(filters, 3, "A", 1, use_bias=False, name="init_ul_left_conv")(x)
    return u, keras.layers.Add(name="init_ul")([above, left])


def _down_pass(u, ul, labels, num_classes, config):
    """Blocks at full, /2 and /4 resolution with strided convs between; returns every stage's output."""
    us, uls = [u], [ul]
    for level in range(NUM_RESOLUTIONS):
        if level:
            u = blocks.stream_conv("u", config.filters, f"down{level}_u_downsample", strides=2)(u)
            ul = blocks.stream_conv("ul", config.filters, f"down{level}_ul_downsample", strides=2)(ul)
            us.append(u)
            uls.append(ul)
        for index in range(config.num_layers):
            u, ul = _block_pair(u, ul, None, None, labels, num_classes, config, f"down{level}_block{index}")
            us.append(u)
            uls.append(ul)
    return us, uls


def _up_pass(us, uls, labels, num_classes, config):
    """Blocks at /4, /2 and full resolution, each reading a stored down-pass output (last first)."""
    u, ul = us.pop(), uls.pop()
    for level in reversed(range(NUM_RESOLUTIONS)):
        if level < NUM_RESOLUTIONS - 1:
            u = keras.layers.Conv2DTranspose(config.filters, 2, strides=2, name=f"up{level}_u_upsample")(u)
            ul = keras.layers.Conv2DTranspose(config.filters, 2, strides=2, name=f"up{level}_ul_upsample")(ul)
        blocks = config.num_layers + (level < NUM_RESOLUTIONS - 1)
        for index in range(blocks):
            u, ul = _block_pair(u, ul, us.pop(), uls.pop(), labels, num_classes, config,
                                f"up{level}_block{index}")
    return ul


def build(config, image_shape, num_classes=None, name="pixelcnn_pp"):
    """Functional PixelCNN++ over `image_shape = (H, W, C)` integer images.

    Args:
        config: a `PixelCNNPPConfig`.
        image_shape: `(H, W, C)`, H and W divisible by 4.
        num_classes: number of classes for a class-conditional model, or None.
        name: model name.

    Returns:
        `keras.Model` mapping images `(B, H, W, C)` [and labels `(B,)`] to
        mixture parameters `(B, H, W, K * (1 + 3C))` for C=3, `(B, H, W, 3K)`
        for C=1 (see `DiscretizedLogisticMixture`).

    Raises:
        ValueError: if H or W is not divisible by 4.

    Example:
        >>> config = PixelCNNPPConfig(filters=16, num_layers=1, num_logistic_mix=5)
        >>> build(config, (8, 8, 3)).output_shape
        (None, 8, 8, 50)
    """
    height, width, channels = image_shape
    factor = 2 ** (NUM_RESOLUTIONS - 1)
    if height % factor or width % factor:
        raise ValueError(
            f"Expected image height and width divisible by {factor} (two 2x down-samplings). "
            f"Received: image_shape={tuple(image_shape)}"
        )
    inputs, x, labels = common.model_inputs(image_shape, num_classes)
    u, ul = _initial_streams(x, config.filters)
    us, uls = _down_pass(u, ul, labels, num_classes, config)
    ul = _up_pass(us, uls, labels, num_classes, config)
    ul = keras.layers.ELU(name="head_elu")(ul)
    outputs = common.mixture_head(ul, channels, config.num_logistic_mix)
    return keras.Model(inputs, outputs, name=name)
