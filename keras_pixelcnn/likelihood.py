"""Exact log-likelihood of images under a model, and the matching loss and metric."""

import math

import keras
import numpy as np
from keras import ops

from keras_pixelcnn.distributions import DISTRIBUTIONS, distribution_of
from keras_pixelcnn.models.inference import inference_model


def check_labels(model, labels):
    """Whether `model` is class-conditional, checking that `labels` match that.

    Raises:
        ValueError: when labels are missing for a conditional model or given
            to an unconditional one.
    """
    conditional = len(model.inputs) == 2
    if conditional and labels is None:
        raise ValueError(f"Model {model.name!r} is class-conditional: pass labels. Received: labels=None")
    if not conditional and labels is not None:
        raise ValueError(f"Model {model.name!r} is unconditional. Received labels of shape {np.shape(labels)}")
    return conditional


def model_num_classes(model):
    """Number of classes of a class-conditional model (its label embeddings' size), None if unconditional.

    Raises:
        ValueError: for a conditional model whose label embeddings disagree or are missing.
    """
    if len(model.inputs) != 2:
        return None
    sizes = {layer.input_dim for layer in model.layers if isinstance(layer, keras.layers.Embedding)}
    if len(sizes) != 1:
        raise ValueError(f"Cannot tell the number of classes of {model.name!r}. Received embeddings of sizes {sizes}")
    return sizes.pop()


def check_batch_size(batch_size, name="batch_size"):
    """`batch_size` as a positive int (numpy integers too).

    Raises:
        ValueError: for anything but an integer >= 1, naming `name`.
    """
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, (bool, np.bool_)) or batch_size < 1:
        raise ValueError(f"Expected {name} to be an integer >= 1. Received: {name}={batch_size!r}")
    return int(batch_size)


def label_array(model, labels, num_images):
    """Validated labels for `num_images` images: int32 `(B,)` for a conditional model, None otherwise.

    Args:
        labels: one integer (numpy integer scalars too) for every image, or `(B,)` integers.

    Raises:
        ValueError: labels missing or unexpected (see `check_labels`), not integers
            (3.7, "3", True), of another length than the images, or outside [0, num_classes).
    """
    if not check_labels(model, labels):
        return None
    if isinstance(labels, int) and not isinstance(labels, bool) and not -2**63 <= labels < 2**63:
        # Beyond int64 numpy calls it an object (and `np.full(n, label, np.int32)` overflowed).
        num_classes = model_num_classes(model)
        raise ValueError(f"Expected labels in [0, {num_classes}) ({num_classes} classes). Received: labels={labels}")
    array = np.asarray(labels)
    if array.shape == (0,) and not isinstance(labels, np.ndarray):
        array = array.astype(np.int32)  # `[]`, the labels of no images: numpy calls it float64
    if array.dtype.kind not in "iu":  # not np.issubdtype(.., np.integer): timedelta64 is one
        raise ValueError(f"Expected integer labels. Received: labels of dtype {array.dtype}"
                         + (f" ({labels!r})" if array.ndim == 0 else ""))
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] != num_images):
        raise ValueError(f"Expected one label or {num_images} labels (one per image). Received: shape {array.shape}")
    num_classes = model_num_classes(model)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(f"Expected labels in [0, {num_classes}) ({num_classes} classes). Received: labels in "
                         f"[{array.min()}, {array.max()}]")
    return np.broadcast_to(array.astype(np.int32), (num_images,)).copy()


def model_inputs(model, images, labels=None):
    """The structure `model` takes: `images`, or `[images, labels]` if conditional (see `check_labels`)."""
    return [images, labels] if check_labels(model, labels) else images


def check_images(model, images):
    """Validate integer images `(B, H, W, C)` in [0, 255] for `model`.

    Returns:
        The images as an int32 numpy array.

    Raises:
        ValueError: for a wrong shape, a non-integer dtype or out-of-range values.
    """
    images = np.asarray(images)
    expected = tuple(model.inputs[0].shape[1:])
    if images.ndim != 4 or images.shape[1:] != expected:
        raise ValueError(f"Expected images of shape (B, {', '.join(map(str, expected))}). Received: {images.shape}")
    if images.dtype.kind not in "iu":  # not np.issubdtype(.., np.integer): timedelta64 is one
        raise ValueError(f"Expected integer images in [0, 255]. Received: dtype={images.dtype}")
    if images.size and (images.min() < 0 or images.max() > 255):
        raise ValueError(
            f"Expected integer images in [0, 255]. Received values in [{images.min()}, {images.max()}]"
        )
    return images.astype(np.int32)


