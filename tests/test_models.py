"""Properties every architecture in ARCHITECTURES must have, on fresh weights."""

import keras
import numpy as np
import pytest

import keras_pixelcnn as kp
from helpers import peaked_model, tiny_model
from keras_pixelcnn.causality import dependency_matrix

CASES = [
    (architecture, channels, num_classes)
    for architecture in kp.ARCHITECTURES
    for channels in (1, 3)
    for num_classes in (None, 3)
]




def _inputs(model, images, labels):
    return images if labels is None else [images, labels]


@pytest.mark.parametrize("architecture, channels, num_classes", CASES)
def test_causal_on_every_earlier_subpixel(float64, architecture, channels, num_classes):
    """Sub-pixel k (raster order row, column, channel) reads exactly the sub-pixels before it.

    With the scored image fixed, no sub-pixel's conditional may react to itself
    or a later one. Scoring the perturbed image, every earlier sub-pixel must
    reach it (through the network or, for a mixture, the distribution): on
    4x4 images every architecture's receptive field covers the whole past.
    Dead ReLUs can hide a dependence at one context, so three random contexts
    are summed.
    """
    model = tiny_model(architecture, channels, num_classes)
    rng = np.random.default_rng(0)
    label = None if num_classes is None else 1
    contexts = [rng.integers(0, 256, (4, 4, channels)) for _ in range(3)]
    fixed = sum(dependency_matrix(model, context, labels=label) for context in contexts)
    through_values = sum(dependency_matrix(model, context, "perturbed", labels=label) for context in contexts)
    n = fixed.shape[0]
    assert n == 16 * channels
    assert fixed[np.triu_indices(n)].max() == 0.0, (
        f"sub-pixel reads itself or the future: {np.argwhere(np.triu(fixed) > 0)[:5]}")
    assert through_values[np.triu_indices(n, 1)].max() == 0.0
    past = through_values[np.tril_indices(n, -1)]
    assert past.min() > 1e-9, (
        f"earlier sub-pixels without influence: {np.argwhere(np.tril(through_values == 0, -1))[:5]}")


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_causal_in_float32_up_to_round_off(architecture):
    model = tiny_model(architecture, 3)
    d = dependency_matrix(model, np.random.default_rng(1).integers(0, 256, (4, 4, 3)))
    # A leak moves a log-probability by ~1e-3; float32 round-off by ~1 ulp (5e-7).
    assert d[np.triu_indices(d.shape[0])].max() < 1e-5


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_first_subpixel_distribution_ignores_the_image(architecture):
    model = tiny_model(architecture, 1)
    images = np.random.default_rng(2).integers(0, 256, (5, 4, 4, 1))
    params = keras.ops.convert_to_numpy(model(images))
    np.testing.assert_allclose(params[:, 0, 0], np.broadcast_to(params[:1, 0, 0], params[:, 0, 0].shape),
                               atol=1e-5)


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_label_changes_every_subpixels_distribution(architecture):
    """The label reaches every sub-pixel, the first one (which sees no pixel) included."""
    model = tiny_model(architecture, 3, num_classes=3)
    images = np.repeat(np.random.default_rng(3).integers(0, 256, (1, 4, 4, 3)), 3, axis=0)
    log_p = kp.log_prob(model, images, labels=np.arange(3), reduce=False)
    assert np.abs(log_p[1:] - log_p[:1]).min() > 1e-7, np.abs(log_p[1:] - log_p[:1]).min()


@pytest.mark.parametrize("architecture, channels, num_classes", CASES)
def test_every_subpixels_probabilities_sum_to_one(architecture, channels, num_classes):
    """With peaked weights, the 256 values' probabilities sum to one at every position of a grey 4x4 image and
    for every channel of a corner, an inner and the last pixel of a colour one."""
    model = peaked_model(architecture, channels, num_classes=num_classes)
    base = np.random.default_rng(4).integers(0, 256, (4, 4, channels))
    positions = list(np.ndindex(base.shape)) if channels == 1 else [
        (row, col, channel) for row, col in [(0, 0), (1, 2), (3, 3)] for channel in range(3)]
    images = np.repeat(base[None], 256 * len(positions), axis=0).reshape((len(positions), 256) + base.shape)
    for index, (row, col, channel) in enumerate(positions):
        images[index, :, row, col, channel] = np.arange(256)
    labels = None if num_classes is None else np.full(images.shape[0] * 256, 2)
    log_p = kp.log_prob(model, images.reshape((-1,) + base.shape), labels, reduce=False)
    log_p = log_p.reshape(images.shape)
    totals = [np.logaddexp.reduce(log_p[index, :, row, col, channel].astype(np.float64))
              for index, (row, col, channel) in enumerate(positions)]
    assert np.abs(totals).max() < 1e-4, dict(zip(positions, totals))


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_config_round_trip(architecture):
    model = tiny_model(architecture, 3, num_classes=3)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    images = np.random.default_rng(5).integers(0, 256, (2, 4, 4, 3))
    labels = np.array([0, 2])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone([images, labels])),
                                  keras.ops.convert_to_numpy(model([images, labels])))
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_keras_file_round_trip(tmp_path, architecture):
    model = tiny_model(architecture, 1, num_classes=3)
    loss, metric = kp.loss_and_metric(model)
    model.compile(optimizer="adam", loss=loss, metrics=[metric])
    images = np.random.default_rng(6).integers(0, 256, (4, 4, 4, 1))
    labels = np.array([0, 1, 2, 0])
    model.fit([images, labels], images, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(kp.log_prob(loaded, images, labels), kp.log_prob(model, images, labels))
    assert loaded.loss.get_config() == model.loss.get_config()


def test_filters_and_num_layers_are_honoured():
    small = kp.build_model("pixelcnn", (8, 8, 1), filters=8, num_layers=1)
    large = kp.build_model("pixelcnn", (8, 8, 1), filters=16, num_layers=3)
    assert sum(1 for layer in large.layers if layer.name.endswith("_skip")) == 3
    assert sum(1 for layer in small.layers if layer.name.endswith("_skip")) == 1
    assert large.get_layer("stem").filters == 16


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(architecture="pixelcnn3"), "architecture='pixelcnn3'"),
        (dict(architecture="pixelcnn", image_shape=(28, 28)), r"image_shape=\(28, 28\)"),
        (dict(architecture="pixelcnn", image_shape=(28, 28, 2)), r"image_shape=\(28, 28, 2\)"),
        (dict(architecture="pixelcnn", filters=0), "filters=0"),
        (dict(architecture="pixelcnn", image_shape=(8, 8, 3), filters=4), "filters=4"),
        (dict(architecture="pixelcnn", num_classes=1), "num_classes=1"),
        (dict(architecture="pixelcnn", dropout=0.5), "dropout"),
        (dict(architecture="pixelcnn_pp", dropout=1.0), "dropout=1.0"),
        (dict(architecture="pixelcnn_pp", image_shape=(6, 6, 1)), r"image_shape=\(6, 6, 1\)"),
        (dict(architecture="gated_pixelcnn", image_shape=(8, 8, 3), filters=8), "filters=8"),
        (dict(architecture="row_lstm", image_shape=(8, 8, 3), filters=9), "filters=9"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match="Received: .*" + message):
        kp.build_model(**kwargs)
