"""PixelSNAIL: the attention layer against a numpy reference, the categorical variant's proofs, the options.

The mixture variant (the default) goes through every suite parametrized over
`kp.ARCHITECTURES`; the categorical one, which reads the current pixel's earlier
channels through its head, gets causality and cached == naive here.
"""


import keras
import numpy as np
import pytest
from helpers import incremental_params, run_script_under_jax

import keras_pixelcnn as kp
from keras_pixelcnn.causality import dependency_matrix
from keras_pixelcnn.layers.attention import CausalAttention, masked_softmax
from keras_pixelcnn.layers.masked_conv import MaskedConv2D
from keras_pixelcnn.layers.recurrent import RowLSTM
from keras_pixelcnn.models.common import model_inputs
from keras_pixelcnn.sampling import sample
from keras_pixelcnn.sampling.incremental import Plan


def attention_reference(q, k, v, heads):
    """Loops over pixels and heads in float64: pixel p's output averages the values of pixels q < p."""
    batch, height, width, _ = q.shape
    n = height * width
    q, k, v = (np.asarray(x, np.float64).reshape(batch, n, heads, -1) for x in (q, k, v))
    out = np.zeros((batch, n, heads, v.shape[-1]))
    for b in range(batch):
        for h in range(heads):
            for p in range(1, n):
                logits = k[b, :p, h] @ q[b, p, h] / np.sqrt(q.shape[-1])
                weights = np.exp(logits - logits.max())
                out[b, p, h] = (weights / weights.sum()) @ v[b, :p, h]
    return out.reshape(batch, height, width, -1)


def _snail(channels, num_classes=None, output="logistic_mixture", size=4, seed=0, **options):
    keras.utils.set_random_seed(seed)
    return kp.build_model("pixelsnail", (size, size, channels), num_classes=num_classes, filters=8 * channels,
                          num_layers=2, output=output, head_filters=48, **options)


def test_attention_equals_the_numpy_reference():
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(2, 2, 3, 2, 6)) * 2
    v = rng.normal(size=(2, 2, 3, 4))
    got = keras.ops.convert_to_numpy(CausalAttention(2)([q, k, v]))
    np.testing.assert_allclose(got, attention_reference(q, k, v, 2), atol=1e-5)
    assert np.all(got[:, 0, 0] == 0)  # the first pixel has nothing to attend to


def test_masked_softmax_ignores_masked_logits_exactly():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 5))
    mask = np.array([[True, False, True, False, False], [False] * 5, [True] * 5])
    changed = np.where(mask, logits, 1e3)  # huge masked logits: no overflow, no change
    first, second = (keras.ops.convert_to_numpy(masked_softmax(keras.ops.convert_to_tensor(x, "float64"), mask))
                     for x in (logits, changed))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[1], 0)
    np.testing.assert_allclose(first.sum(axis=1), [1, 0, 1])
    np.testing.assert_array_equal(first[~mask], 0)


@pytest.mark.parametrize("channels", [1, 3])
def test_categorical_variant_is_causal_on_every_earlier_subpixel(float64, channels):
    model = _snail(channels, num_classes=3, output="categorical")
    rng = np.random.default_rng(0)
    contexts = [rng.integers(0, 256, (4, 4, channels)) for _ in range(3)]
    fixed = sum(dependency_matrix(model, context, labels=1) for context in contexts)
    n = fixed.shape[0]
    assert fixed[np.triu_indices(n)].max() == 0.0
    # Categorical: every earlier sub-pixel, the same pixel's earlier channels included, reaches through the network.
    assert fixed[np.tril_indices(n, -1)].min() > 1e-9


def test_cached_sampler_draws_the_naive_images_for_the_categorical_output():
    """The mixture output is in tests/test_sampling.py with every architecture."""
    model = _snail(3, num_classes=3, output="categorical", size=5, seed=3)
    labels = np.array([0, 2])
    cached = sample(model, 2, seed=4, labels=labels, method="cached")
    np.testing.assert_array_equal(cached, sample(model, 2, seed=4, labels=labels, method="naive"))
    assert len(np.unique(cached)) > 10


@pytest.mark.parametrize("banded", [False, True])
def test_the_cached_attention_computes_the_models_parameters_at_every_pixel(banded):
    """Sharper than equal draws (a small error rarely flips a Gumbel argmax): the incremental engine's
    parameters at every pixel of a known colour image equal the model's, within float32 round-off."""
    model = _snail(3, num_classes=3, output="categorical", seed=5)
    images = np.random.default_rng(6).integers(0, 256, (2, 4, 4, 3)).astype(np.int32)
    labels = np.array([1, 2], np.int32)
    expected = keras.ops.convert_to_numpy(model([images, labels]))
    np.testing.assert_allclose(incremental_params(model, images, labels, banded), expected, atol=1e-4)


