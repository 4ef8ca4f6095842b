"""Exported graphs equal the Keras model: SavedModel (TF2 and TF1 session loaders, saved_model_cli) and TFLite."""

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import peaked_model, tiny_model

import keras_pixelcnn as kp
from keras_pixelcnn.export import SAVEDMODEL_SIGNATURES, TFLITE_SIGNATURES, export_savedmodel, export_tflite
from keras_pixelcnn.export import signatures
from keras_pixelcnn.export import tflite as tflite_module
from keras_pixelcnn.export.savedmodel import write_archive
from keras_pixelcnn.export.tflite import TFLiteConversionError, convert_saved_model

CLIENT = os.path.join(os.path.dirname(__file__), "saved_model_client.py")
SAVED_MODEL_CLI = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable))
SIZE, CHANNELS, CLASSES = 6, 3, 3


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A colour class-conditional PixelCNN and its TF Serving export `base/tiny/1`."""
    model = tiny_model("pixelcnn", CHANNELS, num_classes=CLASSES, size=SIZE)
    base = tmp_path_factory.mktemp("serving")
    return model, export_savedmodel(model, str(base), "tiny", 1)


def _images(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, SIZE, SIZE, CHANNELS)).astype(np.int32)


def _top_half(count):
    mask = np.zeros((count, SIZE, SIZE, CHANNELS), bool)
    mask[:, :SIZE // 2] = True
    return mask


GOOD_REQUESTS = {
    "default:serving_default": {"seed": np.array([5, 2**32 - 1], np.int64), "label": np.array([0, 2], np.int64)},
    "sample:sample": {"seed": np.array([7], np.int64), "label": np.array([1], np.int64)},
    "cold:sample_with_temperature": {"seed": np.array([5, 9], np.int64), "label": np.array([0, 1], np.int64),
                                     "temperature": np.array([0.5, 2.0], np.float32)},
    "likelihood:log_prob": {"images": _images(3), "label": np.array([0, 1, 2], np.int64)},
    "fill:complete": {"images": _images(2, seed=1), "known_mask": _top_half(2), "seed": np.array([3, 4], np.int64),
                      "label": np.array([2, 0], np.int64)},
}

BAD_REQUESTS = {
    "label_range:sample": ({"seed": np.array([1], np.int64), "label": np.array([3], np.int64)},
                           "Expected label < 3"),
    "negative_seed:sample": ({"seed": np.array([-1], np.int64), "label": np.array([0], np.int64)},
                             "Expected seed >= 0"),
    "big_seed:sample": ({"seed": np.array([2**32], np.int64), "label": np.array([0], np.int64)},
                        "Expected seed < 2**32"),
    "label_count:sample": ({"seed": np.array([1, 2], np.int64), "label": np.array([0], np.int64)},
                           "Expected one label per image"),
    "hot_pixel:log_prob": ({"images": np.where(_images(1) > 128, 300, 0).astype(np.int32),
                            "label": np.array([0], np.int64)}, "Expected images in [0, 255]"),
    "zero_temperature:sample_with_temperature": (
        {"seed": np.array([1], np.int64), "label": np.array([0], np.int64),
         "temperature": np.array([0.0], np.float32)}, "Expected temperature to be a finite number >= 1e-30"),
    "seed_count:complete": ({"images": _images(2), "known_mask": _top_half(2), "seed": np.array([1], np.int64),
                             "label": np.array([0, 0], np.int64)}, "Expected one seed per image"),
    "wrong_shape:log_prob": ({"images": np.zeros((1, SIZE + 1, SIZE, CHANNELS), np.int32),
                              "label": np.array([0], np.int64)}, None),
}


def _call_fresh_process(model_dir, requests, mode, tmp_path):
    """Results of calling the signatures from a Python process that never imports keras_pixelcnn."""
    request_file, result_file = tmp_path / f"requests_{mode}.npz", tmp_path / f"results_{mode}.npz"
    np.savez(request_file, **{f"{name}/{key}": value for name, inputs in requests.items()
                              for key, value in inputs.items()})
    env = dict(os.environ, PYTHONSAFEPATH="1")
    result = subprocess.run([sys.executable, CLIENT, model_dir, str(request_file), str(result_file), mode],
                            capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(result_file) as data:
        return {key: data[key] for key in data.files}


def _expected(model):
    """What the Keras model gives for GOOD_REQUESTS: exported image for seed s is sample(seed=s)[0]."""
    def one_per_seed(request, **options):
        return np.concatenate([kp.sample(model, 1, seed=int(seed), labels=int(label), **options)
                               for seed, label in zip(request["seed"], request["label"])])

    cold = GOOD_REQUESTS["cold:sample_with_temperature"]
    fill = GOOD_REQUESTS["fill:complete"]
    likelihood = GOOD_REQUESTS["likelihood:log_prob"]
    return {
        "default/images": one_per_seed(GOOD_REQUESTS["default:serving_default"]),
        "sample/images": one_per_seed(GOOD_REQUESTS["sample:sample"]),
        "cold/images": np.concatenate([kp.sample(model, 1, seed=int(s), labels=int(l), temperature=float(t))
                                       for s, l, t in zip(cold["seed"], cold["label"], cold["temperature"])]),
        "fill/images": np.concatenate([kp.complete(model, fill["images"][i:i + 1], fill["known_mask"][i:i + 1],
                                                   seed=int(fill["seed"][i]), labels=int(fill["label"][i]))
                                       for i in range(2)]),
        "likelihood/log_prob": kp.log_prob(model, likelihood["images"], likelihood["label"]),
        "likelihood/bits_per_dim": kp.bits_per_dim(model, likelihood["images"], likelihood["label"]),
    }


@pytest.mark.parametrize("mode", ["tf2", "session"])
def test_savedmodel_signatures_equal_the_keras_model(exported, mode, tmp_path):
    model, model_dir = exported
    requests = dict(GOOD_REQUESTS, **{name: inputs for name, (inputs, _) in BAD_REQUESTS.items()})
    results = _call_fresh_process(model_dir, requests, mode, tmp_path)
    for key, expected in _expected(model).items():
        assert key in results, results.get(key.split("/")[0] + "/error")
        if key.endswith("images"):
            assert results[key].dtype == np.uint8
            np.testing.assert_array_equal(results[key], expected, err_msg=key)
        else:
            np.testing.assert_allclose(results[key], expected, rtol=0, atol=1e-4, err_msg=key)
    fill = GOOD_REQUESTS["fill:complete"]
    known = fill["known_mask"]
    np.testing.assert_array_equal(results["fill/images"][known], fill["images"][known])
    # Bad requests: an error, with our message where the graph checks the input.
    for name, (_, message) in BAD_REQUESTS.items():
        request = name.split(":")[0]
        assert f"{request}/error" in results, f"{name} was accepted"
        if message:
            assert message in str(results[f"{request}/error"]), results[f"{request}/error"]


def test_savedmodel_layout_and_refusals(exported, tmp_path):
    model, model_dir = exported
    base, name, version = model_dir.rsplit(os.sep, 2)
    assert (name, version) == ("tiny", "1")
    # No temporary directory left behind; .lock is the export lock's file (TF Serving loads numbers only).
    assert sorted(os.listdir(os.path.join(base, name))) == [".lock", "1"]
    assert os.path.exists(os.path.join(model_dir, "saved_model.pb"))
    # The loaded object lists the model's weights, as `ExportArchive.track(model)` listed them.
    loaded = tf.saved_model.load(model_dir)
    for collection in ("variables", "trainable_variables", "non_trainable_variables"):
        weights = getattr(model, collection)
        assert len(getattr(loaded, collection)) == len(weights), collection
        for saved, weight in zip(getattr(loaded, collection), weights):
            np.testing.assert_array_equal(saved.numpy(), keras.ops.convert_to_numpy(weight))
    assert len(loaded.variables) > 0
    with pytest.raises(ValueError, match="already exists"):
        export_savedmodel(model, base, name, 1)
    with pytest.raises(ValueError, match="positive integer version"):
        export_savedmodel(model, str(tmp_path), "tiny", 0)
    assert not os.path.exists(tmp_path / "tiny" / "0")


@pytest.mark.skipif(SAVED_MODEL_CLI is None, reason="saved_model_cli is not installed next to this Python")
def test_saved_model_cli_shows_every_signature_and_runs_one(exported, tmp_path):
    model, model_dir = exported
    shown = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", model_dir, "--all"], capture_output=True, text=True,
                           timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for signature in SAVEDMODEL_SIGNATURES:
        assert f"signature_def['{signature}']" in shown.stdout
    ran = subprocess.run([SAVED_MODEL_CLI, "run", "--dir", model_dir, "--tag_set", "serve", "--signature_def",
                          "serving_default", "--input_exprs",
                          "seed=[4];label=[1]",
                          "--outdir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "images.npy"), kp.sample(model, 1, seed=4, labels=1))


def _tflite_ops(path):
    """The builtin op names of every subgraph of a .tflite file, as TensorFlow's model analyzer lists them."""
    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):
        tf.lite.experimental.Analyzer.analyze(model_path=str(path))
    return set(re.findall(r"Op#\d+ (\w+)\(", listing.getvalue()))


