"""Builders shared by the test modules (importable: setup.cfg puts tests/ on pythonpath)."""

import keras


# Depth of the tiny test models: PixelCNN++ has ~190 layers per block level, so one level
# keeps its tests (and their graph tracing) short; its receptive field still covers 4x4.
_TINY_LAYERS = {"pixelcnn_pp": 1, "pixelsnail": 1}
# PixelSNAIL: one attention block after one gated resnet block (attention reaches the whole past).
_TINY_OPTIONS = {"pixelsnail": {"num_resnets": 1}}


def tiny_model(architecture, channels, num_classes=None, size=4, seed=0, **options):
    """A small freshly initialised model for property tests (filters 8 per colour channel); `options`
    override the architecture's hyperparameters."""
    import keras_pixelcnn as kp

    keras.utils.set_random_seed(seed)
    shape = size if isinstance(size, tuple) else (size, size)
    options = {"filters": 8 * channels, "num_layers": _TINY_LAYERS.get(architecture, 2),
               **_TINY_OPTIONS.get(architecture, {}), **options}
    return kp.build_model(architecture, shape + (channels,), num_classes=num_classes, **options)


def peaked_model(architecture, channels, num_classes=3, size=4, label_scale=1.0, seed=0, **options):
    """A tiny model whose conditionals are far from uniform (entropy ~1-3 nats), for tests that must
    tell distributions apart: near-uniform logits hide wrong noise, wrong channels and ignored labels.

    The categorical heads get random biases (a different distribution per channel), the mixture's
    head is scaled; `label_scale` multiplies the class embeddings (Keras initialises them in
    +-0.05, too small for a label to move a draw).
    """
    import numpy as np

    import keras_pixelcnn as kp

    model = tiny_model(architecture, channels, num_classes=num_classes, size=size, seed=seed, **options)
    head = model.layers[-2]  # the layer whose outputs are the distribution's parameters
    kernel, bias = head.get_weights()
    rng = np.random.default_rng(7)
    if kp.distribution_of(model).name == "logistic_mixture":
        head.set_weights([kernel * 16, bias * 16])
    else:
        head.set_weights([kernel * 4, bias + rng.normal(0, 5, bias.shape).astype(bias.dtype)])
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            layer.set_weights([w * label_scale for w in layer.get_weights()])
    return model


def run_script_under_jax(script, *args, timeout=300):
    """`python -c script *args` with KERAS_BACKEND=jax on the CPU; the CompletedProcess (text output)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def incremental_params(model, images, labels, banded=False, writes="scatter"):
    """The cached sampler's loop run eagerly over known `images`: the engine's output at each pixel once all
    of the pixel's channels are written (its row's band opened with or without `banded`; cache writes `writes`)."""
    import numpy as np
    import tensorflow as tf

    from keras_pixelcnn.sampling.incremental import Plan, Values

    plan = Plan(model, writes=writes)
    batch, height, width, channels = images.shape
    start = plan.initial(batch, None if labels is None else tf.constant(labels))
    caches, out = dict(start.caches), np.zeros((batch,) + model.output_shape[1:], np.float32)
    for row in map(tf.constant, range(height)):
        values = Values(plan, caches, start.globals)
        plan.rows(values, row)
        opened = plan.open_bands(values, row, banded)
        pixel = Values(plan, opened.caches, start.globals, origins=opened.origins).with_batch_index(len(images))
        for col in map(tf.constant, range(width)):
            plan.pixel(pixel, row, col)
            for channel in range(channels):
                if channel:
                    plan.pixel(pixel, row, col, plan.after_channel[channel - 1])
                pixel.write_channel(plan.image, row, col, channel, tf.constant(images[:, int(row), int(col), channel]))
            out[:, int(row), int(col)] = plan.pixel(pixel, row, col, plan.after_channel[channels - 1]).numpy()
        bands = Values(plan, {key: pixel.caches[key] for key in plan.band_keys}, start.globals,
                       origins=opened.origins)
        plan.close_bands(values, bands, row)
        caches = values.caches
    return out
