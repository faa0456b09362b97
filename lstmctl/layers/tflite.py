"""TFLite operators in a Model read from a .tflite file (lstmctl.formats.tflite_file), computed as
the LiteRT interpreter computes them, on lstmctl.oplib's functions.

- `run_op` computes one operator from its input arrays (and the tensors' quantization);
  `run_subgraph` runs a subgraph's operators in order (a WHILE's cond and body);
- `TflOp`: an operator of the main subgraph as a layer; `layer.params["inputs"]` holds, per input
  slot, an int (position in the call's tensors), an array (a constant) or None (absent);
- `SequenceLstm`: UNIDIRECTIONAL_SEQUENCE_LSTM as a recurrent layer (Keras's layout), with the
  converter's `cell_clip`, and LiteRT's hybrid arithmetic when its weights are int8.

Every operator's result is checked against lstmctl.budget before it is made (oplib), a WHILE's
steps against `loop_steps`, and subgraph calls against `depth`. Full-integer models (int8 or
int16 activations) and Flex / custom operators are refused by name when run reaches them.
"""

import numpy as np

from .. import budget, kernels
from ..errors import LstmctlError, Unsupported, show
from ..gates import Cell
from ..oplib import elementwise as ew
from ..oplib import linalg, quantized, reduce, shape
from ..oplib import tflite as tfl
from .base import LayerType, Tensor
from .recurrent import RecurrentBase

