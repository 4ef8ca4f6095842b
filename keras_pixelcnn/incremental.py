"""Incremental evaluation of a functional pixel model: the engine of the cached sampler.

Sampling runs the model once per sub-pixel, but a new pixel only changes the
activations at and after it. This module walks a model's functional graph once
and keeps, for every tensor, a cache of the values computed so far, so that
each sampling step computes each layer at one position only (Ramachandran et
al. 2017). It works for any model built from the layers below, whatever the
architecture, and needs no per-model code.

Every spatial tensor gets a *phase* from its producer:

- "pixel": value `(r, c)` may read the current row up to its own pixel. It is
  computed at full-resolution sampling step `(f*r, f*c)` (f: the tensor's
  down-sampling factor), after the inputs of that step, once per colour
  channel of that pixel.
- "row": value `(r, c)` may read pixels to its right in its own row (a
  vertical stack, a right-to-left LSTM) or only rows above (a down-shift).
  Row `r` is computed whole, once, at the start of the first image row at
  which all it reads is final: `ready[r]`, found by propagating readiness
  through the graph.
- "global": does not depend on the image (class labels); computed once.

A pixel-phase layer that reads a row-phase tensor must read only rows that are
ready by then; `Plan` checks this for every layer, which also proves the model
causal at pixel level. The per-position rules below are the layers' own math,
restricted to one output pixel or one output row.

Reference:
    Ramachandran et al., "Fast Generation for Convolutional Autoregressive
    Models", ICLR 2017 workshop.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_pixelcnn.distributions import PixelDistribution
from keras_pixelcnn.gated import ConcatELU, GatedActivation
from keras_pixelcnn.masked_conv import MaskedConv2D
from keras_pixelcnn.shifts import ShiftDown, ShiftRight

_POINTWISE = (
    keras.layers.Add, keras.layers.Multiply, keras.layers.Subtract, keras.layers.Concatenate,
    keras.layers.ReLU, keras.layers.ELU, keras.layers.Activation, keras.layers.Dropout,
    keras.layers.Rescaling, PixelDistribution,
)
_ELEMENTWISE = (
    keras.layers.Add, keras.layers.Multiply, keras.layers.Subtract, keras.layers.ReLU, keras.layers.ELU,
    keras.layers.Activation, keras.layers.Dropout, keras.layers.Rescaling, PixelDistribution,
)
_GLOBAL = (keras.layers.Embedding, keras.layers.Reshape, keras.layers.Dense)


class NotCacheable(ValueError):
    """The model has a layer or a wiring the incremental evaluator cannot run."""


@dataclasses.dataclass
class _Tensor:
    """What the plan knows of one tensor of the functional graph."""

    key: int
    phase: str                     # "image", "pixel", "row" or "global"
    height: int = 0
    width: int = 0
    depth: int = 0
    factor: int = 1                # image pixels per tensor pixel, along each axis
    ready: np.ndarray = None       # row phase: first image row at which row r is final
    pad: list = dataclasses.field(default_factory=lambda: [0, 0, 0, 0])  # top, bottom, left, right
    dtype: str = "float32"
    # Features whose value at the current pixel reads the pixel's last channel: they
    # are computed again once that channel is drawn ("refresh").
    last_channel: np.ndarray = None
    # Whether values are kept for later steps; a pixel tensor read only at its own
    # pixel by pointwise layers lives for one step ("transient").
    cached: bool = True

    def ready_rows(self):
        """`ready[r]` for any phase: the image row whose start sees row r final."""
        if self.phase == "row":
            return self.ready
        # A pixel tensor's row r is complete after image row f*r.
        return self.factor * np.arange(self.height) + 1

    def need_pad(self, top=0, bottom=0, left=0, right=0):
        self.pad = [max(p, q) for p, q in zip(self.pad, (top, bottom, left, right))]


def _centre_reads(layer, flags):
    """Output features of a masked conv whose centre tap reads a flagged input feature."""
    kh, kw = layer.kernel_size
    return (flags.astype(np.float32) @ layer._mask[kh // 2, kw // 2]) > 0


def _taps(layer):
    """Non-zero taps `(dy, dx)` of a masked kernel, relative to its centre."""
    kh, kw = layer.kernel_size
    used = np.any(layer._mask != 0, axis=(2, 3))
    return [(dy - kh // 2, dx - kw // 2) for dy, dx in zip(*np.nonzero(used))]


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

    def last_channel(self):
        """Which output features read the current pixel's last channel (conservative: all or none)."""
        touched = any(t.last_channel is not None and t.last_channel.any() for t in self.inputs)
        return np.full(self.output.depth, touched)

    def pixel(self, values, row, col):
        raise NotCacheable(f"Layer {self.layer.name!r} has no per-pixel rule")

    def row(self, values, row):
        raise NotCacheable(f"Layer {self.layer.name!r} has no per-row rule")


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

    def last_channel(self):
        flags = [np.zeros(t.depth, bool) if t.last_channel is None else t.last_channel for t in self.inputs
                 if t.phase != "global"]
        layer = self.layer
        if isinstance(layer, keras.layers.Concatenate):
            return np.concatenate(flags)
        if isinstance(layer, GatedActivation):
            return flags[0][0::2] | flags[0][1::2]
        if isinstance(layer, ConcatELU):
            return np.repeat(flags[0], 2)
        if isinstance(layer, MaskedConv2D):
            return _centre_reads(layer, flags[0])
        if isinstance(layer, _ELEMENTWISE):
            return np.logical_or.reduce(flags)
        return super().last_channel()

    def _call(self, args):
        if isinstance(self.layer, keras.layers.Dropout):
            return args[0]
        return self.layer(args if self.many else args[0])

    def pixel(self, values, row, col):
        return self._call([values.at(t, row, col) for t in self.inputs])

    def row(self, values, row):
        return self._call([values.row(t, row) for t in self.inputs])


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
        elif source.phase == "row" and np.all(ready_in <= out.factor * np.arange(height)):
            out.phase = "pixel"
        else:
            out.phase, out.ready = "row", ready_in

    def last_channel(self):
        flags = self.inputs[0].last_channel
        return _centre_reads(self.layer, np.zeros(self.inputs[0].depth, bool) if flags is None else flags)

    def _kernel(self):
        kh = self.layer.kernel_size[0]
        # (kh, kw, in, F) -> rows top..bottom actually used
        return self.layer.masked_kernel()[kh // 2 + self.top:kh // 2 + self.bottom + 1]

    def _finish(self, y):
        if self.layer.use_bias:
            y = y + self.layer.bias
        return self.layer.activation(y)

    def pixel(self, values, row, col):
        stride = self.layer.strides[0]
        kw = self.layer.kernel_size[1]
        rows = self.bottom - self.top + 1
        window = values.window(self.inputs[0], stride * row + self.top, rows, stride * col - kw // 2, kw)
        kernel = self._kernel()
        # (B, rows, kw, in) x (rows, kw, in, F) -> (B, F) -> (B, 1, 1, F)
        y = tf.tensordot(window, kernel, axes=3)
        return self._finish(y)[:, None, None, :]

    def row(self, values, row):
        stride = self.layer.strides[0]
        kw = self.layer.kernel_size[1]
        source = self.inputs[0]
        rows = self.bottom - self.top + 1
        slab = values.window(source, stride * row + self.top, rows, -(kw // 2), source.width + 2 * (kw // 2))
        # (B, rows, W + kw - 1, in) -> (B, 1, ceil(W / s), F)
        y = tf.nn.conv2d(slab, self._kernel(), strides=(1, 1, stride, 1), padding="VALID")
        return self._finish(y)


class _ShiftDown(_Rule):
    def last_channel(self):
        return np.zeros(self.output.depth, bool)

    def plan(self):
        (source,) = self.inputs
        source.need_pad(top=1)
        ready = np.concatenate([[0], source.ready_rows()[:-1]])
        _copy_shape(self.output, source, "row", ready)

    def row(self, values, row):
        return values.window(self.inputs[0], row - 1, 1, 0, self.inputs[0].width)


class _ShiftRight(_Rule):
    def last_channel(self):
        return np.zeros(self.output.depth, bool)

    def plan(self):
        (source,) = self.inputs
        source.need_pad(left=1)
        phase = "row" if source.phase == "row" else "pixel"
        _copy_shape(self.output, source, phase, source.ready if phase == "row" else None)

    def pixel(self, values, row, col):
        return values.window(self.inputs[0], row, 1, col - 1, 1)

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

    def _finish(self, y):
        if self.layer.use_bias:
            y = y + self.layer.bias
        return self.layer.activation(y)

    def pixel(self, values, row, col):
        x = values.at(self.inputs[0], row // 2, col // 2)[:, 0, 0]
        # kernel (2, 2, F, in): tap (row % 2, col % 2)
        kernel = tf.gather_nd(self.layer.kernel, tf.stack([row % 2, col % 2])[None])[0]
        return self._finish(tf.linalg.matvec(kernel, x))[:, None, None, :]

    def row(self, values, row):
        x = values.row(self.inputs[0], row // 2)[:, 0]
        kernel = tf.gather(self.layer.kernel, row % 2)
        # (B, W, in) x (2, F, in) -> (B, W, 2, F) -> (B, 1, 2W, F)
        y = tf.einsum("bwi,qfi->bwqf", x, kernel)
        y = tf.reshape(y, (tf.shape(y)[0], 1, -1, self.layer.filters))
        return self._finish(y)


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


def _rule_for(layer):
    for classes, choose in _RULES:
        if isinstance(layer, classes):
            rule = choose(layer)
            if rule is not None:
                return rule
    if getattr(layer, "pointwise", False):
        return _Pointwise
    raise NotCacheable(
        f"The cached sampler does not know layer {layer.name!r} ({type(layer).__name__}); "
        "use method='naive' or add a rule with keras_pixelcnn.incremental.register_rule"
    )


class Values:
    """The caches of one sampling run: a padded `(B, h + pad, w + pad, K)` tensor per tensor.

    Functional: `write_*` replace a cache; `Plan` threads `as_list()` through
    the `tf.while_loop`s.
    """

    def __init__(self, plan, caches, globals_, current=None):
        self.plan, self.caches, self.globals = plan, dict(caches), globals_
        self.current = dict(current or {})  # transient tensors at the current pixel

    def window(self, tensor, row, rows, col, cols, aux=None):
        """Rows `row .. row+rows-1`, columns `col .. col+cols-1` (zeros outside the image)."""
        if not tensor.cached:
            return self.current[tensor.key]
        top, _, left, _ = tensor.pad
        cache = self.caches[(tensor.key, aux)]
        return tf.slice(cache, tf.stack([0, row + top, col + left, 0]), [-1, rows, cols, -1])

    def at(self, tensor, row, col):
        if tensor.phase == "global":
            return self.globals[tensor.key]
        return self.window(tensor, row, 1, col, 1)

    def row(self, tensor, row):
        if tensor.phase == "global":
            return self.globals[tensor.key]
        return self.window(tensor, row, 1, 0, tensor.width)

    def write(self, tensor, row, col, value, aux=None):
        """Store `value` `(B, rows, cols, K)` with its top-left at `(row, col)`."""
        if not tensor.cached:
            self.current[tensor.key] = value
            return
        top, _, left, _ = tensor.pad
        key = (tensor.key, aux)
        cache = self.caches[key]
        batch, rows, cols = tf.shape(value)[0], value.shape[1], value.shape[2]
        # indices (B, rows, cols, 3) of [b, y, x] in the padded cache
        b, y, x = tf.meshgrid(tf.range(batch), tf.range(rows) + row + top, tf.range(cols) + col + left,
                              indexing="ij")
        indices = tf.stack([b, y, x], axis=-1)
        self.caches[key] = tf.tensor_scatter_nd_update(cache, indices, tf.cast(value, cache.dtype))

    def write_channel(self, tensor, row, col, channel, value):
        """Store `value` `(B,)` as feature `channel` of pixel `(row, col)`."""
        top, _, left, _ = tensor.pad
        key = (tensor.key, None)
        batch = tf.shape(value)[0]
        # indices (B, 4) of [b, y, x, channel]
        position = tf.stack([row + top, col + left, channel])
        indices = tf.concat([tf.range(batch)[:, None], tf.tile(position[None], (batch, 1))], axis=1)
        self.caches[key] = tf.tensor_scatter_nd_update(self.caches[key], indices, value)


@dataclasses.dataclass
class _Step:
    rule: _Rule
    output: _Tensor


class Plan:
    """The incremental schedule of a functional keras_pixelcnn model.

    Args:
        model: a functional model whose first input is the images `(B, H, W, C)`
            (and second, when conditional, the labels) and whose output is the
            per-pixel distribution parameters.

    Raises:
        NotCacheable: for an unknown layer or a wiring that would read a value
            before it is final (a non-causal model).
    """

    def __init__(self, model):
        self.model = model
        image_input = model.inputs[0]
        height, width, channels = image_input.shape[1:]
        self.shape = (height, width, channels)
        self.tensors = {}
        self.image = self._add(image_input, _Tensor(0, "image", height, width, channels, dtype="int32"))
        self.image.last_channel = np.arange(channels) == channels - 1
        for extra in model.inputs[1:]:
            self._add(extra, _Tensor(0, "global"))
        self.global_layers, self.pixel_steps, self.row_steps = [], [], []
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            self._plan_layer(layer)
        out = self.tensors[id(model.outputs[0])]
        if out.phase != "pixel" or out.factor != 1:
            raise NotCacheable(f"Expected the model output to be computed pixel by pixel. Received: {out.phase}")
        self.output = out
        # Pixel tensors to compute again once the last channel of a pixel is drawn.
        self.refresh_steps = [step for step in self.pixel_steps if step.output.last_channel.any()]
        self._schedule_rows()
        self._mark_transient()

    def _add(self, keras_tensor, tensor):
        tensor.key = len(self.tensors)
        self.tensors[id(keras_tensor)] = tensor
        return tensor

    def _plan_layer(self, layer):
        if len(layer._inbound_nodes) != 1:
            raise NotCacheable(f"Layer {layer.name!r} is used {len(layer._inbound_nodes)} times")
        node = layer._inbound_nodes[0]
        inputs = [self.tensors[id(t)] for t in node.input_tensors]
        (output_kt,) = node.output_tensors
        output = self._add(output_kt, _Tensor(0, "global", depth=output_kt.shape[-1], dtype=output_kt.dtype))
        arguments = node.arguments.args
        many = bool(arguments) and isinstance(arguments[0], (list, tuple))
        if all(t.phase == "global" for t in inputs):
            if not isinstance(layer, _GLOBAL):
                raise NotCacheable(f"Layer {layer.name!r} ({type(layer).__name__}) on labels is not supported")
            self.global_layers.append((layer, inputs, output, many))
            return
        rule = _rule_for(layer)(layer, inputs, output)
        rule.many = many
        rule.plan()
        output.last_channel = rule.last_channel() if output.phase == "pixel" else None
        (self.pixel_steps if output.phase == "pixel" else self.row_steps).append(_Step(rule, output))

    def _schedule_rows(self):
        height = self.shape[0]
        for step in self.row_steps:
            ready = step.output.ready
            if np.any(np.diff(ready) < 0):
                raise NotCacheable(f"Rows of {step.rule.layer.name!r} become final out of order")
            rows = np.arange(height)
            step.first = np.searchsorted(ready, rows, side="left").astype(np.int32)
            step.stop = np.searchsorted(ready, rows, side="right").astype(np.int32)
            step.most = int(np.max(step.stop - step.first, initial=0))

    def cache_keys(self):
        keys = [(self.image.key, None)]
        for step in self.pixel_steps + self.row_steps:
            if step.output.cached:
                keys.append((step.output.key, None))
            keys.extend((step.output.key, name) for name in step.rule.aux)
        return keys

    def _mark_transient(self):
        """Keep values only for tensors that some layer reads at another pixel or row."""
        for step in self.pixel_steps:
            step.output.cached = step.output.factor != 1 or step.rule.reads_own_output
        for step in self.pixel_steps + self.row_steps:
            for source in step.rule.inputs:
                if step.rule.reads_neighbours or step.output.phase == "row" or source.factor != step.output.factor:
                    source.cached = True

    def initial(self, batch, labels):
        """Zero caches and the label-only tensors, as a `Values`."""
        globals_ = {}
        if labels is not None:
            globals_[self.tensors[id(self.model.inputs[1])].key] = labels
        for layer, inputs, output, many in self.global_layers:
            args = [globals_[t.key] for t in inputs]
            globals_[output.key] = layer(args if many else args[0])
        by_key = {t.key: t for t in self.tensors.values()}
        caches = {}
        for key, aux in self.cache_keys():
            t = by_key[key]
            top, bottom, left, right = t.pad
            caches[(key, aux)] = tf.zeros((batch, t.height + top + bottom, t.width + left + right, t.depth),
                                          t.dtype)
        return Values(self, caches, globals_)

    def rows(self, values, image_row):
        """Compute every row-phase row that becomes final at the start of `image_row`."""
        for step in self.row_steps:
            for k in range(step.most):
                row = tf.gather(step.first, image_row) + k
                keys = [(step.output.key, None)] + [(step.output.key, name) for name in step.rule.aux]

                def compute(row=row, step=step, keys=keys):
                    trial = Values(self, values.caches, values.globals, values.current)
                    trial.write(step.output, row, 0, step.rule.row(trial, row))
                    return [trial.caches[key] for key in keys]

                updated = tf.cond(row < tf.gather(step.stop, image_row), compute,
                                  lambda keys=keys: [values.caches[key] for key in keys])
                values.caches.update(zip(keys, updated))

    def pixel(self, values, image_row, image_col, steps=None):
        """Compute pixel-phase tensors (all, or `steps`) at image pixel `(image_row, image_col)`.

        Returns:
            The model output at that pixel, `(B, P)`.
        """
        for step in self.pixel_steps if steps is None else steps:
            factor = step.output.factor
            keys = ([(step.output.key, None)] if step.output.cached else []) + [
                (step.output.key, name) for name in step.rule.aux]

            def compute(step=step, keys=keys, factor=factor):
                trial = Values(self, values.caches, values.globals, values.current)
                row, col = image_row // factor, image_col // factor
                trial.write(step.output, row, col, step.rule.pixel(trial, row, col))
                values.current.update(trial.current)
                return [trial.caches[key] for key in keys]

            if factor == 1:
                updated = compute()
            else:
                on_grid = tf.logical_and(image_row % factor == 0, image_col % factor == 0)
                updated = tf.cond(on_grid, compute, lambda keys=keys: [values.caches[key] for key in keys])
            values.caches.update(zip(keys, updated))
        return values.at(self.output, image_row, image_col)[:, 0, 0]
