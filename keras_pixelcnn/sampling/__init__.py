"""Generation and inpainting: the samplers (naive and cached), the incremental engine with its
per-layer rules, and the counter-based noise that every sampler and exported graph shares.

TensorFlow code (`tf.while_loop`). May import likelihood, models, distributions and layers.
"""

from keras_pixelcnn.sampling.sampler import METHODS, cached_loop, complete, image_seeds, naive_loop, sample, sampling_noise

__all__ = ["METHODS", "cached_loop", "complete", "image_seeds", "naive_loop", "sample", "sampling_noise"]
