"""Seconds to sample and complete 28x28 images through each exported graph, against the in-process sampler, in one run.

    python benchmarks/export_sampling.py [--architectures pixelcnn,row_lstm] [--batch-sizes 1,16]
        [--tflite-batch-sizes 1] [--pretrained fashion_mnist] [--pixelcnn-pp-filters 32] [--tflite-scatter]
        [--savedmodel-scatter]

For every architecture (fresh weights, default hyperparameters, or a shipped
model) it exports the default SavedModel (no XLA, as TF Serving runs it) and
a TFLite file, then times, at each batch size, the in-process `kp.sample` /
`kp.complete` (cached, XLA) and the exported `sample` / `complete` signatures
through `tf.saved_model.load` and through the TF1 session loader (TF Serving's),
and the TFLite `sample` signature (ai-edge-litert). Each sampler is called
once to load and compile, then timed as the best of `--repeats` calls, taken in
turns with the other samplers of its signature and batch size (so that a change in
the machine's speed during the run moves them alike). With `--tflite-scatter`, a
second TFLite file whose sampler writes its caches with scatters (as before
DYNAMIC_UPDATE_SLICE) is timed beside the exported one; with `--savedmodel-scatter`,
a SavedModel whose sampler writes with scatters (`tensor_scatter_nd_update`, which
copies the band or cache it writes into, as before TensorStridedSliceUpdate writes)
beside the default one, through the TF1 session loader. Every graph must draw
the Keras images (image b from seed pair (b, 0), as `kp.sample(model, 1, seed=b)`;
`complete` keeps the top half of test-like images and fills the bottom), or the
script stops.
"""

import argparse
import os
import platform
import sys
import tempfile

import numpy as np
import tensorflow as tf

import keras_pixelcnn as kp
from keras_pixelcnn.export import TFLITE_SIGNATURES, export_savedmodel, export_tflite
from keras_pixelcnn.export.savedmodel import SAVEDMODEL_SIGNATURES, write_archive
from keras_pixelcnn.export.signatures import ServingGraphs
from keras_pixelcnn.export.tflite import convert_saved_model
from keras_pixelcnn.models.registry import ARCHITECTURES

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fresh_models import PIXELCNN_PP_FILTERS_HELP, best_in_turns, export_models, session_signature  # noqa: E402


def _scatter_tflite(model, path, batch):
    """A .tflite file like `export_tflite`'s but whose sampler writes its caches with scatters."""
    graphs = ServingGraphs(model, checks=False, batch_size=batch, writes="scatter")  # tensor_scatter_nd_update
    saved = path + ".savedmodel"
    write_archive(saved, graphs, TFLITE_SIGNATURES)
    with open(path, "wb") as handle:
        handle.write(convert_saved_model(saved, TFLITE_SIGNATURES))


def _scatter_savedmodel(model, path):
    """A SavedModel like `export_savedmodel`'s but whose sampler writes its caches with scatters."""
    write_archive(path, ServingGraphs(model, checks=True, writes="scatter"), SAVEDMODEL_SIGNATURES)
    return path


def _session_runner(path, name):
    """`run(**inputs) -> images` through the TF1 session loader, as TF Serving loads a SavedModel."""
    session, signature = session_signature(path, name)
    output = signature.outputs["images"].name

    def run(**inputs):
        feed = {signature.inputs[key].name: value for key, value in inputs.items()}
        return session.run(output, feed)

    return run


