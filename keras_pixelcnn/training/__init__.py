"""Training runs: the config, `fit` per backend (TensorFlow, JAX), evaluation, callbacks, run dirs.

May import everything below it: data, likelihood, sampling (sample grids), models,
distributions, layers. Nothing in the library imports it except `export/` and `cli/`.
"""

from keras_pixelcnn.training.callbacks import TrainingDiverged
from keras_pixelcnn.training.config import LR_SCHEDULES, STRATEGIES, TrainConfig
from keras_pixelcnn.training.evaluate import evaluate
from keras_pixelcnn.training.fit import fit
from keras_pixelcnn.training.run_dir import load_run

__all__ = ["LR_SCHEDULES", "STRATEGIES", "TrainConfig", "TrainingDiverged", "evaluate", "fit", "load_run"]
