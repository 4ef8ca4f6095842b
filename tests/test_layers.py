"""The element-wise layers against numpy written from their definitions, not from their code."""

import keras
import numpy as np
import pytest

import keras_pixelcnn as kp

RNG = np.random.default_rng(11)
X = RNG.normal(0, 2, (2, 3, 4, 6)).astype(np.float32)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


@pytest.mark.parametrize("activation", ["tanh", "linear"])
def test_gated_activation_pairs_even_and_odd_features(activation):
    got = keras.ops.convert_to_numpy(kp.GatedActivation(activation)(X))
    want = np.empty(X.shape[:-1] + (3,), np.float32)
    for k in range(3):  # feature k gates a = 2k with b = 2k + 1
        a, b = X[..., 2 * k], X[..., 2 * k + 1]
        want[..., k] = (np.tanh(a) if activation == "tanh" else a) * _sigmoid(b)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_concat_elu_interleaves_elu_of_x_and_of_minus_x():
    got = keras.ops.convert_to_numpy(kp.ConcatELU()(X))
    assert got.shape == X.shape[:-1] + (12,)
    for k in range(6):
        np.testing.assert_allclose(got[..., 2 * k], _elu(X[..., k]), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got[..., 2 * k + 1], _elu(-X[..., k]), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("signature", [(None, 6), (None, 3, 4, 6), (None, None, None, 6)],
                         ids=["pixel-free-batch", "image-free-batch", "image-free-size"])
def test_concat_elu_with_unknown_sizes_gives_the_same_values(signature):
    """A free batch (an exported pixel step's `(B, K)`) takes a constant reshape, with no shape ops to
    run at every step; free spatial sizes read them at run time. Both give the eager values."""
    import tensorflow as tf

    layer = kp.ConcatELU()
    function = tf.function(layer, input_signature=[tf.TensorSpec(signature, tf.float32)])
    x = X if len(signature) == 4 else X.reshape(-1, 6)
    np.testing.assert_array_equal(function(x).numpy(), keras.ops.convert_to_numpy(layer(x)))
    graph_ops = {op.type for op in function.get_concrete_function().graph.get_operations()}
    assert ("Shape" in graph_ops) == (None in signature[1:-1])


@pytest.mark.parametrize("shape", [(6,), (2, 0, 4, 6), (0, 6)], ids=["no-batch", "empty-image", "empty-batch"])
def test_concat_elu_keeps_odd_shapes(shape):
    """A rank-1 input has no batch axis to leave free, and next to a size 0 a -1 is not inferable."""
    x = RNG.normal(0, 2, shape).astype(np.float32)
    got = keras.ops.convert_to_numpy(kp.ConcatELU()(x))
    assert got.shape == shape[:-1] + (12,)
    np.testing.assert_allclose(got[..., 1::2], _elu(-x), rtol=1e-6, atol=1e-7)


def test_shifts_move_by_one_pixel_and_fill_zeros():
    down = keras.ops.convert_to_numpy(kp.ShiftDown()(X))
    right = keras.ops.convert_to_numpy(kp.ShiftRight()(X))
    for row in range(X.shape[1]):
        for col in range(X.shape[2]):
            want_down = X[:, row - 1, col] if row > 0 else 0
            want_right = X[:, row, col - 1] if col > 0 else 0
            np.testing.assert_array_equal(down[:, row, col], np.broadcast_to(want_down, X[:, 0, 0].shape))
            np.testing.assert_array_equal(right[:, row, col], np.broadcast_to(want_right, X[:, 0, 0].shape))
