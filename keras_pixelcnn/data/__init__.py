"""Data in and out: dataset sources (IDX files, image folders, TFDS), the `tf.data` pipeline with
its preprocessing, and image files (PNG/JPEG/.npy reading, grids, atomic writes).

Imports no other subpackage: it knows nothing of models.
"""

from keras_pixelcnn.data.sources import DataError, Source, load, read_idx, without_classes

__all__ = ["DataError", "Source", "load", "read_idx", "without_classes"]
