"""Hostile input: every user mistake is one `Error:` line, exit status 2, no traceback, nothing written.

The table `CASES` holds bad invocations of every command. Each runs through the real entry point
(`cli.main` in standalone mode, as the `kpixel` script runs it) in this process, so the whole table
costs no TensorFlow start-up; `test_the_contract_holds_in_real_processes` runs a representative
subset as real `kpixel` processes. Before and after each case the workspace (run dirs, inputs,
outputs) is hashed file by file: a refused command leaves it byte-for-byte as it was.
"""

import contextlib
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib

import keras
import numpy as np
import pytest
from PIL import Image

import keras_pixelcnn as kp
from keras_pixelcnn.cli.main import cli
from keras_pixelcnn.training import TrainConfig

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def write_png16(path, array):
    """A 16-bit PNG (greyscale `(H, W)` or RGB `(H, W, 3)`) written by hand: Pillow cannot write 16-bit RGB."""
    array = np.asarray(array, ">u2")
    height, width = array.shape[:2]

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + row.tobytes() for row in array.reshape(height, -1))
    header = struct.pack(">IIBBBBB", width, height, 16, 2 if array.ndim == 3 else 0, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def write_png_header(path, width, height):
    """A PNG whose header claims `width x height` 8-bit grey pixels and that holds none."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))


def make_run(path, num_classes=None):
    """A run directory as `kpixel fit` leaves it: config.json and best.keras (8x8, untrained)."""
    keras.utils.set_random_seed(0)
    model = kp.build_model("pixelcnn", (8, 8, 1), num_classes, filters=8, num_layers=1)
    path.mkdir()
    config = TrainConfig(image_size=8, filters=8, num_layers=1, conditional=num_classes is not None)
    (path / "config.json").write_text(json.dumps(config.to_dict()))
    model.save(path / "best.keras")
    return model


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Two tiny runs (unconditional, 10 classes) and every bad input file the table uses."""
    root = tmp_path_factory.mktemp("hostile")
    make_run(root / "run")
    make_run(root / "crun", num_classes=10)
    (root / "garbage_run").mkdir()
    (root / "garbage_run" / "config.json").write_text("not json {")
    files = {
        "cfg_list.json": "[1, 2]", "cfg_null.json": "null", "cfg_str_filters.json": '{"filters": "8"}',
        "cfg_garbage.json": "{filters: 8", "cfg_types.json": '{"conditional": "yes"}',
        "cfg_options.json": '{"model_options": {"bogus": 1}}', "cfg_devices.json": '{"devices": 5}',
        "cfg_fraction.json": '{"validation_fraction": "0.1"}', "cfg_classes.json": '{"exclude_classes": 3.5}',
        "cfg_kernel.json": '{"model_options": {"kernel_size": 4}}',
        "a_file": "I am a file", "garbage.png": "not a picture", "truncated.keras": "PK\x03\x04",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / "img.png")
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(root / "mask.png")
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(root / "img_9x8.png")
    write_png16(root / "rgb16.png", rng.integers(0, 65536, (8, 8, 3)))
    write_png_header(root / "huge.png", 20000, 20000)
    write_png_header(root / "wide.png", 9000, 9000)
    write_png_header(root / "bomb_warning.png", 10000, 10000)  # over Pillow's limit, under twice it: a warning
    (root / "bombs").mkdir()
    write_png_header(root / "bombs" / "a.png", 20000, 20000)
    np.save(root / "two.npy", np.zeros((2, 8, 8), np.uint8))
    np.save(root / "no_images.npy", np.zeros((0, 8, 8), np.uint8))
    (root / "deep.json").write_text("[" * 100000 + "]" * 100000)
    for name, shape in (("dense_run", (8, 8, 1)), ("flat_run", (4,))):  # Keras models that are not PixelCNNs
        (root / name).mkdir()
        (root / name / "config.json").write_text((root / "run" / "config.json").read_text())
        keras.Sequential([keras.Input(shape), keras.layers.Dense(3)]).save(root / name / "best.keras")
    np.save(root / "zero_d.npy", np.array(3, np.uint8))
    np.save(root / "float.npy", np.zeros((8, 8)))
    np.save(root / "big_values.npy", np.full((8, 8), 300, np.int32))
    np.save(root / "five_d.npy", np.zeros((1, 1, 8, 8, 1), np.uint8))
    (root / "out").mkdir()
    # The files a trained run holds besides its models, which no output may replace.
    (root / "run" / "history.csv").write_text("epoch,loss\n0,5.5\n")
    (root / "run" / "best.json").write_text('{"epoch": 1, "monitor": "val_bits_per_dim", "value": 8.0}\n')
    (root / "run" / "backup").mkdir()
    (root / "run" / "backup" / "training_metadata.json").write_text('{"epoch": 0}')
    (root / "run" / ".lock").write_text("1\n")
    np.save(root / "timedelta.npy", np.zeros((8, 8), "timedelta64[s]"))
    tiny = {"data_dir": FASHION_MNIST, "image_size": 8, "filters": 4, "num_layers": 1, "epochs": 1,
            "steps_per_epoch": 1, "batch_size": 4, "sample_images": 0}  # a second to train, had it been taken
    for name, values in {"cfg_fraction_0.json": {"validation_fraction": 0.001},
                         "cfg_fraction_1.json": {"validation_fraction": 0.999},
                         "cfg_kernel_huge.json": {"model_options": {"kernel_size": 1000001}},
                         "cfg_devices_absent.json": {"devices": ["/gpu:7"]},
                         "cfg_devices_empty.json": {"devices": []}}.items():
        (root / name).write_text(json.dumps({**tiny, **values}))
    (root / "cfg_twice.json").write_text(json.dumps(tiny)[:-1] + ', "filters": 9}')
    (root / "cfg_tiny.json").write_text(json.dumps(tiny))
    return root


def tree_digest(root):
    """{relative path: sha256 of its bytes (None for a directory)} of everything under `root`."""
    found = {}
    for directory, subdirs, names in os.walk(root):
        for name in subdirs:
            found[os.path.relpath(os.path.join(directory, name), root)] = None
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return found


F = FASHION_MNIST
# (case id, kpixel arguments); {w} is the workspace, {new} a run dir that must not come to exist.
CASES = [
    # fit: options, from flags or a --config file, refused before the run dir exists
    ("fit-filters-0", "fit --out {new} --filters 0"),
    ("fit-num-layers-0", "fit --out {new} --num-layers 0"),
    ("fit-config-list", "fit --out {new} --config {w}/cfg_list.json"),
    ("fit-config-null", "fit --out {new} --config {w}/cfg_null.json"),
    ("fit-config-filters-string", "fit --out {new} --config {w}/cfg_str_filters.json"),
    ("fit-config-not-json", "fit --out {new} --config {w}/cfg_garbage.json"),
    ("fit-config-missing", "fit --out {new} --config {w}/nothing.json"),
    ("fit-config-conditional-string", "fit --out {new} --config {w}/cfg_types.json"),
    ("fit-config-unknown-model-option", "fit --out {new} --config {w}/cfg_options.json"),
    ("fit-config-devices-int", "fit --out {new} --config {w}/cfg_devices.json"),
    ("fit-config-fraction-string", "fit --out {new} --config {w}/cfg_fraction.json"),
    ("fit-config-classes-float", "fit --out {new} --config {w}/cfg_classes.json"),
    ("fit-steps-negative", "fit --out {new} --steps-per-epoch -5"),
    ("fit-steps-0", "fit --out {new} --steps-per-epoch 0"),
    ("fit-validation-images-0", "fit --out {new} --validation-images 0"),
    ("fit-learning-rate-nan", "fit --out {new} --learning-rate nan"),
    ("fit-learning-rate-negative", "fit --out {new} --learning-rate -1"),
    ("fit-ema-above-1", "fit --out {new} --ema-momentum 1.5"),
    ("fit-levels-1", "fit --out {new} --levels 1"),
    ("fit-seed-negative", "fit --out {new} --seed -1"),
    ("fit-batch-size-0", "fit --out {new} --batch-size 0"),
    ("fit-epochs-0", "fit --out {new} --epochs 0"),
    ("fit-image-size-0", "fit --out {new} --image-size 0"),
    ("fit-sample-images-negative", "fit --out {new} --sample-images -1"),
    ("fit-exclude-classes-words", "fit --out {new} --exclude-classes a,b"),
    ("fit-perturb-with-levels", "fit --out {new} --perturb-rate 0.5 --levels 16"),
    ("fit-unknown-model", "fit --out {new} --model nosuch"),
    ("fit-num-processes-0", "fit --out {new} --num-processes 0"),
    ("fit-out-under-a-file", "fit --out {w}/a_file/run"),
    ("fit-out-is-a-file", "fit --out {w}/a_file"),
    ("fit-other-config-in-run", "fit --out {w}/run --filters 16"),
    ("fit-garbage-config-in-run", "fit --out {w}/garbage_run --filters 8"),
    # fit: refused once the data is read, still before anything is written
    ("fit-exclude-class-12", f"fit --out {{new}} --data-dir {F} --exclude-classes 12"),
    ("fit-crop-bigger-than-images", f"fit --out {{new}} --data-dir {F} --crop 40"),
    ("fit-init-from-missing", f"fit --out {{new}} --data-dir {F} --image-size 8 --init-from {{w}}/none.keras"),
    ("fit-pixelcnn-pp-image-size-6", f"fit --out {{new}} --data-dir {F} --model pixelcnn_pp --image-size 6"),
    ("fit-even-kernel-size", f"fit --out {{new}} --data-dir {F} --image-size 8 --config {{w}}/cfg_kernel.json"),
    ("fit-dataset-folder-missing", "fit --out {new} --dataset folder:{w}/no_such_folder"),
    ("fit-conditional-unlabelled", "fit --out {new} --dataset folder:{w}/out --conditional"),
    ("fit-config-nested-deep", "fit --out {new} --config {w}/deep.json"),
    ("fit-folder-bomb", "fit --out {new} --dataset folder:{w}/bombs"),
    ("fit-init-from-not-a-pixelcnn", f"fit --out {{new}} --data-dir {F} --image-size 8 --init-from {{w}}/dense_run/best.keras"),
    # evaluate
    ("evaluate-limit-0", "evaluate {w}/run --limit 0"),
    ("evaluate-limit-negative", "evaluate {w}/run --limit -1"),
    ("evaluate-batch-size-0", "evaluate {w}/run --batch-size 0"),
    ("evaluate-empty-split", f"evaluate {{w}}/run --data-dir {F} --split test[5:2]"),
    ("evaluate-no-run", "evaluate {w}/no_run"),
    ("evaluate-garbage-config", "evaluate {w}/garbage_run"),
    ("evaluate-neither", "evaluate"),
    ("evaluate-both", "evaluate {w}/run --pretrained fashion_mnist"),
    ("evaluate-truncated-keras", "evaluate {w}/truncated.keras"),
    ("evaluate-batch-size-above-int64", "evaluate {w}/run --batch-size 99999999999999999999"),
    ("evaluate-folder-bomb", "evaluate {w}/run --dataset folder:{w}/bombs"),
    ("evaluate-not-a-pixelcnn", "evaluate {w}/dense_run"),
    # sample
    ("sample-num-0", "sample {w}/run --num 0 --out {w}/out/s.png"),
    ("sample-num-1e8", "sample {w}/run --num 100000000 --out {w}/out/s.png"),
    ("sample-temperature-0", "sample {w}/run --temperature 0 --out {w}/out/s.png"),
    ("sample-temperature-nan", "sample {w}/run --temperature nan --out {w}/out/s.png"),
    ("sample-temperature-inf", "sample {w}/run --temperature inf --out {w}/out/s.png"),
    ("sample-batch-size-negative", "sample {w}/run --batch-size -1 --out {w}/out/s.png"),
    ("sample-seed-negative", "sample {w}/run --seed -1 --out {w}/out/s.png"),
    ("sample-label-negative", "sample {w}/crun --label -1 --out {w}/out/s.png"),
    ("sample-label-10-of-10", "sample {w}/crun --label 10 --out {w}/out/s.png"),
    ("sample-label-unconditional", "sample {w}/run --label 3 --out {w}/out/s.png"),
    ("sample-out-under-a-file", "sample {w}/run --num 1 --out {w}/a_file/s.png"),
    ("sample-npy-under-a-file", "sample {w}/run --num 1 --out {w}/out/s.png --npy {w}/a_file/s.npy"),
    ("sample-out-is-a-dir", "sample {w}/run --num 1 --out {w}/out"),
    ("sample-run-missing", "sample {w}/no_run --out {w}/out/s.png"),
    ("sample-npy-is-out", "sample {w}/run --num 1 --out {w}/out/s.png --npy {w}/out/./s.png"),
    ("sample-out-is-the-model", "sample {w}/run --num 1 --out {w}/run/best.keras"),
    ("sample-temperature-below-minimum", "sample {w}/run --temperature 1e-40 --out {w}/out/s.png"),
    ("sample-seed-above-int64", "sample {w}/run --seed 99999999999999999999 --out {w}/out/s.png"),
    ("sample-not-a-pixelcnn", "sample {w}/dense_run --out {w}/out/s.png"),
    ("sample-input-not-images", "sample {w}/flat_run --out {w}/out/s.png"),
    # complete
    ("complete-16-bit-colour", "complete {w}/run --image {w}/rgb16.png --mask {w}/mask.png --out {w}/out/c.png"),
    ("complete-huge-header", "complete {w}/run --image {w}/huge.png --mask {w}/mask.png --out {w}/out/c.png"),
    ("complete-wide-header", "complete {w}/run --image {w}/wide.png --mask {w}/mask.png --out {w}/out/c.png"),
    ("complete-0-d-npy", "complete {w}/run --image {w}/zero_d.npy --mask {w}/mask.png --out {w}/out/c.png"),
    ("complete-mask-size", "complete {w}/run --image {w}/img.png --mask {w}/img_9x8.png --out {w}/out/c.png"),
    ("complete-num-0", "complete {w}/run --image {w}/img.png --mask {w}/mask.png --num 0 --out {w}/out/c.png"),
    ("complete-batch-size-0", "complete {w}/run --image {w}/img.png --mask {w}/mask.png --batch-size 0 "
                              "--out {w}/out/c.png"),
    ("complete-label-float", "complete {w}/crun --image {w}/img.png --mask {w}/mask.png --label 3.7 "
                             "--out {w}/out/c.png"),
    ("complete-label-10", "complete {w}/crun --image {w}/img.png --mask {w}/mask.png --label 10 "
                          "--out {w}/out/c.png"),
    ("complete-image-missing", "complete {w}/run --image {w}/none.png --mask {w}/mask.png --out {w}/out/c.png"),
    ("complete-image-is-a-dir", "complete {w}/run --image {w}/out --mask {w}/mask.png --out {w}/out/c.png"),
    ("complete-bomb-warning", "complete {w}/run --image {w}/bomb_warning.png --mask {w}/mask.png --out {w}/out/c.png"),
    ("complete-two-images", "complete {w}/run --image {w}/two.npy --mask {w}/mask.png --out {w}/out/c.png"),
    ("complete-no-images", "complete {w}/run --image {w}/no_images.npy --mask {w}/mask.png --out {w}/out/c.png"),
    ("complete-two-masks", "complete {w}/run --image {w}/img.png --mask {w}/two.npy --out {w}/out/c.png"),
    ("complete-out-is-the-mask", "complete {w}/run --image {w}/img.png --mask {w}/mask.png --out {w}/mask.png"),
    ("complete-npy-is-out", "complete {w}/run --image {w}/img.png --mask {w}/mask.png --out {w}/out/c.png "
                            "--npy {w}/out/c.png"),
    # score
    ("score-batch-size-negative", "score {w}/run {w}/img.png --batch-size -1"),
    ("score-batch-size-0", "score {w}/run {w}/img.png --batch-size 0"),
    ("score-label-negative", "score {w}/crun {w}/img.png --label -1"),
    ("score-label-10", "score {w}/crun {w}/img.png --label 10"),
    ("score-label-unconditional", "score {w}/run {w}/img.png --label 0"),
    ("score-huge-header", "score {w}/run {w}/huge.png"),
    ("score-16-bit-colour", "score {w}/run {w}/rgb16.png"),
    ("score-float-npy", "score {w}/run {w}/float.npy"),
    ("score-npy-values-300", "score {w}/run {w}/big_values.npy"),
    ("score-5-d-npy", "score {w}/run {w}/five_d.npy"),
    ("score-not-a-picture", "score {w}/run {w}/garbage.png"),
    ("score-wrong-size", "score {w}/run {w}/img_9x8.png"),
    ("score-csv-under-a-file", "score {w}/run {w}/img.png --csv {w}/a_file/s.csv"),
    ("score-background-missing", "score {w}/run {w}/img.png --background {w}/no_run"),
    ("score-no-images", "score {w}/run"),
    ("score-empty-npy", "score {w}/run {w}/no_images.npy"),
    ("score-csv-is-an-input", "score {w}/run {w}/img.png --csv {w}/./img.png"),
    ("score-csv-is-the-config", "score {w}/run {w}/img.png --csv {w}/run/config.json"),
    ("score-input-not-images", "score {w}/flat_run {w}/img.png"),
    ("score-background-not-a-pixelcnn", "score {w}/run {w}/img.png --background {w}/dense_run"),
    # export
    ("export-version-0", "export {w}/run --format savedmodel --out {w}/out/serving --version 0"),
    ("export-name-escapes", "export {w}/run --format savedmodel --out {w}/out/serving --name .."),
    ("export-tflite-batch-0", "export {w}/run --format tflite --out {w}/out/m.tflite --batch-size 0"),
    ("export-out-under-a-file", "export {w}/run --format savedmodel --out {w}/a_file/serving"),
    ("export-tflite-out-is-a-dir", "export {w}/run --format tflite --out {w}/out"),
    ("export-run-missing", "export {w}/no_run --format tflite --out {w}/out/m.tflite"),
    ("export-format-unknown", "export {w}/run --format onnx --out {w}/out/m.onnx"),
    ("export-version-above-int64", "export {w}/run --format savedmodel --out {w}/out/serving --version 9223372036854775808"),
    ("export-max-batch-0", "export {w}/run --format savedmodel --out {w}/out/serving --max-batch 0"),
    ("export-max-batch-huge", "export {w}/run --format savedmodel --out {w}/out/serving --max-batch 100000000"),
    ("export-max-batch-tflite", "export {w}/run --format tflite --out {w}/out/m.tflite --max-batch 4"),
    ("export-tflite-batch-huge", "export {w}/run --format tflite --out {w}/out/m.tflite --batch-size 100000000"),
    ("export-tflite-out-is-the-model", "export {w}/run --format tflite --out {w}/run/best.keras"),
    ("export-not-a-pixelcnn", "export {w}/dense_run --format savedmodel --out {w}/out/serving"),
    # A second hostile pass. A template that is a list keeps its empty strings and newlines.
    ("sample-out-is-the-history", "sample {w}/run --num 1 --out {w}/run/history.csv"),
    ("sample-npy-is-the-lock", "sample {w}/run --num 1 --out {w}/out/s.png --npy {w}/run/.lock"),
    ("score-csv-is-best-json", "score {w}/run {w}/img.png --csv {w}/run/best.json"),
    ("export-tflite-out-is-the-backup", "export {w}/run --format tflite --out {w}/run/backup/training_metadata.json"),
    ("sample-out-empty", ["sample", "{w}/run", "--num", "1", "--out", ""]),
    ("sample-out-jpg", "sample {w}/run --num 1 --out {w}/out/s.jpg"),
    ("complete-out-without-suffix", "complete {w}/run --image {w}/img.png --mask {w}/mask.png --out {w}/out/c"),
    ("score-csv-empty", ["score", "{w}/run", "{w}/img.png", "--csv", ""]),
    ("score-background-empty", ["score", "{w}/run", "{w}/img.png", "--background", ""]),
    ("export-name-empty", ["export", "{w}/run", "--format", "savedmodel", "--out", "{w}/out/serving", "--name", ""]),
    ("export-name-newline", ["export", "{w}/run", "--format", "savedmodel", "--out", "{w}/out/serving", "--name", "a\nb"]),
    ("export-name-too-long", "export {w}/run --format savedmodel --out {w}/out/serving --name " + "x" * 300),
    ("evaluate-dataset-empty", ["evaluate", "{w}/run", "--dataset", ""]),
    ("evaluate-data-dir-empty", ["evaluate", "{w}/run", "--data-dir", ""]),
    ("score-label-beyond-int64", "score {w}/crun {w}/img.png --label 99999999999999999999"),
    ("score-timedelta-npy", "score {w}/run {w}/timedelta.npy"),
    ("sample-temperature-above-float32", "sample {w}/run --temperature 1e39 --out {w}/out/s.png"),
    ("fit-exclude-every-class", f"fit --out {{new}} --data-dir {F} --image-size 8 --exclude-classes 0,1,2,3,4,5,6,7,8,9"),
    ("fit-validation-fraction-rounds-to-0", "fit --out {new} --config {w}/cfg_fraction_0.json"),
    ("fit-validation-fraction-rounds-to-100", "fit --out {new} --config {w}/cfg_fraction_1.json"),
    ("fit-kernel-size-huge", "fit --out {new} --config {w}/cfg_kernel_huge.json"),
    ("fit-devices-absent", "fit --out {new} --config {w}/cfg_devices_absent.json"),
    ("fit-devices-empty", "fit --out {new} --config {w}/cfg_devices_empty.json"),
    ("fit-config-key-twice", "fit --out {new} --config {w}/cfg_twice.json"),
    ("fit-coordinator-alone", "fit --out {new} --config {w}/cfg_tiny.json --coordinator localhost:1234"),
    ("export-tflite-version", "export {w}/run --format tflite --out {w}/out/m.tflite --version 7"),
    ("export-tflite-name", "export {w}/run --format tflite --out {w}/out/m.tflite --name m"),
    ("export-tflite-jit-compile", "export {w}/run --format tflite --out {w}/out/m.tflite --jit-compile"),
    ("export-savedmodel-batch-size", "export {w}/run --format savedmodel --out {w}/out/serving --batch-size 4"),
]
# Run as real processes too: one per command and kind of mistake.
IN_PROCESSES = ["fit-config-filters-string", "fit-steps-negative", "fit-out-under-a-file", "evaluate-limit-0",
                "sample-label-negative", "complete-huge-header", "score-batch-size-negative",
                "export-version-0"]


def arguments(template, work):
    if isinstance(template, list):
        return [part.format(w=work, new=work / "new_run") for part in template]
    return template.format(w=work, new=work / "new_run").split()


def run_in_process(args):
    """(exit status, stdout, stderr) of `kpixel ARGS` through the console script's own entry point."""
    out, err = io.StringIO(), io.StringIO()
    status = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(args, prog_name="kpixel", standalone_mode=True)
        except SystemExit as error:
            status = error.code
        except Exception:  # what the console script would print as a traceback
            import traceback

            traceback.print_exc(file=err)
            status = 1
    return status, out.getvalue(), err.getvalue()


def assert_one_error_line(status, stderr, case):
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in stderr, f"{case}: exit {status}\n{stderr[-3000:]}"
    return errors[0]


@pytest.mark.parametrize("case,template", CASES, ids=[case for case, _ in CASES])
def test_a_mistake_is_one_error_line_and_writes_nothing(work, case, template):
    before = tree_digest(work)
    status, _, stderr = run_in_process(arguments(template, work))
    line = assert_one_error_line(status, stderr, case)
    assert tree_digest(work) == before, f"{case} changed the workspace"
    assert not (work / "new_run").exists()
    assert len(line) > len("Error: ") + 10


# What some of the messages must say: the option, its accepted range, the file.
MESSAGES = {
    "fit-filters-0": "filters to be an integer in [1, 4096]",
    "fit-config-filters-string": "Received: filters='8'",
    "fit-config-list": "cfg_list.json",
    "fit-config-not-json": "cfg_garbage.json is not valid JSON",
    "fit-steps-negative": "steps_per_epoch to be an integer in [1,",
    "fit-validation-images-0": "validation_images to be an integer in [1,",
    "fit-out-under-a-file": "a_file is a file",
    "evaluate-limit-negative": "--limit to be an integer >= 1",
    "evaluate-empty-split": "holds no images",
    "evaluate-garbage-config": "garbage_run/config.json is not valid JSON",
    "sample-label-10-of-10": "labels in [0, 10)",
    "sample-num-1e8": "--num in [1, 100000]",
    "sample-out-under-a-file": "a_file is a file",
    "fit-pixelcnn-pp-image-size-6": "divisible by 4",
    "complete-huge-header": "huge.png, whose header claims more than 89478485 pixels (Pillow's decompression-bomb",
    "complete-bomb-warning": "bomb_warning.png, whose header claims more than 89478485 pixels",
    "fit-folder-bomb": "a.png, whose header claims more than 89478485 pixels",
    "fit-config-nested-deep": "deep.json is not a config: JSON nested too deep",
    "complete-two-images": "Expected one image in --image",
    "complete-two-masks": "Expected one image in --mask",
    "complete-no-images": "Expected at least one image in",
    "complete-out-is-the-mask": "Expected --out to be a file of its own. Received: ",
    "complete-npy-is-out": "which is also --out",
    "sample-out-is-the-model": "best.keras, which is also an input",
    "sample-temperature-below-minimum": "finite number >= 1e-30",
    "score-csv-is-an-input": "img.png, which is also an input",
    "score-input-not-images": "ending in a PixelDistribution layer",
    "evaluate-batch-size-above-int64": "--batch-size to be an integer in [1, 65536]",
    "export-version-above-int64": "below 2**63",
    "export-max-batch-huge": "--max-batch to be an integer in [1, 65536]",
    "export-max-batch-tflite": "--max-batch is for --format savedmodel",
    "export-tflite-batch-huge": "at most 65536",
    "export-tflite-out-is-the-model": "best.keras, which is also an input",
    "complete-wide-header": "Received: 9000x9000 (height x width) in",
    "complete-0-d-npy": "Received: shape ()",
    "complete-16-bit-colour": "16-bit colour",
    "score-batch-size-negative": "batch_size to be an integer >= 1",
    "score-float-npy": "float.npy",
    "sample-out-is-the-history": "history.csv, which is also an input",
    "sample-out-empty": "Expected --out to be a path. Received: ''",
    "sample-out-jpg": "Expected --out to name a .png file",
    "complete-out-without-suffix": "Expected --out to name a .png file",
    "score-csv-empty": "Expected --csv to be a path",
    "export-name-newline": "without '/' or control characters",
    "export-name-too-long": "a model name of at most 200 bytes",
    "evaluate-dataset-empty": "--dataset to be a non-empty string",
    "score-label-beyond-int64": "Expected labels in [0, 10)",
    "score-timedelta-npy": "Received dtype timedelta64[s]",
    "sample-temperature-above-float32": "temperature to be a finite number >= 1e-30 and <= 3.40282e+38",
    "fit-exclude-every-class": "holds no images",
    "fit-validation-fraction-rounds-to-0": "validation_fraction to be 0 or in [0.005, 0.995)",
    "fit-kernel-size-huge": "kernel_size to be an integer in [1, 255]",
    "export-tflite-version": "--version is not for --format tflite",
    "fit-devices-absent": "Expected devices of this machine",
    "fit-config-key-twice": "cfg_twice.json gives 'filters' more than once",
    "export-savedmodel-batch-size": "--batch-size is not for --format savedmodel",
}


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_messages_name_the_option_and_range(work, case):
    _, _, stderr = run_in_process(arguments(dict(CASES)[case], work))
    assert MESSAGES[case] in stderr, stderr[-2000:]


def test_the_contract_holds_in_real_processes(work, kpixel):
    """Exit status 2, one `Error:` line, no traceback, nothing written: as the user's shell sees it."""
    before = tree_digest(work)
    processes = {case: subprocess.Popen([*kpixel, *arguments(dict(CASES)[case], work)], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, cwd=work)
                 for case in IN_PROCESSES}
    for case, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert_one_error_line(process.returncode, stderr, case)
    assert tree_digest(work) == before


def test_the_table_covers_every_command():
    commands = {(template if isinstance(template, list) else template.split())[0] for _, template in CASES}
    assert commands == {"fit", "evaluate", "sample", "complete", "score", "export"}
    assert len(CASES) >= 60 and len({case for case, _ in CASES}) == len(CASES)


# --- The run lock: two real processes -----------------------------------------------------------

def test_a_second_fit_on_a_training_run_is_refused_and_a_killed_run_leaves_no_lock(tmp_path, kpixel):
    from keras_pixelcnn.training.run_dir import RunLock

    run = tmp_path / "run"
    # A long epoch, so the first process is still training when the second one starts.
    command = [*kpixel, "fit", "--out", str(run), "--data-dir", FASHION_MNIST, "--image-size", "8", "--filters", "4",
               "--num-layers", "1", "--epochs", "1", "--steps-per-epoch", "1000000", "--batch-size", "4",
               "--validation-images", "8", "--sample-images", "0"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not ((run / ".lock").exists() and (run / ".lock").read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()[-2000:]
            time.sleep(0.5)
        # Refused within seconds; without a lock it would train (until this timeout fails the test).
        second = subprocess.run(command, capture_output=True, text=True, timeout=150)
        assert first.poll() is None, "the first run ended before the second was refused"
        line = assert_one_error_line(second.returncode, second.stderr, "second fit")
        assert line == f"Error: {run} is in use by process {first.pid}"
    finally:
        first.kill()  # SIGKILL: no clean-up code runs
        first.wait()
    # The lock file is left behind with the dead process's id, but the kernel dropped the lock.
    assert (run / ".lock").read_text().strip() == str(first.pid)
    with RunLock(str(run)) as lock:
        lock.acquire()
        assert (run / ".lock").read_text().strip() == str(os.getpid())


def test_the_lock_refuses_a_second_holder_in_another_process(tmp_path):
    from keras_pixelcnn.training.run_dir import RunLock

    run = tmp_path / "run"
    code = ("import sys, time\nfrom keras_pixelcnn.training.run_dir import RunLock\n"
            "lock = RunLock(sys.argv[1])\nlock.acquire()\nprint('locked', flush=True)\ntime.sleep(300)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=rf"^{run} is in use by process {holder.pid}$"):
            RunLock(str(run)).acquire()
    finally:
        holder.kill()
        holder.wait()
    RunLock(str(run)).acquire()


# --- Files keep the user's umask --------------------------------------------------------------------

@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_keep_the_umask(tmp_path, umask, mode):
    from keras_pixelcnn.data.images import atomic_path, save_png, write_json

    previous = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        save_png(tmp_path / "a.png", np.zeros((2, 2, 1), np.uint8))
        with atomic_path(tmp_path / "a.npy") as temporary:
            np.save(temporary, np.zeros(3))
    finally:
        os.umask(previous)
    modes = {name: os.stat(tmp_path / name).st_mode & 0o777 for name in ("a.json", "a.png", "a.npy")}
    assert modes == {name: mode for name in modes}


# --- Image files ------------------------------------------------------------------------------------

def test_a_16_bit_grey_png_is_scaled_to_8_bits(tmp_path):
    from keras_pixelcnn.data.images import read_images

    values = np.random.default_rng(1).integers(0, 65536, (8, 8))
    values[0, :4] = [0, 65535, 128, 32768]
    write_png16(tmp_path / "grey16.png", values)
    expected = np.round(values * 255 / 65535).astype(np.uint8)
    grey, _ = read_images([str(tmp_path / "grey16.png")], (8, 8, 1))
    np.testing.assert_array_equal(grey[0, ..., 0], expected)
    assert list(grey[0, 0, :4, 0]) == [0, 255, 0, 128]
    colour, _ = read_images([str(tmp_path / "grey16.png")], (8, 8, 3))
    np.testing.assert_array_equal(colour[0], np.repeat(expected[..., None], 3, axis=-1))


def test_image_sizes_come_from_the_header_before_any_pixel_is_decoded(tmp_path, monkeypatch):
    from PIL import ImageFile

    from keras_pixelcnn.data.images import read_images

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "big.png")
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self) or None)
    with pytest.raises(ValueError, match=r"Received: 16x16 \(height x width\) in .*big.png"):
        read_images([str(tmp_path / "big.png")], (8, 8, 1))
    assert decoded == []


# --- The Python API: ValueError, never a TensorFlow error ---------------------------------------------

import hypothesis  # noqa: E402  (the test extra; a plain import, so a missing one fails instead of skipping)
from hypothesis import given, settings, strategies as st  # noqa: E402


@pytest.fixture(scope="module")
def conditional_model():
    keras.utils.set_random_seed(0)
    return kp.build_model("pixelcnn", (4, 4, 1), 10, filters=4, num_layers=1)


IMAGES = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 1))
BAD_LABELS = st.one_of(
    st.integers(max_value=-1), st.integers(min_value=10, max_value=2**40),
    st.floats(allow_nan=True).filter(lambda x: not float(x).is_integer()), st.floats(0, 9).map(float),
    st.booleans(), st.text(max_size=3), st.lists(st.integers(0, 9), min_size=2, max_size=2),
    st.lists(st.integers(0, 9), min_size=4, max_size=6),
)


