"""Models shipped inside the package, usable right after install without training.

Each model is a `.keras` file under `keras_pixelcnn/weights/` with a JSON card
beside it that says how it was trained and what it scores.
"""

import json
import os

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")


def available():
    """Names of the shipped models (e.g. "fashion_mnist")."""
    if not os.path.isdir(WEIGHTS_DIR):
        return ()
    return tuple(sorted(name[:-len(".keras")] for name in os.listdir(WEIGHTS_DIR) if name.endswith(".keras")))


def _path(name, suffix):
    if name not in available():
        raise ValueError(f"Expected a pretrained model in {list(available())}. Received: {name!r}")
    return os.path.join(WEIGHTS_DIR, name + suffix)


def card(name):
    """The model card of shipped model `name`: architecture, options, training budget, test bits/dim.

    Raises:
        ValueError: for an unknown name.
    """
    with open(_path(name, ".json")) as handle:
        return json.load(handle)


def load_pretrained(name):
    """The shipped model `name` as a `keras.Model` (not compiled).

    Example:
        >>> model = load_pretrained("fashion_mnist")
        >>> images = keras_pixelcnn.sample(model, 4, seed=0)

    Raises:
        ValueError: for an unknown name.
    """
    import keras

    from keras_pixelcnn.models.inference import check_finite

    path = _path(name, ".keras")
    return check_finite(keras.saving.load_model(path, compile=False), path)
