"""Training runs on real Fashion-MNIST, resized to 8x8 so each fit takes seconds."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import keras_pixelcnn as kp
from keras_pixelcnn.training import callbacks as callbacks_lib
from keras_pixelcnn.data import sources as data
from keras_pixelcnn.training import TrainConfig, evaluate, fit, load_run

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(data.FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")),
    reason="apt-get install -y dataset-fashion-mnist (.ci/run installs it)",
)

TINY = dict(image_size=8, filters=8, num_layers=1, batch_size=8, validation_images=32, sample_images=0)


def _epochs(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_tiny_fit_writes_the_run_dir(tmp_path):
    config = TrainConfig(epochs=1, steps_per_epoch=2, conditional=True, **dict(TINY, sample_images=2))
    history = fit(config, str(tmp_path), verbose=0)
    assert set(history.history) >= {"bits_per_dim", "loss", "val_bits_per_dim"}
    names = set(os.listdir(tmp_path))
    assert {"config.json", "run.json", "best.keras", "last.keras", "best.json", "history.csv", "logs",
            "samples"} <= names
    assert json.loads((tmp_path / "config.json").read_text()) == config.to_dict()
    status = json.loads((tmp_path / "run.json").read_text())
    assert status["completed"] and status["data"]["train"] == data.FASHION_MNIST_DIR
    assert status["replicas"] == 1
    assert status["versions"]["keras"] == keras.__version__
    assert os.listdir(tmp_path / "samples") == ["epoch_001.png"]
    assert any(name.startswith("events") for name in os.listdir(tmp_path / "logs" / "train"))
    assert not [name for name in names if name.startswith(".tmp-")]
    _, model = load_run(str(tmp_path))
    assert model.inputs[0].shape[1:] == (8, 8, 1) and len(model.inputs) == 2


def test_rerun_resumes_after_a_crash_with_the_saved_weights(tmp_path, monkeypatch):
    config = TrainConfig(epochs=3, steps_per_epoch=3, **TINY)
    original = callbacks_lib.StopOnNaN.on_train_batch_end

    def crash_in_second_epoch(self, batch, logs=None):
        if self._epoch == 1 and batch == 1:
            raise KeyboardInterrupt("simulated crash")
        original(self, batch, logs)

    monkeypatch.setattr(callbacks_lib.StopOnNaN, "on_train_batch_end", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit(config, str(tmp_path), verbose=0)
    monkeypatch.setattr(callbacks_lib.StopOnNaN, "on_train_batch_end", original)
    assert _epochs(tmp_path) == [0]
    saved = keras.saving.load_model(tmp_path / "last.keras").get_weights()

    restored = {}
    original_begin = callbacks_lib.AtomicModelCheckpoint.on_train_begin

    def record(self, logs=None):
        restored["weights"] = self.model.get_weights()  # runs after BackupAndRestore restored
        original_begin(self, logs)

    monkeypatch.setattr(callbacks_lib.AtomicModelCheckpoint, "on_train_begin", record)
    history = fit(config, str(tmp_path), verbose=0)
    assert len(history.history["loss"]) == 2  # epochs 2 and 3 only
    assert _epochs(tmp_path) == [0, 1, 2]
    for got, want in zip(restored["weights"], saved):
        np.testing.assert_array_equal(got, want)
    assert fit(config, str(tmp_path), verbose=0) is None  # complete: nothing to do
    # The resumed epochs read the batches an uninterrupted run reads there (not the first pass
    # again), so with the restored weights and optimizer state both runs end at the same weights.
    fit(config, str(tmp_path / "uninterrupted"), verbose=0)
    resumed = load_run(str(tmp_path), "last")[1].get_weights()
    for got, want in zip(resumed, load_run(str(tmp_path / "uninterrupted"), "last")[1].get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_kill_9_mid_epoch_loses_at_most_that_epoch(tmp_path, kpixel):
    run_dir = str(tmp_path / "run")
    command = [*kpixel, "fit", "--out", run_dir, "--epochs", "3",
               "--steps-per-epoch", "150", "--image-size", "8", "--filters", "8", "--num-layers", "1",
               "--batch-size", "8", "--validation-images", "16", "--sample-images", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    history = os.path.join(run_dir, "history.csv")
    deadline = time.time() + 240
    while time.time() < deadline and not (os.path.exists(history) and _epochs(run_dir)):
        time.sleep(0.05)
    time.sleep(0.3)  # into epoch 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = _epochs(run_dir)
    assert done_before in ([0], [0, 1]), done_before
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _epochs(run_dir) == [0, 1, 2]


def test_a_different_config_in_the_same_run_dir_is_refused(tmp_path):
    fit(TrainConfig(epochs=1, steps_per_epoch=1, **TINY), str(tmp_path), verbose=0)
    with pytest.raises(ValueError, match=r"differs in \['learning_rate'\]"):
        fit(TrainConfig(epochs=1, steps_per_epoch=1, learning_rate=0.5, **TINY), str(tmp_path), verbose=0)


def test_a_finished_run_trained_longer_goes_on_as_a_longer_run_would(tmp_path):
    """1 epoch, then `epochs=2` on the same run dir, ends at the weights of a straight 2-epoch run:
    the second epoch starts from the first's weights, optimizer state (Adam's moments and step
    count) and place in the shuffled stream. Fewer epochs than planned are refused."""
    fit(TrainConfig(epochs=1, steps_per_epoch=3, **TINY), str(tmp_path), verbose=0)
    longer = TrainConfig(epochs=2, steps_per_epoch=3, **TINY)
    history = fit(longer, str(tmp_path), verbose=0)
    assert len(history.history["loss"]) == 1 and _epochs(tmp_path) == [0, 1]
    assert int(history.model.optimizer.iterations) == 6
    assert json.loads((tmp_path / "config.json").read_text()) == longer.to_dict()
    status = json.loads((tmp_path / "run.json").read_text())
    assert status["completed"] and status["extended_at"] == [1]
    # best.json names the epoch of history.csv's lowest monitored value, across the extension.
    best = json.loads((tmp_path / "best.json").read_text())
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    values = [float(row[best["monitor"]]) for row in rows]
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert best["epoch"] == int(np.argmin(values)) + 1 and best["value"] == pytest.approx(min(values), rel=1e-6)
    assert fit(longer, str(tmp_path), verbose=0) is None  # complete again
    with pytest.raises(ValueError, match=r"Expected epochs >= 2 .*Received: epochs=1"):
        fit(TrainConfig(epochs=1, steps_per_epoch=3, **TINY), str(tmp_path), verbose=0)
    fit(longer, str(tmp_path / "straight"), verbose=0)
    for got, want in zip(load_run(str(tmp_path), "last")[1].get_weights(),
                         load_run(str(tmp_path / "straight"), "last")[1].get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_cosine_run_trained_longer_restarts_the_cycle(tmp_path, monkeypatch):
    """Trained longer, a cosine run starts a new cycle at its peak rate and anneals to 0 over the
    added epochs (a warm restart, `training/schedule.py`); the rates are checked against numpy."""
    rates = []

    def record(self, batch, logs=None):  # the rate the coming step uses
        rates.append(float(self.model.optimizer.learning_rate))

    monkeypatch.setattr(callbacks_lib.StopOnNaN, "on_train_batch_begin", record)
    fit(TrainConfig(epochs=1, steps_per_epoch=3, lr_schedule="cosine", **TINY), str(tmp_path), verbose=0)
    fit(TrainConfig(epochs=3, steps_per_epoch=3, lr_schedule="cosine", **TINY), str(tmp_path), verbose=0)
    steps = np.arange(9)
    want = np.where(steps < 3, 0.5e-3 * (1 + np.cos(np.pi * steps / 3)), 0.5e-3 * (1 + np.cos(np.pi * (steps - 3) / 6)))
    np.testing.assert_allclose(rates, want, rtol=1e-6, atol=1e-12)
    assert _epochs(tmp_path) == [0, 1, 2]


def test_cosine_cycles_is_keras_cosine_decay_for_one_cycle():
    from keras_pixelcnn.training.schedule import CosineCycles

    ours, theirs = CosineCycles(3e-4, [0, 7]), keras.optimizers.schedules.CosineDecay(3e-4, 7)
    for step in range(10):
        assert float(ours(step)) == pytest.approx(float(theirs(step)), rel=1e-6, abs=1e-12)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(CosineCycles(1.0, [0, 2, 6])))
    assert [float(again(step)) for step in (0, 1, 2, 4, 6, 9)] == pytest.approx([1, 0.5, 1, 0.5, 0, 0], abs=1e-6)
    with pytest.raises(ValueError, match="increasing from 0"):
        CosineCycles(1.0, [0, 3, 3])


def test_ema_checkpoints_hold_the_polyak_average_and_cosine_ends_at_zero(tmp_path, monkeypatch):
    momentum = 0.5
    config = TrainConfig(epochs=2, steps_per_epoch=3, ema_momentum=momentum, lr_schedule="cosine", **TINY)
    raw = []
    original = callbacks_lib.StopOnNaN.on_train_batch_end

    def record(self, batch, logs=None):  # between the swaps, the model holds the raw weights
        raw.append([np.array(w) for w in self.model.trainable_weights])
        original(self, batch, logs)

    monkeypatch.setattr(callbacks_lib.StopOnNaN, "on_train_batch_end", record)
    history = fit(config, str(tmp_path), verbose=0)
    assert len(raw) == 6
    average = raw[0]  # Keras starts the average at the first step's weights
    for weights in raw[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
    saved = keras.saving.load_model(tmp_path / "last.keras", compile=False).trainable_weights
    for got, want in zip(saved, average):
        np.testing.assert_allclose(np.array(got), want, atol=1e-6)
    assert max(float(np.abs(a - w).max()) for a, w in zip(average, raw[-1])) > 5e-5  # not the raw weights
    assert float(history.model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)


def test_init_from_starts_a_run_from_another_runs_weights(tmp_path, monkeypatch):
    first = str(tmp_path / "first")
    fit(TrainConfig(epochs=1, steps_per_epoch=2, **TINY), first, verbose=0)
    # A run dir from before an option existed still resumes (missing keys take their defaults).
    saved = json.loads((tmp_path / "first" / "config.json").read_text())
    (tmp_path / "first" / "config.json").write_text(json.dumps(
        {k: v for k, v in saved.items() if k not in ("lr_schedule", "ema_momentum", "init_from")}))
    assert fit(TrainConfig(epochs=1, steps_per_epoch=2, **TINY), first, verbose=0) is None

    started = {}
    original_begin = callbacks_lib.AtomicModelCheckpoint.on_train_begin

    def record(self, logs=None):
        started["weights"] = self.model.get_weights()
        original_begin(self, logs)

    monkeypatch.setattr(callbacks_lib.AtomicModelCheckpoint, "on_train_begin", record)
    fit(TrainConfig(epochs=1, steps_per_epoch=1, init_from=first, **TINY), str(tmp_path / "second"), verbose=0)
    for got, want in zip(started["weights"], load_run(first)[1].get_weights()):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="weight shapes"):
        fit(TrainConfig(epochs=1, steps_per_epoch=1, init_from=first, **dict(TINY, filters=4)),
            str(tmp_path / "third"), verbose=0)
    with pytest.raises(FileNotFoundError, match="init_from"):
        fit(TrainConfig(epochs=1, steps_per_epoch=1, init_from=str(tmp_path / "nowhere.keras"), **TINY),
            str(tmp_path / "fourth"), verbose=0)
    assert not (tmp_path / "third").exists() and not (tmp_path / "fourth").exists()  # nothing half-made
    with pytest.raises(ValueError, match="ema_momentum"):
        TrainConfig(ema_momentum=1.5)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_nan_loss_stops_with_a_clear_error(tmp_path, monkeypatch):
    from keras_pixelcnn import likelihood

    original = likelihood._mean_nll
    monkeypatch.setattr(likelihood, "_mean_nll", lambda *args: original(*args) * float("nan"))
    with pytest.raises(callbacks_lib.TrainingDiverged, match="loss became nan at epoch 1, batch 1; lower --learning-rate or"):
        fit(TrainConfig(epochs=3, steps_per_epoch=3, **TINY), str(tmp_path), verbose=0)
    assert _epochs(tmp_path) == [0]  # stopped in the first epoch, not after all three
    # The NaN weights are in last.keras only, and every loader refuses them, naming the epoch.
    assert not (tmp_path / "best.keras").exists()
    assert json.loads((tmp_path / "run.json").read_text())["diverged"]["epoch"] == 1
    message = f"{tmp_path / 'last.keras'} holds non-finite weights (training diverged at epoch 1)"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_run(str(tmp_path))
    with pytest.raises(ValueError, match="holds non-finite weights"):
        fit(TrainConfig(epochs=1, steps_per_epoch=1, init_from=str(tmp_path / "last.keras"), **TINY),
            str(tmp_path / "second"), verbose=0)
    assert not (tmp_path / "second").exists()
    # Trained in half precision, the message names float32 as a way out (and a float32 run's does not).
    with pytest.raises(callbacks_lib.TrainingDiverged, match=r"--learning-rate, train in float32 \(--mixed-precision off, into a new --out\) or"):
        fit(TrainConfig(epochs=1, steps_per_epoch=1, mixed_precision="bf16", **TINY), str(tmp_path / "bf16"), verbose=0)
    kpixel = os.path.join(os.path.dirname(sys.executable), "kpixel")
    for args in (["sample", str(tmp_path), "--out", str(tmp_path / "g.png")], ["evaluate", str(tmp_path)],
                 ["export", str(tmp_path), "--format", "tflite", "--out", str(tmp_path / "m.tflite")]):
        result = subprocess.run([kpixel, *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and f"Error: {message}" in result.stderr.splitlines(), result.stderr[-2000:]
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "m.tflite").exists()


def test_fit_puts_the_dtype_policy_back(tmp_path):
    assert keras.config.dtype_policy().name == "float32"
    fit(TrainConfig(epochs=1, steps_per_epoch=1, mixed_precision="on", **TINY), str(tmp_path), verbose=0)
    assert keras.config.dtype_policy().name == "float32"
    _, model = load_run(str(tmp_path))
    assert model.layers[-2].dtype_policy.name == "mixed_float16"  # the run itself trained in float16


def test_evaluate_is_exact_over_the_split(tmp_path):
    fit(TrainConfig(epochs=1, steps_per_epoch=2, **TINY), str(tmp_path), verbose=0)
    result = evaluate(str(tmp_path), split="test", limit=300, batch_size=64)
    _, model = load_run(str(tmp_path))
    images = TrainConfig(**TINY).preprocessing().apply_numpy(data.load("fashion_mnist", "test").images[:300])
    assert result["num_images"] == 300
    np.testing.assert_allclose(result["bits_per_dim"], kp.bits_per_dim(model, images).mean(), rtol=1e-5)


MIRRORED = textwrap.dedent("""
    import json, sys, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_pixelcnn.training import TrainConfig, fit
    common = dict(epochs=1, steps_per_epoch=1, image_size=8, filters=8, num_layers=1, batch_size=16,
                  validation_fraction=0.0, sample_images=0)
    single = fit(TrainConfig(strategy="default", **common), sys.argv[1] + "/one", verbose=0)
    mirrored = fit(TrainConfig(strategy="mirrored", devices=("/cpu:0", "/cpu:1"), **common),
                   sys.argv[1] + "/two", verbose=0)
    print(json.dumps([single.history["loss"][0], mirrored.history["loss"][0]]))