@settings(max_examples=40, deadline=None)
@given(labels=BAD_LABELS)
def test_bad_labels_are_a_value_error(conditional_model, labels):
    with pytest.raises(ValueError):
        kp.log_prob(conditional_model, IMAGES, labels)


@settings(max_examples=15, deadline=None)
@given(label=st.integers(0, 9), kind=st.sampled_from([int, np.int8, np.uint8, np.int32, np.int64]))
def test_integer_labels_of_any_kind_are_taken(conditional_model, label, kind):
    expected = kp.log_prob(conditional_model, IMAGES, [label] * 3)
    np.testing.assert_array_equal(kp.log_prob(conditional_model, IMAGES, kind(label)), expected)
    np.testing.assert_array_equal(kp.log_prob(conditional_model, IMAGES, np.full(3, label, kind)), expected)


@settings(max_examples=30, deadline=None)
@given(batch_size=st.one_of(st.integers(max_value=0), st.floats(), st.booleans(), st.none(), st.text(max_size=2)))
def test_bad_batch_sizes_are_a_value_error(conditional_model, batch_size):
    for call in (lambda: kp.log_prob(conditional_model, IMAGES, [0, 1, 2], batch_size=batch_size),
                 lambda: kp.score(conditional_model, IMAGES, batch_size=batch_size)):
        with pytest.raises(ValueError, match="batch_size"):
            call()
    if batch_size is not None:  # None means "all at once" for the samplers
        with pytest.raises(ValueError, match="batch_size"):
            kp.sample(conditional_model, 2, labels=0, batch_size=batch_size)


