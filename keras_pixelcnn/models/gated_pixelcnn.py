"""Gated PixelCNN (van den Oord et al. 2016): vertical and horizontal stacks, no blind spot.

Every gated layer `l` keeps two feature maps of width F, the vertical stack
`v` (reads rows up to and including the current one, all columns) and the
horizontal stack `h` (reads the current row up to the current pixel):

    v_pre = MaskedConv2D(2F, (k, k), "V")(v)                       rows <= i
    h_pre = MaskedConv2D(2F, (1, k), "B", C)(h)                    row i, columns <= j
            + MaskedConv2D(2F, 1, "B", C)(ShiftDown(v_pre))        rows <= i - 1
    v     = GatedActivation("tanh")(v_pre + class_bias_v)          (2F -> F)
    g     = GatedActivation("tanh")(h_pre + class_bias_h)          (2F -> F)
    h     = h + MaskedConv2D(F, 1, "B", C)(g)                      residual
    skip  = skip + MaskedConv2D(F, 1, "B", C)(g)

`GatedActivation` computes `tanh(a) * sigmoid(b)` with `a, b` the even and
odd pre-activation features. The first (stem) layer reads the image: the
vertical stack with a `stem_kernel_size` square "V" convolution, the
horizontal stack with a `(1, stem_kernel_size)` mask-"A" convolution, and has
no residual. The skip stream, the sum of every layer's skip, feeds the
categorical head. The horizontal stack sees the vertical one only shifted down
a row, so no sub-pixel reads itself or a later one; and since the vertical
stack covers the full rectangle above, there is no blind spot: with
`t = stem_kernel_size // 2`, `r = kernel_size // 2` and `L = num_layers`, the
conditional of pixel `(i, j)` reads exactly the rows `i - 1 - (t + L r) .. i - 1`
for columns `j - (t + L r) .. j + (t + L r)`, and the pixels `j - (t + L r) .. j - 1`
of row `i` (plus the earlier channels of pixel `(i, j)` for colour images).

Colour images: the vertical stack mixes all channels freely (it is shifted
down before the horizontal stack reads it); everything on the horizontal path
is masked with C colour groups, and with F divisible by C the gates' even/odd
pairs stay inside one colour group (see `keras_pixelcnn.layers.gated`).

Reference:
    van den Oord, Kalchbrenner, Espeholt, Kavukcuoglu, Vinyals, Graves.
    "Conditional Image Generation with PixelCNN Decoders", NeurIPS 2016,
    section 2 and figure 2.
"""

import dataclasses

import keras

from keras_pixelcnn.layers.gated import GatedActivation
from keras_pixelcnn.layers.masked_conv import MaskedConv2D
from keras_pixelcnn.models import common
from keras_pixelcnn.layers.shifts import ShiftDown


@dataclasses.dataclass(frozen=True)
class GatedPixelCNNConfig(common.HyperParameters):
    """Hyperparameters of `build`.

    Attributes:
        filters: width F of both stacks and of the skip stream (the gates'
            pre-activations have 2F). Must be divisible by C colour channels.
        num_layers: gated residual layers after the gated stem layer, so the
            model has `num_layers + 1` gated layers in all.
        kernel_size: odd size k of the `(k, k)` vertical and `(1, k)`
            horizontal convolutions of each layer.
        stem_kernel_size: odd size of the stem layer's convolutions.
        head_filters: width of the 1x1 layer before the logits.
    """

    filters: int = 64
    num_layers: int = 8
    kernel_size: int = 5
    stem_kernel_size: int = 7
    head_filters: int = 256


def _check(config, channels):
    """Raise a ValueError for widths or kernel sizes the masks cannot align."""
    if config.filters % channels:
        raise ValueError(
            f"Expected filters divisible by the {channels} colour channels so the gated features "
            f"split into colour groups. Received: filters={config.filters}"
        )
    for key in ("kernel_size", "stem_kernel_size"):
        value = getattr(config, key)
        if value % 2 == 0:
            raise ValueError(f"Expected an odd {key}. Received: {key}={value}")


def _gated_layer(v, h, labels, num_classes, config, channels, name, first=False, last=False):
    """One gated layer: returns `(v, h, skip)`; `v`, `h` are None where unused (last layer).

    The first layer reads the image `v = h = x` with the stem kernels and mask
    "A" on the horizontal stack, and has no residual connection.
    """
    filters = config.filters
    size = config.stem_kernel_size if first else config.kernel_size
    v_pre = MaskedConv2D(2 * filters, size, "V", channels, name=f"{name}_v_conv")(v)
    # Row i of v_pre reads rows <= i (incl. pixels right of j): shift to rows <= i - 1.
    link = ShiftDown(name=f"{name}_v_shift")(v_pre)
    link = MaskedConv2D(2 * filters, 1, "B", channels, name=f"{name}_link")(link)
    h_pre = MaskedConv2D(2 * filters, (1, size), "A" if first else "B", channels, name=f"{name}_h_conv")(h)
    h_pre = keras.layers.Add(name=f"{name}_h_link_add")([h_pre, link])
    h_bias = common.class_bias(labels, num_classes, 2 * filters, f"{name}_h")
    gated = GatedActivation("tanh", name=f"{name}_h_gate")(common.add_class_bias(h_pre, h_bias, f"{name}_h"))
    skip = MaskedConv2D(filters, 1, "B", channels, name=f"{name}_skip")(gated)
    if last:
        return None, None, skip
    v_bias = common.class_bias(labels, num_classes, 2 * filters, f"{name}_v")
    v = GatedActivation("tanh", name=f"{name}_v_gate")(common.add_class_bias(v_pre, v_bias, f"{name}_v"))
    out = MaskedConv2D(filters, 1, "B", channels, name=f"{name}_h_out")(gated)
    h = out if first else keras.layers.Add(name=f"{name}_residual")([h, out])
    return v, h, skip


def build(config, image_shape, num_classes=None, name="gated_pixelcnn"):
    """Functional Gated PixelCNN over `image_shape = (H, W, C)` integer images.

    Args:
        config: a `GatedPixelCNNConfig`.
        image_shape: `(H, W, C)`.
        num_classes: number of classes for a class-conditional model, or None.
        name: model name.

    Returns:
        `keras.Model` mapping images `(B, H, W, C)` [and labels `(B,)`] to
        logits `(B, H, W, C * 256)`.

    Raises:
        ValueError: if `filters` is not divisible by C or a kernel size is even.

    Example:
        >>> model = build(GatedPixelCNNConfig(filters=32, num_layers=2), (28, 28, 1))
        >>> model.output_shape
        (None, 28, 28, 256)
    """
    channels = image_shape[-1]
    _check(config, channels)
    inputs, x, labels = common.model_inputs(image_shape, num_classes)
    v, h, skip = _gated_layer(x, x, labels, num_classes, config, channels, "stem", first=True)
    skips = [skip]
    for index in range(config.num_layers):
        last = index == config.num_layers - 1
        v, h, skip = _gated_layer(v, h, labels, num_classes, config, channels, f"block{index}", last=last)
        skips.append(skip)
    x = keras.layers.Add(name="skips")(skips)
    outputs = common.categorical_head(x, config.head_filters, channels)
    return keras.Model(inputs, outputs, name=name)
