"""A plain-Keras PixelCNN as tutorials write it, for side-by-side benchmarks.

Same architecture and size as `build_model("pixelcnn", ...)` (7x7 mask-A stem,
residual blocks 1x1 -> 3x3 mask-B -> 1x1, two 1x1 head layers, 256-way
softmax per sub-pixel), written the common way: a layer that re-masks its
`Conv2D` kernel with `kernel.assign` on every call, a Lambda reshape and
Keras' sparse categorical cross-entropy, compiled with Keras' defaults.
Single channel only (tutorials rarely mask colour groups).
"""

import keras
import numpy as np


class AssignMaskedConv(keras.layers.Layer):
    """Conv2D whose kernel is multiplied in place by a causal mask before each call."""

    def __init__(self, mask_type, filters, kernel_size, **kwargs):
        super().__init__()
        self.mask_type = mask_type
        self.conv = keras.layers.Conv2D(filters, kernel_size, padding="same", **kwargs)

    def build(self, input_shape):
        self.conv.build(input_shape)
        kh, kw = self.conv.kernel.shape[:2]
        mask = np.zeros(self.conv.kernel.shape, np.float32)
        mask[: kh // 2] = 1.0
        mask[kh // 2, : kw // 2 + (self.mask_type == "B")] = 1.0
        self.mask = mask

    def call(self, inputs):
        self.conv.kernel.assign(self.conv.kernel * self.mask)
        return self.conv(inputs)


def build_reference(image_shape=(28, 28, 1), filters=64, num_layers=5, head_filters=256):
    """The tutorial-style model: images (B, H, W, 1) float in [0, 1] -> logits (B, H, W, 1, 256)."""
    inputs = keras.Input(image_shape)
    x = AssignMaskedConv("A", filters, 7)(inputs)
    for _ in range(num_layers):
        y = keras.layers.ReLU()(x)
        y = AssignMaskedConv("B", filters // 2, 1)(y)
        y = keras.layers.ReLU()(y)
        y = AssignMaskedConv("B", filters // 2, 3)(y)
        y = keras.layers.ReLU()(y)
        y = AssignMaskedConv("B", filters, 1)(y)
        x = keras.layers.Add()([x, y])
    x = keras.layers.ReLU()(x)
    x = AssignMaskedConv("B", head_filters, 1)(x)
    x = keras.layers.ReLU()(x)
    x = AssignMaskedConv("B", 256, 1)(x)
    outputs = keras.layers.Reshape(image_shape + (256,))(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
