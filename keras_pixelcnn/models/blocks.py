"""The gated resnet block of PixelCNN++ (Salimans et al. 2017), which PixelSNAIL reuses."""

import keras

from keras_pixelcnn.layers.gated import ConcatELU, GatedActivation
from keras_pixelcnn.layers.masked_conv import MaskedConv2D
from keras_pixelcnn.models import common

MASKS = {"u": "V", "ul": "B"}  # down-shifted and down-right-shifted convolutions


def check_dropout(rate):
    """Refuse (ValueError) a dropout rate outside [0, 1)."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"Expected dropout to be a float in [0, 1). Received: dropout={rate!r}")


def stream_conv(stream, filters, name, strides=1):
    """Mask "V" (down-shifted, `u`) or "B" with one colour group (down-right-shifted, `ul`) 3x3 conv."""
    return MaskedConv2D(filters, 3, MASKS[stream], 1, strides=strides, name=name)


def gated_resnet(x, aux, bias, stream, config, name):
    """`x + a * sigmoid(b)` with `(a, b)` = conv(drop(celu(conv(celu(x)) + nin(celu(aux))))) [+ class bias].

    Args:
        x: the stream `(B, h, w, F)`.
        aux: auxiliary input `(B, h, w, *)` that obeys the stream's
            invariant, or None.
        bias: class bias `(B, 1, 1, 2F)` or None.
        stream: "u" or "ul" (picks the convolution's mask).
        config: hyperparameters with `filters` and `dropout` (PixelCNN++'s or PixelSNAIL's).
        name: prefix of the layer names.
    """
    filters = config.filters
    y = stream_conv(stream, filters, f"{name}_conv1")(ConcatELU(name=f"{name}_celu1")(x))
    if aux is not None:
        aux = ConcatELU(name=f"{name}_aux_celu")(aux)
        # no bias: conv1's bias already shifts the sum
        aux = MaskedConv2D(filters, 1, "B", 1, use_bias=False, name=f"{name}_aux_nin")(aux)
        y = keras.layers.Add(name=f"{name}_add_aux")([y, aux])
    y = ConcatELU(name=f"{name}_celu2")(y)
    if config.dropout > 0:
        y = keras.layers.Dropout(config.dropout, name=f"{name}_dropout")(y)
    y = stream_conv(stream, 2 * filters, f"{name}_conv2")(y)
    y = common.add_class_bias(y, bias, name)
    y = GatedActivation("linear", name=f"{name}_gate")(y)
    return keras.layers.Add(name=f"{name}_skip")([x, y])
