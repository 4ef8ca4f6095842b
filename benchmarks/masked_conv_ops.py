"""Three ways to compute a masked convolution, forward and backward, timed in one run.

    python benchmarks/masked_conv_ops.py [--batch-sizes 16 32 64] [--rounds 3] [--steps 10]

- full: the whole (kh, kw) kernel times the mask (what the reference and the old layer did);
- rows: only kernel rows 0 .. kh // 2, input padded above only (`MaskedConv2D` now);
- split: rows above the centre plus a 1 x (kw // 2 + 1) convolution of the current row, added
  (only the useful taps, two convolutions).
Shapes are those of the default PixelCNN (3x3 mask-B 32 -> 32, 7x7 mask-A stem 1 -> 64) on
28x28, in float32 and bfloat16; milliseconds per step from the fastest of `--rounds` rounds,
the methods taking turns.
"""

import argparse
import time

import numpy as np
import tensorflow as tf


def _conv(x, kernel, pads):
    return tf.nn.conv2d(tf.pad(x, [[0, 0], pads[0], pads[1], [0, 0]]), kernel, 1, "VALID")


def full(x, kernel, centre):
    kh, kw = kernel.shape[:2]
    return _conv(x, kernel, ((kh // 2, kh // 2), (kw // 2, kw // 2)))


def rows(x, kernel, centre):
    kh, kw = kernel.shape[:2]
    return _conv(x, kernel[: kh // 2 + 1], ((kh // 2, 0), (kw // 2, kw // 2)))


def split(x, kernel, centre):
    kh, kw = kernel.shape[:2]
    ch, cw = kh // 2, kw // 2
    above = _conv(x[:, :-1], kernel[:ch], ((ch, 0), (cw, cw)))
    width = cw + 1 if centre else cw
    row = _conv(x if centre else x[:, :, :-1], kernel[ch:ch + 1, :width], ((0, 0), (cw, 0)))
    return above + row


def _step(method, batch, cin, cout, size, mask_type, dtype):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, 28, 28, cin)), dtype)
    kernel = tf.Variable(rng.normal(size=(size, size, cin, cout)).astype(np.float32))
    mask = np.zeros((size, size, cin, cout), np.float32)
    mask[: size // 2] = 1
    mask[size // 2, : size // 2 + (mask_type == "B")] = 1
    mask = tf.constant(mask, dtype)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = method(x, tf.cast(kernel, dtype) * mask, mask_type == "B")
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
        return tape.gradient(loss, [x, kernel])
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    print("| batch | layer | dtype | full ms | rows ms | split ms | full / rows |")
    print("|---|---|---|---|---|---|---|")
    for batch in args.batch_sizes:
        for cin, cout, size, mask_type in [(32, 32, 3, "B"), (1, 64, 7, "A")]:
            for dtype in (tf.float32, tf.bfloat16):
                steps = {m.__name__: _step(m, batch, cin, cout, size, mask_type, dtype) for m in (full, rows, split)}
                best = dict.fromkeys(steps, np.inf)
                for step in steps.values():
                    step(), step()  # trace and warm up
                for _ in range(args.rounds):
                    for name, step in steps.items():
                        start = time.perf_counter()
                        for _ in range(args.steps):
                            step()
                        best[name] = min(best[name], (time.perf_counter() - start) / args.steps * 1e3)
                print(f"| {batch} | {size}x{size} {mask_type} {cin}->{cout} | {dtype.name} | {best['full']:.2f} | "
                      f"{best['rows']:.2f} | {best['split']:.2f} | {best['full'] / best['rows']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
