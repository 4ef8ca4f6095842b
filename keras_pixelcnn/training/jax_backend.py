"""Training on the JAX backend: one or many processes with `keras.distribution.DataParallel`.

Keras 3 does not support `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras#20585); its multi-host path is JAX. Each process calls
`jax.distributed.initialize`, feeds its own shard of the data, and Keras
assembles the global batch across all processes' devices. Needs no TensorFlow
for array datasets (Fashion-MNIST IDX files, image folders).
"""

import math
import os
import tempfile

import keras
import numpy as np

from keras_pixelcnn.training.common import compiled_model, finish, make_callbacks, prepare
from keras_pixelcnn.training.precision import dtype_policy


def initialize(coordinator=None, num_processes=1, process_id=0):
    """Join a multi-process JAX job (no-op for one process). Call before any JAX work."""
    if num_processes > 1:
        import jax

        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)


def _arrays(source, preprocessing, limit=None):
    """Numpy images and labels of a source (TFDS sources are read through tfds.as_numpy)."""
    if source.tf_dataset is not None:
        import tensorflow_datasets as tfds

        pairs = list(tfds.as_numpy(source.tf_dataset.take(limit if limit is not None else -1)))
        images = np.stack([image for image, _ in pairs])
        labels = np.asarray([label for _, label in pairs], dtype=np.int32)
    else:
        images, labels = source.images[:limit], source.labels
        labels = np.zeros(len(images), np.int32) if labels is None else labels[:limit]
    return preprocessing.apply_numpy(images).astype(np.int32), labels.astype(np.int32)


def fit(config, run_dir, verbose="auto", lock=None):
    """Train with the JAX backend over every device of every process.

    Process 0 writes the run dir; each process keeps its own BackupAndRestore
    state (the replicated weights are identical) so a re-run resumes everywhere.
    """
    import jax

    processes, index = jax.process_count(), jax.process_index()
    if config.batch_size % jax.device_count():
        raise ValueError(f"Expected batch_size divisible by the {jax.device_count()} devices. "
                         f"Received: batch_size={config.batch_size}")
    main = index == 0
    if config.perturb_rate:
        raise ValueError("perturb_rate (background models) is implemented in the tf.data pipeline: "
                         "train it with the TensorFlow backend")
    train, validation, image_shape, num_classes, status, initial_weights = prepare(
        config, run_dir, jax.device_count(), write=main, lock=lock)
    if main and status is None:
        return None
    keras.config.set_dtype_policy(dtype_policy(config.mixed_precision, "jax", jax.default_backend() == "gpu"))
    # Each process passes its own shard (below), so Keras must not shard again.
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False))
    preprocessing = config.preprocessing()
    images, labels = _arrays(train, preprocessing)
    # This process's shard; Keras joins the per-process batches into the global batch.
    images, labels = images[index::processes], labels[index::processes]
    # The steps Keras runs per epoch on this shard (the cosine schedule's length).
    steps = math.ceil(len(images) / (config.batch_size // processes))
    steps = min(steps, config.steps_per_epoch or steps)
    restarts = [epoch * steps for epoch in (status or {}).get("extended_at", [])]
    model = compiled_model(config, image_shape, num_classes, config.epochs * steps, initial_weights, restarts=restarts)
    x = [images, labels] if config.conditional else images
    validation_data = None
    if validation is not None:
        val_images, val_labels = _arrays(validation, preprocessing, config.validation_images)
        val_images, val_labels = val_images[index::processes], val_labels[index::processes]
        validation_data = ([val_images, val_labels] if config.conditional else val_images, val_images)
    with tempfile.TemporaryDirectory() as scratch:
        callbacks, nan_stop = make_callbacks(config, run_dir, validation is not None, num_classes,
                                             os.path.join(run_dir, "backup", f"process_{index}"),
                                         checkpoint_dir=None if main else scratch)
        history = model.fit(x, images, batch_size=config.batch_size // processes, epochs=config.epochs,
                            steps_per_epoch=config.steps_per_epoch, validation_data=validation_data,
                            callbacks=callbacks, verbose=verbose if main else 0, shuffle=True)
    finish(run_dir, status, nan_stop, write=main)
    return history
