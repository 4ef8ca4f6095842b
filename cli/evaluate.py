"""`kpixel evaluate`: exact test bits/dim of a trained run."""

import click

from keras_pixelcnn.cli.errors import user_errors


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--dataset", default=None, help="Dataset to score (default: the run's).")
@click.option("--data-dir", default=None, help="Where that dataset's files are.")
@click.option("--split", default="test", show_default=True, help="Split, e.g. test or train[:10%].")
@click.option("--limit", type=int, default=None, help="Only the first N images (default: the whole split).")
@click.option("--batch-size", type=int, default=256, show_default=True)
def evaluate(run_dir, dataset, data_dir, split, limit, batch_size):
    """Print the bits/dim of RUN_DIR's best model on a dataset split."""
    from keras_pixelcnn.training import evaluate as score_split

    with user_errors():
        result = score_split(run_dir, dataset, split, limit, batch_size, data_dir)
    click.echo(f"{result['dataset']}[{result['split']}]: {result['bits_per_dim']:.4f} bits/dim "
               f"over {result['num_images']} images")
