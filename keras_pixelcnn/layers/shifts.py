"""`ShiftDown` and `ShiftRight`: move a feature map one pixel, filling with zeros.

A shift turns "reads up to and including this row (or pixel)" into "reads only
rows (or pixels) before this one", which is how Gated PixelCNN feeds its
vertical stack to the horizontal one and how PixelCNN++ builds its streams.

Reference:
    van den Oord et al., "Conditional Image Generation with PixelCNN Decoders",
    NeurIPS 2016; Salimans et al., "PixelCNN++", ICLR 2017.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class ShiftDown(keras.layers.Layer):
    """Output row `i` is input row `i - 1`; row 0 is zeros.

    Input shape / Output shape:
        `(B, H, W, K)`.

    Example:
        >>> ShiftDown()(keras.ops.ones((1, 2, 1, 1)))[0, :, 0, 0]
        [0., 1.]
    """

    def call(self, inputs):
        # (B, H, W, K) -> (B, H + 1, W, K) -> (B, H, W, K)
        padded = ops.pad(inputs, ((0, 0), (1, 0), (0, 0), (0, 0)))
        return padded[:, :-1]

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class ShiftRight(keras.layers.Layer):
    """Output column `j` is input column `j - 1`; column 0 is zeros.

    Input shape / Output shape:
        `(B, H, W, K)`.
    """

    def call(self, inputs):
        # (B, H, W, K) -> (B, H, W + 1, K) -> (B, H, W, K)
        padded = ops.pad(inputs, ((0, 0), (0, 0), (1, 0), (0, 0)))
        return padded[:, :, :-1]

    def compute_output_shape(self, input_shape):
        return input_shape
