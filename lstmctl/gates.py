"""Recurrent cells: the fused Keras matrices, their named gate slices, and legacy layouts.

Keras fuses the gates column-wise: kernel W (input_dim, k·units), recurrent_kernel U
(units, k·units), bias b (k·units,); slice j covers columns j·units … (j+1)·units.
LSTM k=4 in order i, f, c, o; GRU k=3 in order z, r, h; SimpleRNN k=1.
"""

from dataclasses import dataclass, replace

import numpy as np

from . import kernels
from .errors import LstmctlError

GATES = {"lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h"), "simple_rnn": ()}
GATE_NAMES = {
    "i": "input gate",
    "f": "forget gate",
    "c": "cell candidate (c̃)",
    "o": "output gate",
    "z": "update gate",
    "r": "reset gate",
    "h": "candidate (h̃)",
}


def n_gates(kind: str) -> int:
    return max(len(GATES[kind]), 1)


@dataclass
class Cell:
    """One direction of one recurrent layer, with Keras's fused weights."""

    kind: str  # lstm | gru | simple_rnn
    units: int
    W: np.ndarray  # kernel (input_dim, k·units)
    U: np.ndarray  # recurrent_kernel (units, k·units)
    bias: np.ndarray | None  # (k·units,), or (2, 3·units) for GRU reset_after
    activation_name: str
    recurrent_activation_name: str | None
    keras_major: int
    reset_after: bool = False
    projection: np.ndarray | None = None  # LSTM only: (units, proj) with h = (o ⊙ tanh(c))·projection (torch's proj_size, W_hr transposed)
    cell_clip: float = 0.0  # TFLite's LSTM clips c_t to [-cell_clip, cell_clip] (0: no clip; Keras has none)

    def __post_init__(self):
        self.activation = kernels.activation(self.activation_name, self.keras_major)
        if self.kind != "simple_rnn":
            self.recurrent_activation = kernels.activation(self.recurrent_activation_name, self.keras_major)

    @property
    def input_dim(self) -> int:
        return self.W.shape[-2]

    @property
    def input_bias(self):
        if self.bias is None:
            return None
        return self.bias[0] if self.bias.ndim == 2 else self.bias

    @property
    def recurrent_bias(self):
        if self.bias is None or self.bias.ndim == 1:
            return None
        return self.bias[1]

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("h", "c") if self.kind == "lstm" else ("h",)

    @property
    def output_dim(self) -> int:
        """Features of h and of the output: units, or the projection's width."""
        return self.units if self.projection is None else self.projection.shape[1]

    def state_widths(self) -> tuple:
        return tuple(self.output_dim if name == "h" else self.units for name in self.state_names)

    def astype(self, dtype) -> "Cell":
        if self.W.dtype == dtype and self.U.dtype == dtype and (self.bias is None or self.bias.dtype == dtype) and (self.projection is None or self.projection.dtype == dtype):
            return self  # keeps what the fast path cached on it
        return replace(  # keeps a subclass's own fields (ConvLSTM's convolution)
            self,
            W=self.W.astype(dtype, copy=False),
            U=self.U.astype(dtype, copy=False),
            bias=None if self.bias is None else self.bias.astype(dtype, copy=False),
            projection=None if self.projection is None else self.projection.astype(dtype, copy=False),
        )

    def split(self) -> dict[str, np.ndarray]:
        """Named matrices: W_<g>, U_<g>, b_<g> (and rb_<g> for GRU reset_after); W, U, b for SimpleRNN."""
        u = self.units
        if self.kind == "simple_rnn":
            out = {"W": self.W, "U": self.U}
            if self.bias is not None:
                out["b"] = self.bias
            return out
        out = {}
        for j, g in enumerate(GATES[self.kind]):
            cols = slice(j * u, (j + 1) * u)
            out[f"W_{g}"] = self.W[..., cols]  # the last axis: a ConvLSTM's kernels lead with kernel_size
            out[f"U_{g}"] = self.U[..., cols]
            if self.input_bias is not None:
                out[f"b_{g}"] = self.input_bias[cols]
            if self.recurrent_bias is not None:
                out[f"rb_{g}"] = self.recurrent_bias[cols]
        if self.projection is not None:
            out["P"] = self.projection
        return out


