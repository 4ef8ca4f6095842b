"""`CausalAttention`: multi-head dot-product attention of each pixel over the pixels before it.

Pixels are numbered in raster order. Output `p` is a softmax-weighted sum of the
values at the pixels `q < p` (strictly: the mask excludes the diagonal), weighted by
`softmax_q(query_p . key_q / sqrt(d))` per head. Keys and values may read their own
pixel `q` (all its channels: they are only read at later pixels); the query at `p`
must read only pixels before `p`, so the output at `p` does too. Pixel 0 has no
earlier pixel and gets zeros.

Queries, keys and values come in already projected (1x1 convolutions before this
layer), so the cached sampler keeps the projected keys and values of the pixels
drawn so far and adds one position per pixel.

Reference:
    Chen, Mishra, Rohaninejad, Abbeel. "PixelSNAIL: An Improved Autoregressive
    Generative Model", ICML 2018, section 3.
"""

import keras
import numpy as np
from keras import ops


def strict_causal_mask(positions):
    """Bools `(N, N)`: entry `[p, q]` is True when pixel `p` may attend to pixel `q`, i.e. `q < p`."""
    return np.tril(np.ones((positions, positions), bool), -1)


def masked_softmax(logits, mask):
    """Softmax over the last axis restricted to `mask`; a row with no True entry gives zeros.

    Masked entries contribute exactly nothing (not a tiny weight): the maximum is
    taken over the allowed entries only and the others are selected away before
    the exponential, so their logits can change without changing any bit of the
    result (the causality proofs in float64 rely on it), and no `inf` reaches a
    gradient.

    Args:
        logits: `(..., N)` floats.
        mask: bools broadcastable to `logits`.
    """
    lowest = ops.cast(-6e4 if keras.backend.standardize_dtype(logits.dtype) == "float16" else -1e9, logits.dtype)
    top = ops.max(ops.where(mask, logits, lowest), axis=-1, keepdims=True)
    exps = ops.where(mask, ops.exp(ops.where(mask, logits - top, ops.zeros_like(logits))), ops.zeros_like(logits))
    total = ops.sum(exps, axis=-1, keepdims=True)
    # A row with an allowed entry sums to >= 1 (its maximum gives exp(0)); an empty row to 0.
    return exps / ops.maximum(total, ops.ones_like(total))


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class CausalAttention(keras.layers.Layer):
    """Strictly causal multi-head attention over the pixels of an image.

    Args:
        num_heads: attention heads; the query/key and the value features split
            evenly between them.

    Input shape:
        `[queries, keys, values]`: `(B, H, W, num_heads * Dk)` twice and
        `(B, H, W, num_heads * Dv)`.

    Output shape:
        `(B, H, W, num_heads * Dv)`.

    Example:
        >>> q = k = v = keras.ops.ones((1, 2, 2, 4))
        >>> CausalAttention(2)([q, k, v]).shape
        (1, 2, 2, 4)
    """

    def __init__(self, num_heads, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_heads, int) or isinstance(num_heads, bool) or num_heads < 1:
            raise ValueError(f"Expected num_heads to be a positive int. Received: num_heads={num_heads!r}")
        self.num_heads = num_heads

    def build(self, input_shape):
        query_shape, key_shape, value_shape = input_shape
        if query_shape[-1] != key_shape[-1] or query_shape[-1] % self.num_heads or value_shape[-1] % self.num_heads:
            raise ValueError(
                f"Expected queries and keys of the same depth, it and the values' divisible by "
                f"num_heads={self.num_heads}. Received: shapes {list(map(tuple, input_shape))}")
        height, width = query_shape[1:3]
        self._mask = strict_causal_mask(height * width)

    def _split(self, x):
        # (B, H, W, h * d) -> (B, N, h, d)
        height, width, depth = x.shape[1:]
        return ops.reshape(x, (-1, height * width, self.num_heads, depth // self.num_heads))

    def call(self, inputs):
        # Half precision (mixed-precision training) overflows q.k and the softmax sums: compute in float32.
        wide = [x if keras.backend.standardize_dtype(x.dtype) not in ("float16", "bfloat16")
                else ops.cast(x, "float32") for x in inputs]
        queries, keys, values = (self._split(x) for x in wide)
        scale = ops.cast(1.0 / np.sqrt(queries.shape[-1]), queries.dtype)
        # (B, N, h, d) x (B, M, h, d) -> (B, h, N, M)
        logits = ops.einsum("bnhd,bmhd->bhnm", queries, keys) * scale
        weights = masked_softmax(logits, self._mask)
        # (B, h, N, M) x (B, M, h, dv) -> (B, N, h, dv) -> (B, H, W, h * dv)
        out = ops.einsum("bhnm,bmhd->bnhd", weights, values)
        height, width = inputs[0].shape[1:3]
        return ops.cast(ops.reshape(out, (-1, height, width, inputs[2].shape[-1])), inputs[2].dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (input_shape[2][-1],)

    def get_config(self):
        config = super().get_config()
        config["num_heads"] = self.num_heads
        return config
