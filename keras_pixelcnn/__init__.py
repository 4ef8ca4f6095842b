"""keras-pixelcnn: autoregressive pixel models for Keras 3.

This file is the public API; the code lives in subpackages that import one way only
(layers <- distributions <- models <- likelihood <- sampling, scoring <- data <- training,
then export/ and cli/ on top; see docs/ARCHITECTURE.md).

Public API:
    build_model, ARCHITECTURES         -- the models
    MaskedConv2D, ShiftDown, ShiftRight, GatedActivation, ConcatELU,
    RowLSTM, DiagonalLSTM, PixelDistribution -- layers
    Categorical, DiscretizedLogisticMixture -- output distributions
    log_prob, bits_per_dim             -- exact likelihood
    PixelNLL, BitsPerDim               -- loss and metric for `model.fit`
    load_pretrained                    -- models shipped with the package ("fashion_mnist")
    sample, complete, score            -- generation, inpainting, anomaly scores
                                          (TensorFlow; imported on first use, so the
                                          models load without TensorFlow on the JAX backend)
"""

import os

# Hide TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_pixelcnn._version import __version__  # noqa: E402
from keras_pixelcnn.distributions import (Categorical, DiscretizedLogisticMixture, PixelDistribution,  # noqa: E402
                                          distribution_of)
from keras_pixelcnn.layers import (ConcatELU, DiagonalLSTM, GatedActivation, MaskedConv2D, RowLSTM,  # noqa: E402
                                   ShiftDown, ShiftRight, causal_mask)
from keras_pixelcnn.likelihood import BitsPerDim, PixelNLL, bits_per_dim, log_prob, loss_and_metric  # noqa: E402
from keras_pixelcnn.models import ARCHITECTURES, build_model, load_pretrained  # noqa: E402

_LAZY = {"sample": "keras_pixelcnn.sampling", "complete": "keras_pixelcnn.sampling",
         "score": "keras_pixelcnn.scoring"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_pixelcnn' has no attribute {name!r}")


__all__ = [
    "ARCHITECTURES",
    "BitsPerDim",
    "Categorical",
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
