"""Sampling and inpainting: the cached sampler against the naive one, for every architecture."""

from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_pixelcnn as kp
from helpers import peaked_model, tiny_model
from keras_pixelcnn.distributions import NOISE_SIZE
from keras_pixelcnn.sampling import incremental, rules, sampler
from keras_pixelcnn.sampling import cached_loop, complete, image_seeds, naive_loop, sample, sampling_noise

# The architectures whose loop without XLA is the wavefront (`sampling.wavefront`)
WAVEFRONT = ("pixelcnn", "row_lstm")
CASES = [
    (architecture, channels, num_classes)
    for architecture in kp.ARCHITECTURES
    for channels, num_classes in [(1, None), (3, 3)]
]




def _labels(num_classes, batch):
    return None if num_classes is None else np.arange(batch) % num_classes


@pytest.mark.parametrize("architecture, channels, num_classes", CASES)
def test_cached_equals_naive_for_a_seed(architecture, channels, num_classes):
    model = tiny_model(architecture, channels, num_classes)
    labels = _labels(num_classes, 3)
    naive = sample(model, 3, seed=11, labels=labels, method="naive")
    cached = sample(model, 3, seed=11, labels=labels, method="cached")
    np.testing.assert_array_equal(cached, naive)
    assert cached.dtype == np.uint8 and cached.shape == (3, 4, 4, channels)
    # Not a constant image: the draw used the noise.
    assert len(np.unique(cached)) > 4


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_loops_without_xla_draw_the_naive_images(architecture, monkeypatch):
    """Without XLA, weights frozen (as exported), same images as naive: the SavedModel's loop (whole caches,
    strided writes in place), the same with per-row bands, and scatters into bands (export_sampling's
    baseline; TFLite's banded loop is checked by its exports). XLA refuses strided writes.

    8x12 colour, class-conditional, half the sub-pixels known: bands of every depth, each
    channel's write, PixelCNN++'s down-sampled rows and its loops unrolled by its factor-2 grid
    (the factor-4 runs in conds), and inpainting; the SavedModel's loop also for one image (PixelSNAIL's
    attention takes 2-D matmuls there). A peaked model: with near-uniform conditionals, skipping the
    factor-2 runs at half their pixels still drew the naive images.
    """
    # the small model's rows take the SavedModel's matmuls too (a default model's take them from 64 inputs)
    monkeypatch.setattr(rules, "ROW_MATMUL_MIN_INPUTS", 1)
    model = peaked_model(architecture, 3, size=(8, 12), seed=2)
    rng = np.random.default_rng(1)
    known = tf.constant(rng.integers(0, 256, (2, 8, 12, 3)), tf.int32)
    mask = tf.constant(rng.random((2, 8, 12, 3)) < 0.5)
    args = (sampling_noise(image_seeds(5, 0, 2), (8, 12, 3)), known, mask, tf.constant([0, 2]), tf.constant(1.0))
    naive = naive_loop(model)(*args).numpy()
    assert len(np.unique(naive[~mask.numpy()])) > 20  # drawn, not constant
    # PixelCNN's and Row LSTM's default is the wavefront (`sampling.wavefront`, its own test); their
    # pixel-by-pixel loop too (asking for bands also gives it)
    cases = [("strided", False), ("strided", True), ("scatter", True)]
    for writes, banded in cases + ([("strided", "pixel by pixel")] if architecture in WAVEFRONT else []):
        loop = cached_loop(model, jit_compile=False, banded=banded is True, frozen=True, writes=writes,
                           wavefront=False if banded == "pixel by pixel" else None)
        np.testing.assert_array_equal(loop(*args).numpy(), naive, err_msg=f"{writes}, banded={banded}")
        if (writes, banded) == ("strided", False):  # one image: its own products (PixelSNAIL's 2-D matmuls)
            one = [a[:1] for a in args[:4]] + [args[4]]
            np.testing.assert_array_equal(loop(*one).numpy(), naive[:1], err_msg="strided, one image")
    with pytest.raises(ValueError, match="without XLA"):
        cached_loop(model, jit_compile=True, writes="strided")


