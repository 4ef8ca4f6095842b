"""Ops a draw step of each exported sampler runs, by op type, through TF Serving's TF1 session loader.

    python benchmarks/export_ops.py [--architectures pixelcnn,gated_pixelcnn] [--top 8]

Without XLA the TF executor spends about the same time on every op, whatever its
arithmetic (a 1x1 matmul costs about a reshape), so an exported sampler's speed at
batch 1 is set by how many ops each pixel step runs. For every architecture
(fresh models of `fresh_models.py`), it exports the default SavedModel, runs one
`sample` request for one image with a full trace (`RunMetadata`) and prints the
executed ops per draw step (one pixel, or a wavefront's pixels: `sampling/wavefront.py`), the
pixels a step draws, the ops per pixel (over the pixels the trace covers, all 28 x 28 unless the
request runs more ops than a trace keeps), the loop plumbing among them
(Merge, Switch, NextIteration, Enter, Exit, Identity, LoopCond) and the most frequent types.
The timings in the trace are inflated by the tracing itself, so only counts are printed.
"""

import argparse
import collections
import os
import tempfile

import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fresh_models import PIXELCNN_PP_FILTERS_HELP, export_models, session_signature  # noqa: E402
from keras_pixelcnn.export import export_savedmodel  # noqa: E402
from keras_pixelcnn.models.registry import ARCHITECTURES  # noqa: E402

_PLUMBING = ("Merge", "Switch", "NextIteration", "Enter", "Exit", "Identity", "LoopCond")


# TensorFlow's step-stats collector keeps at most this many node records per run (kMaxCollectedNodes).
_TRACE_LIMIT = 1 << 20


def _executed_ops(path):
    """`(counts, draws)`: a Counter of the op types that one `sample` request for one image runs through
    the TF1 session loader, and its draws.

    A trace keeps at most `_TRACE_LIMIT` ops, so a long request (PixelCNN++'s) is counted
    over its first steps only. The draws are its TopKV2 ops (the Gumbel-max draw, one per channel
    and loop step, `distributions/base.py`; a wavefront's step draws all its lanes at once):
    counting the loops' LoopCond ops no longer works once a sampler unrolls its loops
    (PixelCNN++'s has a column loop for even rows, two pixels per step, and one for odd rows).
    """
    session, signature = session_signature(path, "sample")
    feed = {signature.inputs["seed"].name: np.zeros(1, np.int64)}
    if "label" in signature.inputs:
        feed[signature.inputs["label"].name] = np.zeros(1, np.int64)
    output = signature.outputs["images"].name
    session.run(output, feed)  # the first call optimizes the graph
    metadata = tf.compat.v1.RunMetadata()
    session.run(output, feed, options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
                run_metadata=metadata)
    session.close()
    counts = collections.Counter()
    for device in metadata.step_stats.dev_stats:
        for node in device.node_stats:
            # timeline_label: "name = OpType(inputs)"
            op = node.timeline_label.split(" = ")[-1].split("(")[0] if node.timeline_label else "?"
            counts[op] += 1
    return counts, counts["TopKV2"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    parser.add_argument("--pixelcnn-pp-filters", type=int, default=32, help=PIXELCNN_PP_FILTERS_HELP)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    print("| model | ops per draw step | pixels per step | ops per pixel | of which loop plumbing (per step) "
          "| most frequent (per step) |")
    print("|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as directory:
        for model in export_models(args.architectures.split(","), pixelcnn_pp_filters=args.pixelcnn_pp_filters):
            counts, draws = _executed_ops(export_savedmodel(model, directory, model.name, 1))
            height, width, channels = model.inputs[0].shape[1:]
            # a draw per channel and draw step: a step draws one pixel, or one per lane of a wavefront (its
            # lanes outside the image too); an unrolled loop runs several steps per iteration (PixelCNN++'s
            # two in even rows); a truncated trace is PixelCNN++'s, one pixel per step
            steps = draws // channels
            total = sum(counts.values())
            pixels = height * width if total < _TRACE_LIMIT else steps
            plumbing = sum(counts[op] for op in _PLUMBING)
            top = ", ".join(f"{op} {count / steps:.1f}" for op, count in counts.most_common(args.top))
            name = model.name
            if total >= _TRACE_LIMIT:
                name += f" (first {pixels} of {height * width} pixels: the trace keeps {total} ops)"
            print(f"| {name} | {total / steps:.0f} | {pixels / steps:.1f} | {total / pixels:.0f} | "
                  f"{plumbing / steps:.0f} | {top} |", flush=True)


if __name__ == "__main__":
    main()
