"""How far TensorFlow's graph executor is from XLA at batch 1: the matmuls alone, against the whole in-process sampler.

    python benchmarks/executor_floor.py [--architectures pixelcnn,gated_pixelcnn] [--repeats 5]

An exact sampler must, for every new pixel, compute each full-resolution layer at
that pixel: at least one matmul per layer, one after another. For every
architecture (fresh models of `fresh_models.py`), this script takes the matrices
the cached sampler multiplies at a full-resolution pixel step (`Rule.prepare`'s
2-D weights of `Plan.pixel_steps`, the layers' real shapes), and builds a graph
that runs only these matmuls, in order, each reading the one before (cut or zero-padded
to its input width, one op standing in for the activation between layers), once per
pixel of one 28x28 grey image, inside a `tf.while_loop` over image rows with the
columns unrolled (so the loop itself costs next to nothing). No cache read or write,
no bias or sampling: close to a lower bound on what any exported sampler that
TensorFlow's executor runs (TF Serving without XLA) spends per image. It prints
that floor against the in-process sampler (`kp.sample`, cached, XLA), timed in
turns, best of `--repeats`, and the floor per pixel step and per matmul.
"""

import argparse
import os
import sys

import numpy as np
import tensorflow as tf

import keras_pixelcnn as kp
from keras_pixelcnn.models.registry import ARCHITECTURES
from keras_pixelcnn.sampling.incremental import Plan

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fresh_models import PIXELCNN_PP_FILTERS_HELP, best_in_turns, export_models  # noqa: E402


def step_matrices(model):
    """The 2-D weight matrices a full-resolution pixel step multiplies by, in the order of the steps."""
    matrices = []
    for step in Plan(model).pixel_steps:
        if step.output.factor != 1:  # down-sampled layers run at a quarter of the steps or fewer
            continue
        matrices.extend(np.asarray(w) for name, w in step.rule.prepare().items() if name != "bias" and w.ndim == 2)
    return matrices


def _floor_runner(matrices, height, width):
    """`run()`: one image's worth of the matmuls (a session of a graph, as TF Serving runs one)."""
    graph = tf.Graph()
    with graph.as_default():
        scale = tf.compat.v1.placeholder(tf.float32, ())  # fed, so that nothing folds into a constant

        def fit(x, size):
            """`x` `(1, n)` cut or zero-padded to `(1, size)`: one op, as the activation between two layers
            is (none when the widths agree)."""
            if x.shape[1] > size:
                return x[:, :size]
            return tf.pad(x, [[0, 0], [0, size - x.shape[1]]]) if x.shape[1] < size else x

        def row_body(row, previous):
            weights = [tf.constant(w) for w in matrices]
            for _ in range(width):
                for w in weights:
                    previous = tf.matmul(fit(previous, w.shape[0]), w)
            return row + 1, fit(previous, matrices[0].shape[0])

        start = tf.ones((1, matrices[0].shape[0])) * scale
        output = tf.while_loop(lambda row, _: row < height, row_body, (tf.constant(0), start))[1]
    session = tf.compat.v1.Session(graph=graph)
    return lambda: session.run(output, {scale: 1.0})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    parser.add_argument("--pixelcnn-pp-filters", type=int, default=32, help=PIXELCNN_PP_FILTERS_HELP)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"# {os.cpu_count()} cores, TensorFlow {tf.__version__}; one 28x28 image")
    print("| model | matmuls per pixel step | in-process `kp.sample` s | matmuls alone s | ratio | µs per step | "
          "µs per matmul |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for model in export_models(args.architectures.split(","), pixelcnn_pp_filters=args.pixelcnn_pp_filters):
        height, width = model.inputs[0].shape[1:3]  # grey images: one sub-pixel per pixel
        matrices = step_matrices(model)
        timed = best_in_turns({"keras": lambda model=model: kp.sample(model, 1, seed=0),
                               "floor": _floor_runner(matrices, height, width)}, args.repeats)
        best = {name: seconds for name, (seconds, _) in timed.items()}
        steps = height * width
        print(f"| {model.name} | {len(matrices)} | {best['keras']:.4f} | {best['floor']:.4f} | "
              f"{best['floor'] / best['keras']:.2f}× | {best['floor'] / steps * 1e6:.1f} | "
              f"{best['floor'] / steps / max(len(matrices), 1) * 1e6:.2f} |", flush=True)


if __name__ == "__main__":
    main()
