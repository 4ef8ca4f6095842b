"""`fit` and `evaluate`: training runs with `model.fit` under `tf.distribute`, resumable.

A run directory holds:
    config.json   the resolved TrainConfig (re-running with it resumes)
    run.json      library versions, data origin, devices, progress
    best.keras    lowest validation bits/dim; last.keras, the latest epoch
    backup/       BackupAndRestore state (epoch counter, weights, optimizer)
    logs/         TensorBoard (losses in bits/dim, sample grids)
    history.csv   one row per epoch
    samples/      sample grids as PNG
"""

import dataclasses
import importlib
import importlib.util
import json
import os
import platform
import time

import keras

from keras_pixelcnn import data as data_lib
from keras_pixelcnn.callbacks import (AtomicModelCheckpoint, BitsPerDimFromLoss, SampleGrid, StopOnNaN,
                                      TrainingDiverged)
from keras_pixelcnn.images import write_json
from keras_pixelcnn.likelihood import loss_and_metric
from keras_pixelcnn.models import build_model, config_class
from keras_pixelcnn.pipeline import Preprocessing, make_dataset

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


def make_strategy(name, devices=None):
    """The `tf.distribute` strategy for `name` (see `TrainConfig.strategy`)."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and (len(gpus) > 1 or devices)):
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    return tf.distribute.get_strategy()


def _split_sources(config):
    """Training and validation sources: the train split minus its held-out tail."""
    if config.validation_fraction == 0:
        train, validation = data_lib.load(config.dataset, "train", config.data_dir), None
    else:
        held_out = round(100 * config.validation_fraction)
        train = data_lib.load(config.dataset, f"train[:{100 - held_out}%]", config.data_dir)
        validation = data_lib.load(config.dataset, f"train[{100 - held_out}%:]", config.data_dir)
    if config.exclude_classes:
        train = data_lib.without_classes(train, config.exclude_classes)
        validation = validation and data_lib.without_classes(validation, config.exclude_classes)
    return train, validation


def _has_tensorflow():
    return importlib.util.find_spec("tensorflow") is not None


def _versions():
    import numpy

    import keras_pixelcnn

    versions = {"keras_pixelcnn": keras_pixelcnn.__version__, "keras": keras.__version__,
                "numpy": numpy.__version__, "python": platform.python_version(),
                "backend": keras.backend.backend()}
    for module in ("tensorflow", "jax"):
        if importlib.util.find_spec(module) is not None:
            versions[module] = importlib.import_module(module).__version__
    return versions


def _prepare_run_dir(config, run_dir):
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


def _set_precision(config):
    import tensorflow as tf

    on = config.mixed_precision == "on" or (config.mixed_precision == "auto" and tf.config.list_logical_devices("GPU"))
    keras.config.set_dtype_policy("mixed_float16" if on else "float32")


def _prepare(config, run_dir, replicas, write=True):
    """Load and check the data, then create or check the run dir (only when `write`).

    `replicas` (devices the batch is split over) is recorded in `run.json`.

    Returns:
        `(train, validation, image_shape, num_classes, status, initial_weights)`;
        `status` is None when the run is already complete; `initial_weights` are
        those of `config.init_from`, or None (no source, or a run being resumed).
    """
    keras.utils.set_random_seed(config.seed)
    # Read the data before touching the run dir, so a bad dataset leaves nothing behind.
    train, validation = _split_sources(config)
    image_shape = config.preprocessing().output_shape(train.image_shape)
    num_classes = train.num_classes if config.conditional else None
    if config.conditional and num_classes is None:
        raise ValueError(f"Dataset {config.dataset!r} has no class labels; drop --conditional")
    initial_weights = None
    if config.init_from and not os.path.isdir(os.path.join(run_dir, "backup")):
        # Before the run dir is written, so a bad source leaves nothing behind; a resumed
        # run takes its weights from the backup and no longer needs the source.
        initial_weights = _initial_weights(config, image_shape, num_classes)
    status_path = os.path.join(run_dir, "run.json")
    status = {"versions": _versions(), "data": {"train": train.origin, "split": train.split,
              "examples": train.num_examples}, "image_shape": list(image_shape),
              "num_classes": num_classes, "replicas": replicas, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "completed": False}
    if write:
        if _prepare_run_dir(config, run_dir) and os.path.exists(status_path):
            with open(status_path) as handle:
                if json.load(handle).get("completed"):
                    return train, validation, image_shape, num_classes, None, None
        write_json(status_path, status)
    return train, validation, image_shape, num_classes, status, initial_weights


def _build(config, image_shape, num_classes):
    return build_model(config.model, image_shape, num_classes, config.filters, config.num_layers,
                       **config.model_options)


def _compiled_model(config, image_shape, num_classes, total_steps, initial_weights=None):
    """The model, with `initial_weights` if given, compiled with Adam.

    `total_steps` (epochs x steps per epoch) is the length of a cosine schedule.
    """
    model = _build(config, image_shape, num_classes)
    if initial_weights is not None:
        model.set_weights(initial_weights)
    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, total_steps)
    optimizer = keras.optimizers.Adam(learning_rate, use_ema=config.ema_momentum is not None,
                                      ema_momentum=config.ema_momentum or 0.99)
    loss, _ = loss_and_metric(model)
    # bits/dim comes from the loss (BitsPerDimFromLoss), not from a metric that recomputes it.
    model.compile(optimizer=optimizer, loss=loss, jit_compile=_resolve_jit(config.jit_compile))
    return model


def _initial_weights(config, image_shape, num_classes):
    """The weights of `config.init_from` (a `.keras` file or a run dir's best.keras), checked against the model."""
    source = config.init_from
    path = os.path.join(source, "best.keras") if os.path.isdir(source) else source
    if not os.path.isfile(path):
        raise FileNotFoundError("Expected init_from to be a .keras file or a run dir with best.keras. "
                                f"Received: init_from={source!r}")
    initial = keras.saving.load_model(path, compile=False)
    model = _build(config, image_shape, num_classes)
    shapes = [tuple(w.shape) for w in model.weights]
    received = [tuple(w.shape) for w in initial.weights]
    if shapes != received or [tuple(i.shape) for i in model.inputs] != [tuple(i.shape) for i in initial.inputs]:
        raise ValueError(f"Expected init_from to hold this run's architecture, inputs and weight shapes "
                         f"({len(shapes)} weights). Received: init_from={source!r}, which differs")
    return initial.get_weights()


def _resolve_jit(setting):
    """XLA for the TensorFlow backend: "auto" compiles on GPU only.

    On CPU the fused softmax cross-entropy runs about 2x slower under XLA
    (benchmarks/train_throughput.py); the JAX backend always compiles.
    """
    if keras.backend.backend() != "tensorflow":
        return "auto"
    if setting == "auto":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    return setting == "on"


def _callbacks(config, run_dir, has_validation, num_classes, backup_dir, checkpoint_dir=None):
    """Resume, NaN stop, checkpoints, and (on the main process) CSV, TensorBoard, sample grids.

    `checkpoint_dir` is where `.keras` files go; another process of a
    multi-process job passes a scratch dir, since saving replicated arrays is
    a collective step that every process must join.
    """
    nan_stop = StopOnNaN()
    monitor = "val_bits_per_dim" if has_validation else "bits_per_dim"
    # The backup sees the raw weights (it comes before the swap at the epoch's end);
    # validation, checkpoints and sample grids see the averaged ones.
    callbacks = [BitsPerDimFromLoss(), keras.callbacks.BackupAndRestore(backup_dir), nan_stop]
    if config.ema_momentum is not None:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks.append(AtomicModelCheckpoint(checkpoint_dir or run_dir, monitor))
    if checkpoint_dir is None:
        callbacks.append(keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True))
        if _has_tensorflow():
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")))
            if config.sample_images and keras.backend.backend() == "tensorflow":  # the sampler is TF
                callbacks.append(SampleGrid(run_dir, config.sample_images, config.seed, num_classes))
    return callbacks, nan_stop


