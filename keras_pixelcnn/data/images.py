"""Image grids and atomic file writes (PNG via Pillow, JSON, numpy)."""

import contextlib
import json
import os
import tempfile
import warnings

import numpy as np


def current_umask():
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only on success.

    The file gets the mode a plain `open(path, "w")` would give (0666 less the umask:
    0644 by default), not `mkstemp`'s private 0600.
    """
    path = os.path.abspath(path)  # `a/missing/../b.png` is `a/b.png`, as `check_writable` reads it
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(handle)
    try:
        yield temporary
        if os.path.isfile(temporary):
            os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def check_writable(path, directory=False, option="--out"):
    """Check, writing nothing, that `path` (a file, or a directory if `directory`) can be written.

    An existing file may be replaced: files are written beside it and renamed onto it
    (`atomic_path`), so it is its directory that must be writable.

    Raises:
        ValueError: a file where a directory is expected or the other way round, a parent
            that is a file, or one that is not writable (naming `option` and the path).
    """
    if not isinstance(path, str) or not path:
        # "" is the working directory to os.path, and `--out ""` wrote there.
        raise ValueError(f"Expected {option} to be a path. Received: {path!r}")
    if os.path.exists(path) and os.path.isdir(path) != directory:
        kind = "directory" if directory else "file"
        raise ValueError(f"Expected {option} to be a {kind}. Received: {path}, which is "
                         + ("a file" if directory else "a directory"))
    existing = os.path.abspath(path) if directory else os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"Cannot write {option} {path}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write {option} {path}: {existing} is not writable")


def check_outputs(outputs, inputs=()):
    """Check, writing nothing, that each output path can be written and is neither another output nor an input.

    Args:
        outputs: `{option: path or None}` of files to write, e.g. `{"--out": "a.png", "--npy": None}`.
        inputs: paths the command reads.

    Raises:
        ValueError: as `check_writable`, or two options naming one file (one would overwrite the other).
    """
    seen = {os.path.realpath(path): "an input" for path in inputs}
    for option, path in outputs.items():
        if path is None:  # not given ("" is refused by check_writable)
            continue
        check_writable(path, option=option)
        other = seen.setdefault(os.path.realpath(path), option)
        if other != option:
            raise ValueError(f"Expected {option} to be a file of its own. Received: {path}, which is also {other}")


def check_png_name(path, option="--out"):
    """ValueError unless `path` ends in `.png`: the picture is written as PNG, whatever the name says."""
    if not str(path).lower().endswith(".png"):
        raise ValueError(f"Expected {option} to name a .png file (the picture is written as PNG). Received: {path}")


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
    C = 3; a 16-bit greyscale PNG is scaled to 8 bits, `round(v * 255 / 65535)`);
    a `.npy` file holds one `(H, W[, C])` image or a batch `(B, H, W[, C])`.
    Sizes are checked from the file's header before its pixels are read.

    Returns:
        `(images, names)`: uint8 `(B, H, W, C)` and one name per image
        (`path`, or `path[i]` inside a batch file).

    Raises:
        FileNotFoundError: for a missing file.
        ValueError: for an unreadable file, a size other than `(H, W)`, a 16-bit colour
            PNG, or values outside [0, 255] (the message names the file).
    """
    height, width, channels = image_shape
    images, names = [], []
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"No such image file: {path}")
        if os.path.isdir(path):
            raise ValueError(f"Expected an image file. Received: {path}, a directory")
        if path.endswith(".npy"):
            batch = [(f"{path}[{index}]", image) for index, image in enumerate(_read_npy(path, image_shape))]
            if not batch:
                raise ValueError(f"Expected at least one image in {path}. Received: an empty batch")
        else:
            batch = [(path, _read_picture(path, image_shape))]
        for name, image in batch:
            if image.shape != (height, width, channels):
                raise ValueError(f"Expected {height}x{width}x{channels} images. Received: {image.shape} in {name}")
            images.append(image.astype(np.uint8))
            names.append(name)
    return np.stack(images) if images else np.zeros((0, height, width, channels), np.uint8), names


