"""The recurrent math in NumPy, written the way Keras's layers/rnn/*.py write it.

Each cell is a step function over one time step; `scan` walks the steps, applying Keras's
masking rule (a masked step carries the states and repeats the previous output) and
go_backwards (steps taken last to first; outputs in the order they were produced).
"""

import math
from functools import partial

import numpy as np

from . import fastpath, threads
from .errors import LstmctlError

# --- activations ---------------------------------------------------------------------------


def sigmoid(x):
    # tanh form: no overflow warning for large negative x, unlike 1 / (1 + exp(-x)).
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def hard_sigmoid_keras2(x):
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def hard_sigmoid_keras3(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x):
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(x.dtype)


def _exp(x):
    # Floored at the smallest normal number: the same value to ~1e-38, but no underflow flag
    # (the test suite runs under np.errstate(all="raise")).
    return np.exp(np.maximum(x, np.log(np.finfo(x.dtype).tiny).astype(x.dtype)))


def _softplus(x):
    # log(1 + e^x): split so neither exp overflows nor log1p underflows; below -20 it is e^x.
    small = x < -20
    safe = np.where(small, 0, x)
    out = np.maximum(safe, 0) + np.log1p(np.exp(-np.abs(safe)))
    return np.where(small, _exp(x), out)


def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


_ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "relu": lambda x: np.maximum(x, 0),
    "linear": lambda x: x,
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "softplus": _softplus,
    "exponential": _exp,
    "swish": lambda x: x * sigmoid(x),
    "silu": lambda x: x * sigmoid(x),
    "gelu": _gelu,
    "relu6": lambda x: np.clip(x, 0, 6),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "log_sigmoid": lambda x: -_softplus(-x),
    "hard_tanh": lambda x: np.clip(x, -1, 1),
    "softmax": softmax,
}
ACTIVATION_NAMES = sorted([*_ACTIVATIONS, "hard_sigmoid", "hard_silu", "hard_swish"])


def activation(name, keras_major: int):
    """The activation function Keras means by `name`, for files saved by Keras `keras_major`.

    hard_sigmoid (and hard_silu built on it) changed in Keras 3: 0.2x + 0.5 before, x/6 + 0.5 after.
    """
    if name is None:
        name = "linear"
    if not isinstance(name, str):
        raise LstmctlError(f"activation {name!r} is not a built-in Keras activation")
    hard = hard_sigmoid_keras2 if keras_major < 3 else hard_sigmoid_keras3
    if name == "hard_sigmoid":
        return hard
    if name in ("hard_silu", "hard_swish"):
        return lambda x: x * hard(x)
    if name not in _ACTIVATIONS:
        raise LstmctlError(f"activation '{name}' is not supported")
    return _ACTIVATIONS[name]


# --- cells: one time step each ---------------------------------------------------------------
# A step returns (output, new states, gates); gates maps a gate name to (pre-activation, value).


def lstm_step(cell, xw_t, states):
    """xw_t = x_t·W + b, already projected. Gate order i, f, c, o."""
    h, c = states
    return lstm_update(cell, xw_t + h @ cell.U, c)


def lstm_update(cell, z, c):
    """The LSTM update from the fused pre-activations z = x_t·W + h_{t-1}·U + b (ConvLSTM: convolutions).
    With cell.cell_clip, the new cell state is clipped to ±cell_clip before it makes h (TFLite's option)."""
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    i = cell.recurrent_activation(z_i)
    f = cell.recurrent_activation(z_f)
    c_tilde = cell.activation(z_c)
    o = cell.recurrent_activation(z_o)
    c_new = f * c + i * c_tilde
    if cell.cell_clip:
        c_new = np.clip(c_new, -cell.cell_clip, cell.cell_clip)
    h_new = o * cell.activation(c_new)
    if cell.projection is not None:  # torch's proj_size: h = (o ⊙ tanh(c))·W_hrᵀ
        h_new = h_new @ cell.projection
    return h_new, (h_new, c_new), {"i": (z_i, i), "f": (z_f, f), "c": (z_c, c_tilde), "o": (z_o, o)}