def _finish(run_dir, status, nan_stop, write=True):
    if nan_stop.where is not None:
        epoch, batch, value = nan_stop.where
        raise TrainingDiverged(f"Training stopped: the loss became {value} at epoch {epoch}, batch {batch}; "
                               "lower --learning-rate or check the data")
    if write:
        status.update(completed=True, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        write_json(os.path.join(run_dir, "run.json"), status)


def fit(config, run_dir, verbose="auto"):
    """Train (or resume) a run with `model.fit` under a `tf.distribute` strategy.

    With the JAX backend this hands over to `keras_pixelcnn.training_jax.fit`.

    Returns:
        The Keras `History`, or None if the run was already complete.

    Raises:
        keras_pixelcnn.data.DataError: dataset problems.
        ValueError: bad options, or a run dir made by another config.
        TrainingDiverged: the loss became NaN.
    """
    if keras.backend.backend() == "jax":
        from keras_pixelcnn import training_jax

        return training_jax.fit(config, run_dir, verbose=verbose)
    _set_precision(config)
    strategy = make_strategy(config.strategy, config.devices)
    train, validation, image_shape, num_classes, status, initial_weights = _prepare(
        config, run_dir, strategy.num_replicas_in_sync)
    if status is None:
        return None
    steps = config.steps_per_epoch or max(1, train.num_examples // config.batch_size)
    with strategy.scope():
        model = _compiled_model(config, image_shape, num_classes, config.epochs * steps, initial_weights)
    preprocessing = config.preprocessing()
    # Always repeat: the stateless shuffle then draws a new permutation per pass over the data.
    train_data = make_dataset(train, preprocessing, config.batch_size, conditional=config.conditional,
                              shuffle=True, repeat=True, seed=config.seed, drop_remainder=True,
                              perturb_rate=config.perturb_rate)
    validation_data = None
    if validation is not None:
        validation_data = make_dataset(validation, preprocessing, config.batch_size,
                                       conditional=config.conditional, limit=config.validation_images)
    callbacks, nan_stop = _callbacks(config, run_dir, validation is not None, num_classes,
                                     os.path.join(run_dir, "backup"))
    history = model.fit(train_data, epochs=config.epochs, steps_per_epoch=steps,
                        validation_data=validation_data, callbacks=callbacks, verbose=verbose, shuffle=False)
    _finish(run_dir, status, nan_stop)
    return history


def load_run(run_dir, which="best"):
    """The run's config and its `best` (or `last`) model.

    Raises:
        ValueError: no such run, or a model file that cannot be read.
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
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # a corrupt zip, a truncated file, an unknown layer
        raise ValueError(f"Cannot load {path}: {type(error).__name__}: {str(error).splitlines()[0]}") from None
    return config, model


def evaluate(run_dir, dataset=None, split="test", limit=None, batch_size=256, data_dir=None):
    """Exact test bits/dim of a run's best model over a split (all of it unless `limit`).

    Returns:
        dict with `bits_per_dim`, `nats_per_image`, `num_images`, `dataset`, `split`.
    """
    config, model = load_run(run_dir)
    name = dataset or config.dataset
    source = data_lib.load(name, split, data_dir if data_dir is not None else
                           (config.data_dir if name == config.dataset else None))
    preprocessing = config.preprocessing()
    expected = tuple(model.inputs[0].shape[1:])
    if preprocessing.output_shape(source.image_shape) != expected:
        raise ValueError(f"{name} images become {preprocessing.output_shape(source.image_shape)} "
                         f"but the model expects {expected}")
    conditional = len(model.inputs) == 2
    loss, metric = loss_and_metric(model)
    model.compile(loss=loss, metrics=[metric])
    dataset_ = make_dataset(source, preprocessing, batch_size, conditional=conditional, limit=limit)
    result = model.evaluate(dataset_, verbose=0, return_dict=True)
    count = min(limit, source.num_examples) if limit else source.num_examples
    dims = expected[0] * expected[1] * expected[2]
    return {"bits_per_dim": float(result["bits_per_dim"]), "nats_per_image": float(result["loss"]) * dims,
            "num_images": count, "dataset": name, "split": split}
