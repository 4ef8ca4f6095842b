"""`kpixel score`: per-image anomaly scores (bits/dim and its corrections)."""

import click

from keras_pixelcnn.cli.errors import user_errors
from keras_pixelcnn.cli.model_source import model_files, model_options, resolve_model

_COLUMNS = ["bits_per_dim", "png_bits_per_dim", "complexity", "background_bits_per_dim", "likelihood_ratio"]


@click.command()
@model_options
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--label", type=int, default=None,
              help="Class of every image (conditional model; default: the marginal over classes).")
@click.option("--background", type=click.Path(file_okay=False), default=None,
              help="Run dir of a background model (trained with --perturb-rate) for the likelihood ratio.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, help="Write the table as CSV.")
@click.option("--batch-size", type=int, default=256, show_default=True)
def score(run_dir, which, pretrained, images, label, background, csv_path, batch_size):
    """Score IMAGES (PNG/JPEG files or .npy batches): higher is more anomalous."""
    import csv

    import numpy as np

    from keras_pixelcnn.data.images import atomic_path, check_outputs, read_images
    from keras_pixelcnn.scoring import score as compute

    if pretrained and run_dir:  # `kpixel score --pretrained NAME a.png ...`: the first image filled RUN_DIR
        run_dir, images = None, (run_dir,) + images
    if not images:
        raise click.UsageError("Expected at least one image to score. Received: none")
    with user_errors():
        check_outputs({"--csv": csv_path}, inputs=images + model_files(run_dir) + model_files(background))
        model = resolve_model(run_dir, which, pretrained)
        pictures, names = read_images(images, tuple(model.inputs[0].shape[1:]))
        labels = label  # one label for every image, checked by `label_array` (np.full overflowed on 10**20)
        back = resolve_model(background, "best") if background is not None else None
        result = compute(model, pictures, labels, back, batch_size)
        columns = [column for column in _COLUMNS if column in result]
        rows = [[name] + [f"{result[column][index]:.4f}" for column in columns] for index, name in enumerate(names)]
        if csv_path:
            with atomic_path(csv_path) as temporary, open(temporary, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["image"] + columns)
                writer.writerows(rows)
    click.echo("\t".join(["image"] + columns))
    for row in rows:
        click.echo("\t".join(row))
