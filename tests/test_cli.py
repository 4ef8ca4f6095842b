import os
import re
import subprocess

import pytest
from click.testing import CliRunner

from keras_pixelcnn.cli.main import cli
from keras_pixelcnn.cli.status import Status
from keras_pixelcnn.models import ARCHITECTURES


def test_architectures_lists_every_architecture_with_defaults():
    result = CliRunner().invoke(cli, ["architectures"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == list(ARCHITECTURES)
    assert "filters=64" in lines[0] and "num_layers=5" in lines[0]


def test_unknown_command_exits_2():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2


@pytest.fixture
def run_kpixel(kpixel, tmp_path):
    def run(*args, timeout=300):
        return subprocess.run([*kpixel, *args], capture_output=True, text=True, timeout=timeout, cwd=tmp_path)

    return run


def _error_line(result):
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unknown_dataset_is_one_line_exit_2_and_leaves_nothing(tmp_path, run_kpixel):
    out = tmp_path / "run"
    result = run_kpixel("fit", "--dataset", "no_such_dataset", "--out", str(out))
    assert result.returncode == 2
    assert "Unknown dataset 'no_such_dataset'" in _error_line(result)
    assert not out.exists()


def test_missing_data_dir_names_the_apt_package(tmp_path, run_kpixel):
    result = run_kpixel("fit", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "dataset-fashion-mnist" in _error_line(result)


def test_bad_option_value_and_bad_config_file(tmp_path, run_kpixel):
    result = run_kpixel("fit", "--out", str(tmp_path / "a"), "--levels", "1")
    assert result.returncode == 2 and "levels=1" in _error_line(result)
    config = tmp_path / "config.json"
    config.write_text('{"epochs": 1, "colour": "red"}')
    result = run_kpixel("fit", "--out", str(tmp_path / "b"), "--config", str(config))
    assert result.returncode == 2 and "colour" in _error_line(result)


def test_evaluate_errors(tmp_path, run_kpixel):
    result = run_kpixel("evaluate", str(tmp_path / "missing"))
    assert result.returncode == 2 and "Not a run directory" in _error_line(result)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"epochs": 1}')
    (run / "best.keras").write_bytes(b"not a zip file")
    result = run_kpixel("evaluate", str(run))
    assert result.returncode == 2 and "Cannot load" in _error_line(result)


@pytest.mark.skipif(not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
                    reason="apt-get install -y dataset-fashion-mnist")
def test_fit_then_evaluate_from_the_command_line(tmp_path, run_kpixel):
    out = str(tmp_path / "run")
    args = ("fit", "--out", out, "--epochs", "1", "--steps-per-epoch", "2", "--image-size", "8",
            "--filters", "8", "--num-layers", "1", "--batch-size", "8", "--validation-images", "16",
            "--sample-images", "0")
    result = run_kpixel(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    again = run_kpixel(*args)
    assert again.returncode == 0 and "already complete" in again.stdout
    scored = run_kpixel("evaluate", out, "--limit", "100")
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert scored.stdout.startswith("fashion_mnist[test]: ") and "over 100 images" in scored.stdout
    bits = float(scored.stdout.split(": ")[1].split()[0])
    # The same figure from the first 100 test images read straight from the IDX file (16-byte
    # header, then 28x28 uint8 images), preprocessed as the run's config says, scored in-process.
    import gzip

    import numpy as np

    import keras_pixelcnn as kp
    from keras_pixelcnn.training import run_dir

    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)[:100]
    config, model = run_dir.load_run(out)
    expected = float(np.mean(kp.bits_per_dim(model, config.preprocessing().apply_numpy(raw))))
    assert bits == pytest.approx(expected, abs=1e-4)  # the CLI prints 4 decimals
    assert 4.0 < bits < 8.5  # two steps of training: about the 8 bits of a uniform model


def test_status_line_ends_with_the_time_or_where_the_work_stopped(capsys):
    with Status("Working") as status:
        status.done()
        status.done()  # a second report does nothing
    assert re.fullmatch(r"Working \.\.\. done in \d+\.\d s\n", capsys.readouterr().err)
    with pytest.raises(ValueError):
        with Status("Converting"):
            raise ValueError("bad input")
    # The line ends, so the `Error:` line that follows starts a line of its own.
    assert re.fullmatch(r"Converting \.\.\. stopped after \d+\.\d s\n", capsys.readouterr().err)


@pytest.mark.parametrize("args, message", [
    (["export", "run", "--out", "x", "--format", "onnx"], "Error: Invalid value for '--format': 'onnx' is not one of "),
    (["sample", "--out", "x.png", "--num", "many"], "Error: Invalid value for '--num': 'many' is not a valid integer"),
    (["export", "--no-such-flag"], "Error: No such option '--no-such-flag'"),
    (["sample"], "Error: Missing option '--out'"),
    (["export", "run", "--out", "x"], "Error: Missing option '--format'. Choose from: savedmodel, tflite"),
    (["no-such-command"], "Error: No such command 'no-such-command'"),
])
def test_a_usage_error_is_one_error_line(args, message):
    """No "Usage:" / "Try ... --help" lines before the error: every bad input reads the same."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[0].startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_the_installed_command_prints_one_error_line_and_the_help_without_arguments(run_kpixel):
    result = run_kpixel("fit", "--out", "run", "--epochs", "x", timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == ["Error: Invalid value for '--epochs': 'x' is not a valid integer."]
    bare = run_kpixel(timeout=60)  # click's own behaviour: the help, exit 2
    assert bare.returncode == 2 and "Usage: kpixel" in bare.stdout + bare.stderr and "Error" not in bare.stderr
