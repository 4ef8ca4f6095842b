"""TF Serving SavedModels, written with `keras.export.ExportArchive`.

ExportArchive (not a hand-made `tf.Module`) because TF Serving loads a
SavedModel with the TF1 session loader, which cannot find the variables of a
hand-made module (keras-team/keras#20095, tensorflow/serving#2226).
"""

import os
import shutil
import tempfile

import keras

from keras_pixelcnn.export.signatures import DEFAULT_MAX_BATCH, ServingGraphs
from keras_pixelcnn.training.run_dir import RunLock

# The signatures a SavedModel holds; serving_default is `sample`.
SAVEDMODEL_SIGNATURES = ("serving_default", "sample", "sample_with_temperature", "log_prob", "complete")


def write_archive(path, graphs, names):
    """Write an ExportArchive of `graphs`' endpoints `names` to `path` (a new directory).

    The archive saves the variables its endpoints read (ExportArchive lists them), and the loaded
    object lists the model's weights as `variables`, `trainable_variables` and
    `non_trainable_variables`, as `ExportArchive.track(model)` would list them; the model itself
    is not tracked: that walked every layer's objects into the SavedModel (2-3 s of the shipped
    model's export) and added nothing a signature reads.
    """
    archive = keras.export.ExportArchive()
    for collection in ("variables", "trainable_variables", "non_trainable_variables"):
        archive.add_variable_collection(collection, list(getattr(graphs.model, collection)))
    endpoints = graphs.endpoints(tuple(n for n in dict.fromkeys(names) if n != "serving_default"))
    for name in names:
        fn, specs = endpoints["sample" if name == "serving_default" else name]
        archive.add_endpoint(name, fn, specs)
    archive.write_out(path, verbose=False)


def export_savedmodel(model, base, name, version=1, jit_compile=False, max_batch=DEFAULT_MAX_BATCH):
    """Export `model` for TF Serving as `base/name/version/`.

    The version directory is written under a temporary name beside it and
    renamed into place when complete, so TF Serving (which watches `base/name`)
    never loads half a model. An exclusive lock on `base/name` (`base/name/.lock`,
    `keras_pixelcnn.training.run_dir.RunLock`) is held meanwhile, so two exports into
    the same model never write the same version at once.

    Args:
        model: a keras_pixelcnn model.
        base: the model base path TF Serving is given.
        name: the model name (a directory under `base`).
        version: positive integer version.
        jit_compile: compile the sampling loop with XLA (TF Serving then needs
            `--xla_cpu_compilation_enabled` on CPU).
        max_batch: the most images a request may hold (refused in the graph beyond it).

    Returns:
        The path of the version directory.

    Raises:
        ValueError: for a bad name, version or max_batch, a version that already exists,
            or `base/name` in use by another export (`... is in use by process N`).
    """
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**63:
        raise ValueError(f"Expected a positive integer version below 2**63 (TF Serving reads int64 versions). "
                         f"Received: version={version!r}")
    if not isinstance(name, str) or not name or os.sep in name or name in (".", "..") or not name.isprintable():
        raise ValueError(f"Expected a model name without '{os.sep}' or control characters. Received: name={name!r}")
    if len(name.encode("utf-8", "surrogateescape")) > 200:  # a directory name, beside `.VERSION.tmp-...` ones
        raise ValueError(f"Expected a model name of at most 200 bytes. Received: name={name[:40]!r}... "
                         f"({len(name.encode('utf-8', 'surrogateescape'))} bytes)")
    parent = os.path.join(base, name)
    target = os.path.join(parent, str(version))
    check_new_version(target)
    graphs = ServingGraphs(model, checks=True, jit_compile=jit_compile, max_batch=max_batch)
    with RunLock(parent) as lock:
        lock.acquire()  # creates `parent`
        check_new_version(target)  # again: another export may have written it meanwhile
        # A dot-name: TF Serving only loads directories named by a number.
        temporary = tempfile.mkdtemp(dir=parent, prefix=f".{version}.tmp-")
        try:
            os.rmdir(temporary)  # ExportArchive creates it
            write_archive(temporary, graphs, SAVEDMODEL_SIGNATURES)
            os.rename(temporary, target)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    return target


def check_new_version(target):
    """Refuse (ValueError) a version directory that exists already."""
    if os.path.exists(target):
        raise ValueError(f"{target} already exists: choose another --version")
