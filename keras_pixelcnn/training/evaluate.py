"""`evaluate`: exact bits/dim of a model over a data split: a run's best model, a `.keras` file or a shipped model."""

import os

import numpy as np

from keras_pixelcnn.data import sources as data_lib
from keras_pixelcnn.data.pipeline import Preprocessing, make_dataset
from keras_pixelcnn.likelihood import check_batch_size, loss_and_metric
from keras_pixelcnn.models import pretrained as shipped
from keras_pixelcnn.models.inference import inference_model
from keras_pixelcnn.training import run_dir

DEFAULT_DATASET = "fashion_mnist"


def load_model_file(path):
    """A keras_pixelcnn model from a `.keras` file (not compiled).

    Raises:
        ValueError: a missing or unreadable file, non-finite weights, or a model that does not
            end in a `PixelDistribution`.
    """
    model = run_dir.load_model_file(path)
    loss_and_metric(model)  # not a pixel model -> ValueError
    return model


def _model_and_data(model_path, pretrained):
    """`(model, dataset, data_dir, preprocessing)` of a run dir, a `.keras` file or a shipped model."""
    if pretrained is not None:
        return shipped.load_pretrained(pretrained), shipped.card(pretrained)["dataset"], None, Preprocessing()
    if model_path.endswith(".keras") and not os.path.isdir(model_path):
        # A bare file carries no preprocessing: the images must already have the model's input shape.
        return load_model_file(model_path), DEFAULT_DATASET, None, Preprocessing()
    config, model = run_dir.load_run(model_path)
    return model, config.dataset, config.data_dir, config.preprocessing()


def evaluate(model_path=None, dataset=None, split="test", limit=None, batch_size=256, data_dir=None, *,
             pretrained=None):
    """Exact bits/dim of a model over a split (all of it unless `limit`).

    Args:
        model_path: a run directory (its best model, scored after the run's own
            preprocessing) or a `.keras` file (no preprocessing).
        dataset: the dataset to score; default the run's, the shipped model's, or fashion_mnist.
        split: e.g. "test" or "train[:10%]".
        limit: only the first `limit` images.
        batch_size: images per batch.
        data_dir: where the dataset's files are (default: the run's for its own dataset).
        pretrained: the name of a shipped model, instead of `model_path`.

    Returns:
        dict with `bits_per_dim`, `nats_per_image`, `num_images`, `dataset`, `split`.

    Raises:
        ValueError: both or neither of `model_path` and `pretrained`, a bad limit or batch_size, an empty split,
            a model that cannot be loaded, or images whose shape (after preprocessing) is not the model's input shape.
    """
    if (model_path is None) == (pretrained is None):
        raise ValueError("Expected either a run directory or .keras file, or pretrained=NAME. Received: "
                         + ("both" if model_path is not None else "neither"))
    if limit is not None and (not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"Expected limit to be an integer >= 1 or None (the whole split). Received: limit={limit!r}")
    batch_size = check_batch_size(batch_size)
    model, default_dataset, default_data_dir, preprocessing = _model_and_data(model_path, pretrained)
    model = inference_model(model)  # float32 whatever the training policy
    name = dataset or default_dataset
    if data_dir is None and name == default_dataset:
        data_dir = default_data_dir
    source = data_lib.load(name, split, data_dir)
    if source.num_examples == 0:
        raise ValueError(f"{name}[{split}] holds no images. Received: split={split!r}")
    expected = tuple(model.inputs[0].shape[1:])
    shape = preprocessing.output_shape(source.image_shape)
    if shape != expected:
        verb = "are" if preprocessing == Preprocessing() else "become"
        raise ValueError(f"{name} images {verb} {shape} but the model expects {expected}")
    conditional = len(model.inputs) == 2
    loss, metric = loss_and_metric(model)
    model.compile(loss=loss, metrics=[metric])
    dataset_ = make_dataset(source, preprocessing, batch_size, conditional=conditional, limit=limit)
    result = model.evaluate(dataset_, verbose=0, return_dict=True)
    count = min(limit, source.num_examples) if limit else source.num_examples
    dims = expected[0] * expected[1] * expected[2]
    return {"bits_per_dim": float(result["bits_per_dim"]), "nats_per_image": float(result["loss"]) * dims,
            "num_images": count, "dataset": name, "split": split}
