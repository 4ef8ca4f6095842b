"""RowLSTM and DiagonalLSTM: exact math against numpy loops, dependence, serialization."""


import keras
import numpy as np
import pytest
from helpers import incremental_params, run_script_under_jax, tiny_model

import keras_pixelcnn as kp
from keras_pixelcnn.layers.recurrent import DiagonalLSTM, RowLSTM, lstm_cell
from keras_pixelcnn.layers.shifts import ShiftDown

B, F = 2, 3


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _cell(z, c_prev):
    i, f, o, g = (z[..., gate::4] for gate in range(4))
    c = _sigmoid(f) * c_prev + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def row_lstm_reference(gates, state_kernel, bias):
    """Pixel by pixel: state from h[r-1, j-p .. j+p], cell from c[r-1, j]."""
    batch, height, width, _ = gates.shape
    k, units, _ = state_kernel.shape
    h = np.zeros((batch, height, width, units))
    c = np.zeros_like(h)
    for r in range(height):
        for j in range(width):
            z = gates[:, r, j] + bias
            c_prev = np.zeros((batch, units))
            if r > 0:
                c_prev = c[:, r - 1, j]
                for t in range(k):
                    if 0 <= j + t - k // 2 < width:
                        z = z + h[:, r - 1, j + t - k // 2] @ state_kernel[t]
            h[:, r, j], c[:, r, j] = _cell(z, c_prev)
    return h


def diagonal_lstm_reference(gates, up, side, bias, reverse):
    """Pixel by pixel: state from h[r-1, j] and h[r, j+s], cell from c[r, j+s]."""
    batch, height, width, _ = gates.shape
    units = up.shape[0]
    s = 1 if reverse else -1
    h = np.zeros((batch, height, width, units))
    c = np.zeros_like(h)
    for r in range(height):
        for j in (range(width - 1, -1, -1) if reverse else range(width)):
            z = gates[:, r, j] + bias
            c_prev = np.zeros((batch, units))
            if r > 0:
                z = z + h[:, r - 1, j] @ up
            if 0 <= j + s < width:
                z = z + h[:, r, j + s] @ side
                c_prev = c[:, r, j + s]
            h[:, r, j], c[:, r, j] = _cell(z, c_prev)
    return h


def _random_layer(layer, shape, seed):
    """Build `layer` in float64 with random weights (bias too) and return random gates."""
    rng = np.random.default_rng(seed)
    layer.build(shape)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.6, size=weight.shape))
    return rng.normal(size=shape)


def _run(layer, gates):
    return keras.ops.convert_to_numpy(layer(gates))


SHAPES = [(4, 5), (5, 3), (1, 4), (4, 1)]


