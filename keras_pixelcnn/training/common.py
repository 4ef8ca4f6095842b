"""What both backends' `fit` share: data split, run-dir preparation, the compiled model, callbacks."""

import importlib.util
import json
import os
import time

import keras

from keras_pixelcnn.data import sources as data_lib
from keras_pixelcnn.data.images import write_json
from keras_pixelcnn.likelihood import loss_and_metric
from keras_pixelcnn.models import build_model
from keras_pixelcnn.training.callbacks import (AtomicModelCheckpoint, BitsPerDimFromLoss, SampleGrid, StopOnNaN,
                                               TrainingDiverged)
from keras_pixelcnn.training.run_dir import check_run_dir, extended_at, load_model_file, prepare_run_dir, versions
from keras_pixelcnn.training.schedule import CosineCycles


def split_sources(config):
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
    # Before the run dir is written: an empty split made a traceback inside model.fit (every class
    # excluded) or a run that never saved best.keras.
    for part, source in (("training", train), ("validation", validation)):
        if source is not None and not source.num_examples:
            raise data_lib.DataError(f"The {part} split {source.split} of {config.dataset} holds no images "
                                     f"(exclude_classes={list(config.exclude_classes or [])}, "
                                     f"validation_fraction={config.validation_fraction})")
    return train, validation


def has_tensorflow():
    return importlib.util.find_spec("tensorflow") is not None


def prepare(config, run_dir, replicas, write=True, lock=None):
    """Check everything, then create or check the run dir (only when `write`).

    The run dir path, the data, the weights source and the model the options build are all
    checked before anything is written, so a mistake leaves nothing behind. `lock` (a
    `run_dir.RunLock`) is taken just before the first write. `replicas` (devices the batch
    is split over) is recorded in `run.json`.

    A run trained longer (more `config.epochs` than its config.json) records the epoch it
    goes on from in `run.json`'s `extended_at`, where a cosine schedule restarts
    (`training.schedule`).

    Returns:
        `(train, validation, image_shape, num_classes, status, initial_weights)`;
        `status` is None when the run is already complete; `initial_weights` are
        those of `config.init_from`, or None (no source, or a run being resumed).
    """
    if write:
        check_run_dir(config, run_dir)
    keras.utils.set_random_seed(config.seed)
    train, validation = split_sources(config)
    image_shape = config.preprocessing().output_shape(train.image_shape)
    num_classes = train.num_classes if config.conditional else None
    if config.conditional and num_classes is None:
        raise ValueError(f"Dataset {config.dataset!r} has no class labels; drop --conditional")
    initial_weights = None
    if config.init_from and not os.path.isdir(os.path.join(run_dir, "backup")):
        # A resumed run takes its weights from the backup and no longer needs the source.
        initial_weights = load_initial_weights(config, image_shape, num_classes)
    else:
        build(config, image_shape, num_classes)  # options the architecture refuses for this image shape
        keras.utils.set_random_seed(config.seed)  # the real model starts from the same seed state
    status_path = os.path.join(run_dir, "run.json")
    status = {"versions": versions(), "data": {"train": train.origin, "split": train.split,
              "examples": train.num_examples}, "image_shape": list(image_shape),
              "num_classes": num_classes, "replicas": replicas, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "completed": False, "extended_at": extended_at(run_dir)}
    if write:
        if lock is not None:
            lock.acquire()
        existing = prepare_run_dir(config, run_dir)
        if existing is True and os.path.exists(status_path):
            with open(status_path) as handle:
                if json.load(handle).get("completed"):
                    return train, validation, image_shape, num_classes, None, None
        elif existing is not False:  # trained longer, from epoch `existing`
            status["extended_at"] = sorted(set(status["extended_at"]) | {existing})
        write_json(status_path, status)
    return train, validation, image_shape, num_classes, status, initial_weights


def build(config, image_shape, num_classes):
    return build_model(config.model, image_shape, num_classes, config.filters, config.num_layers,
                       **config.model_options)


def compiled_model(config, image_shape, num_classes, total_steps, initial_weights=None, replicas=1,
                   restarts=()):
    """The model, with `initial_weights` if given, compiled with Adam.

    `total_steps` (epochs x steps per epoch) is the length of a cosine schedule, and
    `restarts` the steps where it starts a new cycle (a run trained longer, see
    `training.schedule`); `replicas`, the devices of the `tf.distribute` strategy
    (see `resolve_jit`).
    """
    model = build(config, image_shape, num_classes)
    if initial_weights is not None:
        model.set_weights(initial_weights)
    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine":
        learning_rate = CosineCycles(config.learning_rate,
                                     [0, *(step for step in restarts if 0 < step < total_steps), total_steps])
    optimizer = keras.optimizers.Adam(learning_rate, use_ema=config.ema_momentum is not None,
                                      ema_momentum=config.ema_momentum or 0.99)
    loss, _ = loss_and_metric(model)
    # bits/dim comes from the loss (BitsPerDimFromLoss), not from a metric that recomputes it.
    model.compile(optimizer=optimizer, loss=loss, jit_compile=resolve_jit(config.jit_compile, replicas))
    return model


