"""Sampling and inpainting, one sub-pixel at a time, inside one `tf.function`.

Two methods compute the same distributions and read the same per-seed noise,
so they draw the same images:

- "naive" re-runs the whole model for every sub-pixel;
- "cached" (default) keeps every layer's activations and computes each layer
  at the new pixel only (`keras_pixelcnn.sampling.incremental`); recurrent layers step
  their state.

Both are explicit `tf.while_loop`s traced with autograph off, so the export
code reuses them unchanged.
"""

import weakref

import numpy as np
import tensorflow as tf

from keras_pixelcnn.distributions import NOISE_SIZE, distribution_of, gumbel_noise
from keras_pixelcnn.sampling.incremental import Plan, Values
from keras_pixelcnn.sampling.values import index_memo, shifted, subpixel
from keras_pixelcnn.sampling.wavefront import wavefront_lag, wavefront_loop
from keras_pixelcnn.likelihood import check_batch_size, check_images, label_array, model_inputs
from keras_pixelcnn.models.inference import inference_model
from keras_pixelcnn.sampling.noise import NOISE_SEED_LIMIT, uniform_noise

METHODS = ("cached", "naive")


def sampling_noise(seeds, image_shape, noise_size=NOISE_SIZE):
    """Uniform noise `(B, H, W, C, noise_size)` in (0, 1); image b's is a pure function of `seeds[b]`.

    One draw per sub-pixel, made before sampling starts, so samplers that
    compute the same distributions draw the same images, and an image does
    not depend on the others in its batch. The noise is a counter-based hash
    (`keras_pixelcnn.sampling.noise`) that TFLite computes bit for bit alike.

    Args:
        seeds: int `(B, 2)` seed pairs `(seed, image index)`, each in [0, 2**32).
        image_shape: `(H, W, C)`.
    """
    seeds = tf.convert_to_tensor(seeds, tf.int64)
    return uniform_noise(seeds[:, 0], seeds[:, 1], tuple(image_shape) + (noise_size,))


def image_seeds(seed, first, count):
    """Seed pairs `(seed, i)` of images `first .. first + count - 1` of a sampling run."""
    return np.stack([np.full(count, seed, np.int64), np.arange(first, first + count, dtype=np.int64)], axis=1)


DEFAULT_BATCH_SIZE = 64
# The smallest temperature: below it `log p / T` overflows float32 even for the most likely value
# (log p >= -log 256), and every value would tie at -inf. T -> 0 tends to `greedy=True`.
MIN_TEMPERATURE = 1e-30
MAX_TEMPERATURE = float(np.finfo(np.float32).max)


def _label_tensor(model, num_images, labels):
    """Labels `(B,)` int32 for a conditional model (checked by `label_array`), None otherwise."""
    labels = label_array(model, labels, num_images)
    return None if labels is None else tf.constant(labels)


def _check_common(num_images, temperature, method, greedy=False):
    if not isinstance(greedy, (bool, np.bool_)):  # "no" is truthy: it sampled greedily
        raise ValueError(f"Expected greedy to be True or False. Received: greedy={greedy!r}")
    if method not in METHODS:
        raise ValueError(f"Expected method in {METHODS}. Received: method={method!r}")
    number = isinstance(temperature, (int, float, np.integer, np.floating)) and not isinstance(
        temperature, (bool, np.bool_))
    # At most float32's largest: the sampler runs in float32 (1e39 failed inside TensorFlow).
    if not (number and np.isfinite(temperature) and MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE):
        raise ValueError(f"Expected temperature to be a finite number >= {MIN_TEMPERATURE:g} "
                         f"and <= {MAX_TEMPERATURE:g}. "
                         f"Received: temperature={temperature!r}")
    if not (isinstance(num_images, (int, np.integer)) and not isinstance(num_images, (bool, np.bool_))
            and num_images > 0):
        raise ValueError(f"Expected num_images to be a positive int. Received: num_images={num_images!r}")


