"""Incremental rule of `CausalAttention`: the new pixel's query against the cached keys and values.

The keys and values are the outputs of the 1x1 convolutions before the layer,
which the engine computes at the new pixel only and keeps in their caches: the
caches grow by one position per pixel step. The attention step reads them all
(at most H*W positions: O(N) reads per pixel, not a pass of the model) and masks
the positions at or after the current pixel, as the layer's strict mask does.

Registered with `rules.register_rule` on import (`incremental` imports this module).
"""

import numpy as np
import tensorflow as tf

from keras_pixelcnn.layers.attention import CausalAttention, masked_softmax
from keras_pixelcnn.sampling.rules import NotCacheable, _copy_shape, _Rule, register_rule


class _CausalAttention(_Rule):
    """Output `(r, c)` from the query at `(r, c)` and the keys and values of the pixels before it.

    Keys and values are read as one window of H rows ending at row r (the caches
    are padded H - 1 rows on top, so the window is the same size at every row and,
    without XLA, the band of the current row holds it): window position `t`
    (raster order in the window) is image pixel `t - (H - 1 - r) * W`, so the
    pixels before `(r, c)` are the `t` in `[(H - 1 - r) * W, (H - 1) * W + c)`.
    """

    def plan(self):
        query, keys, values = self.inputs
        for t in self.inputs:
            if t.phase not in ("pixel", "image") or t.factor != 1:
                raise NotCacheable(f"CausalAttention {self.layer.name!r} must read full-resolution pixel tensors")
        for t in (keys, values):
            t.need_pad(top=t.height - 1)
        _copy_shape(self.output, query, "pixel")

    def reads_current(self):
        # Keys and values are read at earlier pixels only; every output feature mixes every query feature.
        touched = self.inputs[0].current.any(axis=0)
        return np.broadcast_to(touched, (self.output.depth, len(touched))).copy()

    def pixel(self, values, row, col):
        layer = self.layer
        query, keys, vals = self.inputs
        heads, height, width = layer.num_heads, query.height, query.width
        q = values.at(query, row, col)
        # (B, H, W, h * d) -> (B, N, h, d)
        k, v = (tf.reshape(values.window(t, row - (height - 1), height, 0, width), (-1, height * width, heads,
                                                                                   t.depth // heads))
                for t in (keys, vals))
        # (B, h * d) -> (B, h, d)
        q = tf.reshape(q, (-1, heads, query.depth // heads))
        # (B, h, d) x (B, N, h, d) -> (B, h, N)
        logits = tf.einsum("bhd,bnhd->bhn", q, k) * tf.cast(1.0 / np.sqrt(query.depth // heads), q.dtype)
        positions = tf.range(height * width)
        allowed = tf.logical_and(positions >= (height - 1 - row) * width, positions < (height - 1) * width + col)
        weights = masked_softmax(logits, allowed)
        # (B, h, N) x (B, N, h, dv) -> (B, h, dv) -> (B, h * dv): pixel steps compute on matrices
        out = tf.einsum("bhn,bnhd->bhd", weights, v)
        return tf.reshape(out, (-1, vals.depth))


register_rule(CausalAttention, lambda layer: _CausalAttention)
