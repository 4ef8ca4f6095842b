"""`kpixel sample`: draw images from a trained model into a PNG grid (and .npy)."""

import contextlib

import click

from keras_pixelcnn.cli.errors import user_errors
from keras_pixelcnn.cli.model_source import check_num, model_files, model_options, resolve_model
from keras_pixelcnn.cli.status import Status


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

    from keras_pixelcnn.data.images import atomic_path, check_outputs, check_png_name, make_grid, save_png
    from keras_pixelcnn.likelihood import model_num_classes
    from keras_pixelcnn.sampling import sample as draw

    with user_errors():
        check_num(num)
        check_outputs({"--out": out, "--npy": npy}, inputs=model_files(run_dir))
        check_png_name(out)
        model = resolve_model(run_dir, which, pretrained)
        labels = label
        if len(model.inputs) == 2 and label is None:
            labels = np.arange(num) % model_num_classes(model)
        # The sampler compiles (XLA) during the first batch, which takes most of the wait; the
        # progress bar starts once that batch is done.
        with Status("Compiling the sampler (first use) and drawing the first batch") as status, \
                contextlib.ExitStack() as stack:
            bars = []

            def progress(count):
                if not bars:
                    status.done()
                    bars.append(stack.enter_context(click.progressbar(length=num, label=f"Sampling {num} images")))
                bars[0].update(count - bars[0].pos)

            images = draw(model, num, seed=seed, temperature=temperature, labels=labels, method=method,
                          greedy=greedy, batch_size=batch_size, progress=progress)
        save_png(out, make_grid(images))
        if npy:
            with atomic_path(npy) as temporary, open(temporary, "wb") as handle:
                np.save(handle, images)  # np.save(PATH) adds ".npy" to a path without it
    click.echo(f"Wrote {num} images to {out}" + (f" and {npy}" if npy else ""))

