"""Which packages a command needs, checked before anything imports Keras: a missing one is an `Error:` line.

`pip install 'keras-pixelcnn[jax]'` installs no TensorFlow. There, `kpixel fit --backend jax`
trains (IDX and folder data need no TensorFlow), and every other command needs TensorFlow:
importing Keras with its default backend, or TensorFlow itself, was a ModuleNotFoundError
traceback.
"""

import importlib.util
import json
import os

import click

INSTALL = {"tensorflow": "pip install 'keras-pixelcnn[cpu]' (or '[gpu]')", "jax": "pip install 'keras-pixelcnn[jax]'"}


def installed(package):
    """Whether `package` can be imported."""
    return importlib.util.find_spec(package) is not None


def configured_backend():
    """The backend `import keras` loads, read as Keras reads it (KERAS_BACKEND, else the `backend` of
    $KERAS_HOME/keras.json, default ~/.keras), without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as handle:
            backend = json.load(handle).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):  # no file, not JSON, not an object: Keras' default
        return "tensorflow"
    return backend if isinstance(backend, str) else "tensorflow"


def check_installed(command, backend=None):
    """Raise a UsageError naming what `kpixel COMMAND` needs and lacks.

    `backend`: fit's `--backend` (None: the configured one). Only fit runs without TensorFlow.
    """
    if command == "fit":
        backend = backend or configured_backend()
        if backend in INSTALL and not installed(backend):
            hint = "" if backend == "jax" else "; or train with --backend jax"
            raise click.UsageError(f"kpixel fit on the {backend} backend needs {backend}, which is not installed: "
                                   f"{INSTALL[backend]}{hint}")
        return
    if command != "architectures" and not installed("tensorflow"):  # data pipelines, samplers, exporters
        raise click.UsageError(f"kpixel {command} needs TensorFlow, which is not installed: {INSTALL['tensorflow']}; "
                               "without it, only kpixel fit --backend jax runs")
    backend = configured_backend()
    if backend in INSTALL and not installed(backend):
        raise click.UsageError(f"kpixel {command} needs Keras' backend {backend} (KERAS_BACKEND or keras.json), which "
                               f"is not installed: {INSTALL[backend]}")