@pytest.mark.parametrize("banded", [False, True])
def test_the_cached_attention_reads_padded_keys_with_state_at_every_pixel(banded):
    """Keys and values that are a Row LSTM's output: padded on every side but the bottom and with a cell
    state beside them (a band and a cache of their own), which the whole-cache reads must not mistake."""
    keras.utils.set_random_seed(2)
    inputs, x, _ = model_inputs((4, 4, 1), None)
    h = RowLSTM(8)(MaskedConv2D(32, 3, "A", 1)(x))
    attended = CausalAttention(2)([MaskedConv2D(8, 1, "B", 1)(h), h, h])
    model = keras.Model(inputs, MaskedConv2D(4, 1, "B", 1)(keras.layers.Concatenate()([h, attended])))
    keys = Plan(model).tensors[id(h)]
    assert keys.whole and keys.pad[0] and keys.pad[2] and keys.pad[3]  # what the test is for
    images = np.random.default_rng(3).integers(0, 256, (2, 4, 4, 1)).astype(np.int32)
    expected = keras.ops.convert_to_numpy(model(images))
    np.testing.assert_allclose(incremental_params(model, images, None, banded), expected, atol=1e-5)


def test_half_precision_attention_computes_in_float32():
    """q.k = 80,000 overflows float16 (65,504): the layer computes in float32 and returns its compute dtype."""
    q = k = np.full((1, 2, 2, 8), 100.0, np.float32)
    v = np.arange(16, dtype=np.float32).reshape(1, 2, 2, 4)
    half = CausalAttention(1, dtype="mixed_float16")([q, k, v])
    assert keras.backend.standardize_dtype(half.dtype) == "float16"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(half), CausalAttention(1)([q, k, v]), atol=1e-2)


def test_filters_heads_and_num_layers_are_honoured():
    model = kp.build_model("pixelsnail", (4, 4, 1), filters=12, num_layers=3, num_resnets=1, num_heads=4,
                           key_filters=3, value_filters=5)
    attention = [layer for layer in model.layers if isinstance(layer, CausalAttention)]
    assert len(attention) == 3 and all(layer.num_heads == 4 for layer in attention)
    assert model.get_layer("init_ul").filters == 12
    assert model.get_layer("block2_query").filters == 12 and model.get_layer("block2_value").filters == 20
    assert not any(layer.name.startswith("block0_res1") for layer in model.layers)


@pytest.mark.parametrize("options, message", [
    (dict(output="softmax"), "output='softmax'"),
    (dict(dropout=1.0), "dropout=1.0"),
    (dict(num_heads=0), "num_heads=0"),
    (dict(output="categorical", head_filters=2), "head_filters=2"),
])
def test_bad_options_raise(options, message):
    with pytest.raises(ValueError, match="Received: .*" + message):
        kp.build_model("pixelsnail", (4, 4, 3), **options)


def test_attention_layer_refuses_bad_arguments_and_round_trips():
    with pytest.raises(ValueError, match="num_heads=0"):
        CausalAttention(0)
    with pytest.raises(ValueError, match="divisible by num_heads=2"):
        CausalAttention(2)([np.ones((1, 2, 2, 3))] * 3)
    layer = CausalAttention.from_config(CausalAttention(3, name="att").get_config())
    assert layer.num_heads == 3 and layer.name == "att"


_JAX_SCRIPT = """
import sys
import numpy as np, keras
import keras_pixelcnn as kp
keras.utils.set_random_seed(0)
model = kp.build_model("pixelsnail", (4, 4, 3), num_classes=3, filters=8, num_layers=1, num_resnets=1)
images = np.random.default_rng(0).integers(0, 256, (4, 4, 4, 3))
labels = np.array([0, 1, 2, 0])
loss, metric = kp.loss_and_metric(model)
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss, jit_compile=True)
before = kp.bits_per_dim(model, images, labels).mean()
model.fit([images, labels], images, epochs=5, verbose=0)
model.save(sys.argv[1])
print(before, kp.bits_per_dim(model, images, labels).mean())
"""


def test_trains_under_jax_and_loads_in_tensorflow(tmp_path):
    """KERAS_BACKEND=jax: the model fits under jax.jit, and its .keras file gives TensorFlow the same bits/dim."""
    pytest.importorskip("jax")
    path = tmp_path / "jax.keras"
    result = run_script_under_jax(_JAX_SCRIPT, path)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = map(float, result.stdout.split()[-2:])
    assert after < before - 0.1, (before, after)
    loaded = keras.saving.load_model(path, compile=False)
    images = np.random.default_rng(0).integers(0, 256, (4, 4, 4, 3))
    np.testing.assert_allclose(kp.bits_per_dim(loaded, images, np.array([0, 1, 2, 0])).mean(), after, atol=1e-4)