def _tflite_runner(path, signature):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path)).get_signature_runner(signature)


@pytest.mark.parametrize("architecture, channels, num_classes, size", [
    ("pixelcnn", 3, 3, 6),
    ("gated_pixelcnn", 3, 3, 4),
    ("row_lstm", 3, None, 4),
    ("diagonal_bilstm", 1, None, 6),
    ("pixelcnn_pp", 1, 3, 8),
    ("pixelsnail", 3, 3, 4),
])
def test_tflite_graphs_equal_the_keras_model(architecture, channels, num_classes, size, tmp_path):
    model = tiny_model(architecture, channels, num_classes=num_classes, size=size)
    path = tmp_path / "model.tflite"
    export_tflite(model, str(path), batch_size=2)
    from ai_edge_litert.interpreter import Interpreter

    assert sorted(Interpreter(model_path=str(path)).get_signature_list()) == sorted(TFLITE_SIGNATURES)
    # cache writes are DYNAMIC_UPDATE_SLICEs (one copy of a band), not scatters (SCATTER_ND and a blend: three passes)
    ops = _tflite_ops(path)
    assert "DYNAMIC_UPDATE_SLICE" in ops and "SCATTER_ND" not in ops, sorted(ops)
    labels = {} if num_classes is None else {"label": np.array([1, 2], np.int64)}
    images = _tflite_runner(path, "sample")(seed=np.array([6, 11], np.int64), **labels)["images"]
    assert images.dtype == np.uint8 and images.shape == (2, size, size, channels)
    expected = np.concatenate([kp.sample(model, 1, seed=seed, labels=None if num_classes is None else label)
                               for seed, label in [(6, 1), (11, 2)]])
    np.testing.assert_array_equal(images, expected)  # same noise, same conditionals: same images
    scored = _tflite_runner(path, "log_prob")(images=images, **labels)
    keras_labels = None if num_classes is None else labels["label"]
    np.testing.assert_allclose(scored["log_prob"], kp.log_prob(model, images, keras_labels), rtol=0, atol=1e-3)
    np.testing.assert_allclose(scored["bits_per_dim"], kp.bits_per_dim(model, images, keras_labels),
                               rtol=0, atol=1e-3)


