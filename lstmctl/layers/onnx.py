"""ONNX nodes in a Model read from an .onnx file (lstmctl.formats.onnx_file): the LSTM / GRU / RNN
nodes, run by the Keras-layout recurrent layers with ONNX's input and output layouts around them,
and the operators exporters write around them (Shape, Cast, Expand, Concat, Gather, Slice, MatMul,
Gemm, Softmax, …), each mapped onto lstmctl.oplib: `compute` turns a node's attributes and opset
into oplib's keyword parameters. They are not registered under Keras class names: the reader
attaches them to the layers it makes, and folds the nodes whose inputs are all constants.

A node's inputs are `layer.params["inputs"]`: per ONNX input slot, an int (the position in the
call's tensors), an array (an initializer or a Constant node's value) or None (absent).
"""

import numpy as np

from .. import budget
from ..budget import Tally
from ..errors import LstmctlError
from ..oplib import elementwise as ew
from ..oplib import linalg, reduce
from ..oplib import shape as sh
from .base import LayerType, Tensor
from .recurrent import Bidirectional, RecurrentBase

# TensorProto.DataType -> NumPy dtype (the types lstmctl reads and computes)
ELEM_TYPES = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 9: "?", 10: "<f2", 11: "<f8", 12: "<u4", 13: "<u8"}


def node_inputs(layer, args) -> list:
    """The node's ONNX inputs in slot order: arrays, or None where absent."""
    return [args[s].value if isinstance(s, int) else s for s in layer.params["inputs"]]


def _input_or_attribute(v, at, a, name):
    """An operand that moved from an attribute to an input in a later opset (axes, split, min…)."""
    return v[at] if len(v) > at and v[at] is not None else a.get(name)


def _cast(v, a, b):
    to = a.get("to")
    if to not in ELEM_TYPES:
        raise LstmctlError(f"{b['where']}: Cast to data type {to}, which lstmctl does not compute")
    return ew.cast(v[0], dtype=ELEM_TYPES[to], **b)


def _slice(v, a, b, opset):
    if opset < 10:  # Slice-1: bounds are attributes
        return sh.slice_(v[0], starts=a.get("starts", []), ends=a.get("ends", []), axes=a.get("axes"), **b)
    return sh.slice_(v[0], starts=v[1], ends=v[2], axes=v[3] if len(v) > 3 else None, steps=v[4] if len(v) > 4 else None, **b)


