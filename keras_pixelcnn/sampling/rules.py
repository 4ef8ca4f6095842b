"""Per-layer rules of the incremental evaluator: one output pixel, one output row.

Each rule restates a layer's own math for a single output pixel (`pixel`) or
row (`row`), reading its inputs from the caches of `incremental.Values`, and
tells the planner (`plan`) the phase, shape and readiness of its output. A
layer that no rule knows makes the model not cacheable (`NotCacheable`).
"""

import keras
import numpy as np
import tensorflow as tf

from keras_pixelcnn.distributions import PixelDistribution
from keras_pixelcnn.layers.gated import ConcatELU, GatedActivation
from keras_pixelcnn.layers.masked_conv import MaskedConv2D
from keras_pixelcnn.layers.shifts import ShiftDown, ShiftRight
from keras_pixelcnn.sampling.values import coarse, shifted

_POINTWISE = (
    keras.layers.Add, keras.layers.Multiply, keras.layers.Subtract, keras.layers.Concatenate,
    keras.layers.ReLU, keras.layers.ELU, keras.layers.Activation, keras.layers.Dropout,
    keras.layers.Rescaling, PixelDistribution,
)
_ELEMENTWISE = (
    keras.layers.Add, keras.layers.Multiply, keras.layers.Subtract, keras.layers.ReLU, keras.layers.ELU,
    keras.layers.Activation, keras.layers.Dropout, keras.layers.Rescaling, PixelDistribution,
)
GLOBAL_LAYERS = (keras.layers.Embedding, keras.layers.Reshape, keras.layers.Dense)


class NotCacheable(ValueError):
    """The model has a layer or a wiring the incremental evaluator cannot run."""