def _read_npy(path, image_shape):
    """The `(B, H, W, C)` integer images in a `.npy` file, its shape checked before its values are read."""
    height, width, channels = image_shape
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # reads the header only
    except Exception as error:  # not .npy, truncated, pickled objects, unreadable
        raise ValueError(f"Cannot read {path}: {type(error).__name__}: {error}") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"Expected one array in {path}. Received: {type(array).__name__}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == channels and array.shape[0] == height):
        array = array[None]
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[1:] != (height, width, channels):
        raise ValueError(f"Expected an array (H, W[, C]) or (B, H, W[, C]) of {height}x{width}x{channels} images "
                         f"in {path}. Received: shape {np.load(path, mmap_mode='r').shape}")
    if array.dtype.kind not in "iu":  # not np.issubdtype(.., np.integer): timedelta64 is one
        raise ValueError(f"Expected integer values in [0, 255] in {path}. Received dtype {array.dtype}")
    array = np.asarray(array)
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(f"Expected integer values in [0, 255] in {path}. Received values in "
                         f"[{array.min()}, {array.max()}]")
    return array


def _read_picture(path, image_shape):
    """One `(H, W, C)` uint8 image from a picture file; its size is checked from the header first."""
    height, width, channels = image_shape
    expected = f"{height}x{width}x{channels} images"
    with open_picture(path, expected) as picture:
        if picture.size != (width, height):
            raise ValueError(f"Expected {expected}. Received: {picture.size[1]}x{picture.size[0]} "
                             f"(height x width) in {path}")
        return picture_array(picture, path, channels)


def open_picture(path, expected="an image"):
    """The picture file `path`, opened by Pillow (its header read, not its pixels).

    Args:
        path: a PNG, JPEG, ... file.
        expected: what the caller takes, for the messages (`"8x8x1 images"`).

    Raises:
        ValueError: naming the file, for one that is not a picture, cannot be read, or whose header
            claims more pixels than Pillow's decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`).
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow checks the header's size against its decompression-bomb limit as it opens a file:
            # over the limit it warns (printing to stderr), over twice the limit it raises.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"Expected {expected}. Received: {path}, whose header claims more than "
                         f"{Image.MAX_IMAGE_PIXELS} pixels (Pillow's decompression-bomb limit)") from None
    except Exception as error:  # not an image, truncated, unreadable
        raise _unreadable(path, error) from None


def picture_array(picture, path, channels):
    """The `(H, W, channels)` uint8 pixels of an open picture (grey for 1 channel, RGB for 3).

    A 16-bit greyscale picture is scaled to 8 bits, `round(v * 255 / 65535)`.

    Raises:
        ValueError: naming the file, for 16-bit colour or 32-bit pictures and unreadable pixels.
    """
    rawmode = _rawmode(picture)
    if picture.mode.startswith("I;16") or rawmode.startswith("I;16"):  # 16-bit greyscale
        grey = _decoded(lambda: np.asarray(picture, np.float64), path)
        grey = np.round(grey * 255 / 65535).astype(np.uint8)
        return np.repeat(grey[..., None], channels, axis=-1)
    if ";16" in rawmode:
        raise ValueError(f"16-bit colour images are not supported (Pillow would drop their low bytes); "
                         f"save {path} with 8 bits per channel")
    if picture.mode in ("I", "F"):
        raise ValueError(f"Expected an 8-bit image. Received: {path}, a {picture.mode!r}-mode (32-bit) image")
    image = _decoded(lambda: np.asarray(picture.convert("L" if channels == 1 else "RGB")), path)
    return image.reshape(image.shape[:2] + (channels,))


def _decoded(decode, path):
    """`decode()`, its errors (truncated pixels, a broken stream) a ValueError naming `path`."""
    try:
        return decode()
    except Exception as error:
        raise _unreadable(path, error) from None


def _unreadable(path, error):
    return ValueError(f"Cannot read image {path}: {type(error).__name__}: {error}")


def _rawmode(picture):
    """How the decoder reads the file's pixels, e.g. 'I;16B' or 'RGB;16B' for a 16-bit PNG ('' if unknown)."""
    tile = getattr(picture, "tile", None) or []
    if not tile:
        return ""
    args = tile[0][3] if len(tile[0]) > 3 else None
    return args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args
                                               and isinstance(args[0], str) else "")
