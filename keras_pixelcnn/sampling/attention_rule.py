"""Incremental rule of `CausalAttention`: the new pixel's query against the cached keys and values.

The keys and values are the outputs of the 1x1 convolutions before the layer,
which the engine computes at the new pixel only and keeps in their caches: the
caches grow by one position per pixel step. The attention step reads them all
(H*W + W positions: O(N) reads per pixel, not a pass of the model) and masks
the positions at or after the current pixel, as the layer's strict mask does.

Registered with `rules.register_rule` on import (`incremental` imports this module).
"""

import numpy as np
import tensorflow as tf

from keras_pixelcnn.layers.attention import CausalAttention, masked_softmax
from keras_pixelcnn.sampling.rules import NotCacheable, _copy_shape, _Rule, register_rule


class _CausalAttention(_Rule):
    """Output `(r, c)` from the query at `(r, c)` and the keys and values of the pixels before it.

    The pixels before `(r, c)` are the rows above, read from the whole key and value caches
    (`Values.whole`), and the columns before `c` of row r, read from the current row. Inside
    an image row of a banded loop (TFLite) the whole caches are the caches as the row opened, passed into the
    column loop unchanged, and only the current row is a band that pixel writes go to: a band
    of all H rows made every TFLite (or scatter) write copy the whole key or value cache. The two parts share
    one softmax: their logits are concatenated, and the output adds their two weighted sums.
    The products take the form each path runs fastest (`_EinsumProducts` under XLA,
    `_BlockProducts` without it: bands, or the SavedModel's whole caches with strided writes).
    """

    def plan(self):
        query, keys, values = self.inputs
        for t in self.inputs:
            if t.phase not in ("pixel", "image") or t.factor != 1:
                raise NotCacheable(f"CausalAttention {self.layer.name!r} must read full-resolution pixel tensors")
        for t in (keys, values):
            t.whole = True
        _copy_shape(self.output, query, "pixel")

    def reads_current(self):
        # Keys and values are read at earlier pixels only; every output feature mixes every query feature.
        touched = self.inputs[0].current.any(axis=0)
        return np.broadcast_to(touched, (self.output.depth, len(touched))).copy()

    def pixel(self, values, row, col):
        layer = self.layer
        query, keys, vals = self.inputs
        heads, height, width = layer.num_heads, query.height, query.width
        # keys and values of the rows above (B, H * W, heads * d) and of the current row (B, W, heads * d)
        above = [tf.reshape(values.whole(t), (-1, height * width, t.depth)) for t in (keys, vals)]
        current = [tf.reshape(values.window(t, row, 1, 0, width), (-1, width, t.depth)) for t in (keys, vals)]
        q = values.at(query, row, col)
        allowed = tf.concat([tf.range(height * width) < row * width, tf.range(width) < col], axis=0)

        def attend(products):
            logits = tf.concat([products.logits(q, k, heads) for k in (above[0], current[0])], axis=-1)
            logits = logits * tf.cast(1.0 / np.sqrt(query.depth // heads), logits.dtype)
            weights = masked_softmax(logits, allowed)
            return (products.weighted(weights[..., :height * width], above[1], heads)
                    + products.weighted(weights[..., height * width:], current[1], heads))

        if values.plan.strided_writes:  # the SavedModel's executor: one image takes 2-D matmuls
            return tf.cond(tf.shape(q)[0] == 1, lambda: attend(_OneImageProducts), lambda: attend(_BlockProducts))
        # bands (TFLite): no XLA
        return attend(_BlockProducts if values.origins else _EinsumProducts)


class _EinsumProducts:
    """Per-head products as einsums over `(B, N, heads, d)`: XLA (whole caches, scatter writes) fuses
    their transposes; the fastest form there (0.22 s against 0.35 s for 28x28 PixelSNAIL at batch 1)."""

    @staticmethod
    def logits(q, k, heads):
        # (B, heads, d) x (B, N, heads, d) -> (B, heads, N)
        size = q.shape[-1] // heads
        return tf.einsum("bhd,bnhd->bhn", tf.reshape(q, (-1, heads, size)), tf.reshape(k, (-1, k.shape[1], heads, size)))

    @staticmethod
    def weighted(weights, v, heads):
        # (B, heads, N) x (B, N, heads, dv) -> (B, heads, dv) -> (B, heads * dv)
        out = tf.einsum("bhn,bnhd->bhd", weights, tf.reshape(v, (-1, v.shape[1], heads, v.shape[-1] // heads)))
        return tf.reshape(out, (-1, v.shape[-1]))


class _BlockProducts:
    """Per-head products as matmuls that read the key and value matrices `(B, N, heads * d)` as they lie.

    Without XLA (the exported samplers) an einsum over `(B, N, heads, d)`
    transposes the whole key or value cache at every step: 4.0 s against 2.8-2.9 s for 28x28 PixelSNAIL
    at batch 16. Each head's query is a row of zeros but for its own block, so the matmul computes
    every head against every block (heads times the arithmetic of the einsum) and keeps its own.
    """

    matmul = staticmethod(tf.matmul)  # (B, n, k) x (B, k, m), or x (B, m, k) with transpose_b

    @classmethod
    def logits(cls, q, k, heads):
        size = q.shape[-1] // heads
        # (B, heads * d) -> block rows (B, heads, heads * d): row h holds head h's query in block h
        rows = tf.reshape(tf.reshape(q, (-1, 1, heads, size)) * tf.constant(np.eye(heads)[:, :, None], q.dtype),
                          (-1, heads, heads * size))
        # (B, heads, heads * d) x (B, N, heads * d)^T -> (B, heads, N)
        return cls.matmul(rows, k, transpose_b=True)

    @classmethod
    def weighted(cls, weights, v, heads):
        # (B, heads, N) x (B, N, heads * dv) -> (B, heads, heads * dv): head h's output is block h of row h
        out = tf.reshape(cls.matmul(weights, v), (-1, heads, heads, v.shape[-1] // heads))
        out = tf.reduce_sum(out * tf.constant(np.eye(heads)[:, :, None], v.dtype), axis=2)
        return tf.reshape(out, (-1, v.shape[-1]))


class _OneImageProducts(_BlockProducts):
    """`_BlockProducts` for a batch of one image, as 2-D MatMuls: without XLA, oneDNN's BatchMatMuls
    are slow on one image's `(heads, N)` products (`benchmarks/executor_ops.py` times both)."""

    @staticmethod
    def matmul(a, b, transpose_b=False):
        # image 0 only: the cond in `_CausalAttention.pixel` takes this class for a batch of one alone
        return tf.matmul(a[0], b[0], transpose_b=transpose_b)[None]


register_rule(CausalAttention, lambda layer: _CausalAttention)
