"""Seconds to sample 28x28 images, cached against naive, for every architecture, in one run.

    python benchmarks/sampling.py [--architectures pixelcnn,gated_pixelcnn] [--batch-sizes 1,16]
                                  [--naive-rows N] [--channels 1]

Each architecture is built with its default hyperparameters (fresh weights:
the time does not depend on them). Both samplers are called once to compile
(trace, and XLA for "cached"), then timed on a second call with the same
seeds; the script checks that they drew the same images. With `--naive-rows N`
the naive sampler is timed over the first N rows only and its full time is
extrapolated (every naive step is one full forward pass of the same size, so
the cost per row is constant); the table says so.
"""

import argparse
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf

import keras_pixelcnn as kp
from keras_pixelcnn.sampling import cached_loop, image_seeds, naive_loop, sampling_noise


def _timed(run):
    run()  # trace and compile
    start = time.perf_counter()
    images = run()
    return time.perf_counter() - start, images.numpy()


def measure(model, batch, naive_rows=None):
    """`(cached_seconds, naive_seconds)` for `batch` images; naive extrapolated from `naive_rows` rows."""
    height, width, channels = model.inputs[0].shape[1:]
    known = tf.zeros((batch, height, width, channels), tf.int32)
    unknown = tf.zeros_like(known, tf.bool)
    noise = sampling_noise(image_seeds(0, 0, batch), (height, width, channels))
    temperature = tf.constant(1.0)
    cached_run = cached_loop(model)
    cached, cached_images = _timed(lambda: cached_run(noise, known, unknown, None, temperature))
    rows = naive_rows or height
    naive = naive_loop(model)
    seconds, naive_images = _timed(lambda: naive(noise, known, unknown, None, temperature, rows=rows))
    if not np.array_equal(naive_images[:, :rows], cached_images[:, :rows]):
        raise AssertionError("the cached and naive samplers drew different images")
    return cached, seconds * height / rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", default=",".join(kp.ARCHITECTURES))
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--naive-rows", type=int, default=None, help="Time naive on the first N rows only.")
    parser.add_argument("--channels", type=int, default=1)
    args = parser.parse_args()
    print(f"# {platform.machine()}, {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}, 28x28x{args.channels}, default hyperparameters")
    note = f" ({args.naive_rows} rows, extrapolated)" if args.naive_rows else ""
    print(f"| architecture | parameters | batch | naive s{note} | cached s | naive / cached |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.architectures.split(","):
        keras.utils.set_random_seed(0)
        model = kp.build_model(name, (28, 28, args.channels))
        for batch in map(int, args.batch_sizes.split(",")):
            cached, naive = measure(model, batch, args.naive_rows)
            print(f"| {name} | {model.count_params():,} | {batch} | {naive:.1f} | {cached:.3f} | "
                  f"{naive / cached:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
