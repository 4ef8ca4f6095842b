"""The run directory: created or checked against its config, and read back by `load_run`.

A run directory holds:
    config.json   the resolved TrainConfig (re-running with it resumes)
    run.json      library versions, data origin, devices, progress
    best.keras    lowest validation bits/dim (best.json: its epoch and value);
                  last.keras, the latest epoch
    backup/       BackupAndRestore state (epoch counter, weights, optimizer)
    logs/         TensorBoard (losses in bits/dim, sample grids)
    history.csv   one row per epoch
    samples/      sample grids as PNG
"""

import importlib
import importlib.util
import json
import os
import platform
import zipfile

import keras

from keras_pixelcnn._version import __version__
from keras_pixelcnn.data.images import check_writable, write_json
from keras_pixelcnn.distributions import distribution_of
from keras_pixelcnn.models.inference import check_finite
from keras_pixelcnn.training.config import TrainConfig


def versions():
    """Library versions and the Keras backend, recorded in run.json."""
    import numpy

    found = {"keras_pixelcnn": __version__, "keras": keras.__version__,
             "numpy": numpy.__version__, "python": platform.python_version(),
             "backend": keras.backend.backend()}
    for module in ("tensorflow", "jax"):
        if importlib.util.find_spec(module) is not None:
            found[module] = importlib.import_module(module).__version__
    return found


def check_run_dir(config, run_dir):
    """Check, writing nothing, that `run_dir` can hold the run `config`: a new directory that can be
    made, or an existing run of the same config.

    Returns:
        True when `run_dir` holds that run already (a resume).

    Raises:
        ValueError: a path that is not a directory, under a file or unwritable, or a run dir
            made by another config.
    """
    check_writable(run_dir, directory=True)
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return False
    # Through TrainConfig, so that options added since the run began take their defaults.
    saved = TrainConfig.from_file(path).to_dict()
    if saved != config.to_dict():
        changed = sorted(k for k in set(saved) | set(config.to_dict()) if saved.get(k) != config.to_dict().get(k))
        raise ValueError(f"{run_dir} holds a run with a different config (differs in {changed}); "
                         "use another --out or the same options to resume")
    return True


def prepare_run_dir(config, run_dir):
    """Create the run dir or check that an existing one was made by the same config."""
    if check_run_dir(config, run_dir):
        return True
    os.makedirs(run_dir, exist_ok=True)
    write_json(os.path.join(run_dir, "config.json"), config.to_dict())
    return False


class RunLock:
    """An exclusive lock on a run directory (`fcntl.flock` on `RUN_DIR/.lock`), so one process trains it.

    The kernel drops the lock when its process ends, however it ends, so a killed run never
    blocks the next one. The lock file holds the owner's process id, for the message.

    Example:
        >>> with RunLock("runs/fm") as lock:
        ...     lock.acquire()  # after the checks, once the run dir may be written
    """

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self._handle = None

    def acquire(self):
        """Create the run dir if needed and take the lock.

        Raises:
            ValueError: `RUN_DIR is in use by process N` when another process holds it.
        """
        import fcntl

        if self._handle is not None:
            return
        os.makedirs(self.run_dir, exist_ok=True)
        handle = open(os.path.join(self.run_dir, ".lock"), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise ValueError(f"{self.run_dir} is in use by process {owner}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self):
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def load_run(run_dir, which="best"):
    """The run's config and its `best` (or `last`) model.

    Raises:
        ValueError: no such run, a model file that cannot be read, or one whose
            weights hold NaN or inf (a diverged run; run.json says where).
    """
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.exists(config_path):
        raise ValueError(f"Not a run directory (no config.json): {run_dir}")
    config = TrainConfig.from_file(config_path)
    path = os.path.join(run_dir, f"{which}.keras")
    if not os.path.exists(path):
        path = os.path.join(run_dir, "last.keras")
    if not os.path.exists(path):
        raise ValueError(f"{run_dir} has no saved model yet (train at least one epoch)")
    return config, load_model_file(path, _divergence(run_dir))


def load_model_file(path, cause=None):
    """The model in the `.keras` file `path` (not compiled), its weights checked finite.

    Args:
        path: a `.keras` file.
        cause: what made non-finite weights, for the message (see `check_finite`).

    Raises:
        ValueError: a missing or unreadable file, a model that is not a keras_pixelcnn model
            (images `(B, H, W, C)` in, a `PixelDistribution` out), or NaN or inf weights.
    """
    if not os.path.isfile(path):
        raise ValueError(f"No such model file: {path}")
    if not zipfile.is_zipfile(path):  # Keras would call it "File not found"
        raise ValueError(f"Cannot load {path}: not a .keras (zip) file, or a truncated one")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # a corrupt zip, a truncated file, an unknown layer
        raise ValueError(f"Cannot load {path}: {type(error).__name__}: {str(error).splitlines()[0]}") from None
    try:
        distribution_of(model)
    except ValueError as error:
        raise ValueError(f"Cannot use {path}: {error}") from None
    if len(model.inputs[0].shape) != 4:
        raise ValueError(f"Cannot use {path}: expected a model of images (B, H, W, C). "
                         f"Received: input shape {tuple(model.inputs[0].shape)}")
    return check_finite(model, path, cause)


def _divergence(run_dir):
    """"training diverged at epoch E" when run.json records it (see `common.finish`), else None."""
    try:
        with open(os.path.join(run_dir, "run.json")) as handle:
            diverged = json.load(handle).get("diverged")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(diverged, dict) or "epoch" not in diverged:
        return None
    return f"training diverged at epoch {diverged['epoch']}"
