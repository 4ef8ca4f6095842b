"""Train every architecture on Fashion-MNIST for one budget and report test bits/dim, in one run.

    python benchmarks/quality.py --runs-dir runs/quality [--architectures pixelcnn,gated_pixelcnn]
        [--epochs 1] [--steps-per-epoch 300] [--batch-size 32] [--filters N] [--num-layers N]
        [--test-images N] [--json results.json] [--overrides ARCHITECTURE=FILE.json ...]

Each architecture trains with `kpixel fit`'s own code (`keras_pixelcnn.training.fit`)
into RUN_DIR/ARCHITECTURE (a normal run directory: `kpixel sample` and
`kpixel evaluate` work on it; re-running resumes or skips finished runs) on
the same data, seed, steps and batch size, with its default hyperparameters
unless --filters/--num-layers are given. `--overrides pixelsnail=snail.json`
changes `kpixel fit --config` fields for one architecture only (e.g. its
filters, to compare models of equal parameter counts, or `model_options`);
the budget (epochs, steps, batch size) stays shared. The plain "pixelcnn" is the
reference the others are compared with. Test bits/dim is exact, over the whole
Fashion-MNIST test split (10,000 images) unless --test-images is given.
Training images/s is steps x batch size over the wall time of `fit` (it
includes per-epoch validation and sample grids).
"""

import argparse
import json
import os
import platform
import sys
import time

import keras
import tensorflow as tf

import keras_pixelcnn as kp
from keras_pixelcnn.training import TrainConfig, evaluate, fit, load_run
from keras_pixelcnn.training.config import read_json


_SHARED = ("model", "epochs", "steps_per_epoch", "batch_size", "seed", "dataset")


def _overrides(items, architectures):
    """`{architecture: {field: value}}` from `ARCHITECTURE=FILE.json` items.

    Raises:
        ValueError: an unknown architecture, or a missing, unreadable or non-object file, naming it.
    """
    overrides = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or name not in architectures:
            raise ValueError(f"--overrides expects ARCHITECTURE=FILE.json with ARCHITECTURE one of "
                             f"{architectures}. Received: {item!r}")
        try:
            fields = read_json(path)
        except FileNotFoundError as error:  # read_json's ValueErrors name the file too
            raise ValueError(f"--overrides: {error}") from None
        if not isinstance(fields, dict) or set(fields) & set(_SHARED):
            raise ValueError(f"--overrides {path}: expected a JSON object without the shared fields {_SHARED}")
        overrides[name] = fields
    return overrides


def _config(name, args, overrides):
    fields = dict(model=name, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                  batch_size=args.batch_size, learning_rate=args.learning_rate, filters=args.filters,
                  num_layers=args.num_layers, validation_images=args.validation_images,
                  sample_images=args.sample_images, seed=args.seed)
    fields.update(overrides.get(name, {}))
    return TrainConfig.from_dict(fields)


def _train(name, args, config, overrides):
    run_dir = os.path.join(args.runs_dir, name)
    timing_path = os.path.join(run_dir, "benchmark_timing.json")
    start = time.perf_counter()
    history = fit(config, run_dir, verbose=2)
    if history is not None:  # trained now (not a finished run found on disk)
        seconds = time.perf_counter() - start
        with open(timing_path, "w") as handle:
            json.dump({"train_seconds": seconds}, handle)
    with open(timing_path) as handle:
        seconds = json.load(handle)["train_seconds"]
    _, model = load_run(run_dir)
    result = evaluate(run_dir, limit=args.test_images)
    return {
        "architecture": name, "parameters": model.count_params(), "train_seconds": round(seconds, 1),
        "train_images_per_second": round(args.epochs * args.steps_per_epoch * args.batch_size / seconds, 1),
        "test_bits_per_dim": round(result["bits_per_dim"], 4), "test_images": result["num_images"],
        "run_dir": run_dir, "overrides": overrides.get(name, {}),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--architectures", default=",".join(kp.ARCHITECTURES))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps-per-epoch", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--filters", type=int, default=None)
    parser.add_argument("--num-layers", type=int, default=None)
    parser.add_argument("--validation-images", type=int, default=1000)
    parser.add_argument("--test-images", type=int, default=None, help="Default: the whole test split.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-images", type=int, default=16, help="Per-epoch sample grid (0: none).")
    parser.add_argument("--json", default=None, help="Also write the results here.")
    parser.add_argument("--overrides", nargs="*", default=[], metavar="ARCHITECTURE=FILE.json",
                        help="kpixel fit --config fields for one architecture (not the shared budget).")
    args = parser.parse_args()
    names = args.architectures.split(",")
    try:  # every configuration validated before the first training
        overrides = _overrides(args.overrides, names)
        configs = {name: _config(name, args, overrides) for name in names}
    except ValueError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(2)
    devices = [device.device_type for device in tf.config.list_logical_devices()]
    header = (f"# Fashion-MNIST 28x28, 256 levels; {args.epochs} x {args.steps_per_epoch} steps of "
              f"{args.batch_size} images, Adam {args.learning_rate}, seed {args.seed}; "
              f"{platform.machine()} {os.cpu_count()} cores, devices {devices}, "
              f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    results = [_train(name, args, configs[name], overrides) for name in names]
    print(header)
    print("| architecture | parameters | train images/s | train wall s | test bits/dim | test images |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in results:
        print(f"| {row['architecture']} | {row['parameters']:,} | {row['train_images_per_second']} | "
              f"{row['train_seconds']} | {row['test_bits_per_dim']:.4f} | {row['test_images']:,} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"header": header, "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
