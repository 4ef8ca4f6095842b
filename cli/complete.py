"""`kpixel complete`: inpaint the unknown part of an image with a trained model."""

import click

from keras_pixelcnn.cli.errors import user_errors
from keras_pixelcnn.cli.model_source import check_num, model_files, model_options, resolve_model
from keras_pixelcnn.cli.status import Status


@click.command()
@model_options
@click.option("--image", "image_path", required=True, type=click.Path(dir_okay=False),
              help="Image to complete (PNG/JPEG, or .npy).")
@click.option("--mask", "mask_path", required=True, type=click.Path(dir_okay=False),
              help="Same-size picture: white (> 127) where the image is known, black where to fill.")
@click.option("--num", type=int, default=8, show_default=True, help="Completions to draw.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--label", type=int, default=None, help="Class label for a conditional model.")
@click.option("--method", type=click.Choice(["cached", "naive"]), default="cached", show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True, help="Completions per sampler run.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="PNG row: the known part (unknown shown grey), then the completions.")
@click.option("--npy", type=click.Path(dir_okay=False), default=None, help="Also save the completions here.")
def complete(run_dir, which, pretrained, image_path, mask_path, num, seed, temperature, label, method, batch_size,
             out, npy):
    """Fill the black part of --mask in --image, NUM times, in raster order."""
    import numpy as np

    from keras_pixelcnn.data.images import (atomic_path, check_outputs, check_png_name, make_grid, read_images,
                                             save_png)
    from keras_pixelcnn.sampling import complete as fill

    with user_errors():
        check_num(num)
        check_outputs({"--out": out, "--npy": npy}, inputs=(image_path, mask_path) + model_files(run_dir))
        check_png_name(out)
        model = resolve_model(run_dir, which, pretrained)
        shape = tuple(model.inputs[0].shape[1:])
        image = _one_image(read_images([image_path], shape)[0], "--image", image_path)
        mask = _one_image(read_images([mask_path], shape[:2] + (1,))[0], "--mask", mask_path)
        known = mask[..., 0] > 127
        images = np.repeat(image[None], num, axis=0)
        with Status(f"Compiling the sampler (first use) and completing {num} images"):
            completions = fill(model, images, known, seed=seed, temperature=temperature, method=method,
                               labels=label, batch_size=batch_size)
        shown = np.where(known[..., None], image, 128).astype(np.uint8)
        save_png(out, make_grid(np.concatenate([shown[None], completions]), columns=num + 1))
        if npy:
            with atomic_path(npy) as temporary, open(temporary, "wb") as handle:
                np.save(handle, completions)  # np.save(PATH) adds ".npy" to a path without it
    click.echo(f"Wrote {num} completions of {image_path} ({int((~known).sum())} unknown pixels) to {out}")


def _one_image(images, option, path):
    """The image of a file that must hold exactly one (a `.npy` may hold a batch)."""
    if len(images) != 1:
        raise ValueError(f"Expected one image in {option} {path}. Received: {len(images)}")
    return images[0]
