"""Sampling images from a model, one sub-pixel at a time, inside one `tf.function`."""

import numpy as np
import tensorflow as tf

from keras_pixelcnn.distributions import NOISE_SIZE, distribution_of
from keras_pixelcnn.likelihood import check_labels, model_inputs


def sampling_noise(seed, shape, noise_size):
    """Uniform noise `(*shape, noise_size)` in (0, 1), a pure function of `seed`.

    One draw per sub-pixel, made before sampling starts, so samplers that
    compute the same distributions draw the same images.
    """
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0x5EED, tf.int64)])
    return tf.random.stateless_uniform(
        tuple(shape) + (noise_size,), seed=seed, minval=np.finfo(np.float32).tiny, maxval=1.0
    )


def _label_tensor(model, num_images, labels):
    """Labels broadcast to `(B,)` int32 for a conditional model, None otherwise."""
    if not check_labels(model, labels):
        return None
    return tf.constant(np.broadcast_to(np.asarray(labels, dtype=np.int32), (num_images,)))


def sample(model, num_images, *, seed=0, temperature=1.0, labels=None, method="naive", greedy=False):
    """Draw `num_images` images from an autoregressive model.

    Args:
        model: a keras_pixelcnn model.
        num_images: batch size B.
        seed: integer seed; the same seed gives the same images.
        temperature: softmax temperature (> 0); lower is more conservative.
        labels: an int or `(B,)` ints for a class-conditional model.
        method: "naive" runs the whole model once per sub-pixel.
        greedy: take the most likely value at every step.

    Returns:
        uint8 numpy array `(B, H, W, C)`.

    Raises:
        ValueError: for bad arguments.
    """
    if method != "naive":
        raise ValueError(f"Expected method 'naive'. Received: method={method!r}")
    if not temperature > 0:
        raise ValueError(f"Expected temperature > 0. Received: temperature={temperature!r}")
    if not (isinstance(num_images, int) and num_images > 0):
        raise ValueError(f"Expected num_images to be a positive int. Received: num_images={num_images!r}")
    labels = _label_tensor(model, num_images, labels)
    height, width, channels = model.inputs[0].shape[1:]
    distribution = distribution_of(model)
    noise = sampling_noise(seed, (num_images, height, width, channels), NOISE_SIZE)
    images = _naive_loop(model, distribution, noise, labels, float(temperature), greedy)
    return images.numpy().astype(np.uint8)


def _naive_loop(model, distribution, noise, labels, temperature, greedy):
    """Re-run the full model for each sub-pixel in raster order (a `tf.while_loop`)."""
    batch, height, width, channels = noise.shape[:4]
    total = height * width * channels

    @tf.function(autograph=False)
    def run(noise, labels):
        def body(index, images):
            row = index // (width * channels)
            col = (index // channels) % width
            channel = index % channels
            params = model(model_inputs(model, images, labels), training=False)
            values = distribution.sample_channel(
                params[:, row, col], channel, noise[:, row, col, channel], images[:, row, col],
                temperature, greedy
            )
            # write values (B,) into images[:, row, col, channel]
            update = tf.one_hot(row * width * channels + col * channels + channel, total, dtype=tf.int32)
            update = tf.reshape(update, (1, height, width, channels))
            return index + 1, images + update * tf.reshape(values, (-1, 1, 1, 1))

        images = tf.zeros((batch, height, width, channels), tf.int32)
        return tf.while_loop(lambda index, _: index < total, body, (tf.constant(0), images))[1]

    return run(noise, labels)
