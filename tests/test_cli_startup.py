"""First use of `kpixel`: quick help without TensorFlow, quiet start-up, logs that read well in a file."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from keras_pixelcnn.cli import quiet

# Lines TensorFlow and absl write as their own (C++) log, e.g.
# "I0000 00:00:1796232786.304434    6633 port.cc:153] oneDNN custom operations are on. ..."
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ")

_HELP_SCRIPT = r"""
import json, sys, time
from click.testing import CliRunner
from keras_pixelcnn.cli.main import cli

runner, seconds, failures = CliRunner(), {}, []
for args in [[]] + [[name] for name in sorted(cli.commands)]:
    start = time.perf_counter()
    result = runner.invoke(cli, args + ["--help"])
    seconds[" ".join(args) or "kpixel"] = round(time.perf_counter() - start, 3)
    if result.exit_code != 0 or "Usage: " not in result.output:
        failures.append((args, result.exit_code, result.output[-300:]))
heavy = sorted(name for name in ("keras", "tensorflow", "jax") if name in sys.modules)
print(json.dumps({"commands": sorted(cli.commands), "seconds": seconds, "failures": failures, "heavy": heavy}))
assert not heavy, f"--help imported {heavy}"
"""


def _environment(**changes):
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_help_of_every_command_imports_neither_keras_nor_tensorflow():
    result = subprocess.run([sys.executable, "-c", _HELP_SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["heavy"] == [] and report["failures"] == []
    assert {"fit", "evaluate", "sample", "complete", "score", "export", "architectures"} <= set(report["commands"])
    assert set(report["seconds"]) == {"kpixel", *report["commands"]}


def test_the_installed_script_prints_help_and_nothing_on_stderr(kpixel):
    for args in (["--help"], ["fit", "--help"]):
        result = subprocess.run([*kpixel, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.startswith("Usage: kpixel"), result.stderr
        assert result.stderr == ""


def test_chatter_is_only_absl_information():
    assert quiet.is_chatter("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    assert quiet.is_chatter("I0000 00:00:1796232786.304434    6633 port.cc:153] oneDNN custom operations are on.\n")
    assert not quiet.is_chatter("E0000 00:00:1796232938.901755    6889 meta_optimizer.cc:967] remapper failed\n")
    assert not quiet.is_chatter("W0000 00:00:1796232938.901755    6889 x.cc:1] a warning\n")
    assert not quiet.is_chatter("UserWarning: something the user should see\n")


def _tensorflow_import_chatter(env):
    """The chatter lines a bare `import tensorflow` prints here (they differ between builds)."""
    result = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True,
                            timeout=300, env=env)
    return [line for line in result.stderr.splitlines() if quiet.is_chatter(line)]


def test_startup_is_quiet_unless_verbose(kpixel):
    env = _environment(TF_CPP_MIN_LOG_LEVEL=None, KPIXEL_LOG=None)
    chatter = _tensorflow_import_chatter(env)
    if not chatter:
        pytest.skip("this TensorFlow build prints nothing on import")
    quiet_run = subprocess.run([*kpixel, "architectures"], capture_output=True, text=True, timeout=300, env=env)
    assert quiet_run.returncode == 0 and quiet_run.stdout.startswith("pixelcnn:"), quiet_run.stderr[-2000:]
    assert quiet_run.stderr == ""
    for run_env, flag in ((env, ["--verbose"]), (_environment(TF_CPP_MIN_LOG_LEVEL=None, KPIXEL_LOG="debug"), [])):
        loud = subprocess.run([*kpixel, *flag, "architectures"], capture_output=True, text=True, timeout=300,
                              env=run_env)
        assert loud.returncode == 0 and loud.stdout == quiet_run.stdout
        shown = [line for line in loud.stderr.splitlines() if quiet.is_chatter(line)]
        # Verbose lowers TF_CPP_MIN_LOG_LEVEL to 0, so it shows at least what a bare import does.
        assert len(shown) >= len(chatter), loud.stderr[-2000:]


@pytest.mark.skipif(not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
                    reason="apt-get install -y dataset-fashion-mnist")
def test_fit_into_a_file_logs_one_clean_line_per_epoch(kpixel, tmp_path):
    """stdout is a pipe here, as when a log is redirected to a file: no progress bar, no TensorFlow lines.

    PixelCNN++ (ConcatELU after an Add) used to make TensorFlow's graph optimizer print
    `E... meta_optimizer.cc] remapper failed: INVALID_ARGUMENT` on every training run.
    """
    result = subprocess.run(
        [*kpixel, "fit", "--model", "pixelcnn_pp", "--out", str(tmp_path / "run"), "--epochs", "2",
         "--steps-per-epoch", "2", "--image-size", "8", "--filters", "8", "--num-layers", "1", "--batch-size", "8",
         "--validation-images", "16", "--sample-images", "0"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=_environment(KPIXEL_LOG=None))
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line for line in result.stderr.splitlines() if TF_LOG_LINE.match(line) or "absl" in line] == []
    assert "\x1b" not in result.stdout and "\r" not in result.stdout and "━" not in result.stdout
    epochs = [line for line in result.stdout.splitlines() if line.startswith("2/2 - ")]
    assert len(epochs) == 2, result.stdout
    for line in epochs:
        assert re.search(r" - loss: \d+\.\d+ .*- bits_per_dim: \d+\.\d+ .*- val_bits_per_dim: \d+\.\d+", line), line
    assert result.stdout.splitlines()[-1].startswith("Saved ")


# Tiny fits of every architecture in one process, the stderr of each printed as JSON on stdout.
_FIT_EVERY_ARCHITECTURE = r"""
import json, os, sys
from keras_pixelcnn.cli.main import cli
from keras_pixelcnn.models import ARCHITECTURES

