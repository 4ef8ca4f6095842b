"""keras-pixelcnn: autoregressive pixel models for Keras 3.

Public API:
    build_model, ARCHITECTURES         -- the models
    MaskedConv2D, PixelDistribution    -- layers
    log_prob, bits_per_dim             -- exact likelihood
    PixelNLL, BitsPerDim               -- loss and metric for `model.fit`
"""

import os

# Hide TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_pixelcnn.distributions import Categorical, PixelDistribution, distribution_of  # noqa: E402
from keras_pixelcnn.likelihood import BitsPerDim, PixelNLL, bits_per_dim, log_prob, loss_and_metric  # noqa: E402
from keras_pixelcnn.masked_conv import MaskedConv2D  # noqa: E402
from keras_pixelcnn.masks import causal_mask  # noqa: E402
from keras_pixelcnn.models import ARCHITECTURES, build_model  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ARCHITECTURES",
    "BitsPerDim",
    "Categorical",
    "MaskedConv2D",
    "PixelDistribution",
    "PixelNLL",
    "bits_per_dim",
    "build_model",
    "causal_mask",
    "distribution_of",
    "log_prob",
    "loss_and_metric",
]
