"""Peak memory of one request to an exported SavedModel's `serving_default`, by batch size, in one run.

    python benchmarks/export_memory.py [--pretrained fashion_mnist] [--architectures pixelcnn,row_lstm]
        [--batches 1 16 64] [--pixelcnn-pp-filters 32]

For the shipped model `--pretrained` (skipped with `--pretrained ''`) and every architecture in
`--architectures` (fresh weights, default hyperparameters, as `export_sampling.py` builds them),
exports the default SavedModel (no XLA; max batch: the largest batch asked for), then for each
batch size loads it in a fresh Python process, calls `serving_default` with seeds 0..B-1 and
prints the process's resident memory before the call and its peak during it, so the figures
show what `kpixel export --max-batch` bounds. Memory is sampled every 5 ms from /proc/self/statm
during the call (Linux), after a first call with one seed. The bytes per image are the slope
between the smallest and the largest batch: (share(max) - share(min)) / (max - min).
"""

import argparse
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fresh_models import PIXELCNN_PP_FILTERS_HELP, export_models  # noqa: E402

from keras_pixelcnn.export import export_savedmodel  # noqa: E402

_CHILD = """
import os, sys, threading, numpy as np, tensorflow as tf

def resident():  # the process's resident memory now, in bytes (Linux)
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

model = tf.saved_model.load(sys.argv[1])
batch = int(sys.argv[2])
seeds = tf.constant(np.arange(batch, dtype=np.int64))
model.signatures["serving_default"](seed=seeds[:1])  # first call: whatever is set up once
before, peak, done = resident(), [0], threading.Event()

def watch():
    while not done.is_set():
        peak[0] = max(peak[0], resident())
        done.wait(0.005)

watcher = threading.Thread(target=watch)
watcher.start()
images = model.signatures["serving_default"](seed=seeds)["images"]
done.set()
watcher.join()
assert images.shape[0] == batch
print(before, max(peak[0], resident()))
"""


def measure(path, batch):
    """`(before, peak)` resident bytes of a fresh process around one `serving_default` request of `batch` seeds."""
    result = subprocess.run([sys.executable, "-c", _CHILD, path, str(batch)], capture_output=True,
                            text=True, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    before, peak = (int(value) for value in result.stdout.split()[-2:])
    return before, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", default="fashion_mnist", help="a shipped model ('' for none)")
    parser.add_argument("--architectures", default="", help="comma-separated fresh architectures")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--pixelcnn-pp-filters", type=int, default=None, help=PIXELCNN_PP_FILTERS_HELP)
    args = parser.parse_args()
    batches = sorted(set(args.batches))
    architectures = [a for a in args.architectures.split(",") if a]
    models = export_models(architectures, args.pretrained, args.pixelcnn_pp_filters)
    names = ([f"{args.pretrained} (shipped)"] if args.pretrained else []) + architectures
    print("serving_default (no XLA): resident memory of a fresh process before one request and its peak during it")
    print("| model | parameters | batch | before the call (MiB) | peak (MiB) | the request's share (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    slopes = []
    with tempfile.TemporaryDirectory() as base:
        for index, (name, model) in enumerate(zip(names, models)):  # the shipped model is named pixelcnn_pp too
            path = export_savedmodel(model, base, f"model{index}", 1, max_batch=max(batches))
            shares = {}
            for batch in batches:
                before, peak = measure(path, batch)
                shares[batch] = peak - before
                print(f"| {name} | {model.count_params():,} | {batch} | {before / 2**20:.0f} | {peak / 2**20:.0f} "
                      f"| {shares[batch] / 2**20:.0f} |", flush=True)
            if len(batches) > 1:
                slope = (shares[batches[-1]] - shares[batches[0]]) / (batches[-1] - batches[0])
                slopes.append((name, slope, shares[batches[-1]] / batches[-1]))
    print(f"\n| model | MiB per image (slope, batch {batches[0]} to {batches[-1]}) "
          f"| MiB per image at batch {batches[-1]} (share / batch) |")
    print("|---|---:|---:|")
    for name, slope, mean in slopes:
        print(f"| {name} | {slope / 2**20:.2f} | {mean / 2**20:.2f} |")


if __name__ == "__main__":
    main()
