import keras
import numpy as np
import pytest

from keras_pixelcnn import MaskedConv2D
from keras_pixelcnn.layers.masks import causal_mask


def test_effective_kernel_is_masked():
    layer = MaskedConv2D(6, 3, mask_type="A", color_channels=3, use_bias=False)
    x = np.random.default_rng(0).normal(size=(1, 5, 5, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(x))
    reference = keras.layers.Conv2D(6, 3, padding="same", use_bias=False)
    reference.build(x.shape)
    reference.kernel.assign(keras.ops.convert_to_numpy(layer.kernel) * causal_mask((3, 3), 3, 6, "A", 3))
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(reference(x)), atol=1e-6)
    # The stored kernel itself is untouched: the mask is applied in the op.
    assert np.count_nonzero(keras.ops.convert_to_numpy(layer.kernel)) == 3 * 3 * 3 * 6


def test_config_round_trip():
    layer = MaskedConv2D(8, (3, 5), mask_type="A", color_channels=2, name="m", activation="relu")
    config = layer.get_config()
    assert config["mask_type"] == "A" and config["color_channels"] == 2
    clone = MaskedConv2D.from_config(config)
    assert clone.get_config() == config


def test_keras_file_round_trip(tmp_path):
    inputs = keras.Input((6, 6, 3))
    outputs = MaskedConv2D(6, 3, mask_type="B", color_channels=3)(inputs)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[-1], MaskedConv2D)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # The mask is not a weight: only kernel and bias are saved.
    assert len(loaded.layers[-1].weights) == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mask_type="C"), "mask_type='C'"),
        (dict(padding="valid"), "'padding': 'valid'"),
        (dict(strides=(1, 2)), r"'strides': \(1, 2\)"),
        (dict(color_channels=0), "color_channels=0"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match="Received: .*" + message):
        MaskedConv2D(4, 3, **kwargs)


@pytest.mark.parametrize("size", [8, 7])
def test_strided_output_is_centred_on_its_input_pixel(size):
    """Stride 2: output (i, j) reads exactly the taps of its mask around input (2i, 2j).

    Keras' "same" padding would centre it on (2i + 1, 2j + 1) for even sizes,
    letting a down-sampled "V" stack read the row below.
    """
    layer = MaskedConv2D(1, 3, mask_type="V", strides=2, kernel_initializer="ones", use_bias=False)
    out = (size + 1) // 2
    reads = np.zeros((out, out, size, size), dtype=bool)
    for row in range(size):
        for col in range(size):
            x = np.zeros((1, size, size, 1), dtype="float32")
            x[0, row, col] = 1.0
            reads[:, :, row, col] = keras.ops.convert_to_numpy(layer(x))[0, :, :, 0] != 0
    for i in range(out):
        for j in range(out):
            expected = np.zeros((size, size), dtype=bool)
            expected[max(2 * i - 1, 0):2 * i + 1, max(2 * j - 1, 0):2 * j + 2] = True
            np.testing.assert_array_equal(reads[i, j], expected, err_msg=f"output {(i, j)}")


def _reference_mask(kh, kw, in_channels, out_channels, mask_type, colors):
    """The mask from its definition, tap by tap (independent of `causal_mask`)."""
    mask = np.zeros((kh, kw, in_channels, out_channels), "float32")
    for r in range(kh):
        for c in range(kw):
            for i in range(in_channels):
                for o in range(out_channels):
                    g_in, g_out = i * colors // in_channels, o * colors // out_channels
                    if mask_type == "V":
                        mask[r, c, i, o] = r <= kh // 2
                    elif (r, c) == (kh // 2, kw // 2):
                        mask[r, c, i, o] = g_in < g_out or (mask_type == "B" and g_in == g_out)
                    else:
                        mask[r, c, i, o] = r < kh // 2 or (r == kh // 2 and c < kw // 2)
    return mask


def _numpy_masked_conv(x, kernel, bias, mask, stride):
    """out[b, i, j] = bias + sum over taps (r, c) of x[b, s*i + r - kh//2, s*j + c - kw//2] @ (kernel * mask)[r, c]."""
    batch, height, width, _ = x.shape
    kh, kw = kernel.shape[:2]
    out = np.zeros((batch, -(-height // stride), -(-width // stride), kernel.shape[-1]), "float64")
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            for r in range(kh):
                for c in range(kw):
                    y, z = stride * i + r - kh // 2, stride * j + c - kw // 2
                    if 0 <= y < height and 0 <= z < width:
                        out[:, i, j] += x[:, y, z].astype("float64") @ (kernel[r, c] * mask[r, c])
    return out + bias


@pytest.mark.parametrize("mask_type", ["A", "B", "V"])
@pytest.mark.parametrize("colors", [1, 3])
@pytest.mark.parametrize("kernel_size, stride", [((1, 1), 1), ((3, 3), 1), ((5, 5), 1), ((7, 7), 1), ((1, 3), 1),
                                                 ((3, 5), 1), ((3, 3), 2)])
def test_output_equals_a_numpy_masked_convolution(mask_type, colors, kernel_size, stride):
    """The layer convolves only the rows it needs; the result is the full masked convolution's."""
    rng = np.random.default_rng(sum(kernel_size) + colors)
    layer = MaskedConv2D(6, kernel_size, mask_type=mask_type, color_channels=colors, strides=stride,
                         bias_initializer="random_normal")
    x = rng.normal(size=(2, 7, 6, 6)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    mask = _reference_mask(*kernel_size, 6, 6, mask_type, colors)
    np.testing.assert_allclose(out, _numpy_masked_conv(x, kernel, bias, mask, stride), rtol=1e-5, atol=1e-5)