def fit(name, *flags):
    # fd 2 to a file for this fit only: C++ writes there directly.
    path = os.path.join(sys.argv[1], name + ".err")
    saved = os.dup(2)
    with open(path, "wb") as handle:
        os.dup2(handle.fileno(), 2)
    try:
        try:
            cli.main([*flags, "fit", "--model", name.split("+")[0], "--out", os.path.join(sys.argv[1], name),
                      "--epochs", "1", "--steps-per-epoch", "1", "--image-size", "8", "--filters", "8",
                      "--num-layers", "2", "--batch-size", "4", "--validation-images", "4", "--sample-images", "0"],
                     prog_name="kpixel", standalone_mode=False)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
    except SystemExit:
        pass
    with open(path) as handle:
        return handle.read()

report = {name: fit(name) for name in sorted(ARCHITECTURES)}
from keras_pixelcnn.cli import quiet
report["dropped"] = quiet.dropped
print(json.dumps(report))
"""


@pytest.mark.skipif(not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
                    reason="apt-get install -y dataset-fashion-mnist")
def test_fit_of_every_architecture_prints_no_tensorflow_error(tmp_path):
    """No Grappler `remapper failed` line (or any TF log line) in a fit's stderr, for every architecture.

    PixelCNN's residual stream (Add read by the next block's ReLU and Add) makes TensorFlow's oneDNN
    remapper abort; `quiet.filtered_stderr` drops that line (TensorFlow prints it once per process,
    so the fits share one process, and the filter's record proves the line was there to drop).
    """
    result = subprocess.run([sys.executable, "-c", _FIT_EVERY_ARCHITECTURE, str(tmp_path)], capture_output=True,
                            text=True, timeout=600, env=_environment(KPIXEL_LOG=None, TF_CPP_MIN_LOG_LEVEL=None))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    from keras_pixelcnn.models import ARCHITECTURES

    for name in ARCHITECTURES:
        assert os.path.exists(tmp_path / name / "best.keras"), (name, report[name][-2000:])
        assert [line for line in report[name].splitlines() if TF_LOG_LINE.match(line) or "remapper" in line] == [], name
    if not any("remapper failed" in line for line in report["dropped"]):
        pytest.skip("this TensorFlow build does not print the remapper line (e.g. without oneDNN)")
    assert all(quiet.is_known_harmless(line) for line in report["dropped"])


def test_the_filter_drops_only_the_remapper_line_and_passes_partial_lines_at_once(capfd):
    remapper = ("E0000 00:00:1796246563.249154    4930 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: "
                "Mutation::Apply error: fanout 'StatefulPartitionedCall/pixelcnn_1/head_relu1_1/Relu' exist for "
                "missing node 'StatefulPartitionedCall/pixelcnn_1/block0_skip_1/Add'.")
    other = "E0000 00:00:1796246563.249154    4930 meta_optimizer.cc:967] layout failed: INVALID_ARGUMENT: x"
    assert quiet.is_known_harmless(remapper + "\n") and not quiet.is_known_harmless(other)
    # Printed by a hit in XLA's persistent cache (the pretrained model's sampler; a tiny model's may not).
    assert quiet.is_known_harmless("E0000 00:00:1796247288.306101   10033 text_format.cc:378] Error parsing "
                                   "text-format tensorflow.XlaSerializedCacheEntry: 2:1: Expected identifier, got: 6")
    assert not quiet.is_known_harmless("E0000 00:00:1796247288.718075   10033 cpu_aot_loader.cc:220] Loading XLA:CPU "
                                       "AOT result. Target machine feature +avx512f is not  supported on the host")
    with quiet.filtered_stderr():
        os.write(2, b"Compiling the sampler ...")
        import time

        time.sleep(0.5)
        assert capfd.readouterr().err == "Compiling the sampler ..."  # shown before its line ends
        os.write(2, f" done\n{remapper}\n{other}\nE0".encode())
        os.write(2, b"000 the end\n")
    assert capfd.readouterr().err == f" done\n{other}\nE0000 the end\n"


_LOAD_SCRIPT = r"""
import sys
import keras_pixelcnn as kp
assert "keras" not in sys.modules and "tensorflow" not in sys.modules
import keras  # the package's layers register now, so Keras finds them in the file
model = keras.saving.load_model(sys.argv[1], compile=False)
print(model.layers[-1].__class__.__name__, kp.PixelDistribution.__name__)
"""


def test_import_is_lazy_and_keras_still_reads_the_package_files():
    from keras_pixelcnn.models.pretrained import WEIGHTS_DIR

    path = os.path.join(WEIGHTS_DIR, "fashion_mnist.keras")
    result = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, path], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["PixelDistribution", "PixelDistribution"]


def test_xla_cache_follows_xdg_and_leaves_the_users_flags_alone(tmp_path, monkeypatch):
    from keras_pixelcnn.cli import xla_cache

    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    path = xla_cache.configure(env)
    assert path == str(tmp_path / "xdg" / "keras-pixelcnn" / "xla") and os.path.isdir(path)
    assert env["TF_XLA_FLAGS"] == f"--tf_xla_persistent_cache_directory={path}"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert xla_cache.cache_dir({}) == str(tmp_path / "home" / ".cache" / "keras-pixelcnn" / "xla")
    assert xla_cache.cache_dir({"XDG_CACHE_HOME": ""}) == xla_cache.cache_dir({})  # empty means unset
    for flags in ("", "--tf_xla_auto_jit=2"):
        mine = {"TF_XLA_FLAGS": flags, "XDG_CACHE_HOME": str(tmp_path / "mine")}
        assert xla_cache.configure(mine) is None and mine["TF_XLA_FLAGS"] == flags
    assert not os.path.exists(tmp_path / "mine")


def test_a_second_process_loads_the_sampler_from_the_xla_cache(tmp_path, kpixel):
    """The first `kpixel sample` writes the compiled sampler under $XDG_CACHE_HOME/keras-pixelcnn/xla,
    the second loads it (the entry is not written again, which a compile would do) and draws the same
    images; neither prints TensorFlow log lines. TF_XLA_FLAGS set by the user turns the cache off."""
    import keras_pixelcnn as kp
    from keras_pixelcnn.training import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(TrainConfig(image_size=4, filters=4, num_layers=1).to_dict()))
    kp.build_model("pixelcnn", (4, 4, 1), filters=4, num_layers=1).save(run / "best.keras")
    cache = tmp_path / "cache" / "keras-pixelcnn" / "xla"

    def sample(name, **env):
        result = subprocess.run([*kpixel, "sample", str(run), "--num", "2", "--out", str(tmp_path / f"{name}.png"),
                                 "--npy", str(tmp_path / f"{name}.npy")], capture_output=True, text=True,
                                timeout=300, env=_environment(**{"KPIXEL_LOG": None, "TF_XLA_FLAGS": None,
                                                                 "TF_CPP_MIN_LOG_LEVEL": None, **env}))
        assert result.returncode == 0, result.stderr[-2000:]
        assert [line for line in result.stderr.splitlines() if TF_LOG_LINE.match(line)] == [], result.stderr[-2000:]
        return np.load(tmp_path / f"{name}.npy")

    first = sample("first", XDG_CACHE_HOME=str(tmp_path / "cache"))
    entries = {name: os.stat(cache / name).st_mtime_ns for name in os.listdir(cache)}
    assert entries and not [name for name in entries if name.endswith(".tmp")], entries
    second = sample("second", XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert {name: os.stat(cache / name).st_mtime_ns for name in os.listdir(cache)} == entries
    np.testing.assert_array_equal(first, second)
    sample("off", XDG_CACHE_HOME=str(tmp_path / "off"), TF_XLA_FLAGS="")
    assert not os.path.exists(tmp_path / "off")


_NO_TENSORFLOW = """
import sys


class NoTensorFlow:
    \"\"\"One of the import finders, which no longer finds TensorFlow.\"\"\"

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, name):
        return getattr(self.finder, name)


