"""`DiscretizedLogisticMixture`: PixelCNN++'s per-pixel output distribution.

Each pixel is a mixture of K components. In component k, channel c is a
logistic with scale `exp(log_scale[c, k])` and a mean that moves linearly
with the pixel's earlier channel values (scaled to [-1, 1]):

    mean_R = m_R,   mean_G = m_G + a * x_R,   mean_B = m_B + b * x_R + g * x_G,

with `a, b, g = tanh(...)`. The logistic is discretized into 256 bins of width
2/255 centred on `x = v / 127.5 - 1`; the edge bins reach -inf and +inf, so
the 256 probabilities of a channel sum to one.

Reference:
    Salimans, Karpathy, Chen, Kingma. "PixelCNN++: Improving the PixelCNN with
    Discretized Logistic Mixture Likelihood and Other Modifications", ICLR 2017.
"""

from keras import ops

from keras_pixelcnn.distributions.base import DISTRIBUTIONS, NUM_LEVELS, Distribution, at_least_float32
from keras_pixelcnn.layers.shapes import leading_shape

# Log-scales are clipped to this range: below, the paper's floor (bins narrower
# than ~1/1000 of the range); above, the bin width would underflow.
MIN_LOG_SCALE = -7.0
MAX_LOG_SCALE = 7.0
_HALF_BIN = 1.0 / (NUM_LEVELS - 1)  # half the width 2/255 of a bin on [-1, 1]


def _scale_to_unit(values, dtype):
    """Integer levels [0, 255] -> centres of the bins on [-1, 1]."""
    return ops.cast(values, dtype) / ((NUM_LEVELS - 1) / 2.0) - 1.0


def discretized_logistic_log_pmf(x, means, log_scales):
    """Log-probability of the bin centred on `x` under a discretized logistic.

    With `plus = (x - mean + 1/255) / s` and `minus = (x - mean - 1/255) / s`,
    an inner bin has mass `sigmoid(plus) - sigmoid(minus)`, computed exactly as
    `sigmoid(plus) * sigmoid(-minus) * (1 - exp(minus - plus))`, all three
    factors in log space (log-sigmoids and `log(-expm1(-2/(255 s)))`): no
    cancellation, whatever the scale or distance from the mean. The first bin
    is `sigmoid(plus)`, the last `1 - sigmoid(minus) = sigmoid(-minus)`.

    Args:
        x: bin centres on [-1, 1], broadcastable with `means`.
        means: component means.
        log_scales: component log-scales, clipped to
            [`MIN_LOG_SCALE`, `MAX_LOG_SCALE`].

    Returns:
        Log-probabilities in nats, the broadcast shape of the inputs.
    """
    log_scales = ops.clip(log_scales, MIN_LOG_SCALE, MAX_LOG_SCALE)
    inv_scale = ops.exp(-log_scales)
    centred = x - means
    plus = inv_scale * (centred + _HALF_BIN)
    minus = inv_scale * (centred - _HALF_BIN)
    log_cdf_plus = -ops.softplus(-plus)  # log sigmoid(plus)
    log_sf_minus = -ops.softplus(minus)  # log (1 - sigmoid(minus))
    log_width = ops.log(-ops.expm1(-2.0 * _HALF_BIN * inv_scale))  # log (1 - exp(minus - plus))
    inner = log_cdf_plus + log_sf_minus + log_width
    return ops.where(x < -0.999, log_cdf_plus, ops.where(x > 0.999, log_sf_minus, inner))


