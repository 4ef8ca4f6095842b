"""PixelRNN (van den Oord et al. 2016): the Row LSTM and the Diagonal BiLSTM.

Both models are a 7x7 mask-"A" stem, a stack of residual LSTM layers on a
stream of width 2F, and the categorical head. Each LSTM layer computes its
input-to-state gates with a masked convolution of the stream (mask "B"), runs
the recurrence (`keras_pixelcnn.layers.recurrent`), maps the F hidden units back to 2F
with a masked 1x1 convolution and adds the result to the stream:

    Row LSTM:         h = RowLSTM(MaskedConv2D(4F, (1, k), "B")(x))
    Diagonal BiLSTM:  h = DiagonalLSTM(MaskedConv2D(4F, 1, "B")(x))
                          + ShiftDown(DiagonalLSTM(reverse=True)(MaskedConv2D(4F, 1, "B")(x)))
    both:             x = x + MaskedConv2D(2F, 1, "B")(h)

The right-to-left direction reads pixels to the right in the current row, so
its output is shifted down a row: together the two directions see every
earlier pixel. With F divisible by the colour channels C the masks keep the
colour groups of the stream, the gates (channel 4k + g belongs with feature k)
and the hidden units aligned, so colour images are modelled sub-pixel by
sub-pixel.

Reference:
    van den Oord, Kalchbrenner, Kavukcuoglu. "Pixel Recurrent Neural
    Networks", ICML 2016, sections 3.1-3.4 and figure 4.
"""

import dataclasses

import keras

from keras_pixelcnn.layers.masked_conv import MaskedConv2D
from keras_pixelcnn.models import common
from keras_pixelcnn.layers.recurrent import DiagonalLSTM, RowLSTM
from keras_pixelcnn.layers.shifts import ShiftDown


@dataclasses.dataclass(frozen=True)
class RowLSTMConfig(common.HyperParameters):
    """Hyperparameters of `build_row_lstm`.

    Attributes:
        filters: width 2F of the residual stream; the LSTMs have F units.
            Must be divisible by 2C for C colour channels.
        num_layers: residual Row LSTM layers after the stem.
        kernel_size: odd width k of the (1, k) input-to-state convolution and
            of the state-to-state convolution over the row above.
        stem_kernel_size: spatial size of the first (mask "A") convolution.
        head_filters: width of the 1x1 layer before the logits.
    """

    filters: int = 64
    num_layers: int = 4
    kernel_size: int = 3
    stem_kernel_size: int = 7
    head_filters: int = 256


@dataclasses.dataclass(frozen=True)
class DiagonalBiLSTMConfig(common.HyperParameters):
    """Hyperparameters of `build_diagonal_bilstm`.

    Attributes:
        filters: width 2F of the residual stream; each direction's LSTM has
            F units. Must be divisible by 2C for C colour channels.
        num_layers: residual Diagonal BiLSTM layers after the stem.
        stem_kernel_size: spatial size of the first (mask "A") convolution.
        head_filters: width of the 1x1 layer before the logits.
    """

    filters: int = 64
    num_layers: int = 4
    stem_kernel_size: int = 7
    head_filters: int = 256


def _check(config, channels):
    """Raise a ValueError for widths or kernel sizes the masks cannot align."""
    if config.filters % (2 * channels):
        raise ValueError(
            f"Expected filters divisible by {2 * channels} (2 x {channels} colour channels) so the "
            f"LSTM units (filters // 2) split into colour groups. Received: filters={config.filters}"
        )
    for key in ("kernel_size", "stem_kernel_size"):
        value = getattr(config, key, 1)
        if value % 2 == 0:
            raise ValueError(f"Expected an odd {key}. Received: {key}={value}")


def _gates(x, labels, num_classes, kernel_size, channels, units, name):
    """Input-to-state gates `(B, H, W, 4F)` of one LSTM: masked conv plus class bias."""
    gates = MaskedConv2D(4 * units, kernel_size, "B", channels, name=f"{name}_input_to_state")(x)
    return common.add_class_bias(gates, common.class_bias(labels, num_classes, 4 * units, name), name)


