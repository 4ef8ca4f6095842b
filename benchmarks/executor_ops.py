"""Two ways to run each of three products of the exported sampler's loop in TensorFlow's executor, timed in one run.

    python benchmarks/executor_ops.py [--rounds 5] [--steps 784]

The SavedModel's sampler runs without XLA (TF Serving's default), where oneDNN's kernels
for some small products cost far more than their arithmetic. For each product this builds
a TF1 graph whose `tf.while_loop` runs it `--steps` times on one image (one request's pixel
steps), and prints microseconds per step, the fastest of `--rounds` rounds, the two ways
taking turns, and their ratio:

- a row of a masked convolution (`rules._Conv.row`, once per image row) at the shapes of the default
  models' row-phase convolutions (`ROWS`): `tf.nn.conv2d` on the row's slab (what XLA's loop keeps)
  against `rules._row_matmuls`, a matmul per kernel row;
- an up-sampling tap (`rules._UpSample.pixel`, PixelCNN++'s pixel steps): `tf.linalg.matvec` of
  the tap's `(F, in)` matrix (a BatchMatMul) against a MatMul of the transposed tap;
- one attention's products at a pixel (`attention_rule`, PixelSNAIL, 28x28: 784 positions above
  and 28 in the current row): `_BlockProducts`' BatchMatMuls against `_OneImageProducts`' MatMuls.

Both ways of each product give the same numbers (checked to 1e-5 relative).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_pixelcnn.sampling.attention_rule import _BlockProducts, _OneImageProducts  # noqa: E402
from keras_pixelcnn.sampling.rules import _row_matmuls  # noqa: E402


# (layer, kernel rows used, kw, inputs, outputs, stride) of the default models' row-phase convolutions
ROWS = (
    ("Gated PixelCNN's 5x5 vertical stack", 3, 5, 64, 128, 1),
    ("PixelCNN++'s gated resnet conv (concat-ELU: 64 inputs)", 2, 3, 64, 32, 1),
    ("PixelCNN++'s gated resnet gate conv", 2, 3, 64, 64, 1),
    ("PixelCNN++'s down-sampling conv (stride 2)", 2, 3, 32, 32, 2),
    ("a 32-input conv", 2, 3, 32, 32, 1),
)


def _row_conv_cases(rng):
    """(label, name_a, name_b, inputs, way_a, way_b) for one output row of each of `ROWS` (28 columns in)."""
    cases = []
    for label, rows, kw, depth, features, stride in ROWS:
        slab = tf.constant(rng.standard_normal((1, rows, 28 + kw - 1, depth)), tf.float32)
        kernel = tf.constant(rng.standard_normal((rows, kw, depth, features)) * 0.05, tf.float32)
        matrix = tf.reshape(kernel, (-1, features))
        cases.append((f"row: {label}, {rows}x{kw}, {depth} -> {features}", "`tf.nn.conv2d`", "`_row_matmuls`", slab,
                      lambda x, k=kernel, s=stride: tf.nn.conv2d(x, k, (1, 1, s, 1), "VALID"),
                      lambda x, m=matrix, kw=kw, s=stride: _row_matmuls(x, m, kw, s, -(-28 // s))))
    return cases


def _tap_case(rng, depth=32, features=32):
    x = tf.constant(rng.standard_normal((1, depth)), tf.float32)
    tap = tf.constant(rng.standard_normal((features, depth)) * 0.1, tf.float32)
    return (f"up-sampling tap, {depth} -> {features}", "`tf.linalg.matvec`", "`tf.matmul`", x,
            lambda v: tf.linalg.matvec(tap, v), lambda v: tf.matmul(v, tf.transpose(tap)))


def _attention_case(rng, heads=2, key_size=16, value_size=32, positions=784, width=28):
    """PixelSNAIL's defaults: 2 heads of 16 key and 32 value features."""
    q = tf.constant(rng.standard_normal((1, heads * key_size)), tf.float32)
    keys = [tf.constant(rng.standard_normal((1, n, heads * key_size)), tf.float32) for n in (positions, width)]
    vals = [tf.constant(rng.standard_normal((1, n, heads * value_size)), tf.float32) for n in (positions, width)]

    def products(kind):
        def run(query):
            logits = tf.concat([kind.logits(query, k, heads) for k in keys], axis=-1)
            weights = tf.nn.softmax(logits)
            return (kind.weighted(weights[..., :positions], vals[0], heads)
                    + kind.weighted(weights[..., positions:], vals[1], heads))
        return run

    return ("attention products, 2 heads, 812 positions", "`_BlockProducts`", "`_OneImageProducts`", q,
            products(_BlockProducts), products(_OneImageProducts))


def _loop(way, x, steps):
    """`way` run `steps` times in a while loop, each step reading the last one's output (so none is skipped)."""
    def body(i, x):
        return i + 1, x + 1e-30 * tf.reduce_sum(way(x))
    return tf.while_loop(lambda i, _: i < steps, body, [tf.constant(0), x])[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=784)
    args = parser.parse_args()
    print("| product | first way | us per step | second way | us per step | ratio |")
    print("|---|---|---:|---|---:|---:|")
    graph = tf.Graph()
    with graph.as_default():
        rng = np.random.default_rng(0)
        cases = _row_conv_cases(rng) + [_tap_case(rng), _attention_case(rng)]
        built = [(label, first, second, way_a(x), way_b(x), _loop(way_a, x, args.steps), _loop(way_b, x, args.steps))
                 for label, first, second, x, way_a, way_b in cases]
    with tf.compat.v1.Session(graph=graph) as session:
        for label, first, second, once_a, once_b, loop_a, loop_b in built:
            a, b = session.run([once_a, once_b])
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max(), err_msg=label)
            session.run([loop_a, loop_b])  # optimise and warm both graphs
            best = [float("inf")] * 2
            for _ in range(args.rounds):
                for k, loop in enumerate((loop_a, loop_b)):
                    start = time.perf_counter()
                    session.run(loop)
                    best[k] = min(best[k], time.perf_counter() - start)
            a_us, b_us = (t / args.steps * 1e6 for t in best)
            print(f"| {label} | {first} | {a_us:.1f} | {second} | {b_us:.1f} | {a_us / b_us:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
