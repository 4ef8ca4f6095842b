"""`evaluate`: exact bits/dim of a run's best model over a data split."""

from keras_pixelcnn.data import sources as data_lib
from keras_pixelcnn.data.pipeline import make_dataset
from keras_pixelcnn.likelihood import loss_and_metric
from keras_pixelcnn.models.inference import inference_model
from keras_pixelcnn.training.run_dir import load_run


def evaluate(run_dir, dataset=None, split="test", limit=None, batch_size=256, data_dir=None):
    """Exact test bits/dim of a run's best model over a split (all of it unless `limit`).

    Returns:
        dict with `bits_per_dim`, `nats_per_image`, `num_images`, `dataset`, `split`.
    """
    config, model = load_run(run_dir)
    model = inference_model(model)  # float32 whatever the training policy
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