@pytest.mark.parametrize("height, width", SHAPES)
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_row_lstm_matches_numpy_loop(float64, height, width, kernel_size):
    layer = RowLSTM(F, kernel_size)
    gates = _random_layer(layer, (B, height, width, 4 * F), seed=kernel_size)
    weights = [keras.ops.convert_to_numpy(w) for w in (layer.state_kernel, layer.bias)]
    assert weights[0].shape == (kernel_size, F, 4 * F)
    np.testing.assert_allclose(_run(layer, gates), row_lstm_reference(gates, *weights), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("height, width", SHAPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_diagonal_lstm_matches_numpy_loop(float64, height, width, reverse):
    layer = DiagonalLSTM(F, reverse=reverse)
    gates = _random_layer(layer, (B, height, width, 4 * F), seed=height * 10 + width)
    weights = [keras.ops.convert_to_numpy(w) for w in (layer.up_kernel, layer.side_kernel, layer.bias)]
    expected = diagonal_lstm_reference(gates, *weights, reverse=reverse)
    np.testing.assert_allclose(_run(layer, gates), expected, rtol=1e-12, atol=1e-12)


def _dependence(layer, height, width):
    """reads[r, j, r', j']: whether output (r, j) changes when input gates at (r', j') change."""
    gates = _random_layer(layer, (1, height, width, 4 * F), seed=7)
    base = _run(layer, gates)[0]
    reads = np.zeros((height, width, height, width), dtype=bool)
    noise = np.random.default_rng(8).normal(size=4 * F)
    for r in range(height):
        for j in range(width):
            moved = gates.copy()
            moved[0, r, j] += noise
            change = np.abs(_run(layer, moved)[0] - base).max(axis=-1)
            reads[:, :, r, j] = change > 0
            # Where it is read, it is read for real (not round-off).
            assert change[change > 0].min() > 1e-10
    return reads


def _expected(height, width, rule):
    r, j, r2, j2 = np.meshgrid(*(np.arange(n) for n in (height, width, height, width)), indexing="ij")
    return rule(r, j, r2, j2)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_row_lstm_reads_the_triangle_above(float64, kernel_size):
    """Output (r, j) reads input (r', j') iff r' <= r and |j' - j| <= (k // 2) * (r - r')."""
    height, width = 4, 7
    reads = _dependence(RowLSTM(F, kernel_size), height, width)
    expected = _expected(height, width,
                         lambda r, j, r2, j2: (r2 <= r) & (np.abs(j2 - j) <= kernel_size // 2 * (r - r2)))
    np.testing.assert_array_equal(reads, expected)


@pytest.mark.parametrize("reverse", [False, True])
def test_diagonal_lstm_reads_the_quadrant(float64, reverse):
    """Left to right, output (r, j) reads input (r', j') iff r' <= r and j' <= j (mirrored if reverse)."""
    height, width = 4, 5
    reads = _dependence(DiagonalLSTM(F, reverse=reverse), height, width)
    side = (lambda j, j2: j2 >= j) if reverse else (lambda j, j2: j2 <= j)
    expected = _expected(height, width, lambda r, j, r2, j2: (r2 <= r) & side(j, j2))
    np.testing.assert_array_equal(reads, expected)


@pytest.mark.parametrize("make", [lambda: RowLSTM(2 * F, 3), lambda: DiagonalLSTM(2 * F),
                                  lambda: DiagonalLSTM(2 * F, reverse=True)],
                         ids=["row", "diagonal", "diagonal_reverse"])
def test_feature_reads_only_its_own_gates_at_its_pixel(float64, make):
    """At its own pixel, feature k reads gate channels 4k .. 4k + 3 only (keeps colour groups)."""
    layer = make()
    gates = _random_layer(layer, (1, 3, 3, 8 * F), seed=9)
    base = _run(layer, gates)[0, 1, 1]
    for channel in range(8 * F):
        moved = gates.copy()
        moved[0, 1, 1, channel] += 1.0
        changed = np.flatnonzero(_run(layer, moved)[0, 1, 1] != base)
        np.testing.assert_array_equal(changed, [channel // 4])


def test_lstm_cell_is_the_documented_update():
    rng = np.random.default_rng(12)
    gates, c_prev = rng.normal(size=(2, 3, 4 * F)), rng.normal(size=(2, 3, F))
    h, c = (keras.ops.convert_to_numpy(v) for v in lstm_cell(gates, c_prev))
    want_h, want_c = _cell(gates, c_prev)
    np.testing.assert_allclose(h, want_h, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(c, want_c, rtol=1e-6, atol=1e-6)
    # One pixel without a batch axis, as a per-pixel sampler calls it.
    h, c = (keras.ops.convert_to_numpy(v) for v in lstm_cell(gates[0, 0], c_prev[0, 0]))
    np.testing.assert_allclose(h, want_h[0, 0], rtol=1e-6, atol=1e-6)


def test_config_round_trip():
    for layer in (RowLSTM(5, kernel_size=5, unit_forget_bias=False, name="row"),
                  DiagonalLSTM(5, reverse=True, recurrent_initializer="glorot_uniform", name="diag")):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
    assert RowLSTM(5, kernel_size=5).get_config()["kernel_size"] == 5
    assert DiagonalLSTM(5, reverse=True).get_config()["reverse"] is True


def test_forget_bias_starts_at_one():
    layer = RowLSTM(3)
    layer.build((None, 4, 4, 12))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.bias), np.tile([0, 1, 0, 0], 3))


def test_keras_file_round_trip(tmp_path):
    inputs = keras.Input((4, 5, 4 * F))
    outputs = [RowLSTM(F, name="row")(inputs), DiagonalLSTM(F, name="l2r")(inputs),
               DiagonalLSTM(F, reverse=True, name="r2l")(inputs)]
    model = keras.Model(inputs, outputs)
    model.set_weights([np.random.default_rng(i).normal(size=w.shape) for i, w in enumerate(model.weights)])
    x = np.random.default_rng(10).normal(size=(2, 4, 5, 4 * F)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert [type(layer) for layer in loaded.layers[1:]] == [RowLSTM, DiagonalLSTM, DiagonalLSTM]
    assert loaded.get_layer("r2l").reverse
    for got, want in zip(loaded.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: RowLSTM(0), "units=0"),
        (lambda: RowLSTM(4, kernel_size=2), "kernel_size=2"),
        (lambda: DiagonalLSTM(4, reverse="yes"), "reverse='yes'"),
        (lambda: RowLSTM(4)(np.zeros((1, 3, 3, 8))), r"input_shape=\(1, 3, 3, 8\)"),
        (lambda: DiagonalLSTM(2)(np.zeros((1, 3, 3, 4))), r"input_shape=\(1, 3, 3, 4\)"),
    ],
)
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match="Received: .*" + message):
        make()


def test_gradients_flow_under_xla():
    """Trains with `jit_compile=True` (XLA on the TensorFlow backend) and reaches every weight."""
    inputs = keras.Input((4, 4, 4 * F))
    h = keras.layers.Add()([RowLSTM(F)(inputs), DiagonalLSTM(F)(inputs), DiagonalLSTM(F, reverse=True)(inputs)])
    model = keras.Model(inputs, h)
    before = [keras.ops.convert_to_numpy(w) for w in model.weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True)
    x = np.random.default_rng(11).normal(size=(4, 4, 4, 4 * F)).astype("float32")
    model.fit(x, np.ones((4, 4, 4, F), "float32"), epochs=2, verbose=0)
    for old, new in zip(before, model.weights):
        assert np.abs(keras.ops.convert_to_numpy(new) - old).max() > 0, new.path


_JAX_SCRIPT = """
import sys
import numpy as np, keras
from keras_pixelcnn.layers.recurrent import DiagonalLSTM, RowLSTM
x = np.random.default_rng(0).normal(size=(2, 3, 4, 8)).astype("float32")
inputs = keras.Input((3, 4, 8))
outputs = [RowLSTM(2, name="row")(inputs), DiagonalLSTM(2, name="l2r")(inputs),
           DiagonalLSTM(2, reverse=True, name="r2l")(inputs)]
model = keras.Model(inputs, keras.layers.Concatenate()(outputs))
weights = {w.path.replace("/", "."): np.array(w) for w in model.weights}
np.savez(sys.argv[1], x=x, y=model.predict(x, verbose=0), **weights)  # predict runs under jax.jit
before = [np.array(w) for w in model.weights]
model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
model.fit(x, np.ones((2, 3, 4, 6), "float32"), epochs=1, verbose=0)
assert all(np.abs(np.array(w) - old).max() > 0 for w, old in zip(model.weights, before))
print("ok")
"""


def test_runs_and_trains_under_jax_jit(tmp_path):
    """With KERAS_BACKEND=jax the jitted layers match the numpy loops and train."""
    pytest.importorskip("jax")
    path = tmp_path / "jax.npz"
    result = run_script_under_jax(_JAX_SCRIPT, path)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
    saved = np.load(path)
    x = saved["x"].astype(np.float64)
    expected = np.concatenate([
        row_lstm_reference(x, saved["row.state_kernel"], saved["row.bias"]),
        diagonal_lstm_reference(x, saved["l2r.up_kernel"], saved["l2r.side_kernel"], saved["l2r.bias"], False),
        diagonal_lstm_reference(x, saved["r2l.up_kernel"], saved["r2l.side_kernel"], saved["r2l.bias"], True),
    ], axis=-1)
    np.testing.assert_allclose(saved["y"], expected, atol=1e-5)


@pytest.mark.parametrize("architecture", ["row_lstm", "diagonal_bilstm"])
def test_models_have_one_recurrence_per_layer_and_direction(architecture):
    model = kp.build_model(architecture, (5, 5, 3), filters=12, num_layers=3)
    lstms = [layer for layer in model.layers if isinstance(layer, (RowLSTM, DiagonalLSTM))]
    if architecture == "row_lstm":
        assert [type(layer) for layer in lstms] == [RowLSTM] * 3
        assert all(layer.units == 6 and layer.kernel_size == 3 for layer in lstms)
        assert model.get_layer("block0_input_to_state").kernel_size == (1, 3)
    else:
        assert sorted(layer.reverse for layer in lstms) == [False] * 3 + [True] * 3
        for index in range(3):
            # Only the right-to-left output is shifted down before it is used.
            shift = model.get_layer(f"block{index}_r2l_shift")
            assert isinstance(shift, ShiftDown)
            assert shift.input._keras_history.operation is model.get_layer(f"block{index}_r2l_lstm")
            assert model.get_layer(f"block{index}_l2r_input_to_state").kernel_size == (1, 1)


@pytest.mark.parametrize("architecture", ["row_lstm", "diagonal_bilstm"])
def test_filters_must_split_into_colour_groups(architecture):
    """filters = 2F with F divisible by C: 12 works for RGB, 9 and 15 do not, 7 not for grey."""
    assert kp.build_model(architecture, (4, 4, 3), filters=12, num_layers=1).get_layer("stem").filters == 12
    for filters, channels in [(9, 3), (15, 3), (7, 1)]:
        with pytest.raises(ValueError, match=f"Received: filters={filters}"):
            kp.build_model(architecture, (8, 8, channels), filters=filters)


def test_row_lstm_kernel_size_must_be_odd():
    with pytest.raises(ValueError, match="Received: kernel_size=4"):
        kp.build_model("row_lstm", (8, 8, 1), kernel_size=4)


@pytest.mark.parametrize("architecture", ["row_lstm", "diagonal_bilstm"])
def test_default_config_runs_on_28x28(architecture):
    model = kp.build_model(architecture, (28, 28, 1))
    assert model.get_layer("stem").filters == 64
    images = np.random.default_rng(13).integers(0, 256, (2, 28, 28, 1))
    bits = kp.bits_per_dim(model, images)
    assert np.all(np.isfinite(bits)) and np.all(bits > 0)


@pytest.mark.parametrize("writes", ["scatter", "strided"])
def test_the_diagonal_bilstm_engine_computes_the_models_parameters_at_every_pixel(writes):
    """Sharper than equal draws (a small error rarely flips a Gumbel argmax): the incremental engine's
    parameters at every pixel of a known colour image equal the model's, within float32 round-off. With
    strided writes (the SavedModel's executor) the right-to-left rows of its three layers run as one LSTM
    (`rules.run_rows`, `_DiagonalLSTM.rows_together`); with scatters (XLA's) one layer at a time."""
    model = tiny_model("diagonal_bilstm", 3, num_classes=3, size=5, seed=5, num_layers=3)
    images = np.random.default_rng(6).integers(0, 256, (2, 5, 5, 3)).astype(np.int32)
    labels = np.array([1, 2], np.int32)
    expected = keras.ops.convert_to_numpy(model([images, labels]))
    np.testing.assert_allclose(incremental_params(model, images, labels, writes=writes), expected, atol=1e-5)
