"""What one cache write costs in TensorFlow's executor (no XLA): a scatter against a strided-slice update, in one run.

    python benchmarks/executor_writes.py [--rows 2,16,128] [--batches 1,16] [--features 64] [--steps 2000]

The exported SavedModel's sampler (TF Serving runs it without XLA) writes each new
pixel into its caches inside a `tf.while_loop` (into per-row bands, with an image row
written back into the whole cache, before the strided writes made whole caches cheaper). This script runs, in a `tf.function` without XLA, a loop that
writes one pixel `(B, K)` per step into a `(B, rows, 34, K)` float32 buffer, once
with `tf.tensor_scatter_nd_update` (its kernel copies the whole buffer at every
write) and once with `keras_pixelcnn.sampling.values.strided_update` (a
TensorStridedSliceUpdate, which the executor runs in place when nothing else holds
the buffer), and prints the microseconds per step of each (best of 5 calls, the
first call not timed) and their ratio. Both loops must leave the same buffer.
"""

import argparse
import time

import numpy as np
import tensorflow as tf

from keras_pixelcnn.sampling.values import strided_update

WIDTH = 34  # a 28-pixel row with 3 columns of padding on each side


def _loop(rows, features, steps, strided):
    """A function of `pixel (B, K)` that writes it (plus the step) at one pixel a step, `steps` times."""

    @tf.function(autograph=False, jit_compile=False)
    def run(pixel):
        buffer = tf.zeros((tf.shape(pixel)[0], rows, WIDTH, features))

        def body(step, buffer):
            col = step % WIDTH
            value = pixel + tf.cast(step, tf.float32)
            if strided:
                buffer = strided_update(buffer, value, [rows - 1, col])
            else:
                images = tf.range(tf.shape(pixel)[0])
                indices = tf.stack([images, tf.fill(tf.shape(images), rows - 1), tf.fill(tf.shape(images), col)], 1)
                buffer = tf.tensor_scatter_nd_update(buffer, indices, value)
            return step + 1, buffer

        return tf.while_loop(lambda step, _: step < steps, body, (0, buffer))[1]

    return run


def _microseconds_per_step(run, pixel, steps):
    result, best = run(pixel).numpy(), float("inf")  # the first call traces
    for _ in range(5):
        start = time.perf_counter()
        again = run(pixel).numpy()
        best = min(best, time.perf_counter() - start)
        np.testing.assert_array_equal(again, result)
    return best / steps * 1e6, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="2,16,128")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    print("| buffer (float32) | kB | scatter µs/step | strided update µs/step | ratio |")
    print("|---|---:|---:|---:|---:|")
    for batch in [int(b) for b in args.batches.split(",")]:
        pixel = tf.ones((batch, args.features))
        for rows in [int(r) for r in args.rows.split(",")]:
            scatter, scattered = _microseconds_per_step(_loop(rows, args.features, args.steps, False), pixel,
                                                        args.steps)
            strided, written = _microseconds_per_step(_loop(rows, args.features, args.steps, True), pixel,
                                                      args.steps)
            np.testing.assert_array_equal(scattered, written)
            kilobytes = batch * rows * WIDTH * args.features * 4 / 1000
            print(f"| {batch}×{rows}×{WIDTH}×{args.features} | {kilobytes:.0f} | {scatter:.2f} | {strided:.2f} | "
                  f"{scatter / strided:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
