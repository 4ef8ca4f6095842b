"""Peak memory of one request to an exported SavedModel's `serving_default`, by batch size, in one run.

    python benchmarks/export_memory.py [--pretrained fashion_mnist] [--batches 1 16 64]

Exports the model once (max batch: the largest batch asked for), then for each batch size loads
the SavedModel in a fresh Python process, calls `serving_default` with seeds 0..B-1 and prints
the process's resident memory before the call and its peak during it,
so the figures show what `kpixel export --max-batch` bounds. Memory is sampled every 5 ms
from /proc/self/statm during the call (Linux), after a first call with one seed.
"""

import argparse
import os
import subprocess
import sys
import tempfile

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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", default="fashion_mnist")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_pixelcnn.export import export_savedmodel
    from keras_pixelcnn.models.pretrained import load_pretrained

    with tempfile.TemporaryDirectory() as base:
        path = export_savedmodel(load_pretrained(args.pretrained), base, "model", 1, max_batch=max(args.batches))
        print(f"{args.pretrained}, serving_default (no XLA): peak resident memory of one request")
        print("batch | before the call (MiB) | peak (MiB) | the request's share (MiB)")
        for batch in args.batches:
            result = subprocess.run([sys.executable, "-c", _CHILD, path, str(batch)], capture_output=True,
                                    text=True, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            before, peak = (int(value) / 2**20 for value in result.stdout.split()[-2:])
            print(f"{batch} | {before:.0f} | {peak:.0f} | {peak - before:.0f}")


if __name__ == "__main__":
    main()
