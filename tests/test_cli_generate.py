"""`kpixel sample | complete | score` on a small saved run."""

import csv
import os
import json
import re
import subprocess

import keras
import numpy as np
import pytest
from PIL import Image

import keras_pixelcnn as kp
from keras_pixelcnn.sampling import complete, sample
from keras_pixelcnn.training import TrainConfig


@pytest.fixture
def run_dir(tmp_path):
    """A run directory as `kpixel fit` leaves it: config.json and best.keras (8x8, untrained)."""
    keras.utils.set_random_seed(0)
    model = kp.build_model("pixelcnn", (8, 8, 1), filters=8, num_layers=1)
    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(image_size=8, filters=8, num_layers=1)
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    model.save(run / "best.keras")
    return run, model


@pytest.fixture
def run_kpixel(kpixel, tmp_path):
    def run(*args):
        return subprocess.run([*kpixel, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=tmp_path)

    return run


def _status_line(result, message):
    """The command's `MESSAGE ... done in T s` line on stderr (where users wait)."""
    found = re.findall(rf"^{re.escape(message)} \.\.\. done in \d+\.\d s$", result.stderr, re.M)
    assert len(found) == 1, result.stderr[-2000:]


def _error_line(result):
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


def test_sample_writes_the_grid_and_the_seeded_images(tmp_path, run_dir, run_kpixel):
    run, model = run_dir
    result = run_kpixel("sample", run, "--num", 5, "--seed", 3, "--batch-size", 2,
                        "--out", tmp_path / "grid.png", "--npy", tmp_path / "images.npy")
    assert result.returncode == 0, result.stderr[-2000:]
    images = np.load(tmp_path / "images.npy")
    np.testing.assert_array_equal(images, sample(model, 5, seed=3))
    _status_line(result, "Compiling the sampler (first use) and drawing the first batch")
    # 3x2 grid of 8x8 tiles with 1-pixel borders
    assert Image.open(tmp_path / "grid.png").size == (3 * 9 + 1, 2 * 9 + 1)


def test_complete_keeps_the_known_part(tmp_path, run_dir, run_kpixel):
    run, model = run_dir
    image = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    mask = np.zeros((8, 8), np.uint8)
    mask[:5] = 255
    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    result = run_kpixel("complete", run, "--image", tmp_path / "in.png", "--mask", tmp_path / "mask.png",
                        "--num", 3, "--seed", 1, "--out", tmp_path / "out.png", "--npy", tmp_path / "out.npy")
    assert result.returncode == 0, result.stderr[-2000:]
    completions = np.load(tmp_path / "out.npy")
    np.testing.assert_array_equal(completions[:, :5, :, 0], np.broadcast_to(image[:5], (3, 5, 8)))
    expected = complete(model, np.repeat(image[None, ..., None], 3, axis=0), mask > 127, seed=1)
    np.testing.assert_array_equal(completions, expected)
    assert "24 unknown pixels" in result.stdout
    _status_line(result, "Compiling the sampler (first use) and completing 3 images")


def test_score_prints_and_writes_the_table(tmp_path, run_dir, run_kpixel):
    run, model = run_dir
    images = np.random.default_rng(1).integers(0, 256, (2, 8, 8)).astype(np.uint8)
    np.save(tmp_path / "batch.npy", images)
    Image.fromarray(images[0]).save(tmp_path / "one.png")
    result = run_kpixel("score", run, tmp_path / "batch.npy", tmp_path / "one.png", "--csv", tmp_path / "s.csv")
    assert result.returncode == 0, result.stderr[-2000:]
    with open(tmp_path / "s.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["image"].rsplit("/", 1)[-1] for row in rows] == ["batch.npy[0]", "batch.npy[1]", "one.png"]
    expected = kp.bits_per_dim(model, np.concatenate([images, images[:1]])[..., None])
    np.testing.assert_allclose([float(row["bits_per_dim"]) for row in rows], expected, atol=6e-5)
    assert result.stdout.splitlines()[0].split("\t") == ["image", "bits_per_dim", "png_bits_per_dim", "complexity"]


def test_generation_commands_reject_bad_input_with_one_line(tmp_path, run_dir, run_kpixel):
    run, _ = run_dir
    assert "Not a run directory" in _error_line(run_kpixel("sample", tmp_path / "nope", "--out", tmp_path / "g.png"))
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "big.png")
    assert "Expected 8x8x1 images" in _error_line(run_kpixel("score", run, tmp_path / "big.png"))
    assert "No such image file" in _error_line(run_kpixel("score", run, tmp_path / "missing.png"))
    assert "temperature" in _error_line(run_kpixel("sample", run, "--temperature", 0, "--out", tmp_path / "g.png"))
    assert not (tmp_path / "g.png").exists()
    (tmp_path / "text.png").write_text("not a picture")
    assert "Cannot read image" in _error_line(run_kpixel("score", run, tmp_path / "text.png"))


def test_export_writes_the_serving_layout_and_a_tflite_file(tmp_path, run_dir, run_kpixel):
    run, model = run_dir
    result = run_kpixel("export", run, "--format", "savedmodel", "--out", tmp_path / "serving", "--version", 3)
    assert result.returncode == 0, result.stderr[-2000:]
    # --name defaults to the run's name; .lock is the export lock's file (TF Serving loads numbers only)
    assert sorted(os.listdir(tmp_path / "serving" / "run")) == [".lock", "3"]
    assert (tmp_path / "serving" / "run" / "3" / "saved_model.pb").exists()
    _status_line(result, "Writing the SavedModel")
    again = _error_line(run_kpixel("export", run, "--format", "savedmodel", "--out", tmp_path / "serving",
                                   "--version", 3))
    assert "already exists" in again
    result = run_kpixel("export", run, "--format", "tflite", "--out", tmp_path / "m.tflite", "--batch-size", 2)
    assert result.returncode == 0, result.stderr[-2000:]
    _status_line(result, "Converting to TFLite")
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(tmp_path / "m.tflite")).get_signature_runner("sample")
    np.testing.assert_array_equal(runner(seed=np.array([0, 1], np.int64))["images"],
                                  np.concatenate([sample(model, 1, seed=0), sample(model, 1, seed=1)]))