def sample(model, num_images, *, seed=0, temperature=1.0, labels=None, method="cached", greedy=False,
           batch_size=DEFAULT_BATCH_SIZE, progress=None):
    """Draw `num_images` images from an autoregressive model.

    Args:
        model: a keras_pixelcnn model.
        num_images: batch size B.
        seed: integer seed; the same seed gives the same images, whatever the method.
        temperature: softmax temperature (finite, >= 1e-30); lower is more conservative.
        labels: an int or `(B,)` ints for a class-conditional model.
        method: "cached" (incremental, fast) or "naive" (the whole model per sub-pixel).
        greedy: take the most likely value at every step.
        batch_size: images per run of the sampler (64; None: all at once),
            which bounds the memory; image i is drawn with seed pair
            `(seed, i)`, so the images do not depend on the batch size.
        progress: optional callable, given the number of images finished
            after each batch.

    Returns:
        uint8 numpy array `(B, H, W, C)`.

    Raises:
        ValueError: for bad arguments.

    Example:
        >>> images = sample(model, 16, seed=3)
        >>> images.shape, images.dtype
        ((16, 28, 28, 1), dtype('uint8'))
    """
    _check_common(num_images, temperature, method, greedy)
    labels = _label_tensor(model, num_images, labels)
    return _run(model, _Nothing(num_images, tuple(model.inputs[0].shape[1:])), None, seed, labels, temperature,
                method, greedy, batch_size, progress)


def complete(model, images, known_mask, *, seed=0, temperature=1.0, labels=None, method="cached",
             greedy=False, batch_size=DEFAULT_BATCH_SIZE, progress=None):
    """Inpainting: keep the known sub-pixels of `images`, sample the others in raster order.

    Each unknown sub-pixel is drawn from `p(x_k | x_<k)`, the model's exact
    conditional given every earlier sub-pixel, known or sampled. That is the
    exact conditional distribution of the unknown part when all unknown
    sub-pixels come after all known ones (completing the bottom of an image).
    When known sub-pixels follow an unknown one (a hole in the middle), the
    known values after it are not taken into account when it is drawn: an
    autoregressive model cannot condition on the future without search or
    resampling, so the fill is plausible given what is above and left of it
    but may not blend into what is below.

    Args:
        model: a keras_pixelcnn model.
        images: integer images `(B, H, W, C)` in [0, 255]; unknown values are ignored.
        known_mask: bool `(B, H, W, C)`, `(H, W, C)` or `(H, W)`, True where known.
        seed, temperature, labels, method, greedy, batch_size, progress: as in `sample`.

    Returns:
        uint8 numpy array `(B, H, W, C)` equal to `images` wherever `known_mask`.

    Raises:
        ValueError: for bad shapes, dtypes or values.
    """
    images = check_images(model, images)
    _check_common(len(images), temperature, method, greedy)
    known_mask = np.asarray(known_mask)
    if known_mask.dtype != bool:
        raise ValueError(f"Expected a boolean known_mask. Received: dtype={known_mask.dtype}")
    if known_mask.ndim == 2:
        known_mask = known_mask[..., None]
    # (H, W), (H, W, C) or (B, H, W, C), C and B possibly 1: a scalar True or an (H, 1) mask broadcast
    # silently over the whole image.
    if known_mask.ndim not in (3, 4) or known_mask.shape[-3:-1] != images.shape[1:3]:
        raise ValueError(f"Expected known_mask of shape (H, W), (H, W, C) or (B, H, W, C) for images {images.shape}. "
                         f"Received: shape {np.asarray(known_mask).shape}")
    try:
        known_mask = np.broadcast_to(known_mask, images.shape)
    except ValueError:
        raise ValueError(
            f"Expected known_mask broadcastable to {images.shape}. Received: shape {known_mask.shape}"
        ) from None
    labels = _label_tensor(model, len(images), labels)
    return _run(model, images, known_mask, seed, labels, temperature, method, greedy, batch_size, progress)


