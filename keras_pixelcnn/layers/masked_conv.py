"""`MaskedConv2D`: a Keras `Conv2D` whose kernel is multiplied by a causal mask."""

import keras
from keras import ops

from keras_pixelcnn.layers.masks import MASK_TYPES, causal_mask


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class MaskedConv2D(keras.layers.Conv2D):
    """2-D convolution that only reads earlier sub-pixels (PixelCNN masking).

    The mask is a constant built once in `build()` from
    `keras_pixelcnn.layers.masks.causal_mask`; it is never a weight, so `.keras`
    files hold only the ordinary `Conv2D` kernel and bias. Feature maps are
    split into `color_channels` colour groups (R, G, B order) so colour images
    are modelled one sub-pixel at a time.

    Args:
        filters: number of output feature maps, at least `color_channels`.
        kernel_size: int or `(kh, kw)`, odd.
        mask_type: "A" for the first layer (excludes the current sub-pixel),
            "B" for later layers (includes it), "V" for a vertical stack
            (every tap in and above the centre row; see `masks`).
        color_channels: number of colour channels C of the modelled image.
        strides: int or `(s, s)`. Output pixel `(i, j)` is centred on input
            pixel `(s*i, s*j)`: the input is zero-padded by `kh // 2` rows and
            `kw // 2` columns on each side, then convolved without padding
            (Keras' own "same" padding is lopsided for even inputs at stride 2,
            which would let a down-sampled pixel read the row below it).
        **kwargs: any other `keras.layers.Conv2D` argument. `padding` must be
            "same"; `groups` must be 1 and `data_format` "channels_last".

    Input shape:
        `(B, H, W, in_channels)`, `in_channels >= color_channels`.

    Output shape:
        `(B, ceil(H / s), ceil(W / s), filters)`.

    Raises:
        ValueError: for an unknown `mask_type` or a layout that breaks the
            pixel alignment the mask relies on.

    Example:
        >>> layer = MaskedConv2D(32, 7, mask_type="A", color_channels=3)
        >>> layer(keras.ops.zeros((2, 8, 8, 3))).shape
        (2, 8, 8, 32)

    Reference:
        van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016.
    """

    def __init__(self, filters, kernel_size, mask_type="B", color_channels=1, strides=1, **kwargs):
        if mask_type not in MASK_TYPES:
            raise ValueError(f"Expected mask_type in {MASK_TYPES}. Received: mask_type={mask_type!r}")
        if not isinstance(color_channels, int) or color_channels < 1:
            raise ValueError(
                f"Expected color_channels to be a positive int. Received: color_channels={color_channels!r}"
            )
        kwargs.setdefault("padding", "same")
        super().__init__(filters, kernel_size, strides=strides, **kwargs)
        fixed = {"padding": "same", "dilation_rate": (1, 1), "groups": 1,
                 "data_format": "channels_last"}
        received = {key: getattr(self, key) for key in fixed}
        if received != fixed or self.strides[0] != self.strides[1]:
            fixed["strides"] = "(s, s)"
            received["strides"] = self.strides
            raise ValueError(
                f"MaskedConv2D needs {fixed}. Received: {received}"
            )
        if filters < color_channels:
            raise ValueError(
                f"Expected filters >= color_channels={color_channels} (one group per colour). "
                f"Received: filters={filters}"
            )
        self.mask_type = mask_type
        self.color_channels = color_channels
        self._mask = None

    def build(self, input_shape):
        super().build(input_shape)
        in_channels = input_shape[-1]
        if in_channels < self.color_channels:
            raise ValueError(
                f"Expected at least color_channels={self.color_channels} input channels. "
                f"Received: input_shape={input_shape}"
            )
        self._mask = causal_mask(
            self.kernel_size, in_channels, self.filters, self.mask_type, self.color_channels
        )

    @property
    def causal_padding(self):
        """`((top, bottom), (left, right))` zero padding before the unpadded convolution.

        Only the kernel rows down to the centre are convolved (`used_kernel`), so
        nothing is padded below: output `(i, j)` still reads the taps of its mask
        around input `(s*i, s*j)`.
        """
        kh, kw = self.kernel_size
        return ((kh // 2, 0), (kw // 2, kw // 2))

    def masked_kernel(self, kernel=None):
        """The kernel times the mask, `(kh, kw, in_channels, filters)`."""
        kernel = self.kernel if kernel is None else kernel
        return kernel * ops.convert_to_tensor(self._mask, dtype=kernel.dtype)

    def used_kernel(self, kernel=None):
        """The masked kernel's rows 0 .. kh // 2, `(kh // 2 + 1, kw, in_channels, filters)`.

        Every mask zeroes all rows below the centre, so convolving only these
        rows gives the same output and skips `(kh // 2) / kh` of the taps: 3/7
        of a 7x7 stem, 1/3 of a 3x3 layer (`benchmarks/train_throughput.py`
        measures the gain). The weights keep their full `(kh, kw)` layout.
        """
        return self.masked_kernel(kernel)[: self.kernel_size[0] // 2 + 1]

    def convolution_op(self, inputs, kernel):
        # (B, H, W, in) -> (B, H + kh//2, W + 2*(kw//2), in): output (i, j) centred on input (s*i, s*j)
        inputs = ops.pad(inputs, ((0, 0),) + self.causal_padding + ((0, 0),))
        return ops.conv(inputs, self.used_kernel(kernel), strides=self.strides, padding="valid",
                        data_format="channels_last")

    def get_config(self):
        config = super().get_config()
        config.update({"mask_type": self.mask_type, "color_channels": self.color_channels})
        return config
