"""Which packages a command needs, checked before anything imports Keras: a missing one is an `Error:` line.

`pip install 'keras-pixelcnn[jax]'` installs no TensorFlow. There, `kpixel fit --backend jax`
trains (IDX and folder data need no TensorFlow), `architectures` lists with KERAS_BACKEND=jax,
and every other command needs TensorFlow: importing Keras with its default backend, or
TensorFlow itself, was a ModuleNotFoundError traceback.
"""

import importlib.util
import json
import os
import sys

import click

INSTALL = {"tensorflow": "pip install 'keras-pixelcnn[cpu]' (or '[gpu]')", "jax": "pip install 'keras-pixelcnn[jax]'"}


def installed(package):
    """Whether `package` can be imported."""
    return importlib.util.find_spec(package) is not None


def configured_backend():
    """The backend `import keras` loads, found as Keras 3 finds it, without importing Keras.

    Keras reads `keras.json` in $KERAS_HOME when that is set (even empty: the working directory),
    else in ~/.keras, or /tmp/.keras when the home directory is not writable; a non-empty
    KERAS_BACKEND overrides its `backend` (default tensorflow).
    """
    if "KERAS_HOME" in os.environ:
        home = os.environ["KERAS_HOME"]
    else:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    backend = "tensorflow"
    path = os.path.expanduser(os.path.join(home, "keras.json"))
    if os.path.exists(path):
        try:
            with open(path) as handle:
                backend = json.load(handle).get("backend", backend)
        except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not an object (Keras then fails)
            pass
    return os.environ.get("KERAS_BACKEND") or (backend if isinstance(backend, str) else "tensorflow")


def loaded_backend():
    """Keras' backend: asked of Keras once it is imported (importing TensorFlow imports it), else
    `configured_backend`."""
    return sys.modules["keras"].backend.backend() if "keras" in sys.modules else configured_backend()


def restart_on(backend):
    """Run this kpixel command again as a new program whose Keras loads `backend` (KERAS_BACKEND)."""
    from keras_pixelcnn.cli import quiet

    # PYTHONSAFEPATH: the working directory (a source checkout) must not shadow the package.
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONSAFEPATH="1")
    quiet.stop_filter()  # the new program writes to the real stderr
    os.execve(sys.executable, [sys.executable, "-m", "keras_pixelcnn.cli.main", *sys.argv[1:]], env)


def check_installed(command, backend=None):
    """Raise a UsageError naming what `kpixel COMMAND` needs and lacks; run every command but fit and
    architectures on TensorFlow, restarting it there when Keras' backend is another (KERAS_BACKEND=jax).

    `backend`: fit's `--backend` (None: the configured one). Without TensorFlow, only fit on JAX and
    `architectures` (with Keras' backend set to JAX) run.
    """
    if command == "fit":
        backend = backend or configured_backend()
        if backend in INSTALL and not installed(backend):
            hint = "; or train with --backend jax" if backend != "jax" and installed("jax") else ""
            raise click.UsageError(f"kpixel fit on the {backend} backend needs {backend}, which is not installed: "
                                   f"{INSTALL[backend]}{hint}")
        return
    if command != "architectures":  # the data pipelines, samplers and exporters are TensorFlow's
        if not installed("tensorflow"):
            raise click.UsageError(f"kpixel {command} needs TensorFlow, which is not installed: "
                                   f"{INSTALL['tensorflow']}; without it, only kpixel fit --backend jax "
                                   "(and architectures) run")
        if loaded_backend() != "tensorflow":
            # With KERAS_BACKEND=jax the model ran on JAX inside a tf.function ("Cannot convert a symbolic
            # tf.Tensor"); a .keras file of either backend loads in TensorFlow.
            restart_on("tensorflow")
        return
    backend = configured_backend()
    if backend in INSTALL and not installed(backend):
        raise click.UsageError(f"kpixel {command} needs Keras' backend {backend} (KERAS_BACKEND or keras.json), which "
                               f"is not installed: {INSTALL[backend]}")
