"""The caches of one run of the cached sampler, and how a layer's rule reads and writes them.

`incremental.Plan` makes and schedules them; `sampling/rules.py` reads windows
and writes pixels or rows through `Values`.
"""

import contextlib
import threading

import numpy as np
import tensorflow as tf


def update_slice(tensor, update, start):
    """`tensor` with `update` written at `start` (one index per axis, the update a block of every image).

    XLA's DynamicUpdateSlice, which the TFLite converter turns into its builtin
    DYNAMIC_UPDATE_SLICE: one copy of the tensor at most, where a scatter becomes a
    SCATTER_ND, a mask and a blend over the whole tensor (three passes). TensorFlow has no
    kernel for it outside XLA, so a graph that writes this way is only converted, or compiled.
    """
    from tensorflow.compiler.tf2xla.ops import gen_xla_ops  # TensorFlow's wrapper of the XLA op (not in tf.raw_ops)

    return gen_xla_ops.xla_dynamic_update_slice(tensor, update, index_vector(start))


WRITES = ("scatter", "slice", "strided")  # how `Values` writes a cache (`incremental.Plan`)


def strided_update(tensor, update, start):
    """`tensor` with `update` written at `start` (indices of the axes after the batch) in every image.

    A TensorStridedSliceUpdate, which TensorFlow's executor runs in place when nothing else
    holds the tensor's buffer (its kernel takes over its input), and copies otherwise. A
    `tensor_scatter_nd_update` copied the whole tensor at every write in a TF 2.21 loop
    (`benchmarks/executor_writes.py`: its time grows with the buffer, this one's does not).
    So a pixel write costs a pixel, not its band, and a row written back costs a row, not
    the cache.

    `update` is a block `(B, ...)` of the tensor's rank (its sizes static or read at run time), or
    a point: `(B,) + tensor.shape[1 + len(start):]`, the axes `start` indexes dropped (no
    reshape to a block, and no end index to compute).
    """
    rank, point = tensor.shape.rank, update.shape.rank < tensor.shape.rank
    expected = rank - len(start) if point else rank
    if update.shape.rank != expected or len(start) >= rank:
        raise ValueError(f"strided_update: an update of shape {update.shape} does not fit a tensor of shape "
                         f"{tensor.shape} at {len(start)} indices (a block of rank {rank}, or a point of rank "
                         f"{rank} - {len(start)})")
    begin = index_vector([0] + list(start) + [0] * (rank - 1 - len(start)))
    if point:  # the indexed axes shrink (their end is ignored); the batch and trailing axes are whole
        end = index_vector([0] * rank)
        whole = 1 | sum(1 << axis for axis in range(1 + len(start), rank))
        shrink = sum(1 << axis for axis in range(1, 1 + len(start)))
    else:
        # a size the trace left unknown (a row of PixelCNN++'s with a free batch) is read at run time
        sizes = [tf.shape(update)[axis] if size is None else size for axis, size in enumerate(update.shape) if axis]
        end = index_vector([0] + [shifted(first, size) if isinstance(size, int) else first + size
                                  for first, size in zip(start, sizes)])
        whole, shrink = 1, 0
    return tf.raw_ops.TensorStridedSliceUpdate(input=tensor, begin=begin, end=end, strides=index_vector([1] * rank),
                                               value=tf.cast(update, tensor.dtype), begin_mask=whole,
                                               end_mask=whole, shrink_axis_mask=shrink)


_MEMO = threading.local()


@contextlib.contextmanager
def index_memo():
    """While a sampling loop is traced, each index (`shifted`, `coarse`, `index_vector`, `subpixel`'s
    bounds, a window's first row, a band write's indices) is made once per graph.

    The index arithmetic of the pixel steps repeats for every layer: made anew each time, it was
    40% of the nodes of the shipped PixelCNN++'s exported loop (19,516 nodes, 11,743 with the
    memo), and tracing, saving and converting an exported graph take time per node. The memo
    lives as long as the trace; each loop body and cond branch is a graph of its own.
    """
    previous = getattr(_MEMO, "graphs", None)
    _MEMO.graphs = {}
    try:
        yield
    finally:
        _MEMO.graphs = previous


