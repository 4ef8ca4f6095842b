"""Measure which input sub-pixels each conditional of a model depends on.

Used by the test-suite on freshly initialised models, and useful for anyone
adding an architecture: an autoregressive model is valid only if
`dependency_matrix(model, ...)` is strictly lower-triangular.
"""

import numpy as np
from keras import ops

from keras_pixelcnn.distributions import distribution_of
from keras_pixelcnn.likelihood import model_inputs


def dependency_matrix(model, context, target=None, labels=None):
    """Change of each sub-pixel's conditional when each input sub-pixel changes.

    Sub-pixels are numbered in raster order (row, column, channel). Entry
    `[k, j]` is `|log p(target_k | x') - log p(target_k | x)|` where `x'` is
    `context` with sub-pixel `j` moved by 128 levels.

    With a fixed `target` the entry measures how the network's parameters for
    `k` react to input `j`: a causal model has zeros on and above the
    diagonal. With `target="perturbed"` the scored image is `x'` itself, so
    an earlier sub-pixel of the same pixel also counts when it reaches `k`
    through the distribution (PixelCNN++'s mixture reads the pixel's earlier
    channels as values, not through the network); entries below the diagonal
    then show every dependence, and the diagonal is the perturbation itself.

    Args:
        model: a keras_pixelcnn model.
        context: one integer image `(H, W, C)`.
        target: the image whose values are scored, `(H, W, C)`; `context` if
            None; or "perturbed" (see above).
        labels: a class label (int) for a class-conditional model.

    Returns:
        float64 array `(N, N)`, N = H*W*C. A causal model has zeros on and
        above the diagonal.
    """
    context = np.asarray(context, dtype=np.int32)
    perturbed = isinstance(target, str) and target == "perturbed"
    target = context if target is None or perturbed else np.asarray(target, dtype=np.int32)
    n = context.size
    # (H, W, C) -> (N + 1, N): row 0 unchanged, row j + 1 has sub-pixel j moved.
    batch = np.repeat(context.reshape(1, n), n + 1, axis=0)
    batch[np.arange(1, n + 1), np.arange(n)] = (batch[np.arange(1, n + 1), np.arange(n)] + 128) % 256
    batch = batch.reshape((n + 1,) + context.shape)
    batch_labels = None if labels is None else np.full((n + 1,), labels, dtype=np.int32)
    params = model(model_inputs(model, batch, batch_labels), training=False)
    targets = batch if perturbed else np.repeat(target[None], n + 1, axis=0)
    log_p = ops.convert_to_numpy(distribution_of(model).log_prob(params, targets)).astype(np.float64)
    log_p = log_p.reshape(n + 1, n)
    # (N + 1, N) -> (N, N): rows = perturbed input j, transposed to [k, j]
    return np.abs(log_p[1:] - log_p[:1]).T
