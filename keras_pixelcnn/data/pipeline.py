"""Preprocessing and the `tf.data` input pipeline shared by training and evaluation."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How raw images become model inputs; stored with a run so evaluation matches training.

    Attributes:
        crop: centre crop to `crop x crop` pixels, or None.
        image_size: resize (area averaging) to `image_size x image_size`, after the crop, or None.
        levels: quantise to this many evenly spaced grey levels (2..256), kept on the 0..255 scale.
    """

    crop: int | None = None
    image_size: int | None = None
    levels: int = 256

    def __post_init__(self):
        for key in ("crop", "image_size"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"Expected {key} to be a positive int or None. Received: {key}={value!r}")
        if not isinstance(self.levels, int) or not 2 <= self.levels <= 256:
            raise ValueError(f"Expected levels in [2, 256]. Received: levels={self.levels!r}")

    def output_shape(self, image_shape):
        """`(H, W, C)` after preprocessing."""
        height, width, channels = image_shape
        if self.crop is not None:
            if self.crop > min(height, width):
                raise ValueError(f"Expected crop <= {min(height, width)} for images {image_shape}. "
                                 f"Received: crop={self.crop}")
            height = width = self.crop
        if self.image_size is not None:
            height = width = self.image_size
        return (height, width, channels)

    def _offsets(self, image_shape):
        return (image_shape[0] - self.crop) // 2, (image_shape[1] - self.crop) // 2

    def apply_numpy(self, images):
        """Preprocess uint8 images `(N, H, W, C)` with numpy (and keras.ops for resizing)."""
        if self.crop is not None:
            top, left = self._offsets(images.shape[1:])
            images = images[:, top:top + self.crop, left:left + self.crop]
        if self.image_size is not None:
            rows = _area_weights(images.shape[1], self.image_size)
            cols = _area_weights(images.shape[2], self.image_size)
            # (N, H, W, C) -> (N, S, S, C): each output pixel averages the input area it covers
            resized = np.einsum("ih,nhwc,jw->nijc", rows, images.astype(np.float64), cols)
            images = np.clip(np.round(resized), 0, 255).astype(np.uint8)
        return quantize(images, self.levels).astype(np.uint8)

    def apply_tensor(self, image, image_shape):
        """Preprocess one uint8 image tensor `(H, W, C)` inside `tf.data`."""
        import tensorflow as tf

        if self.crop is not None:
            top, left = self._offsets(image_shape)
            image = tf.image.crop_to_bounding_box(image, top, left, self.crop, self.crop)
        if self.image_size is not None:
            resized = tf.image.resize(tf.cast(image, tf.float32), (self.image_size, self.image_size), "area")
            image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
        return tf.cast(quantize(tf.cast(image, tf.int32), self.levels), tf.uint8)


def _area_weights(size_in, size_out):
    """`(size_out, size_in)` matrix: the share of each input pixel in each output pixel."""
    scale = size_in / size_out
    starts = np.arange(size_out)[:, None] * scale
    pixels = np.arange(size_in)[None, :]
    overlap = np.clip(np.minimum(starts + scale, pixels + 1) - np.maximum(starts, pixels), 0, None)
    return overlap / scale