class _Nothing:
    """`num` images `shape`, none of them known, made one batch at a time (`sample` needs no input)."""

    def __init__(self, num, shape):
        self.shape = (num,) + shape

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        return np.zeros((len(range(*rows.indices(self.shape[0]))),) + self.shape[1:], np.int32)


def _run(model, known, known_mask, seed, labels, temperature, method, greedy, batch_size=None, progress=None):
    """Run the sampler over `known` in batches; image i uses seed pair `(seed, i)`.

    `known_mask` None means nothing is known. A model trained with mixed precision samples
    as its float32 copy (`models.inference`).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < NOISE_SEED_LIMIT:
        raise ValueError(f"Expected an integer seed in [0, 2**32). Received: seed={seed!r}")
    if batch_size is not None:
        batch_size = check_batch_size(batch_size)
    total = len(known)
    try:
        images = np.empty(known.shape, np.uint8)
    except MemoryError:
        raise ValueError(f"Cannot hold {total} images of shape {known.shape[1:]} in memory: ask for fewer") from None
    loop = _loop(inference_model(model), method)
    batch_size = batch_size or total
    for first in range(0, total, batch_size):
        stop = min(first + batch_size, total)
        noise = sampling_noise(image_seeds(seed, first, stop - first), known.shape[1:])
        batch_labels = None if labels is None else labels[first:stop]
        chunk = known[first:stop]
        mask = np.zeros(chunk.shape, bool) if known_mask is None else known_mask[first:stop]
        drawn = loop(noise, tf.constant(chunk), tf.constant(mask), batch_labels,
                     tf.constant(float(temperature)), greedy)
        images[first:stop] = drawn.numpy().astype(np.uint8)
        if progress is not None:
            progress(stop)
    return images


_LOOPS = weakref.WeakKeyDictionary()


def _loop(model, method):
    """The model's sampler for `method`, built (traced, compiled) once per model and input signature."""
    loops = _LOOPS.setdefault(model, {})
    if method not in loops:
        loops[method] = cached_loop(model) if method == "cached" else naive_loop(model)
    return loops[method]


def _pick(distribution, params, channel, noise, previous, known, known_mask, temperature, greedy, gumbel=None):
    """Sample channel `channel` of one pixel `(B,)`, or keep its known value."""
    drawn = distribution.sample_channel(params, channel, noise, previous, temperature, greedy, gumbel)
    return tf.where(known_mask, known, drawn)


