"""The recurrent layers of PixelRNN: `RowLSTM` and `DiagonalLSTM`.

Both layers take the input-to-state part of the LSTM gates already computed
(by a masked convolution in the model) and add the state-to-state part, which
reads only earlier pixels. Gates are INTERLEAVED per feature: for `F` units the
input is `(B, H, W, 4F)` and channel `4k + g` is gate `g` of feature `k`, with

    g = 0: input gate i,   g = 1: forget gate f,
    g = 2: output gate o,  g = 3: cell candidate g.

With `F % C == 0`, channel `4k + g` lies in the same colour group as feature
`k` (see `masks.channel_groups`), so colour masking carries through the layer.

At every pixel, with `z = input_gates + state_gates + bias` (all `4F`,
interleaved the same way) and `c_prev` the cell the recurrence reads,

    c = sigmoid(z_f) * c_prev + sigmoid(z_i) * tanh(z_g)
    h = sigmoid(z_o) * tanh(c)

(`lstm_cell`); the layers differ in which earlier `h` and `c` they read.

Reference:
    van den Oord, Kalchbrenner, Kavukcuoglu. "Pixel Recurrent Neural
    Networks", ICML 2016, sections 3.1 and 3.2.
"""

import keras
import numpy as np
from keras import ops


def lstm_cell(gates, c_prev):
    """One LSTM update from interleaved pre-activations (the layers' math at one pixel).

    Args:
        gates: `(..., 4F)` pre-activations `z`, channel `4k + g` is gate `g`
            (i, f, o, g) of feature `k`.
        c_prev: `(..., F)` previous cell.

    Returns:
        `(h, c)`, each `(..., F)`.
    """
    return gate_major_cell(_gate_major(gates), c_prev)


def _gate_major(x):
    """Interleaved `(..., 4F)` -> gate-major `(..., 4F)`: channel `g*F + k` is input `4k + g`.

    Dimensions other than the first and the last must be static.
    """
    units = x.shape[-1] // 4
    lead = tuple(x.shape[:-1])
    lead = (-1,) + lead[1:] if lead and lead[0] is None else lead
    # (..., 4F) -> (..., F, 4) -> (..., 4, F) -> (..., 4F)
    x = ops.reshape(x, lead + (units, 4))
    x = ops.transpose(x, tuple(range(len(lead))) + (len(lead) + 1, len(lead)))
    return ops.reshape(x, lead + (4 * units,))


def gate_major_order(units):
    """The channel order `_gate_major` makes: gate-major channel `g*F + k` is interleaved channel `4k + g`
    (for a gather: one op where `_gate_major`'s reshape, transpose and reshape are three)."""
    return (4 * np.arange(units)[None] + np.arange(4)[:, None]).reshape(-1)


def gate_major_cell(z, c_prev):
    """`lstm_cell` on gate-major pre-activations `[i | f | o | g]` (fewer ops in a loop)."""
    units = c_prev.shape[-1]
    # (..., 4F) -> (..., 3F), (..., F) in one split -> three (..., F): sigmoid of i, f and o at once
    ifo, g = ops.split(z, [3 * units], axis=-1)
    i, f, o = ops.split(ops.sigmoid(ifo), 3, axis=-1)
    c = f * c_prev + i * ops.tanh(g)
    return o * ops.tanh(c), c


class _StepCell:
    """Adapts `step(x, h, c) -> (h, c)` to the cell protocol of `keras.layers.RNN`.

    It has no weights (the layers own them). States are `(B, N, F)`; the
    nominal `state_size` only satisfies the protocol.
    """

    def __init__(self, step, zeros, dtype):
        self.step, self.zeros, self.compute_dtype = step, zeros, dtype
        self.state_size = [zeros.shape[-1]] * 2

    def call(self, inputs, states, **kwargs):
        h, c = self.step(inputs, *states)
        return h, [h, c]

    __call__ = call

    def get_initial_state(self, batch_size=None):
        return [self.zeros, self.zeros]