sys.meta_path[:] = [NoTensorFlow(finder) for finder in sys.meta_path]
"""


def test_without_tensorflow_fit_trains_on_jax_and_the_other_commands_say_what_to_install(tmp_path, kpixel):
    """`pip install 'keras-pixelcnn[jax]'` installs no TensorFlow (here: no import finder of any process finds it,
    so `import` and `find_spec` see none). `kpixel fit --backend jax` trains
    with the default backend (tensorflow) configured; every other command, and fit on that default, was a
    ModuleNotFoundError traceback from `import keras`, and is now one `Error:` line naming what to install."""
    pytest.importorskip("jax")
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(_NO_TENSORFLOW)
    env = _environment(PYTHONPATH=str(shim), KERAS_HOME=str(tmp_path / "keras"), KERAS_BACKEND=None,
                       JAX_PLATFORMS="cpu")
    run = tmp_path / "run"
    fit = ["fit", "--data-dir", "/usr/share/datasets/fashion-mnist", "--image-size", "8", "--filters", "4",
           "--num-layers", "1", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4",
           "--validation-images", "8", "--sample-images", "0", "--out", str(run)]

    def kpixel_run(*args):
        return subprocess.run([*kpixel, *args], capture_output=True, text=True, timeout=300, env=env)

    result = kpixel_run(*fit)  # the configured backend, tensorflow
    assert result.returncode == 2 and result.stdout == "", result.stderr[-2000:]
    assert result.stderr == ("Error: kpixel fit on the tensorflow backend needs tensorflow, which is not installed: "
                             "pip install 'keras-pixelcnn[cpu]' (or '[gpu]'); or train with --backend jax\n")
    assert not run.exists()
    result = kpixel_run(*fit, "--backend", "jax")
    assert result.returncode == 0 and (run / "best.keras").exists(), result.stderr[-2000:]
    assert json.loads((run / "run.json").read_text())["versions"]["backend"] == "jax"
    for command in (["evaluate", str(run)], ["sample", str(run), "--out", str(tmp_path / "g.png")],
                    ["export", str(run), "--format", "tflite", "--out", str(tmp_path / "m.tflite")]):
        result = kpixel_run(*command)
        assert result.returncode == 2 and result.stderr == (
            f"Error: kpixel {command[0]} needs TensorFlow, which is not installed: pip install 'keras-pixelcnn[cpu]' "
            "(or '[gpu]'); without it, only kpixel fit --backend jax (and architectures) run\n"), result.stderr[-2000:]
    assert set(os.listdir(tmp_path)) - {"keras"} == {"run", "shim"}  # the refused commands wrote nothing


_BACKENDS = """
from keras_pixelcnn.cli.backends import configured_backend

