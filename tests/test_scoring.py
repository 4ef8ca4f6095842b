"""Anomaly scores: raw likelihood, complexity correction, likelihood ratio, marginal, AUROC."""

import math

import keras
import numpy as np
import pytest

import keras_pixelcnn as kp
from keras_pixelcnn.scoring import auroc, marginal_bits_per_dim, png_bits_per_dim, score


def _tiny(num_classes=None, seed=0):
    keras.utils.set_random_seed(seed)
    return kp.build_model("pixelcnn", (8, 8, 1), num_classes=num_classes, filters=8, num_layers=1)


def test_auroc_matches_pairwise_counting():
    rng = np.random.default_rng(0)
    normal, anomaly = rng.integers(0, 5, 40).astype(float), rng.integers(1, 7, 30).astype(float)
    pairs = (anomaly[:, None] > normal[None]).mean() + 0.5 * (anomaly[:, None] == normal[None]).mean()
    assert auroc(normal, anomaly) == pytest.approx(pairs, abs=1e-12)
    assert auroc([0, 1], [2, 3]) == 1.0 and auroc([2, 3], [0, 1]) == 0.0
    with pytest.raises(ValueError, match="both groups"):
        auroc([], [1.0])


def test_png_complexity_orders_flat_below_noise():
    flat = np.full((1, 8, 8, 1), 128, np.uint8)
    noise = np.random.default_rng(1).integers(0, 256, (1, 8, 8, 1)).astype(np.uint8)
    bits = png_bits_per_dim(np.concatenate([flat, noise]))
    assert bits[0] < bits[1]
    # Incompressible noise costs about 8 bits per sub-pixel plus the PNG container.
    assert 8.0 < bits[1] < 8.0 + 8 * 80 / 64


def test_scores_are_consistent():
    model, background = _tiny(seed=0), _tiny(seed=1)
    images = np.random.default_rng(2).integers(0, 256, (3, 8, 8, 1))
    result = score(model, images, background=background)
    np.testing.assert_allclose(result["bits_per_dim"], kp.bits_per_dim(model, images))
    np.testing.assert_allclose(result["complexity"], result["bits_per_dim"] - png_bits_per_dim(images))
    np.testing.assert_allclose(result["likelihood_ratio"],
                               result["bits_per_dim"] - kp.bits_per_dim(background, images))
    same = score(model, images, background=model)
    np.testing.assert_array_equal(same["likelihood_ratio"], np.zeros(3))


def test_conditional_model_without_labels_scores_the_marginal():
    model = _tiny(num_classes=3)
    images = np.random.default_rng(3).integers(0, 256, (2, 8, 8, 1))
    per_class = np.stack([kp.bits_per_dim(model, images, np.full(2, k)) for k in range(3)])
    nats = per_class * 64 * math.log(2.0)
    expected = -(np.logaddexp.reduce(-nats, axis=0) - math.log(3)) / (64 * math.log(2.0))
    np.testing.assert_allclose(marginal_bits_per_dim(model, images), expected, rtol=1e-12)
    np.testing.assert_allclose(score(model, images)["bits_per_dim"], expected, rtol=1e-12)
    # The marginal is at least as likely as the least likely class and at most the most likely one.
    assert np.all(expected <= per_class.max(axis=0)) and np.all(expected >= per_class.min(axis=0))