@settings(max_examples=30, deadline=None)
@given(temperature=st.one_of(st.floats(max_value=0), st.just(float("inf")), st.just(float("nan")),
                             st.booleans(), st.text(max_size=2)))
def test_bad_temperatures_are_a_value_error(conditional_model, temperature):
    with pytest.raises(ValueError, match="temperature"):
        kp.sample(conditional_model, 2, labels=0, temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        kp.complete(conditional_model, IMAGES, np.ones((4, 4), bool), labels=0, temperature=temperature)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=5),
       dtype=st.sampled_from([np.float32, np.int32, np.uint8, bool]))
def test_bad_image_shapes_and_dtypes_are_a_value_error(conditional_model, shape, dtype):
    images = np.zeros(shape, dtype)
    hypothesis.assume(not (images.ndim == 4 and images.shape[1:] == (4, 4, 1) and dtype in (np.int32, np.uint8)))
    with pytest.raises(ValueError):
        kp.log_prob(conditional_model, images, 0)


def test_numpy_scalars_are_valid_numbers(conditional_model):
    images = kp.sample(conditional_model, np.int64(3), seed=np.uint32(2), labels=np.int16(4),
                       temperature=np.float32(0.5), batch_size=np.int64(2))
    assert images.shape == (3, 4, 4, 1)


