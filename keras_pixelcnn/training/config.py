"""`TrainConfig`: everything that defines a training run, validated, stored as a run's `config.json`."""

import dataclasses
import json
import math
import os

import numpy as np

from keras_pixelcnn.data.pipeline import Preprocessing
from keras_pixelcnn.models import config_class
from keras_pixelcnn.training.precision import SETTINGS

STRATEGIES = ("auto", "default", "mirrored")
LR_SCHEDULES = ("constant", "cosine")

# The accepted values of every option (the README's "What is checked" lists them).
_INTEGERS = {  # field: (lowest, highest)
    "filters": (1, 4096),
    "num_layers": (1, 256),
    "epochs": (1, 100_000),
    "steps_per_epoch": (1, 10**9),
    "batch_size": (1, 65_536),
    "seed": (0, 2**32 - 1),  # the sampler's noise takes 32-bit seeds
    "validation_images": (1, 10**9),
    "crop": (1, 4096),
    "image_size": (1, 4096),
    "levels": (2, 256),
    "sample_images": (0, 1024),
}
_NUMBERS = {  # field: (lowest, highest, whether the lowest is allowed); highest is never allowed
    "learning_rate": (0.0, math.inf, False),
    "ema_momentum": (0.0, 1.0, False),
    "validation_fraction": (0.0, 1.0, True),
    "perturb_rate": (0.0, 1.0, True),
}
_CHOICES = {"strategy": STRATEGIES, "lr_schedule": LR_SCHEDULES, "mixed_precision": SETTINGS,
            "jit_compile": ("auto", "on", "off")}
_OPTIONAL = {"filters", "num_layers", "steps_per_epoch", "validation_images", "crop", "image_size",
             "ema_momentum", "data_dir", "init_from"}


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _short(value):
    text = repr(value)  # quotes and all, so "8" and 8 read differently
    return text if len(text) <= 60 else text[:57] + "..."


def _integer(key, value, low, high, optional):
    """`value` as an int in [low, high] (None if optional), else ValueError naming `key` and the range."""
    if value is None and optional:
        return None
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"Expected {key} to be an integer in [{low}, {high}]" + (" or null" if optional else "")
                         + f". Received: {key}={_short(value)}")
    return int(value)


def _number(key, value, low, high, closed, optional):
    """`value` as a float in [low, high) ((low, high) unless `closed`), else ValueError naming `key`."""
    if value is None and optional:
        return None
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not number or not math.isfinite(value) or not (low <= value if closed else low < value) or not value < high:
        bounds = f"{'[' if closed else '('}{low:g}, {high:g})"
        raise ValueError(f"Expected {key} to be a number in {bounds}" + (" or null" if optional else "")
                         + f". Received: {key}={_short(value)}")
    return float(value)


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs):
    """A JSON object as a dict, refusing a key given twice (`{"filters": 8, "filters": 9}` took the last)."""
    values = dict(pairs)
    if len(values) != len(pairs):
        seen = set()
        raise _DuplicateKey(next(repr(key) for key, _ in pairs if key in seen or seen.add(key)))
    return values