""")


MIRRORED_SGD = textwrap.dedent("""
    import json, sys, keras, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_pixelcnn.data.pipeline import make_dataset
    from keras_pixelcnn.likelihood import loss_and_metric
    from keras_pixelcnn.training import TrainConfig
    from keras_pixelcnn.training.common import compiled_model, split_sources
    from keras_pixelcnn.training.tf_backend import make_strategy
    config = TrainConfig(image_size=8, filters=8, num_layers=1, batch_size=16, validation_fraction=0.0)
    train, _ = split_sources(config)
    if sys.argv[1] == "tfds":  # the same images as a TFDS source: a tf.data.Dataset of (image, label)
        import dataclasses
        images, labels = train.images[:4000], train.labels[:4000]
        train = dataclasses.replace(train, images=None, labels=None, num_examples=len(images),
                                    tf_dataset=tf.data.Dataset.from_tensor_slices((images, labels)))
    def run(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():  # fit's own model, loss and pipeline; plain SGD so the gradient's scale shows
            model = compiled_model(config, (8, 8, 1), None, total_steps=1)
            model.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss_and_metric(model)[0])
        start = model.get_weights()
        data = make_dataset(train, config.preprocessing(), 16, conditional=False, shuffle=True, repeat=True,
                            seed=0, drop_remainder=True)
        model.fit(data, epochs=1, steps_per_epoch=6, verbose=0, shuffle=False)
        return start, model.get_weights()
    start, one = run(make_strategy("default"))
    _, two = run(make_strategy("mirrored", ("/cpu:0", "/cpu:1")))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(one, start))
    apart = max(float(np.abs(a - b).max()) for a, b in zip(one, two))
    print(json.dumps([moved, apart]))
