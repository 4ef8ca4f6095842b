import numpy as np
import pytest

from keras_pixelcnn.layers.masks import causal_mask, channel_groups


def test_mask_a_and_b_single_channel_exact():
    a = causal_mask((5, 5), 1, 1, "A")[..., 0, 0]
    b = causal_mask((5, 5), 1, 1, "B")[..., 0, 0]
    expected_a = np.array(
        [
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
            [1, 1, 0, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=np.float32,
    )
    expected_b = expected_a.copy()
    expected_b[2, 2] = 1
    np.testing.assert_array_equal(a, expected_a)
    np.testing.assert_array_equal(b, expected_b)


def test_centre_tap_colour_groups_exact():
    # 3 image channels (R, G, B) in, 6 features out: groups [R R G G B B].
    a = causal_mask((3, 3), 3, 6, "A", color_channels=3)[1, 1]
    np.testing.assert_array_equal(
        a,
        [[0, 0, 1, 1, 1, 1],  # R feeds G and B features
         [0, 0, 0, 0, 1, 1],  # G feeds B features
         [0, 0, 0, 0, 0, 0]],  # B feeds nothing at its own pixel
    )
    # 6 features in, 3 out (the logits of R, G, B): "B" includes the same group.
    b = causal_mask((1, 1), 6, 3, "B", color_channels=3)[0, 0]
    np.testing.assert_array_equal(
        b,
        [[1, 1, 1], [1, 1, 1], [0, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 1]],
    )


def test_off_centre_taps_ignore_colour_groups():
    mask = causal_mask((3, 3), 6, 9, "A", color_channels=3)
    assert (mask[0] == 1).all() and (mask[1, 0] == 1).all()
    assert (mask[1, 2] == 0).all() and (mask[2] == 0).all()


def test_channel_groups_are_contiguous_and_cover_every_colour():
    np.testing.assert_array_equal(channel_groups(7, 3), [0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(channel_groups(768, 3), np.repeat([0, 1, 2], 256))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kernel_size=(3, 3), mask_type="C"), "mask_type='C'"),
        (dict(kernel_size=(2, 3), mask_type="A"), "kernel_size=(2, 3)"),
    ],
)
def test_bad_mask_arguments(kwargs, message):
    with pytest.raises(ValueError, match="Received: " + message.replace("(", r"\(").replace(")", r"\)")):
        causal_mask(in_channels=1, out_channels=1, **kwargs)


def test_too_few_features_for_colours():
    with pytest.raises(ValueError, match="num_features=2"):
        channel_groups(2, 3)


def test_mask_v_keeps_every_tap_in_and_above_the_centre_row():
    v = causal_mask((3, 5), 3, 6, "V", color_channels=3)
    np.testing.assert_array_equal(v[:2], np.ones((2, 5, 3, 6)))
    np.testing.assert_array_equal(v[2:], np.zeros((1, 5, 3, 6)))
