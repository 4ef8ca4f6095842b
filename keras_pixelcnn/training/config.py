"""`TrainConfig`: everything that defines a training run, validated, stored as a run's `config.json`."""

import dataclasses

from keras_pixelcnn.data.pipeline import Preprocessing
from keras_pixelcnn.models import config_class

STRATEGIES = ("auto", "default", "mirrored")
LR_SCHEDULES = ("constant", "cosine")


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
        mixed_precision: "auto" (float16 on GPU), "on" or "off".
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
        config_class(self.model)  # unknown architecture -> ValueError
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Expected strategy in {STRATEGIES}. Received: strategy={self.strategy!r}")
        for key in ("mixed_precision", "jit_compile"):
            if getattr(self, key) not in ("auto", "on", "off"):
                raise ValueError(f"Expected {key} auto|on|off. Received: {key}={getattr(self, key)!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"Expected lr_schedule in {LR_SCHEDULES}. Received: lr_schedule={self.lr_schedule!r}")
        if self.ema_momentum is not None and not (isinstance(self.ema_momentum, float)
                                                  and 0 < self.ema_momentum < 1):
            raise ValueError(f"Expected ema_momentum in (0, 1). Received: ema_momentum={self.ema_momentum!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"Expected validation_fraction in [0, 1). Received: {self.validation_fraction!r}")
        for key in ("epochs", "batch_size"):
            if not (isinstance(getattr(self, key), int) and getattr(self, key) > 0):
                raise ValueError(f"Expected {key} to be a positive int. Received: {key}={getattr(self, key)!r}")
        if not (isinstance(self.perturb_rate, (int, float)) and 0 <= self.perturb_rate < 1):
            raise ValueError(f"Expected perturb_rate in [0, 1). Received: perturb_rate={self.perturb_rate!r}")
        if self.perturb_rate and self.levels != 256:
            raise ValueError(f"perturb_rate needs 256 levels. Received: levels={self.levels}")
        if self.exclude_classes is not None:
            if isinstance(self.exclude_classes, int) and not isinstance(self.exclude_classes, bool):
                object.__setattr__(self, "exclude_classes", (self.exclude_classes,))
            if not all(isinstance(c, int) and not isinstance(c, bool) for c in self.exclude_classes):
                raise ValueError(f"Expected integer class labels. Received: exclude_classes={self.exclude_classes!r}")
            object.__setattr__(self, "exclude_classes", tuple(sorted(set(self.exclude_classes))))
        self.preprocessing()  # validate

    @classmethod
    def from_dict(cls, values):
        """Build from a mapping (e.g. a `--config` JSON file); unknown keys are an error."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"Unknown training option(s) {unknown}; expected some of {sorted(names)}")
        values = dict(values)
        if values.get("devices") is not None:
            values["devices"] = tuple(values["devices"])
        return cls(**values)

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["devices"] = None if self.devices is None else list(self.devices)
        values["exclude_classes"] = None if self.exclude_classes is None else list(self.exclude_classes)
        return values

    def preprocessing(self):
        return Preprocessing(crop=self.crop, image_size=self.image_size, levels=self.levels)