ours = configured_backend()  # before Keras is imported
import keras

print(ours, keras.backend.backend())
"""


def test_the_configured_backend_is_the_one_keras_loads(tmp_path):
    """`fit --backend` decides whether to restart on another backend from `configured_backend()` when Keras
    is not imported yet (no TensorFlow): it must read Keras' configuration as Keras does. Each case is a
    fresh process that asks both: KERAS_HOME set, empty (the working directory) or with a `~`; KERAS_BACKEND
    over keras.json, or empty; a keras.json without a backend."""
    pytest.importorskip("jax")

    def config(folder, **fields):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "keras.json").write_text(json.dumps(fields))
        return folder

    jax_home, tf_home = config(tmp_path / "jax", backend="jax"), config(tmp_path / "tf", backend="tensorflow")
    cwd = config(tmp_path / "cwd", backend="jax")
    config(tmp_path / "home" / "kh", backend="jax")
    config(tmp_path / "plain" / ".keras", floatx="float32")
    cases = [({"KERAS_HOME": str(jax_home)}, "jax"), ({"KERAS_HOME": str(jax_home), "KERAS_BACKEND": ""}, "jax"),
             ({"KERAS_HOME": str(tf_home), "KERAS_BACKEND": "jax"}, "jax"), ({"KERAS_HOME": ""}, "jax"),
             ({"KERAS_HOME": "~/kh", "HOME": str(tmp_path / "home")}, "jax"),
             ({"HOME": str(tmp_path / "plain")}, "tensorflow")]
    for changes, want in cases:
        env = _environment(**{"KERAS_HOME": None, "KERAS_BACKEND": None, "JAX_PLATFORMS": "cpu", **changes})
        result = subprocess.run([sys.executable, "-c", _BACKENDS], capture_output=True, text=True, timeout=120,
                                env=env, cwd=cwd)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.split()[-2:] == [want, want], (changes, result.stdout)


def test_with_keras_backend_jax_the_tensorflow_commands_run_on_tensorflow(tmp_path, kpixel):
    """KERAS_BACKEND=jax in the environment (as for `fit --backend jax` runs) and TensorFlow installed: `kpixel
    sample` ran the model on JAX inside its tf.function ("Cannot convert a symbolic tf.Tensor", a traceback).
    The commands that sample, score or export restart on TensorFlow and draw the same images."""
    pytest.importorskip("jax")
    import keras_pixelcnn as kp
    from keras_pixelcnn.training import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(TrainConfig(image_size=4, filters=4, num_layers=1).to_dict()))
    kp.build_model("pixelcnn", (4, 4, 1), filters=4, num_layers=1).save(run / "best.keras")
    drawn = {}
    for backend in ("tensorflow", "jax"):
        result = subprocess.run([*kpixel, "sample", str(run), "--num", "3", "--out", str(tmp_path / f"{backend}.png"),
                                 "--npy", str(tmp_path / f"{backend}.npy")], capture_output=True, text=True,
                                timeout=300, env=_environment(KERAS_BACKEND=backend, JAX_PLATFORMS="cpu"))
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
        drawn[backend] = np.load(tmp_path / f"{backend}.npy")
    np.testing.assert_array_equal(drawn["jax"], drawn["tensorflow"])
