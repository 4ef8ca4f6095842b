"""What every per-sub-pixel distribution shares: the base class, the Gumbel-max draw, a registry.

A distribution module defines a `Distribution` subclass and adds it to
`DISTRIBUTIONS` under its `name`; `PixelDistribution` layers refer to it by that name.
"""

import math

from keras import ops

NUM_LEVELS = 256


def at_least_float32(x):
    """Cast half-precision parameters to float32; keep float32 and float64."""
    return x if ops.dtype(x) in ("float32", "float64") else ops.cast(x, "float32")


NOISE_SIZE = NUM_LEVELS  # uniforms per sub-pixel that `sample_from_log_probs` reads


class Distribution:
    """Base of the per-sub-pixel distributions.

    A subclass sets `name`, implements `num_params(channels, **options)`,
    `log_prob(params, images)` (per sub-pixel conditionals, `(B, H, W, C)`)
    and `channel_log_probs(pixel_params, channel, previous)`; sampling is
    shared.
    """

    name = None

    def sample_channel(self, pixel_params, channel, noise, previous=None, temperature=1.0, greedy=False, gumbel=None):
        """Draw channel `channel` of one pixel from its exact conditional.

        Args:
            pixel_params: `(B, P)` parameters of one pixel.
            channel: colour channel index (python int or scalar tensor).
            noise: uniform `(B, 256)` in (0, 1).
            previous: int32 `(B, C)` values of this pixel (channels before
                `channel` are read).
            temperature: softmax temperature > 0.
            greedy: take the most likely value instead.
            gumbel: `gumbel_noise(noise)`, when computed already.

        Returns:
            int32 `(B,)` values in [0, 255].
        """
        return sample_from_log_probs(self.channel_log_probs(pixel_params, channel, previous),
                                     noise, temperature, greedy, gumbel)

    def portable_log_prob(self, params, images):
        """`log_prob` written with ops every exporter supports (TFLite builtins); the same values."""
        return self.log_prob(params, images)


def gumbel_noise(noise):
    """Gumbel noise `-log(-log(u))` of uniforms `u` in (0, 1): what `sample_from_log_probs` adds."""
    return -ops.log(-ops.log(noise))


def sample_from_log_probs(log_probs, noise, temperature=1.0, greedy=False, gumbel=None):
    """Draw one value per row of `log_probs` by the Gumbel-max trick.

    `argmax(log_p / T + g)` with `g = -log(-log(u))` is a draw from
    `softmax(log_p / T)`; the noise `u` is drawn once per seed, so any sampler
    that computes the same distributions draws the same values, and `T -> 0`
    tends to `argmax(log_p)` (greedy). Every distribution samples a sub-pixel
    this way, from its exact 256-value conditional.

    Args:
        log_probs: `(B, 256)` log-probabilities (or logits).
        noise: uniform `(B, 256)` in (0, 1).
        temperature: softmax temperature > 0.
        greedy: take the most likely value instead.
        gumbel: `gumbel_noise(noise)` when computed already (then `noise` is not read):
            the cached sampler transforms all of an image's noise at once, before its loop.

    Returns:
        int32 `(B,)` values in [0, 255].
    """
    if not greedy:
        if gumbel is None:
            gumbel = gumbel_noise(ops.cast(noise, log_probs.dtype))
        log_probs = log_probs / ops.cast(temperature, log_probs.dtype) + gumbel
    # top_k rather than argmax: Keras' TF argmax adds a sign-bit test (a bitwise op) that TFLite
    # has no builtin for. Both return the first index of the maximum.
    return ops.cast(ops.top_k(log_probs, 1)[1][..., 0], "int32")


# name -> Distribution subclass; filled by the modules that define them (categorical, logistic_mixture).
DISTRIBUTIONS = {}


def nats_to_bits_per_dim(nats, num_dims):
    """Convert a total negative log-likelihood in nats to bits per sub-pixel."""
    return nats / (num_dims * math.log(2.0))
