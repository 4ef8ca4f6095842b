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


def read_images(paths, image_shape):
    """Load images for a model of `image_shape = (H, W, C)` from PNG/JPEG files or `.npy` arrays.

    A picture file is one image (converted to greyscale for C = 1, RGB for
    C = 3); a `.npy` file holds one `(H, W[, C])` image or a batch `(B, H, W[, C])`.

    Returns:
        `(images, names)`: uint8 `(B, H, W, C)` and one name per image
        (`path`, or `path[i]` inside a batch file).

    Raises:
        FileNotFoundError: for a missing file.
        ValueError: for an unreadable file or a size other than `(H, W)`.
    """
    from PIL import Image, UnidentifiedImageError

    height, width, channels = image_shape
    images, names = [], []
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"No such image file: {path}")
        if path.endswith(".npy"):
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError as error:
                raise ValueError(f"Cannot read {path}: {error}") from None
            if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == channels and array.shape[0] == height):
                array = array[None]
            if array.ndim == 3:
                array = array[..., None]
            if not np.issubdtype(array.dtype, np.integer) or array.size and (array.min() < 0 or array.max() > 255):
                raise ValueError(f"Expected integer values in [0, 255] in {path}. Received dtype {array.dtype}")
            batch = [(f"{path}[{index}]", image) for index, image in enumerate(array)]
        else:
            try:
                with Image.open(path) as picture:
                    image = np.asarray(picture.convert("L" if channels == 1 else "RGB"))
            except (UnidentifiedImageError, OSError) as error:
                raise ValueError(f"Cannot read image {path}: {error}") from None
            batch = [(path, image.reshape(image.shape[:2] + (channels,)))]
        for name, image in batch:
            if image.shape != (height, width, channels):
                raise ValueError(f"Expected {height}x{width}x{channels} images. Received: {image.shape} in {name}")
            images.append(image.astype(np.uint8))
            names.append(name)
    return np.stack(images) if images else np.zeros((0, height, width, channels), np.uint8), names
