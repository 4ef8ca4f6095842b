"""`kpixel sample`: draw images from a trained model into a PNG grid (and .npy)."""

import click

from keras_pixelcnn.cli.errors import user_errors
from keras_pixelcnn.cli.model_source import model_options, resolve_model


@click.command()
@model_options
@click.option("--num", type=int, default=16, show_default=True, help="Images to draw.")
@click.option("--seed", type=int, default=0, show_default=True, help="Image i uses seed pair (seed, i).")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="Softmax temperature (> 0).")
@click.option("--label", type=int, default=None, help="Class label for a conditional model (default: cycle).")
@click.option("--method", type=click.Choice(["cached", "naive"]), default="cached", show_default=True)
@click.option("--greedy", is_flag=True, help="Most likely value at every step.")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Images per sampler run.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG grid to write.")
@click.option("--npy", type=click.Path(dir_okay=False), default=None, help="Also save the uint8 images here.")
def sample(run_dir, which, pretrained, num, seed, temperature, label, method, greedy, batch_size, out, npy):
    """Sample images from RUN_DIR's model into a PNG grid."""
    import numpy as np

    from keras_pixelcnn.data.images import atomic_path, make_grid, save_png
    from keras_pixelcnn.likelihood import model_num_classes
    from keras_pixelcnn.sampling import sample as draw

    with user_errors():
        model = resolve_model(run_dir, which, pretrained)
        labels = label
        if len(model.inputs) == 2 and label is None:
            labels = np.arange(num) % model_num_classes(model)
        with click.progressbar(length=num, label=f"Sampling {num} images", file=None) as bar:
            done = [0]

            def progress(count):
                bar.update(count - done[0])
                done[0] = count

            images = draw(model, num, seed=seed, temperature=temperature, labels=labels, method=method,
                          greedy=greedy, batch_size=batch_size, progress=progress)
        save_png(out, make_grid(images))
        if npy:
            with atomic_path(npy) as temporary:
                np.save(temporary, images)
    click.echo(f"Wrote {num} images to {out}" + (f" and {npy}" if npy else ""))

