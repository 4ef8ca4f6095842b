"""DiscretizedLogisticMixture: normalised, consistent, equal to a direct mixture, stable."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_pixelcnn as kp
from keras_pixelcnn.distributions import DISTRIBUTIONS, PixelDistribution
from keras_pixelcnn.distributions.logistic_mixture import DiscretizedLogisticMixture

K = 4


def _params(rng, shape, channels, num_mix=K, scale=1.0):
    """Random parameters `shape + (P,)` with log-scales in a realistic range."""
    params = rng.normal(0.0, scale, shape + (DiscretizedLogisticMixture.num_params(channels, num_mix),))
    log_scales = params[..., num_mix + channels * num_mix:num_mix + 2 * channels * num_mix]
    log_scales[...] = rng.uniform(-5.0, 0.0, log_scales.shape)
    return params


def _numpy_pixel_log_likelihood(params, pixel, channels, num_mix=K):
    """log sum_k pi_k prod_c P(x_c | k, x_<c), straight from the paper's definitions."""
    logits = params[:num_mix]
    means = params[num_mix:num_mix + channels * num_mix].reshape(channels, num_mix)
    log_scales = params[num_mix + channels * num_mix:num_mix + 2 * channels * num_mix].reshape(channels, num_mix)
    x = pixel / 127.5 - 1.0
    if channels == 3:
        a, b, g = np.tanh(params[num_mix + 2 * channels * num_mix:].reshape(3, num_mix))
        means = means + np.stack([0 * a, a * x[0], b * x[0] + g * x[1]])
    s = np.exp(np.clip(log_scales, -7.0, 7.0))
    cdf = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    plus = np.where(pixel[:, None] == 255, np.inf, (x[:, None] + 1 / 255 - means) / s)
    minus = np.where(pixel[:, None] == 0, -np.inf, (x[:, None] - 1 / 255 - means) / s)
    # P(minus < z < plus), from the nearer tail so that float64 does not cancel
    mass = np.where(x[:, None] < means, cdf(plus) - cdf(minus), cdf(-minus) - cdf(-plus))
    pi = np.exp(logits - logits.max())
    pi /= pi.sum()
    return np.log(np.sum(pi * np.prod(mass, axis=0)))


def test_num_params_and_registry():
    assert DiscretizedLogisticMixture.num_params(3, 10) == 100
    assert DiscretizedLogisticMixture.num_params(1, 10) == 30
    assert DISTRIBUTIONS["logistic_mixture"] is DiscretizedLogisticMixture
    layer = PixelDistribution("logistic_mixture", 3, options={"num_mix": 5})
    assert layer.get_distribution().num_mix == 5
    assert kp.DiscretizedLogisticMixture is DiscretizedLogisticMixture


@pytest.mark.parametrize("channels", [1, 3])
def test_each_channel_pmf_sums_to_one(channels):
    rng = np.random.default_rng(0)
    dist = DiscretizedLogisticMixture(channels, K)
    params = _params(rng, (6,), channels, scale=2.0)
    previous = rng.integers(0, 256, (6, channels))
    for channel in range(channels):
        log_p = ops.convert_to_numpy(dist.channel_log_probs(params, channel, previous))
        assert log_p.shape == (6, 256)
        np.testing.assert_allclose(np.logaddexp.reduce(log_p, axis=-1), 0.0, atol=1e-12)