def _least_lag(dependencies, height, width, channels):
    """The least lag L such that every pixel is drawn at a later step `c + L * r` than each pixel its
    conditionals move with (`dependency_matrix`, sub-pixels in raster order), from the measured matrix."""
    lag = 1
    for k, j in zip(*np.nonzero(dependencies)):
        (rk, ck), (rj, cj) = divmod(k // channels, width), divmod(j // channels, width)
        if rj < rk:
            lag = max(lag, (cj - ck) // (rk - rj) + 1)
    return lag


@pytest.mark.parametrize("architecture, stem, kernel", [
    ("pixelcnn", 7, 3), ("pixelcnn", 3, 5), ("pixelcnn", 3, 3), ("row_lstm", 3, 5)])
def test_the_wavefront_loop_draws_the_naive_images_at_the_least_lag_the_dependencies_allow(architecture, stem, kernel):
    """The loop without XLA (the SavedModel's) of PixelCNN and Row LSTM draws a pixel per row at once,
    pixel (r, c) at step c + lag * r (`sampling.wavefront`). Its lag is the least that the model's
    measured dependencies allow (`causality.dependency_matrix`, an independent measure), and it draws the
    naive images: colour, conditional, half the sub-pixels known, a temperature per image, at a width that
    is a multiple of the lag and one that is not (lanes right of the image), and at 3 rows for more lanes
    than that; and greedily.

    Where PixelCNN's stem sets the lag, one lag less reads image pixels before they are drawn: other
    images (the farthest tap of each row above is made strong, so that reading it as 0 moves the draws).
    Where a later layer sets it (PixelCNN's 5x5, the Row LSTM's state of the row above), one lag less
    reads a pixel whose channels are not all drawn yet, through that layer: the dependency is real (the
    measured lag) but too weak in these models to move a draw, so only the lag is checked there."""
    from keras_pixelcnn.causality import dependency_matrix
    from keras_pixelcnn.layers.masked_conv import MaskedConv2D
    from keras_pixelcnn.sampling import wavefront

    rng = np.random.default_rng(3)
    for size in [(5, 8), (6, 7), (3, 13)]:
        model = peaked_model(architecture, 3, size=size, seed=1, stem_kernel_size=stem, kernel_size=kernel)
        for layer in model.layers:
            if isinstance(layer, MaskedConv2D) and layer.kernel_size[0] > 1:
                kernel_weights, *rest = layer.get_weights()
                kh, kw = layer.kernel_size
                kernel_weights[kh // 2 - 1, kw - 1] *= 30
                layer.set_weights([kernel_weights] + rest)
        lag = wavefront.wavefront_lag(incremental.Plan(model, writes="strided"))
        if size == (5, 8):
            measured = _least_lag(dependency_matrix(model, rng.integers(0, 256, size + (3,)), labels=1), *size, 3)
            assert lag == measured == max(stem // 2, kernel // 2) + 1, (lag, measured)
        known = tf.constant(rng.integers(0, 256, (2,) + size + (3,)), tf.int32)
        mask = tf.constant(rng.random((2,) + size + (3,)) < 0.5)
        args = (sampling_noise(image_seeds(5, 0, 2), size + (3,)), known, mask, tf.constant([0, 2]),
                tf.constant([[0.7], [1.4]]))
        naive = naive_loop(model)(*args).numpy()
        assert len(np.unique(naive[~mask.numpy()])) > 20  # drawn, not constant
        loop = cached_loop(model, jit_compile=False, frozen=True)
        np.testing.assert_array_equal(loop(*args).numpy(), naive, err_msg=f"{size}")
        np.testing.assert_array_equal(loop(*args, greedy=True).numpy(), naive_loop(model)(*args, greedy=True).numpy(),
                                      err_msg=f"{size}, greedy")
        if architecture == "pixelcnn" and stem >= kernel:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(sampler, "wavefront_lag", lambda plan: lag - 1)
                assert (cached_loop(model, jit_compile=False, frozen=True)(*args).numpy() != naive).mean() > 0.02


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_only_models_computed_pixel_by_pixel_take_the_wavefront(architecture):
    """The wavefront needs every tensor computed pixel by pixel at full resolution by rules that know their
    reach; the other architectures (vertical stacks, right-to-left LSTMs, down-sampled streams, attention)
    keep the pixel-by-pixel loop, and asking them for a wavefront is refused."""
    from keras_pixelcnn.sampling import wavefront

    model = tiny_model(architecture, 1)
    lag = wavefront.wavefront_lag(incremental.Plan(model, writes="strided"))
    assert (lag is not None) == (architecture in WAVEFRONT), lag
    if lag is None:
        with pytest.raises(ValueError, match="wavefront"):
            cached_loop(model, jit_compile=False, wavefront=True)


def _plan_of_factors(*factors):
    """A stand-in for `incremental.Plan` with pixel steps of the given down-sampling factors."""
    return SimpleNamespace(pixel_steps=[SimpleNamespace(output=SimpleNamespace(factor=f)) for f in factors])


def test_the_loops_without_xla_know_each_factors_grid_where_they_can():
    """PixelCNN++'s factors 2 and 4: a period of 2, factor 2 known at every offset, factor 4 off its grid
    off factor 2's and left to a cond on it; a factor that is not a multiple of the period always a cond."""
    plan = _plan_of_factors(1, 2, 4, 2, 1)
    assert sampler._grid_period(plan) == 2
    assert sampler._pixel_grid(plan, 2, 0, 0) == {2: True, 4: None}
    for row, col in [(0, 1), (1, 0), (1, 1)]:
        assert sampler._pixel_grid(plan, 2, row, col) == {2: False, 4: False}
    plan = _plan_of_factors(2, 3)
    assert sampler._pixel_grid(plan, 2, 0, 0) == {2: True, 3: None}
    assert sampler._pixel_grid(plan, 2, 1, 0) == {2: False, 3: None}
    assert sampler._grid_period(_plan_of_factors(1, 1)) == 1 and sampler._pixel_grid(_plan_of_factors(1), 1, 0, 0) == {}


def _repeated_index_ops(graph_def):
    """How many int32 Pack, AddV2, Sub, Mul and FloorDiv ops repeat another of their graph (same type,
    same inputs, a Const input taken by its value), over the loop's graph and every body and branch."""
    repeated = 0
    for nodes in [graph_def.node] + [function.node_def for function in graph_def.library.function]:
        constants = {n.name: n.attr["value"].tensor.SerializeToString() for n in nodes if n.op == "Const"}
        seen = set()
        for n in nodes:
            if n.op in ("Pack", "AddV2", "Sub", "Mul", "FloorDiv") and n.attr["T"].type == tf.int32.as_datatype_enum:
                key = (n.op, n.attr["axis"].i, tuple(constants.get(name.split(":")[0], name) for name in n.input))
                repeated += key in seen
                seen.add(key)
    return repeated


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_a_traced_sampling_loop_makes_each_index_once_and_writes_as_asked(architecture, monkeypatch):
    """An exported loop's windows, writes and sub-pixel reads share their index arithmetic
    (`values.index_memo`): made per layer, it was 40% of the shipped PixelCNN++'s exported loop, and
    an export's tracing, saving and conversion take time per node. And its cache writes are all of one
    kind: TFLite's DynamicUpdateSlices, the executor's in-place strided updates without XLA, XLA's
    scatters. Colour, conditional."""
    model = tiny_model(architecture, 3, 3)
    shape = tuple(model.inputs[0].shape[1:])
    specs = [tf.TensorSpec((2,) + shape + (NOISE_SIZE,), tf.float32), tf.TensorSpec((2,) + shape, tf.int32),
             tf.TensorSpec((2,) + shape, tf.bool), tf.TensorSpec((2,), tf.int32), tf.TensorSpec((), tf.float32)]
    write_ops = {"slice": "XlaDynamicUpdateSlice", "strided": "TensorStridedSliceUpdate",
                 "scatter": "TensorScatterUpdate"}
    # (writes asked, XLA, writes made, bands by default)
    cases = [("slice", False, "slice", True), (None, False, "strided", False), ("scatter", False, "scatter", True),
             (None, True, "scatter", False)]
    opened = []
    open_bands = incremental.Plan.open_bands
    monkeypatch.setattr(incremental.Plan, "open_bands",
                        lambda plan, values, row, banded=True: opened.append(banded) or open_bands(plan, values, row, banded))
    loops = {}
    for writes, jit_compile, wanted, bands in cases:
        # TFLite's graph, the SavedModel's (the default without XLA), one with scatters, the in-process XLA
        # sampler's (traced, not compiled; scatters by default, which XLA updates in place)
        opened.clear()
        loop = cached_loop(model, jit_compile=jit_compile, frozen=not jit_compile, writes=writes)
        graph_def = loop.get_concrete_function(*specs).graph.as_graph_def()
        assert _repeated_index_ops(graph_def) == 0
        # bands only where a write copies what it writes into (TFLite's, scatters without XLA); PixelCNN's and
        # Row LSTM's SavedModel loop is the wavefront, whose skewed caches are whole
        wave = architecture in WAVEFRONT and wanted == "strided"
        assert not opened if wave else opened and set(opened) == {bands}, (writes, jit_compile, set(opened))
        # every cache write is of the kind asked for
        nodes = [n for ns in [graph_def.node] + [f.node_def for f in graph_def.library.function] for n in ns]
        ops = {n.op for n in nodes}
        wanted = write_ops[wanted]
        assert wanted in ops and not (set(write_ops.values()) - {wanted}) & ops, (writes, ops & set(write_ops.values()))
        # PixelSNAIL's per-head products: einsums under XLA only (without it they transposed whole caches)
        if architecture == "pixelsnail":
            assert ("Einsum" in ops) == jit_compile, (writes, jit_compile)
        loops[writes, jit_compile] = sum(n.op in ("While", "StatelessWhile") for n in nodes)
    # Without XLA, banded or not, PixelCNN++'s loops are unrolled by its factor-2 grid (`_grid_period`): a row
    # loop step runs an even row's column loop (two pixels a step) and an odd row's, where XLA's runs one.
    # The wavefront is one loop over its steps, where the others have a row loop and a column loop.
    if architecture in WAVEFRONT:
        assert loops[None, False] == 1 and loops["slice", False] == loops[None, True] == 2, loops
    else:
        assert loops[None, False] == loops["slice", False] == loops[None, True] + (architecture == "pixelcnn_pp"), loops


@pytest.mark.parametrize("block", [False, True])
def test_a_strided_cache_write_is_the_numpy_assignment_and_leaves_its_input_alone(block):
    """`values.strided_update`, the SavedModel sampler's cache write (run in place by TensorFlow's executor when
    it may), against numpy, at every position of a small cache, for a free batch size. Its input is still
    read after the write: an op that wrote into the buffer regardless (`InplaceUpdate`) would change
    what that read sees, and the untouched input the caller still holds."""
    from keras_pixelcnn.sampling.values import strided_update

    rng = np.random.default_rng(0)
    cache = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    update = rng.standard_normal((2, 2, 3, 3) if block else (2, 3)).astype(np.float32)
    # a block's rows and columns unknown to the trace (as a row write of PixelCNN++'s with a free batch)
    spec = [tf.TensorSpec((None, 4, 5, 3)), tf.TensorSpec((None, None, None, 3) if block else (None, 3)),
            tf.TensorSpec((), tf.int32),
            tf.TensorSpec((), tf.int32)]

    @tf.function(input_signature=spec, autograph=False)
    def write(cache, update, row, col):
        before = cache * 1.0  # a fresh buffer the write may take over
        written = strided_update(before, update, [row, col, 0] if block else [row, col])
        with tf.control_dependencies([written]):
            return written, tf.identity(before)  # `before` read after the write: still the old values

    for row in range(4 - (1 if block else 0)):
        for col in range(5 - (2 if block else 0)):
            got, before = (t.numpy() for t in write(cache, update, row, col))
            want = cache.copy()
            if block:
                want[:, row:row + 2, col:col + 3] = update
            else:
                want[:, row, col] = update
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(before, cache)
    point = tf.function(lambda c, v, r, k, ch: strided_update(c, v, [r, k, ch]), autograph=False)
    got = point(cache, update[:, 0] if not block else update[:, 0, 0, 0], 1, 2, 2).numpy()  # one channel (B,)
    want = cache.copy()
    want[:, 1, 2, 2] = update[:, 0] if not block else update[:, 0, 0, 0]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_cached_equals_naive_on_a_wide_image(architecture):
    """8x12 (not square): rows become final on schedule whatever the width."""
    model = tiny_model(architecture, 1, size=(8, 12), seed=1)
    np.testing.assert_array_equal(sample(model, 2, seed=5, method="cached"),
                                  sample(model, 2, seed=5, method="naive"))


def test_same_seed_same_images_other_seed_other_images():
    model = tiny_model("pixelcnn", 1)
    first = sample(model, 4, seed=3)
    np.testing.assert_array_equal(sample(model, 4, seed=3), first)
    assert not np.array_equal(sample(model, 4, seed=4), first)


def test_low_temperature_tends_to_greedy():
    model = tiny_model("pixelcnn", 3, 3)
    greedy = sample(model, 2, seed=0, labels=1, greedy=True)
    np.testing.assert_array_equal(sample(model, 2, seed=9, labels=1, temperature=1e-6), greedy)
    assert not np.array_equal(sample(model, 2, seed=9, labels=1, temperature=1.0), greedy)


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_completion_keeps_every_known_subpixel(architecture):
    model = tiny_model(architecture, 3)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 4, 4, 3))
    known = rng.random((3, 4, 4, 3)) < 0.5
    cached = complete(model, images, known, seed=2, method="cached")
    np.testing.assert_array_equal(cached[known], images[known])
    np.testing.assert_array_equal(cached, complete(model, images, known, seed=2, method="naive"))
    # Unknown sub-pixels are drawn, not copied.
    assert np.mean(cached[~known] != images[~known]) > 0.5


def test_completion_of_the_bottom_half_follows_the_sampler():
    """With nothing known, completion is sampling; with the top known, it keeps the top."""
    model = tiny_model("pixelcnn", 1)
    drawn = sample(model, 2, seed=7)
    nothing = np.zeros((4, 4), bool)
    np.testing.assert_array_equal(complete(model, np.zeros_like(drawn), nothing, seed=7), drawn)
    top = np.zeros((4, 4), bool)
    top[:2] = True
    # The top of `drawn` is what the sampler drew for this seed, so the bottom follows the same draw.
    np.testing.assert_array_equal(complete(model, drawn, top, seed=7), drawn)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method="fast"), "method='fast'"),
        (dict(temperature=0), "temperature=0"),
        (dict(labels=1), "unconditional"),
    ],
)
def test_bad_sampling_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample(tiny_model("pixelcnn", 1), 2, **kwargs)