def test_tflite_refuses_a_graph_that_needs_select_tf_ops(tmp_path):
    """A model whose math needs a non-builtin op (a sign-bit test) fails loudly and writes nothing."""
    model = tiny_model("pixelcnn", 1, size=4)
    params = model.layers[-2].output
    signed = keras.layers.Activation(lambda x: x * keras.ops.cast(keras.ops.signbit(x), x.dtype),
                                     name="signbit")(params)
    output = kp.PixelDistribution("categorical", 1, name="distribution")(signed)
    needs_flex = keras.Model(model.inputs, output)
    path = tmp_path / "flex.tflite"
    with pytest.raises(TFLiteConversionError, match="tf.Bitwise"):
        export_tflite(needs_flex, str(path))
    assert os.listdir(tmp_path) == []
    # nor may a TFLite graph write with the SavedModel's strided updates (no TFLite builtin)
    with pytest.raises(ValueError, match="not 'strided'"):
        signatures.ServingGraphs(model, checks=False, batch_size=1, tflite=True, writes="strided")


def test_export_traces_the_loop_once_and_converts_directly(tmp_path, monkeypatch):
    """Export time: the sampling loop is traced once per export, not again in tf.saved_model.save's
    save context, and the TFLite converter built without from_saved_model's load, and without its
    own second load, writes the same bytes as the public one."""
    traces = []
    real_cached_loop = signatures.cached_loop

    def counting_cached_loop(*args, **kwargs):
        run = real_cached_loop(*args, **kwargs).python_function

        def traced(*tensors):
            traces.append(len(tensors))
            return run(*tensors)

        return types.SimpleNamespace(python_function=traced)

    monkeypatch.setattr(signatures, "cached_loop", counting_cached_loop)
    forwards = []  # traces of the log_prob forward pass
    real_distribution_of = signatures.distribution_of

    def counting_distribution_of(model):
        distribution = real_distribution_of(model)
        log_prob = distribution.portable_log_prob
        distribution.portable_log_prob = lambda *args: forwards.append(1) or log_prob(*args)
        return distribution

    monkeypatch.setattr(signatures, "distribution_of", counting_distribution_of)
    graphs = signatures.ServingGraphs(tiny_model("pixelcnn", 1, size=4), checks=False, batch_size=1, tflite=True)
    saved = str(tmp_path / "savedmodel")
    write_archive(saved, graphs, TFLITE_SIGNATURES)
    assert len(traces) == 1 and len(forwards) == 1
    assert hasattr(tflite_module._lite, "TFLiteSavedModelConverterV2")  # else both calls take the public path
    loads = []  # the converter's Python loads of the whole SavedModel (it reads only their debug info)
    real_load = tflite_module._lite._load

    def counting_load(*args, **kwargs):
        loads.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(tflite_module._lite, "_load", counting_load)
    public = convert_saved_model(saved, TFLITE_SIGNATURES, direct=False)
    assert len(loads) == 2  # from_saved_model's and the converter's own
    assert convert_saved_model(saved, TFLITE_SIGNATURES) == public
    assert len(loads) == 2 and tflite_module._lite._load is counting_load  # none, and the load put back

    def other_arguments(*args):
        raise TypeError("another TensorFlow's private converter")

    # a TensorFlow whose private converter takes other arguments: the public path, same bytes
    monkeypatch.setattr(tflite_module, "_lite", types.SimpleNamespace(TFLiteSavedModelConverterV2=other_arguments))
    assert convert_saved_model(saved, TFLITE_SIGNATURES) == public


