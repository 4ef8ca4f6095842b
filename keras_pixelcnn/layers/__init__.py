"""Keras layers the models are built from: causal masks, masked and shifted convolutions,
gated activations, and PixelRNN's recurrent layers (Row LSTM, Diagonal LSTM).

The bottom of the package: imports only Keras (`keras.ops`) and numpy, never another subpackage.
"""

from keras_pixelcnn.layers.attention import CausalAttention
from keras_pixelcnn.layers.gated import ConcatELU, GatedActivation
from keras_pixelcnn.layers.masked_conv import MaskedConv2D
from keras_pixelcnn.layers.masks import causal_mask
from keras_pixelcnn.layers.recurrent import DiagonalLSTM, RowLSTM
from keras_pixelcnn.layers.shifts import ShiftDown, ShiftRight

__all__ = ["CausalAttention", "ConcatELU", "DiagonalLSTM", "GatedActivation", "MaskedConv2D", "RowLSTM", "ShiftDown", "ShiftRight",
           "causal_mask"]
