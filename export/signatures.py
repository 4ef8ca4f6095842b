"""The serving functions of an exported model: sample, log_prob, complete.

Each function takes batched tensors only, so it can be a TF Serving signature
or a TFLite signature. Sampling reuses the package's cached sampler and noise,
so an exported graph draws, for seed `s`, the image that
`keras_pixelcnn.sample(model, 1, seed=s)` draws (seed pair `(s, 0)`).
"""

import math

import tensorflow as tf

from keras_pixelcnn.distributions import NOISE_SIZE, distribution_of
from keras_pixelcnn.likelihood import model_num_classes
from keras_pixelcnn.models.inference import inference_model
from keras_pixelcnn.sampling.noise import NOISE_SEED_LIMIT, uniform_noise
from keras_pixelcnn.sampling import cached_loop
from keras_pixelcnn.sampling.sampler import MIN_TEMPERATURE

# The most images one request may ask for, unless the exporter is told otherwise: memory grows with
# the batch (the sampler's caches hold every layer's activations for every image).
DEFAULT_MAX_BATCH = 64
MAX_IMAGES_PER_REQUEST = 65536


class ServingGraphs:
    """Builds the exported functions of one model and their input signatures.

    Args:
        model: a keras_pixelcnn model (cacheable by `keras_pixelcnn.sampling.incremental`).
        checks: validate inputs in-graph (image, seed, label and temperature
            ranges, batch sizes that agree) with `tf.debugging` assertions
            whose messages name the input. Images are then int32, so that a
            request with a value above 255 is refused instead of wrapped
            around by a uint8 conversion. TFLite has no assertion op: its
            graphs are built without checks and take uint8 images.
        jit_compile: compile the sampling loop with XLA. Off by default:
            TF Serving runs XLA on CPU only with `--xla_cpu_compilation_enabled`.
        batch_size: a fixed batch size for every input, or None for any.
        max_batch: with checks, the most images a request may hold; a larger one
            is refused in the graph (memory grows with the batch). A batch of 0
            gives empty outputs.
        tflite: build the graphs for the TFLite converter: the sampler writes its caches
            with DynamicUpdateSlice ops (TFLite's builtin DYNAMIC_UPDATE_SLICE), which
            TensorFlow itself runs only under XLA.
        writes: how the sampler writes its caches (`keras_pixelcnn.sampling.incremental.Plan`):
            by default "slice" for TFLite, else `cached_loop`'s default ("strided" without XLA,
            which TensorFlow's executor runs in place; "scatter" with XLA).

    Raises:
        keras_pixelcnn.sampling.incremental.NotCacheable: for a model the cached sampler cannot run.
    """

    def __init__(self, model, checks=True, jit_compile=False, batch_size=None, max_batch=DEFAULT_MAX_BATCH,
                 tflite=False, writes=None):
        # Graphs compute in float32 whatever the training policy (models.inference).
        self.model = model = inference_model(model)
        self.checks = checks
        self.batch_size = batch_size
        self.max_batch = check_max_batch(max_batch)
        self.shape = tuple(model.inputs[0].shape[1:])  # (H, W, C)
        self.num_classes = model_num_classes(model)
        self.distribution = distribution_of(model)
        writes = writes or ("slice" if tflite else None)
        if tflite and writes == "strided":  # TensorStridedSliceUpdate has no TFLite builtin
            raise ValueError("a TFLite graph writes with 'slice' or 'scatter', not 'strided'")
        loop = cached_loop(model, jit_compile=jit_compile, frozen=not jit_compile, writes=writes)
        self._loop = self._shared_loop(loop.python_function, jit_compile)
        self._forward = self._shared_log_prob()

    @property
    def conditional(self):
        return self.num_classes is not None

    def _shared_loop(self, run, jit_compile):
        """The sampling loop as one concrete function of fixed signature, which every signature calls.

        It is traced once, here, however many signatures sample and however often ExportArchive
        traces them (twice each: once to list their variables, and again inside
        `tf.saved_model.save`, whose save context is part of a `tf.function`'s cache key), and
        the SavedModel holds it once: tracing the loop was most of an export's time. A
        `tf.function` here would be traced again in the save context (as it was before).
        """
        batch = (self.batch_size,)
        specs = [tf.TensorSpec(batch + self.shape + (NOISE_SIZE,), tf.float32, name="noise"),
                 tf.TensorSpec(batch + self.shape, tf.int32, name="known"),
                 tf.TensorSpec(batch + self.shape, tf.bool, name="known_mask"),
                 tf.TensorSpec(batch + (1,), tf.float32, name="temperature")]

        def loop(noise, known, known_mask, temperature, label=None):
            return run(noise, known, known_mask, label, temperature)

        return self._traced_once(loop, specs, jit_compile)

    def _shared_log_prob(self):
        """`log p(images)` per image, `(B,)` nats, as one concrete function (traced once, as the loop)."""
        specs = [tf.TensorSpec((self.batch_size,) + self.shape, tf.int32, name="images")]

        def forward(images, label=None):
            params = self.model([images, label] if self.conditional else images, training=False)
            per_subpixel = self.distribution.portable_log_prob(params, images)  # (B, H, W, C)
            # (B, H, W, C) -> (B, H*W*C) -> (B,)
            return tf.reduce_sum(tf.reshape(per_subpixel, (tf.shape(images)[0], -1)), axis=1)

        return self._traced_once(forward, specs)

    def _traced_once(self, fn, specs, jit_compile=False):
        """`fn`'s concrete function for `specs` (+ an int32 `label (B,)` for a conditional model)."""
        if self.conditional:
            specs = specs + [tf.TensorSpec((self.batch_size,), tf.int32, name="label")]
        return tf.function(fn, input_signature=specs, autograph=False, jit_compile=jit_compile).get_concrete_function()

    # ------------------------------------------------------------------ specs
    def _specs(self, *names):
        batch = (self.batch_size,)
        known = {
            "seed": tf.TensorSpec(batch, tf.int64, name="seed"),
            "label": tf.TensorSpec(batch, tf.int64, name="label"),
            "temperature": tf.TensorSpec(batch, tf.float32, name="temperature"),
            "images": tf.TensorSpec(batch + self.shape, tf.int32 if self.checks else tf.uint8, name="images"),
            "known_mask": tf.TensorSpec(batch + self.shape, tf.bool, name="known_mask"),
        }
        names = [n for n in names if n != "label" or self.conditional]
        return names, [known[n] for n in names]

    def endpoints(self, names=("sample", "sample_with_temperature", "log_prob", "complete")):
        """`{name: (fn, input_signature)}` for the requested functions.

        - `sample`: `seed` int64 `(B,)` [+ `label` int64 `(B,)`] -> `images` uint8 `(B, H, W, C)`.
        - `sample_with_temperature`: the same plus `temperature` float32 `(B,)` (> 0).
        - `log_prob`: `images` `(B, H, W, C)` in [0, 255] (int32 with checks, else uint8)
          [+ `label`] -> `log_prob` (nats) and `bits_per_dim`, float32 `(B,)`.
        - `complete`: `images`, `known_mask` bool `(B, H, W, C)`, `seed` [+ `label`] ->
          `images` with every known sub-pixel kept.
        """
        inputs = {
            "sample": ("seed", "label"),
            "sample_with_temperature": ("seed", "temperature", "label"),
            "log_prob": ("images", "label"),
            "complete": ("images", "known_mask", "seed", "label"),
        }
        result = {}
        for name in names:
            arg_names, specs = self._specs(*inputs[name])
            result[name] = (self._bind(name, arg_names, specs), specs)
        return result

    def _bind(self, name, arg_names, specs):
        """A function of positional tensors in `arg_names` order (signature inputs are named by the specs).

        With checks, every input's shape and batch size are checked first, and a batch of 0
        returns empty outputs without running the model.
        """
        method = getattr(self, f"_{name}")

        def fn(*tensors):
            if not self.checks:
                return method(**dict(zip(arg_names, tensors)))
            tensors = self._check_batch(arg_names, tensors, specs)
            return tf.cond(tf.shape(tensors[0])[0] > 0, lambda: method(**dict(zip(arg_names, tensors))),
                           lambda: self._empty(name))

        fn.__name__ = name
        return fn

    def _empty(self, name):
        """The outputs of endpoint `name` for a batch of 0."""
        if name == "log_prob":
            return {"log_prob": tf.zeros((0,)), "bits_per_dim": tf.zeros((0,))}
        return {"images": tf.zeros((0,) + self.shape, tf.uint8)}

    # ------------------------------------------------------------- functions
    def _sample(self, seed, label=None):
        return self._sample_with_temperature(seed, None, label)

    def _sample_with_temperature(self, seed, temperature=None, label=None):
        batch = tf.shape(seed)[0] if seed.shape[0] is None else seed.shape[0]
        known = tf.zeros((batch,) + self.shape, tf.int32)
        return self._draw(known, tf.zeros_like(known, tf.bool), seed, label, temperature)

    def _complete(self, images, known_mask, seed, label=None):
        images = self._check_images(images)
        return self._draw(images, known_mask, seed, label, None)

    def _draw(self, known, known_mask, seed, label, temperature):
        seed = self._check_seed(seed)
        label = self._check_label(label)
        if temperature is None:
            temperature = tf.ones_like(seed, tf.float32)
        else:
            temperature = self._check_temperature(temperature)
        noise = uniform_noise(seed, tf.zeros_like(seed), self.shape + (NOISE_SIZE,))
        # temperature (B,) -> (B, 1)
        images = self._loop(noise, known, known_mask, temperature[:, None], *([] if label is None else [label]))
        return {"images": tf.cast(images, tf.uint8)}

    def _log_prob(self, images, label=None):
        images = self._check_images(images)
        label = self._check_label(label)
        log_prob = self._forward(images, *([] if label is None else [label]))
        dims = math.prod(self.shape)
        return {"log_prob": log_prob, "bits_per_dim": -log_prob / (dims * math.log(2.0))}

    # ---------------------------------------------------------------- checks
    def _assert(self, value, assertions):
        """`value`, computed only after the assertions `assertions()` makes have passed (no-op without checks)."""
        if not self.checks:
            return value
        with tf.control_dependencies(assertions()):
            return tf.identity(value)

    def _check_batch(self, names, tensors, specs):
        """`tensors`, once each has its spec's shape (rank included), one row per image of the
        first, and at most `max_batch` rows."""
        tensors = [tf.ensure_shape(tensor, spec.shape, name=f"check_shape_{name}")
                   for name, tensor, spec in zip(names, tensors, specs)]
        batch = tf.shape(tensors[0])[0]
        assertions = [tf.debugging.assert_less_equal(
            batch, self.max_batch, message=f"Expected at most {self.max_batch} images per request "
            f"(the export's --max-batch), received more: split the request")]
        assertions += [tf.debugging.assert_equal(tf.shape(tensor)[0], batch, message=f"Expected one {name} per image")
                       for name, tensor in zip(names[1:], tensors[1:])]
        with tf.control_dependencies(assertions):
            return [tf.identity(tensor) for tensor in tensors]

    def _check_images(self, images):
        """int32 images, checked to lie in [0, 255]."""
        images = tf.cast(images, tf.int32)
        return self._assert(images, lambda: [
            tf.debugging.assert_greater_equal(images, 0, message="Expected images in [0, 255]: found a value < 0"),
            tf.debugging.assert_less_equal(images, 255, message="Expected images in [0, 255]: found a value > 255"),
        ])

    def _check_seed(self, seed):
        return self._assert(seed, lambda: [
            tf.debugging.assert_greater_equal(seed, tf.constant(0, tf.int64), message="Expected seed >= 0"),
            tf.debugging.assert_less(seed, tf.constant(NOISE_SEED_LIMIT, tf.int64),
                                     message="Expected seed < 2**32"),
        ])

    def _check_label(self, label):
        if label is None:
            return None
        label = self._assert(label, lambda: [
            tf.debugging.assert_greater_equal(label, tf.constant(0, tf.int64), message="Expected label >= 0"),
            tf.debugging.assert_less(label, tf.constant(self.num_classes, tf.int64),
                                     message=f"Expected label < {self.num_classes} (the model's classes)"),
        ])
        if not self.checks:
            # No assertion op (TFLite): a label outside [0, K) becomes K, which the label embedding's
            # gather refuses ("index out of bounds"), instead of wrapping around (-1 -> K - 1, 2**32 -> 0).
            label = tf.where((label >= 0) & (label < self.num_classes), label, self.num_classes)
        return tf.cast(label, tf.int32)

    def _check_temperature(self, temperature):
        # One comparison that NaN fails: inf, NaN, 0, negatives and subnormals are all refused.
        good = tf.math.is_finite(temperature) & (temperature >= MIN_TEMPERATURE)
        return self._assert(temperature, lambda: [tf.debugging.Assert(
            tf.reduce_all(good), [f"Expected temperature to be a finite number >= {MIN_TEMPERATURE:g}. Received:",
                                  temperature], name="check_temperature")])


def check_max_batch(max_batch):
    """`max_batch` if it is an int in [1, MAX_IMAGES_PER_REQUEST], else ValueError."""
    if not (isinstance(max_batch, int) and not isinstance(max_batch, bool)
            and 1 <= max_batch <= MAX_IMAGES_PER_REQUEST):
        raise ValueError(f"Expected --max-batch to be an integer in [1, {MAX_IMAGES_PER_REQUEST}]. "
                         f"Received: {max_batch!r}")
    return max_batch
