"""Incremental rules of the PixelRNN layers: `RowLSTM` and `DiagonalLSTM` step their state.

Registered with `rules.register_rule` on import (`incremental` imports this module).
"""

import numpy as np
import tensorflow as tf

from keras_pixelcnn.layers.recurrent import DiagonalLSTM, RowLSTM, gate_major_cell, gate_major_order
from keras_pixelcnn.sampling.rules import NotCacheable, _copy_shape, _read, _Rule, register_rule
from keras_pixelcnn.sampling.values import shifted


def _lstm_cell(gates, c_prev):
    """`layers.recurrent.lstm_cell`, the interleaved gates made gate-major by one gather: its reshape,
    transpose and reshape were three ops of a sampler's step, and oneDNN's transpose of a pixel's
    few hundred gates took about as long as the step's matmuls in an exported Row LSTM."""
    return gate_major_cell(tf.gather(gates, gate_major_order(gates.shape[-1] // 4), axis=-1), c_prev)


class _RowLSTM(_Rule):
    """`RowLSTM` at pixel (r, j): gates from the input at (r, j), h of row r - 1 at j - k//2 .. j + k//2."""

    reads_neighbours = False
    reads_own_output = True
    aux = ("cell",)

    def plan(self):
        (source,) = self.inputs
        if source.phase not in ("pixel", "image"):
            raise NotCacheable(f"RowLSTM {self.layer.name!r} must read a pixel-by-pixel input")
        _copy_shape(self.output, source, "pixel")
        half = self.layer.kernel_size // 2
        self.output.need_pad(top=1, left=half, right=half)

    def reads_current(self):
        # gate channels 4k .. 4k + 3 make feature k
        return self.inputs[0].current.reshape(self.output.depth, 4, -1).any(axis=1)

    def wavefront_reach(self):
        return self.layer.kernel_size // 2  # h of row r - 1 at j + k//2

    def prepare(self):
        # (k, F, 4F) -> (k * F, 4F)
        return _read(self.layer, state=tf.reshape(self.layer.state_kernel, (-1, self.layer.state_kernel.shape[-1])))

    def pixel(self, values, row, col):
        layer = self.layer
        weights = values.weights(self)
        half = layer.kernel_size // 2
        above = values.window(self.output, shifted(row, -1), 1, shifted(col, -half), layer.kernel_size)
        # (B, 1, k, F) -> (B, k * F) x (k * F, 4F) -> (B, 4F)
        state = tf.matmul(tf.reshape(above, (-1, weights["state"].shape[0])), weights["state"])
        gates = values.at(self.inputs[0], row, col) + state + weights["bias"]
        cell_above = values.vector(self.output, shifted(row, -1), col, aux="cell")
        h, cell = _lstm_cell(gates, cell_above)
        values.write(self.output, row, col, cell, aux="cell")
        return h


class _DiagonalLSTM(_Rule):
    """`DiagonalLSTM`: left-to-right pixel by pixel; right-to-left a whole row at once."""

    reads_neighbours = False
    reads_own_output = True

    def plan(self):
        (source,) = self.inputs
        if source.phase not in ("pixel", "image"):
            raise NotCacheable(f"DiagonalLSTM {self.layer.name!r} must read a pixel-by-pixel input")
        if self.layer.reverse:
            # (r, j) reads (r, j + 1): the row is final once the input's row is.
            _copy_shape(self.output, source, "row", source.ready_rows())
            self.output.need_pad(top=1)
        else:
            self.aux = ("cell",)
            _copy_shape(self.output, source, "pixel")
            self.output.need_pad(top=1, left=1)

    def reads_current(self):
        return self.inputs[0].current.reshape(self.output.depth, 4, -1).any(axis=1)

    def prepare(self):
        weights = _read(self.layer, up=self.layer.up_kernel, side=self.layer.side_kernel)
        if self.layer.reverse:  # the row's recurrence steps on gate-major gates (`row`)
            weights["side"] = tf.gather(weights["side"], gate_major_order(self.output.depth), axis=-1)
        return weights

    def pixel(self, values, row, col):
        weights = values.weights(self)
        up = values.vector(self.output, shifted(row, -1), col)
        left = values.vector(self.output, row, shifted(col, -1))
        gates = tf.add_n([values.at(self.inputs[0], row, col), tf.matmul(up, weights["up"]),
                          tf.matmul(left, weights["side"])]) + weights["bias"]
        h, cell = _lstm_cell(gates, values.vector(self.output, row, shifted(col, -1), aux="cell"))
        values.write(self.output, row, col, cell, aux="cell")
        return h

    def row(self, values, row):
        weights = values.weights(self)
        width, units = self.output.width, self.output.depth
        # (B, 1, W, F) -> (B * W, F) @ (F, 4F) + (B, W, 4F) -> (B, W, 4F): all but the in-row term.
        # A MatMul, not an einsum: oneDNN's Einsum of a row took several times as long without XLA.
        above = values.window(self.output, shifted(row, -1), 1, 0, width)
        up = tf.reshape(tf.matmul(tf.reshape(above, (-1, units)), weights["up"]), (-1, width, 4 * units))
        gates = values.row(self.inputs[0], row)[:, 0] + up + weights["bias"]
        # Gate-major once per row, one (B, 4F) tensor per column: the W steps below are serial, and
        # each op less in a step is W ops less per row. `weights["side"]` is gate-major (`prepare`).
        columns = tf.unstack(tf.gather(gates, gate_major_order(units), axis=-1), axis=1)
        # right to left: (r, j) reads (r, j + 1); the rightmost column's state is zero (no matmul of zeros)
        h, cell = gate_major_cell(columns[-1], tf.zeros_like(columns[-1][:, :units]))
        outputs = [h]
        for z in reversed(columns[:-1]):
            h, cell = gate_major_cell(z + tf.matmul(h, weights["side"]), cell)
            outputs.append(h)
        # W x (B, F) -> (B, 1, W, F), left to right
        return tf.stack(outputs[::-1], axis=1)[:, None]


register_rule(RowLSTM, lambda layer: _RowLSTM)
register_rule(DiagonalLSTM, lambda layer: _DiagonalLSTM)
