"""Training on the TensorFlow backend: `model.fit` under a `tf.distribute` strategy, resumable."""

import os

import keras

from keras_pixelcnn.data.pipeline import make_dataset
from keras_pixelcnn.training.common import compiled_model, finish, make_callbacks, prepare, resolve_jit
from keras_pixelcnn.training.precision import dtype_policy
from keras_pixelcnn.training.run_dir import completed_epochs


def make_strategy(name, devices=None):
    """The `tf.distribute` strategy for `name` (see `TrainConfig.strategy`)."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if devices:
        _check_devices(devices, tf.config.list_logical_devices())
    if name == "mirrored" or (name == "auto" and (len(gpus) > 1 or devices)):
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    return tf.distribute.get_strategy()


def _check_devices(devices, available):
    """Refuse (ValueError) a device name that is malformed or not on this machine: `"devices": ["/gpu:7"]`
    trained on the CPU without a word."""
    import tensorflow as tf

    present = set()
    for device in available:
        spec = tf.DeviceSpec.from_string(device.name)
        present |= {(spec.device_type.upper(), spec.device_index), (spec.device_type.upper(), None)}
    for device in devices:
        try:
            spec = tf.DeviceSpec.from_string(device)
        except (ValueError, TypeError):
            spec = None
        if spec is None or not spec.device_type or (spec.device_type.upper(), spec.device_index) not in present:
            raise ValueError(f"Expected devices of this machine ({sorted(d.name for d in available)}). "
                             f"Received: devices={list(devices)!r}")


def _set_precision(config):
    import tensorflow as tf

    gpu = bool(tf.config.list_logical_devices("GPU"))
    keras.config.set_dtype_policy(dtype_policy(config.mixed_precision, "tensorflow", gpu))


def fit(config, run_dir, verbose="auto", lock=None):
    """Train (or resume) a run with `model.fit` under a `tf.distribute` strategy.

    Returns:
        The Keras `History`, or None if the run was already complete.

    Raises:
        keras_pixelcnn.data.sources.DataError: dataset problems.
        ValueError: bad options, or a run dir made by another config.
        TrainingDiverged: the loss became NaN.
    """
    _set_precision(config)
    strategy = make_strategy(config.strategy, config.devices)
    resolve_jit(config.jit_compile, strategy.num_replicas_in_sync)  # refuse before the run dir is written
    train, validation, image_shape, num_classes, status, initial_weights = prepare(
        config, run_dir, strategy.num_replicas_in_sync, lock=lock)
    if status is None:
        return None
    steps = config.steps_per_epoch or max(1, train.num_examples // config.batch_size)
    with strategy.scope():
        model = compiled_model(config, image_shape, num_classes, config.epochs * steps, initial_weights,
                               strategy.num_replicas_in_sync, [epoch * steps for epoch in status["extended_at"]])
    preprocessing = config.preprocessing()
    # Always repeat: the stateless shuffle then draws a new permutation per pass over the data.
    # A resumed run starts at the batch after the last finished epoch's, not at the first.
    train_data = make_dataset(train, preprocessing, config.batch_size, conditional=config.conditional,
                              shuffle=True, repeat=True, seed=config.seed, drop_remainder=True,
                              perturb_rate=config.perturb_rate,
                              first_batch=completed_epochs(os.path.join(run_dir, "backup")) * steps)
    validation_data = None
    if validation is not None:
        validation_data = make_dataset(validation, preprocessing, config.batch_size,
                                       conditional=config.conditional, limit=config.validation_images)
    callbacks, nan_stop = make_callbacks(config, run_dir, validation is not None, num_classes,
                                         os.path.join(run_dir, "backup"))
    history = model.fit(train_data, epochs=config.epochs, steps_per_epoch=steps,
                        validation_data=validation_data, callbacks=callbacks, verbose=verbose, shuffle=False)
    finish(run_dir, status, nan_stop)
    return history
