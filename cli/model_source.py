"""The model a command works on: a run directory's checkpoint."""

import click


def model_options(command):
    """Add RUN_DIR and --which to a command."""
    command = click.option("--which", type=click.Choice(["best", "last"]), default="best", show_default=True,
                           help="Checkpoint of the run.")(command)
    return click.argument("run_dir", type=click.Path(file_okay=False))(command)


def resolve_model(run_dir, which):
    """Load RUN_DIR's `which` checkpoint (ValueError with one line when it can't)."""
    from keras_pixelcnn.training import load_run

    return load_run(run_dir, which)[1]
