"""The model shipped inside the package: its README figure holds, and the commands use it without training."""

import os
import re
import subprocess

import numpy as np
import pytest
from PIL import Image

import keras_pixelcnn as kp
from keras_pixelcnn.data import load
from keras_pixelcnn.models.pretrained import available, card, load_pretrained

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _readme_figure():
    """The README's bits/dim of the shipped model on the first 500 test images."""
    with open(README) as handle:
        match = re.search(r"`--pretrained fashion_mnist` scores \*\*([0-9.]+) bits/dim\*\* on the first 500",
                          handle.read())
    assert match, "the README states the shipped model's bits/dim on the first 500 test images"
    return float(match.group(1))


@pytest.fixture(scope="module")
def shipped():
    return load_pretrained("fashion_mnist")


def test_shipped_model_scores_the_readme_figure(shipped):
    images = load("fashion_mnist", "test[:500]").images
    measured = float(np.mean(kp.bits_per_dim(shipped, images)))
    assert abs(measured - _readme_figure()) <= 0.05, measured
    assert abs(measured - card("fashion_mnist")["test_bits_per_dim_first_500"]) <= 1e-3, measured
    assert shipped.inputs[0].shape[1:] == (28, 28, 1)


def test_unknown_pretrained_name_is_refused():
    assert "fashion_mnist" in available()
    with pytest.raises(ValueError, match="Expected a pretrained model in"):
        load_pretrained("cifar10")


def test_commands_work_with_the_shipped_model(kpixel, tmp_path):
    def run(*args):
        return subprocess.run([*kpixel, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=tmp_path)

    result = run("sample", "--pretrained", "fashion_mnist", "--num", 4, "--seed", 1, "--out", tmp_path / "grid.png",
                 "--npy", tmp_path / "grid.npy")
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "grid.png").size == (2 * 29 + 1, 2 * 29 + 1)
    images = np.load(tmp_path / "grid.npy")
    Image.fromarray(images[0, ..., 0]).save(tmp_path / "one.png")
    result = run("score", "--pretrained", "fashion_mnist", tmp_path / "one.png")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[1].startswith(str(tmp_path / "one.png"))
    both = run("sample", tmp_path, "--pretrained", "fashion_mnist", "--out", tmp_path / "g.png")
    assert both.returncode == 2 and "Expected either RUN_DIR or --pretrained NAME" in both.stderr
    unknown = run("sample", "--pretrained", "nope", "--out", tmp_path / "g.png")
    assert unknown.returncode == 2 and "Expected a pretrained model in" in unknown.stderr


def test_evaluate_prints_the_readme_figure_for_the_shipped_model_and_its_file(kpixel, tmp_path, shipped):
    def evaluate(*args):
        result = subprocess.run([*kpixel, "evaluate", *map(str, args)], capture_output=True, text=True, timeout=600,
                                cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        match = re.fullmatch(r"fashion_mnist\[test\]: ([0-9.]+) bits/dim over (\d+) images\n", result.stdout)
        assert match, result.stdout
        return float(match.group(1)), int(match.group(2))

    bits, count = evaluate("--pretrained", "fashion_mnist", "--limit", 500)
    # The same four decimals as the README (one unit of rounding apart at most).
    assert count == 500 and abs(bits - _readme_figure()) < 1.5e-4, bits
    path = os.path.join(os.path.dirname(kp.__file__), "weights", "fashion_mnist.keras")
    bits, count = evaluate(path, "--limit", 100)
    expected = float(np.mean(kp.bits_per_dim(shipped, load("fashion_mnist", "test[:100]").images)))
    assert count == 100 and abs(bits - expected) < 1.5e-4, (bits, expected)
