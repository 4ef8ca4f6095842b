"""Counter-based sampling noise: uniforms that are a pure function of a seed and a position.

Every sampler (naive, cached, the exported SavedModel and TFLite graphs) draws
its images from the same noise, so they agree image for image. The noise is
an integer hash of `(seed, index, position)` computed with 32-bit unsigned
multiply, xor and shift, which TensorFlow and TFLite's builtin kernels (and
numpy) compute bit for bit alike. `tf.random.stateless_uniform` would be the
usual choice, but TFLite has no builtin for it.

The mixing function is Chris Wellons' `lowbias32` integer hash, a bijection of
32-bit words with low avalanche bias; the 24 high bits of each hashed counter
give a float32 uniform in (0, 1).

Reference:
    C. Wellons, "Prospecting for Hash Functions" (2018), lowbias32.
"""

import numpy as np
import tensorflow as tf

NOISE_SEED_LIMIT = 2**32  # seeds and image indices are 32-bit words

_U32 = tf.uint32
_KEY_CONSTANTS = (0x9E3779B9, 0x85EBCA6B)  # decorrelate the two words of a seed pair


def _mix(x):
    """lowbias32: a bijective 32-bit integer hash (uint32 tensor in, uint32 out)."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, _U32)))
    x = x * tf.constant(0x7FEB352D, _U32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(15, _U32)))
    x = x * tf.constant(0x846CA68B, _U32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, _U32)))


def _word(x):
    """The low 32 bits of an integer tensor as uint32 (int64 -> int32 -> uint32 keeps the bits)."""
    x = tf.convert_to_tensor(x)
    if x.dtype == tf.int64:
        x = tf.cast(x, tf.int32)
    return tf.cast(x, _U32)


def uniform_noise(seeds, indices, shape):
    """Uniform float32 noise `(B,) + shape` in (0, 1); row b is a pure function of `(seeds[b], indices[b])`.

    Args:
        seeds: integer `(B,)` seeds, used modulo 2**32.
        indices: integer `(B,)` image indices within a sampling run, modulo 2**32.
        shape: static shape of one image's noise, e.g. `(H, W, C, 256)`.

    Returns:
        float32 tensor `(B,) + shape`, values in [2**-25, 1 - 2**-25].
    """
    first, second = _KEY_CONSTANTS
    key = _mix(_word(seeds) ^ _mix(_word(indices) ^ tf.constant(first, _U32)))  # (B,)
    key2 = _mix(key ^ tf.constant(second, _U32))
    count = int(np.prod(shape))
    counters = tf.cast(tf.range(count), _U32)  # (N,); TF has no uint32 range kernel
    # Two rounds, keyed by two words: streams of different keys are not shifted copies of each other.
    bits = _mix(_mix(counters[None, :] ^ key[:, None]) ^ key2[:, None])  # (B, N)
    # 24 high bits -> float32 exactly, centred in their interval: never 0 or 1.
    uniform = (tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, _U32)), tf.float32) + 0.5) * (1.0 / 2**24)
    # (B, N) -> (B,) + shape
    return tf.reshape(uniform, tf.concat([tf.shape(key), tf.constant(shape, tf.int32)], axis=0))