def _split(v, a, b, n_outputs):
    sizes = _input_or_attribute(v, 1, a, "split")
    x = np.asarray(v[0])
    if sizes is None:  # equal parts, one per output (the last smaller when they do not divide)
        n = x.shape[a.get("axis", 0)] if x.ndim else 0
        part = -(-n // max(n_outputs, 1))
        sizes = [min(part, n - k * part) for k in range(n_outputs)]
    return sh.split(x, sizes=[int(s) for s in np.asarray(sizes).ravel()], axis=a.get("axis", 0), **b)


def _softmax(fn, v, a, b, opset):
    if opset >= 13:
        return fn(v[0], axis=a.get("axis", -1), **b)
    x = np.asarray(v[0])  # before opset 13: the input is flattened to a matrix at axis, normalised per row
    return sh.reshape(fn(sh.flatten(x, axis=a.get("axis", 1), **b), axis=1, **b), np.array(x.shape, np.int64), **b)


def _reduction(fn, v, a, b):
    axes = _input_or_attribute(v, 1, a, "axes")
    if axes is not None and np.size(axes) == 0:  # no axes: every axis, or none with noop_with_empty_axes
        if a.get("noop_with_empty_axes", 0):
            return ew.identity(v[0], **b)
        axes = None
    return fn(v[0], axes=axes, keepdims=a.get("keepdims", 1), **b)


def _clip(v, a, b):
    return ew.clip(v[0], low=_input_or_attribute(v, 1, a, "min"), high=_input_or_attribute(v, 2, a, "max"), **b)


def _variadic(fn, v, b):
    out = v[0]
    for x in v[1:]:
        out = fn(out, x, **b)
    return out


# op type -> f(inputs, attributes, budget keywords {where, tally}, opset, number of outputs) -> array(s)
OPS = {
    "Identity": lambda v, a, b, o, n: ew.identity(v[0], **b),
    "Dropout": lambda v, a, b, o, n: [ew.identity(v[0], **b), np.ones(np.shape(v[0]), bool)][:n],  # inference: the input itself
    "Add": lambda v, a, b, o, n: ew.add(v[0], v[1], **b),
    "Sub": lambda v, a, b, o, n: ew.sub(v[0], v[1], **b),
    "Mul": lambda v, a, b, o, n: ew.mul(v[0], v[1], **b),
    "Div": lambda v, a, b, o, n: ew.div(v[0], v[1], **b),
    "Pow": lambda v, a, b, o, n: ew.power(v[0], v[1], **b),
    "Max": lambda v, a, b, o, n: _variadic(ew.maximum, v, b),
    "Min": lambda v, a, b, o, n: _variadic(ew.minimum, v, b),
    "Sum": lambda v, a, b, o, n: _variadic(ew.add, v, b),
    "Equal": lambda v, a, b, o, n: ew.equal(v[0], v[1], **b),
    "Less": lambda v, a, b, o, n: ew.less(v[0], v[1], **b),
    "Greater": lambda v, a, b, o, n: ew.greater(v[0], v[1], **b),
    "Not": lambda v, a, b, o, n: ew.logical_not(v[0], **b),
    "Where": lambda v, a, b, o, n: ew.select(v[0], v[1], v[2], **b),
    "Neg": lambda v, a, b, o, n: ew.neg(v[0], **b),
    "Abs": lambda v, a, b, o, n: ew.absolute(v[0], **b),
    "Exp": lambda v, a, b, o, n: ew.exp(v[0], **b),
    "Log": lambda v, a, b, o, n: ew.log(v[0], **b),
    "Sqrt": lambda v, a, b, o, n: ew.sqrt(v[0], **b),
    "Reciprocal": lambda v, a, b, o, n: ew.reciprocal(v[0], **b),
    "Relu": lambda v, a, b, o, n: ew.relu(v[0], **b),
    "Sigmoid": lambda v, a, b, o, n: ew.sigmoid(v[0], **b),
    "Tanh": lambda v, a, b, o, n: ew.tanh(v[0], **b),
    "Softplus": lambda v, a, b, o, n: ew.softplus(v[0], **b),
    "Softsign": lambda v, a, b, o, n: ew.softsign(v[0], **b),
    "LeakyRelu": lambda v, a, b, o, n: ew.leaky_relu(v[0], alpha=a.get("alpha", 0.01), **b),
    "Elu": lambda v, a, b, o, n: ew.elu(v[0], alpha=a.get("alpha", 1.0), **b),
    "HardSigmoid": lambda v, a, b, o, n: ew.hard_sigmoid(v[0], alpha=a.get("alpha", 0.2), beta=a.get("beta", 0.5), **b),
    "Clip": lambda v, a, b, o, n: _clip(v, a, b),
    "Cast": lambda v, a, b, o, n: _cast(v, a, b),
    "Reshape": lambda v, a, b, o, n: sh.reshape(v[0], v[1], allowzero=a.get("allowzero", 0), **b),
    "Flatten": lambda v, a, b, o, n: sh.flatten(v[0], axis=a.get("axis", 1), **b),
    "Transpose": lambda v, a, b, o, n: sh.transpose(v[0], perm=a.get("perm"), **b),
    "Squeeze": lambda v, a, b, o, n: sh.squeeze(v[0], axes=_input_or_attribute(v, 1, a, "axes"), **b),
    "Unsqueeze": lambda v, a, b, o, n: sh.unsqueeze(v[0], axes=_input_or_attribute(v, 1, a, "axes"), **b),
    "Concat": lambda v, a, b, o, n: sh.concat([x for x in v if x is not None], axis=a.get("axis", 0), **b),
    "Split": lambda v, a, b, o, n: _split(v, a, b, n),
    "Slice": lambda v, a, b, o, n: _slice(v, a, b, o),
    "Gather": lambda v, a, b, o, n: sh.gather(v[0], v[1], axis=a.get("axis", 0), **b),
    "Expand": lambda v, a, b, o, n: sh.expand(v[0], v[1], **b),
    "Tile": lambda v, a, b, o, n: sh.tile(v[0], v[1], **b),
    "Shape": lambda v, a, b, o, n: sh.shape(v[0], start=a.get("start", 0), end=a.get("end"), **b),
    "ConstantOfShape": lambda v, a, b, o, n: sh.constant_of_shape(v[0], value=a.get("value"), **b),
    "Range": lambda v, a, b, o, n: sh.range_(v[0], v[1], v[2], **b),
    "MatMul": lambda v, a, b, o, n: linalg.matmul(v[0], v[1], **b),
    "Gemm": lambda v, a, b, o, n: linalg.gemm(v[0], v[1], v[2] if len(v) > 2 else None, alpha=a.get("alpha", 1.0), beta=a.get("beta", 1.0), trans_a=a.get("transA", 0), trans_b=a.get("transB", 0), **b),
    "ReduceSum": lambda v, a, b, o, n: _reduction(reduce.reduce_sum, v, a, b),
    "ReduceMean": lambda v, a, b, o, n: _reduction(reduce.reduce_mean, v, a, b),
    "ReduceMax": lambda v, a, b, o, n: _reduction(reduce.reduce_max, v, a, b),
    "ReduceMin": lambda v, a, b, o, n: _reduction(reduce.reduce_min, v, a, b),
    "ReduceProd": lambda v, a, b, o, n: _reduction(reduce.reduce_prod, v, a, b),
    "Softmax": lambda v, a, b, o, n: _softmax(reduce.softmax, v, a, b, o),
    "LogSoftmax": lambda v, a, b, o, n: _softmax(reduce.log_softmax, v, a, b, o),
    "ArgMax": lambda v, a, b, o, n: reduce.argmax(v[0], axis=a.get("axis", 0), keepdims=a.get("keepdims", 1), last=a.get("select_last_index", 0), **b),
    "ArgMin": lambda v, a, b, o, n: reduce.argmin(v[0], axis=a.get("axis", 0), keepdims=a.get("keepdims", 1), last=a.get("select_last_index", 0), **b),
}
# how many leading inputs each op needs present (1 for the others; the rest are optional)
REQUIRED = {"Where": 3, "Range": 3, "Slice": 3, **{op: 2 for op in ("Gemm", "MatMul", "Reshape", "Expand", "Tile", "Gather", "Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater")}}


def compute(op: str, values: list, attrs: dict, opset: int, n_outputs: int, where: str, tally: Tally | None) -> list:
    """The node's outputs: op `op` of `values` (arrays, None where absent), as ONNX opset `opset`
    defines it. Inputs that do not fit the op are refused with one line naming `where`."""
    need = 1 if op == "Slice" and opset < 10 else REQUIRED.get(op, 1)
    if len(values) < need or any(v is None for v in values[:need]):
        raise LstmctlError(f"{where}: needs {need} inputs, has {sum(v is not None for v in values[:need])}")
    try:
        with np.errstate(all="ignore"):  # IEEE results (inf, NaN) as onnxruntime gives them
            out = OPS[op](values, attrs, {"where": where, "tally": tally}, opset, n_outputs)
    except (LstmctlError, MemoryError):
        raise
    except Exception as exc:  # an attribute value the op cannot take (a string as an axis, …)
        raise LstmctlError(f"{where}: cannot be computed on inputs {[None if v is None else np.shape(v) for v in values]}: {type(exc).__name__}: {exc}") from None
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


class OnnxOp(LayerType):
    """An ONNX operator lstmctl computes (one of OPS)."""

    def call(self, layer, args, ctx):
        p = layer.params
        outs = compute(layer.class_name, node_inputs(layer, args), p["attrs"], p["opset"], p["n_outputs"], f"{ctx.path}: node '{layer.name}' ({layer.class_name})", ctx.tally)
        return [Tensor(o) for o in outs]

    def facts(self, layer, major):
        out = {k: (v.tolist() if isinstance(v, np.ndarray) and v.size <= 8 else v) for k, v in layer.params["attrs"].items() if not isinstance(v, np.ndarray) or v.size <= 8}
        constants = {f"input {i}": list(s.shape) for i, s in enumerate(layer.params["inputs"]) if isinstance(s, np.ndarray)}
        return {**out, **({"constant inputs": constants} if constants else {})}


ONNX_OP = OnnxOp()


def check_state(value, what: str, dirs: int, units: int, layout: int, batch: int | None, where: str) -> None:
    """initial_h / initial_c: [directions, batch, hidden] (layout 0) or [batch, directions, hidden]."""
    shape = np.shape(value)
    want = (dirs, batch, units) if layout == 0 else (batch, dirs, units)
    if len(shape) != 3 or any(w is not None and w != d for w, d in zip(want, shape)):
        raise LstmctlError(f"{where}: {what} has shape {shape}, expected {'[directions, batch, hidden]' if layout == 0 else '[batch, directions, hidden]'} = {tuple('batch' if w is None else w for w in want)}")



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
        where = f"{ctx.path}: node '{layer.name}'"
        if x.ndim != 3:
            raise LstmctlError(f"{where}: X has shape {x.shape}, not rank 3")
        if time_major:
            x = x.transpose(1, 0, 2)
        batch, steps = x.shape[:2]
        halves = [layer.forward, layer.backward] if layer.forward is not None else [layer]
        # X may come from an Expand: its steps and the Y it makes count against the run's budget
        budget.check("loop_steps", steps, where)
        ctx.tally.add("graph_elements", batch * steps * halves[0].cell.units * len(halves), where)
        for what, s in (("initial_h", h0), ("initial_c", c0)):
            if s is not None:
                check_state(s, what, len(halves), halves[0].cell.units, layer.params["layout"], batch, where)
        mask = None
        if lengths is not None:
            lengths = np.asarray(lengths).astype(np.int64).ravel()
            if lengths.shape != (batch,) or lengths.min(initial=0) < 0 or lengths.max(initial=0) > steps:
                raise LstmctlError(f"{where}: sequence_lens {lengths.tolist()[:8]} does not give each of {batch} samples a length in 0..{steps}")
            if (lengths < steps).any():
                mask = np.arange(steps)[None, :] < lengths[:, None]
        states = []
        for d in range(len(halves)):
            for s in (h0, c0)[: len(halves[d].cell.state_names)]:
                if s is not None:
                    s = np.asarray(s)
                    states.append(s[d] if time_major else s[:, d])
        if states and len(states) != len(halves) * len(halves[0].cell.state_names):
            raise LstmctlError(f"{where}: initial_h is given without initial_c, or the reverse; lstmctl needs both or neither")
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
