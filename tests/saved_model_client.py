"""Call an exported SavedModel's signatures in a fresh process, as a server would: no keras_pixelcnn import.

Usage: python saved_model_client.py MODEL_DIR[:MODEL_DIR...] REQUESTS.npz RESULTS.npz {tf2|session}

REQUESTS.npz holds arrays named `REQUEST:SIGNATURE/INPUT` (or `REQUEST:SIGNATURE@N/INPUT` for the
N-th model directory, counted from 0; one process serves several models), one call per REQUEST;
RESULTS.npz gets `REQUEST/OUTPUT`, or `REQUEST/error` (the error's message) when the call fails.
"tf2" uses `tf.saved_model.load`; "session" the TF1 loader that TF Serving and
`saved_model_cli run` use.
"""

import os
import sys
from collections import defaultdict

import numpy as np
import tensorflow as tf


def _requests(path):
    """{model index: {(request, signature): {input: array}}}."""
    grouped = defaultdict(lambda: defaultdict(dict))
    with np.load(path) as data:
        for key in data.files:
            call, name = key.split("/")
            request, signature = call.split(":")
            signature, _, index = signature.partition("@")
            grouped[int(index or 0)][request, signature][name] = data[key]
    return grouped


def _message(error):
    return f"{type(error).__name__}: {error}"[:4000]


def call_tf2(model_dir, requests):
    loaded = tf.saved_model.load(model_dir)
    for (request, signature), feeds in requests.items():
        try:
            outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in feeds.items()})
            yield request, {k: v.numpy() for k, v in outputs.items()}
        except Exception as error:  # the message is the result
            yield request, {"error": np.array(_message(error))}


def call_session(model_dir, requests):
    tf.compat.v1.disable_eager_execution()
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], model_dir)
        for (request, signature), feeds in requests.items():
            definition = meta_graph.signature_def[signature]
            names = sorted(definition.outputs)
            try:
                values = session.run([definition.outputs[n].name for n in names],
                                     {definition.inputs[k].name: v for k, v in feeds.items()})
                yield request, dict(zip(names, values))
            except Exception as error:
                yield request, {"error": np.array(_message(error))}


def main(model_dir, requests_path, results_path, mode):
    call = {"tf2": call_tf2, "session": call_session}[mode]
    model_dirs = model_dir.split(os.pathsep)
    results = {}
    for index, requests in _requests(requests_path).items():
        for request, outputs in call(model_dirs[index], requests):
            results.update({f"{request}/{name}": value for name, value in outputs.items()})
    np.savez(results_path, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])
