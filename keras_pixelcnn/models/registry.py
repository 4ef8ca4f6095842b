"""The registry of architectures (name -> config class and builder) and `build_model`."""

from keras_pixelcnn.models import gated_pixelcnn
from keras_pixelcnn.models import pixelcnn
from keras_pixelcnn.models import pixelcnn_pp
from keras_pixelcnn.models import pixelrnn
from keras_pixelcnn.models import pixelsnail

_REGISTRY = {
    "pixelcnn": (pixelcnn.PixelCNNConfig, pixelcnn.build),
    "gated_pixelcnn": (gated_pixelcnn.GatedPixelCNNConfig, gated_pixelcnn.build),
    "row_lstm": (pixelrnn.RowLSTMConfig, pixelrnn.build_row_lstm),
    "diagonal_bilstm": (pixelrnn.DiagonalBiLSTMConfig, pixelrnn.build_diagonal_bilstm),
    "pixelcnn_pp": (pixelcnn_pp.PixelCNNPPConfig, pixelcnn_pp.build),
    "pixelsnail": (pixelsnail.PixelSNAILConfig, pixelsnail.build),
}

ARCHITECTURES = tuple(_REGISTRY)


def config_class(architecture):
    """The hyperparameter dataclass of `architecture`.

    Raises:
        ValueError: for an unknown architecture.
    """
    if architecture not in _REGISTRY:
        raise ValueError(
            f"Unknown architecture; expected one of {list(ARCHITECTURES)}. "
            f"Received: architecture={architecture!r}"
        )
    return _REGISTRY[architecture][0]


def _check_image_shape(image_shape):
    ok = (
        isinstance(image_shape, (tuple, list))
        and len(image_shape) == 3
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in image_shape)
        and image_shape[2] in (1, 3)
    )
    if not ok:
        raise ValueError(
            "Expected image_shape=(H, W, C) with positive ints and C in (1, 3). "
            f"Received: image_shape={image_shape!r}"
        )
    return tuple(image_shape)


def build_model(architecture, image_shape=(28, 28, 1), num_classes=None, filters=None,
                num_layers=None, **options):
    """Build an autoregressive pixel model as a functional `keras.Model`.

    Args:
        architecture: one of `ARCHITECTURES`.
        image_shape: `(H, W, C)` of the integer images, C in (1, 3).
        num_classes: number of classes for a class-conditional model, or None.
        filters: feature width; the architecture's default when None.
        num_layers: depth; the architecture's default when None.
        **options: other hyperparameters of the architecture's config class.

    Returns:
        A `keras.Model` mapping images `(B, H, W, C)` in [0, 255] [and integer
        labels `(B,)`] to distribution parameters `(B, H, W, P)`.

    Raises:
        ValueError: for an unknown architecture or option, or a bad shape.

    Example:
        >>> model = build_model("pixelcnn", (28, 28, 1), filters=32, num_layers=2)
        >>> model.output_shape
        (None, 28, 28, 256)
    """
    cls = config_class(architecture)
    image_shape = _check_image_shape(image_shape)
    if num_classes is not None and not (
        isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes > 1
    ):
        raise ValueError(f"Expected num_classes to be None or an int > 1. Received: num_classes={num_classes!r}")
    given = dict(options, filters=filters, num_layers=num_layers)
    config = cls.from_dict({key: value for key, value in given.items() if value is not None})
    return _REGISTRY[architecture][1](config, image_shape, num_classes, name=architecture)
