"""The counter-based sampling noise: the lowbias32 hash as specified, uniform, and a pure function of its key."""

import numpy as np
import tensorflow as tf

from keras_pixelcnn.sampling.noise import uniform_noise


def _lowbias32(x):
    """Reference lowbias32 on numpy uint32 (wrapping multiply)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def _reference(seed, index, count):
    """The noise of one image, computed in numpy from the formula in keras_pixelcnn.sampling.noise."""
    with np.errstate(over="ignore"):
        key = _lowbias32(np.uint32(seed) ^ _lowbias32(np.uint32(index) ^ np.uint32(0x9E3779B9)))
        key2 = _lowbias32(key ^ np.uint32(0x85EBCA6B))
        bits = _lowbias32(_lowbias32(np.arange(count, dtype=np.uint32) ^ key) ^ key2)
    return ((bits >> np.uint32(8)).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-24)


def test_noise_matches_the_numpy_reference_bit_for_bit():
    seeds = np.array([0, 1, 2**31 + 7, 2**32 - 1], np.int64)
    indices = np.array([0, 5, 3, 2**32 - 1], np.int64)
    noise = uniform_noise(tf.constant(seeds), tf.constant(indices), (3, 4, 2, 8)).numpy()
    assert noise.shape == (4, 3, 4, 2, 8) and noise.dtype == np.float32
    for b in range(4):
        np.testing.assert_array_equal(noise[b].ravel(), _reference(seeds[b], indices[b], 3 * 4 * 2 * 8))


def test_noise_is_uniform_and_each_image_depends_on_its_own_key_only():
    seeds = np.arange(4, dtype=np.int64)
    noise = uniform_noise(seeds, np.zeros(4, np.int64), (256, 256)).numpy()
    values = noise.ravel()
    assert 0.0 < values.min() and values.max() < 1.0
    # Kolmogorov-Smirnov distance to U(0, 1) over 262,144 draws: about 0.0027 at the 1% level.
    ordered = np.sort(values)
    ks = np.max(np.abs(ordered - np.arange(1, len(ordered) + 1) / len(ordered)))
    assert ks < 0.004, ks
    # Different keys give uncorrelated streams; the same key gives the same stream in any batch.
    correlation = np.corrcoef(noise.reshape(4, -1))
    assert np.max(np.abs(correlation[~np.eye(4, dtype=bool)])) < 0.01
    alone = uniform_noise(seeds[2:3], np.zeros(1, np.int64), (256, 256)).numpy()
    np.testing.assert_array_equal(alone[0], noise[2])
    other_index = uniform_noise(seeds[2:3], np.ones(1, np.int64), (256, 256)).numpy()
    assert np.abs(np.corrcoef(other_index.ravel(), noise[2].ravel())[0, 1]) < 0.01