class DiscretizedLogisticMixture(Distribution):
    """A mixture of discretized logistics per pixel, channels linearly coupled.

    Parameters per pixel, `num_params(C, K)` of them, in this order:

        [..., 0:K]                 mixture logits
        [..., K:K + C*K]           means,      channel-major: (C, K)
        [..., K + C*K:K + 2*C*K]   log-scales, channel-major: (C, K)
        [..., K + 2*C*K:]          coefficients (before tanh), (C*(C-1)/2, K)
                                   in the order (G<-R, B<-R, B<-G)

    i.e. `K * (1 + 3C)` for C=3 and `3K` for C=1.

    `log_prob` returns per-sub-pixel conditionals `log p(x_c | x_<c)` of each
    pixel (the mixture's posterior over components given the earlier
    channels), which sum over channels to the pixel's log-likelihood.

    Args:
        channels: colour channels C.
        num_mix: mixture components K.

    Example:
        >>> dist = DiscretizedLogisticMixture(3, num_mix=5)
        >>> DiscretizedLogisticMixture.num_params(3, 5)
        50

    Reference:
        Salimans et al., "PixelCNN++", ICLR 2017, section 2.1 and 2.2.
    """

    name = "logistic_mixture"

    def __init__(self, channels, num_mix=10):
        for key, value in (("channels", channels), ("num_mix", num_mix)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Expected {key} to be a positive int. Received: {key}={value!r}")
        self.channels = channels
        self.num_mix = num_mix

    @staticmethod
    def num_params(channels, num_mix=10):
        """Parameters per pixel: K logits, C means, C log-scales, C(C-1)/2 coefficients per component."""
        return num_mix * (1 + 2 * channels + channels * (channels - 1) // 2)

    def _split(self, params):
        """`(..., P)` -> logits `(..., K)`, means and log-scales `(..., C, K)`, tanh coefficients."""
        expected = self.num_params(self.channels, self.num_mix)
        if params.shape[-1] is not None and params.shape[-1] != expected:
            raise ValueError(
                f"Expected {expected} parameters per pixel for channels={self.channels}, "
                f"num_mix={self.num_mix}. Received: params of shape {tuple(params.shape)}"
            )
        k, c = self.num_mix, self.channels
        # (B, ...): constant where only the batch is free, as for a sampler's pixel `(B, P)`
        leading = leading_shape(params)
        logits = params[..., :k]
        # (..., C*K) -> (..., C, K)
        means = ops.reshape(params[..., k:k + c * k], leading + (c, k))
        log_scales = ops.reshape(params[..., k + c * k:k + 2 * c * k], leading + (c, k))
        if c == 1:
            return logits, means, log_scales, None
        # (..., C(C-1)/2 * K) -> (..., C(C-1)/2, K)
        coeffs = ops.tanh(ops.reshape(params[..., k + 2 * c * k:], leading + (c * (c - 1) // 2, k)))
        return logits, means, log_scales, coeffs

    def _conditional_means(self, means, coeffs, x):
        """Means `(..., C, K)` shifted by `coeff * x_c'` for each earlier channel c' (x: `(..., C)`)."""
        if coeffs is None:
            return means
        rows, pair = [means[..., 0, :]], 0
        for channel in range(1, self.channels):
            mean = means[..., channel, :]
            for earlier in range(channel):
                mean = mean + coeffs[..., pair, :] * x[..., earlier, None]
                pair += 1
            rows.append(mean)
        # C x (..., K) -> (..., C, K)
        return ops.stack(rows, axis=-2)

    def _component_log_probs(self, params, values):
        """Log-softmax logits `(..., K)`, and `log p_c(x_c | k, x_<c)` `(..., C, K)` of `values` `(..., C)`."""
        logits, means, log_scales, coeffs = self._split(params)
        x = _scale_to_unit(values, params.dtype)
        means = self._conditional_means(means, coeffs, x)
        log_pmf = discretized_logistic_log_pmf(x[..., None], means, log_scales)
        return ops.log_softmax(logits, axis=-1), log_pmf

    def log_prob(self, params, images):
        """Per-sub-pixel conditional log-probabilities in nats, `(B, H, W, C)`.

        Entry c is `log p(x_c | x_<c)` of the pixel's mixture: the log-sum-exp
        over components of `log pi_k + sum_{c' <= c} log p_c'(x_c' | k)` minus
        the same over `c' < c`.

        Args:
            params: `(B, H, W, num_params)`.
            images: integer values in [0, 255], `(B, H, W, C)`.
        """
        params = at_least_float32(params)
        log_pi, log_pmf = self._component_log_probs(params, images)
        # (B, H, W, K) + (B, H, W, C, K) -> (B, H, W, C): log p(x_<=c)
        joint = ops.logsumexp(log_pi[..., None, :] + ops.cumsum(log_pmf, axis=-2), axis=-1)
        # (B, H, W, C): log p(x_<c), the empty prefix having probability one
        before = ops.concatenate([ops.zeros_like(joint[..., :1]), joint[..., :-1]], axis=-1)
        return joint - before

    def channel_log_probs(self, pixel_params, channel, previous=None):
        """Log-probabilities `(B, 256)` of every value of channel `channel` of one pixel.

        The components are weighted by their posterior given the earlier
        channels' values, whose means also shift the means of `channel`.

        Args:
            pixel_params: `(B, num_params)` parameters of one pixel.
            channel: colour channel index (python int or scalar tensor).
            previous: integer `(B, C)` values of this pixel; only channels
                before `channel` are read. None reads as zeros (fine for
                channel 0).
        """
        params = at_least_float32(pixel_params)
        if previous is None:
            previous = ops.zeros((ops.shape(params)[0], self.channels), "int32")
        logits, means, log_scales, coeffs = self._split(params)
        x = _scale_to_unit(previous, params.dtype)
        # (B, C, K): means of every channel given the earlier values; log p_c'(x_c' | k)
        means = self._conditional_means(means, coeffs, x)
        log_pmf = discretized_logistic_log_pmf(x[..., None], means, log_scales)
        earlier = ops.arange(self.channels) < channel  # (C,)
        # (B, K): log pi_k + sum_{c' < channel} log p_c'(x_c' | k), normalised
        log_w = ops.log_softmax(logits, axis=-1) + ops.sum(ops.where(earlier[:, None], log_pmf, 0.0), axis=1)
        log_w = log_w - ops.logsumexp(log_w, axis=-1, keepdims=True)
        # (B, C, K) -> (B, 1, K) for channel; levels (256,) -> (1, 256, 1). A Python int channel is a
        # slice: `take` wraps negative indices with the run-time shape (four ops an exported draw).
        pick = (lambda t: t[:, channel]) if isinstance(channel, int) else (lambda t: ops.take(t, channel, axis=1))
        mean = pick(means)[:, None, :]
        log_scale = pick(log_scales)[:, None, :]
        levels = _scale_to_unit(ops.arange(NUM_LEVELS), params.dtype)[None, :, None]
        # (B, 256, K) -> (B, 256, 1) -> (B, 256): keepdims spares TensorFlow's logsumexp a reshape to the
        # run-time shape; the same values
        log_probs = log_w[:, None, :] + discretized_logistic_log_pmf(levels, mean, log_scale)
        return ops.logsumexp(log_probs, axis=-1, keepdims=True)[..., 0]


DISTRIBUTIONS[DiscretizedLogisticMixture.name] = DiscretizedLogisticMixture
