"""Training images/s of keras_pixelcnn against a plain-Keras PixelCNN of equal size, in one run.

    python benchmarks/train_throughput.py [--batch-sizes 16 32 64] [--steps 16] [--rounds 3]
                                          [--quality-steps 200] [--quality-orders 4] [--filters 64] [--num-layers 5]

Three models train on the same real Fashion-MNIST batches (random images if the
Debian package is absent): the tutorial-style reference (float32), keras_pixelcnn
in float32 and keras_pixelcnn under `mixed_bfloat16`. Per batch size, each is
compiled and warmed up, then timed for `--steps` steps, `--rounds` times with the
models taking turns, so a load from other processes on a shared CPU hits all of
them alike; images/s is from the fastest round. Ratios are to the reference.

Quality: at each batch size, for each of `--quality-orders` data orders (a
permutation of the train split, so `--quality-steps` batches of distinct images,
none repeated), the float32 and bfloat16 runs of keras_pixelcnn start from the
same weights, read the same batches for `--quality-steps` steps, and are scored
on 1,000 test images (exact bits/dim, float32 inference). One pair is not enough:
rounding makes the two runs' trajectories drift apart, and two data orders alone
moved float32's figure by 0.034 at batch 32. So the script prints each pair, the
mean of each precision and the mean paired difference (bfloat16 - float32) with
its standard error; the goal is a bfloat16 mean within 0.01 of float32's. The FLOP
accounting counts, per image, the multiply-adds of every convolution: "useful"
those with a non-zero mask tap, "paid" those each model computes.
"""

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_pixelcnn as kp  # noqa: E402
from keras_pixelcnn.data import sources as data  # noqa: E402
from keras_pixelcnn.training import TrainConfig  # noqa: E402
from keras_pixelcnn.training.common import compiled_model  # noqa: E402
from reference_pixelcnn import AssignMaskedConv, build_reference  # noqa: E402


def _images(split, count):
    try:
        return data.load("fashion_mnist", split).images[:count].astype(np.int32), "Fashion-MNIST"
    except data.DataError:
        rng = np.random.default_rng(0 if split == "train" else 1)  # test images other than the train ones
        return rng.integers(0, 256, (count, 28, 28, 1)).astype(np.int32), "random"


def _datasets(images, batch_size):
    batches = tf.data.Dataset.from_tensor_slices(images).batch(batch_size, drop_remainder=True)
    ours = batches.map(lambda x: (x, x)).repeat().prefetch(2)
    # The reference takes float images in [0, 1] and integer targets, as tutorials do.
    reference = batches.map(lambda x: (tf.cast(x, tf.float32) / 255.0, x)).repeat().prefetch(2)
    return ours, reference


def _ours(policy, config):
    keras.config.set_dtype_policy(policy)
    try:
        return compiled_model(config, (28, 28, 1), None, total_steps=1)  # constant rate: no schedule
    finally:
        keras.config.set_dtype_policy("float32")


def _macs(model):
    """Forward multiply-adds per image of every convolution: (useful, paid)."""
    useful = paid = 0
    pixels = 28 * 28  # every convolution of a PixelCNN keeps the image size
    for layer in model.layers:
        conv = layer.conv if isinstance(layer, AssignMaskedConv) else layer
        if not isinstance(conv, keras.layers.Conv2D):
            continue
        if isinstance(conv, kp.MaskedConv2D):
            mask = conv._mask
            paid_taps = conv.used_kernel().shape[0] * conv.kernel_size[1]
        else:  # the reference: a full kernel times a mask
            mask = layer.mask
            paid_taps = math.prod(conv.kernel_size)
        useful += pixels * int(np.count_nonzero(mask))
        paid += pixels * paid_taps * mask.shape[2] * mask.shape[3]
    return useful, paid


