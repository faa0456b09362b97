"""ONNX nodes in a Model read from an .onnx file (lstmctl.formats.onnx_file): the LSTM / GRU / RNN
nodes, run by the Keras-layout recurrent layers with ONNX's input and output layouts around them,
and the few operators torch.onnx.export writes around them (Transpose, Reshape, Concat, MatMul,
Add, Gemm, Squeeze, Gather, Shape, …), each a line of NumPy. They are not registered under Keras
class names: the reader attaches them to the layers it makes.

A node's inputs are `layer.params["inputs"]`: per ONNX input slot, an int (the position in the
call's tensors), an array (an initializer or a Constant node's value) or None (absent).
"""

import numpy as np

from .. import kernels
from ..errors import LstmctlError
from .base import LayerType, Tensor
from .recurrent import Bidirectional, RecurrentBase

MAX_ELEMENTS = 1 << 26  # what one operator may allocate from sizes the file gives (Expand, ConstantOfShape)


def node_inputs(layer, args) -> list:
    """The node's ONNX inputs in slot order: arrays, or None where absent."""
    return [args[s].value if isinstance(s, int) else s for s in layer.params["inputs"]]


def _axes(layer, values, at):
    """Squeeze / Unsqueeze / reduce axes: the input (opset 13+) or the attribute."""
    if len(values) > at and values[at] is not None:
        return [int(a) for a in np.asarray(values[at]).ravel()]
    return list(layer.params["attrs"].get("axes", []))


def _elements(layer, shape):
    if any(d < 0 for d in shape) or int(np.prod(shape, dtype=object)) > MAX_ELEMENTS:
        raise ValueError(f"shape {tuple(shape)} is negative or over lstmctl's cap of {MAX_ELEMENTS} elements")  # said with the node's name by OnnxOp.call
    return tuple(shape)


def _reshape(layer, x, shape):
    shape = [int(d) for d in np.asarray(shape).ravel()]
    if not layer.params["attrs"].get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def _unsqueeze(layer, x, axes):
    rank = x.ndim + len(axes)
    for a in sorted(a % rank for a in axes):
        x = np.expand_dims(x, a)
    return x