def _requests(shape, batch):
    """Seeds, images whose top half is known, and that mask, for `batch` images."""
    seeds = np.arange(batch, dtype=np.int64)
    images = np.random.default_rng(0).integers(0, 256, (batch,) + shape).astype(np.int32)
    mask = np.zeros(images.shape, bool)
    mask[:, : shape[0] // 2] = True
    return seeds, images, mask


def _benchmark(model, batches, tflite_batches, repeats, directory, tflite_scatter=False, savedmodel_scatter=False):
    """Rows `(signature, batch, sampler, seconds, seconds / in-process)` for one model."""
    shape = tuple(model.inputs[0].shape[1:])
    path = export_savedmodel(model, directory, model.name, 1)
    scatter_path = _scatter_savedmodel(model, os.path.join(directory, model.name + "_scatter")) if savedmodel_scatter \
        else None
    loaded = tf.saved_model.load(path)
    rows = []
    for batch in batches:
        seeds, images, mask = _requests(shape, batch)
        want = {
            "sample": np.concatenate([kp.sample(model, 1, seed=int(s)) for s in seeds]),
            "complete": np.concatenate([kp.complete(model, images[b:b + 1], mask[b:b + 1], seed=int(s))
                                        for b, s in enumerate(seeds)]),
        }
        inputs = {"sample": {"seed": seeds}, "complete": {"images": images, "known_mask": mask, "seed": seeds}}
        in_process = {
            "sample": lambda: kp.sample(model, batch, seed=0),
            "complete": lambda: kp.complete(model, images, mask, seed=0),
        }
        for name in ("sample", "complete"):
            keras_label = "in-process `kp.%s` (cached, XLA)" % name
            function = loaded.signatures[name]
            session = _session_runner(path, name)
            samplers = {
                keras_label: in_process[name],
                "SavedModel, `tf.saved_model.load`": lambda: function(
                    **{k: tf.constant(v) for k, v in inputs[name].items()})["images"].numpy(),
                "SavedModel, TF1 session loader": lambda: session(**inputs[name]),
            }
            if scatter_path:
                scattered = _session_runner(scatter_path, name)
                samplers["SavedModel, scatter writes, TF1 session loader"] = lambda: scattered(**inputs[name])
            if name == "sample" and batch in tflite_batches:
                from ai_edge_litert.interpreter import Interpreter

                tflite_path = os.path.join(directory, f"{model.name}_{batch}.tflite")
                export_tflite(model, tflite_path, batch_size=batch)
                runner = Interpreter(model_path=tflite_path).get_signature_runner("sample")
                samplers["TFLite (ai-edge-litert)"] = lambda runner=runner: runner(seed=seeds)["images"]
                if tflite_scatter:
                    _scatter_tflite(model, tflite_path + ".scatter", batch)
                    scatter = Interpreter(model_path=tflite_path + ".scatter").get_signature_runner("sample")
                    samplers["TFLite, scatter writes"] = lambda scatter=scatter: scatter(seed=seeds)["images"]
            timed = best_in_turns(samplers, repeats)
            keras_seconds = timed[keras_label][0]
            for label, (seconds, got) in timed.items():
                if label != keras_label:
                    np.testing.assert_array_equal(got, want[name],
                                                  err_msg=f"{model.name} {name} {label} batch {batch}")
                rows.append((name, batch, label, seconds, seconds / keras_seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    parser.add_argument("--pretrained", default=None, help="a shipped model instead of fresh architectures")
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--tflite-batch-sizes", default="1")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pixelcnn-pp-filters", type=int, default=None, help=PIXELCNN_PP_FILTERS_HELP)
    parser.add_argument("--tflite-scatter", action="store_true",
                        help="also time a TFLite sampler that writes with scatters (before DYNAMIC_UPDATE_SLICE)")
    parser.add_argument("--savedmodel-scatter", action="store_true",
                        help="also time a SavedModel whose sampler writes with scatters (before strided writes)")
    args = parser.parse_args()
    batches = [int(b) for b in args.batch_sizes.split(",")]
    tflite_batches = [int(b) for b in args.tflite_batch_sizes.split(",") if b]
    print(f"# {platform.machine()} {os.cpu_count()} cores, TensorFlow {tf.__version__}; "
          "every exported graph drew the in-process images")
    print("| model | signature | batch | sampler | seconds | vs in-process |")
    print("|---|---|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as directory:
        if args.pretrained:
            models = export_models([], args.pretrained)
        else:
            models = export_models(args.architectures.split(","), pixelcnn_pp_filters=args.pixelcnn_pp_filters)
        for model in models:
            for name, batch, label, seconds, ratio in _benchmark(model, batches, tflite_batches, args.repeats,
                                                                 directory, args.tflite_scatter,
                                                                 args.savedmodel_scatter):
                print(f"| {model.name} | `{name}` | {batch} | {label} | {seconds:.3f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
