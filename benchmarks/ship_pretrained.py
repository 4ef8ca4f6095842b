"""Copy a trained run's best model into the package as a shipped model, with its model card.

    python benchmarks/ship_pretrained.py --run-dir runs/pp_fm --name fashion_mnist

Writes keras_pixelcnn/weights/NAME.keras (the model without optimizer state)
and NAME.json: the run's training options, the epochs it finished, the images
it saw, its parameters, and its exact test bits/dim over the first 500 test
images and over the whole test split, then prints them.
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
from keras_pixelcnn.images import atomic_path, write_json
from keras_pixelcnn.pretrained import WEIGHTS_DIR
from keras_pixelcnn.training import load_run


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    config, model = load_run(args.run_dir, "best")
    with open(os.path.join(args.run_dir, "history.csv")) as handle:
        history = list(csv.DictReader(handle))
    best = min(history, key=lambda row: float(row["val_bits_per_dim"]))
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
        "training": {"epochs_finished": len(history), "best_epoch": int(best["epoch"]) + 1,
                     "steps_per_epoch": config.steps_per_epoch, "batch_size": config.batch_size,
                     "images_seen": len(history) * config.steps_per_epoch * config.batch_size,
                     "learning_rate": config.learning_rate, "seed": config.seed,
                     "validation_bits_per_dim": round(float(best["val_bits_per_dim"]), 4)},
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
