"""Exact receptive fields: Gated PixelCNN has no blind spot, the plain PixelCNN has one.

Each test builds a fresh float64 model on 9x9 images, measures with
`dependency_matrix` which input pixels change the conditional of one pixel
(summed over a few random contexts so that a dead ReLU cannot hide a path),
and compares that set with the one the architecture's geometry predicts,
pixel for pixel: every predicted pixel must have influence and every other
pixel exactly none.
"""

import keras
import numpy as np
import pytest

import keras_pixelcnn as kp
from keras_pixelcnn.causality import dependency_matrix

SIZE = 9


def _influence(model, row, col, channel=0, channels=1, contexts=3):
    """Bool `(H, W, C)`: which input sub-pixels move the conditional of `(row, col, channel)`."""
    rng = np.random.default_rng(0)
    total = sum(dependency_matrix(model, rng.integers(0, 256, (SIZE, SIZE, channels)))
                for _ in range(contexts))
    k = (row * SIZE + col) * channels + channel
    # (N,) -> (H, W, C): row k of the [k, j] matrix over input sub-pixels j
    return total[k].reshape(SIZE, SIZE, channels) > 0


def _window(row, col, rows_up, left, right):
    """Bool `(H, W)`: rows `row - rows_up .. row - 1` x columns `col - left .. col + right`."""
    out = np.zeros((SIZE, SIZE), dtype=bool)
    out[max(row - rows_up, 0):row, max(col - left, 0):col + right + 1] = True
    return out


def _gated_field(row, col, reach):
    """Gated PixelCNN: the full rectangle above plus the row to the left, no gap.

    With `reach = stem_kernel_size // 2 + num_layers * (kernel_size // 2)`,
    the vertical stack of the last layer reads rows `i - reach .. i` and columns
    `j - reach .. j + reach`; shifted down a row it gives the rows
    `i - 1 - reach .. i - 1`. The horizontal stack reads columns
    `j - reach .. j - 1` of row `i` (the stem's mask "A" excludes `j`).
    """
    field = _window(row, col, reach + 1, reach, reach)
    field[row, max(col - reach, 0):col] = True
    return field


def _pixelcnn_field(row, col, num_layers):
    """Plain PixelCNN with 3x3 convolutions: a stem "A" then `num_layers` blocks with mask "B".

    The 3x3 mask-"A" footprint is {(-1, -1), (-1, 0), (-1, 1), (0, -1)}, the
    mask-"B" one adds (0, 0); the dependence set is their Minkowski sum over the
    `L + 1 = num_layers + 1` layers (the residual adds only subsets, since "B"
    holds the centre). A pixel `a >= 1` rows up needs `a` steps up, each moving
    at most one column right, so it is read for columns `j - (L + 1) .. j + a`:
    the nominal `(L + 1)`-wide window minus the triangle `j + a < column`.
    """
    reach = num_layers + 1
    field = np.zeros((SIZE, SIZE), dtype=bool)
    for up in range(1, reach + 1):
        if row - up >= 0:
            field[row - up, max(col - reach, 0):col + up + 1] = True
    field[row, max(col - reach, 0):col] = True
    return field


def _positions(mask):
    return {tuple(int(v) for v in p) for p in np.argwhere(mask)}


@pytest.mark.parametrize(
    "channels, options, pixel, reach",
    [
        # 3x3 stem + 2 layers of 3x3: reach 1 + 2 = 3, the same layout as the PixelCNN test.
        (1, dict(kernel_size=3, stem_kernel_size=3, num_layers=2), (7, 4), 3),
        # Colour: 5x5 stem + 1 layer of 3x3, reach 2 + 1 = 3.
        (3, dict(kernel_size=3, stem_kernel_size=5, num_layers=1), (7, 4), 3),
    ],
)
def test_gated_pixelcnn_has_no_blind_spot(float64, channels, options, pixel, reach):
    """The conditional of a pixel reads every pixel above it and to its left in the field."""
    keras.utils.set_random_seed(0)
    model = kp.build_model("gated_pixelcnn", (SIZE, SIZE, channels), filters=4 * channels, **options)
    row, col = pixel
    expected = _gated_field(row, col, reach)
    for channel in range(channels):
        seen = _influence(model, row, col, channel, channels)
        # Every channel of every pixel in the field, and the earlier channels of the pixel itself.
        want = np.repeat(expected[..., None], channels, axis=-1)
        want[row, col, :channel] = True
        missing = _positions(want & ~seen)
        extra = _positions(seen & ~want)
        assert not missing and not extra, (channel, sorted(missing), sorted(extra))


def test_gated_pixelcnn_field_of_the_last_row_is_the_whole_past(float64):
    """Default 5x5 / 7x7 kernels, 2 layers: reach 3 + 2 * 2 = 7 covers all before (8, 4)."""
    keras.utils.set_random_seed(0)
    model = kp.build_model("gated_pixelcnn", (SIZE, SIZE, 1), filters=4, num_layers=2)
    past = np.zeros((SIZE, SIZE), dtype=bool)
    past[:8] = True
    past[8, :4] = True
    np.testing.assert_array_equal(_gated_field(8, 4, 7), past)
    np.testing.assert_array_equal(_influence(model, 8, 4)[..., 0], past)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_pixelcnn_blind_spot_up_right_is_seen_by_gated_pixelcnn(float64, num_layers):
    """Stacked 3x3 masked convolutions never see the triangle above-right of the pixel.

    The triangle is `a` rows up and more than `a` columns right, inside the
    nominal window; a Gated PixelCNN with the same 3x3 kernels and depth reads
    every pixel of it.
    """
    options = dict(filters=8, num_layers=num_layers, kernel_size=3, stem_kernel_size=3)
    keras.utils.set_random_seed(0)
    pixelcnn = kp.build_model("pixelcnn", (SIZE, SIZE, 1), **options)
    row, col = 7, 4
    reach = num_layers + 1
    seen = _influence(pixelcnn, row, col)[..., 0]
    np.testing.assert_array_equal(seen, _pixelcnn_field(row, col, num_layers))
    # What the stacked 3x3 kernels nominally span: reach rows up, reach columns either side.
    nominal = _window(row, col, reach, reach, reach)
    nominal[row, max(col - reach, 0):col] = True
    blind = _positions(nominal & ~seen)
    assert blind == {(row - up, col + right) for up in range(1, reach + 1)
                     for right in range(up + 1, reach + 1)}
    if num_layers == 2:
        assert blind == {(6, 6), (6, 7), (5, 7)}
    assert blind and all(r < row and c > col + 1 for r, c in blind)

    keras.utils.set_random_seed(0)
    gated = kp.build_model("gated_pixelcnn", (SIZE, SIZE, 1), **options)
    gated_seen = _influence(gated, row, col)[..., 0]
    assert (gated_seen & nominal).sum() == nominal.sum()
    assert blind <= _positions(gated_seen)
