"""Pointwise activations of the gated architectures.

Each layer here acts on every pixel separately (the cached sampler relies on
it: class attribute `pointwise = True`), and keeps colour groups aligned: for
`2K` input features with `K % color_channels == 0`, the pair that makes output
feature `k` is input features `2k` and `2k + 1`, which lie in the same colour
group as `k` (see `masks.channel_groups`).
"""

import keras
from keras import ops

from keras_pixelcnn.layers.shapes import leading_shape

GATES = ("tanh", "linear")


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class GatedActivation(keras.layers.Layer):
    """`f(a) * sigmoid(b)` with `a, b` the even and odd input features.

    Args:
        activation: "tanh" (Gated PixelCNN's `tanh(a) * sigmoid(b)`) or
            "linear" (PixelCNN++'s `a * sigmoid(b)`).

    Input shape:
        `(..., 2K)`.

    Output shape:
        `(..., K)`.

    Reference:
        van den Oord et al., "Conditional Image Generation with PixelCNN
        Decoders", NeurIPS 2016, equation 2.
    """

    pointwise = True

    def __init__(self, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        if activation not in GATES:
            raise ValueError(f"Expected activation in {GATES}. Received: activation={activation!r}")
        self.activation = activation

    def call(self, inputs):
        # (..., 2K) -> (..., K) twice: a = features 0, 2, 4, ...; b = 1, 3, 5, ...
        a, b = inputs[..., 0::2], inputs[..., 1::2]
        if self.activation == "tanh":
            a = ops.tanh(a)
        return a * ops.sigmoid(b)

    def compute_output_shape(self, input_shape):
        if input_shape[-1] % 2:
            raise ValueError(f"Expected an even number of features. Received: input_shape={input_shape}")
        return tuple(input_shape[:-1]) + (input_shape[-1] // 2,)

    def get_config(self):
        config = super().get_config()
        config["activation"] = self.activation
        return config


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class ConcatELU(keras.layers.Layer):
    """`elu(concat([x, -x]))` interleaved per feature, as PixelCNN++ uses.

    Output features `2k` and `2k + 1` are `elu(x_k)` and `elu(-x_k)`, so colour
    groups stay aligned.

    Input shape:
        `(..., K)`.

    Output shape:
        `(..., 2K)`.
    """

    pointwise = True

    def call(self, inputs):
        # (..., K) -> (..., K, 2) -> (..., 2K). One elu after the stack, not elu(x) and elu(-x):
        # the values are bitwise the same, but with two elus TensorFlow's graph optimizer fuses
        # Neg+Elu, then its (oneDNN) remapper fails on the Add that feeds both branches, prints
        # "remapper failed: INVALID_ARGUMENT" and leaves the whole training graph unfused.
        both = ops.elu(ops.stack([inputs, -inputs], axis=-1))
        # A static 2K keeps the feature size known when the batch size is not (an exported
        # graph); with -1, Keras' TF conv takes its XLA-only path for the next layer.
        features = -1 if inputs.shape[-1] is None else 2 * inputs.shape[-1]
        # constant leading sizes where they are known: PixelCNN++'s exported pixel step ran ~110 shape
        # ops a step for its concat-ELUs when they were read at run time
        return ops.reshape(both, leading_shape(inputs) + (features,))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2 * input_shape[-1],)
