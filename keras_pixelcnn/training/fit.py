"""`fit`: train or resume a run on the Keras backend in use (TensorFlow or JAX)."""

import keras

from keras_pixelcnn.training.run_dir import RunLock


def fit(config, run_dir, verbose="auto"):
    """Train (or resume) the run `config` describes in `run_dir`.

    The TensorFlow backend trains under a `tf.distribute` strategy
    (`tf_backend`); the JAX backend over every device of every process
    (`jax_backend`). Both write the same run directory.

    Returns:
        The Keras `History`, or None if the run was already complete.

    Raises:
        keras_pixelcnn.data.sources.DataError: dataset problems.
        ValueError: bad options, a run dir made by another config, or one another process
            is training (`RUN_DIR is in use by process N`: `run_dir.RunLock`).
        keras_pixelcnn.training.callbacks.TrainingDiverged: the loss became NaN.
    """
    # Both backends set a global dtype policy (and JAX a distribution); put them back afterwards.
    policy, distribution = keras.config.dtype_policy(), keras.distribution.distribution()
    try:
        # Taken once everything is checked, just before the first write; held until training ends.
        with RunLock(run_dir) as lock:
            if keras.backend.backend() == "jax":
                from keras_pixelcnn.training import jax_backend

                return jax_backend.fit(config, run_dir, verbose=verbose, lock=lock)
            from keras_pixelcnn.training import tf_backend

            return tf_backend.fit(config, run_dir, verbose=verbose, lock=lock)
    finally:
        keras.config.set_dtype_policy(policy)
        keras.distribution.set_distribution(distribution)
