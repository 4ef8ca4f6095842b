"""Run `kpixel` commands in one process whose TensorFlow sees two logical CPUs (a 2-GPU box, emulated).

Usage: python gpu_defaults_client.py WORK_DIR ARCHITECTURE [FIT_FLAG ...]

Trains WORK_DIR/run (unless it exists) with the given fit flags (e.g. the GPU defaults:
--strategy mirrored --mixed-precision on --jit-compile on), then runs evaluate,
sample (cached and naive), complete, score and both exports on it, each through
the real command-line entry point; prints a JSON line {command: exit status or output}.
"""

import contextlib
import io
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import click  # noqa: E402

from keras_pixelcnn.cli.main import cli  # noqa: E402


def kpixel(*args):
    """Exit status and stdout of `kpixel ARGS` run in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            cli.main(list(map(str, args)), prog_name="kpixel", standalone_mode=False)
            status = 0
        except click.ClickException as error:  # what standalone mode prints as "Error: ..." and exits with
            print(f"Error: {error.format_message()}")
            status = error.exit_code
        except SystemExit as error:
            status = error.code
    return status, out.getvalue()


def main(work, architecture, *fit_flags):
    os.makedirs(work, exist_ok=True)
    run = os.path.join(work, "run")
    config = os.path.join(work, "devices.json")
    with open(config, "w") as handle:
        json.dump({"devices": ["/cpu:0", "/cpu:1"]}, handle)
    image = os.path.join(work, "image.npy")
    mask = os.path.join(work, "mask.npy")
    # A run dir that exists already (e.g. written by the JAX backend) is used as it is.
    fit = ("fit", "--config", config, "--dataset", "fashion_mnist", "--model", architecture, "--image-size", 8,
           "--filters", 8, "--num-layers", 1, "--batch-size", 8, "--steps-per-epoch", 3, "--epochs", 1,
           "--validation-images", 16, "--sample-images", 2, "--out", run, *fit_flags)
    results = {"fit": (0, "existing run") if os.path.exists(run) else kpixel(*fit)}
    if results["fit"][0]:
        print(json.dumps(results))  # nothing to run the other commands on
        return
    results["evaluate"] = kpixel("evaluate", run, "--limit", 16)
    for method in ("cached", "naive"):
        results[f"sample_{method}"] = kpixel("sample", run, "--num", 3, "--seed", 5, "--method", method,
                                             "--out", os.path.join(work, f"{method}.png"),
                                             "--npy", os.path.join(work, f"{method}.npy"))
    import numpy as np

    np.save(image, np.load(os.path.join(work, "cached.npy"))[0])
    keep = np.zeros((8, 8), np.uint8)
    keep[:4] = 255
    np.save(mask, keep)
    with open(os.path.join(run, "config.json")) as handle:
        label = ("--label", 0) if json.load(handle)["conditional"] else ()
    results["complete"] = kpixel("complete", run, "--image", image, "--mask", mask, "--num", 2, "--seed", 1, *label,
                                 "--out", os.path.join(work, "completed.png"),
                                 "--npy", os.path.join(work, "completed.npy"))
    results["score"] = kpixel("score", run, image, *label)
    results["savedmodel"] = kpixel("export", run, "--format", "savedmodel", "--out", os.path.join(work, "serving"))
    results["tflite"] = kpixel("export", run, "--format", "tflite", "--out", os.path.join(work, "model.tflite"))
    print(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