def naive_loop(model):
    """`run(noise, known, known_mask, labels, temperature, greedy) -> images` re-running the model per sub-pixel.

    `noise` is `(B, H, W, C, 256)` from `sampling_noise`; `known`/`known_mask`
    `(B, H, W, C)`; `labels` `(B,)` or None. Returns int32 `(B, H, W, C)`.
    `run(..., rows=N)` stops after the first N rows (benchmarks time a prefix).
    """
    distribution = distribution_of(model)

    def run(noise, known, known_mask, labels, temperature, greedy=False, rows=None):
        height, width, channels = known.shape[1:]
        total = (rows or height) * width * channels

        def body(index, images):
            row = index // (width * channels)
            col = (index // channels) % width
            channel = index % channels
            params = model(model_inputs(model, images, labels), training=False)
            values = _pick(distribution, params[:, row, col], channel, noise[:, row, col, channel],
                           images[:, row, col], known[:, row, col, channel],
                           known_mask[:, row, col, channel], temperature, greedy)
            # write values (B,) into images[:, row, col, channel]
            update = tf.one_hot(index, height * width * channels, dtype=tf.int32)
            update = tf.reshape(update, (1, height, width, channels))
            return index + 1, images + update * tf.reshape(values, (-1, 1, 1, 1))

        images = tf.zeros_like(known, tf.int32)
        return tf.while_loop(lambda index, _: index < total, body, (tf.constant(0), images))[1]

    return tf.function(run, autograph=False, reduce_retracing=True)


def _grid_period(plan):
    """The smallest down-sampling factor of `plan` (1 for none): the period of the unrolled loops without XLA.

    A sampler without XLA (banded or not) runs that many image rows per step of its row loop and, in the rows of
    the grid, that many pixels per step of its column loop, so that it knows as the graph is
    built where that factor's runs are computed (`_pixel_grid`): a `tf.cond` per run and pixel
    step passed every input of the run through a Switch in TensorFlow's executor, and was an IF
    op that returned its bands in TFLite. Unrolling by every factor (4 for PixelCNN++) made its
    graph 8 pixel steps long, and its exports twice as slow.
    """
    return min({step.output.factor for step in plan.pixel_steps} - {1}, default=1)


def _pixel_grid(plan, period, row, col):
    """Where a pixel lies on the down-sampling grids, as far as the graph's build knows it.

    Args:
        plan: the `incremental.Plan`.
        period: `_grid_period(plan)`.
        row: the pixel's image row modulo `period`.
        col: its column modulo `period`; not read when `row` is not 0.

    Returns:
        `{factor: True, False or None}` for every factor but 1: on its grid, off it, or decided
        in the graph (a `tf.cond`, `Plan._pixels_on_grid`).
    """
    grid = {}
    for factor in {step.output.factor for step in plan.pixel_steps} - {1}:
        if period % factor == 0:
            grid[factor] = row % factor == 0 and col % factor == 0
        elif factor % period == 0 and (row or col):  # off the period's grid, so off this coarser one too
            grid[factor] = False
        else:
            grid[factor] = None
    return grid


def cached_loop(model, jit_compile=True, banded=None, frozen=False, writes=None, wavefront=None):
    """Like `naive_loop`, computing each layer at the new pixel only (`incremental.Plan`).

    Args:
        model: a keras_pixelcnn model made of layers `incremental` knows.
        jit_compile: compile with XLA, which updates the caches in place.
        banded: write pixels into per-row bands of the caches (`Plan.open_bands`) rather
            than the whole caches: a write that copies what it writes into (TFLite's, or a
            scatter without XLA) then copies a band instead of a cache. Default: for those
            writes only. XLA's scatters and the executor's strided updates write in place,
            and whole caches spare the bands' slicing and row write-backs (the SavedModel's
            sampler at batch 16: 4-18% faster for PixelCNN, Diagonal BiLSTM, PixelSNAIL and
            PixelCNN++, measured in one process; README, "Export and serving").
            Without XLA, when the image's height and width are multiples of the finest
            down-sampling factor, the row loop and the column loops of that factor's grid rows
            run that many rows and pixels per step, unrolled (`_grid_period`), banded or not.
        frozen: read the weights now and build them into the graph as constants
            (`Plan.frozen_weights`), for an exported graph without XLA; the loop then
            ignores later changes of the model's weights.
        writes: how the caches are written (`Plan`): "slice" for a graph converted to TFLite
            (TensorFlow runs it only with XLA). Default: "scatter" with XLA, which updates them
            in place, "strided" without (TensorFlow's executor runs those in place).

        wavefront: draw several pixels per step, one per row (`sampling.wavefront`): for strided
            writes into whole caches, the default where the model allows it (`wavefront_lag`).

    Raises:
        incremental.NotCacheable: for a model the planner cannot run.
    """
    distribution = distribution_of(model)
    writes = writes or ("scatter" if jit_compile else "strided")
    if jit_compile and writes == "strided":  # XLA needs the strided slice's bounds as compile-time constants
        raise ValueError("writes='strided' is for graphs run without XLA: use 'scatter' with jit_compile")
    plan = Plan(model, writes=writes)
    keys = plan.cache_keys()
    image_key = (plan.image.key, None)
    banded = not jit_compile and writes != "strided" if banded is None else banded
    weights = plan.frozen_weights() if frozen else None
    period = _grid_period(plan)
    # the wavefront's skewed caches are whole: bands asked for mean the pixel-by-pixel loop
    lag = wavefront_lag(plan) if writes == "strided" and not banded and wavefront is not False else None
    if wavefront and lag is None:
        raise ValueError("wavefront=True is for models wavefront_lag accepts, with writes='strided' and no bands")
    if lag is not None:
        return wavefront_loop(plan, lag, distribution, _pick, weights)

    def run(noise, known, known_mask, labels, temperature, greedy=False):
        with index_memo():
            return loops(noise, known, known_mask, labels, temperature, greedy)

    def loops(noise, known, known_mask, labels, temperature, greedy):
        height, width, channels = known.shape[1:]
        batch = tf.shape(known)[0] if known.shape[0] is None else known.shape[0]
        start = plan.initial(batch, labels, weights)
        # Whole periods of rows and columns: unrolled (`_grid_period`), else a `tf.cond` per run and pixel.
        static = (banded or not jit_compile) and height % period == 0 and width % period == 0
        rows_per_step = period if static else 1
        # All the Gumbel noise at once: one op before the loop, not two per sub-pixel inside it.
        gumbel = None if greedy else gumbel_noise(noise)

        def pixel_step(pixel, row, col, grid):
            """Draw pixel `(row, col)`: its sub-pixels into `pixel`'s image band, its layers into the other bands."""
            params = plan.pixel(pixel, row, col, grid=grid)
            for channel in range(channels):
                if channel:  # only what reads the channel just drawn changes
                    params = plan.pixel(pixel, row, col, plan.after_channel[channel - 1], grid)
                previous = pixel.window(plan.image, row, 1, col, 1)[:, 0, 0]
                value = _pick(distribution, params, channel, None, previous,
                              subpixel(known, row, col, channel), subpixel(known_mask, row, col, channel),
                              temperature, greedy, None if greedy else subpixel(gumbel, row, col, channel))
                pixel.write_channel(plan.image, row, col, channel, value)
            plan.pixel(pixel, row, col, plan.after_channel[channels - 1], grid)

        def columns(row, opened, offset):
            """The bands after the column loop of image row `row`, `row % period` = `offset` (None: not static)."""
            unroll = period if offset == 0 else 1

            def col_body(group, bands):
                pixel = Values(plan, {**opened.caches, **dict(zip(plan.band_keys, bands))}, start.globals,
                               origins=opened.origins).with_batch_index(batch)
                for col_offset in range(unroll):
                    grid = None if offset is None else _pixel_grid(plan, period, offset, col_offset)
                    pixel_step(pixel, row, shifted(group, col_offset, unroll), grid)
                return shifted(group, 1), [pixel.caches[key] for key in plan.band_keys]

            bands = [opened.caches[key] for key in plan.band_keys]
            return tf.while_loop(lambda group, _: group < width // unroll, col_body, (tf.constant(0), bands))[1]

        def row_body(group, caches):
            values = Values(plan, dict(zip(keys, caches)), start.globals)
            for offset in range(rows_per_step):
                row = shifted(group, offset, rows_per_step)
                plan.rows(values, row)
                opened = plan.open_bands(values, row, banded)
                bands = columns(row, opened, offset if static else None)
                plan.close_bands(values, Values(plan, dict(zip(plan.band_keys, bands)), start.globals,
                                                origins=opened.origins), row)
            return shifted(group, 1), [values.caches[key] for key in keys]

        caches = [start.caches[key] for key in keys]
        caches = tf.while_loop(lambda group, _: group < height // rows_per_step, row_body, (tf.constant(0), caches))[1]
        return caches[keys.index(image_key)]

    # One trace per batch size: XLA needs static shapes to update the caches in place.
    return tf.function(run, autograph=False, jit_compile=jit_compile)