ACTIVATIONS = {0: None, 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh"}
INTEGER_TYPES = (3, 7, 9)  # uint8, int16, int8 (TensorType)
MOVES = ("GATHER", "RESHAPE", "TRANSPOSE", "SQUEEZE", "EXPAND_DIMS", "STRIDED_SLICE", "SLICE")  # an int8 table's rows keep their scale through these


class Runtime:
    """What running one file's operators shares: the parsed file, the run's element tally."""

    def __init__(self, tfile, tally=None):
        self.file = tfile
        self.path = tfile.path
        self.tally = tally if tally is not None else budget.Tally(tfile.path)


def runtime(layer, ctx) -> Runtime:
    """The run's Runtime for a layer of a .tflite Model (one element tally per run, ctx.tally)."""
    return Runtime(layer.params["file"], ctx.tally)


def _act(op, at):
    code = op.options.get("fused_activation_function", 0)
    if code not in ACTIVATIONS:
        raise LstmctlError(f"{at}: fused activation {code} is not one lstmctl computes")
    return ACTIVATIONS[code]


def _fused(fn):
    def op(o, v, t, at, rt):
        return [tfl.fused_activation(fn(v[0], v[1], where=at, tally=rt.tally), name=_act(o, at), where=at)]

    return op


def _unary(fn):
    return lambda o, v, t, at, rt: [fn(v[0], where=at, tally=rt.tally)]


def _binary(fn):
    return lambda o, v, t, at, rt: [fn(v[0], v[1], where=at, tally=rt.tally)]


def _int(value, at, what):
    value = np.asarray(value)
    if value.size != 1 or value.dtype.kind not in "iu":
        raise LstmctlError(f"{at}: {what} is {value.dtype} of shape {value.shape}, expected one integer")
    return int(value.ravel()[0])


def _weights(t, v, at):
    """(weights as stored, scale or None): int8 weights keep their scale for the hybrid kernels,
    float16 ones are widened."""
    w, info = v, t
    if info is not None and info.quantized and w.dtype == np.int8:
        if info.scale.size > 1 and info.qdim != 0:
            raise LstmctlError(f"{at}: int8 weights quantized along axis {info.qdim}; LiteRT's hybrid kernels take one scale per output row (axis 0)")
        if np.any(info.zero_point):
            raise LstmctlError(f"{at}: int8 weights with a non-zero zero point; LiteRT's hybrid kernels take symmetric weights")
        return w, info.scale
    if w.dtype.kind != "f":
        raise LstmctlError(f"{at}: weights of {w.dtype} without a scale")
    return w.astype(np.float32, copy=False), None


def _fully_connected(o, v, t, at, rt):
    w, scale = _weights(t[1], v[1], at)
    bias = v[2] if len(v) > 2 else None
    y = quantized.fully_connected(v[0], w, bias, w_scale=scale, asymmetric=o.options.get("asymmetric_quantize_inputs", False), keep_num_dims=o.options.get("keep_num_dims", False), where=at, tally=rt.tally)
    return [tfl.fused_activation(y, name=_act(o, at), where=at)]


def _batch_matmul(o, v, t, at, rt):
    a, b = v[0], v[1]
    if o.options.get("adj_x"):
        a = np.swapaxes(a, -1, -2)
    if t[1] is not None and t[1].quantized and b.dtype == np.int8:
        if b.ndim != 2 or t[1].scale.size != 1:
            raise LstmctlError(f"{at}: int8 BATCH_MATMUL weights of shape {b.shape} with {t[1].scale.size} scales; lstmctl computes a 2-D right side with one scale")
        w = b if o.options.get("adj_y") else b.T  # [out, k]
        rows = a.reshape(-1, a.shape[-1])
        y = quantized.hybrid_matmul(rows, w, t[1].scale, asymmetric=o.options.get("asymmetric_quantize_inputs", False), where=at, tally=rt.tally)
        return [y.reshape(*a.shape[:-1], w.shape[0])]
    if o.options.get("adj_y"):
        b = np.swapaxes(b, -1, -2)
    return [linalg.matmul(a, b, where=at, tally=rt.tally)]


def _dequantize(o, v, t, at, rt):
    info = t[0]
    if v[0].dtype == np.float16:
        return [v[0].astype(np.float32)]
    if info is None or info.scale is None:
        raise LstmctlError(f"{at}: DEQUANTIZE of a tensor without quantization parameters")
    return [quantized.dequantize(v[0], scale=info.scale, zero_point=info.zero_point, axis=info.qdim, where=at, tally=rt.tally)]


def _gather(o, v, t, at, rt):
    if o.options.get("batch_dims", 0):
        raise LstmctlError(f"{at}: GATHER with batch_dims {o.options['batch_dims']} is not one lstmctl computes")
    idx = np.asarray(v[1])
    if idx.dtype.kind in "iu" and idx.size and idx.min() < 0:
        raise LstmctlError(f"{at}: index {int(idx.min())} is negative; LiteRT's GATHER refuses it")
    return [shape.gather(v[0], idx, axis=o.options.get("axis", 0), where=at, tally=rt.tally)]


def _reshape(o, v, t, at, rt):
    dims = v[1] if len(v) > 1 and v[1] is not None else np.asarray(o.options.get("new_shape", []), np.int32)
    return [shape.reshape(v[0], np.asarray(dims).ravel(), allowzero=True, where=at, tally=rt.tally)]


def _strided_slice(o, v, t, at, rt):
    keys = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask", "offset")
    return [tfl.strided_slice(v[0], v[1], v[2], v[3], **{k: o.options.get(k, 0) for k in keys}, where=at, tally=rt.tally)]


def _split(o, v, t, at, rt):
    return tfl.split_equal(v[1], parts=o.options.get("num_splits", 0), axis=_int(v[0], at, "axis"), where=at, tally=rt.tally)


def _split_v(o, v, t, at, rt):
    x, sizes, a = v[0], [int(s) for s in np.asarray(v[1]).ravel()], _int(v[2], at, "axis")
    a = a % x.ndim if -x.ndim <= a < x.ndim else a
    if sizes.count(-1) == 1 and 0 <= a < x.ndim:
        sizes[sizes.index(-1)] = x.shape[a] - sum(s for s in sizes if s != -1)
    return shape.split(x, sizes=sizes, axis=a, where=at, tally=rt.tally)


def _concatenation(o, v, t, at, rt):
    y = shape.concat(v, axis=o.options.get("axis", 0), where=at, tally=rt.tally)
    return [tfl.fused_activation(y, name=_act(o, at), where=at)]


def _softmax(o, v, t, at, rt):
    beta = o.options.get("beta", 1.0)
    x = v[0] if beta == 1.0 else v[0] * np.asarray(beta, v[0].dtype)
    return [reduce.softmax(x, axis=-1, where=at, tally=rt.tally)]


def _slice(o, v, t, at, rt):
    x, begin, size = v[0], [int(b) for b in np.asarray(v[1]).ravel()], [int(s) for s in np.asarray(v[2]).ravel()]
    if len(begin) != x.ndim or len(size) != x.ndim:
        raise LstmctlError(f"{at}: begin {begin} and size {size} do not give one entry per axis of shape {x.shape}")
    ends = [x.shape[i] if s == -1 else b + s for i, (b, s) in enumerate(zip(begin, size))]
    if any(b < 0 or e > n or e < b for b, e, n in zip(begin, ends, x.shape)):
        raise LstmctlError(f"{at}: begin {begin} and size {size} reach outside shape {x.shape}")
    return [shape.slice_(x, starts=begin, ends=ends, where=at, tally=rt.tally)]


def _reducer(fn):
    def op(o, v, t, at, rt):
        return [fn(v[0], axes=np.asarray(v[1]).ravel(), keepdims=o.options.get("keep_dims", False), where=at, tally=rt.tally)]

    return op


def _cast(o, v, t, at, rt, out=None):
    return [ew.cast(v[0], dtype=out, where=at, tally=rt.tally)]


OPS = {
    "ADD": _fused(ew.add), "SUB": _fused(ew.sub), "MUL": _fused(ew.mul), "DIV": _fused(ew.div),
    "MAXIMUM": _binary(ew.maximum), "MINIMUM": _binary(ew.minimum), "SQUARED_DIFFERENCE": _binary(tfl.squared_difference),
    "LESS": _binary(ew.less), "GREATER": _binary(ew.greater), "EQUAL": _binary(ew.equal), "NOT_EQUAL": _binary(tfl.not_equal),
    "LESS_EQUAL": _binary(tfl.less_equal), "GREATER_EQUAL": _binary(tfl.greater_equal),
    "LOGICAL_AND": _binary(tfl.logical_and), "LOGICAL_OR": _binary(tfl.logical_or), "LOGICAL_NOT": _unary(ew.logical_not),
    "LOGISTIC": _unary(ew.sigmoid), "TANH": _unary(ew.tanh), "RELU": _unary(ew.relu), "EXP": _unary(ew.exp), "ABS": _unary(ew.absolute),
    "NEG": _unary(ew.neg), "SQRT": _unary(ew.sqrt), "HARD_SWISH": _unary(tfl.hard_swish),
    "RELU6": lambda o, v, t, at, rt: [ew.clip(v[0], low=0, high=6, where=at, tally=rt.tally)],
    "RELU_N1_TO_1": lambda o, v, t, at, rt: [ew.clip(v[0], low=-1, high=1, where=at, tally=rt.tally)],
    "RSQRT": lambda o, v, t, at, rt: [ew.reciprocal(ew.sqrt(v[0], where=at, tally=rt.tally), where=at, tally=rt.tally)],
    "LEAKY_RELU": lambda o, v, t, at, rt: [ew.leaky_relu(v[0], alpha=o.options.get("alpha", 0.2), where=at, tally=rt.tally)],
    "SELECT": lambda o, v, t, at, rt: [ew.select(v[0], v[1], v[2], where=at, tally=rt.tally)],
    "SELECT_V2": lambda o, v, t, at, rt: [ew.select(v[0], v[1], v[2], where=at, tally=rt.tally)],
    "ZEROS_LIKE": lambda o, v, t, at, rt: [np.zeros_like(v[0])],
    "FULLY_CONNECTED": _fully_connected, "BATCH_MATMUL": _batch_matmul, "DEQUANTIZE": _dequantize,
    "GATHER": _gather, "RESHAPE": _reshape, "STRIDED_SLICE": _strided_slice, "SPLIT": _split, "SPLIT_V": _split_v,
    "CONCATENATION": _concatenation, "SOFTMAX": _softmax, "SLICE": _slice,
    "LOG_SOFTMAX": lambda o, v, t, at, rt: [reduce.log_softmax(v[0], axis=-1, where=at, tally=rt.tally)],
    "TRANSPOSE": lambda o, v, t, at, rt: [shape.transpose(v[0], perm=np.asarray(v[1]).ravel(), where=at, tally=rt.tally)],
    "EXPAND_DIMS": lambda o, v, t, at, rt: [shape.unsqueeze(v[0], axes=[_int(v[1], at, "axis") % (v[0].ndim + 1)], where=at, tally=rt.tally)],
    "SQUEEZE": lambda o, v, t, at, rt: [shape.squeeze(v[0], axes=o.options.get("squeeze_dims") or None, where=at, tally=rt.tally)],
    "SHAPE": lambda o, v, t, at, rt: [shape.shape(v[0], where=at, tally=rt.tally)],
    "RANK": lambda o, v, t, at, rt: [np.array(np.asarray(v[0]).ndim, np.int32)],
    "RANGE": lambda o, v, t, at, rt: [shape.range_(v[0], v[1], v[2], where=at, tally=rt.tally)],
    "PACK": lambda o, v, t, at, rt: [shape.stack(v, axis=o.options.get("axis", 0), where=at, tally=rt.tally)],
    "UNPACK": lambda o, v, t, at, rt: shape.unstack(v[0], axis=o.options.get("axis", 0), where=at, tally=rt.tally),
    "FILL": lambda o, v, t, at, rt: [tfl.fill(v[0], v[1], where=at, tally=rt.tally)],
    "REVERSE_V2": lambda o, v, t, at, rt: [tfl.reverse(v[0], np.asarray(v[1]).ravel(), where=at, tally=rt.tally)],
    "MEAN": _reducer(reduce.reduce_mean), "SUM": _reducer(reduce.reduce_sum), "REDUCE_MAX": _reducer(reduce.reduce_max),
    "REDUCE_MIN": _reducer(reduce.reduce_min), "REDUCE_PROD": _reducer(reduce.reduce_prod),
    "REDUCE_ANY": _reducer(reduce.reduce_max), "REDUCE_ALL": _reducer(reduce.reduce_min),  # over booleans: any is max, all is min
}  # fmt: skip
SPECIAL = ("CAST", "WHILE", "UNIDIRECTIONAL_SEQUENCE_LSTM")  # computed by run_op itself


def refusal(op, at: str) -> str | None:
    """Why run cannot compute `op` (None: it can)."""
    if op.custom:
        name = op.code.split(":", 1)[1]
        if name.startswith("Flex"):
            return (f"{at}: {show(name)} is a Flex (TensorFlow) operator, which only TensorFlow runs; convert the model without SELECT_TF_OPS "
                    "and with a fixed batch size (keras.Input(shape, batch_size=1)) so the converter writes builtin operators")  # fmt: skip
        return f"{at}: custom operator {show(name)} is not a TFLite builtin; lstmctl computes builtin operators only"
    if op.code not in OPS and op.code not in SPECIAL:
        return f"{at}: operator {op.code} is not one lstmctl computes"
    return None


def integer_refusal(at: str) -> str:
    return (f"{at}: a full-integer quantized model (int8/int16 activations), which lstmctl does not run; lstmctl runs float and "
            "dynamic-range quantized models (Optimize.DEFAULT without a representative dataset)")  # fmt: skip


def run_op(rt, graph, op, values, depth=0) -> list:
    """The operator's output arrays, from its input arrays (None where an optional input is absent)."""
    at = f"{rt.path}: subgraph {graph.index} operator {op.index} ({op.code})"
    infos = [None if i < 0 else graph.tensors[i] for i in op.inputs]
    outs = [graph.tensors[i] for i in op.outputs]
    if op.code not in MOVES and any(o.type in INTEGER_TYPES and o.scale is not None for o in outs):
        raise Unsupported(integer_refusal(at))
    why = refusal(op, at)
    if why:
        raise Unsupported(why)
    try:
        if op.code == "WHILE":
            results = run_while(rt, op, values, at, depth + 1)
        elif op.code == "CAST":
            results = _cast(op, values, infos, at, rt, out=outs[0].dtype or "float32")
        elif op.code == "UNIDIRECTIONAL_SEQUENCE_LSTM":
            results = [sequence_lstm(rt, graph, op, values, at)]
        else:
            results = OPS[op.code](op, values, infos, at, rt)
    except (LstmctlError, MemoryError):
        raise
    except Exception as exc:  # shapes the file gives that do not fit the operator
        raise LstmctlError(f"{at} cannot be computed on inputs {[None if a is None else tuple(np.shape(a)) for a in values]}: {type(exc).__name__}: {exc}") from None
    if len(results) != len(outs):
        raise LstmctlError(f"{at}: computes {len(results)} outputs, the file lists {len(outs)}")
    fixed = []
    for r, info in zip(results, outs):
        r = np.asarray(r)
        if info.dtype is not None and r.dtype != np.dtype(info.dtype) and r.dtype.kind in "fiub":
            r = r.astype(info.dtype)
        fixed.append(r)
    return fixed


def constant(graph, k: int, rt):
    t = graph.tensors[k]
    if t.data is not None:
        return t.data
    if t.is_variable:  # a state the interpreter starts at zero (an LSTM's h and c)
        return np.zeros(budget.check_shape(t.shape, f"{rt.path}: tensor '{show(t.name)}'"), t.dtype or "float32")
    return None


def run_subgraph(rt, index: int, inputs: list, depth: int) -> list:
    """Subgraph `index` run on `inputs` (its input tensors in order): its output arrays."""
    graph = rt.file.subgraphs[index]
    where = f"{rt.path}: subgraph {index} '{show(graph.name)}'"
    budget.check("depth", depth, where)
    if len(inputs) != len(graph.inputs):
        raise LstmctlError(f"{where}: called with {len(inputs)} values, it takes {len(graph.inputs)}")
    values = dict(zip(graph.inputs, inputs))
    for op in graph.ops:
        args = []
        for i in op.inputs:
            value = None if i < 0 else values.get(i)
            if value is None and i >= 0:
                value = constant(graph, i, rt)
                if value is None:
                    raise LstmctlError(f"{where}: operator {op.index} ({op.code}) reads tensor {i} '{show(graph.tensors[i].name)}', which nothing computes before it")
            args.append(value)
        values.update(zip(op.outputs, run_op(rt, graph, op, args, depth)))
    out = []
    for i in graph.outputs:
        value = values.get(i)
        out.append(constant(graph, i, rt) if value is None else value)
        if out[-1] is None:
            raise LstmctlError(f"{where}: output tensor {i} is never computed")
    return out


def run_while(rt, op, values, at, depth) -> list:
    """LiteRT's WHILE: cond(values) decides whether body(values) runs again; each step's values are
    the body's outputs. At most `loop_steps` steps (a WHILE that never ends is refused)."""
    cond, body = op.options["cond_subgraph_index"], op.options["body_subgraph_index"]
    limit = budget.limit("loop_steps")
    state = list(values)
    for step in range(limit + 1):
        flag = np.asarray(run_subgraph(rt, cond, state, depth)[0])
        if flag.size != 1:
            raise LstmctlError(f"{at}: its cond subgraph gives {flag.size} values, not one boolean")
        if not bool(flag.ravel()[0]):
            return state
        if step == limit:
            raise budget.refuse("loop_steps", step + 1, at)
        new = run_subgraph(rt, body, state, depth)
        if [np.shape(a) for a in new] != [np.shape(a) for a in state]:
            raise LstmctlError(f"{at}: its body changes the loop values' shapes {[np.shape(a) for a in state]} to {[np.shape(a) for a in new]}")
        state = new
    return state


# --- UNIDIRECTIONAL_SEQUENCE_LSTM ---------------------------------------------------------------

USL_SLOTS = {"W": (1, 2, 3, 4), "U": (5, 6, 7, 8), "b": (12, 13, 14, 15)}  # i, f, c, o in each
USL_ABSENT = {9: "peephole (cell-to-input) weights", 10: "peephole (cell-to-forget) weights", 11: "peephole (cell-to-output) weights",
              16: "projection weights", 17: "projection bias", 20: "input layer-norm weights", 21: "forget layer-norm weights",
              22: "cell layer-norm weights", 23: "output layer-norm weights"}  # fmt: skip


class HybridLstmCell(Cell):
    """An LSTM cell whose W and U are int8 with one scale per gate: each step quantizes x_t and
    h_{t-1} one batch row at a time and multiplies in integers, as LiteRT's hybrid LSTM does."""

    def setup(self, W_q, W_scale, U_q, U_scale, asymmetric):
        self.W_q, self.W_scale, self.U_q, self.U_scale, self.asymmetric = W_q, W_scale, U_q, U_scale, asymmetric
        return self

    def astype(self, dtype):
        return self

    def project(self, x):
        batch, steps, n = x.shape
        xw = quantized.hybrid_matmul(x.reshape(-1, n), self.W_q, self.W_scale, asymmetric=self.asymmetric).reshape(batch, steps, -1)
        return xw + self.bias if self.bias is not None else xw

    def step(self, xw_t, states):
        h, c = states
        z = xw_t + quantized.hybrid_matmul(h, self.U_q, self.U_scale, asymmetric=self.asymmetric)
        return kernels.lstm_update(self, z, c)


def usl_weights(graph, op, at) -> dict:
    """The gate arrays of a UNIDIRECTIONAL_SEQUENCE_LSTM: {"W": [W_i, W_f, W_c, W_o] ([units,
    features] each), "U": [...], "b": [...], "tensors": {slot: TflTensor}}, checked."""
    for slot, what in USL_ABSENT.items():
        if len(op.inputs) > slot and op.inputs[slot] >= 0:
            raise LstmctlError(f"{at}: input {slot} holds {what}, which Keras's LSTM does not have; lstmctl computes the Keras form only")
    if len(op.inputs) < 20:
        raise LstmctlError(f"{at}: has {len(op.inputs)} inputs, a UNIDIRECTIONAL_SEQUENCE_LSTM has 20 or 24")
    out = {"tensors": {}}
    for part, slots in USL_SLOTS.items():
        arrays = []
        for slot in slots:
            k = op.inputs[slot]
            if k < 0:
                if part == "W" and slot == 1:
                    raise LstmctlError(f"{at}: no input-gate weights (CIFG, input and forget gates coupled), which Keras's LSTM does not have")
                raise LstmctlError(f"{at}: input {slot} ({part}) is absent")
            t = graph.tensors[k]
            if t.data is None:
                raise LstmctlError(f"{at}: input {slot} '{show(t.name)}' is computed by the graph; lstmctl reads recurrent weights from constants")
            out["tensors"][slot] = t
            arrays.append(t)
        out[part] = arrays
    u = out["U"][0].shape[0] if len(out["U"][0].shape) == 2 else -1
    n = out["W"][0].shape[1] if len(out["W"][0].shape) == 2 else -1
    for part, want in (("W", (u, n)), ("U", (u, u)), ("b", (u,))):
        for g, t in zip("ifco", out[part]):
            if tuple(t.shape) != want:
                raise LstmctlError(f"{at}: {part}_{g} '{show(t.name)}' has shape {list(t.shape)}, expected {list(want)}")
    return out


def usl_cell(graph, op, at):
    """(Keras-layout Cell, notes) of a UNIDIRECTIONAL_SEQUENCE_LSTM: TFLite's per-gate [units,
    features] matrices become the fused kernel's column blocks i, f, c, o."""
    parts = usl_weights(graph, op, at)
    act = _act(op, at)
    if act not in ("tanh", "relu"):
        raise LstmctlError(f"{at}: activation {act}; lstmctl computes a USL with tanh or relu")
    W = np.concatenate([t.floats().T for t in parts["W"]], axis=1)
    U = np.concatenate([t.floats().T for t in parts["U"]], axis=1)
    b = np.concatenate([t.floats() for t in parts["b"]])
    u = U.shape[0]
    clip = float(op.options.get("cell_clip", 0.0))
    hybrid = all(t.quantized and t.data.dtype == np.int8 for t in parts["W"] + parts["U"])
    if hybrid:
        cell = HybridLstmCell("lstm", u, W, U, b, act, "sigmoid", 3, cell_clip=clip)
        cell.setup(np.concatenate([t.data for t in parts["W"]]), np.concatenate([np.broadcast_to(t.scale, (u,)) for t in parts["W"]]),
                   np.concatenate([t.data for t in parts["U"]]), np.concatenate([np.broadcast_to(t.scale, (u,)) for t in parts["U"]]),
                   op.options.get("asymmetric_quantize_inputs", False))  # fmt: skip
    else:
        if any(t.quantized for t in parts["W"] + parts["U"] + parts["b"]):
            raise LstmctlError(f"{at}: some gate matrices are quantized and some are not; LiteRT's hybrid LSTM quantizes all eight")
        cell = Cell("lstm", u, W, U, b, act, "sigmoid", 3, cell_clip=clip)
    names = lambda part: ", ".join(f"{g}: input {s} '{show(t.name)}'" for g, s, t in zip("ifco", USL_SLOTS[part], parts[part]))  # noqa: E731
    notes = [
        f"UNIDIRECTIONAL_SEQUENCE_LSTM: W_<g> is the transpose of TFLite's [units, features] input {names('W')}",
        f"U_<g> the transpose of recurrent weights {names('U')}; b_<g> {names('b')}",
    ]
    if clip:
        notes.append(f"cell_clip={clip:g}: LiteRT clips c_t to [-{clip:g}, {clip:g}] after each step, which Keras's LSTM does not")
    if hybrid:
        cell.scales = {"W": cell.W_scale, "U": cell.U_scale}
        kind = "asymmetric" if op.options.get("asymmetric_quantize_inputs") else "symmetric"
        notes.append(f"dynamic-range quantized: W and U are int8 with one scale per gate (shown dequantized); each step quantizes x_t and h_t per batch row ({kind}), as LiteRT does")
    return cell, notes


class SequenceLstm(RecurrentBase):
    """UNIDIRECTIONAL_SEQUENCE_LSTM over its Keras-layout cell: x [batch, time, features] (or
    time-major) and the states it starts from (its variable tensors: zeros, or what an earlier USL
    left there) in; the whole sequence out, and (as LiteRT writes them back into the state
    tensors) the final h and c as outputs 1 and 2."""

    def call(self, layer, args, ctx):
        if ctx.direct:
            return super().call(layer, args, ctx)
        if layer.params.get("integer"):
            raise Unsupported(integer_refusal(f"{ctx.path}: layer '{layer.name}'"))
        values = [args[s].value if isinstance(s, int) else s for s in layer.params["inputs"]]
        x, h0, c0 = values[0], values[18], values[19]
        time_major = layer.params["time_major"]
        if x.ndim != 3:
            raise LstmctlError(f"{ctx.path}: layer '{layer.name}': input of shape {x.shape}, not rank 3")
        if (h0 is not None and np.any(h0)) or (c0 is not None and np.any(c0)):  # a state another USL left in the shared variable tensor
            ctx.states = [np.zeros_like(c0) if h0 is None else h0, np.zeros_like(h0) if c0 is None else c0]
        outs = super().call(layer, [Tensor(x.transpose(1, 0, 2) if time_major else x)], ctx)
        seq = outs[0].value
        return [Tensor(seq.transpose(1, 0, 2) if time_major else seq), Tensor(ctx.record[f"{layer.name}/h"]), Tensor(ctx.record[f"{layer.name}/c"])]


SEQUENCE_LSTM = SequenceLstm()


def sequence_lstm(rt, graph, op, values, at):
    """A USL inside a subgraph (a WHILE body): run through its cell directly."""
    cell, _ = usl_cell(graph, op, at)
    x = values[0]
    time_major = op.options.get("time_major", False)
    x = x.transpose(1, 0, 2) if time_major else x
    states = tuple(np.zeros((x.shape[0], cell.units), np.float32) if v is None else np.asarray(v, np.float32) for v in (values[18], values[19]))
    seq, _ = kernels.scan(cell, x.astype(np.float32), states)
    return seq.transpose(1, 0, 2) if time_major else seq


# --- the main subgraph's operators as layers --------------------------------------------------------


class TflOp(LayerType):
    """An operator of the main subgraph: `params` holds op (TflOp data), inputs (slots), graph, file."""

    n_inputs = None

    def call(self, layer, args, ctx):
        p = layer.params
        values = [args[s].value if isinstance(s, int) else s for s in p["inputs"]]
        rt = runtime(layer, ctx)
        if ctx.probe:
            why = refusal(p["op"], f"{ctx.path}: layer '{layer.name}'")
            if why:
                raise Unsupported(why)
        return [Tensor(v) for v in run_op(rt, p["graph"], p["op"], values, depth=1)]

    def facts(self, layer, major):
        o = layer.params["op"]
        out = {k: v for k, v in o.options.items()}
        constants = {f"input {i}": list(np.shape(s)) for i, s in enumerate(layer.params["inputs"]) if isinstance(s, np.ndarray)}
        return {**out, **({"constant inputs": constants} if constants else {})}


TFL_OP = TflOp()
