"""Training callbacks that Keras does not ship: atomic checkpoints, NaN stop, sample grids."""

import json
import math
import os

import keras
import numpy as np

from keras_pixelcnn.data.images import atomic_path, make_grid, save_png, write_json
from keras_pixelcnn.models.inference import non_finite_weights


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Save `last.keras` every epoch and `best.keras` when `monitor` improves.

    Unlike `keras.callbacks.ModelCheckpoint`, each file is written to a
    temporary path and renamed, so a kill mid-save never leaves a broken model.

    Args:
        directory: run directory.
        monitor: a logged metric to minimise.
    """

    def __init__(self, directory, monitor="val_bits_per_dim"):
        super().__init__()
        self.directory = directory
        self.monitor = monitor
        self.best = math.inf

    def on_train_begin(self, logs=None):
        best_path = os.path.join(self.directory, "best.json")
        if os.path.exists(best_path):  # a resumed run keeps its best so far
            with open(best_path) as handle:
                self.best = json.load(handle)["value"]

    def _save(self, name):
        with atomic_path(os.path.join(self.directory, name)) as temporary:
            self.model.save(temporary)

    def on_epoch_end(self, epoch, logs=None):
        self._save("last.keras")
        value = (logs or {}).get(self.monitor)
        # Never a non-finite model as best.keras (NaN compares False, but an inf weight can give a finite loss).
        if value is not None and math.isfinite(value) and value < self.best and not non_finite_weights(self.model):
            self.best = float(value)
            self._save("best.keras")
            write_json(os.path.join(self.directory, "best.json"),
                       {"epoch": epoch + 1, "monitor": self.monitor, "value": self.best})


class BitsPerDimFromLoss(keras.callbacks.Callback):
    """Add `bits_per_dim` (and `val_bits_per_dim`) = loss / ln 2 to the logs.

    The training loss is the mean negative log-likelihood per sub-pixel in
    nats, so this reports bits/dim at no cost, where a `BitsPerDim` metric
    would compute the likelihood a second time (about a third of a CPU step).
    Put it before the callbacks that read the logs.
    """

    def _add(self, logs):
        if logs is None:
            return
        for prefix in ("", "val_"):
            if f"{prefix}loss" in logs:
                logs[f"{prefix}bits_per_dim"] = float(logs[f"{prefix}loss"]) / math.log(2.0)

    def on_train_batch_end(self, batch, logs=None):
        self._add(logs)

    def on_test_end(self, logs=None):
        self._add(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._add(logs)


class StopOnNaN(keras.callbacks.Callback):
    """Stop at the first non-finite loss and remember where, for a clear error.

    A batch's loss is computed before its update, so the update of an epoch's last batch can
    make the weights non-finite with every training loss finite (`--learning-rate 1e308` did,
    and the run was reported complete). The end of each epoch therefore also checks the
    validation loss and the weights. Put it before the checkpoint callback.
    """

    def __init__(self):
        super().__init__()
        self.where = None
        self.what = "loss"
        self._epoch = 0
        self._batch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._batch = batch + 1
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.where = (self._epoch + 1, batch + 1, float(loss))
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.where is not None:
            return
        loss = (logs or {}).get("val_loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.what = "validation loss"
            self.where = (epoch + 1, self._batch, float(loss))
        elif non_finite_weights(self.model):
            self.what = "weights"
            self.where = (epoch + 1, self._batch, float("nan"))
        if self.where is not None:
            self.model.stop_training = True


class SampleGrid(keras.callbacks.Callback):
    """After each epoch, sample a grid of images; log it to TensorBoard and save a PNG.

    Args:
        directory: run directory (PNGs go to `samples/`, events to `logs/samples`).
        num_images: images in the grid.
        seed: sampling seed (fixed, so epochs compare like for like).
        num_classes: for a conditional model, labels cycle over the classes.
    """

    def __init__(self, directory, num_images=16, seed=0, num_classes=None):
        super().__init__()
        self.directory = directory
        self.num_images = num_images
        self.seed = seed
        self.num_classes = num_classes

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        from keras_pixelcnn.sampling import sample

        labels = None if self.num_classes is None else np.arange(self.num_images) % self.num_classes
        images = sample(self.model, self.num_images, seed=self.seed, labels=labels)
        grid = make_grid(images)
        save_png(os.path.join(self.directory, "samples", f"epoch_{epoch + 1:03d}.png"), grid)
        writer = tf.summary.create_file_writer(os.path.join(self.directory, "logs", "samples"))
        with writer.as_default():
            tf.summary.image("samples", grid[None], step=epoch + 1)
        writer.close()
