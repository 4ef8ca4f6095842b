"""Autoregressive convolution masks, as pure numpy functions.

Sub-pixels are ordered in raster order: row, then column, then colour channel
(R before G before B). A convolution is causal when the output for a sub-pixel
only reads sub-pixels that come before it ("A") or, after the first layer,
features computed from sub-pixels up to and including it ("B").

Feature maps are split into ``color_channels`` contiguous groups that follow
the colour order, as in the PixelRNN paper: feature ``i`` of ``n`` belongs to
group ``i * color_channels // n``. At the centre tap, output group ``g`` may
read input group ``h`` when ``h < g`` (mask "A") or ``h <= g`` (mask "B").

Mask "V" (vertical) keeps every tap in and above the centre row, whatever the
column or channel: the vertical stack of Gated PixelCNN and the down-shifted
convolutions of PixelCNN++. Its output reads the current row, including pixels
to the right, so a model must shift it down a row before pixels of that row use it.

Reference:
    van den Oord, Kalchbrenner, Kavukcuoglu. "Pixel Recurrent Neural
    Networks", ICML 2016, section 3.4.
"""

import numpy as np

MASK_TYPES = ("A", "B", "V")


def channel_groups(num_features, color_channels):
    """Colour group (0 .. color_channels - 1) of each of `num_features` features.

    Args:
        num_features: number of feature maps, at least `color_channels`.
        color_channels: number of colour channels C of the image.

    Returns:
        int array `(num_features,)`, non-decreasing, every group present.

    Raises:
        ValueError: if there are fewer features than colour channels.
    """
    if color_channels < 1:
        raise ValueError(
            f"Expected color_channels >= 1. Received: color_channels={color_channels}"
        )
    if num_features < color_channels:
        raise ValueError(
            "Expected at least one feature map per colour channel, i.e. "
            f"num_features >= {color_channels}. Received: num_features={num_features}"
        )
    return np.arange(num_features) * color_channels // num_features


def causal_mask(kernel_size, in_channels, out_channels, mask_type, color_channels=1):
    """Mask for a `(kh, kw, in_channels, out_channels)` convolution kernel.

    Taps above the centre row and left of the centre in the centre row are
    kept; taps right of or below the centre are zeroed. The centre tap keeps
    the channel pairs allowed by `mask_type` between colour groups.

    Args:
        kernel_size: `(kh, kw)`, both odd.
        in_channels: input feature maps.
        out_channels: output feature maps.
        mask_type: "A" (excludes the current sub-pixel), "B" (includes it) or
            "V" (every tap in and above the centre row).
        color_channels: number of colour channels C.

    Returns:
        float32 array `(kh, kw, in_channels, out_channels)` of zeros and ones.

    Raises:
        ValueError: for an unknown mask type or an even kernel size.

    Example:
        >>> causal_mask((3, 3), 1, 1, "A")[..., 0, 0]
        array([[1., 1., 1.],
               [1., 0., 0.],
               [0., 0., 0.]], dtype=float32)
    """
    if mask_type not in MASK_TYPES:
        raise ValueError(f"Expected mask_type in {MASK_TYPES}. Received: mask_type={mask_type!r}")
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(
            f"Expected an odd kernel size for a centred mask. Received: kernel_size={kernel_size}"
        )
    mask = np.zeros((kh, kw, in_channels, out_channels), dtype=np.float32)
    ch, cw = kh // 2, kw // 2
    if mask_type == "V":
        mask[: ch + 1] = 1.0
        return mask
    mask[:ch] = 1.0
    mask[ch, :cw] = 1.0
    g_in = channel_groups(in_channels, color_channels)[:, None]
    g_out = channel_groups(out_channels, color_channels)[None, :]
    allowed = g_in < g_out if mask_type == "A" else g_in <= g_out
    mask[ch, cw] = allowed.astype(np.float32)
    return mask
