"""Wavefront sampling: several pixels per step of the cached sampler, for graphs run without XLA.

A graph run by TensorFlow's executor (a SavedModel in TF Serving) pays for every op it runs, and
at batch 1 a pixel step is too small to pay for its ops: the cached sampler's PixelCNN ran ~200
ops per pixel for 784 pixels. A pixel only waits for the pixels its layers read: its left
neighbours and, in the rows above, at most `reach` columns to its right. Pixel `(r, c)` is
drawn at step `t = c + lag * r` with `lag = reach + 1`, so every pixel it reads was drawn at an
earlier step, and each step draws up to `ceil(W / lag)` pixels at once, one per row (its
*lanes*): PixelCNN's 28x28 images take 136 steps of 7 lanes instead of 784 steps of one pixel.
The lanes share the ops of a step the way the images of a batch do, and the draws are the same,
since every sub-pixel reads its own noise (`sampler.sampling_noise`).

The caches are *skewed*: row `r` of a tensor is stored `lag * r` columns to the right of where it
would be. A step's lanes then sit in one column of every cache, so a step writes each layer's
pixels with one TensorStridedSliceUpdate (in place in the executor) and reads each row of a
layer's window for all lanes with one slice. Lanes left or right of the image (at the
first and last steps, and right of the last column) compute on whatever their windows hold, and
write zeros.

Only models whose every tensor is computed pixel by pixel at full resolution by layers whose rules
know their reach (`wavefront_lag`: convolutions, pointwise layers, the Row LSTM) are sampled this
way: row-phase layers (a vertical stack, a right-to-left LSTM), down-sampled streams and
attention keep the pixel-by-pixel loop.
"""

import numpy as np
import tensorflow as tf

from keras_pixelcnn.distributions import gumbel_noise
from keras_pixelcnn.sampling.values import Values, _key, _once_per_graph, index_memo, index_vector


def wavefront_lag(plan):
    """The step lag between two rows, `reach + 1`, or None when `plan` needs the pixel-by-pixel loop.

    `reach`: the most columns right of its pixel that any layer reads, per row above
    (`rules._Rule.wavefront_reach`). Every tensor must be computed pixel by pixel at full resolution.
    """
    if plan.row_steps:
        return None
    reach = 0
    for step in plan.pixel_steps:
        own = step.rule.wavefront_reach() if step.output.factor == 1 else None
        if own is None:
            return None
        reach = max(reach, own)
    return reach + 1


class _Layout:
    """Where pixel `(r, c)` of a tensor lies in its skewed cache: row `r + top`, column
    `c + left + lag * (r + top)`. One layout for every cache (the widest padding), so that the
    reads and writes of all layers share their index vectors.

    A lane left or right of the image (`c < 0`, `c >= W`) lands left or right of its row's part of
    the cache: no other row's pixels, and within the cache's columns (every read and write of step
    `t` is at column `t + left + lag * top` plus a window's offset).
    """

    def __init__(self, tensors, lag, height, width):
        top, _, left, right = np.max([tensor.pad for tensor in tensors], axis=0)
        self.lag, self.top, self.left = lag, int(top), int(left)
        self.rows = self.top + height
        self.columns = self.left + width + int(right) + lag * (self.rows - 1)

    def offset(self, row, col):
        """`[0, row, column, 0]` of pixel `(row, col)` relative to lane 0's pixel `(r, c)` at step
        `t = c + lag * r`: the cache index is `[0, r, t, 0]` plus this."""
        padded = self.top + row
        return [0, padded, self.left + col + self.lag * padded, 0]


