"""Models made ready for inference: float32 compute whatever the training policy, finite weights.

Mixed-precision training (`kpixel fit --mixed-precision`: float16 on TensorFlow GPUs,
bfloat16 on JAX) keeps float32 weights but computes in half precision, and each layer's
config records that policy, so a loaded model computes in half precision too. Every
inference path of the package (`log_prob`, `sample`, `complete`, `score`, `evaluate`, the
exporters) runs such a model as a float32 copy with the same weights: its probabilities
and images are exactly those of the float32 model with those weights, and the cached
sampler, which reads the layers' float32 kernels directly, works unchanged.
"""

import weakref

import keras
import numpy as np

_HALF_PRECISION = ("float16", "bfloat16")
_FLOAT32_COPIES = weakref.WeakKeyDictionary()  # model -> its float32 copy (weights re-copied per use)


def computes_in_half_precision(model):
    """Whether any layer of `model` computes in float16 or bfloat16."""
    return any(layer.compute_dtype in _HALF_PRECISION for layer in model.layers)


def _float32_layer(layer):
    config = layer.get_config()
    config["dtype"] = "float32"
    return layer.__class__.from_config(config)


def inference_model(model):
    """`model` itself if it computes in float32 (or float64); else a float32 copy with its current weights.

    The copy is made once per model and its weights are copied again at each
    call, so a model that goes on training (sample grids between epochs) is
    sampled with its latest weights.
    """
    if not computes_in_half_precision(model):
        return model
    copy = _FLOAT32_COPIES.get(model)
    if copy is None:
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("float32")  # sublayers made inside a layer's __init__ follow the global policy
        try:
            copy = keras.models.clone_model(model, clone_function=_float32_layer)
        finally:
            keras.config.set_dtype_policy(previous)
        _FLOAT32_COPIES[model] = copy
    copy.set_weights(model.get_weights())
    return copy


def non_finite_weights(model):
    """Names of the weights of `model` that hold NaN or inf."""
    return [weight.path for weight in model.weights
            if np.issubdtype(np.dtype(weight.dtype), np.floating)
            and not np.isfinite(keras.ops.convert_to_numpy(weight.value)).all()]


def check_finite(model, source, cause=None):
    """Raise ValueError naming `source` when `model` holds NaN or inf weights.

    Args:
        model: a loaded model.
        source: the file it came from, for the message.
        cause: what made them, e.g. "training diverged at epoch 3", or None.
    """
    bad = non_finite_weights(model)
    if bad:
        raise ValueError(f"{source} holds non-finite weights ({cause or f'NaN or inf in {len(bad)} weight(s), e.g. {bad[0]}'})")
    return model
