import math

import keras
import numpy as np
import pytest
from helpers import tiny_model

import keras_pixelcnn as kp


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return kp.build_model("pixelcnn", (6, 6, 3), filters=12, num_layers=1)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (5, 6, 6, 3)).astype(np.uint8)


def test_reduce_false_sums_to_reduce_true(model, images):
    per_subpixel = kp.log_prob(model, images, reduce=False)
    assert per_subpixel.shape == images.shape
    assert (per_subpixel < 0).all()
    np.testing.assert_allclose(per_subpixel.reshape(5, -1).sum(1), kp.log_prob(model, images), rtol=1e-12)


def test_batching_does_not_change_the_result(model, images):
    np.testing.assert_allclose(kp.log_prob(model, images, batch_size=2), kp.log_prob(model, images),
                               rtol=1e-6)


def test_bits_per_dim_matches_log_prob_and_the_fit_metric(model, images):
    bpd = kp.bits_per_dim(model, images)
    np.testing.assert_allclose(bpd, -kp.log_prob(model, images) / (6 * 6 * 3 * math.log(2)), rtol=1e-12)
    loss, metric = kp.loss_and_metric(model)
    model.compile(loss=loss, metrics=[metric])
    result = model.evaluate(images, images, batch_size=5, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["bits_per_dim"], bpd.mean(), rtol=1e-5)
    np.testing.assert_allclose(result["loss"], bpd.mean() * math.log(2), rtol=1e-5)


# Not the mixtures (PixelCNN++, PixelSNAIL): a zero head there is a fixed logistic, not uniform.
@pytest.mark.parametrize("architecture", [a for a in kp.ARCHITECTURES if a not in ("pixelcnn_pp", "pixelsnail")])
def test_a_zero_head_is_exactly_uniform(architecture):
    """Zero weights in the last layer give logits 0: every value has probability 1/256, 8 bits whatever the image."""
    model = tiny_model(architecture, 3, num_classes=2)
    head = model.layers[-2]
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3))
    np.testing.assert_allclose(kp.log_prob(model, images, [0, 1, 1], reduce=False), -math.log(256), rtol=1e-6)


def test_training_beats_the_best_model_that_ignores_context():
    """Each row repeats its first pixel (black or white at random): 1 bit per row is all an autoregressive
    model needs (1/8 bit per sub-pixel), while any model of independent sub-pixels needs the data's
    marginal entropy (computed here from the data, ~1 bit). A trained PixelCNN must get far below that."""
    keras.utils.set_random_seed(1)
    model = kp.build_model("pixelcnn", (8, 8, 1), filters=16, num_layers=1)
    loss, metric = kp.loss_and_metric(model)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss, metrics=[metric])
    rows = np.random.default_rng(1).integers(0, 2, (64, 8, 1, 1)) * 255
    images = np.broadcast_to(rows, (64, 8, 8, 1)).copy()
    share_white = images.mean() / 255
    marginal = -(share_white * np.log2(share_white) + (1 - share_white) * np.log2(1 - share_white))
    before = kp.bits_per_dim(model, images).mean()
    model.fit(images, images, batch_size=16, epochs=15, verbose=0)
    after = kp.bits_per_dim(model, images).mean()
    assert before > 7.5 and 0.9 < marginal <= 1 and after < marginal / 2, (before, marginal, after)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((2, 6, 6, 1), np.uint8), r"shape \(B, 6, 6, 3\). Received: \(2, 6, 6, 1\)"),
        (np.zeros((2, 6, 6, 3), np.float32), "dtype=float32"),
        (np.full((2, 6, 6, 3), 256), r"values in \[256, 256\]"),
    ],
)
def test_bad_images_raise(model, bad, message):
    with pytest.raises(ValueError, match=message):
        kp.log_prob(model, bad)


def test_labels_must_match_the_model(model, images):
    with pytest.raises(ValueError, match="unconditional"):
        kp.log_prob(model, images, labels=np.zeros(5))
    conditional = kp.build_model("pixelcnn", (6, 6, 3), num_classes=2, filters=12, num_layers=1)
    with pytest.raises(ValueError, match="class-conditional"):
        kp.log_prob(conditional, images)