""")


@pytest.mark.parametrize("source", ["arrays", "tfds"])
def test_mirrored_sgd_steps_match_one_device(source):
    """Six SGD steps on two replicas give one device's weights: a sum over replicas would double each step."""
    result = subprocess.run([sys.executable, "-c", MIRRORED_SGD, source], capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    moved, apart = json.loads(result.stdout.strip().splitlines()[-1])
    # Weights moved about 1.3 in six steps; float32 round-off keeps the two runs within ~2e-7.
    assert 0.1 < moved < 10 and apart < 1e-5, (moved, apart)


def test_mirrored_on_two_logical_cpus_matches_one_device(tmp_path):
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path)], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    single, mirrored = json.loads(result.stdout.strip().splitlines()[-1])
    assert abs(single - mirrored) < 1e-5, (single, mirrored)
    assert json.loads((tmp_path / "two" / "run.json").read_text())["replicas"] == 2
    one = keras.saving.load_model(tmp_path / "one" / "last.keras").get_weights()
    two = keras.saving.load_model(tmp_path / "two" / "last.keras").get_weights()
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_two_process_jax_distributed_run_completes_a_step(tmp_path, kpixel):
    pytest.importorskip("jax")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run_dir = str(tmp_path / "run")
    base = [*kpixel, "fit", "--backend", "jax", "--out", run_dir,
            "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--epochs", "1",
            "--steps-per-epoch", "1", "--image-size", "8", "--filters", "8", "--num-layers", "1",
            "--batch-size", "8", "--validation-images", "16"]
    processes = [subprocess.Popen(base + ["--process-id", str(i)], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, cwd=tmp_path) for i in range(2)]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs[0][-3000:]
    assert _epochs(run_dir) == [0]
    status = json.loads(open(os.path.join(run_dir, "run.json")).read())
    assert status["versions"]["backend"] == "jax" and status["completed"]


def test_one_class_out_and_perturb_options_validate_and_round_trip():
    config = TrainConfig(exclude_classes=[5, 2, 5], perturb_rate=0.2)
    assert config.exclude_classes == (2, 5)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="perturb_rate=1.5"):
        TrainConfig(perturb_rate=1.5)
    with pytest.raises(ValueError, match="levels=16"):
        TrainConfig(perturb_rate=0.1, levels=16)
    with pytest.raises(ValueError, match="exclude_classes"):
        TrainConfig(exclude_classes=["shirt"])
