"""Pieces every architecture shares: hyperparameters, inputs, conditioning, head."""

import dataclasses

import keras

from keras_pixelcnn.distributions import PixelDistribution
from keras_pixelcnn.distributions.logistic_mixture import DiscretizedLogisticMixture
from keras_pixelcnn.layers.masked_conv import MaskedConv2D


# The largest value of each integer hyperparameter (4096 for the others): beyond them a model
# does not fit in memory (`kernel_size: 1000001` asked TensorFlow for a 8 TB kernel and
# `num_logistic_mix: 10**8` got the process killed).
MAXIMA = {"num_layers": 256, "kernel_size": 255, "stem_kernel_size": 255, "num_logistic_mix": 256}


@dataclasses.dataclass(frozen=True)
class HyperParameters:
    """Base of each architecture's frozen hyperparameter dataclass.

    Every field is a positive int unless its default is not an int.
    """

    @classmethod
    def from_dict(cls, values):
        """Build from a mapping, rejecting keys the architecture does not know.

        Raises:
            ValueError: for an unknown key or a non-positive integer value.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(
                f"Unknown option(s) {unknown} for {cls.__name__}; expected some of {sorted(fields)}. "
                f"Received: {dict(values)}"
            )
        for key, value in values.items():
            highest = MAXIMA.get(key, 4096)
            if isinstance(fields[key].default, int) and not (
                isinstance(value, int) and not isinstance(value, bool) and 0 < value <= highest
            ):
                raise ValueError(f"Expected {key} to be an integer in [1, {highest}]. Received: {key}={value!r}")
        return cls(**values)

    def to_dict(self):
        return dataclasses.asdict(self)


def model_inputs(image_shape, num_classes):
    """Integer image input (and label input when conditional).

    Returns:
        `(inputs, x, labels)`: the image `keras.Input` (a list `[images,
        labels]` when conditional), the images scaled to [-1, 1] as float,
        and the label input or None.
    """
    images = keras.Input(shape=image_shape, dtype="int32", name="images")
    # uint8 levels [0, 255] -> [-1, 1]
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(images)
    if num_classes is None:
        return images, x, None
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    return [images, labels], x, labels


def class_bias(labels, num_classes, filters, name):
    """A learned per-class bias `(B, 1, 1, filters)`, or None when unconditional.

    A label is not a pixel, so adding it anywhere keeps the model causal.
    """
    if labels is None:
        return None
    bias = keras.layers.Embedding(num_classes, filters, name=f"{name}_embedding")(labels)
    return keras.layers.Reshape((1, 1, filters), name=f"{name}_reshape")(bias)


def add_class_bias(x, bias, name):
    """`x + bias` when conditional, `x` otherwise."""
    if bias is None:
        return x
    return keras.layers.Add(name=f"{name}_add_label")([x, bias])


def categorical_head(x, hidden, channels, name="head"):
    """ReLU -> masked 1x1 -> ReLU -> masked 1x1 to 256 logits per sub-pixel.

    Returns:
        `(B, H, W, C * 256)` logits tagged by a `PixelDistribution` layer.
    """
    x = keras.layers.ReLU(name=f"{name}_relu1")(x)
    x = MaskedConv2D(hidden, 1, "B", channels, name=f"{name}_conv1")(x)
    x = keras.layers.ReLU(name=f"{name}_relu2")(x)
    x = MaskedConv2D(channels * 256, 1, "B", channels, name=f"{name}_logits")(x)
    return PixelDistribution("categorical", channels, name="distribution")(x)


def mixture_head(x, channels, num_mix):
    """A masked 1x1 convolution to discretized logistic mixture parameters, tagged by a `PixelDistribution`.

    Pixel (0, 0) reads no image (every feature there is a bias): a random bias keeps its
    coefficients, hence the R -> G -> B coupling, away from the degenerate zero at init.
    """
    num_params = DiscretizedLogisticMixture.num_params(channels, num_mix)
    params = MaskedConv2D(num_params, 1, "B", 1, bias_initializer=keras.initializers.RandomNormal(stddev=0.1),
                          name="head_params")(x)
    options = {"num_mix": num_mix}
    return PixelDistribution(DiscretizedLogisticMixture.name, channels, options=options, name="distribution")(params)