def _timed(models, datasets, steps, rounds):
    """Seconds of the fastest of `rounds` timed fits of `steps` steps, per model (models take turns)."""
    best = {name: math.inf for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(datasets[name], steps_per_epoch=steps, epochs=1, verbose=0)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _quality(config, start, train, test, steps, orders):
    """{policy: [bits/dim on `test` after `steps` steps from `start`, one per data order]}."""
    scores = {"float32": [], "mixed_bfloat16": []}
    for order in range(orders):
        # distinct images: `steps` batches of a permutation of the train split
        images = train[np.random.default_rng(order).permutation(len(train))[:steps * config.batch_size]]
        batches = tf.data.Dataset.from_tensor_slices(images).batch(config.batch_size, drop_remainder=True)
        for policy, values in scores.items():
            model = _ours(policy, config)
            model.set_weights(start)
            model.fit(batches.map(lambda x: (x, x)).prefetch(2), epochs=1, verbose=0)
            values.append(float(np.mean(kp.bits_per_dim(model, test))))
        print(f"  batch {config.batch_size}, data order {order}: float32 {scores['float32'][-1]:.4f}, "
              f"bfloat16 {scores['mixed_bfloat16'][-1]:.4f} bits/dim", flush=True)
    return scores


def _summary(scores):
    """`mean float32, mean bfloat16 (difference ± standard error)` over the data orders."""
    f32, bf16 = np.array(scores["float32"]), np.array(scores["mixed_bfloat16"])
    difference = bf16 - f32
    error = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else float("nan")
    return f"{f32.mean():.4f}, {bf16.mean():.4f} ({difference.mean():+.4f} ± {error:.4f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality-steps", type=int, default=200)
    parser.add_argument("--quality-orders", type=int, default=4, help="data orders (paired runs) per batch size")
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=5)
    args = parser.parse_args()
    if args.quality_steps and not (args.quality_orders >= 1 and args.quality_steps * max(args.batch_sizes) <= 60000):
        parser.error("--quality-orders must be >= 1 and --quality-steps x batch size at most the 60,000 train images")

    train, origin = _images("train", 60000)
    images = train[:max(args.batch_sizes) * 16]
    test, _ = _images("test", 1000)
    rows = []
    for batch_size in args.batch_sizes:
        ours_data, reference_data = _datasets(images, batch_size)
        keras.utils.set_random_seed(0)
        config = TrainConfig(filters=args.filters, num_layers=args.num_layers, batch_size=batch_size)
        models = {"reference": build_reference((28, 28, 1), args.filters, args.num_layers),
                  "float32": _ours("float32", config), "bfloat16": _ours("mixed_bfloat16", config)}
        models["bfloat16"].set_weights(models["float32"].get_weights())
        params = {model.count_params() for model in models.values()}
        assert len(params) == 1, params
        datasets = {"reference": reference_data, "float32": ours_data, "bfloat16": ours_data}
        for name, model in models.items():
            model.fit(datasets[name], steps_per_epoch=args.warmup, epochs=1, verbose=0)  # compile
        seconds = _timed(models, datasets, args.steps, args.rounds)
        rate = {name: args.steps * batch_size / value for name, value in seconds.items()}
        quality = (_quality(config, models["float32"].get_weights(), train, test, args.quality_steps,
                            args.quality_orders) if args.quality_steps else {})
        rows.append((batch_size, rate, quality))
        print(f"batch {batch_size}: " + ", ".join(f"{name} {value:.1f} images/s" for name, value in rate.items())
              + (f"; bits/dim float32, bfloat16: {_summary(quality)}" if quality else ""), flush=True)

    useful, paid = _macs(models["float32"])
    _, reference_paid = _macs(models["reference"])
    print(f"\ndevice: {tf.config.list_logical_devices()[-1].device_type}, backend {keras.backend.backend()}, "
          f"data: {origin}, 28x28x1, {args.num_layers} blocks x {args.filters} filters, {params.pop():,} parameters "
          f"each, v{kp.__version__}; fastest of {args.rounds} rounds of {args.steps} steps")
    print(f"forward multiply-adds per image: useful {useful / 1e6:.1f} M, paid by keras_pixelcnn {paid / 1e6:.1f} M, "
          f"by the reference {reference_paid / 1e6:.1f} M")
    print("| batch | reference (float32) | keras_pixelcnn float32 | keras_pixelcnn bfloat16 | bits/dim after "
          f"{args.quality_steps} steps, mean of {args.quality_orders} data orders: float32, bfloat16 "
          "(difference ± standard error) |")
    print("|---|---|---|---|---|")
    for batch_size, rate, quality in rows:
        ref = rate["reference"]
        bits = _summary(quality) if quality else "not measured"
        print(f"| {batch_size} | {ref:.1f} images/s | {rate['float32']:.1f} ({rate['float32'] / ref:.2f}×) | "
              f"{rate['bfloat16']:.1f} ({rate['bfloat16'] / ref:.2f}×) | {bits} |")


if __name__ == "__main__":
    main()