def test_complete_batches_like_sample(conditional_model):
    import inspect

    assert inspect.signature(kp.complete).parameters["batch_size"].default == 64
    assert inspect.signature(kp.sample).parameters["batch_size"].default == 64
    images = np.repeat(IMAGES[:1], 5, axis=0)
    known = np.zeros((4, 4), bool)
    known[:2] = True
    done = []
    batched = kp.complete(conditional_model, images, known, seed=3, labels=1, batch_size=2, progress=done.append)
    assert done == [2, 4, 5]
    np.testing.assert_array_equal(batched, kp.complete(conditional_model, images, known, seed=3, labels=1,
                                                       batch_size=None))
    np.testing.assert_array_equal(batched[:, :2], images[:, :2])


def test_a_temperature_near_0_is_greedy_and_below_the_minimum_is_refused(conditional_model):
    """T = 1e-30 draws the most likely values (argmax of `kp.log_prob`'s conditionals); below it,
    `log p / T` overflows float32 and every value would tie (T = 1e-38 drew zeros)."""
    greedy = kp.sample(conditional_model, 2, seed=5, labels=1, greedy=True)
    np.testing.assert_array_equal(kp.sample(conditional_model, 2, seed=5, labels=1, temperature=1e-30), greedy)
    # Independently of the sampler: each greedy value is the argmax of its conditional given the pixels before it.
    for image in greedy:
        for row in range(4):
            for col in range(4):
                candidates = np.repeat(image[None], 256, axis=0)
                candidates[:, row, col, 0] = np.arange(256)
                # log p(x[row, col] = v | the pixels before it), per sub-pixel (reduce=False).
                scores = kp.log_prob(conditional_model, candidates, np.full(256, 1), reduce=False)[:, row, col, 0]
                assert image[row, col, 0] == np.argmax(scores)
    for temperature in (9.9e-31, 1e-38, 5e-324):
        with pytest.raises(ValueError, match="finite number >= 1e-30"):
            kp.sample(conditional_model, 1, labels=0, temperature=temperature)


