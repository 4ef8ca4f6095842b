"""The models the export benchmarks measure (fresh architectures or a shipped model), how they load an export,
and how they time samplers against each other.

Shared by `export_sampling.py`, `export_memory.py`, `export_ops.py` and `executor_floor.py`, so all measure the same models:
every architecture with default hyperparameters and fresh weights (seed 0, 28x28x1),
except PixelCNN++ at `pixelcnn_pp_filters` when given (the shipped one has 32; its
default, 80, is 23 M parameters).
"""

import time

import keras
import numpy as np
import tensorflow as tf

import keras_pixelcnn as kp
from keras_pixelcnn.models.pretrained import load_pretrained

PIXELCNN_PP_FILTERS_HELP = "a smaller PixelCNN++ (the shipped one has 32; the default, 80, is 23 M parameters)"


def export_models(architectures, pretrained=None, pixelcnn_pp_filters=None):
    """`[model]`: the shipped model `pretrained` (if any), then one fresh model per name in `architectures`."""
    models = [load_pretrained(pretrained)] if pretrained else []
    for architecture in architectures:
        keras.utils.set_random_seed(0)
        small = architecture == "pixelcnn_pp" and pixelcnn_pp_filters is not None
        models.append(kp.build_model(architecture, (28, 28, 1), **({"filters": pixelcnn_pp_filters} if small else {})))
    return models


def session_signature(path, name):
    """`(session, signature_def)` of the SavedModel `path`'s signature `name`, through the TF1 session loader
    (as TF Serving loads a SavedModel)."""
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
    return session, meta.signature_def[name]


def best_in_turns(runs, repeats):
    """`{label: (best seconds, output)}`: each of `runs` called once (load, trace, compile), then timed
    `repeats` times in turns (so that a change in the machine's speed moves them alike), and checked
    to give its first output again."""
    firsts = {label: run() for label, run in runs.items()}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for label, run in runs.items():
            start = time.perf_counter()
            again = run()
            best[label] = min(best[label], time.perf_counter() - start)
            np.testing.assert_array_equal(firsts[label], again)
    return {label: (best[label], firsts[label]) for label in runs}