def make_cell(kind, units, weights, *, where, activation, recurrent_activation, use_bias, reset_after, keras_major, projection=None) -> Cell:
    """Check Keras-layout weights against the config and build a Cell; `projection` (units, proj):
    an LSTM whose h is projected (torch's proj_size), its recurrent kernel then (proj, 4·units)."""
    k = n_gates(kind)
    expected = 3 if use_bias else 2
    if len(weights) != expected:
        raise LstmctlError(f"{where}: expected {expected} weight arrays (kernel, recurrent_kernel{', bias' if use_bias else ''}), found {len(weights)}")
    W, U = weights[0], weights[1]
    if W.ndim != 2 or W.shape[1] != k * units:
        raise LstmctlError(f"{where}: kernel has shape {W.shape}, but units={units} needs (input_dim, {k * units})")
    if projection is not None and (kind != "lstm" or projection.ndim != 2 or projection.shape[0] != units or not 0 < projection.shape[1] < units):
        raise LstmctlError(f"{where}: projection has shape {projection.shape}; an LSTM of {units} units projects h with ({units}, proj_size < {units})")
    h_width = units if projection is None else projection.shape[1]
    if U.shape != (h_width, k * units):
        raise LstmctlError(f"{where}: recurrent_kernel has shape {U.shape}, but units={units} needs {(h_width, k * units)}")
    bias = None
    if use_bias:
        bias = weights[2]
        want = (2, k * units) if (kind == "gru" and reset_after) else (k * units,)
        if bias.shape != want:
            raise LstmctlError(f"{where}: bias has shape {bias.shape}, but the config needs {want}")
    return Cell(kind, units, W, U, bias, activation, recurrent_activation, keras_major, reset_after, projection)


# --- legacy layouts ---------------------------------------------------------------------------


def from_keras1(kind: str, weights: list) -> list:
    """Keras 1 stored separate per-gate arrays: LSTM 12 in i, c, f, o order; GRU 9 in z, r, h."""
    if kind == "lstm" and len(weights) == 12:
        order = (0, 6, 3, 9)  # [W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o, b_o] -> i, f, c, o
    elif kind == "gru" and len(weights) == 9:
        order = (0, 3, 6)
    else:
        return weights
    fused = []
    for part in range(3):
        pieces = [weights[g + part] for g in order]
        if len({p.shape for p in pieces}) != 1 or pieces[0].ndim not in (1, 2):
            raise LstmctlError(f"Keras 1 per-gate arrays do not fuse: shapes {[p.shape for p in pieces]} differ")
        fused.append(np.concatenate(pieces, axis=-1))
    return fused


def _per_gate(matrix, func, k):
    return np.hstack([func(m) for m in np.hsplit(matrix, k)])


def _from_cudnn_input(kernel):
    # cuDNN keeps each gate's input kernel in Fortran layout (as tf_keras's converter undoes it).
    return kernel.T.reshape(kernel.shape, order="F")


def from_cudnn(kind: str, weights: list) -> list:
    """CuDNNLSTM (bias 8u) / CuDNNGRU (bias 6u) to plain LSTM / GRU(reset_after=True) weights."""
    k = n_gates(kind)
    W = _per_gate(weights[0], _from_cudnn_input, k)
    U = _per_gate(weights[1], lambda m: m.T, k)
    if kind == "lstm":
        b = np.sum(np.split(weights[2], 2, axis=0), axis=0)
    else:
        b = np.asarray(weights[2]).reshape((2, -1))
    return [W, U, b]


def is_cudnn_layout(kind: str, weights: list) -> bool:
    if len(weights) != 3 or weights[1].ndim != 2:
        return False
    units = weights[1].shape[0]
    return weights[2].shape == (2 * n_gates(kind) * units,)


def stats(a: np.ndarray) -> dict:
    """mean, std, min, max, Frobenius norm over the finite entries; `nonfinite` counts the rest."""
    a64 = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(a64)
    values = a64[finite]
    out = {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "norm": 0.0}
    if values.size:
        with np.errstate(over="ignore", invalid="ignore"):  # finite weights near float64's limit: their std and norm overflow to inf
            out = {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()), "max": float(values.max()), "norm": float(np.linalg.norm(values))}
    if values.size != a64.size:
        out["nonfinite"] = int(a64.size - values.size)
    return out
