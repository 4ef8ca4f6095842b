"""What one cache write costs in TFLite: DYNAMIC_UPDATE_SLICE against a scatter, by buffer size, in one run.

    python benchmarks/tflite_writes.py [--rows 2,16,128] [--features 64] [--steps 2000]

The exported TFLite sampler writes each new pixel into a band of its cache inside a
WHILE loop. This script converts, with builtin ops only, a loop that writes one pixel
`(1, 1, 1, K)` per step into a `(1, rows, 34, K)` float32 buffer, once with
`tf.tensor_scatter_nd_update` (the converter makes it a SCATTER_ND, a mask and a
blend over the whole buffer) and once with the XLA DynamicUpdateSlice op that
`keras_pixelcnn.sampling.values.update_slice` writes (the builtin DYNAMIC_UPDATE_SLICE),
and prints the microseconds per step of each (best of 5 calls) and their ratio.
"""

import argparse
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from keras_pixelcnn.sampling.values import update_slice

WIDTH = 34  # a 28-pixel row with 3 columns of padding on each side


def _loop(rows, features, steps, slice_write):
    """A TFLite interpreter of a loop writing one pixel a step into a `(1, rows, WIDTH, features)` buffer."""

    @tf.function(input_signature=[tf.TensorSpec((1, features), tf.float32)])
    def run(pixel):
        buffer = tf.zeros((1, rows, WIDTH, features)) + 0 * pixel[:, None, None, :]

        def body(step, buffer):
            col = step % WIDTH
            value = pixel + tf.cast(step, tf.float32)
            if slice_write:
                buffer = update_slice(buffer, value[:, None, None], [0, rows - 1, col, 0])
            else:
                buffer = tf.tensor_scatter_nd_update(buffer, tf.stack([0, rows - 1, col])[None], value)
            return step + 1, buffer

        return tf.while_loop(lambda step, _: step < steps, body, (0, buffer))[1][:, -1]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([run.get_concrete_function()], run)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    from ai_edge_litert.interpreter import Interpreter

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "loop.tflite")
        with open(path, "wb") as handle:
            handle.write(converter.convert())
        interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    return interpreter


def _microseconds_per_step(interpreter, features, steps):
    pixel = np.ones((1, features), np.float32)
    index = interpreter.get_input_details()[0]["index"]
    output = interpreter.get_output_details()[0]["index"]
    results, best = [], float("inf")
    for _ in range(6):  # the first call warms up
        interpreter.set_tensor(index, pixel)
        start = time.perf_counter()
        interpreter.invoke()
        best = min(best, time.perf_counter() - start) if results else best
        results.append(interpreter.get_tensor(output).copy())
    return best / steps * 1e6, results[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="2,16,128")
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    print("| buffer (float32) | kB | scatter µs/step | DYNAMIC_UPDATE_SLICE µs/step | ratio |")
    print("|---|---:|---:|---:|---:|")
    for rows in [int(r) for r in args.rows.split(",")]:
        scatter, scattered = _microseconds_per_step(_loop(rows, args.features, args.steps, False), args.features,
                                                    args.steps)
        sliced, written = _microseconds_per_step(_loop(rows, args.features, args.steps, True), args.features,
                                                 args.steps)
        np.testing.assert_array_equal(scattered, written)  # both loops leave the same last row
        kilobytes = rows * WIDTH * args.features * 4 / 1000
        print(f"| 1×{rows}×{WIDTH}×{args.features} | {kilobytes:.0f} | {scatter:.2f} | {sliced:.2f} | "
              f"{scatter / sliced:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