class _LaneValues(Values):
    """The skewed caches, read and written for all lanes of a step.

    The rules get `(0, 0)` for the step's pixel and read `(row, col)` relative to it: lane 0's
    pixel is `(r, c)`, lane j's `(r + j, c - lag * j)`, and `base` is `[0, r, c + lag * r, 0]`.
    A pixel's features are `(B * lanes, K)`, image b's lanes next to each other.
    """

    def __init__(self, plan, caches, globals_, layout, lanes, base, valid, current=None):
        super().__init__(plan, caches, globals_, current)
        self.layout, self.lanes, self.base, self.valid = layout, lanes, base, valid

    def fork(self):
        return _LaneValues(self.plan, self.caches, self.globals, self.layout, self.lanes, self.base, self.valid,
                           self.current)

    def _begin(self, row, col, channel=0):
        """The cache index of relative pixel `(row, col)`, one AddV2 per distinct place and graph."""
        offset = index_vector(self.layout.offset(row, col)[:3] + [channel])
        return _once_per_graph(("lane begin", _key(self.base), _key(offset)), lambda: self.base + offset)

    def _slice(self, cache, row, col, cols):
        """`(B, lanes, cols, K)`: row `row` and columns `col .. col + cols - 1` of every lane."""
        batch = -1 if cache.shape[0] is None else cache.shape[0]
        return tf.slice(cache, self._begin(row, col), index_vector([batch, self.lanes, cols, cache.shape[3]]))

    def window(self, tensor, row, rows, col, cols, aux=None):
        """`(B * lanes, rows, cols, K)`: each lane's window, one slice per window row."""
        cache = self.caches[(tensor.key, aux)]
        parts = [self._slice(cache, row + down, col, cols) for down in range(rows)]
        # rows x (B, lanes, cols, K) -> (B, lanes, rows, cols, K) -> (B * lanes, rows, cols, K)
        return tf.reshape(tf.stack(parts, axis=2), (-1, rows, cols, cache.shape[3]))

    def vector(self, tensor, row, col, aux=None):
        """Each lane's pixel `(row, col)`, `(B * lanes, K)`."""
        cache = self.caches[(tensor.key, aux)]
        # (B, lanes, 1, K) -> (B * lanes, K)
        return tf.reshape(self._slice(cache, row, col, 1), (-1, cache.shape[3]))

    def write(self, tensor, row, col, value, aux=None):
        """Store each lane's pixel `(B * lanes, K)` at relative `(row, col)`; lanes outside the image write zeros."""
        if not tensor.cached:
            self.current[tensor.key] = value
            return
        key = (tensor.key, aux)
        cache = self.caches[key]
        # (B * lanes, K) -> (B, lanes, 1, K)
        block = tf.reshape(tf.cast(value, cache.dtype), (-1, self.lanes, 1, value.shape[-1]))
        self._write_lanes(key, block, self._begin(row, col))

    def write_channel(self, tensor, row, col, channel, value):
        """Store channel `channel` of each lane's pixel, `(B * lanes,)`. The models read the image's
        neighbours through a float copy (a pointwise layer), so its padding is never read; it is kept
        at zeros all the same, for a layer that would read them."""
        # (B * lanes,) -> (B, lanes, 1, 1)
        self._write_lanes((tensor.key, None), tf.reshape(value, (-1, self.lanes, 1, 1)), self._begin(row, col, channel))

    def _write_lanes(self, key, block, begin):
        """Cache `key` with `block` `(B, lanes, 1, K)` written at `begin` (`[0, row, column, channel]`), in
        place (TensorStridedSliceUpdate, `values.strided_update`); lanes outside the image write zeros."""
        block = tf.where(self.valid, block, tf.zeros((), block.dtype))
        end = _once_per_graph(("lane end", _key(begin), block.shape[1:]),
                              lambda: begin + index_vector([0] + list(block.shape[1:])))
        self.caches[key] = tf.raw_ops.TensorStridedSliceUpdate(
            input=self.caches[key], begin=begin, end=end, strides=index_vector([1] * 4), value=block,
            begin_mask=1, end_mask=1)