def _slice(layer, values):
    x, starts, ends = values[:3]
    axes = values[3] if len(values) > 3 and values[3] is not None else range(len(starts))
    steps = values[4] if len(values) > 4 and values[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        n = x.shape[int(a)]
        index[int(a)] = slice(int(np.clip(s, -n - 1, n)), int(np.clip(e, -n - 1, n)), int(st))
    return x[tuple(index)]


def _gemm(layer, values):
    a = layer.params["attrs"]
    A, B = values[0], values[1]
    A = A.T if a.get("transA", 0) else A
    B = B.T if a.get("transB", 0) else B
    y = a.get("alpha", 1.0) * (A @ B)
    if len(values) > 2 and values[2] is not None:
        y = y + a.get("beta", 1.0) * values[2]
    return y.astype(A.dtype, copy=False)


def _activation(name):
    fn = kernels.activation(name, 3)
    return lambda layer, v: fn(v[0])


# op type -> f(layer, input arrays) -> output array
OPS = {
    "Identity": lambda layer, v: v[0],
    "Transpose": lambda layer, v: np.transpose(v[0], layer.params["attrs"].get("perm")),
    "Reshape": lambda layer, v: _reshape(layer, v[0], v[1]),
    "Flatten": lambda layer, v: v[0].reshape(int(np.prod(v[0].shape[: layer.params["attrs"].get("axis", 1)])), -1),
    "Squeeze": lambda layer, v: np.squeeze(v[0], axis=tuple(_axes(layer, v, 1)) or None),
    "Unsqueeze": lambda layer, v: _unsqueeze(layer, v[0], _axes(layer, v, 1)),
    "Concat": lambda layer, v: np.concatenate([a for a in v if a is not None], axis=layer.params["attrs"]["axis"]),
    "MatMul": lambda layer, v: np.matmul(v[0], v[1]),
    "Gemm": _gemm,
    "Add": lambda layer, v: v[0] + v[1],
    "Sub": lambda layer, v: v[0] - v[1],
    "Mul": lambda layer, v: v[0] * v[1],
    "Div": lambda layer, v: v[0] / v[1],
    "Relu": _activation("relu"),
    "Tanh": _activation("tanh"),
    "Sigmoid": _activation("sigmoid"),
    "Shape": lambda layer, v: np.array(v[0].shape, np.int64)[layer.params["attrs"].get("start", 0) : layer.params["attrs"].get("end")],
    "Gather": lambda layer, v: np.take(v[0], np.asarray(v[1], np.int64), axis=layer.params["attrs"].get("axis", 0)),
    "Slice": _slice,
    "Expand": lambda layer, v: np.broadcast_to(v[0], _elements(layer, np.broadcast_shapes(v[0].shape, tuple(int(d) for d in np.asarray(v[1]).ravel())))).copy(),
    "ConstantOfShape": lambda layer, v: np.full(_elements(layer, [int(d) for d in np.asarray(v[0]).ravel()]), layer.params["attrs"].get("value", np.zeros(1, np.float32)).ravel()[0]),
}


class OnnxOp(LayerType):
    """An ONNX operator lstmctl computes (one of OPS)."""

    def call(self, layer, args, ctx):
        values = node_inputs(layer, args)
        try:
            out = OPS[layer.class_name](layer, values)
        except LstmctlError:
            raise
        except Exception as exc:  # shapes the graph gives that do not fit the operator
            raise LstmctlError(f"{ctx.path}: node '{layer.name}' ({layer.class_name}) cannot be computed on inputs {[None if a is None else a.shape for a in values]}: {exc}") from None
        return [Tensor(np.asarray(out))]

    def facts(self, layer, major):
        out = {k: (v.tolist() if isinstance(v, np.ndarray) and v.size <= 8 else v) for k, v in layer.params["attrs"].items() if not isinstance(v, np.ndarray) or v.size <= 8}
        constants = {f"input {i}": list(s.shape) for i, s in enumerate(layer.params["inputs"]) if isinstance(s, np.ndarray)}
        return {**out, **({"constant inputs": constants} if constants else {})}


ONNX_OP = OnnxOp()


class _OnnxRecurrent:
    """An ONNX LSTM / GRU / RNN node over the Keras-layout layer (or Bidirectional) it holds.

    params: inputs (X, W, R, B, sequence_lens, initial_h, initial_c), layout (0: time-major),
    direction. Returns Y, Y_h (and Y_c) in ONNX's shapes, and records them as L/Y, L/Y_h, L/Y_c
    beside the usual L/sequence, L/h, L/c."""

    def call(self, layer, args, ctx):
        if ctx.direct:  # run --layer --direct: lstmctl's own (batch, time, features) in, its keys out
            return super().call(layer, args, ctx)
        values = node_inputs(layer, args) + [None] * 8  # trailing optional inputs may be left out
        x, lengths, h0, c0 = values[0], values[4], values[5], values[6]
        if ctx.probe:  # inspect's shape probe feeds random graph inputs: lengths and states need not fit them
            lengths = h0 = c0 = None
        time_major = layer.params["layout"] == 0
        if x.ndim != 3:
            raise LstmctlError(f"{ctx.path}: node '{layer.name}': X has shape {x.shape}, not rank 3")
        if time_major:
            x = x.transpose(1, 0, 2)
        batch, steps = x.shape[:2]
        mask = None
        if lengths is not None:
            lengths = np.asarray(lengths).astype(np.int64).ravel()
            if lengths.shape != (batch,) or lengths.min(initial=0) < 0 or lengths.max(initial=0) > steps:
                raise LstmctlError(f"{ctx.path}: node '{layer.name}': sequence_lens {lengths.tolist()[:8]} does not give each of {batch} samples a length in 0..{steps}")
            if (lengths < steps).any():
                mask = np.arange(steps)[None, :] < lengths[:, None]
        halves = [layer.forward, layer.backward] if layer.forward is not None else [layer]
        states = []
        for d in range(len(halves)):
            for s in (h0, c0)[: len(halves[d].cell.state_names)]:
                if s is not None:
                    s = np.asarray(s)
                    states.append(s[d] if time_major else s[:, d])
        if states and len(states) != len(halves) * len(halves[0].cell.state_names):
            raise LstmctlError(f"{ctx.path}: node '{layer.name}': initial_h is given without initial_c, or the reverse; lstmctl needs both or neither")
        ctx.states = states or ctx.states
        super().call(layer, [Tensor(x, mask)], ctx)
        L = layer.name
        rec = ctx.record
        if layer.forward is not None:
            seqs = [rec[f"{L}/forward/sequence"], rec[f"{L}/backward/sequence"]]
            finals = [[rec[f"{L}/{half}/{s}"] for half in ("forward", "backward")] for s in layer.forward.cell.state_names]
        else:
            seq = rec[f"{L}/sequence"]
            seqs = [seq[:, ::-1] if layer.flag("go_backwards") else seq]  # ONNX's reverse direction returns Y in input time order
            finals = [[rec[f"{L}/{s}"]] for s in layer.cell.state_names]
        y = np.stack(seqs, axis=2)  # (batch, time, directions, hidden)
        outs = [y.transpose(1, 2, 0, 3) if time_major else y]
        outs += [np.stack(f, axis=0 if time_major else 1) for f in finals]
        for name, value in zip(("Y", "Y_h", "Y_c"), outs):
            rec[f"{L}/{name}"] = value
        return [Tensor(o) for o in outs]


    @staticmethod
    def returns(layer, in_shape, units) -> list:
        """Y, Y_h (and Y_c) with their shapes, as ONNX names them (`in_shape`: X's, in the node's layout)."""
        dirs = 2 if layer.forward is not None else 1
        a, b = (in_shape or (None, None))[:2]
        time, batch = (a, b) if layer.params["layout"] == 0 else (b, a)
        lstm = (layer.forward or layer).cell.kind == "lstm"
        if layer.params["layout"] == 0:
            seq, state = [time, dirs, batch, units], [dirs, batch, units]
        else:
            seq, state = [batch, time, dirs, units], [batch, dirs, units]
        out = [{"keras": "Y", "math": "h_1..h_T of each direction, in input time order", "shape": seq}, {"keras": "Y_h", "math": "h_T of each direction", "shape": state}]
        return out + ([{"keras": "Y_c", "math": "c_T of each direction", "shape": state}] if lstm else [])


class OnnxRecurrent(_OnnxRecurrent, RecurrentBase):
    pass


class OnnxBidirectional(_OnnxRecurrent, Bidirectional):
    pass


ONNX_RECURRENT = OnnxRecurrent()
ONNX_BIDIRECTIONAL = OnnxBidirectional()