def read_json(path):
    """The JSON value in the file `path`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a directory, an unreadable file or invalid JSON, naming `path`.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle, object_pairs_hook=_no_duplicates)
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"Cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    except _DuplicateKey as error:
        raise ValueError(f"{path} gives {error} more than once (which one would win?)") from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise ValueError(f"{path} is not a config: JSON nested too deep") from None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored as `config.json`).

    Attributes:
        dataset, data_dir: see `keras_pixelcnn.data.load`.
        model: architecture name; filters, num_layers, model_options: its hyperparameters.
        epochs, steps_per_epoch, batch_size, learning_rate: optimisation (Adam).
        lr_schedule: "constant", or "cosine" (decay to 0 over all epochs x steps).
        ema_momentum: Polyak averaging of the weights (PixelCNN++ used 0.9995), or
            None. Validation, checkpoints and sample grids then use the averaged
            weights (`keras.callbacks.SwapEMAWeights`); without a validation split
            best.keras is chosen by the raw weights' training loss.
        init_from: a `.keras` file or run dir whose weights start this run
            (same architecture and options), e.g. to go on with another schedule.
        conditional: condition on class labels.
        seed: weights, shuffling and sample grids.
        strategy: "auto" (MirroredStrategy over all GPUs when there are several),
            "default" (one device) or "mirrored"; devices: explicit device names for it.
        validation_fraction: tail of the train split held out for model selection.
        validation_images: cap on validation images per epoch (None: all).
        crop, image_size, levels: preprocessing.
        sample_images: images in the per-epoch sample grid (0: none).
        mixed_precision: "auto" (float16 on GPU), "on" (float16; bfloat16 on JAX), "bf16"
            (bfloat16: about twice as fast on CPUs with AVX512_BF16) or "off" (`training.precision`).
        jit_compile: XLA for the TensorFlow backend: "auto" (on GPU only), "on" or "off".
        exclude_classes: labels left out of training and validation (one-class-out
            anomaly detection), or None.
        perturb_rate: fraction of training sub-pixels replaced by uniform noise
            (the background model of a likelihood ratio, Ren et al. 2019; 0: off).
    """

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    model: str = "pixelcnn"
    filters: int | None = None
    num_layers: int | None = None
    model_options: dict = dataclasses.field(default_factory=dict)
    epochs: int = 10
    steps_per_epoch: int | None = None
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    ema_momentum: float | None = None
    init_from: str | None = None
    conditional: bool = False
    seed: int = 0
    strategy: str = "auto"
    devices: tuple | None = None
    validation_fraction: float = 0.1
    validation_images: int | None = None
    crop: int | None = None
    image_size: int | None = None
    levels: int = 256
    sample_images: int = 16
    mixed_precision: str = "auto"
    jit_compile: str = "auto"
    exclude_classes: tuple | None = None
    perturb_rate: float = 0.0

    def __post_init__(self):
        for key, (low, high) in _INTEGERS.items():
            self._set(key, _integer(key, getattr(self, key), low, high, key in _OPTIONAL))
        for key, (low, high, closed) in _NUMBERS.items():
            self._set(key, _number(key, getattr(self, key), low, high, closed, key in _OPTIONAL))
        for key in ("dataset", "model", "data_dir", "init_from"):
            value = getattr(self, key)
            if not (isinstance(value, str) and value) and not (value is None and key in _OPTIONAL):
                kind = "a non-empty string" + (" or null" if key in _OPTIONAL else "")
                raise ValueError(f"Expected {key} to be {kind}. Received: {key}={value!r}")
        for key, choices in _CHOICES.items():
            if not isinstance(getattr(self, key), str) or getattr(self, key) not in choices:
                raise ValueError(f"Expected {key} in {choices}. Received: {key}={getattr(self, key)!r}")
        if not isinstance(self.conditional, bool):
            raise ValueError(f"Expected conditional to be true or false. Received: conditional={self.conditional!r}")
        self._check_lists()
        self._check_model_options()
        # Cross-field checks.
        if self.validation_fraction and not 1 <= round(100 * self.validation_fraction) <= 99:
            # The split is taken in whole percent (`train[:90%]`): 0.001 held out nothing (and best.keras
            # was never written), 0.999 left no training images.
            raise ValueError("Expected validation_fraction to be 0 or in [0.005, 0.995) (it is rounded to whole "
                             f"percent, 1% to 99%). Received: validation_fraction={self.validation_fraction!r}")
        if self.perturb_rate and self.levels != 256:
            raise ValueError(f"perturb_rate needs 256 levels. Received: levels={self.levels}")
        if self.validation_images is not None and self.validation_fraction == 0:
            raise ValueError("validation_images needs a validation split (validation_fraction > 0). Received: "
                             f"validation_images={self.validation_images}, validation_fraction=0")
        self.preprocessing()  # validate

    def _set(self, key, value):
        object.__setattr__(self, key, value)

    def _check_lists(self):
        if self.devices is not None:
            if isinstance(self.devices, str) or not isinstance(self.devices, (list, tuple)) or not self.devices or not all(
                    isinstance(device, str) and device for device in self.devices):
                raise ValueError(f"Expected devices to be a list of device names like \"/gpu:0\" or null. "
                                 f"Received: devices={self.devices!r}")
            self._set("devices", tuple(self.devices))
        if self.exclude_classes is not None:
            classes = self.exclude_classes
            if _is_int(classes):
                classes = (classes,)
            if isinstance(classes, str) or not isinstance(classes, (list, tuple)) or not classes or not all(
                    _is_int(label) and 0 <= label < 2**31 for label in classes):
                raise ValueError("Expected exclude_classes to be class labels (integers >= 0) or null. "
                                 f"Received: exclude_classes={self.exclude_classes!r}")
            self._set("exclude_classes", tuple(sorted({int(label) for label in classes})))

    def _check_model_options(self):
        if not isinstance(self.model_options, dict) or not all(isinstance(key, str) for key in self.model_options):
            raise ValueError("Expected model_options to be a JSON object of the architecture's options. "
                             f"Received: model_options={self.model_options!r}")
        for key in ("filters", "num_layers"):
            if key in self.model_options:
                raise ValueError(f"Expected {key} as its own option, not in model_options. "
                                 f"Received: model_options={self.model_options!r}")
        options = dict(self.model_options, filters=self.filters, num_layers=self.num_layers)
        # Unknown options and non-positive sizes -> ValueError naming them.
        config_class(self.model).from_dict({key: value for key, value in options.items() if value is not None})

    @classmethod
    def from_dict(cls, values, source=None):
        """Build from a mapping (e.g. a `--config` JSON file); unknown keys are an error.

        Args:
            values: a mapping of field names to values.
            source: where the values came from (a file name), for messages.

        Raises:
            ValueError: a value that is not a mapping, an unknown key, or a bad value
                (the message names the option, the accepted range and `source`).
        """
        where = f" in {source}" if source else ""
        if not isinstance(values, dict):
            text = json.dumps(values, default=repr)
            raise ValueError(f"Expected a JSON object of training options{where}. "
                             f"Received: {text if len(text) <= 60 else text[:57] + '...'}")
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"Unknown training option(s) {unknown}{where}; expected some of {sorted(names)}")
        try:
            return cls(**values)
        except ValueError as error:
            if not source:
                raise
            raise ValueError(f"{source}: {error}") from None

    @classmethod
    def from_file(cls, path):
        """Read a JSON file of options (a `--config`, a run's `config.json`); every problem names `path`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: unreadable, not JSON, or bad options (see `from_dict`).
        """
        return cls.from_dict(read_json(path), source=path)

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["devices"] = None if self.devices is None else list(self.devices)
        values["exclude_classes"] = None if self.exclude_classes is None else list(self.exclude_classes)
        return values

    def preprocessing(self):
        return Preprocessing(crop=self.crop, image_size=self.image_size, levels=self.levels)
