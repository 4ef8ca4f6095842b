"""TFLite files with a sampling and a likelihood signature, in builtin ops only.

Select TF ops cannot run in the Python interpreters of TF 2.21 and
ai-edge-litert (google-ai-edge/LiteRT#6458), so conversion allows builtins
only and fails, naming the ops, when a graph needs anything else.
"""

import contextlib
import os
import shutil
import tempfile
import threading
import types

import tensorflow as tf
from tensorflow.core.framework import graph_debug_info_pb2 as _graph_debug_info_pb2

from keras_pixelcnn.export.savedmodel import write_archive
from keras_pixelcnn.export.signatures import MAX_IMAGES_PER_REQUEST, ServingGraphs
from keras_pixelcnn.data.images import atomic_path

try:  # TFLiteSavedModelConverterV2, a private module (see convert_saved_model)
    from tensorflow.lite.python import lite as _lite
except ImportError:
    _lite = None

TFLITE_SIGNATURES = ("sample", "log_prob")
_LOAD_PATCH = threading.Lock()


class TFLiteConversionError(ValueError):
    """A graph needs ops that are not TFLite builtins (or failed to convert)."""


def _first_op_errors(message, limit=3):
    """The lines of a converter error that name an unsupported op."""
    lines = [line.strip() for line in str(message).splitlines() if "op is neither a custom op nor a flex op" in line]
    names = sorted({line.split("'")[1] for line in lines if line.count("'") >= 2})
    return ", ".join(names[:limit]) or str(message).strip().splitlines()[-1][:300]


def export_tflite(model, path, batch_size=1):
    """Write `model`'s `sample` and `log_prob` graphs as one `.tflite` file.

    The batch size is fixed (TFLite needs static element shapes for the
    recurrent layers' loops); `sample` takes `seed` int64 `(batch_size,)`
    (and `label` for a conditional model) and returns `images` uint8;
    `log_prob` takes `images` uint8 and returns `log_prob` and `bits_per_dim`.
    Inputs are not validated in the graph (TFLite has no assertion op).

    Args:
        model: a keras_pixelcnn model.
        path: the `.tflite` file to write (atomically).
        batch_size: images per call.

    Returns:
        The size of the file in bytes.

    Raises:
        TFLiteConversionError: when a graph needs ops that are not TFLite builtins.
        ValueError: for a batch size outside [1, 65536] (the graph's memory grows with it).
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= MAX_IMAGES_PER_REQUEST:
        raise ValueError(f"Expected a positive integer batch_size, at most {MAX_IMAGES_PER_REQUEST}. "
                         f"Received: batch_size={batch_size!r}")
    graphs = ServingGraphs(model, checks=False, batch_size=batch_size, tflite=True)
    staging = tempfile.mkdtemp(prefix="kpixel-tflite-")
    try:
        saved = os.path.join(staging, "savedmodel")
        write_archive(saved, graphs, TFLITE_SIGNATURES)
        try:
            flatbuffer = convert_saved_model(saved, TFLITE_SIGNATURES)
        except Exception as error:  # the converter raises ConverterError with MLIR diagnostics
            raise TFLiteConversionError(
                f"Cannot convert {model.name!r} to TFLite builtin ops: {_first_op_errors(error)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(flatbuffer)
    return len(flatbuffer)


def convert_saved_model(saved, signature_keys, direct=True):
    """The TFLite flatbuffer (builtin ops only) of the SavedModel `saved`'s `signature_keys`.

    `tf.lite.TFLiteConverter.from_saved_model` loads the whole SavedModel in Python only to
    check the signature keys, then returns a `TFLiteSavedModelConverterV2`, which reads the
    directory itself; with `direct`, that converter is built at once (the load took ~10% of
    an export; `tests/test_export.py` checks that both give the same bytes), and its own
    second load is skipped (`_no_debug_info_load`). Conversion
    metadata (TF version, options) is left out: the converter adds it in a pure-Python unpack
    and repack of the whole flatbuffer, another ~10%.
    """
    converter = None
    converter_class = getattr(_lite, "TFLiteSavedModelConverterV2", None) if direct else None
    if converter_class is not None:
        try:
            converter = converter_class(saved, {tf.saved_model.SERVING}, list(signature_keys))
        except TypeError:  # a private class: another TensorFlow may take other arguments (public path below)
            pass
    built_directly = converter is not None
    if converter is None:
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(signature_keys))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.exclude_conversion_metadata = True
    with _no_debug_info_load(saved, skip=built_directly):
        return converter.convert()


@contextlib.contextmanager
def _no_debug_info_load(saved, skip):
    """While converting, the private converter's `tf.saved_model.load` of `saved` returns its debug info only.

    `TFLiteSavedModelConverterV2.convert` loads the whole SavedModel in Python (every function
    rebuilt: ~20% of a TFLite export of the shipped model) and reads nothing of it but
    `graph_debug_info`, the stack traces it gives MLIR for its error messages. A SavedModel
    written without them (`write_archive` does not save them) loads an empty `GraphDebugInfo`,
    which is what this gives; with a debug-info file (or a TensorFlow without that private
    load), the converter loads as it would. The patch is a module attribute of TensorFlow's, so
    conversions that skip the load run one at a time (`_LOAD_PATCH`), and another thread's
    converter may meet the stub meanwhile: export from one thread.
    """
    debug_file = os.path.join(saved, tf.saved_model.DEBUG_DIRECTORY, tf.saved_model.DEBUG_INFO_FILENAME_PB)
    if not skip or getattr(_lite, "_load", None) is None or tf.io.gfile.exists(debug_file):
        yield
        return
    with _LOAD_PATCH:  # a module attribute: one conversion patches it at a time
        load = _lite._load
        _lite._load = lambda *args, **kwargs: types.SimpleNamespace(
            graph_debug_info=_graph_debug_info_pb2.GraphDebugInfo())
        try:
            yield
        finally:
            _lite._load = load
