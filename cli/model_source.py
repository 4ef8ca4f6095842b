"""The model a command works on: a run directory's checkpoint, or a model shipped with the package."""

import os

import click


def model_options(command):
    """Add RUN_DIR (optional with --pretrained), --which and --pretrained to a command."""
    command = click.option("--pretrained", default=None, metavar="NAME",
                           help="Use a model shipped with the package instead of RUN_DIR (fashion_mnist).")(command)
    command = click.option("--which", type=click.Choice(["best", "last"]), default="best", show_default=True,
                           help="Checkpoint of the run.")(command)
    # No file_okay=False: with --pretrained, `kpixel score` takes its first image in this slot.
    return click.argument("run_dir", type=click.Path(), required=False)(command)


def model_files(run_dir):
    """The files of RUN_DIR that no output may write over: its models and config, and every other
    file it holds (history.csv, best.json, backup/, .lock, logs/ ...: `--out RUN/history.csv`
    replaced the run's history)."""
    if not run_dir:
        return ()
    names = ("best.keras", "last.keras", "config.json", "run.json")
    found = [os.path.join(run_dir, name) for name in names]
    if os.path.isdir(run_dir):
        for directory, _, files in os.walk(run_dir):
            found.extend(os.path.join(directory, name) for name in files)
    return tuple(found)


def resolve_model(run_dir, which, pretrained=None):
    """Load RUN_DIR's `which` checkpoint or the shipped model `pretrained` (ValueError with one line when it can't)."""
    if (run_dir is None) == (pretrained is None):
        raise ValueError("Expected either RUN_DIR or --pretrained NAME. Received: "
                         + ("both" if run_dir else "neither"))
    if pretrained is not None:
        from keras_pixelcnn.models.pretrained import load_pretrained

        return load_pretrained(pretrained)
    from keras_pixelcnn.training import load_run

    return load_run(run_dir, which)[1]


# A PNG grid of more images than this is too big to be looked at (and to hold in memory).
MAX_IMAGES = 100_000


def check_num(num):
    """Refuse a `--num` outside [1, MAX_IMAGES] (ValueError)."""
    if not 1 <= num <= MAX_IMAGES:
        raise ValueError(f"Expected --num in [1, {MAX_IMAGES}]. Received: {num}")
