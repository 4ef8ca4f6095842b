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


def completed_epochs(backup_dir):
    """Epochs a run has finished, as `keras.callbacks.BackupAndRestore` recorded them (0 for a new run)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return 0
    try:
        with open(path) as handle:
            epoch = json.load(handle)["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(f"epoch={epoch!r}")
        return epoch
    except (OSError, ValueError, KeyError, TypeError) as error:  # hand-edited or half-written
        raise ValueError(f"Cannot read the training state {path}: {type(error).__name__}: {error}; delete "
                         f"{backup_dir} to restart the run from its first epoch") from None


def _backup_dir(run_dir):
    """The backup of process 0: `backup/` (TensorFlow) or `backup/process_0` (JAX)."""
    backup = os.path.join(run_dir, "backup")
    jax_backup = os.path.join(backup, "process_0")
    return jax_backup if os.path.isdir(jax_backup) else backup


def _run_status(run_dir):
    try:
        with open(os.path.join(run_dir, "run.json")) as handle:
            status = json.load(handle)
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def check_run_dir(config, run_dir):
    """Check, writing nothing, that `run_dir` can hold the run `config`: a new directory that can be
    made, or an existing run of the same config, or of the same config with more `epochs` (trained
    longer: it goes on from its last finished epoch).

    Returns:
        False for a new run; True when `run_dir` holds that run already (a resume); the epoch
        count the run continues from when `config` extends it.

    Raises:
        ValueError: a path that is not a directory, under a file or unwritable, a run dir
            made by another config, fewer epochs than the run's, or a finished run whose
            training state is gone (made before runs kept it).
    """
    check_writable(run_dir, directory=True)
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return False
    # Through TrainConfig, so that options added since the run began take their defaults.
    saved, wanted = TrainConfig.from_file(path).to_dict(), config.to_dict()
    changed = sorted(k for k in set(saved) | set(wanted) if k != "epochs" and saved.get(k) != wanted.get(k))
    if changed:
        raise ValueError(f"{run_dir} holds a run with a different config (differs in {changed}); "
                         "use another --out, or the same options to resume (only --epochs may grow)")
    if wanted["epochs"] == saved["epochs"]:
        return True
    if wanted["epochs"] < saved["epochs"]:
        raise ValueError(f"Expected epochs >= {saved['epochs']} for {run_dir}, which is planned for "
                         f"{saved['epochs']} epochs (a run can be trained longer, not shorter). "
                         f"Received: epochs={wanted['epochs']}")
    done = completed_epochs(_backup_dir(run_dir))
    if _run_status(run_dir).get("completed") and done < saved["epochs"]:
        raise ValueError(f"{run_dir} finished before runs kept their training state (no backup/), so it cannot "
                         f"go on with its optimizer state; start a new run from its weights: "
                         f"kpixel fit --init-from {run_dir} --out NEW_RUN_DIR")
    return done


def extended_at(run_dir):
    """The epochs after which `run_dir` was trained longer (run.json `extended_at`; see `training.schedule`)."""
    epochs = _run_status(run_dir).get("extended_at", [])
    return [int(epoch) for epoch in epochs] if isinstance(epochs, list) else []


def prepare_run_dir(config, run_dir):
    """Create the run dir, or check an existing one (`check_run_dir`) and record a longer `epochs`.

    Returns:
        What `check_run_dir` returned.
    """
    existing = check_run_dir(config, run_dir)
    if existing is False:
        os.makedirs(run_dir, exist_ok=True)
    if existing is not True:  # a new run, or one trained longer: config.json gets the epochs
        write_json(os.path.join(run_dir, "config.json"), config.to_dict())
    return existing


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