def gru_step(cell, xw_t, states):
    """Gate order z, r, h. reset_after applies r to (h·U_h + rb_h), before: to h."""
    (h,) = states
    x_z, x_r, x_h = np.split(xw_t, 3, axis=-1)
    u = cell.units
    if cell.reset_after:
        rec = h @ cell.U
        if cell.recurrent_bias is not None:
            rec = rec + cell.recurrent_bias
        r_z, r_r, r_h = np.split(rec, 3, axis=-1)
        pre_z, pre_r = x_z + r_z, x_r + r_r
        r = cell.recurrent_activation(pre_r)
        pre_h = x_h + r * r_h
    else:
        rec = h @ cell.U[:, : 2 * u]
        pre_z, pre_r = x_z + rec[:, :u], x_r + rec[:, u:]
        r = cell.recurrent_activation(pre_r)
        pre_h = x_h + (r * h) @ cell.U[:, 2 * u :]
    z = cell.recurrent_activation(pre_z)
    hh = cell.activation(pre_h)
    h_new = z * h + (1 - z) * hh
    return h_new, (h_new,), {"z": (pre_z, z), "r": (pre_r, r), "h": (pre_h, hh)}


def simple_rnn_step(cell, xw_t, states):
    (h,) = states
    pre = xw_t + h @ cell.U
    h_new = cell.activation(pre)
    return h_new, (h_new,), {}


STEPS = {"lstm": lstm_step, "gru": gru_step, "simple_rnn": simple_rnn_step}


def project_inputs(cell, x):
    """x·W + b for every time step at once: one matrix product instead of T."""
    xw = x @ cell.W
    if cell.input_bias is not None:
        xw = xw + cell.input_bias
    return xw


def scan(cell, x, states, mask=None, go_backwards=False, zero_output_for_mask=False, trace=None, keep_sequence=True):
    """Run `cell` over x (batch, time, features) from `states`: the fast path (fastpath.py) when
    nothing per-step is asked for and the activations are the standard ones, else the reference.
    With keep_sequence False the fast path keeps no per-step outputs (returns None for them).
    BLAS threads, or batch slices on threads of their own, as lstmctl/threads.py plans them."""
    with threads.limited(x.shape[0] * math.prod(x.shape[2:-1]) * cell.U.size, x.shape[0]) as parts:
        if mask is None and trace is None and cell.projection is None and fastpath.supported(cell) and (cell.kind == "lstm" or not cell.cell_clip):
            return fastpath.scan(cell, x, states, go_backwards, keep_sequence, parts=parts, unpacked=threads.unpacked_macs())
        return reference_scan(cell, x, states, mask, go_backwards, zero_output_for_mask, trace)


def reference_scan(cell, x, states, mask=None, go_backwards=False, zero_output_for_mask=False, trace=None):
    """Run `cell` over x (batch, time, features) from `states`, one plain step at a time.

    Returns (outputs (batch, time, units) in the order produced, final states tuple).
    With a `trace` list, appends per step (gates, states after the step) in the order produced.
    An LSTM cell's cell_clip (TFLite's) clips c to ±cell_clip at each step.
    """
    if cell.cell_clip and cell.kind != "lstm":
        raise LstmctlError(f"cell_clip applies to an LSTM cell, not to a {type(cell).__name__} of kind {cell.kind}")
    if hasattr(cell, "step"):  # a cell with its own products (ConvLSTM convolves) brings its own math
        step, xw = cell.step, cell.project(x)
    else:
        step, xw = partial(STEPS[cell.kind], cell), project_inputs(cell, x)
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    outputs = []
    previous = None
    for t in steps:
        out, new_states, gates = step(xw[:, t], states)
        if mask is not None:
            # over the units; a ConvLSTM's mask may also have its states' positions (Keras masks each)
            keep = mask[:, t].reshape(*mask.shape[:1], *mask.shape[2:], *(1,) * (out.ndim + 1 - mask.ndim))
            new_states = tuple(np.where(keep, n, s) for n, s in zip(new_states, states))
            if zero_output_for_mask or previous is None:
                previous = np.zeros_like(out)
            out = np.where(keep, out, previous)
        states = new_states
        previous = out
        outputs.append(out)
        if trace is not None:
            trace.append((gates, states))
    if not outputs:
        return np.zeros((x.shape[0], 0, *states[0].shape[1:]), x.dtype), states
    return np.stack(outputs, axis=1), states