def _residual(x, h, channels, filters, name):
    """`x + MaskedConv2D(2F, 1, "B")(h)`: the paper's residual connection."""
    y = MaskedConv2D(filters, 1, "B", channels, name=f"{name}_out")(h)
    return keras.layers.Add(name=f"{name}_skip")([x, y])


def _row_lstm_layer(x, labels, num_classes, config, channels, name):
    units = config.filters // 2
    gates = _gates(x, labels, num_classes, (1, config.kernel_size), channels, units, name)
    h = RowLSTM(units, config.kernel_size, name=f"{name}_lstm")(gates)
    return _residual(x, h, channels, config.filters, name)


def _diagonal_bilstm_layer(x, labels, num_classes, config, channels, name):
    units = config.filters // 2
    left = _gates(x, labels, num_classes, 1, channels, units, f"{name}_l2r")
    left = DiagonalLSTM(units, name=f"{name}_l2r_lstm")(left)
    right = _gates(x, labels, num_classes, 1, channels, units, f"{name}_r2l")
    right = DiagonalLSTM(units, reverse=True, name=f"{name}_r2l_lstm")(right)
    # The right-to-left state at (r, j) reads (r, j + 1 ..): shifted down it reads rows < r only.
    right = ShiftDown(name=f"{name}_r2l_shift")(right)
    h = keras.layers.Add(name=f"{name}_bidirectional")([left, right])
    return _residual(x, h, channels, config.filters, name)


def _build(layer_fn, config, image_shape, num_classes, name):
    channels = image_shape[-1]
    _check(config, channels)
    inputs, x, labels = common.model_inputs(image_shape, num_classes)
    x = MaskedConv2D(config.filters, config.stem_kernel_size, "A", channels, name="stem")(x)
    x = common.add_class_bias(x, common.class_bias(labels, num_classes, config.filters, "stem"), "stem")
    for index in range(config.num_layers):
        x = layer_fn(x, labels, num_classes, config, channels, f"block{index}")
    outputs = common.categorical_head(x, config.head_filters, channels)
    return keras.Model(inputs, outputs, name=name)


def build_row_lstm(config, image_shape, num_classes=None, name="row_lstm"):
    """Functional Row LSTM over `image_shape = (H, W, C)` integer images.

    Args:
        config: a `RowLSTMConfig`.
        image_shape: `(H, W, C)`.
        num_classes: number of classes for a class-conditional model, or None.
        name: model name.

    Returns:
        `keras.Model` mapping images `(B, H, W, C)` [and labels `(B,)`] to
        logits `(B, H, W, C * 256)`.

    Raises:
        ValueError: if `filters` is not divisible by 2C or a kernel size is even.

    Example:
        >>> model = build_row_lstm(RowLSTMConfig(filters=32, num_layers=2), (28, 28, 1))
        >>> model.output_shape
        (None, 28, 28, 256)
    """
    return _build(_row_lstm_layer, config, image_shape, num_classes, name)


def build_diagonal_bilstm(config, image_shape, num_classes=None, name="diagonal_bilstm"):
    """Functional Diagonal BiLSTM over `image_shape = (H, W, C)` integer images.

    Args:
        config: a `DiagonalBiLSTMConfig`.
        image_shape: `(H, W, C)`.
        num_classes: number of classes for a class-conditional model, or None.
        name: model name.

    Returns:
        `keras.Model` mapping images `(B, H, W, C)` [and labels `(B,)`] to
        logits `(B, H, W, C * 256)`.

    Raises:
        ValueError: if `filters` is not divisible by 2C or a kernel size is even.

    Example:
        >>> model = build_diagonal_bilstm(DiagonalBiLSTMConfig(filters=32, num_layers=2), (28, 28, 1))
        >>> model.output_shape
        (None, 28, 28, 256)
    """
    return _build(_diagonal_bilstm_layer, config, image_shape, num_classes, name)