def _recur(step, xs, units, dtype_policy):
    """Run an LSTM recurrence along axis 1 of `xs`, from zero `h` and `c`.

    `keras.layers.RNN` does the looping: TensorArrays in a `while_loop` with
    `maximum_iterations` on TensorFlow (fast to differentiate, and XLA can
    compile it), `lax.scan` on JAX.

    Args:
        step: `step(x, h, c) -> (h, c)` with `x = xs[:, t]` `(B, N, K)` and
            `h`, `c` `(B, N, F)` the previous state.
        xs: `(B, T, N, K)` per-step inputs.
        units: F.
        dtype_policy: the calling layer's dtype policy.

    Returns:
        `(B, T, N, F)`: h after every step.
    """
    zeros = ops.tile(ops.zeros_like(xs[:, 0, :, :1]), (1, 1, units))  # (B, N, 1) -> (B, N, F)
    cell = _StepCell(step, zeros, dtype_policy.compute_dtype)
    return keras.layers.RNN(cell, return_sequences=True, dtype=dtype_policy)(xs)


def _unit_forget_bias(units):
    """Bias initializer: 1 for every forget gate (channel 4k + 1), 0 elsewhere."""

    def initializer(shape, dtype=None):
        return ops.convert_to_tensor(np.tile([0.0, 1.0, 0.0, 0.0], units), dtype=dtype)

    return initializer


class _PixelLSTM(keras.layers.Layer):
    """Shared weights and checks of the two PixelRNN LSTM layers."""

    def __init__(self, units, recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"Expected units to be a positive int. Received: units={units!r}")
        self.units = units
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] != 4 * self.units or None in tuple(input_shape[1:]):
            raise ValueError(
                f"Expected gates (B, H, W, 4 * units) = (B, H, W, {4 * self.units}) with a static H and W. "
                f"Received: input_shape={tuple(input_shape)}"
            )

    def _add_bias(self):
        initializer = _unit_forget_bias(self.units) if self.unit_forget_bias else self.bias_initializer
        self.bias = self.add_weight(name="bias", shape=(4 * self.units,), initializer=initializer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
        })
        return config


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class RowLSTM(_PixelLSTM):
    """PixelRNN's Row LSTM: each row's state reads the row above through a 1-D conv.

    For pixel `(r, j)`, with `p = kernel_size // 2` and `h`, `c` zero outside
    the image (so row 0 reads only zeros):

        state_gates[r, j] = sum_t h[r - 1, j + t - p] @ state_kernel[t]
        c_prev[r, j] = c[r - 1, j]

    then `lstm_cell(input_gates[r, j] + state_gates[r, j] + bias, c_prev)`.
    Output `(r, j)` therefore depends on input gates at `(r', j')` with
    `r' <= r` and `|j' - j| <= p * (r - r')` (a triangle above the pixel).
    Rows are computed one after the other (`keras.layers.RNN` over H).

    Args:
        units: hidden units F.
        kernel_size: odd width k of the state-to-state convolution.
        recurrent_initializer: initializer of `state_kernel`.
        bias_initializer: initializer of `bias` when `unit_forget_bias` is False.
        unit_forget_bias: initialise the forget-gate biases to 1, the rest to 0.
        **kwargs: base `Layer` arguments.

    Weights:
        `state_kernel` `(k, F, 4F)`, `bias` `(4F,)` (interleaved gates).

    Input shape:
        `(B, H, W, 4F)` input-to-state gates, interleaved (see module docs);
        H and W static.

    Output shape:
        `(B, H, W, F)`: h.

    Raises:
        ValueError: for a bad `units` or `kernel_size`, or input not
            `(B, H, W, 4 * units)` with static H and W.

    Example:
        >>> RowLSTM(8)(keras.ops.zeros((2, 5, 5, 32))).shape
        (2, 5, 5, 8)

    Reference:
        van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016,
        section 3.1.
    """

    def __init__(self, units, kernel_size=3, **kwargs):
        super().__init__(units, **kwargs)
        if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 1 \
                or kernel_size % 2 == 0:
            raise ValueError(f"Expected kernel_size to be an odd positive int. Received: kernel_size={kernel_size!r}")
        self.kernel_size = kernel_size

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        self.state_kernel = self.add_weight(
            name="state_kernel", shape=(self.kernel_size, self.units, 4 * self.units),
            initializer=self.recurrent_initializer)
        self._add_bias()

    def call(self, inputs):
        k, units, pad = self.kernel_size, self.units, self.kernel_size // 2
        width = inputs.shape[2]
        # Gate-major inside the loop (a permutation of channels, same math).
        # (k, F, 4F) -> (k*F, 4F): row i*F + n is tap i, feature n
        kernel = ops.reshape(_gate_major(self.state_kernel), (k * units, 4 * units))

        def step(row_gates, h_prev, c_prev):
            # h_prev, c_prev (B, W, F): the row above (zeros for row 0). A 1-D conv as one
            # matmul (XLA differentiates `conv` slowly on CPU):
            # (B, W, F) -> (B, W + 2p, F) -> (B, W, k*F): tap i of column j is h_prev[j + i - p]
            padded = ops.pad(h_prev, ((0, 0), (pad, pad), (0, 0)))
            taps = ops.concatenate([padded[:, i:i + width] for i in range(k)], axis=-1)
            return gate_major_cell(row_gates + ops.einsum("bwk,kg->bwg", taps, kernel), c_prev)

        # (B, H, W, 4F) -> (B, H, W, F), one row per step
        return _recur(step, _gate_major(inputs + self.bias), units, self.dtype_policy)

    def get_config(self):
        config = super().get_config()
        config["kernel_size"] = self.kernel_size
        return config


