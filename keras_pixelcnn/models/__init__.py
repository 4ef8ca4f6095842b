"""The architectures (one builder per file), their registry and `build_model`, and the shipped models.

May import layers and distributions. A new architecture is one file here plus its registry entry.
"""

from keras_pixelcnn.models.pretrained import load_pretrained
from keras_pixelcnn.models.registry import ARCHITECTURES, build_model, config_class

__all__ = ["ARCHITECTURES", "build_model", "config_class", "load_pretrained"]