def test_bad_completion_arguments():
    model = tiny_model("pixelcnn", 1)
    images = np.zeros((2, 4, 4, 1), np.int32)
    with pytest.raises(ValueError, match="boolean known_mask"):
        complete(model, images, np.zeros((4, 4), np.int32))
    with pytest.raises(ValueError, match=r"Expected known_mask of shape \(H, W\), \(H, W, C\) or \(B, H, W, C\) for "
                                         r"images \(2, 4, 4, 1\)\. Received: shape \(3, 3"):
        complete(model, images, np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="Received values in"):
        complete(model, images + 300, np.zeros((4, 4), bool))


def test_planner_rejects_an_unknown_layer():
    inputs = keras.Input((4, 4, 1), dtype="int32")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(256, 3, padding="same", name="plain_conv")(x)
    outputs = kp.PixelDistribution("categorical", 1)(x)
    with pytest.raises(incremental.NotCacheable, match="plain_conv"):
        incremental.Plan(keras.Model(inputs, outputs))


def test_planner_rejects_a_vertical_stack_read_in_its_own_row():
    """A "V" stack sees pixels to the right in its row; without a down-shift the plan must refuse it."""
    inputs = keras.Input((4, 4, 1), dtype="int32")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = kp.MaskedConv2D(8, 3, "V", name="vertical")(x)
    x = kp.MaskedConv2D(256, 1, "B", name="logits")(x)
    outputs = kp.PixelDistribution("categorical", 1)(x)
    with pytest.raises(incremental.NotCacheable, match="model output"):
        incremental.Plan(keras.Model(inputs, outputs))


