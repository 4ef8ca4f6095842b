"""`Categorical`: a 256-way softmax for each sub-pixel (PixelCNN, Gated PixelCNN, PixelRNN)."""

from keras import ops

from keras_pixelcnn.distributions.base import DISTRIBUTIONS, NUM_LEVELS, Distribution, at_least_float32


class Categorical(Distribution):
    """A 256-way categorical distribution for each sub-pixel.

    Parameters are logits laid out channel-major: `(B, H, W, C * 256)`, the
    256 logits of channel c at `[..., c * 256:(c + 1) * 256]`.

    Args:
        channels: colour channels C.
    """

    name = "categorical"

    def __init__(self, channels):
        self.channels = channels

    @staticmethod
    def num_params(channels):
        """Parameters per pixel for `channels` colour channels."""
        return channels * NUM_LEVELS

    def log_prob(self, params, images):
        """Log-probability in nats of each sub-pixel value, `(B, H, W, C)`.

        Args:
            params: logits `(B, H, W, C*256)`.
            images: integer values in [0, 255], `(B, H, W, C)`.
        """
        shape = ops.shape(params)
        # (B, H, W, C*256) -> (B, H, W, C, 256)
        logits = ops.reshape(params, (shape[0], shape[1], shape[2], self.channels, NUM_LEVELS))
        # The fused cross-entropy (one kernel, dense gradient) trains ~2x faster on CPU
        # than log_softmax + take_along_axis, whose gradient is a scatter.
        return -ops.sparse_categorical_crossentropy(ops.cast(images, "int32"), at_least_float32(logits),
                                                    from_logits=True)

    def portable_log_prob(self, params, images):
        """`log_prob` without the fused cross-entropy, which TFLite has no builtin for."""
        shape = ops.shape(params)
        # (B, H, W, C*256) -> (B, H, W, C, 256)
        logits = ops.reshape(at_least_float32(params), (shape[0], shape[1], shape[2], self.channels, NUM_LEVELS))
        one_hot = ops.one_hot(ops.cast(images, "int32"), NUM_LEVELS, dtype=logits.dtype)
        return ops.sum(ops.log_softmax(logits, axis=-1) * one_hot, axis=-1)

    def channel_log_probs(self, pixel_params, channel, previous=None):
        """Log-probabilities `(B, 256)` of every value of channel `channel` of one pixel.

        Args:
            pixel_params: `(B, C*256)` parameters of one pixel.
            channel: colour channel index (python int or scalar tensor).
            previous: int32 `(B, C)` values of this pixel; only channels before
                `channel` are read (the categorical logits already depend on
                them through the masked network, so it is unused here).
        """
        # (B, C*256) -> (B, C, 256) -> (B, 256)
        logits = ops.reshape(at_least_float32(pixel_params), (-1, self.channels, NUM_LEVELS))
        return ops.log_softmax(ops.take(logits, channel, axis=1), axis=-1)


DISTRIBUTIONS[Categorical.name] = Categorical