def load_initial_weights(config, image_shape, num_classes):
    """The weights of `config.init_from` (a `.keras` file or a run dir's best.keras), checked against the model."""
    source = config.init_from
    path = os.path.join(source, "best.keras") if os.path.isdir(source) else source
    if not os.path.isfile(path):
        raise FileNotFoundError("Expected init_from to be a .keras file or a run dir with best.keras. "
                                f"Received: init_from={source!r}")
    initial = load_model_file(path)  # unreadable or non-finite -> ValueError naming the file
    model = build(config, image_shape, num_classes)
    shapes = [tuple(w.shape) for w in model.weights]
    received = [tuple(w.shape) for w in initial.weights]
    if shapes != received or [tuple(i.shape) for i in model.inputs] != [tuple(i.shape) for i in initial.inputs]:
        raise ValueError(f"Expected init_from to hold this run's architecture, inputs and weight shapes "
                         f"({len(shapes)} weights). Received: init_from={source!r}, which differs")
    return initial.get_weights()


def resolve_jit(setting, replicas=1):
    """XLA for the TensorFlow backend: "auto" compiles on one GPU only.

    On CPU the fused softmax cross-entropy runs about 2x slower under XLA
    (benchmarks/train_throughput.py); the JAX backend always compiles. Keras 3
    XLA-compiles the whole `strategy.run` step, which fails with
    "Trying to access resource ... located in device ...:1 from device ...:0"
    over several replicas (keras-team/keras#19005), so a MirroredStrategy over
    several devices trains without XLA, and "on" is refused there.

    Raises:
        ValueError: for "on" with more than one replica.
    """
    if keras.backend.backend() != "tensorflow":
        return "auto"
    if replicas > 1:
        if setting == "on":
            raise ValueError(f"jit_compile='on' needs one device: Keras 3 cannot XLA-compile a MirroredStrategy step "
                             f"over {replicas} replicas (keras-team/keras#19005); use --jit-compile auto or off, "
                             "or --strategy default")
        return False
    if setting == "auto":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    return setting == "on"


def make_callbacks(config, run_dir, has_validation, num_classes, backup_dir, checkpoint_dir=None):
    """Resume, NaN stop, checkpoints, and (on the main process) CSV, TensorBoard, sample grids.

    `checkpoint_dir` is where `.keras` files go; another process of a
    multi-process job passes a scratch dir, since saving replicated arrays is
    a collective step that every process must join.
    """
    nan_stop = StopOnNaN()
    monitor = "val_bits_per_dim" if has_validation else "bits_per_dim"
    # The backup is kept when the run ends, so that it can be trained longer with its optimizer
    # state. The backup sees the raw weights (it comes before the swap at the epoch's end);
    # validation, checkpoints and sample grids see the averaged ones.
    callbacks = [BitsPerDimFromLoss(), keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False), nan_stop]
    if config.ema_momentum is not None:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks.append(AtomicModelCheckpoint(checkpoint_dir or run_dir, monitor))
    if checkpoint_dir is None:
        callbacks.append(keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True))
        if has_tensorflow():
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")))
            if config.sample_images and keras.backend.backend() == "tensorflow":  # the sampler is TF
                callbacks.append(SampleGrid(run_dir, config.sample_images, config.seed, num_classes))
    return callbacks, nan_stop


def finish(run_dir, status, nan_stop, write=True):
    """Mark the run complete in run.json, or record where it diverged and raise TrainingDiverged."""
    if nan_stop.where is not None:
        epoch, batch, value = nan_stop.where
        if write:  # load_run names the epoch when it refuses the non-finite last.keras
            status.update(diverged={"epoch": epoch, "batch": batch, "loss": str(value)})
            write_json(os.path.join(run_dir, "run.json"), status)
        # PixelCNN++ in bfloat16 under JAX on an H200 (the GPU default) diverged at batch 5-6; float32 did not
        half = keras.config.dtype_policy().compute_dtype != "float32"
        float32 = ", train in float32 (--mixed-precision off, into a new --out)" if half else ""
        raise TrainingDiverged(f"Training stopped: the {nan_stop.what} became {value} at epoch {epoch}, batch {batch}; "
                               f"lower --learning-rate{float32} or check the data")
    if write:
        status.update(completed=True, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        write_json(os.path.join(run_dir, "run.json"), status)
