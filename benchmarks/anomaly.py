"""One-class-out anomaly detection on Fashion-MNIST: AUROC of raw and corrected scores, in one run.

    python benchmarks/anomaly.py --runs-dir runs/anomaly [--held-out 5] [--model pixelcnn]
        [--epochs 1] [--steps-per-epoch 300] [--batch-size 32] [--perturb-rate 0.2] [--test-images N]

Trains a model on the nine other classes and, for the likelihood ratio, a
background model on the same images with `--perturb-rate` of their sub-pixels
replaced by noise (Ren et al. 2019), both with `kpixel fit`'s code (run
directories RUNS_DIR/model and RUNS_DIR/background; re-running reuses them).
Then scores the Fashion-MNIST test split: the held-out class is the anomaly,
the other nine the normal data, and prints the AUROC ("an anomaly scores
higher than a normal image") of raw bits/dim, the input-complexity corrected
score (Serrà et al. 2020) and the likelihood ratio.
"""

import argparse
import os

import numpy as np

from keras_pixelcnn.data import sources as data
from keras_pixelcnn.scoring import auroc, score
from keras_pixelcnn.training import TrainConfig, fit, load_run

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--held-out", type=int, default=5)
    parser.add_argument("--model", default="pixelcnn")
    parser.add_argument("--filters", type=int, default=None)
    parser.add_argument("--num-layers", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps-per-epoch", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--perturb-rate", type=float, default=0.2)
    parser.add_argument("--test-images", type=int, default=None, help="First N test images (default: all).")
    args = parser.parse_args()
    common = dict(model=args.model, filters=args.filters, num_layers=args.num_layers, epochs=args.epochs,
                  steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, validation_images=1000,
                  sample_images=0, exclude_classes=(args.held_out,))
    runs = {"model": TrainConfig(**common), "background": TrainConfig(**common, perturb_rate=args.perturb_rate)}
    for name, config in runs.items():
        fit(config, os.path.join(args.runs_dir, name), verbose=2)
    model = load_run(os.path.join(args.runs_dir, "model"))[1]
    background = load_run(os.path.join(args.runs_dir, "background"))[1]
    test = data.load("fashion_mnist", "test")
    images, labels = test.images[:args.test_images], test.labels[:args.test_images]
    scores = score(model, images, background=background)
    anomaly = labels == args.held_out
    print(f"# {args.model}, trained {args.epochs} x {args.steps_per_epoch} steps of {args.batch_size} on the 9 "
          f"classes other than {args.held_out} ({CLASSES[args.held_out]}); background: perturb rate "
          f"{args.perturb_rate}; {int((~anomaly).sum())} normal and {int(anomaly.sum())} anomalous test images")
    print("| score | AUROC | mean normal | mean anomaly |")
    print("|---|---:|---:|---:|")
    for key in ("bits_per_dim", "complexity", "likelihood_ratio"):
        values = scores[key]
        print(f"| {key} | {auroc(values[~anomaly], values[anomaly]):.3f} | {np.mean(values[~anomaly]):.3f} | "
              f"{np.mean(values[anomaly]):.3f} |")


if __name__ == "__main__":
    main()
