"""Image data: TFDS by name, Debian's Fashion-MNIST IDX files offline, image folders.

Arrays (IDX files, folders) are read with numpy and Pillow only, so the same
data reaches a JAX-backend machine without TensorFlow; `make_dataset` turns
any source into a `tf.data` pipeline (cache, shuffle, batch, prefetch).
"""

import dataclasses
import gzip
import os
import re

import numpy as np

from keras_pixelcnn.data.images import open_picture, picture_array

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class DataError(ValueError):
    """A dataset that cannot be found, read or parsed; the message is one line for the user."""


def read_idx(path):
    """Read an IDX file (optionally gzip-compressed) into a numpy array.

    Args:
        path: file path; names ending in `.gz` are decompressed.

    Returns:
        Array with the file's dtype and shape, e.g. `(60000, 28, 28)` uint8.

    Raises:
        DataError: for a missing, truncated or malformed file.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"Cannot read IDX file {path}: {error}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"Not an IDX file: {path} (bad magic number)")
    rank = data[3]
    header = 4 + 4 * rank
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"Truncated IDX file {path}: expected {expected} data bytes, found {len(data) - header}")
    return np.frombuffer(data[header:], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return None


def read_idx_split(directory, split):
    """Images `(N, 28, 28, 1)` uint8 and labels `(N,)` int32 of an MNIST-style split."""
    base = _base_split(split)
    if base not in _IDX_FILES:
        raise DataError(f"IDX datasets have splits 'train' and 'test'. Received: split={split!r}")
    paths = [_find(directory, stem) for stem in _IDX_FILES[base]]
    if None in paths:
        missing = [stem for stem, path in zip(_IDX_FILES[base], paths) if path is None]
        raise DataError(f"Missing {', '.join(missing)}(.gz) in {directory}.{_offline_hint('fashion_mnist')}")
    images, labels = (read_idx(path) for path in paths)
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise DataError(f"IDX images {images.shape} and labels {labels.shape} in {directory} do not match")
    return _slice(images[..., None], labels.astype(np.int32), split)


def read_image_folder(directory, split="train"):
    """Images of a folder (PNG/JPEG), with class labels from sub-folder names if any.

    All images must share one size; grey images give C=1, colour C=3.

    Returns:
        `(images uint8 (N, H, W, C), labels int32 (N,) or None, class_names)`.
    """
    classes = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    groups = [(index, os.path.join(directory, name)) for index, name in enumerate(classes)] or [(None, directory)]
    images, labels = [], []
    for label, folder in groups:
        for name in sorted(os.listdir(folder)):
            if not name.lower().endswith(_IMAGE_SUFFIXES):
                continue
            path = os.path.join(folder, name)
            try:
                with open_picture(path, "PNG/JPEG images") as image:
                    grey = image.mode in ("L", "1", "I", "LA") or image.mode.startswith("I;16")
                    array = picture_array(image, path, 1 if grey else 3)
            except ValueError as error:
                raise DataError(str(error)) from None
            images.append(array)
            labels.append(label)
    if not images:
        raise DataError(f"No PNG or JPEG images in {directory}")
    shapes = sorted({image.shape for image in images})
    if len(shapes) > 1:
        raise DataError(f"Images in {directory} differ in shape: {shapes[:3]}; resize them to one size first")
    labels = None if labels[0] is None else np.asarray(labels, dtype=np.int32)
    images, labels = _slice(np.stack(images), labels, split)
    return images, labels, classes


_SLICE = re.compile(r"^(\w+)(?:\[(-?\d*)(%?):(-?\d*)(%?)\])?$")


def _base_split(split):
    match = _SLICE.match(split)
    if not match:
        raise DataError(f"Expected a split like 'train', 'test' or 'train[:90%]'. Received: split={split!r}")
    return match.group(1)


def _slice(images, labels, split):
    """Apply a TFDS-style slice (`train[:90%]`, `test[100:200]`) to arrays."""
    match = _SLICE.match(split)
    if match is None or match.group(2) is None and match.group(4) is None:
        return images, labels
    n = len(images)

    def bound(text, percent):
        if not text:
            return None
        return int(text) * n // 100 if percent else int(text)

    part = slice(bound(match.group(2), match.group(3)), bound(match.group(4), match.group(5)))
    return images[part], None if labels is None else labels[part]


@dataclasses.dataclass
class Source:
    """A split of a dataset, held as arrays or as a TFDS `tf.data.Dataset`.

    Attributes:
        name: dataset name as given.
        split: split string.
        origin: where the data came from (a path or `tfds:NAME`), for the run record.
        images / labels: numpy arrays for array sources (labels None if unlabelled).
        tf_dataset: `(image, label)` elements for TFDS sources.
        image_shape: `(H, W, C)`.
        num_classes: number of classes, or None.
        num_examples: size of the split.
    """

    name: str
    split: str
    origin: str
    image_shape: tuple
    num_classes: int | None
    num_examples: int
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    tf_dataset: object = None


def load(name, split="train", data_dir=None):
    """Load a split of a dataset by name.

    Args:
        name: `fashion_mnist` (Debian's IDX files when present, else TFDS), any
            TFDS image dataset name, or a folder of images (`folder:PATH` or an
            existing directory).
        split: `train`, `test`, or a slice such as `train[:90%]`.
        data_dir: for `fashion_mnist`, the directory of the IDX files (default
            `/usr/share/datasets/fashion-mnist`); for TFDS, its data dir.

    Raises:
        DataError: unknown dataset, missing files, or no data offline.
    """
    if name.startswith("folder:") or os.path.isdir(name):
        path = name[len("folder:"):] if name.startswith("folder:") else name
        if not os.path.isdir(path):
            raise DataError(f"Image folder not found: {path}")
        images, labels, classes = read_image_folder(path, split)
        return Source(name, split, os.path.abspath(path), images.shape[1:], len(classes) or None,
                      len(images), images, labels)
    if name == "fashion_mnist":
        directory = data_dir or FASHION_MNIST_DIR
        if _find(directory, _IDX_FILES["train"][0]) or data_dir is not None:
            images, labels = read_idx_split(directory, split)
            return Source(name, split, os.path.abspath(directory), images.shape[1:], 10, len(images),
                          images, labels)
    return _load_tfds(name, split, data_dir)


def _offline_hint(name):
    if name != "fashion_mnist":
        return ""
    return (f" Install Debian's {FASHION_MNIST_PACKAGE} (apt-get install -y {FASHION_MNIST_PACKAGE}) "
            "or pass --data-dir with the IDX files.")


def _can_reach(host, port=443, timeout=3.0):
    """Whether `host` resolves and accepts a TCP connection (TFDS downloads retry for minutes otherwise)."""
    import socket

    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _load_tfds(name, split, data_dir):
    import tensorflow_datasets as tfds

    if name not in tfds.list_builders():
        raise DataError(f"Unknown dataset {name!r}: expected fashion_mnist, a TFDS image dataset or folder:PATH")
    if not tfds.builder(name, data_dir=data_dir).is_prepared() and not _can_reach("storage.googleapis.com"):
        raise DataError(f"Dataset {name!r} is not downloaded and this machine is offline.{_offline_hint(name)}")
    try:
        dataset, info = tfds.load(name, split=split, data_dir=data_dir, with_info=True, as_supervised=False)
    except Exception as error:  # TFDS raises many kinds: offline, checksum, bad split
        hint = _offline_hint(name)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"Cannot load {name}[{split}] with TFDS: {first_line}.{hint}") from None
    features = info.features
    if "image" not in features:
        raise DataError(f"TFDS dataset {name!r} has no 'image' feature")
    label = features["label"] if "label" in features else None
    num_classes = getattr(label, "num_classes", None)
    elements = dataset.map(lambda x: (x["image"], x["label"] if label is not None else -1))
    shape = tuple(features["image"].shape)
    if None in shape:
        raise DataError(f"TFDS dataset {name!r} has images of varying size {shape}; use --image-size")
    return Source(name, split, f"tfds:{name}:{info.version}", shape, num_classes,
                  info.splits[split].num_examples, tf_dataset=elements)


def without_classes(source, classes):
    """The examples of an array source whose label is not in `classes` (one-class-out training).

    Raises:
        DataError: for a TFDS source or an unlabelled dataset.
        ValueError: for a class the dataset does not have.
    """
    classes = sorted(set(classes))
    if source.images is None or source.labels is None:
        raise DataError(f"Excluding classes needs a labelled array dataset; {source.name!r} is not one")
    bad = [label for label in classes if not 0 <= label < (source.num_classes or 0)]
    if bad:
        raise ValueError(f"Expected classes in [0, {source.num_classes}). Received: exclude_classes={bad}")
    keep = ~np.isin(source.labels, classes)
    return dataclasses.replace(source, images=source.images[keep], labels=source.labels[keep],
                               num_examples=int(keep.sum()), split=f"{source.split} without {classes}")
