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

import keras

from keras_pixelcnn._version import __version__
from keras_pixelcnn.data.images import write_json
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


def prepare_run_dir(config, run_dir):
    """Create the run dir or check that an existing one was made by the same config."""
    path = os.path.join(run_dir, "config.json")
    if os.path.exists(path):
        with open(path) as handle:
            # Through TrainConfig, so that options added since the run began take their defaults.
            saved = TrainConfig.from_dict(json.load(handle)).to_dict()
        if saved != config.to_dict():
            changed = sorted(k for k in set(saved) | set(config.to_dict()) if saved.get(k) != config.to_dict().get(k))
            raise ValueError(f"{run_dir} holds a run with a different config (differs in {changed}); "
                             "use another --out or the same options to resume")
        return True
    os.makedirs(run_dir, exist_ok=True)
    write_json(path, config.to_dict())
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
    with open(config_path) as handle:
        config = TrainConfig.from_dict(json.load(handle))
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
        ValueError: a missing or unreadable file, or NaN or inf weights.
    """
    if not os.path.isfile(path):
        raise ValueError(f"No such model file: {path}")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # a corrupt zip, a truncated file, an unknown layer
        raise ValueError(f"Cannot load {path}: {type(error).__name__}: {str(error).splitlines()[0]}") from None
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
