"""`kpixel evaluate`: exact test bits/dim of a trained run, a `.keras` file or a shipped model."""

import click

from keras_pixelcnn.cli.errors import user_errors

MAX_BATCH_SIZE = 65536  # as TrainConfig's batch_size


@click.command()
@click.argument("model", metavar="[RUN_DIR | FILE.keras]", type=click.Path(), required=False)
@click.option("--pretrained", default=None, metavar="NAME",
              help="Score a model shipped with the package instead (fashion_mnist).")
@click.option("--dataset", default=None,
              help="Dataset to score (default: the run's or shipped model's; fashion_mnist for a FILE.keras).")
@click.option("--data-dir", default=None, help="Where that dataset's files are.")
@click.option("--split", default="test", show_default=True, help="Split, e.g. test or train[:10%].")
@click.option("--limit", type=int, default=None, help="Only the first N images (default: the whole split).")
@click.option("--batch-size", type=int, default=256, show_default=True)
def evaluate(model, pretrained, dataset, data_dir, split, limit, batch_size):
    """Print the bits/dim of RUN_DIR's best model (or FILE.keras, or --pretrained NAME) on a dataset split.

    A run is scored after its own preprocessing (crop, resize, levels); a FILE.keras and a
    shipped model take the dataset's images as they are, so their shape must be the model's.
    """
    from keras_pixelcnn.training import evaluate as score_split

    with user_errors():
        if (model is None) == (pretrained is None):
            raise ValueError("Expected either RUN_DIR (or FILE.keras) or --pretrained NAME. Received: "
                             + ("both" if model else "neither"))
        for option, value in (("--dataset", dataset), ("--data-dir", data_dir), ("--split", split)):
            if value == "":  # not "the default": the user named something, and it is nothing
                raise ValueError(f"Expected {option} to be a non-empty string. Received: ''")
        if limit is not None and limit < 1:
            raise ValueError(f"Expected --limit to be an integer >= 1 (leave it out for the whole split). "
                             f"Received: {limit}")
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"Expected --batch-size to be an integer in [1, {MAX_BATCH_SIZE}]. Received: {batch_size}")
        result = score_split(model, dataset, split, limit, batch_size, data_dir, pretrained=pretrained)
    click.echo(f"{result['dataset']}[{result['split']}]: {result['bits_per_dim']:.4f} bits/dim "
               f"over {result['num_images']} images")
