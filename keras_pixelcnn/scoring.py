"""Anomaly scores from likelihoods: raw bits/dim and two corrections.

Raw likelihood ranks some out-of-distribution images above the training data
(Nalisnick et al. 2019: a model of Fashion-MNIST gives MNIST digits higher
likelihood): simple, smooth images are cheap to code whatever their content.
Two corrections remove that "complexity" part, so what remains is how well
the image fits the *semantics* the model learned:

- input complexity (Serrà et al. 2020): `bits/dim - L(x)`, with `L(x)` the
  size of the image compressed by a general-purpose lossless coder (PNG at
  maximum compression, via Pillow), in bits per sub-pixel;
- likelihood ratio (Ren et al. 2019): `bits/dim - bits/dim under a background
  model`, the background model being trained on images with a fraction of
  their pixels replaced by noise (`kpixel fit --perturb-rate 0.2`), so it
  only learns local statistics.

Every score is "higher is more anomalous".

References:
    Serrà et al., "Input Complexity and Out-of-distribution Detection with
    Likelihood-based Generative Models", ICLR 2020.
    Ren et al., "Likelihood Ratios for Out-of-Distribution Detection",
    NeurIPS 2019.
"""

import io
import math

import numpy as np

from keras_pixelcnn.likelihood import bits_per_dim, check_batch_size, check_images, label_array, model_num_classes


def png_bits_per_dim(images):
    """Size of each image as a maximally compressed PNG, in bits per sub-pixel, `(B,)`.

    Args:
        images: uint8-valued `(B, H, W, C)`, C in (1, 3).
    """
    from PIL import Image

    images = np.asarray(images, dtype=np.uint8)
    sizes = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            buffer, format="PNG", optimize=True, compress_level=9)
        sizes.append(8 * buffer.tell())
    return np.asarray(sizes, dtype=np.float64) / np.prod(images.shape[1:])


def marginal_bits_per_dim(model, images, batch_size=256):
    """Bits/dim of `p(x) = mean_y p(x | y)` for a class-conditional model (uniform class prior)."""
    batch_size = check_batch_size(batch_size)
    images = check_images(model, images)
    num_classes = model_num_classes(model)
    if num_classes is None:
        raise ValueError(f"Model {model.name!r} is unconditional: it has no class marginal")
    per_class = np.stack([
        bits_per_dim(model, images, np.full(len(images), label, np.int32), batch_size)
        for label in range(num_classes)
    ])
    dims = np.prod(images.shape[1:])
    # bits/dim -> log p in nats, log-mean-exp over classes, back to bits/dim
    log_p = -per_class * dims * math.log(2.0)
    marginal = np.logaddexp.reduce(log_p, axis=0) - math.log(num_classes)
    return -marginal / (dims * math.log(2.0))


def _model_bits_per_dim(model, images, labels, batch_size):
    if len(model.inputs) == 2 and labels is None:
        return marginal_bits_per_dim(model, images, batch_size)
    return bits_per_dim(model, images, labels, batch_size)


def score(model, images, labels=None, background=None, batch_size=256):
    """Per-image anomaly scores (higher is more anomalous).

    Args:
        model: a keras_pixelcnn model of the normal data.
        images: integer images `(B, H, W, C)` in [0, 255].
        labels: class labels for a conditional model; None scores the
            marginal likelihood over all classes (uniform prior).
        background: optional model of the same images trained on perturbed
            inputs, for the likelihood ratio.
        batch_size: images per forward pass.

    Returns:
        dict of float64 arrays `(B,)`: `bits_per_dim` (raw), `png_bits_per_dim`,
        `complexity` (`bits_per_dim - png_bits_per_dim`), and with a
        background model `background_bits_per_dim` and `likelihood_ratio`
        (`bits_per_dim - background_bits_per_dim`).

    Raises:
        ValueError: for images the model(s) cannot score, bad labels (see
            `likelihood.label_array`) or a batch_size that is not an integer >= 1.
    """
    batch_size = check_batch_size(batch_size)
    images = check_images(model, images)
    labels = label_array(model, labels, len(images)) if labels is not None else None
    raw = _model_bits_per_dim(model, images, labels, batch_size)
    png = png_bits_per_dim(images)
    scores = {"bits_per_dim": raw, "png_bits_per_dim": png, "complexity": raw - png}
    if background is not None:
        back = _model_bits_per_dim(background, check_images(background, images), labels, batch_size)
        scores["background_bits_per_dim"] = back
        scores["likelihood_ratio"] = raw - back
    return scores


def auroc(normal_scores, anomaly_scores):
    """Area under the ROC curve for "anomalies score higher" (ties count one half).

    Returns:
        float in [0, 1]: the probability that a random anomaly outscores a
        random normal image.
    """
    normal = np.asarray(normal_scores, dtype=np.float64)
    anomaly = np.asarray(anomaly_scores, dtype=np.float64)
    if not len(normal) or not len(anomaly):
        raise ValueError(f"Expected scores for both groups. Received: {len(normal)} and {len(anomaly)}")
    normal = np.sort(normal)
    below = np.searchsorted(normal, anomaly, side="left")
    equal = np.searchsorted(normal, anomaly, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(normal) * len(anomaly)))
