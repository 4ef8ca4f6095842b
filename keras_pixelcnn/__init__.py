"""keras-pixelcnn: autoregressive pixel models for Keras 3.

This file is the public API; the code lives in subpackages that import one way only
(layers <- distributions <- models <- likelihood <- sampling, scoring <- data <- training,
then export/ and cli/ on top; see docs/ARCHITECTURE.md).

Public API:
    build_model, ARCHITECTURES         -- the models
    MaskedConv2D, ShiftDown, ShiftRight, GatedActivation, ConcatELU,
    RowLSTM, DiagonalLSTM, CausalAttention, PixelDistribution -- layers
    Categorical, DiscretizedLogisticMixture -- output distributions
    log_prob, bits_per_dim             -- exact likelihood
    PixelNLL, BitsPerDim               -- loss and metric for `model.fit`
    load_pretrained                    -- models shipped with the package ("fashion_mnist")
    sample, complete, score            -- generation, inpainting, anomaly scores (TensorFlow)

Every name is imported on first use, so `import keras_pixelcnn` is quick and imports neither
Keras nor TensorFlow; the layers register with Keras as soon as Keras is imported, so
`keras.saving.load_model` reads the package's `.keras` files after `import keras_pixelcnn`.
"""

import importlib
import importlib.abc
import importlib.util
import os
import sys

# Hide TensorFlow's C++ start-up chatter unless the user asked for it (`kpixel --verbose` shows it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_pixelcnn._version import __version__  # noqa: E402

# Every public name and the module that defines it, imported on first use (PEP 562), so that
# `import keras_pixelcnn` (and `kpixel --help`) does not import Keras or TensorFlow.
_PUBLIC = {
    "keras_pixelcnn.models": ("ARCHITECTURES", "build_model", "load_pretrained"),
    "keras_pixelcnn.layers": ("CausalAttention", "ConcatELU", "DiagonalLSTM", "GatedActivation", "MaskedConv2D", "RowLSTM",
                              "ShiftDown", "ShiftRight", "causal_mask"),
    "keras_pixelcnn.distributions": ("Categorical", "DiscretizedLogisticMixture", "PixelDistribution",
                                     "distribution_of"),
    "keras_pixelcnn.likelihood": ("BitsPerDim", "PixelNLL", "bits_per_dim", "log_prob", "loss_and_metric"),
    "keras_pixelcnn.sampling": ("complete", "sample"),
    "keras_pixelcnn.scoring": ("score",),
}
_MODULE_OF = {name: module for module, names in _PUBLIC.items() for name in names}
# The modules whose classes `.keras` files name (`keras_pixelcnn>MaskedConv2D`, `keras_pixelcnn>PixelNLL`).
_SERIALIZABLE = ("keras_pixelcnn.layers", "keras_pixelcnn.distributions", "keras_pixelcnn.likelihood")


def __getattr__(name):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_pixelcnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF))


def _register_serializables():
    """Import the modules that register the package's classes with Keras, so `keras.saving.load_model` finds them."""
    initializing = [name for name, module in list(sys.modules.items()) if name.startswith("keras_pixelcnn.")
                    and getattr(getattr(module, "__spec__", None), "_initializing", False)]
    if initializing:  # keras was imported by one of the package's own modules, which registers what it imports
        return
    for name in _SERIALIZABLE:
        importlib.import_module(name)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Runs `_register_serializables` right after `keras` itself is first imported, by anyone."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                _register_serializables()

            spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _register_serializables()
else:
    sys.meta_path.insert(0, _RegisterAfterKeras())

__all__ = [
    "ARCHITECTURES",
    "BitsPerDim",
    "Categorical",
    "CausalAttention",
    "ConcatELU",
    "DiagonalLSTM",
    "DiscretizedLogisticMixture",
    "GatedActivation",
    "MaskedConv2D",
    "PixelDistribution",
    "PixelNLL",
    "RowLSTM",
    "ShiftDown",
    "ShiftRight",
    "bits_per_dim",
    "build_model",
    "causal_mask",
    "complete",
    "distribution_of",
    "load_pretrained",
    "log_prob",
    "loss_and_metric",
    "sample",
    "score",
]
