"""Per-sub-pixel output distributions (categorical, discretized logistic mixture) and the
`PixelDistribution` layer that ends every model and names its distribution.

Imports only Keras: the models import it, not the reverse.
"""

from keras_pixelcnn.distributions.base import (DISTRIBUTIONS, NOISE_SIZE, NUM_LEVELS, Distribution, at_least_float32,
                                               gumbel_noise, nats_to_bits_per_dim, sample_from_log_probs)
from keras_pixelcnn.distributions.categorical import Categorical
from keras_pixelcnn.distributions.logistic_mixture import DiscretizedLogisticMixture
from keras_pixelcnn.distributions.pixel_distribution import PixelDistribution, distribution_of

__all__ = ["Categorical", "DISTRIBUTIONS", "DiscretizedLogisticMixture", "Distribution", "NOISE_SIZE", "NUM_LEVELS",
           "PixelDistribution", "at_least_float32", "distribution_of", "gumbel_noise", "nats_to_bits_per_dim",
           "sample_from_log_probs"]
