"""Builders shared by the test modules (importable: setup.cfg puts tests/ on pythonpath)."""

import keras


# Depth of the tiny test models: PixelCNN++ has ~190 layers per block level, so one level
# keeps its tests (and their graph tracing) short; its receptive field still covers 4x4.
_TINY_LAYERS = {"pixelcnn_pp": 1}


def tiny_model(architecture, channels, num_classes=None, size=4, seed=0):
    """A small freshly initialised model for property tests (filters 8 per colour channel)."""
    import keras_pixelcnn as kp

    keras.utils.set_random_seed(seed)
    shape = size if isinstance(size, tuple) else (size, size)
    return kp.build_model(architecture, shape + (channels,), num_classes=num_classes, filters=8 * channels,
                          num_layers=_TINY_LAYERS.get(architecture, 2))
