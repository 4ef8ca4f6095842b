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
causal at pixel level. The per-position rules (`sampling/rules.py`) are the
layers' own math, restricted to one output pixel or one output row.

Reference:
    Ramachandran et al., "Fast Generation for Convolutional Autoregressive
    Models", ICLR 2017 workshop.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

import keras_pixelcnn.sampling.attention_rule  # noqa: F401  (registers the attention rule)
import keras_pixelcnn.sampling.recurrent_rules  # noqa: F401  (registers the LSTM rules)
from keras_pixelcnn.sampling.rules import GLOBAL_LAYERS, NotCacheable, register_rule, rule_for, run_rows
from keras_pixelcnn.sampling.values import WRITES, Values, coarse, index_vector, shifted

__all__ = ["NotCacheable", "Plan", "Values", "register_rule"]


def _runs(items, key):
    """Maximal runs of consecutive `items` with the same `key(item)`; an item whose key is None runs alone."""
    runs = []
    for item in items:
        k = key(item)
        if runs and k is not None and key(runs[-1][-1]) == k:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


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
    # `(K, C)`: feature k at the current pixel reads channel c of that pixel, so it is
    # computed again once channel c is drawn. None for row-phase tensors.
    current: np.ndarray = None
    # Whether values are kept for later steps; a pixel tensor read only at its own
    # pixel by pointwise layers lives for one step ("transient").
    cached: bool = True
    # Read whole at every pixel step (attention's keys and values, `attention_rule`): a banded column
    # loop gets the cache as it was at the row's start, read-only, besides the band it writes.
    whole: bool = False

    def ready_rows(self):
        """`ready[r]` for any phase: the image row whose start sees row r final."""
        if self.phase == "row":
            return self.ready
        # A pixel tensor's row r is complete after image row f*r.
        return self.factor * np.arange(self.height) + 1

    def need_pad(self, top=0, bottom=0, left=0, right=0):
        self.pad = [max(p, q) for p, q in zip(self.pad, (top, bottom, left, right))]


@dataclasses.dataclass
class _Step:
    rule: object  # a rule from sampling/rules.py
    output: _Tensor