def log_prob(model, images, labels=None, reduce=True, batch_size=256):
    """Exact log-likelihood of integer images under an autoregressive model.

    Args:
        model: a model from `keras_pixelcnn.build_model` (or loaded from `.keras`).
        images: integers in [0, 255], `(B, H, W, C)`.
        labels: integer class labels `(B,)` for a class-conditional model.
        reduce: sum over sub-pixels when True.
        batch_size: images per forward pass (an integer >= 1).

    Returns:
        float64 numpy array of log-probabilities in nats: `(B,)`, or
        `(B, H, W, C)` per sub-pixel with `reduce=False`. A model trained with
        mixed precision is evaluated in float32 (`models.inference`).

    Raises:
        ValueError: for bad images (see `check_images`), labels (see `label_array`) or batch_size.
    """
    batch_size = check_batch_size(batch_size)
    model = inference_model(model)
    images = check_images(model, images)
    labels = label_array(model, labels, len(images))
    distribution = distribution_of(model)
    parts = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        chunk_labels = None if labels is None else labels[start:start + batch_size]
        params = model(model_inputs(model, chunk, chunk_labels), training=False)
        parts.append(ops.convert_to_numpy(distribution.log_prob(params, chunk)).astype(np.float64))
    per_subpixel = np.concatenate(parts) if parts else np.zeros((0,) + images.shape[1:])
    # (B, H, W, C) -> (B, H*W*C); B may be 0.
    return per_subpixel.reshape(len(images), math.prod(images.shape[1:])).sum(axis=1) if reduce else per_subpixel


def bits_per_dim(model, images, labels=None, batch_size=256):
    """Negative log-likelihood of each image in bits per sub-pixel, `(B,)`."""
    nats = -log_prob(model, images, labels, reduce=True, batch_size=batch_size)
    return nats / (np.prod(np.shape(images)[1:]) * math.log(2.0))


def _mean_nll(distribution, y_true, y_pred):
    """Mean negative log-likelihood per sub-pixel of each image, in nats, `(B,)`."""
    log_p = distribution.log_prob(y_pred, y_true)
    return -ops.mean(ops.reshape(log_p, (ops.shape(log_p)[0], -1)), axis=-1)


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class PixelNLL(keras.losses.Loss):
    """Negative log-likelihood per sub-pixel in nats; `y_true` is the images.

    Args:
        distribution: name of the model's output distribution.
        channels: colour channels C.
        options: extra arguments of the distribution (`PixelDistribution.options`).
    """

    def __init__(self, distribution="categorical", channels=1, options=None, name="pixel_nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.distribution = distribution
        self.channels = channels
        self.options = dict(options or {})
        self._dist = DISTRIBUTIONS[distribution](channels, **self.options)

    def call(self, y_true, y_pred):
        return _mean_nll(self._dist, y_true, y_pred)

    def get_config(self):
        config = super().get_config()
        config.update({"distribution": self.distribution, "channels": self.channels,
                       "options": dict(self.options)})
        return config


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class BitsPerDim(keras.metrics.MeanMetricWrapper):
    """Mean negative log-likelihood in bits per sub-pixel; `y_true` is the images."""

    def __init__(self, distribution="categorical", channels=1, options=None, name="bits_per_dim", **kwargs):
        self.distribution = distribution
        self.channels = channels
        self.options = dict(options or {})
        dist = DISTRIBUTIONS[distribution](channels, **self.options)
        super().__init__(
            fn=lambda y_true, y_pred: _mean_nll(dist, y_true, y_pred) / math.log(2.0), name=name, **kwargs
        )

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "distribution": self.distribution,
                "channels": self.channels, "options": dict(self.options)}


def loss_and_metric(model):
    """A `PixelNLL` loss and `BitsPerDim` metric matching `model`'s output."""
    layer = model.layers[-1]
    distribution_of(model)
    return (PixelNLL(layer.distribution, layer.channels, layer.options),
            BitsPerDim(layer.distribution, layer.channels, layer.options))
