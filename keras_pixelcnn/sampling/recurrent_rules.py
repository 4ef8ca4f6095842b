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
        # W x (B, F) -> (B, 1, W, F), left to right
        return _right_to_left(self._row_gates(values, row), values.weights(self)["side"])[:, None]

    @staticmethod
    def rows_together(rules, values, row):
        """The right-to-left rows of a run's layers (`rules.run_rows`) as one LSTM of all their units.

        Each layer's row reads its own input (pixel by pixel: `plan` refuses others) and its own row above, not
        another layer's row, so they can run side by side. Its recurrence is W steps long, one after
        another, and without XLA each op costs the executor about as much whatever its size: 4
        layers took 4W steps an image row, one LSTM of their units (a block-diagonal side kernel)
        takes W. The unit `k` of the i-th layer is unit `sum(F[:i]) + k`, in each gate.
        """
        units = [rule.output.depth for rule in rules]
        width, offsets = rules[0].output.width, np.cumsum([0] + units)
        # (B, W, 4 F_i) gate-major -> (B, W, 4, F_i) -> (B, W, 4, sum F) -> (B, W, 4 sum F), gate-major
        gates = tf.concat([tf.reshape(rule._row_gates(values, row), (-1, width, 4, rule.output.depth))
                           for rule in rules], axis=-1)
        gates = tf.reshape(gates, (-1, width, 4 * offsets[-1]))
        # side kernels (F_i, 4 F_i) -> (F_i, 4, sum F), zero outside their own units -> (sum F, 4 sum F)
        side = tf.concat([tf.pad(tf.reshape(values.weights(rule)["side"], (f, 4, f)),
                                 [[0, 0], [0, 0], [start, offsets[-1] - start - f]])
                          for rule, f, start in zip(rules, units, offsets)], axis=0)
        h = _right_to_left(gates, tf.reshape(side, (offsets[-1], 4 * offsets[-1])))
        return [part[:, None] for part in tf.split(h, units, axis=-1)]

    def _row_gates(self, values, row):
        """Gate-major gates `(B, W, 4F)` of row `row` but for the in-row term."""
        weights = values.weights(self)
        width, units = self.output.width, self.output.depth
        # (B, 1, W, F) -> (B * W, F) @ (F, 4F) + (B, W, 4F) -> (B, W, 4F).
        # A MatMul, not an einsum: oneDNN's Einsum of a row took several times as long without XLA.
        above = values.window(self.output, shifted(row, -1), 1, 0, width)
        up = tf.reshape(tf.matmul(tf.reshape(above, (-1, units)), weights["up"]), (-1, width, 4 * units))
        gates = values.row(self.inputs[0], row)[:, 0] + up + weights["bias"]
        return tf.gather(gates, gate_major_order(units), axis=-1)


def _right_to_left(gates, side):
    """`(B, W, F)`: the states of an LSTM run right to left over gate-major gates `(B, W, 4F)` with the
    gate-major side kernel `side` `(F, 4F)`: (r, j) reads (r, j + 1), and the rightmost reads a zero state.

    One `(B, 4F)` tensor per column: the W steps are serial, and each op less in a step is W ops
    less per row. The rightmost column's state is zero, so it has no matmul.
    """
    columns = tf.unstack(gates, axis=1)
    units = side.shape[0]
    h, cell = gate_major_cell(columns[-1], tf.zeros_like(columns[-1][:, :units]))
    outputs = [h]
    for z in reversed(columns[:-1]):
        h, cell = gate_major_cell(z + tf.matmul(h, side), cell)
        outputs.append(h)
    return tf.stack(outputs[::-1], axis=1)


register_rule(RowLSTM, lambda layer: _RowLSTM)
register_rule(DiagonalLSTM, lambda layer: _DiagonalLSTM)