def _one_per_seed(model, seeds, labels, **options):
    return np.concatenate([kp.sample(model, 1, seed=int(s), labels=int(l), **options) for s, l in zip(seeds, labels)])


@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_every_architecture_exports_the_keras_images_in_both_loaders(architecture, tmp_path):
    """Colour and grey (PixelCNN++, PixelSNAIL: colour), class-conditional, 4x4, peaked weights: the default and the --jit-compile export,
    each in the TF2 and the TF1-session loader, draw the Keras images (at T = 1 and 0.5; a request of one
    image too, which takes PixelSNAIL's one-image products in the graph's free batch) and score the
    Keras log-probabilities. The labels and the temperature are checked to move the Keras draws, so an
    export that dropped either would fail."""
    seeds, labels = np.array([9, 2], np.int64), np.array([2, 0], np.int64)
    half = np.array([0.5, 0.5], np.float32)
    requests, want, exports = {}, {}, []
    # PixelCNN++'s and PixelSNAIL's grey exports (a 4x4 model's export alone takes a minute here) are
    # left to the TFLite test above and to `test_loops_without_xla_draw_the_naive_images`.
    for channels in (3,) if architecture in ("pixelcnn_pp", "pixelsnail") else (3, 1):
        model = peaked_model(architecture, channels, label_scale=40)
        images = np.random.default_rng(5).integers(0, 256, (2, 4, 4, channels)).astype(np.int32)
        draws, cold = _one_per_seed(model, seeds, labels), _one_per_seed(model, seeds, labels, temperature=0.5)
        assert (draws != _one_per_seed(model, seeds, labels[::-1])).any() and (draws != cold).any()
        log_prob = kp.log_prob(model, images, labels)
        assert np.abs(log_prob - kp.log_prob(model, images, labels[::-1])).min() > 0.01  # 10x the tolerance
        for jit_compile in (False, True):
            n = len(exports)
            exports.append(export_savedmodel(model, str(tmp_path), f"c{channels}_jit{int(jit_compile)}", 1,
                                             jit_compile=jit_compile))
            requests.update({f"draw{n}:serving_default@{n}": {"seed": seeds, "label": labels},
                             f"one{n}:serving_default@{n}": {"seed": seeds[:1], "label": labels[:1]},
                             f"cold{n}:sample_with_temperature@{n}": {"seed": seeds, "label": labels,
                                                                        "temperature": half},
                             f"score{n}:log_prob@{n}": {"images": images, "label": labels}})
            want.update({f"draw{n}/images": draws, f"one{n}/images": draws[:1], f"cold{n}/images": cold,
                         f"score{n}/log_prob": log_prob})
    for mode in ("tf2", "session"):
        got = _call_fresh_process(os.pathsep.join(exports), requests, mode, tmp_path)
        for key, expected in want.items():
            assert key in got, (mode, key, got.get(key.split("/")[0] + "/error"))
            if key.endswith("images"):
                np.testing.assert_array_equal(got[key], expected, err_msg=f"{mode} {key}")
            else:
                np.testing.assert_allclose(got[key], expected, rtol=0, atol=1e-3, err_msg=f"{mode} {key}")
