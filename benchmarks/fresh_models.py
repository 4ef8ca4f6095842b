"""The models the export benchmarks measure (fresh architectures or a shipped model), and how they load an export.

Shared by `export_sampling.py`, `export_memory.py` and `export_ops.py`, so all measure the same models:
every architecture with default hyperparameters and fresh weights (seed 0, 28x28x1),
except PixelCNN++ at `pixelcnn_pp_filters` when given (the shipped one has 32; its
default, 80, is 23 M parameters).
"""

import keras
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