# --- Outputs ---------------------------------------------------------------------------------------

def test_an_existing_output_file_is_replaced_and_outputs_are_distinct(tmp_path):
    from keras_pixelcnn.data.images import check_outputs, check_writable

    (tmp_path / "old.png").write_bytes(b"old")
    check_writable(str(tmp_path / "old.png"))  # refused before: "old.png is a file"
    check_outputs({"--out": str(tmp_path / "old.png"), "--npy": str(tmp_path / "old.npy")}, inputs=[str(tmp_path / "in.png")])
    with pytest.raises(ValueError, match="which is also --out"):
        check_outputs({"--out": str(tmp_path / "a.png"), "--npy": str(tmp_path / "x" / ".." / "a.png")})
    os.symlink(tmp_path / "old.png", tmp_path / "link.png")
    with pytest.raises(ValueError, match="which is also an input"):
        check_outputs({"--csv": str(tmp_path / "link.png")}, inputs=[str(tmp_path / "old.png")])


# --- The export lock --------------------------------------------------------------------------------

def test_a_second_export_into_the_same_model_is_refused(work, tmp_path):
    """While another process holds OUT/NAME (an export writing a version), `kpixel export` is refused."""
    serving = tmp_path / "serving"
    code = ("import sys, time\nfrom keras_pixelcnn.training.run_dir import RunLock\n"
            "lock = RunLock(sys.argv[1])\nlock.acquire()\nprint('locked', flush=True)\ntime.sleep(300)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(serving / "run")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = tree_digest(serving)
        status, _, stderr = run_in_process(["export", str(work / "run"), "--format", "savedmodel", "--out",
                                            str(serving), "--version", "3"])
        line = assert_one_error_line(status, stderr, "export while locked")
        assert line == f"Error: {serving / 'run'} is in use by process {holder.pid}"
        assert tree_digest(serving) == before
    finally:
        holder.kill()
        holder.wait()
    status, stdout, stderr = run_in_process(["export", str(work / "run"), "--format", "savedmodel", "--out",
                                             str(serving), "--version", "3", "--max-batch", "2"])
    assert status == 0, stderr[-2000:]
    assert sorted(os.listdir(serving / "run")) == [".lock", "3"] and "at most 2 images per request" in stdout


def test_scoring_no_images_gives_empty_results(conditional_model):
    """As an exported log_prob does for a batch of 0 (it was `cannot reshape array of size 0`)."""
    none = np.zeros((0, 4, 4, 1), np.uint8)
    assert kp.log_prob(conditional_model, none, []).shape == (0,)
    assert kp.log_prob(conditional_model, none, [], reduce=False).shape == (0, 4, 4, 1)
    assert kp.bits_per_dim(conditional_model, none, []).shape == (0,)
    assert {key: value.shape for key, value in kp.score(conditional_model, none).items()} == {
        "bits_per_dim": (0,), "png_bits_per_dim": (0,), "complexity": (0,)}


# --- A second hostile pass ----------------------------------------------------------------------

def test_npy_outputs_without_the_npy_suffix_are_written_where_asked(work, tmp_path):
    """`np.save(PATH)` adds ".npy" to a path without it: `--npy images` left an empty `images` and a
    stray `.tmp-XXXX.npy` beside it."""
    for args in (["sample", str(work / "run"), "--num", "2", "--out", str(tmp_path / "s.png"),
                  "--npy", str(tmp_path / "drawn")],
                 ["complete", str(work / "run"), "--image", str(work / "img.png"), "--mask", str(work / "mask.png"),
                  "--num", "2", "--out", str(tmp_path / "c.png"), "--npy", str(tmp_path / "filled.dat")]):
        status, _, stderr = run_in_process(args)
        assert status == 0, stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["c.png", "drawn", "filled.dat", "s.png"]
    assert np.load(tmp_path / "drawn").shape == (2, 8, 8, 1)
    np.testing.assert_array_equal(np.load(tmp_path / "filled.dat"), np.repeat(
        np.asarray(Image.open(work / "img.png"))[None, ..., None], 2, axis=0))


def test_more_bad_api_arguments_are_a_value_error(conditional_model):
    images = IMAGES.astype(np.int64)
    with pytest.raises(ValueError, match="greedy"):
        kp.sample(conditional_model, 1, labels=0, greedy="no")  # a truthy string sampled greedily
    with pytest.raises(ValueError, match="temperature"):
        kp.sample(conditional_model, 1, labels=0, temperature=1e39)  # was TensorFlow's float32 overflow
    with pytest.raises(ValueError, match="integer images"):
        kp.log_prob(conditional_model, images.astype("timedelta64[s]"), 0)  # numpy calls timedelta64 an integer
    with pytest.raises(ValueError, match="integer labels"):
        kp.log_prob(conditional_model, images, np.zeros(3, "timedelta64[s]"))
    with pytest.raises(ValueError, match=r"labels in \[0, 10\)"):
        kp.log_prob(conditional_model, images, 10**20)
    for options in ({"kernel_size": 10**6}, {"head_filters": 10**11}, {"num_layers": 10**4}):
        with pytest.raises(ValueError, match=r"to be an integer in \[1, "):
            kp.build_model("pixelcnn", (4, 4, 1), **options)  # was an out-of-memory TensorFlow error
    with pytest.raises(ValueError, match="num_logistic_mix"):
        kp.build_model("pixelcnn_pp", (8, 8, 1), num_logistic_mix=10**8)  # the process was killed


def test_weights_that_diverge_in_the_last_update_stop_the_run(tmp_path):
    """The losses of every batch are finite (each is computed before its update), but the last update
    makes the weights non-finite: the run was reported complete, "Saved best.keras" with none written."""
    from keras_pixelcnn.training import fit
    from keras_pixelcnn.training.callbacks import TrainingDiverged

    config = TrainConfig(data_dir=FASHION_MNIST, image_size=8, filters=4, num_layers=1, epochs=1, steps_per_epoch=1,
                         batch_size=4, validation_images=8, sample_images=0, learning_rate=1e308)
    with pytest.raises(TrainingDiverged, match="at epoch 1"):
        fit(config, str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run" / "best.keras").exists()
    status = json.loads((tmp_path / "run" / "run.json").read_text())
    assert status["diverged"]["epoch"] == 1 and not status["completed"]


@pytest.mark.parametrize("text", ['{"epoch": "x"}', "[]", "{}", "not json", '{"epoch": -1}', '{"epoch": true}'])
def test_a_corrupt_training_state_is_one_error_naming_it(tmp_path, text):
    """Hand-edited or half-written `backup/training_metadata.json`: was a KeyError or TypeError traceback,
    or a message naming nothing ("invalid literal for int() with base 10: 'x'")."""
    from keras_pixelcnn.training.run_dir import completed_epochs

    (tmp_path / "training_metadata.json").write_text(text)
    with pytest.raises(ValueError, match=r"Cannot read the training state .*training_metadata.json"):
        completed_epochs(str(tmp_path))
    (tmp_path / "training_metadata.json").write_text('{"epoch": 2}')
    assert completed_epochs(str(tmp_path)) == 2


@pytest.mark.parametrize("shape", [(), (1,), (4, 1), (1, 4), (4,), (1, 1, 1), (3, 4, 4, 1, 1)])
def test_a_known_mask_of_the_wrong_shape_is_refused(conditional_model, shape):
    """Broadcasting took a scalar True (every pixel known) or an (H, 1) mask (the same row everywhere)."""
    with pytest.raises(ValueError, match="known_mask"):
        kp.complete(conditional_model, IMAGES, np.ones(shape, bool), labels=0)