def quantize(images, levels):
    """Map 0..255 onto `levels` evenly spaced values on the same 0..255 scale (numpy or tf)."""
    if levels == 256:
        return images
    as_int = images.astype(np.int32) if isinstance(images, np.ndarray) else images
    return (as_int * levels // 256) * 255 // (levels - 1)


def _perturb(image, rate, seed, step):
    """Replace each sub-pixel by a uniform value in [0, 255] with probability `rate` (Ren et al. 2019)."""
    import tensorflow as tf

    key = tf.stack([tf.cast(seed, tf.int64) + 0x9E37, tf.cast(step, tf.int64)])
    replace = tf.random.stateless_uniform(tf.shape(image), key) < rate
    noise = tf.random.stateless_uniform(tf.shape(image), key + 1, minval=0, maxval=256, dtype=tf.int32)
    return tf.where(replace, tf.cast(noise, image.dtype), image)


def _array_dataset(images, labels, shuffle, repeat, seed, perturb_rate=0.0, first_example=0):
    """Elements of in-memory arrays; shuffled by a stateless permutation per epoch.

    `index_shuffle` depends only on (seed, pass), so the order is the same
    under any `tf.distribute` strategy (a `Dataset.shuffle` is re-seeded when
    a strategy clones the pipeline) and each pass sees every image once. The
    pass counter lives in the element index, so shuffle with `repeat=True`
    (without it, every iteration replays the first permutation), and starting
    at `first_example` costs nothing: a resumed run goes on where it stopped.
    """
    import tensorflow as tf

    count = len(images)
    if not shuffle:
        if perturb_rate:
            raise ValueError("Perturbed inputs are for shuffled training data only")
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        return dataset.repeat() if repeat else dataset
    images, labels = tf.constant(images), tf.constant(labels)

    def element(step):
        epoch, position = step // count, step % count
        index = tf.random.experimental.index_shuffle(
            position, tf.stack([tf.cast(seed, tf.int64), epoch]), count - 1)
        image = tf.gather(images, index)
        if perturb_rate:
            image = _perturb(image, perturb_rate, seed, step)
        return image, tf.gather(labels, index)

    steps = tf.data.Dataset.range(count) if not repeat else tf.data.Dataset.range(first_example, 2**62)
    return steps.map(element, num_parallel_calls=tf.data.AUTOTUNE)


def _read_all(dataset, image_shape, preprocessing):
    """The preprocessed `(images, labels)` of a finite `(image, label)` dataset as numpy arrays."""
    images, labels = [], []
    for image_batch, label_batch in dataset.batch(1024).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    if not images:
        return np.zeros((0,) + preprocessing.output_shape(image_shape), np.uint8), np.zeros(0, np.int32)
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)


def make_dataset(source, preprocessing, batch_size, *, conditional, shuffle=False, repeat=False,
                 seed=0, limit=None, drop_remainder=False, perturb_rate=0.0, first_batch=0):
    """A batched `tf.data.Dataset` of `(inputs, images)` pairs for `model.fit`/`evaluate`.

    Args:
        source: a `keras_pixelcnn.data.Source`.
        preprocessing: a `Preprocessing`.
        batch_size: global batch size.
        conditional: yield `(images, labels)` inputs for a class-conditional model.
        shuffle: shuffle examples (each epoch anew).
        repeat: repeat forever (with `steps_per_epoch`).
        seed: shuffle seed.
        limit: use only the first `limit` examples.
        drop_remainder: drop a last partial batch.
        perturb_rate: replace this fraction of sub-pixels by uniform noise, a
            fresh draw per example and pass (a likelihood-ratio background
            model; arrays with 256 levels only).
        first_batch: start at this batch of the repeated stream (a resumed
            run's batches so far), as if the earlier ones had been read.

    Returns:
        Elements `(images, images)` or `((images, labels), images)`, images
        int32 `(B, H, W, C)`, labels int32 `(B,)`.
    """
    import tensorflow as tf

    if conditional and source.num_classes is None:
        raise ValueError(f"Dataset {source.name!r} has no class labels; drop --conditional")
    if source.tf_dataset is None:
        images = preprocessing.apply_numpy(source.images[:limit])
        labels = np.zeros(len(images), np.int32) if source.labels is None else source.labels[:limit]
        if first_batch and not (shuffle and repeat and drop_remainder):
            raise ValueError("first_batch needs a shuffled, repeated stream of full batches")
        dataset = _array_dataset(images, labels.astype(np.int32), shuffle, repeat, seed, perturb_rate,
                                 first_example=first_batch * batch_size)
    else:
        if perturb_rate:
            raise ValueError(f"Perturbed training inputs need an array dataset (IDX or folder:); "
                             f"{source.name!r} comes from TFDS")
        dataset = source.tf_dataset.take(limit if limit is not None else -1)
        dataset = dataset.map(
            lambda image, label: (preprocessing.apply_tensor(image, source.image_shape), tf.cast(label, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        if shuffle:
            # Read the split into memory once (as cache() would) and shuffle it like arrays:
            # Dataset.shuffle(seed) is re-seeded when a strategy clones the pipeline, so a mirrored
            # run would read other batches than one device (tests/test_training.py).
            images, labels = _read_all(dataset, source.image_shape, preprocessing)
            dataset = _array_dataset(images, labels, shuffle, repeat, seed, first_example=first_batch * batch_size)
        else:
            dataset = dataset.cache()  # decode TFDS records once
            if repeat:
                dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    def to_pair(images, labels):
        images = tf.cast(images, tf.int32)
        return ((images, labels) if conditional else images), images

    return dataset.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