def _centre_reads(layer, flags):
    """`(out, C)`: output features of a masked conv whose centre tap reads input features flagged `(in, C)`."""
    kh, kw = layer.kernel_size
    return (layer._mask[kh // 2, kw // 2].T @ flags.astype(np.float32)) > 0


def _taps(layer):
    """Non-zero taps `(dy, dx)` of a masked kernel, relative to its centre."""
    kh, kw = layer.kernel_size
    used = np.any(layer._mask != 0, axis=(2, 3))
    return [(dy - kh // 2, dx - kw // 2) for dy, dx in zip(*np.nonzero(used))]


def _finish(layer, y, weights):
    """A convolution layer's bias and activation on its pre-activation `y`."""
    if layer.use_bias:
        y = y + weights["bias"]
    return layer.activation(y)


def _dense(layer, x, weights, kernel="kernel"):
    """A convolution layer's matmul, bias and activation on `x`: a pixel `(B, in)` -> `(B, F)`,
    or a row `(B, h, w, in)` (h, w static) -> `(B, h, w, F)`.

    Reshapes to and from static shapes: `tf.tensordot` adds a dozen shape ops per call for a
    free batch size, and the TF executor that runs an exported sampler costs per op, not per flop.
    """
    kernel = weights[kernel]
    spatial = tuple(x.shape[1:-1])  # a TensorShape of rank 0 is truthy: a pixel was reshaped to a matrix and back
    if spatial:  # (B, h, w, in) -> (B * h * w, in)
        x = tf.reshape(x, (-1, kernel.shape[0]))
    y = tf.matmul(x, kernel)  # (N, in) x (in, F) -> (N, F)
    if layer.use_bias:
        y = tf.nn.bias_add(y, weights["bias"])  # a BiasAdd, which oneDNN fuses into the MatMul
    y = layer.activation(y)
    # (B * h * w, F) -> (B, h, w, F)
    return tf.reshape(y, (-1,) + spatial + (kernel.shape[1],)) if spatial else y


def _read(layer, **tensors):
    """`tensors` and the layer's bias (when it has one), read once before the sampling loops."""
    if getattr(layer, "use_bias", True) and getattr(layer, "bias", None) is not None:
        tensors["bias"] = layer.bias
    return {name: tf.convert_to_tensor(tensor) for name, tensor in tensors.items()}


class _Rule:
    """How one layer computes one output pixel and one output row from the caches."""

    aux = ()  # names of extra per-layer state caches (an LSTM's cell)
    reads_neighbours = True  # reads inputs at other pixels than its own
    reads_own_output = False  # reads its own earlier outputs (a recurrence)

    def __init__(self, layer, inputs, output):
        self.layer, self.inputs, self.output = layer, inputs, output

    def plan(self):
        """Set the output's phase, shape, readiness; add the input paddings it needs."""
        raise NotImplementedError

    def reads_current(self):
        """`(K, C)` bools: output feature k reads channel c of the current pixel (conservative default)."""
        touched = np.zeros(self.output_channels(), bool)
        for t in self.inputs:
            if t.current is not None:
                touched |= t.current.any(axis=0)
        return np.broadcast_to(touched, (self.output.depth, len(touched))).copy()

    def output_channels(self):
        return next(t.current.shape[1] for t in self.inputs if t.current is not None)

    def prepare(self):
        """Tensors made from the weights (masked kernels, reshaped) that every step reads.

        Computed once, before the sampling loops, rather than once per pixel:
        `Values.weights(rule)` gives them to `pixel` and `row`.
        """
        return {}

    def wavefront_reach(self):
        """The most columns right of its pixel that `pixel` reads, per row above (a read `dy < 0` rows
        down and `dx` right: `dx // -dy`), or None when it cannot run in `sampling.wavefront`'s lanes."""
        return None

    def pixel(self, values, row, col):
        raise NotCacheable(f"Layer {self.layer.name!r} has no per-pixel rule")

    def row(self, values, row):
        raise NotCacheable(f"Layer {self.layer.name!r} has no per-row rule")

    rows_together = None  # `(rules, values, row) -> [their rows]` (`run_rows`): inputs from no row-phase step


def run_rows(steps, values, row):
    """`(step, its row)` for a run of row-phase steps (`Plan.rows`), each after those before are written to
    `values`; without XLA (strided writes), first and at once those whose rule class has `rows_together`."""
    together = [step for step in steps if step.rule.rows_together is not None and values.plan.strided_writes]
    if len(together) > 1 and len({type(step.rule) for step in together}) == 1:
        yield from zip(together, together[0].rule.rows_together([step.rule for step in together], values, row))
    else:
        together = []
    yield from ((step, step.rule.row(values, row)) for step in steps if all(step is not t for t in together))


def _spatial(inputs):
    return [t for t in inputs if t.phase != "global"]


def _copy_shape(output, source, phase, ready=None):
    output.phase, output.height, output.width, output.factor = phase, source.height, source.width, source.factor
    output.ready = ready


class _Pointwise(_Rule):
    """Layers that act on every pixel separately: call the layer on the slice."""

    reads_neighbours = False

    def plan(self):
        spatial = _spatial(self.inputs)
        if len({(t.height, t.width, t.factor) for t in spatial}) != 1:
            raise NotCacheable(f"Layer {self.layer.name!r} mixes resolutions")
        if any(t.phase in ("pixel", "image") for t in spatial):
            for t in spatial:
                if t.phase == "row" and np.any(t.ready > t.factor * np.arange(t.height)):
                    raise NotCacheable(f"Layer {self.layer.name!r} reads a row before it is final")
            _copy_shape(self.output, spatial[0], "pixel")
        else:
            _copy_shape(self.output, spatial[0], "row", np.max([t.ready for t in spatial], axis=0))

    def reads_current(self):
        channels = self.output_channels()
        flags = [np.zeros((t.depth, channels), bool) if t.current is None else t.current for t in self.inputs
                 if t.phase != "global"]
        layer = self.layer
        if isinstance(layer, keras.layers.Concatenate):
            return np.concatenate(flags)
        if isinstance(layer, GatedActivation):
            return flags[0][0::2] | flags[0][1::2]
        if isinstance(layer, ConcatELU):
            return np.repeat(flags[0], 2, axis=0)
        if isinstance(layer, MaskedConv2D):
            return _centre_reads(layer, flags[0])
        if isinstance(layer, _ELEMENTWISE):
            return np.logical_or.reduce(flags)
        return super().reads_current()

    def prepare(self):
        layer = self.layer
        if not isinstance(layer, keras.layers.Conv2D):
            return {}
        kernel = layer.masked_kernel() if isinstance(layer, MaskedConv2D) else layer.kernel
        return _read(layer, kernel=kernel[0, 0])

    def _call(self, args, weights):
        layer = self.layer
        if isinstance(layer, keras.layers.Dropout):
            return args[0]
        if isinstance(layer, keras.layers.Conv2D):  # 1x1: a matmul (oneDNN's Conv2D costs ~50 us on one pixel)
            return _dense(layer, args[0], weights)
        return layer(args if self.many else args[0])

    def wavefront_reach(self):
        return 0

    def pixel(self, values, row, col):
        return self._call([values.at(t, row, col) for t in self.inputs], values.weights(self))

    def row(self, values, row):
        return self._call([values.row(t, row) for t in self.inputs], values.weights(self))


# Below this many inputs oneDNN's Conv2D of one row is the faster (`benchmarks/executor_ops.py`).
ROW_MATMUL_MIN_INPUTS = 64


def _row_matmuls(slab, matrix, kw, stride, width):
    """A VALID convolution of a slab `(B, rows, W', in)` to one row `(B, 1, width, F)`, as a matmul per
    kernel row of its `kw` taps side by side: rows `r * kw * in ...` of the flat kernel `matrix`
    `(rows * kw * in, F)` (`_Conv.prepare`'s, which a pixel step reads whole).

    Without XLA, oneDNN's Conv2D of one output row from 64 inputs took 58-144 us, these matmuls
    25-89 us; from 32 inputs the Conv2D is the faster, 17 against 20-38 us (`benchmarks/executor_ops.py`)."""
    block, end = kw * slab.shape[-1], stride * (width - 1) + 1
    products = []
    for r in range(slab.shape[1]):
        taps = tf.concat([slab[:, r, dx:dx + end:stride] for dx in range(kw)], axis=-1)  # (B, width, kw * in)
        products.append(tf.matmul(tf.reshape(taps, (-1, block)), matrix[r * block:(r + 1) * block]))
    return tf.reshape(tf.add_n(products), (-1, 1, width, matrix.shape[-1]))


class _Conv(_Rule):
    """`MaskedConv2D`: a window of taps around input `(s*r, s*c)`."""

    def plan(self):
        (source,) = self.inputs
        layer = self.layer
        stride = layer.strides[0]
        kh, kw = layer.kernel_size
        self.taps = _taps(layer)
        self.top = min(dy for dy, _ in self.taps)       # first kernel row used, relative to centre
        self.bottom = max(dy for dy, _ in self.taps)
        source.need_pad(top=kh // 2, bottom=kh // 2, left=kw // 2, right=kw // 2)
        height, width = -(-source.height // stride), -(-source.width // stride)
        last_row = np.minimum(stride * np.arange(height) + self.bottom, source.height - 1)
        ready_in = source.ready_rows()[last_row]
        reads_ahead = any(dy > 0 or (dy == 0 and dx > 0) for dy, dx in self.taps)
        out = self.output
        out.height, out.width, out.factor = height, width, source.factor * stride
        if source.phase in ("pixel", "image") and not reads_ahead:
            out.phase = "pixel"
        else:  # reads only whole rows (a row-phase input), or reads ahead in its own row
            out.phase, out.ready = "row", ready_in

    def reads_current(self):
        flags = self.inputs[0].current
        if flags is None:
            return np.zeros((self.output.depth, self.output_channels()), bool)
        return _centre_reads(self.layer, flags)

    def prepare(self):
        kh = self.layer.kernel_size[0]
        # (kh, kw, in, F) -> rows top..bottom actually used
        kernel = self.layer.masked_kernel()[kh // 2 + self.top:kh // 2 + self.bottom + 1]
        # (rows, kw, in, F) -> (rows * kw * in, F)
        return _read(self.layer, kernel=kernel, matrix=tf.reshape(kernel, (-1, kernel.shape[-1])))

    def wavefront_reach(self):
        if self.layer.strides[0] != 1:
            return None
        return max([0] + [dx // -dy for dy, dx in self.taps if dy < 0])

    def pixel(self, values, row, col):
        stride = self.layer.strides[0]
        kw = self.layer.kernel_size[1]
        rows = self.bottom - self.top + 1
        window = values.window(self.inputs[0], shifted(row, self.top, stride), rows,
                               shifted(col, -(kw // 2), stride), kw)
        # (B, rows, kw, in) -> (B, rows * kw * in): the window as one input pixel of the flat kernel
        return _dense(self.layer, tf.reshape(window, (-1, window.shape[1] * window.shape[2] * window.shape[3])),
                      values.weights(self), "matrix")

    def row(self, values, row):
        stride = self.layer.strides[0]
        kw = self.layer.kernel_size[1]
        source = self.inputs[0]
        rows = self.bottom - self.top + 1
        slab = values.window(source, shifted(row, self.top, stride), rows, -(kw // 2), source.width + 2 * (kw // 2))
        # (B, rows, W + kw - 1, in) -> (B, 1, ceil(W / s), F)
        weights = values.weights(self)
        # the SavedModel's executor, where oneDNN's Conv2D of one row from 64 inputs or more is slow
        if values.plan.strided_writes and slab.shape[-1] >= ROW_MATMUL_MIN_INPUTS:
            y = _row_matmuls(slab, weights["matrix"], kw, stride, self.output.width)
        else:  # XLA, TFLite
            y = tf.nn.conv2d(slab, weights["kernel"], strides=(1, 1, stride, 1), padding="VALID")
        return _finish(self.layer, y, weights)


class _ShiftDown(_Rule):
    def reads_current(self):
        return np.zeros((self.output.depth, self.output_channels()), bool)

    def plan(self):
        (source,) = self.inputs
        source.need_pad(top=1)
        ready = np.concatenate([[0], source.ready_rows()[:-1]])
        _copy_shape(self.output, source, "row", ready)

    def row(self, values, row):
        return values.window(self.inputs[0], shifted(row, -1), 1, 0, self.inputs[0].width)


class _ShiftRight(_Rule):
    def reads_current(self):
        return np.zeros((self.output.depth, self.output_channels()), bool)

    def plan(self):
        (source,) = self.inputs
        source.need_pad(left=1)
        phase = "row" if source.phase == "row" else "pixel"
        _copy_shape(self.output, source, phase, source.ready if phase == "row" else None)

    def wavefront_reach(self):
        return 0

    def pixel(self, values, row, col):
        return values.vector(self.inputs[0], row, shifted(col, -1))

    def row(self, values, row):
        return values.window(self.inputs[0], row, 1, -1, self.inputs[0].width)


class _UpSample(_Rule):
    """`Conv2DTranspose(kernel_size=2, strides=2, padding="valid")`."""

    def plan(self):
        layer = self.layer
        if tuple(layer.kernel_size) != (2, 2) or tuple(layer.strides) != (2, 2) or layer.padding != "valid":
            raise NotCacheable(f"Conv2DTranspose {layer.name!r} must have kernel_size=strides=2, padding='valid'")
        (source,) = self.inputs
        out = self.output
        out.height, out.width = 2 * source.height, 2 * source.width
        if source.factor % 2:
            raise NotCacheable(f"Layer {layer.name!r} up-samples above the image resolution")
        out.factor = source.factor // 2
        if source.phase == "row":
            out.phase, out.ready = "row", np.repeat(source.ready, 2)
        else:
            out.phase = "pixel"

    def prepare(self):
        # (2, 2, F, in) -> (2, 2, in, F): a pixel's tap is a matrix that a 2-D matmul reads as it lies
        return _read(self.layer, kernel=self.layer.kernel, taps=tf.transpose(self.layer.kernel, (0, 1, 3, 2)))

    def pixel(self, values, row, col):
        weights = values.weights(self)
        x = values.at(self.inputs[0], coarse(row, 2), coarse(col, 2))
        # tap (row % 2, col % 2), (in, F): a MatMul, 5 us, where matvec's BatchMatMul took 47 (executor_ops.py)
        kernel = tf.gather_nd(weights["taps"], tf.stack([row % 2, col % 2])[None])[0]
        return _finish(self.layer, tf.matmul(x, kernel), weights)

    def row(self, values, row):
        weights = values.weights(self)
        x = values.row(self.inputs[0], coarse(row, 2))[:, 0]
        kernel = tf.gather(weights["kernel"], row % 2)
        # (B, W, in) x (2, F, in) -> (B, W, 2, F) -> (B, 1, 2W, F)
        y = tf.einsum("bwi,qfi->bwqf", x, kernel)
        y = tf.reshape(y, (tf.shape(y)[0], 1, -1, self.layer.filters))
        return _finish(self.layer, y, weights)


_RULES = [
    (MaskedConv2D, lambda layer: _Pointwise if layer.kernel_size == (1, 1) and layer.strides == (1, 1)
     else _Conv),
    (keras.layers.Conv2DTranspose, lambda layer: _UpSample),
    (ShiftDown, lambda layer: _ShiftDown),
    (ShiftRight, lambda layer: _ShiftRight),
    (keras.layers.Conv2D, lambda layer: _Pointwise if tuple(layer.kernel_size) == (1, 1)
     and tuple(layer.strides) == (1, 1) else None),
    (_POINTWISE, lambda layer: _Pointwise),
]


def register_rule(layer_class, rule):
    """Teach the planner a layer: `rule(layer)` returns a `_Rule` subclass.

    Used by modules that define layers with their own incremental math (the
    PixelRNN LSTMs), so this module does not import them.
    """
    _RULES.insert(0, (layer_class, rule))


def rule_for(layer):
    for classes, choose in _RULES:
        if isinstance(layer, classes):
            rule = choose(layer)
            if rule is not None:
                return rule
    if getattr(layer, "pointwise", False):
        return _Pointwise
    raise NotCacheable(
        f"The cached sampler does not know layer {layer.name!r} ({type(layer).__name__}); "
        "use method='naive' or add a rule with keras_pixelcnn.sampling.incremental.register_rule"
    )


