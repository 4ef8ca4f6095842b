"""Training images/s of keras_pixelcnn against a plain-Keras PixelCNN of equal size, in one run.

    python benchmarks/train_throughput.py [--steps 16] [--batch-size 64] [--filters 64] [--num-layers 5]

Both models train on the same real Fashion-MNIST batches (random images if
the Debian package is absent) for the same number of steps after a warm-up
that compiles them; the ratio is ours / reference.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_pixelcnn as kp  # noqa: E402
from keras_pixelcnn.data import sources as data  # noqa: E402
from keras_pixelcnn.training import TrainConfig
from keras_pixelcnn.training.common import compiled_model  # noqa: E402
from reference_pixelcnn import build_reference  # noqa: E402


def _images(count):
    try:
        return data.load("fashion_mnist", "train").images[:count].astype(np.int32), "Fashion-MNIST"
    except data.DataError:
        return np.random.default_rng(0).integers(0, 256, (count, 28, 28, 1)).astype(np.int32), "random"


def _rate(model, dataset, steps, warmup):
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=5)
    args = parser.parse_args()

    images, origin = _images(args.batch_size * 8)
    batches = tf.data.Dataset.from_tensor_slices(images).batch(args.batch_size, drop_remainder=True)
    ours_data = batches.map(lambda x: (x, x)).repeat().prefetch(2)
    # The reference takes float images in [0, 1] and integer targets, as tutorials do.
    reference_data = batches.map(lambda x: (tf.cast(x, tf.float32) / 255.0, x)).repeat().prefetch(2)

    keras.utils.set_random_seed(0)
    config = TrainConfig(filters=args.filters, num_layers=args.num_layers, batch_size=args.batch_size)
    ours = compiled_model(config, (28, 28, 1), None, total_steps=1)  # constant rate: no schedule
    reference = build_reference((28, 28, 1), args.filters, args.num_layers)
    assert ours.count_params() == reference.count_params(), (ours.count_params(), reference.count_params())

    ours_time = _rate(ours, ours_data, args.steps, args.warmup)
    reference_time = _rate(reference, reference_data, args.steps, args.warmup)
    count = args.steps * args.batch_size
    print(f"device: {tf.config.list_logical_devices()[-1].device_type}, backend {keras.backend.backend()}, "
          f"data: {origin}, 28x28x1, batch {args.batch_size}, {args.num_layers} blocks x {args.filters} filters, "
          f"{ours.count_params():,} parameters each")
    print(f"keras_pixelcnn: {count / ours_time:8.1f} images/s  (fused NLL, bits/dim from the loss, v{kp.__version__})")
    print(f"reference:      {count / reference_time:8.1f} images/s  (kernel.assign masks, Keras defaults)")
    print(f"seconds for {args.steps} steps: ours {ours_time:.3f}, reference {reference_time:.3f}")
    print(f"ratio:          {reference_time / ours_time:8.2f}x")


if __name__ == "__main__":
    main()
