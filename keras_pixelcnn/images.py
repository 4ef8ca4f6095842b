"""Image grids and atomic file writes (PNG via Pillow, JSON, numpy)."""

import contextlib
import json
import os
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only on success."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json(path, value):
    """Write `value` as indented JSON, atomically."""
    with atomic_path(path) as temporary, open(temporary, "w") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")


def make_grid(images, columns=None, padding=1):
    """Tile uint8 images `(B, H, W, C)` into one `(rows*(H+p)+p, cols*(W+p)+p, C)` picture."""
    images = np.asarray(images, dtype=np.uint8)
    count, height, width, channels = images.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
                   255, dtype=np.uint8)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def save_png(path, image):
    """Save a uint8 `(H, W, C)` image (C = 1 or 3) as PNG, atomically."""
    from PIL import Image

    image = np.asarray(image, dtype=np.uint8)
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    with atomic_path(path) as temporary:
        picture.save(temporary, format="PNG")
