"""Models trained under any dtype policy work in every command that loads a model.

The policy (docs and README "Mixed precision"): inference computes in float32
whatever the training policy (`keras_pixelcnn.models.inference`), so a mixed-
precision model's probabilities and images equal those of a float32 model with
the same weights, built independently here. Also: a run trained with the GPU
defaults (mirrored over two logical CPUs, float16, XLA) and a run written by the
JAX backend go through every command; non-finite weights are refused.
"""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_model

import keras_pixelcnn as kp
from keras_pixelcnn.data import sources as data
from keras_pixelcnn.models.inference import check_finite, computes_in_half_precision, inference_model
from keras_pixelcnn.training import load_run

HERE = os.path.dirname(os.path.abspath(__file__))
HAVE_FASHION = os.path.exists(os.path.join(data.FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))
CLASSES = 3


def _built_under(policy, architecture, channels=3, seed=0):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return tiny_model(architecture, channels, num_classes=CLASSES, seed=seed)
    finally:
        keras.config.set_dtype_policy(previous)


def _float32_twin(model, architecture, channels=3):
    """A float32 model with `model`'s weights, built from scratch (independent of `inference_model`)."""
    twin = _built_under("float32", architecture, channels)
    twin.set_weights([np.asarray(w) for w in model.get_weights()])
    return twin


@pytest.fixture(scope="module", params=[(a, p) for a in kp.ARCHITECTURES for p in ("mixed_float16", "mixed_bfloat16")],
                ids=lambda case: "-".join(case))
def pair(request):
    architecture, policy = request.param
    model = _built_under(policy, architecture)
    # Weights off their initial values, so the distributions are far from uniform.
    rng = np.random.default_rng(1)
    model.set_weights([w + rng.normal(0, 0.2, w.shape).astype(w.dtype) if w.dtype.kind == "f" else w
                       for w in model.get_weights()])
    return architecture, model, _float32_twin(model, architecture)


def test_the_models_really_compute_in_half_precision(pair):
    _, model, twin = pair
    assert computes_in_half_precision(model) and not computes_in_half_precision(twin)
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3))
    half = keras.ops.convert_to_numpy(model([images, np.array([0, 1])], training=False))
    full = keras.ops.convert_to_numpy(twin([images, np.array([0, 1])], training=False))
    assert 0 < np.abs(half - full).max()  # else the float32 comparisons below prove nothing


def test_likelihood_and_scores_equal_the_float32_model(pair):
    _, model, twin = pair
    images = np.random.default_rng(2).integers(0, 256, (3, 4, 4, 3))
    labels = np.array([0, 1, 2])
    np.testing.assert_array_equal(kp.log_prob(model, images, labels), kp.log_prob(twin, images, labels))
    np.testing.assert_array_equal(kp.score(model, images)["bits_per_dim"], kp.score(twin, images)["bits_per_dim"])


def test_samplers_draw_the_float32_models_images(pair):
    architecture, model, twin = pair
    labels = np.array([0, 2, 1])
    known = np.random.default_rng(3).integers(0, 256, (3, 4, 4, 3))
    mask = np.zeros(known.shape, bool)
    mask[:, :2] = True
    want = kp.sample(twin, 3, seed=4, labels=labels)
    want_completed = kp.complete(twin, known, mask, seed=7, labels=labels)
    # The naive sampler for one policy (its float32 graph is the same for both).
    methods = ("cached", "naive") if model.layers[-1].dtype_policy.name == "mixed_float16" else ("cached",)
    for method in methods:
        np.testing.assert_array_equal(kp.sample(model, 3, seed=4, labels=labels, method=method), want)
        np.testing.assert_array_equal(kp.complete(model, known, mask, seed=7, labels=labels, method=method),
                                      want_completed)