def _skew(x):
    """Shift row r right by r: `(B, H, W, K) -> (B, H, W + H - 1, K)`, `out[r, r + j] = x[r, j]`."""
    _, height, width, depth = x.shape
    # (B, H, W, K) -> (B, H, W + H, K) -> (B, H*(W + H), K): row r starts at r*(W + H)
    flat = ops.reshape(ops.pad(x, ((0, 0), (0, 0), (0, height), (0, 0))), (-1, height * (width + height), depth))
    # drop the last H entries: (B, H*(W + H - 1), K) -> (B, H, W + H - 1, K); row r starts at
    # r*(W + H) - r, so entry (r, r + j) is x[r, j] and the rest is padding.
    return ops.reshape(flat[:, :height * (width + height - 1)], (-1, height, width + height - 1, depth))


def _unskew(x, width):
    """Inverse of `_skew`: `(B, H, W + H - 1, K) -> (B, H, W, K)`, `out[r, j] = x[r, r + j]`."""
    _, height, skewed, depth = x.shape
    # (B, H, W + H - 1, K) -> (B, H*(W + H - 1) + H, K) -> (B, H, W + H, K): row r starts at r*(W + H - 1)
    flat = ops.pad(ops.reshape(x, (-1, height * skewed, depth)), ((0, 0), (0, height), (0, 0)))
    return ops.reshape(flat, (-1, height, skewed + 1, depth))[:, :, :width]


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class DiagonalLSTM(_PixelLSTM):
    """One direction of PixelRNN's Diagonal BiLSTM: a 2x1 state conv along skewed columns.

    With `s = -1` (`reverse=False`, left to right) or `s = +1` (`reverse=True`,
    right to left) and `h`, `c` zero outside the image, pixel `(r, j)` reads

        state_gates[r, j] = h[r - 1, j] @ up_kernel + h[r, j + s] @ side_kernel
        c_prev[r, j] = c[r, j + s]

    then `lstm_cell(input_gates[r, j] + state_gates[r, j] + bias, c_prev)`.
    Left to right, output `(r, j)` depends exactly on input gates at `(r', j')`
    with `r' <= r` and `j' <= j`; right to left, on `r' <= r` and `j' >= j`
    (so a model shifts that direction down a row before the current row uses it).

    Computed on the skewed map (row r shifted right by r): pixel `(r, j)` sits
    in skewed column `r + j`, and both states it reads sit in column
    `r + j - 1`, so one step of `keras.layers.RNN` per skewed column (W + H - 1 of
    them) updates a whole anti-diagonal. `reverse=True` flips the width axis
    in and out.

    Args:
        units: hidden units F.
        reverse: False for left to right, True for right to left.
        recurrent_initializer: initializer of `up_kernel` and `side_kernel`.
        bias_initializer: initializer of `bias` when `unit_forget_bias` is False.
        unit_forget_bias: initialise the forget-gate biases to 1, the rest to 0.
        **kwargs: base `Layer` arguments.

    Weights:
        `up_kernel` `(F, 4F)`, `side_kernel` `(F, 4F)`, `bias` `(4F,)`.

    Input shape:
        `(B, H, W, 4F)` input-to-state gates, interleaved (see module docs);
        H and W static.

    Output shape:
        `(B, H, W, F)`: h.

    Raises:
        ValueError: for a bad `units` or `reverse`, or input not
            `(B, H, W, 4 * units)` with static H and W.

    Example:
        >>> DiagonalLSTM(8, reverse=True)(keras.ops.zeros((2, 5, 5, 32))).shape
        (2, 5, 5, 8)

    Reference:
        van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016,
        section 3.2 and figure 3.
    """

    def __init__(self, units, reverse=False, **kwargs):
        super().__init__(units, **kwargs)
        if not isinstance(reverse, bool):
            raise ValueError(f"Expected reverse to be a bool. Received: reverse={reverse!r}")
        self.reverse = reverse

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        shape = (self.units, 4 * self.units)
        self.up_kernel = self.add_weight(name="up_kernel", shape=shape, initializer=self.recurrent_initializer)
        self.side_kernel = self.add_weight(name="side_kernel", shape=shape, initializer=self.recurrent_initializer)
        self._add_bias()

    def call(self, inputs):
        width = inputs.shape[2]
        # Gate-major inside the loop (a permutation of channels, same math).
        gates = _gate_major(inputs + self.bias)
        if self.reverse:
            gates = ops.flip(gates, axis=2)
        # (B, H, W, 4F + 1) -> (B, H, W + H - 1, 4F + 1) -> (B, W + H - 1, H, 4F + 1): loop over
        # skewed columns; the last channel is 1 on pixels, 0 on the skew's padding.
        gates = ops.concatenate([gates, ops.ones_like(gates[..., :1])], axis=-1)
        columns = ops.transpose(_skew(gates), (0, 2, 1, 3))
        # (F, 4F) twice -> (2F, 4F): rows 0..F-1 read h[r - 1, j], rows F..2F-1 read h[r, j + s]
        kernel = _gate_major(ops.concatenate([self.up_kernel, self.side_kernel], axis=0))
        units = self.units

        def step(column, h_prev, c_prev):
            # h_prev, c_prev (B, H, F): the previous skewed column, i.e. pixels (r, j + s)
            column_gates, inside = column[..., :4 * units], column[..., 4 * units:]
            # (B, H, F) -> (B, H, F): row r gets h_prev[r - 1] = h[r - 1, j], zero for r = 0
            above = ops.pad(h_prev, ((0, 0), (1, 0), (0, 0)))[:, :-1]
            # (B, H, 2F) -> (B, H, 4F): the 2x1 column conv as one matmul
            state = ops.einsum("brk,kg->brg", ops.concatenate([above, h_prev], axis=-1), kernel)
            h, c = gate_major_cell(column_gates + state, c_prev)
            # zero state off the image, so pixel (r, 0) reads zeros at (r, -1)
            return h * inside, c * inside

        h = _recur(step, columns, units, self.dtype_policy)
        # (B, W + H - 1, H, F) -> (B, H, W + H - 1, F) -> (B, H, W, F)
        h = _unskew(ops.transpose(h, (0, 2, 1, 3)), width)
        return ops.flip(h, axis=2) if self.reverse else h

    def get_config(self):
        config = super().get_config()
        config["reverse"] = self.reverse
        return config
