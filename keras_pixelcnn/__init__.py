"""keras-pixelcnn: autoregressive pixel models for Keras 3.

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

from keras_pixelcnn.distributions import Categorical, PixelDistribution, distribution_of  # noqa: E402
from keras_pixelcnn.likelihood import BitsPerDim, PixelNLL, bits_per_dim, log_prob, loss_and_metric  # noqa: E402
from keras_pixelcnn.logistic_mixture import DiscretizedLogisticMixture  # noqa: E402  (registers it)
from keras_pixelcnn.gated import ConcatELU, GatedActivation  # noqa: E402
from keras_pixelcnn.masked_conv import MaskedConv2D  # noqa: E402
from keras_pixelcnn.masks import causal_mask  # noqa: E402
from keras_pixelcnn.models import ARCHITECTURES, build_model  # noqa: E402
from keras_pixelcnn.pixelrnn import DiagonalLSTM, RowLSTM  # noqa: E402
from keras_pixelcnn.pretrained import load_pretrained  # noqa: E402
from keras_pixelcnn.shifts import ShiftDown, ShiftRight  # noqa: E402

_LAZY = {"sample": "keras_pixelcnn.sampling", "complete": "keras_pixelcnn.sampling",
         "score": "keras_pixelcnn.scoring"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_pixelcnn' has no attribute {name!r}")

__version__ = "0.1.0"

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