def wavefront_loop(plan, lag, distribution, pick, weights=None):
    """The `tf.function` `run(noise, known, known_mask, labels, temperature, greedy)` of `sampler.cached_loop`,
    drawing `ceil(W / lag)` pixels per step (`lag` from `wavefront_lag`), for a graph run without XLA.

    Args:
        plan: the model's `incremental.Plan` with strided writes.
        lag: `wavefront_lag(plan)`.
        distribution: the model's pixel distribution.
        pick: `sampler._pick`, which draws a sub-pixel or keeps a known one.
        weights: `plan.frozen_weights()`, or None to read the model's weights in the graph.
    """
    height, width, channels = plan.shape
    lanes = min(-(-width // lag), height)
    steps = width + lag * (height - 1)
    keys = plan.cache_keys()
    layout = _Layout([plan.by_key[key] for key, _ in keys], lag, height, width)
    # pixel (r, c) of the image cache (its offset from pixel (0, 0), whose index is 0), flattened (rows * columns):
    # where the drawn images are read after the loop
    _, padded, column, _ = layout.offset(*np.meshgrid(np.arange(height), np.arange(width), indexing="ij"))
    drawn_at = (padded * layout.columns + column).reshape(-1)
    lane_index = np.arange(lanes, dtype=np.int32)

    def run(noise, known, known_mask, labels, temperature, greedy=False):
        with index_memo():  # each index once per graph
            return draw(noise, known, known_mask, labels, temperature, greedy)

    def draw(noise, known, known_mask, labels, temperature, greedy):
        batch = tf.shape(known)[0] if known.shape[0] is None else known.shape[0]
        start = plan.initial(batch, labels, weights)
        # (B, ...) -> (B * lanes, ...): label tensors per lane, image b's lanes next to each other
        globals_ = {key: value if isinstance(key, tuple) else tf.repeat(value, lanes, axis=0)
                    for key, value in start.globals.items()}
        caches = [tf.zeros((batch, layout.rows, layout.columns, start.caches[(key, aux)].shape[3]),
                           start.caches[(key, aux)].dtype) for key, aux in keys]
        temperature = tf.convert_to_tensor(temperature, tf.float32)
        if temperature.shape.rank:  # (B, 1) -> (B * lanes, 1); a scalar is every lane's
            temperature = tf.repeat(temperature, lanes, axis=0)
        # (B, H, W, C[, 256]) -> (B, H * W, C[, 256]): each step gathers its lanes' pixels
        per_pixel = [tf.reshape(tensor, (-1, height * width) + tuple(tensor.shape[3:]))
                     for tensor in (known, known_mask) + (() if greedy else (gumbel_noise(noise),))]

        def body(step, caches):
            # lane 0's pixel (row, col); lane j's is (row + j, col - lag * j). Every pixel (r, c) of step
            # t = c + lag * r lies in rows t // lag - lanes + 1 .. t // lag (c < lag * lanes), kept in the image
            row = tf.clip_by_value(step // lag - (lanes - 1), 0, height - lanes)
            lane_rows = row + lane_index
            lane_cols = step - lag * lane_rows
            inside = (lane_cols >= 0) & (lane_cols < width)
            base = tf.stack([0, row, step, 0])  # lane 0's [0, r, c + lag * r, 0]
            values = _LaneValues(plan, dict(zip(keys, caches)), globals_, layout, lanes, base,
                                 tf.reshape(inside, (1, lanes, 1, 1)))
            pixels = tf.clip_by_value(lane_rows * width + lane_cols, 0, height * width - 1)
            # (B, H * W, C[, 256]) -> (B, lanes, C[, 256]) -> (B * lanes, C[, 256])
            lane = [tf.reshape(tf.gather(tensor, pixels, axis=1), (-1,) + tuple(tensor.shape[2:]))
                    for tensor in per_pixel]
            params = plan.pixel(values, 0, 0)
            for channel in range(channels):
                if channel:  # only what reads the channel just drawn changes
                    params = plan.pixel(values, 0, 0, plan.after_channel[channel - 1])
                previous = values.vector(plan.image, 0, 0)
                value = pick(distribution, params, channel, None, previous, lane[0][:, channel], lane[1][:, channel],
                             temperature, greedy, None if greedy else lane[2][:, channel])
                values.write_channel(plan.image, 0, 0, channel, value)
            plan.pixel(values, 0, 0, plan.after_channel[channels - 1])
            return step + 1, [values.caches[key] for key in keys]

        caches = tf.while_loop(lambda step, _: step < steps, body, (tf.constant(0), caches))[1]
        # (B, rows, columns, C) -> (B, rows * columns, C) -> (B, H * W, C) -> (B, H, W, C)
        flat = tf.reshape(caches[keys.index((plan.image.key, None))], (-1, layout.rows * layout.columns, channels))
        return tf.reshape(tf.gather(flat, drawn_at, axis=1), (-1, height, width, channels))

    return tf.function(run, autograph=False)