class Plan:
    """The incremental schedule of a functional keras_pixelcnn model.

    Args:
        model: a functional model whose first input is the images `(B, H, W, C)`
            (and second, when conditional, the labels) and whose output is the
            per-pixel distribution parameters.
        writes: how a cache write is made (`WRITES`): "scatter" (`tensor_scatter_nd_update`,
            which XLA updates in place), "slice" (DynamicUpdateSlice, `values.update_slice`: TFLite's
            builtin DYNAMIC_UPDATE_SLICE; TensorFlow runs it only under XLA) or "strided"
            (TensorStridedSliceUpdate, `values.strided_update`: TensorFlow's executor runs it in
            place, for a graph run without XLA).

    Raises:
        NotCacheable: for an unknown layer or a wiring that would read a value
            before it is final (a non-causal model).
    """

    def __init__(self, model, writes="scatter"):
        if writes not in WRITES:
            raise ValueError(f"writes must be one of {WRITES}, not {writes!r}")
        self.model = model
        self.slice_writes, self.strided_writes = writes == "slice", writes == "strided"
        image_input = model.inputs[0]
        height, width, channels = image_input.shape[1:]
        self.shape = (height, width, channels)
        self.tensors = {}
        self.image = self._add(image_input, _Tensor(0, "image", height, width, channels, dtype="int32"))
        self.image.current = np.eye(channels, dtype=bool)
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
        # after_channel[c]: the pixel steps to compute again once channel c of the pixel is drawn
        # (before drawing channel c + 1, and after the last channel for later pixels to read).
        self.after_channel = [[step for step in self.pixel_steps if step.output.current[:, c].any()]
                              for c in range(channels)]
        self._schedule_rows()
        self._mark_transient()
        self._plan_bands()

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
            if not isinstance(layer, GLOBAL_LAYERS):
                raise NotCacheable(f"Layer {layer.name!r} ({type(layer).__name__}) on labels is not supported")
            self.global_layers.append((layer, inputs, output, many))
            return
        rule = rule_for(layer)(layer, inputs, output)
        rule.many = many
        rule.plan()
        output.current = rule.reads_current() if output.phase == "pixel" else None
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
        """Keep values only for tensors that some layer reads at another pixel or row.

        A down-sampled tensor is computed with its run (in a `tf.cond`, `_pixels_on_grid`, or on its
        grid), so it is transient only if every reader is a pointwise layer of the same run, in every
        list of steps that `pixel` runs (PixelCNN++'s down-sampled bands: 204 -> 50).
        """
        for step in self.pixel_steps:
            step.output.cached = step.rule.reads_own_output
        run_of = [self._run_index(steps) for steps in [self.pixel_steps] + self.after_channel]
        for step in self.pixel_steps + self.row_steps:
            for source in step.rule.inputs:
                if (step.rule.reads_neighbours or step.output.phase == "row" or source.factor != step.output.factor
                        or (source.factor != 1 and not all(
                            source.key in runs and runs.get(step.output.key) == runs[source.key]
                            for runs in run_of if step.output.key in runs))):
                    source.cached = True

    @staticmethod
    def _grid_runs(steps):
        """`pixel`'s runs of `steps`: consecutive down-sampled steps without aux state share one `tf.cond`."""
        return _runs(steps, lambda step: step.output.factor if step.output.factor != 1 and not step.rule.aux
                     else None)

    def _run_index(self, steps):
        """`{tensor key: index of its run}` for the down-sampled steps among `steps` (`_grid_runs`)."""
        return {step.output.key: i for i, run in enumerate(self._grid_runs(steps)) for step in run
                if step.output.factor != 1}

    def _plan_bands(self):
        """The caches written pixel by pixel (`band_keys`) and the row-phase caches pixel steps read (`row_keys`).

        A pixel write lands in its band's row `top` (the current row), column `col + left`
        (`Values.write`).
        """
        self.by_key = {t.key: t for t in self.tensors.values()}
        self.band_keys = [(self.image.key, None)] + [
            key for key in self.cache_keys() if self.by_key[key[0]].phase == "pixel"]
        # Row-phase caches that pixel steps read: only at their own current row (pointwise). The
        # others stay out of the column loop, where each would be a loop variable.
        read = {t.key for step in self.pixel_steps for t in step.rule.inputs}
        self.row_keys = [key for key in self.cache_keys() if self.by_key[key[0]].phase == "row" and key[0] in read]

    def open_bands(self, values, image_row, banded=True):
        """A `Values` for the pixels of image row `image_row`: bands of the pixel-by-pixel caches.

        Each band holds a tensor's rows `r - top .. r` (r its current row, top its padding);
        a row-phase cache, which pixel steps only read, its row r. Only bands, and the whole
        caches of tensors marked `whole` (attention's keys and values, read in place), enter
        the column loop: every loop variable costs ops at every step, and TFLite's WHILE may
        copy a loop input at every step. `banded=False` keeps whole caches (XLA's scatters and the
        executor's strided updates write in place).
        """
        if not banded:
            return values.fork()
        bands, origins = {}, {}
        for key in self.band_keys + self.row_keys:
            t = self.by_key[key[0]]
            cache = values.caches[key]
            row = coarse(image_row, t.factor)
            # padded index of the band's first row: r - top, or r for a row-phase cache
            written = t.phase == "pixel" or t is self.image
            origins[key], rows = (row, t.pad[0] + 1) if written else (shifted(row, t.pad[0]), 1)
            batch = -1 if cache.shape[0] is None else cache.shape[0]
            bands[key] = tf.slice(cache, index_vector([0, origins[key], 0, 0]),
                                  index_vector([batch, rows, cache.shape[2], cache.shape[3]]))
            if t.whole and key[1] is None:  # rows above are final: read in place, never written in the loop
                bands[(key[0], "whole")] = cache
        return Values(self, bands, values.globals, values.current, origins)

    def close_bands(self, values, bands, image_row):
        """Write each band's current row back into its cache in `values` (one row copy per image row)."""
        for key in self.band_keys:
            if key not in bands.origins:  # a whole cache (`open_bands(banded=False)`)
                values.caches[key] = bands.caches[key]
                continue
            t = self.by_key[key[0]]
            # the band's current row (B, w + pad, K), into the cache's padded row
            values.write_row(key, shifted(coarse(image_row, t.factor), t.pad[0]), bands.caches[key][:, t.pad[0]])

    def frozen_weights(self):
        """Every rule's `prepare()` tensors as numpy arrays, read now (eagerly).

        Given to `initial`, they become constants of the loop bodies instead of tensors
        captured from outside: the executor that runs a graph without XLA passes every
        captured tensor through each iteration of a `tf.while_loop` (a Merge, a Switch and a
        NextIteration per tensor and step), a constant costs one node.
        """
        return {("weights", step.output.key): {name: np.asarray(tensor) for name, tensor in step.rule.prepare().items()}
                for step in self.pixel_steps + self.row_steps}

    def initial(self, batch, labels, weights=None):
        """Zero caches and the label-only tensors, as a `Values`; `weights` from `frozen_weights` or None."""
        globals_ = {}
        if labels is not None:
            globals_[self.tensors[id(self.model.inputs[1])].key] = labels
        for layer, inputs, output, many in self.global_layers:
            args = [globals_[t.key] for t in inputs]
            globals_[output.key] = layer(args if many else args[0])
        for step in self.pixel_steps + self.row_steps:
            key = ("weights", step.output.key)
            globals_[key] = step.rule.prepare() if weights is None else weights[key]
        caches = {}
        for key, aux in self.cache_keys():
            t = self.by_key[key]
            top, bottom, left, right = t.pad
            caches[(key, aux)] = tf.zeros((batch, t.height + top + bottom, t.width + left + right, t.depth),
                                          t.dtype)
        return Values(self, caches, globals_)

    def rows(self, values, image_row):
        """Compute every row-phase row that becomes final at the start of `image_row`.

        Consecutive steps with the same schedule share one `tf.cond`, and a schedule that
        finalises a row at every image row needs none: a cond per layer made PixelCNN++'s
        graph ~500 conds (1,000 functions), slow to trace, save, load and convert.
        """
        steps = sorted(self.row_steps, key=lambda step: step.rule.rows_together is None)  # see `run_rows`
        for run in _runs(steps, lambda step: (step.most, step.first.tobytes(), step.stop.tobytes())):
            first, stop = run[0].first, run[0].stop
            for k in range(run[0].most):
                row = tf.gather(first, image_row) + k
                keys = [key for step in run for key in [(step.output.key, None)] + [
                    (step.output.key, name) for name in step.rule.aux]]

                def compute(row=row, run=run, keys=keys):
                    trial = values.fork()
                    for step, value in run_rows(run, trial, row):
                        trial.write(step.output, row, 0, value)
                    return [trial.caches[key] for key in keys]

                if np.all(stop - first > k):  # a row at every image row
                    updated = compute()
                else:
                    updated = tf.cond(row < tf.gather(stop, image_row), compute,
                                      lambda keys=keys: [values.caches[key] for key in keys])
                values.caches.update(zip(keys, updated))

    def _pixels_on_grid(self, values, run, image_row, image_col):
        """Compute down-sampled tensors (`run`, one factor) at the steps of their grid, keep them at the others.

        The cond returns only the new pixels, and the cache writes happen outside it: a cond
        that returns whole caches makes XLA copy them at every step (3.4x slower sampling of
        PixelCNN++ at batch 16 on CPU).
        """
        factor = run[0].output.factor
        row, col = coarse(image_row, factor), coarse(image_col, factor)
        kept = [step for step in run if step.output.cached]  # the others are read inside the run only
        keys = [(step.output.key, None) for step in kept]
        on_grid = tf.logical_and(image_row % factor == 0, image_col % factor == 0)

        def computed():
            trial = values.fork()
            for step in run:  # later steps of the run read the earlier ones' new pixels
                trial.write(step.output, row, col, step.rule.pixel(trial, row, col))
            return trial

        if keys and all(key in values.origins for key in keys):
            # Bands (no XLA): the cond writes them and returns them, untouched off the grid. Returning
            # the new pixels instead read each one back and wrote it again at every pixel step.
            updated = tf.cond(on_grid, lambda: [computed().caches[key] for key in keys],
                              lambda: [values.caches[key] for key in keys])
            values.caches.update(zip(keys, updated))
            return

        def fresh():
            trial = computed()
            return [tf.cast(trial.at(step.output, row, col), values.caches[key].dtype) for step, key in zip(kept, keys)]

        news = tf.cond(on_grid, fresh, lambda: [values.at(step.output, row, col) for step in kept])
        for step, value in zip(kept, news):
            values.write(step.output, row, col, value)

    def pixel(self, values, image_row, image_col, steps=None, grid=None):
        """Compute pixel-phase tensors (all, or `steps`) at image pixel `(image_row, image_col)`.

        `grid`: `{factor: whether its grid holds this pixel}` where known as the graph is built
        (`sampler._pixel_grid`); a factor at None, or `grid` None, puts its runs in `tf.cond`s.

        Returns:
            The model output at that pixel, `(B, P)`.
        """
        steps = self.pixel_steps if steps is None else steps
        for run in self._grid_runs(steps):
            factor = run[0].output.factor
            on_grid = True if factor == 1 else None if grid is None else grid[factor]
            if on_grid is not None:  # known as the graph is built: computed here, or not
                row, col = coarse(image_row, factor), coarse(image_col, factor)
                for step in run if on_grid else []:
                    values.write(step.output, row, col, step.rule.pixel(values, row, col))
                continue
            if not run[0].rule.aux:
                self._pixels_on_grid(values, run, image_row, image_col)
                continue
            (step,) = run  # a down-sampled layer with state besides its output (none has any yet)
            keys = ([(step.output.key, None)] if step.output.cached else []) + [
                (step.output.key, name) for name in step.rule.aux]

            def compute(step=step, keys=keys):
                trial = values.fork()
                row, col = image_row // factor, image_col // factor
                trial.write(step.output, row, col, step.rule.pixel(trial, row, col))
                return [trial.caches[key] for key in keys]

            on_grid = tf.logical_and(image_row % factor == 0, image_col % factor == 0)
            updated = tf.cond(on_grid, compute, lambda keys=keys: [values.caches[key] for key in keys])
            values.caches.update(zip(keys, updated))
        return values.at(self.output, image_row, image_col)