def test_images_do_not_depend_on_the_batch_size_and_progress_is_reported():
    model = tiny_model("pixelcnn", 1)
    done = []
    in_batches = sample(model, 5, seed=8, batch_size=2, progress=done.append)
    np.testing.assert_array_equal(in_batches, sample(model, 5, seed=8))
    assert done == [2, 4, 5]


def test_labels_must_be_classes_of_the_model():
    model = tiny_model("pixelcnn", 1, num_classes=3)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        sample(model, 2, labels=3)
    with pytest.raises(ValueError, match="one label or 2 labels"):
        sample(model, 2, labels=[0, 1, 2])


def test_cached_equals_naive_through_a_right_shift():
    """`ShiftRight` (no built-in architecture uses it): its per-pixel cache rule against the naive sampler."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((4, 5, 1), dtype="int32")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = kp.MaskedConv2D(8, 3, "A", name="stem")(x)
    x = kp.ShiftRight(name="right")(x)  # pixel (r, c) reads the stem at (r, c - 1)
    x = kp.MaskedConv2D(8, 3, "B", name="mix", activation="relu")(x)
    x = kp.MaskedConv2D(256, 1, "B", name="logits")(x)
    model = keras.Model(inputs, kp.PixelDistribution("categorical", 1)(x))
    np.testing.assert_array_equal(sample(model, 3, seed=2, method="cached"), sample(model, 3, seed=2, method="naive"))