def _once_per_graph(key, make):
    """`make()`, or in `index_memo` the tensor it made before in this graph for `key`."""
    graphs = getattr(_MEMO, "graphs", None)
    graph = tf.compat.v1.get_default_graph()
    # Only in a function's graph: a TF1 graph's control-flow contexts share one graph.
    if graphs is None or not getattr(graph, "building_function", False):
        return make()
    memo = graphs.setdefault(graph, {})
    if key not in memo:
        memo[key] = make()
    return memo[key]


def _key(value):
    return ("int", value) if isinstance(value, (int, np.integer)) else ("tensor", value.ref())


def shifted(index, offset, scale=1):
    """`index * scale + offset` for an int32 scalar or Python int `index`, each made once per graph."""
    if isinstance(index, (int, np.integer)):
        return int(index) * scale + offset
    if scale != 1:
        index = _once_per_graph(("scale", _key(index), scale), lambda: index * scale)
    if offset == 0:
        return index
    return _once_per_graph(("shift", _key(index), offset), lambda: index + offset)


def coarse(index, factor):
    """`index // factor` on a grid `factor` times coarser: no op for a factor of 1, else one per graph."""
    if factor == 1:
        return index
    if isinstance(index, (int, np.integer)):
        return index // factor
    return _once_per_graph(("coarse", _key(index), factor), lambda: index // factor)


def index_vector(parts):
    """`tf.stack(parts)` (int32 scalars and Python ints), made once per graph."""
    parts = [int(p) if isinstance(p, (int, np.integer)) else p for p in parts]
    if all(isinstance(p, int) for p in parts):
        return _once_per_graph(("constant", tuple(parts)), lambda: tf.constant(parts, tf.int32))
    return _once_per_graph(("stack",) + tuple(_key(p) for p in parts), lambda: tf.stack(parts))


def subpixel(tensor, row, col, channel):
    """`tensor[:, row, col, channel]`, its begin and end vectors made once per graph (`index_vector`)."""
    begin = index_vector([0, row, col, channel])
    end = index_vector([0, shifted(row, 1), shifted(col, 1), channel + 1])
    # begin_mask 1: every image; shrink_axis_mask 14: drop the row, column and channel axes
    return tf.strided_slice(tensor, begin, end, index_vector([1, 1, 1, 1]), begin_mask=1, end_mask=1,
                            shrink_axis_mask=14)


class Values:
    """The caches of one sampling run: a padded `(B, h + pad, w + pad, K)` tensor per tensor.

    Functional: `write_*` replace a cache; `Plan` threads `as_list()` through
    the `tf.while_loop`s. Inside an image row of a banded loop (`Plan.open_bands`), each
    pixel-by-pixel tensor is a *band* instead: its rows from the highest one a
    layer reads (`pad` top) down to the current row, `origins[key]` the padded
    index of its first row. A pixel write then costs at most a band (a few rows), not the
    cache: a TFLite write copies what it writes into, and so does a scatter without XLA.
    The SavedModel's strided updates write in place, so its loop keeps whole caches.
    """

    def __init__(self, plan, caches, globals_, current=None, origins=None, batch_index=None):
        self.plan, self.caches, self.globals = plan, dict(caches), globals_
        self.current = dict(current or {})  # transient tensors at the current pixel
        self.origins = origins or {}  # band keys -> padded row of the band's first row
        # bands: {n: int32 `(B, n)` rows `[b, 0, ...]`}, the batch part of a pixel write's n indices
        self.batch_index = batch_index

    def with_batch_index(self, batch):
        """This `Values` with `batch_index` for `batch` images, made once per pixel step (for band scatters;
        nothing for the other writes, which need no per-image indices)."""
        if self.plan.slice_writes or self.plan.strided_writes:
            return self
        images = tf.range(batch)[:, None]
        self.batch_index = {n: images * tf.constant([[1] + [0] * (n - 1)]) for n in (3, 4)}
        return self

    def weights(self, rule):
        """`rule.prepare()`'s tensors, made by `Plan.initial` before the sampling loops."""
        return self.globals[("weights", rule.output.key)]

    def fork(self):
        """A copy to write into (a branch of a `tf.cond`), sharing the tensors."""
        return Values(self.plan, self.caches, self.globals, self.current, self.origins, self.batch_index)

    def window(self, tensor, row, rows, col, cols, aux=None):
        """Rows `row .. row+rows-1`, columns `col .. col+cols-1` of a cache (zeros outside the image)."""
        top, _, left, _ = tensor.pad
        key = (tensor.key, aux)
        cache = self.caches[key]
        # Static sizes: a -1 size with a computed begin makes XLA pad the cache every step
        # (the batch is static under XLA; an exported graph with a free batch size takes -1).
        batch = -1 if cache.shape[0] is None else cache.shape[0]
        origin = self.origins.get(key, 0)  # a band's first row: a tensor inside a row's loop
        if isinstance(origin, (int, np.integer)):
            first = shifted(row, top - origin)
        else:
            below = shifted(row, top)
            first = _once_per_graph(("minus", _key(below), _key(origin)), lambda: below - origin)
        begin = index_vector([0, first, shifted(col, left), 0])
        return tf.slice(cache, begin, index_vector([batch, rows, cols, cache.shape[3]]))

    def at(self, tensor, row, col):
        """The features `(B, K)` of one pixel: pixel steps compute on matrices, not `(B, 1, 1, K)`
        (a reshape to a matmul and back per layer were a tenth of an exported step's ops)."""
        if tensor.phase == "global":
            value = self.globals[tensor.key]
            # labels' (B, 1, 1, K) -> (B, K)
            return tf.reshape(value, (-1, value.shape[-1])) if value.shape.rank == 4 else value
        if not tensor.cached:
            return self.current[tensor.key]
        return self.vector(tensor, row, col)

    def vector(self, tensor, row, col, aux=None):
        """Pixel `(row, col)` of a cache, `(B, K)`."""
        # (B, 1, 1, K) -> (B, K)
        window = self.window(tensor, row, 1, col, 1, aux)
        return tf.reshape(window, (-1, window.shape[-1]))

    def whole(self, tensor):
        """A cache's image part `(B, h, w, K)`: final up to the row before the current one.

        Inside an image row of a banded loop it is the cache as the row opened (`Plan.open_bands`,
        for tensors marked `whole`), so reading it copies nothing and the pixel writes go to
        the band; the current row is read from the band (`window`). With whole caches it is the
        cache being written: the rows at and below the current one are masked by its reader.
        """
        top, _, left, _ = tensor.pad
        cache = self.caches.get((tensor.key, "whole"), self.caches[(tensor.key, None)])
        batch = -1 if cache.shape[0] is None else cache.shape[0]
        # static begin and size: the whole unpadded cache is the input itself (no copy)
        return tf.slice(cache, [0, top, left, 0], [batch, tensor.height, tensor.width, cache.shape[3]])

    def row(self, tensor, row):
        if tensor.phase == "global":
            return self.globals[tensor.key]
        return self.window(tensor, row, 1, 0, tensor.width)

    def write(self, tensor, row, col, value, aux=None):
        """Store `value` `(B, rows, cols, K)` with its top-left at `(row, col)`, or one pixel `(B, K)`.

        In a band only one pixel of the current row is written.
        """
        if not tensor.cached:
            self.current[tensor.key] = value
            return
        key = (tensor.key, aux)
        cache = self.caches[key]
        top, _, left, _ = tensor.pad
        if key in self.origins:  # the band's current row is its row `top`
            self.caches[key] = self._write_band(cache, [top, shifted(col, left)], tf.cast(value, cache.dtype))
            return
        if self.plan.strided_writes:  # a block, or a point (B, K) at [row, col]
            start = [shifted(row, top), shifted(col, left)] + ([0] if value.shape.rank == 4 else [])
            self.caches[key] = strided_update(cache, value, start)
            return
        if value.shape.rank == 2:  # one pixel: (B, K) -> (B, 1, 1, K)
            value = value[:, None, None]
        if self.plan.slice_writes:
            start = [0, shifted(row, top), shifted(col, left), 0]
            self.caches[key] = update_slice(cache, tf.cast(value, cache.dtype), start)
            return
        dynamic = tf.shape(value)
        batch, rows, cols = (dynamic[i] if value.shape[i] is None else value.shape[i] for i in range(3))
        shape = index_vector([batch, rows, cols])

        def along(axis, size, first):  # `first + [0, size)` along `axis` of (B, rows, cols)
            layout = [1, 1, 1]
            layout[axis] = -1
            return _once_per_graph(("grid axis", _key(shape), _key(first), axis), lambda: tf.broadcast_to(
                tf.reshape(tf.range(size) if isinstance(first, int) and first == 0 else tf.range(size) + first, layout),
                shape))

        # indices (B, rows, cols, 3) of [b, y, x] in the padded cache, shared by writes of one shape and place
        parts = (along(0, batch, 0), along(1, rows, shifted(row, top)), along(2, cols, shifted(col, left)))
        indices = _once_per_graph(("grid",) + tuple(_key(part) for part in parts), lambda: tf.stack(parts, axis=-1))
        self.caches[key] = tf.tensor_scatter_nd_update(cache, indices, tf.cast(value, cache.dtype))

    def write_row(self, key, padded, row):
        """Store `row` `(B, w + pad, K)` as padded row `padded` of the whole cache `key`."""
        cache = self.caches[key]
        if self.plan.slice_writes:  # (B, w + pad, K) -> (B, 1, w + pad, K)
            self.caches[key] = update_slice(cache, row[:, None], [0, padded, 0, 0])
        elif self.plan.strided_writes:
            self.caches[key] = strided_update(cache, row[:, None], [padded, 0, 0])
        else:
            batch = tf.shape(row)[0]  # indices (B, 2) of [b, padded row]
            indices = tf.stack([tf.range(batch), tf.fill([batch], padded)], axis=1)
            self.caches[key] = tf.tensor_scatter_nd_update(cache, indices, row)

    def write_channel(self, tensor, row, col, channel, value):
        """Store `value` `(B,)` as feature `channel` of pixel `(row, col)`."""
        top, _, left, _ = tensor.pad
        key = (tensor.key, None)
        if key in self.origins:
            self.caches[key] = self._write_band(self.caches[key], [top, shifted(col, left), channel], value)
            return
        if self.plan.strided_writes:  # a point (B,) at [row, col, channel]
            self.caches[key] = strided_update(self.caches[key], value, [shifted(row, top), shifted(col, left), channel])
            return
        batch = tf.shape(value)[0]
        # indices (B, 4) of [b, y, x, channel]
        position = index_vector([shifted(row, top), shifted(col, left), channel])
        indices = tf.concat([tf.range(batch)[:, None], tf.tile(position[None], (batch, 1))], axis=1)
        self.caches[key] = tf.tensor_scatter_nd_update(self.caches[key], indices, value)

    def _write_band(self, band, position, value):
        """`band` with `value` (`(B, K)` or `(B,)`) at `[b] + position` for each image b.

        With `Plan.strided_writes` (the SavedModel), a TensorStridedSliceUpdate in place
        (`strided_update`); with `Plan.slice_writes` (graphs for TFLite), a DynamicUpdateSlice
        (`update_slice`), one copy of the band; else a scatter, which XLA updates in place and the
        executor copies. A `tf.where` over a mask broadcast to the band cost 3x a scatter at 16 images.
        """
        if self.plan.slice_writes:  # (B, K) -> (B, 1, 1, K); (B,) -> (B, 1, 1, 1) at the channel
            block = tf.reshape(value, (-1, 1, 1, value.shape[-1] if value.shape.rank == 2 else 1))
            return update_slice(band, block, [0] + position + [0] * (3 - len(position)))
        if self.plan.strided_writes:  # a point: (B, K) at [row, col], (B,) at [row, col, channel]
            return strided_update(band, value, position)
        # indices (B, 1 + len(position)): [b, row, col(, channel)]
        images, offset = self.batch_index[1 + len(position)], index_vector([0] + position)
        indices = _once_per_graph(("band indices", _key(images), _key(offset)), lambda: images + offset)
        return tf.tensor_scatter_nd_update(band, indices, value)
