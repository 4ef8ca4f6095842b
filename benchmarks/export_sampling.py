"""Seconds to sample 28x28 images through each exported graph, against the Keras cached sampler, in one run.

    python benchmarks/export_sampling.py [--architecture pixelcnn] [--batch-size 16] [--pretrained fashion_mnist]

Exports one model (fresh weights with default hyperparameters, or a shipped
model) as a SavedModel without and with XLA, and as TFLite with the same fixed
batch size; calls each once to load and compile, then times a second call
with the same seeds, and checks that every graph drew the Keras sampler's
images (image b from seed pair (b, 0), as `kp.sample(model, 1, seed=b)`).
"""

import argparse
import os
import platform
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

import keras_pixelcnn as kp
from keras_pixelcnn.export import export_savedmodel, export_tflite
from keras_pixelcnn.models.pretrained import load_pretrained


def _timed(run):
    first = run()  # load, trace, compile
    start = time.perf_counter()
    second = run()
    seconds = time.perf_counter() - start
    np.testing.assert_array_equal(first, second)
    return seconds, second


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="pixelcnn")
    parser.add_argument("--pretrained", default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    if args.pretrained:
        model = load_pretrained(args.pretrained)
    else:
        keras.utils.set_random_seed(0)
        model = kp.build_model(args.architecture, (28, 28, 1))
    seeds = np.arange(args.batch_size, dtype=np.int64)
    # An exported graph draws image b with seed pair (seeds[b], 0): one Keras call per seed.
    expected = np.concatenate([kp.sample(model, 1, seed=int(seed)) for seed in seeds])
    keras_seconds, _ = _timed(lambda: kp.sample(model, args.batch_size, seed=0))
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for jit in (False, True):
            path = export_savedmodel(model, directory, "model", 1 + jit, jit_compile=jit)
            serve = tf.saved_model.load(path).signatures["serving_default"]
            seconds, images = _timed(lambda: serve(seed=tf.constant(seeds))["images"].numpy())
            np.testing.assert_array_equal(images, expected)
            rows.append((f"SavedModel serving_default{' (XLA)' if jit else ''}", seconds))
        from ai_edge_litert.interpreter import Interpreter

        tflite_path = os.path.join(directory, "model.tflite")
        export_tflite(model, tflite_path, batch_size=args.batch_size)
        runner = Interpreter(model_path=tflite_path).get_signature_runner("sample")
        seconds, images = _timed(lambda: runner(seed=seeds)["images"])
        np.testing.assert_array_equal(images, expected)
        rows.append(("TFLite sample (ai-edge-litert)", seconds))
    print(f"# {model.name}, {model.count_params():,} parameters, batch {args.batch_size}, 28x28x1; "
          f"{platform.machine()} {os.cpu_count()} cores, TensorFlow {tf.__version__}; all drew the same images")
    print("| sampler | seconds | vs Keras cached |")
    print("|---|---:|---:|")
    print(f"| Keras `kp.sample` (cached, XLA) | {keras_seconds:.3f} | 1.00x |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {seconds / keras_seconds:.2f}x |")


if __name__ == "__main__":
    main()
