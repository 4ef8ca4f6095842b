"""Copy a trained run's best model into the package as a shipped model, with its model card.

    python benchmarks/ship_pretrained.py --run-dir runs/pp_fm --name fashion_mnist

Writes keras_pixelcnn/weights/NAME.keras (the model without optimizer state)
and NAME.json: per training stage (a run, then the runs it was started from
with `init_from`, or a `.keras` file's provenance in a `.json` beside it) its
options and the epochs and images up to its best checkpoint; the parameters;
and its exact test bits/dim over the first 500 test images and over the whole
test split. It prints the card.
"""

import argparse
import csv
import json
import os
import platform

import keras
import numpy as np
import tensorflow as tf

import keras_pixelcnn as kp
from keras_pixelcnn.data import load
from keras_pixelcnn.data.images import atomic_path, write_json
from keras_pixelcnn.models.pretrained import WEIGHTS_DIR
from keras_pixelcnn.training import TrainConfig, load_run


def _stages(run_dir):
    """The training stages that made `run_dir`'s best model, following `init_from` back to the first run."""
    with open(os.path.join(run_dir, "config.json")) as handle:
        config = TrainConfig.from_dict(json.load(handle))
    with open(os.path.join(run_dir, "history.csv")) as handle:
        history = list(csv.DictReader(handle))
    best = min(history, key=lambda row: float(row["val_bits_per_dim"]))
    epochs = int(best["epoch"]) + 1
    steps = config.steps_per_epoch
    if steps is None:  # one pass over the training examples per epoch
        with open(os.path.join(run_dir, "run.json")) as handle:
            steps = max(1, json.load(handle)["data"]["examples"] // config.batch_size)
    stage = {"run_dir": run_dir, "epochs": epochs, "steps_per_epoch": steps,
             "batch_size": config.batch_size, "images_seen": epochs * steps * config.batch_size,
             "learning_rate": config.learning_rate, "lr_schedule": config.lr_schedule,
             "ema_momentum": config.ema_momentum, "seed": config.seed,
             "validation_bits_per_dim": round(float(best["val_bits_per_dim"]), 4), "init_from": config.init_from}
    return _earlier_stages(config.init_from) + [stage]


def _earlier_stages(source):
    """Stages behind `init_from`: a run dir, or a `.keras` file with a `.json` of its provenance beside it."""
    if not source:
        return []
    if os.path.isdir(source):
        return _stages(source)
    record = os.path.splitext(source)[0] + ".json"
    if not os.path.exists(record):
        return [{"init_from": source, "images_seen": 0, "note": "no provenance record"}]
    with open(record) as handle:
        stage = json.load(handle)
    return _earlier_stages(stage.get("init_from")) + [stage]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    config, model = load_run(args.run_dir, "best")
    stages = _stages(args.run_dir)
    test = load(config.dataset, "test")
    bits = kp.bits_per_dim(model, test.images)
    os.makedirs(WEIGHTS_DIR, exist_ok=True)
    path = os.path.join(WEIGHTS_DIR, f"{args.name}.keras")
    with atomic_path(path) as temporary:
        model.save(temporary)
    card = {
        "name": args.name, "architecture": config.model, "image_shape": list(model.inputs[0].shape[1:]),
        "options": {"filters": config.filters, "num_layers": config.num_layers, **config.model_options},
        "parameters": model.count_params(), "dataset": config.dataset,
        "training": {"images_seen": sum(stage["images_seen"] for stage in stages), "stages": stages},
        "test_bits_per_dim_first_500": round(float(np.mean(bits[:500])), 4),
        "test_bits_per_dim": round(float(np.mean(bits)), 4), "test_images": len(bits),
        "hardware": f"{platform.machine()} {os.cpu_count()} CPU cores",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "keras_pixelcnn": kp.__version__},
        "file_bytes": os.path.getsize(path),
    }
    write_json(os.path.join(WEIGHTS_DIR, f"{args.name}.json"), card)
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