@pytest.mark.parametrize("channels", [1, 3])
def test_log_prob_equals_channel_log_probs(channels):
    rng = np.random.default_rng(1)
    dist = DiscretizedLogisticMixture(channels, K)
    params = _params(rng, (2, 3, 3), channels)
    images = rng.integers(0, 256, (2, 3, 3, channels))
    log_p = ops.convert_to_numpy(dist.log_prob(params, images)).reshape(-1, channels)
    pixels = images.reshape(-1, channels)
    flat = params.reshape(len(pixels), -1)
    for channel in range(channels):
        # a scalar tensor channel, as in the samplers' tf.while_loop
        for index in (channel, tf.constant(channel)):
            table = ops.convert_to_numpy(dist.channel_log_probs(flat, index, pixels))
            np.testing.assert_allclose(table[np.arange(len(pixels)), pixels[:, channel]], log_p[:, channel],
                                       rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("channels", [1, 3])
def test_pixel_log_likelihood_equals_direct_mixture(channels):
    rng = np.random.default_rng(2)
    dist = DiscretizedLogisticMixture(channels, K)
    params = _params(rng, (1, 4, 5), channels)
    images = rng.integers(0, 256, (1, 4, 5, channels))
    images[0, 0, 0] = 0  # both edge bins
    images[0, 0, 1] = 255
    total = ops.convert_to_numpy(dist.log_prob(params, images)).sum(axis=-1)
    expected = [[_numpy_pixel_log_likelihood(params[0, i, j], images[0, i, j], channels) for j in range(5)]
                for i in range(4)]
    np.testing.assert_allclose(total[0], expected, rtol=1e-9)


def test_channels_depend_on_earlier_values_only_through_the_coefficients():
    rng = np.random.default_rng(3)
    dist = DiscretizedLogisticMixture(3, K)
    params = _params(rng, (1,), 3)
    pixel = rng.integers(0, 256, (1, 3))
    other = pixel.copy()
    other[0, 2] = (other[0, 2] + 128) % 256  # a later channel: red and green unchanged
    for channel in (0, 1):
        np.testing.assert_array_equal(ops.convert_to_numpy(dist.channel_log_probs(params, channel, pixel)),
                                      ops.convert_to_numpy(dist.channel_log_probs(params, channel, other)))
    other = pixel.copy()
    other[0, 0] = (other[0, 0] + 128) % 256
    assert np.abs(ops.convert_to_numpy(dist.channel_log_probs(params, 1, pixel) -
                                       dist.channel_log_probs(params, 1, other))).max() > 1e-3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("log_scale", [-60.0, -7.0, 0.0, 7.0, 60.0])
@pytest.mark.parametrize("mean", [-30.0, -1.0, 0.0, 1.0, 30.0])
def test_extreme_parameters_stay_finite(dtype, log_scale, mean):
    channels, num_mix = 3, 2
    dist = DiscretizedLogisticMixture(channels, num_mix)
    params = np.zeros((3, DiscretizedLogisticMixture.num_params(channels, num_mix)))
    params[:, :num_mix] = [[1e4, -1e4]] * 3  # saturated mixture weights
    params[:, num_mix:num_mix + 3 * num_mix] = mean
    params[:, num_mix + 3 * num_mix:num_mix + 6 * num_mix] = log_scale
    params[:, num_mix + 6 * num_mix:] = 50.0  # saturated coefficients
    params = tf.constant(params, dtype)
    images = np.array([[0, 0, 0], [255, 255, 255], [128, 3, 250]])
    with tf.GradientTape() as tape:
        tape.watch(params)
        log_p = dist.log_prob(params[:, None, None], images[:, None, None])
    grad = tape.gradient(log_p, params)
    assert np.all(np.isfinite(ops.convert_to_numpy(log_p)))
    assert np.all(np.isfinite(ops.convert_to_numpy(grad)))
    for channel in range(channels):
        table = ops.convert_to_numpy(dist.channel_log_probs(params, channel, images)).astype(np.float64)
        assert np.all(np.isfinite(table))
        np.testing.assert_allclose(np.logaddexp.reduce(table, axis=-1), 0.0, atol=1e-4)


def test_half_precision_params_are_cast():
    dist = DiscretizedLogisticMixture(1, K)
    params = ops.cast(_params(np.random.default_rng(4), (1, 2, 2), 1), "float16")
    log_p = dist.log_prob(params, np.zeros((1, 2, 2, 1), np.int32))
    assert keras.backend.standardize_dtype(log_p.dtype) == "float32"


@pytest.mark.parametrize("kwargs, message", [
    (dict(channels=0), "channels=0"),
    (dict(channels=3, num_mix=0), "num_mix=0"),
    (dict(channels=1, num_mix=2.5), "num_mix=2.5"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match="Received: " + message):
        DiscretizedLogisticMixture(**kwargs)


def test_wrong_parameter_count_raises():
    with pytest.raises(ValueError, match="Received: params of shape"):
        DiscretizedLogisticMixture(3, K).log_prob(np.zeros((1, 2, 2, 7)), np.zeros((1, 2, 2, 3), np.int32))


@pytest.mark.parametrize("free", ["batch", "sizes"])
def test_unknown_sizes_give_the_eager_values(free):
    """Traced with a free batch (an exported sampler's pixel: constant reshapes) or free sizes (read at run
    time), `log_prob` and `channel_log_probs` give the eager values (a channel or component mixed up by a
    reshape would be off by far more than the tolerance)."""
    rng = np.random.default_rng(5)
    dist = DiscretizedLogisticMixture(3, num_mix=K)
    params = _params(rng, (2, 3, 4), 3).astype(np.float32)
    images = rng.integers(0, 256, (2, 3, 4, 3)).astype(np.int32)
    sizes = (None, 3, 4) if free == "batch" else (None, None, None)
    log_prob = tf.function(dist.log_prob, input_signature=[tf.TensorSpec(sizes + (params.shape[-1],), tf.float32),
                                                           tf.TensorSpec(sizes + (3,), tf.int32)])
    # graph and eager round differently (fused kernels): equal within float32's precision
    np.testing.assert_allclose(log_prob(params, images).numpy(), ops.convert_to_numpy(dist.log_prob(params, images)),
                               rtol=1e-5, atol=1e-5)
    pixel = tf.function(lambda p, x: dist.channel_log_probs(p, 2, x),
                        input_signature=[tf.TensorSpec((None, params.shape[-1]), tf.float32),
                                         tf.TensorSpec((None, 3), tf.int32)])
    flat, pixels = params.reshape(-1, params.shape[-1]), images.reshape(-1, 3)
    np.testing.assert_allclose(pixel(flat, pixels).numpy(), ops.convert_to_numpy(dist.channel_log_probs(flat, 2, pixels)),
                               rtol=1e-5, atol=1e-5)
    # a pixel's draw reads no shape at run time (it would at every step of an exported sampler)
    assert "Shape" not in {op.type for op in pixel.get_concrete_function().graph.get_operations()}
