"""PixelSNAIL (Chen et al. 2018): gated residual convolutions interleaved with causal self-attention.

One down-right-shifted stream `ul` reads, at pixel `p`, only pixels before `p`
in raster order: a mask-"A" 3x3 convolution (one colour group: the centre pixel
excluded whole) starts it, and PixelCNN++'s gated resnet blocks with mask-"B"
one-group convolutions keep it so. A convolution stack alone has a blind spot
(the pixels up and to the right); each block ends with attention over every
earlier pixel, which removes it:

    ul = gated_resnet(ul) x num_resnets
    q  = MaskedConv2D(h*dk, 1)(ul)                      reads pixels < p
    k  = MaskedConv2D(h*dk, 1)(concat(ul, x))           reads pixels <= p
    v  = MaskedConv2D(h*dv, 1)(concat(ul, x))
    a  = CausalAttention(h)([q, k, v])                  keys q' < p only: reads pixels < p
    ul = gated_resnet(ul, aux=a)

The keys and values read their own pixel's image values, so the attention of
`p` reaches the pixel just before it, which the stream cannot. The attention
mask is strict: no pixel reads its own key.

Outputs: a discretized logistic mixture (the paper's, default; the mixture
couples R -> G -> B through its coefficients, so the network reads no channel
of the current pixel), or a 256-way categorical per sub-pixel, where a mask-"A"
1x1 convolution of the image with C colour groups gives channel c the current
pixel's channels before c.

Reference:
    Chen, Mishra, Rohaninejad, Abbeel. "PixelSNAIL: An Improved Autoregressive
    Generative Model", ICML 2018.
"""

import dataclasses

import keras

from keras_pixelcnn.layers.attention import CausalAttention
from keras_pixelcnn.layers.masked_conv import MaskedConv2D
from keras_pixelcnn.models import blocks, common

OUTPUTS = ("logistic_mixture", "categorical")


@dataclasses.dataclass(frozen=True)
class PixelSNAILConfig(common.HyperParameters):
    """Hyperparameters of `build`.

    Attributes:
        filters: feature maps F of the stream.
        num_layers: attention blocks.
        num_resnets: gated resnet blocks before each attention.
        num_heads: attention heads h.
        key_filters: query/key features per head dk.
        value_filters: value features per head dv.
        num_logistic_mix: mixture components K (logistic-mixture output).
        head_filters: width of the hidden 1x1 layer of the categorical output.
        dropout: dropout rate in each gated resnet block, in [0, 1).
        output: "logistic_mixture" or "categorical".
    """

    filters: int = 64
    num_layers: int = 2
    num_resnets: int = 2
    num_heads: int = 2
    key_filters: int = 16
    value_filters: int = 32
    num_logistic_mix: int = 10
    head_filters: int = 128
    dropout: float = 0.0
    output: str = "logistic_mixture"

    def __post_init__(self):
        blocks.check_dropout(self.dropout)
        if self.output not in OUTPUTS:
            raise ValueError(f"Expected output in {OUTPUTS}. Received: output={self.output!r}")


def _attention(ul, x, config, name):
    """Queries from `ul` (pixels < p), keys and values from `[ul, x]` (pixels <= p), strictly causal attention."""
    heads = config.num_heads
    both = keras.layers.Concatenate(name=f"{name}_kv_input")([ul, x])
    q = MaskedConv2D(heads * config.key_filters, 1, "B", 1, name=f"{name}_query")(ul)
    k = MaskedConv2D(heads * config.key_filters, 1, "B", 1, name=f"{name}_key")(both)
    v = MaskedConv2D(heads * config.value_filters, 1, "B", 1, name=f"{name}_value")(both)
    return CausalAttention(heads, name=f"{name}_attention")([q, k, v])


def _head(ul, x, config, channels):
    """The distribution's parameters from the stream (and, categorical, the current pixel's earlier channels)."""
    ul = keras.layers.ELU(name="head_elu")(ul)
    if config.output == "categorical":
        hidden = MaskedConv2D(config.head_filters, 1, "B", channels, name="head_stream")(ul)
        if channels > 1:  # channel c reads channels < c of its own pixel
            own = MaskedConv2D(config.head_filters, 1, "A", channels, use_bias=False, name="head_pixel")(x)
            hidden = keras.layers.Add(name="head_add_pixel")([hidden, own])
        return common.categorical_head(hidden, config.head_filters, channels)
    return common.mixture_head(ul, channels, config.num_logistic_mix)


def build(config, image_shape, num_classes=None, name="pixelsnail"):
    """Functional PixelSNAIL over `image_shape = (H, W, C)` integer images.

    Args:
        config: a `PixelSNAILConfig`.
        image_shape: `(H, W, C)`.
        num_classes: number of classes for a class-conditional model, or None.
        name: model name.

    Returns:
        `keras.Model` mapping images `(B, H, W, C)` [and labels `(B,)`] to
        mixture parameters (see `DiscretizedLogisticMixture`) or logits
        `(B, H, W, C * 256)`.

    Raises:
        ValueError: for a categorical output with `head_filters` < C.

    Example:
        >>> build(PixelSNAILConfig(filters=16, num_layers=1, num_logistic_mix=5), (8, 8, 1)).output_shape
        (None, 8, 8, 15)
    """
    channels = image_shape[-1]
    if config.output == "categorical" and config.head_filters < channels:
        raise ValueError(f"Expected head_filters >= {channels} colour channels. "
                         f"Received: head_filters={config.head_filters}")
    inputs, x, labels = common.model_inputs(image_shape, num_classes)
    ul = MaskedConv2D(config.filters, 3, "A", 1, name="init_ul")(x)
    width = 2 * config.filters
    for block in range(config.num_layers):
        for index in range(config.num_resnets):
            prefix = f"block{block}_res{index}"
            bias = common.class_bias(labels, num_classes, width, prefix)
            ul = blocks.gated_resnet(ul, None, bias, "ul", config, prefix)
        attended = _attention(ul, x, config, f"block{block}")
        bias = common.class_bias(labels, num_classes, width, f"block{block}_out")
        ul = blocks.gated_resnet(ul, attended, bias, "ul", config, f"block{block}_out")
    outputs = _head(ul, x, config, channels)
    return keras.Model(inputs, outputs, name=name)
