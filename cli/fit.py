"""`kpixel fit`: train a model, or resume an interrupted run."""

import os
import sys

import click

from keras_pixelcnn.cli import quiet
from keras_pixelcnn.cli.backends import loaded_backend, restart_on
from keras_pixelcnn.cli.errors import user_errors

# Flags map one-to-one onto TrainConfig fields; None means "not given".
_OPTIONS = [
    ("--dataset", str, "Dataset: fashion_mnist, a TFDS name, or folder:PATH. [fashion_mnist]"),
    ("--data-dir", str, "IDX files for fashion_mnist (default Debian's) or the TFDS data dir."),
    ("--model", str, "Architecture (see `kpixel architectures`). [pixelcnn]"),
    ("--filters", int, "Feature width."),
    ("--num-layers", int, "Depth."),
    ("--epochs", int, "Epochs. [10] More than an existing run's: train it longer (from its last epoch)."),
    ("--steps-per-epoch", int, "Batches per epoch (default: one pass over the data)."),
    ("--batch-size", int, "Global batch size. [64]"),
    ("--learning-rate", float, "Adam learning rate. [1e-3]"),
    ("--lr-schedule", click.Choice(["constant", "cosine"]), "Learning rate: constant, or cosine decay to 0. "
                                                           "[constant]"),
    ("--ema-momentum", float, "Polyak-average the weights with this momentum (e.g. 0.9995); validation and "
                              "checkpoints use the average. [off]"),
    ("--init-from", str, "Start from the weights of this .keras file or run dir (same architecture)."),
    ("--seed", int, "Seed for weights, shuffling and sample grids. [0]"),
    ("--strategy", click.Choice(["auto", "default", "mirrored"]), "tf.distribute strategy. [auto]"),
    ("--validation-images", int, "Cap on validation images per epoch (default: all)."),
    ("--crop", int, "Centre-crop images to N x N."),
    ("--image-size", int, "Resize images to N x N (after --crop)."),
    ("--levels", int, "Quantise to N grey levels. [256]"),
    ("--sample-images", int, "Images in the per-epoch sample grid, 0 for none. [16]"),
    ("--mixed-precision", click.Choice(["auto", "on", "bf16", "off"]), "Half-precision compute: on = float16 "
                                                                        "(bfloat16 on JAX), bf16 = bfloat16. "
                                                                        "[auto: float16 on GPU, else float32]"),
    ("--jit-compile", click.Choice(["auto", "on", "off"]), "XLA (TensorFlow backend). [auto: on GPU]"),
    ("--exclude-classes", str, "Comma-separated labels to leave out (one-class-out anomaly detection)."),
    ("--perturb-rate", float, "Replace this fraction of training sub-pixels by noise (likelihood-ratio "
                              "background model). [0]"),
]


def _with_options(command):
    for flag, kind, text in reversed(_OPTIONS):
        command = click.option(flag, type=kind, default=None, help=text)(command)
    return command


def _config(run_dir, config_file, flags):
    """The TrainConfig of `--config` overridden by flags, or of RUN_DIR/config.json when neither is given.

    Raises:
        ValueError: a bad file or value; the message names the option (and the file it came from).
    """
    from keras_pixelcnn.training.config import TrainConfig, read_json

    if flags.get("exclude_classes") is not None:
        try:
            flags["exclude_classes"] = [int(part) for part in flags["exclude_classes"].split(",")]
        except ValueError:
            raise ValueError(f"Expected --exclude-classes like 3 or 3,5. Received: {flags['exclude_classes']!r}")
    given = {key: value for key, value in flags.items() if value is not None}
    saved = os.path.join(run_dir, "config.json")
    if not config_file and os.path.isfile(saved):
        # `kpixel fit --out RUN` resumes with the run's own options; `--epochs N` trains it longer.
        # Other flags given here must match the run's (`run_dir.check_run_dir` names the ones that don't).
        return TrainConfig.from_dict({**TrainConfig.from_file(saved).to_dict(), **given})
    if not config_file:
        return TrainConfig.from_dict(given)
    values = read_json(config_file)
    if not isinstance(values, dict):
        TrainConfig.from_dict(values, source=config_file)  # raises, naming the file
    try:
        return TrainConfig.from_dict({**values, **given})
    except ValueError:
        TrainConfig.from_dict(values, source=config_file)  # the file's own mistake, naming the file
        raise


@click.command()
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="JSON of TrainConfig fields; flags override it.")
@click.option("--conditional/--unconditional", default=None, help="Condition on class labels.")
@click.option("--backend", type=click.Choice(["tensorflow", "jax"]), default=None,
              help="Keras backend (jax: multi-host with keras.distribution). [tensorflow]")
@click.option("--coordinator", default=None, help="JAX multi-process: host:port of process 0.")
@click.option("--num-processes", type=int, default=1, show_default=True, help="JAX multi-process: process count.")
@click.option("--process-id", type=int, default=0, show_default=True, help="JAX multi-process: this process.")
@_with_options
def fit(run_dir, config_file, backend, coordinator, num_processes, process_id, **flags):
    """Train a model into RUN_DIR (--out); re-running the same command resumes it, a larger --epochs trains it longer."""
    if backend is not None and backend != loaded_backend():  # (installed: `check_installed`)
        restart_on(backend)

    import keras

    if backend is not None and keras.backend.backend() != backend:  # a configuration read otherwise than Keras reads it
        raise click.UsageError(f"--backend {backend}: Keras loaded {keras.backend.backend()} (set KERAS_BACKEND={backend})")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise click.UsageError(f"Expected --num-processes >= 1 and --process-id in [0, {max(num_processes, 1)}). "
                               f"Received: --num-processes {num_processes} --process-id {process_id}")
    if coordinator is not None and num_processes == 1:  # it was ignored without a word
        raise click.UsageError(f"--coordinator is for --num-processes > 1. Received: --coordinator {coordinator!r} "
                               "--num-processes 1")
    if num_processes > 1:
        if keras.backend.backend() != "jax":
            raise click.UsageError("--num-processes > 1 needs --backend jax (Keras 3 has no multi-worker tf.distribute)")
        from keras_pixelcnn.training.jax_backend import initialize

        initialize(coordinator, num_processes, process_id)

    from keras_pixelcnn.training.callbacks import TrainingDiverged
    from keras_pixelcnn.training import fit as train

    with user_errors():
        config = _config(run_dir, config_file, flags)
        # A terminal gets Keras' progress bar; a file or pipe one line per epoch (no bar redraws).
        verbose = 1 if sys.stdout.isatty() else 2
        try:
            history = train(config, run_dir, verbose=verbose)
        except TrainingDiverged as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(1)
    if history is None:
        click.echo(f"{run_dir} is already complete ({config.epochs} epochs); evaluate it with `kpixel evaluate {run_dir}`, "
                   f"or train it longer with `kpixel fit --out {run_dir} --epochs N` (N > {config.epochs})")
    else:
        click.echo(f"Saved {os.path.join(run_dir, 'best.keras')}")
