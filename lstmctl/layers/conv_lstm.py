"""ConvLSTM1D/2D/3D: an LSTM whose matrix products are convolutions (Keras's ConvLSTMCell).

The gates are the LSTM's i, f, c, o, sliced along the last axis of kernel (*kernel_size, in,
4·filters), recurrent_kernel (*kernel_size, filters, 4·filters) and bias (4·filters,):

    z = conv(x_t, kernel; strides, padding, dilation_rate) + bias + conv(h_{t-1}, recurrent_kernel; "same", stride 1)

then the LSTM update. The recurrent convolution always pads "same" with stride 1 (Keras's
recurrent_conv), so the states keep the input convolution's output shape (batch, *spatial,
filters). The layer runs as any recurrent layer (masking, go_backwards, return_state,
Bidirectional) through recurrent.run_direction and kernels.reference_scan, with this cell's own
step; the fast path does not take it.
"""

from dataclasses import dataclass

import numpy as np

from .. import config as cfg
from .. import kernels
from ..config import positive_int
from ..errors import LstmctlError
from ..gates import Cell
from .base import register
from .convolution import Window, channels_first, check_kernel, convolve, rank_of, read_window
from .recurrent import Recurrent, cell_facts


@dataclass
class ConvCell(Cell):
    """Keras's fused ConvLSTM weights (kind "lstm", units = filters) and the input convolution's
    window. A channels_first layer ((batch, time, channels, *spatial) in, states (batch, filters,
    *spatial)) is computed channels_last between transposes: the kernels' layout is the same."""

    window: Window | None = None
    channels_first: bool = False

    @property
    def repeats_masked_output(self) -> bool:
        """tf_keras's ConvRNN never zeroes a masked step's output (its backend.rnn call ignores
        zero_output_for_mask, also the one Bidirectional sets); Keras 3's ConvLSTM is an RNN that does."""
        return self.keras_major < 3

    @property
    def rank(self) -> int:
        return len(self.window.size)

    @property
    def recurrent_window(self) -> Window:
        ones = (1,) * self.rank
        return Window(self.window.size, ones, ones, "same")

    def _last(self, a, axis):
        """Channels (at `axis` of a channels_first array) moved last."""
        return np.moveaxis(a, axis, -1) if self.channels_first else a

    def _layer_layout(self, a):
        return np.moveaxis(a, -1, 1) if self.channels_first else a

    def project(self, x):
        """The input convolution of every time step at once (time folded into the batch), plus bias."""
        x = self._last(x, 2)
        batch, steps = x.shape[:2]
        xw = convolve(x.reshape(batch * steps, *x.shape[2:]), self.W, self.window)
        if self.bias is not None:
            xw += self.bias
        return xw.reshape(batch, steps, *xw.shape[1:])

    def step(self, xw_t, states):
        h, c = (self._last(s, 1) for s in states)
        h_new, (_, c_new), gates = kernels.lstm_update(self, xw_t + convolve(h, self.U, self.recurrent_window), c)
        h_new, c_new = self._layer_layout(h_new), self._layer_layout(c_new)
        return h_new, (h_new, c_new), {g: tuple(self._layer_layout(a) for a in pair) for g, pair in gates.items()}

    def state_shape(self, layer, x, mask) -> tuple:
        """The states' shape for an input x (batch, time, *spatial, channels), channels after time
        for channels_first; a mask is (batch, time) or, channels_last, also the states' positions
        (Keras masks each position then)."""
        where = f"layer '{layer.name}'"
        spatial, channels = (x.shape[3:], x.shape[2:3]) if self.channels_first else (x.shape[2:-1], x.shape[-1:])
        if x.ndim != self.rank + 3 or channels != (self.input_dim,):
            dims = ["…"] * self.rank
            want = ", ".join(["batch", "time", *([str(self.input_dim), *dims] if self.channels_first else [*dims, str(self.input_dim)])])
            raise LstmctlError(f"{where}: its kernel expects input ({want}), got {x.shape}")
        out = self.window.output_shape(spatial, where)
        if mask is not None and mask.shape not in (x.shape[:2], x.shape[:2] + (() if self.channels_first else out)):
            raise LstmctlError(f"{where}: its mask has shape {mask.shape}, not (batch, time){'' if self.channels_first else ' or (batch, time, *the states positions)'}")
        return (x.shape[0], self.units, *out) if self.channels_first else (x.shape[0], *out, self.units)

    def state_dims(self, in_shape, width) -> list:
        """A state's dimensions after the batch, for an input shape (None where unknown)."""
        spatial = None if in_shape is None else (in_shape[3:] if self.channels_first else in_shape[2:-1])
        out = [None] * self.rank if spatial is None or None in spatial else list(self.window.output_shape(spatial, "ConvLSTM"))
        return [width, *out] if self.channels_first else [*out, width]


def make_conv_cell(cls, config, weights, where, major) -> ConvCell:
    rank = rank_of(cls)
    filters = positive_int(config.get("filters"), f"{where}: filters")
    cfg.check_flags(config, cfg.RNN_FLAGS, where)
    window = read_window(config, rank, where)
    activation = cfg.activation_name(config.get("activation", "tanh"), "activation", where)
    # The default changed: Keras 2's ConvLSTM used hard_sigmoid, Keras 3's uses sigmoid.
    recurrent_activation = cfg.activation_name(config.get("recurrent_activation", "sigmoid" if major >= 3 else "hard_sigmoid"), "recurrent_activation", where)
    use_bias = cfg.use_bias(config, where)
    want = 3 if use_bias else 2
    if len(weights) != want:
        raise LstmctlError(f"{where}: {cls} should hold {want} weight arrays (kernel, recurrent_kernel{', bias' if use_bias else ''}), found {len(weights)}")
    kernel, recurrent_kernel = weights[0], weights[1]
    check_kernel(kernel, window.size, 4 * filters, "kernel", where)
    if recurrent_kernel.shape != (*window.size, filters, 4 * filters):
        raise LstmctlError(f"{where}: recurrent_kernel has shape {recurrent_kernel.shape}, but the config needs {(*window.size, filters, 4 * filters)}")
    bias = weights[2] if use_bias else None
    if bias is not None and bias.shape != (4 * filters,):
        raise LstmctlError(f"{where}: bias has shape {bias.shape}, but filters={filters} needs ({4 * filters},)")
    return ConvCell("lstm", filters, kernel, recurrent_kernel, bias, activation, recurrent_activation, major, window=window, channels_first=channels_first(config, where))


@register("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
class ConvLSTM(Recurrent):
    """Weights as an LSTM's (kernel, recurrent_kernel, bias; Keras 3 under `<layer>/cell`)."""

    def build(self, builder, layer, entry, where):
        layer.cell = make_conv_cell(layer.class_name, layer.config, layer.weights, where, builder.major)

    def facts(self, layer, major):
        cell = layer.cell
        return {**cell_facts(layer, major), "filters": cell.units, "kernel_size": list(cell.window.size), **cell.window.facts(),
                "data_format": "channels_first" if cell.channels_first else "channels_last", "recurrent_convolution": "padding same, stride 1"}  # fmt: skip