def test_export_rejects_bad_input_with_one_line(tmp_path, run_dir, run_kpixel):
    run, _ = run_dir
    assert "Not a run directory" in _error_line(
        run_kpixel("export", tmp_path / "nope", "--format", "savedmodel", "--out", tmp_path / "s"))
    assert "positive integer version" in _error_line(
        run_kpixel("export", run, "--format", "savedmodel", "--out", tmp_path / "s", "--version", 0))
    assert "positive integer batch_size" in _error_line(
        run_kpixel("export", run, "--format", "tflite", "--out", tmp_path / "m.tflite", "--batch-size", 0))
    (run / "best.keras").write_bytes(b"not a zip")
    assert "Cannot load" in _error_line(run_kpixel("export", run, "--format", "tflite", "--out", tmp_path / "m.tflite"))
    assert not (tmp_path / "s").exists() and not (tmp_path / "m.tflite").exists()


@pytest.mark.skipif(not os.path.exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"),
                    reason="apt-get install -y dataset-fashion-mnist")
def test_evaluate_refuses_a_model_file_of_another_shape(tmp_path, run_dir, run_kpixel):
    run, _ = run_dir
    # An 8x8 model: the 28x28 Fashion-MNIST images are not resized for a bare .keras file.
    line = _error_line(run_kpixel("evaluate", run / "best.keras", "--dataset", "fashion_mnist"))
    assert "fashion_mnist images are (28, 28, 1) but the model expects (8, 8, 1)" in line
    assert "No such model file" in _error_line(run_kpixel("evaluate", tmp_path / "missing.keras"))
    assert "Received: both" in _error_line(run_kpixel("evaluate", run, "--pretrained", "fashion_mnist"))
    assert "Received: neither" in _error_line(run_kpixel("evaluate"))
    assert "Expected a pretrained model in" in _error_line(run_kpixel("evaluate", "--pretrained", "nope"))
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    assert "Cannot load" in _error_line(run_kpixel("evaluate", tmp_path / "bad.keras"))