def test_the_float32_copy_follows_the_models_weights():
    model = _built_under("mixed_float16", "pixelcnn")
    first = inference_model(model)
    model.set_weights([w * 1.5 for w in model.get_weights()])
    assert inference_model(model) is first  # made once, so the sampler is traced once
    for got, want in zip(first.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_non_finite_weights_are_refused(tmp_path):
    model = tiny_model("pixelcnn", 1)
    check_finite(model, "fresh.keras")
    weights = model.get_weights()
    weights[0][(0,) * weights[0].ndim] = np.nan
    model.set_weights(weights)
    with pytest.raises(ValueError, match=r"^bad.keras holds non-finite weights \(NaN or inf in 1 weight"):
        check_finite(model, "bad.keras")


# --- Whole runs through the command line ---------------------------------------------------------

needs_data = pytest.mark.skipif(not HAVE_FASHION, reason="apt-get install -y dataset-fashion-mnist")


def _client(work, architecture, *flags, backend=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, os.path.join(HERE, "gpu_defaults_client.py"), str(work), architecture,
                             *flags], capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _check_run(work, architecture, results):
    failed = {command: result for command, result in results.items() if result[0] != 0}
    assert not failed, failed
    run_config, model = load_run(str(work / "run"))
    config = json.loads((work / "run" / "config.json").read_text())
    num_classes = 10 if config["conditional"] else None
    keras.utils.set_random_seed(0)
    twin = kp.build_model(architecture, (8, 8, 1), num_classes=num_classes, filters=8, num_layers=1)
    twin.set_weights([np.asarray(w) for w in model.get_weights()])
    labels = None if num_classes is None else np.arange(3) % num_classes
    want = kp.sample(twin, 3, seed=5, labels=labels)
    np.testing.assert_array_equal(np.load(work / "cached.npy"), want)
    np.testing.assert_array_equal(np.load(work / "naive.npy"), want)
    # evaluate and score print the float32 twin's figures (4 decimals), not just some number.
    test_images, test_labels = data.read_idx_split(data.FASHION_MNIST_DIR, "test")
    test_images = run_config.preprocessing().apply_numpy(test_images[:16])
    test_labels = None if num_classes is None else test_labels[:16]
    printed = float(re.search(r"\]: (\d+\.\d+) bits/dim", results["evaluate"][1]).group(1))
    assert printed == pytest.approx(float(np.mean(kp.bits_per_dim(twin, test_images, test_labels))), abs=2e-4)
    header, row = results["score"][1].strip().splitlines()[-2:]
    image = np.load(work / "image.npy")[None]
    score_labels = None if num_classes is None else np.zeros(1, np.int32)
    column = header.split("\t").index("bits_per_dim")
    assert float(row.split("\t")[column]) == pytest.approx(float(kp.bits_per_dim(twin, image, score_labels)[0]),
                                                          abs=2e-4)
    completed = np.load(work / "completed.npy")
    np.testing.assert_array_equal(completed[:, :4], np.repeat(image[:, :4], len(completed), axis=0))
    served = tf.saved_model.load(str(work / "serving" / "run" / "1")).signatures["serving_default"]
    inputs = {"seed": tf.constant([5], tf.int64)}
    if num_classes:
        inputs["label"] = tf.constant([0], tf.int64)
    np.testing.assert_array_equal(served(**inputs)["images"].numpy()[0], want[0])
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(work / "model.tflite")).get_signature_runner("sample")
    inputs = {name: value.numpy() for name, value in inputs.items()}
    np.testing.assert_array_equal(runner(**inputs)["images"][0], want[0])


@needs_data
@pytest.mark.parametrize("architecture", kp.ARCHITECTURES)
def test_a_run_trained_with_float16_and_xla_works_in_every_command(architecture, tmp_path):
    """`kpixel fit --mixed-precision on --jit-compile on` (one GPU's defaults), then every command."""
    results = _client(tmp_path, architecture, "--strategy", "default", "--mixed-precision", "on",
                      "--jit-compile", "on", "--conditional")
    _check_run(tmp_path, architecture, results)


@needs_data
def test_a_run_trained_with_the_two_gpu_defaults_works_in_every_command(tmp_path):
    """Mirrored over two logical CPUs, float16, XLA "auto" (off over two replicas): `kpixel fit` on a 2-GPU box."""
    results = _client(tmp_path, "pixelcnn", "--strategy", "mirrored", "--mixed-precision", "on",
                      "--jit-compile", "auto", "--conditional")
    status = json.loads((tmp_path / "run" / "run.json").read_text())
    assert status["replicas"] == 2
    _check_run(tmp_path, "pixelcnn", results)
    # XLA over two replicas fails inside Keras (keras-team/keras#19005): refused before anything is written.
    refused = _client(tmp_path / "xla", "pixelcnn", "--strategy", "mirrored", "--jit-compile", "on")["fit"]
    assert refused[0] == 2 and not (tmp_path / "xla" / "run").exists()


@needs_data
def test_a_run_written_by_the_jax_backend_works_in_the_tensorflow_commands(tmp_path):
    """`kpixel fit --backend jax --mixed-precision on` (bfloat16), then every TF-backend command."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    kpixel = os.path.join(os.path.dirname(sys.executable), "kpixel")
    fit = subprocess.run([kpixel, "fit", "--backend", "jax", "--mixed-precision", "on", "--model", "pixelcnn",
                          "--image-size", "8", "--filters", "8", "--num-layers", "1", "--batch-size", "8",
                          "--steps-per-epoch", "3", "--epochs", "1", "--validation-images", "16",
                          "--sample-images", "0", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert fit.returncode == 0, fit.stderr[-3000:]
    status = json.loads((tmp_path / "run" / "run.json").read_text())
    assert status["versions"]["backend"] == "jax"
    _, model = load_run(str(tmp_path / "run"))
    assert {layer.dtype_policy.name for layer in model.layers if layer.weights} == {"mixed_bfloat16"}
    # The same run dir now goes through the TF commands (the client trains only where no run is).
    results = _client(tmp_path, "pixelcnn")
    _check_run(tmp_path, "pixelcnn", results)


def test_checkpoints_never_save_non_finite_weights_as_best(tmp_path):
    from keras_pixelcnn.training.callbacks import AtomicModelCheckpoint

    model = tiny_model("pixelcnn", 1)
    checkpoint = AtomicModelCheckpoint(str(tmp_path), monitor="loss")
    checkpoint.set_model(model)
    weights = model.get_weights()
    weights[0][(0,) * weights[0].ndim] = np.inf  # an inf weight behind a finite loss
    model.set_weights(weights)
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    assert (tmp_path / "last.keras").exists() and not (tmp_path / "best.keras").exists()
    model.set_weights([np.where(np.isfinite(w), w, 0) for w in weights])
    checkpoint.on_epoch_end(1, {"loss": float("nan")})
    assert not (tmp_path / "best.keras").exists()
    checkpoint.on_epoch_end(2, {"loss": 2.0})
    assert (tmp_path / "best.keras").exists()
