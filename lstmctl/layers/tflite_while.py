"""A TFLite WHILE loop matched back to the Keras LSTM, GRU or SimpleRNN it was converted from, and
run through lstmctl's recurrent kernels instead of op by op.

Matching (`match`): the body's GATHER reads x_t from one loop value (the time-major input) at
another (the time index); its FULLY_CONNECTED ops with constant weights give the kernel ([k·u,
features], from x_t) and the recurrent kernel ([k·u, u] or GRU's [2u, u] + [u, u], from h); k = 4,
3, 1 says LSTM, GRU, SimpleRNN; the constant biases and the activation ops present give the
candidates. Each candidate cell is then *checked*: the body is run op by op on random loop values
and must give, for every loop value, what the cell's step predicts — the new h and c, a counter
plus one, an unchanged value, h written into a buffer at the time index, or h reshaped. Only a
candidate that reproduces the body is taken, so a body that merely looks like an LSTM never runs
as one. The cond subgraph may read only counters and unchanged values.

Running (`LoopRecurrent.call`): the number of steps from the cond (evaluated on the counters),
the recurrence by kernels.scan from the loop's initial h (and c), and each loop output rebuilt
from its role. A body with int8 weights (dynamic-range quantized) is matched for inspect but run
op by op, which computes LiteRT's hybrid arithmetic exactly.
"""

from dataclasses import dataclass, field

import numpy as np

from .. import budget, kernels
from ..errors import LstmctlError, show
from ..gates import Cell
from .base import Tensor
from .recurrent import RecurrentBase
from .tflite import ACTIVATIONS, run_subgraph, run_while, runtime

ACT_OPS = {"LOGISTIC": "sigmoid", "TANH": "tanh", "RELU": "relu"}
KIND_OF = {4: "lstm", 3: "gru", 1: "simple_rnn"}
CLASS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}


@dataclass
class Loop:
    """What a matched WHILE is: its cell, and the role of each loop value."""

    cell: Cell
    roles: list  # per loop value: count, same, h, c, last_h, seq_h
    x_arg: int
    t_arg: int
    h_arg: int
    c_arg: int | None
    quantized: bool
    notes: list = field(default_factory=list)
    scales: dict | None = None  # int8 weights: {"W": scale per kernel column, "U": …} (Keras layout)


def _producers(graph) -> dict:
    return {k: op for op in graph.ops for k in op.outputs}


def _through_reshapes(graph, k, producers):
    """The tensor `k` is a reshape (or a chain of them) of."""
    while k in producers and producers[k].code in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        k = producers[k].inputs[0]
    return k


class _Body:
    """A WHILE body's tensors, where a loop value that is a constant of the calling graph and that
    the body passes on unchanged counts as a constant too (older converters pass the weights so)."""

    def __init__(self, body, main, op):
        self.graph = body
        self.known = {}
        for i, (inner, outer) in enumerate(zip(body.inputs, op.inputs)):
            if main.tensors[outer].data is not None and i < len(body.outputs) and body.outputs[i] == inner:
                self.known[inner] = main.tensors[outer]

    def tensor(self, k):
        return self.known.get(k) or self.graph.tensors[k]

    def const(self, k):
        return None if k < 0 else self.tensor(k).data


def _candidates(graph, kind, u, fc_x, fc_h, fc_r, consts):  # graph: a _Body
    """Candidate cells (W, U, bias, activations) from the body's weights; `fc_r` is GRU
    reset_after=False's second recurrent product (r ⊙ h)·U_h."""
    W = graph.tensor(fc_x.inputs[1]).floats().T
    U = graph.tensor(fc_h.inputs[1]).floats().T
    b_x = graph.tensor(fc_x.inputs[2]).floats() if len(fc_x.inputs) > 2 and fc_x.inputs[2] >= 0 else np.zeros(W.shape[1], np.float32)
    b_h = graph.tensor(fc_h.inputs[2]).floats() if len(fc_h.inputs) > 2 and fc_h.inputs[2] >= 0 else None
    for extra in consts:
        b_x = b_x + extra
    ops = graph.graph.ops
    present = {ACT_OPS[op.code] for op in ops if op.code in ACT_OPS}
    present |= {ACTIVATIONS.get(op.options.get("fused_activation_function")) for op in ops} - {None}  # an ADD's fused relu
    acts = [a for a in ("tanh", "relu", "sigmoid") if a in present] + ["linear"]
    out = []
    if kind == "gru":
        if fc_r is not None:
            U = np.concatenate([U, graph.tensor(fc_r.inputs[1]).floats().T], axis=1)
            bias = b_x if b_h is None else b_x + np.concatenate([b_h, np.zeros(u, np.float32)])
            layouts = [(False, bias)]
        else:
            layouts = [(True, np.stack([b_x, b_h if b_h is not None else np.zeros_like(b_x)]))]
        for reset_after, bias in layouts:
            for act in acts:
                out.append(Cell("gru", u, W, U, bias, act, "sigmoid", 3, reset_after))
    else:
        bias = b_x if b_h is None else b_x + b_h
        for act in acts:
            out.append(Cell(kind, u, W, U, bias, act, "sigmoid" if kind == "lstm" else None, 3))
    return out


def _close(a, b, quantized):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return False
    tol = 0.05 + 0.05 * np.abs(b) if quantized else 1e-5 + 1e-4 * np.abs(b)
    return bool(np.all(np.abs(a - b) <= tol))


def _roles(test, outs, h_new, c_new, t_val, quantized):
    """Each loop value's role, from what the body made of the test values (None: no role fits)."""
    roles = []
    for k, (before, after) in enumerate(zip(test, outs)):
        before, after = np.asarray(before), np.asarray(after)
        if after.shape != before.shape:
            return None
        if after.dtype.kind in "iu" and after.size == 1:
            roles.append("same" if after == before else "count" if after == before + 1 else None)
        elif after.shape == h_new.shape and _close(after, h_new, quantized):
            roles.append("h")
        elif c_new is not None and after.shape == c_new.shape and _close(after, c_new, quantized):
            roles.append("c")
        elif np.array_equal(after, before):
            roles.append("same")
        elif after.size == h_new.size and _close(after.reshape(h_new.shape), h_new, quantized):
            roles.append("last_h")
        elif after.ndim >= 2 and 0 <= t_val < after.shape[0] and after[t_val].size == h_new.size and _close(after[t_val].reshape(h_new.shape), h_new, quantized) \
                and np.array_equal(np.delete(after, t_val, axis=0), np.delete(before, t_val, axis=0)):  # fmt: skip
            roles.append("seq_h")
        else:
            return None
        if roles[-1] is None:
            return None
    return roles


def match(rt, main, op) -> Loop | None:
    """The Loop a WHILE operator of subgraph `main` is, or None when its body is not a Keras
    recurrent step lstmctl can reproduce."""
    body = rt.file.subgraphs[op.options["body_subgraph_index"]]
    cond = rt.file.subgraphs[op.options["cond_subgraph_index"]]
    tensors = _Body(body, main, op)
    args = {k: i for i, k in enumerate(body.inputs)}
    producers = _producers(body)
    gathers = [g for g in body.ops if g.code == "GATHER" and g.inputs[0] in args and len(g.inputs) > 1 and g.inputs[1] in args]
    if len(gathers) != 1 or len(op.inputs) != len(body.inputs):
        return None
    x_arg, t_arg = args[gathers[0].inputs[0]], args[gathers[0].inputs[1]]
    x_t = gathers[0].outputs[0]
    fcs = [f for f in body.ops if f.code == "FULLY_CONNECTED" and tensors.const(f.inputs[1]) is not None]
    fc_x = [f for f in fcs if _through_reshapes(body, f.inputs[0], producers) == x_t]
    fc_h = [f for f in fcs if _through_reshapes(body, f.inputs[0], producers) in args and _through_reshapes(body, f.inputs[0], producers) not in tensors.known]
    if len(fc_x) != 1 or len(fc_h) != 1:
        return None
    fc_x, fc_h = fc_x[0], fc_h[0]
    h_arg = args[_through_reshapes(body, fc_h.inputs[0], producers)]
    h_shape = tuple(main.tensors[op.inputs[h_arg]].shape)
    x_shape = tuple(main.tensors[op.inputs[x_arg]].shape)
    if len(h_shape) != 2 or len(x_shape) != 3:
        return None
    u = h_shape[1]
    rows = tensors.tensor(fc_x.inputs[1]).shape[0]
    kind = KIND_OF.get(rows // u) if u and rows % u == 0 else None
    if kind is None:
        return None
    rest = [f for f in fcs if f is not fc_x and f is not fc_h]
    fc_r = rest[0] if kind == "gru" and len(rest) == 1 and tensors.tensor(fc_h.inputs[1]).shape[0] == 2 * u else None
    consts = [tensors.const(k).astype(np.float32).ravel() for o in body.ops if o.code == "ADD" for k in o.inputs
              if k >= 0 and tensors.const(k) is not None and tensors.const(k).dtype.kind == "f" and tensors.const(k).size == rows]  # fmt: skip
    weights = [tensors.tensor(f.inputs[1]) for f in (fc_x, fc_h, fc_r) if f is not None]
    quantized = any(t.quantized for t in weights)
    # the test: random loop values (fixed seed), counters at 1
    rng = np.random.default_rng(0)
    test, made = [], {}
    for inner, k in zip(body.inputs, op.inputs):
        t = main.tensors[k]
        if inner in tensors.known:  # a constant the body only reads (weights passed as loop values)
            test.append(t.data)
            continue
        if k in made:  # one tensor fed to two loop values: the same test value
            test.append(made[k])
            continue
        if t.dtype is None:
            return None
        if t.dtype.startswith(("int", "uint")) and not t.shape:
            test.append(np.array(1 if x_shape[0] > 1 else 0, t.dtype))
        elif t.dtype.startswith("float"):
            test.append((0.5 * rng.standard_normal(t.shape)).astype(t.dtype))
        else:
            return None
        made[k] = test[-1]
    t_val = int(test[t_arg])
    try:
        outs = run_subgraph(rt, body.index, test, depth=2)
    except LstmctlError:
        return None
    c_arg = None
    if kind == "lstm":
        others = [i for i, k in enumerate(op.inputs) if i not in (h_arg, x_arg) and tuple(main.tensors[k].shape) == h_shape]
        if len(others) != 1:
            return None
        c_arg = others[0]
    x_t_val = test[x_arg][t_val]
    for cell in _candidates(tensors, kind, u, fc_x, fc_h, fc_r, consts):
        states = (test[h_arg], test[c_arg]) if kind == "lstm" else (test[h_arg],)
        try:
            h_new, new_states, _ = kernels.STEPS[kind](cell, kernels.project_inputs(cell, x_t_val), states)
        except ValueError:
            return None
        roles = _roles(test, outs, h_new, new_states[1] if kind == "lstm" else None, t_val, quantized)
        if roles is None or roles[h_arg] != "h" or (c_arg is not None and roles[c_arg] != "c") or roles[x_arg] != "same" or roles[t_arg] != "count":
            continue
        if not _cond_reads_only(cond, roles):
            return None
        scales = None
        if quantized:
            scales = {"W": _column_scales(tensors.tensor(fc_x.inputs[1])), "U": np.concatenate([_column_scales(tensors.tensor(f.inputs[1])) for f in (fc_h, fc_r) if f is not None])}
        return Loop(cell, roles, x_arg, t_arg, h_arg, c_arg, quantized, _notes(tensors, cell, fc_x, fc_h, fc_r, consts, quantized), scales)
    return None


def _column_scales(t) -> np.ndarray:
    """The quantization step of each row of FULLY_CONNECTED weights [out, in] (each column of the
    Keras kernel it is the transpose of); 0 where the weights are float."""
    if not t.quantized:
        return np.zeros(t.shape[0], np.float32)
    return np.broadcast_to(t.scale, (t.shape[0],)).astype(np.float32)


def _cond_reads_only(cond, roles) -> bool:
    """The cond subgraph reads counters and unchanged values only (so it can run on them alone)."""
    used = {k for o in cond.ops for k in o.inputs}
    return all(roles[i] in ("count", "same") for i, k in enumerate(cond.inputs) if k in used)


def _notes(tensors, cell, fc_x, fc_h, fc_r, consts, quantized) -> list:
    body = tensors.graph

    def name(f):
        t = tensors.tensor(f.inputs[1])
        return f"'{show(t.name)}' {list(t.shape)}" + (" int8" if t.quantized else "")

    kind = cell.kind
    blocks = {"lstm": "i, f, c, o", "gru": "z, r, h", "simple_rnn": "one block"}[kind]
    notes = [
        f"WHILE loop over subgraph {body.index} '{show(body.name)}', matched to a Keras {CLASS[kind]} by its weights and checked by running its body",
        f"kernel W is the transpose of FULLY_CONNECTED weights {name(fc_x)} (rows {blocks}); recurrent kernel U of {name(fc_h)}" + (f" and {name(fc_r)} (U_h)" if fc_r is not None else ""),
    ]
    if consts:
        notes.append("the bias is the body's constant ADD operand(s)" + (" plus the FULLY_CONNECTED biases" if len(fc_x.inputs) > 2 and fc_x.inputs[2] >= 0 else ""))
    if quantized:
        kind_q = "asymmetric" if fc_x.options.get("asymmetric_quantize_inputs") else "symmetric"
        notes.append(f"dynamic-range quantized: int8 weights (shown dequantized); run computes the body op by op as LiteRT does (inputs quantized per row, {kind_q})")
    return notes


class LoopRecurrent(RecurrentBase):
    """A WHILE operator matched to a recurrent layer. params: op, graph, file, inputs (slots), loop."""

    def call(self, layer, args, ctx):
        if ctx.direct:
            return super().call(layer, args, ctx)
        p = layer.params
        loop, rt, op = p["loop"], runtime(layer, ctx), p["op"]
        values = [args[s].value if isinstance(s, int) else s for s in p["inputs"]]
        at = f"{ctx.path}: layer '{layer.name}' (WHILE)"
        if loop.quantized and not ctx.probe:
            if layer.name in ctx.watch:
                raise LstmctlError(f"{at}: its int8 weights run op by op, as LiteRT's hybrid kernels compute them, which gives no per-step gates to trace; "
                                   f"`lstmctl gates {ctx.path} --layer {layer.name}` shows the weights (dequantized)")  # fmt: skip
            outs = run_while(rt, op, values, at, depth=2)
            self._record(layer, loop, outs, ctx)
            return [Tensor(o) for o in outs]
        steps = self._steps(rt, op, loop, values, at)
        x_tm = values[loop.x_arg]
        t0 = int(values[loop.t_arg])
        if t0 < 0 or t0 + steps > x_tm.shape[0]:
            raise LstmctlError(f"{at}: runs {steps} steps from time index {t0}, but its input holds {x_tm.shape[0]} steps")
        x = np.ascontiguousarray(x_tm[t0 : t0 + steps].transpose(1, 0, 2))
        initial = [values[loop.h_arg]] + ([values[loop.c_arg]] if loop.c_arg is not None else [])
        if any(np.any(s) for s in initial):  # zeros are every layer's default (and let a carried state in)
            ctx.states = initial
        super().call(layer, [Tensor(x)], ctx)
        rec = ctx.record
        h_T = rec[f"{layer.name}/h"]
        seq = rec.get(f"{layer.name}/sequence")
        outs = []
        for k, (role, v) in enumerate(zip(loop.roles, values)):
            if role == "count":
                outs.append(np.asarray(v + steps, v.dtype))
            elif role == "same" or (steps == 0 and role in ("last_h", "seq_h")):
                outs.append(v)
            elif role in ("h", "last_h"):
                outs.append(h_T.reshape(np.shape(v)).astype(v.dtype))
            elif role == "c":
                outs.append(rec[f"{layer.name}/c"].astype(v.dtype))
            else:  # seq_h: h_t written at time index t0 + t
                out = np.array(v)
                out[t0 : t0 + steps] = seq.transpose(1, 0, 2).reshape(steps, *out.shape[1:])
                outs.append(out)
        return [Tensor(o) for o in outs]

    @staticmethod
    def _steps(rt, op, loop, values, at) -> int:
        """How many times the cond lets the body run, evaluated on the counters alone: once on every
        candidate count at the same time (the cond's LESS / LOGICAL_AND broadcast), else step by step."""
        cond = op.options["cond_subgraph_index"]
        limit = min(budget.limit("loop_steps"), values[loop.x_arg].shape[0] + 1)
        ahead = np.arange(limit + 1)
        try:
            flags = np.asarray(run_subgraph(rt, cond, [v + ahead.astype(v.dtype) if role == "count" else v for v, role in zip(values, loop.roles)], depth=2)[0])
        except LstmctlError:
            flags = None
        if flags is not None and flags.shape == ahead.shape and flags.dtype == bool:
            stops = np.flatnonzero(~flags)
            if stops.size:
                return int(stops[0])
        state = list(values)
        for step in range(limit + 1):
            flag = np.asarray(run_subgraph(rt, cond, state, depth=2)[0])
            if flag.size != 1:
                raise LstmctlError(f"{at}: its cond subgraph gives {flag.size} values, not one boolean")
            if not bool(flag.ravel()[0]):
                return step
            state = [v + 1 if role == "count" else v for v, role in zip(state, loop.roles)]
        raise LstmctlError(f"{at}: its cond still holds after {limit} steps, past the {values[loop.x_arg].shape[0]} steps its input holds")

    @staticmethod
    def _record(layer, loop, outs, ctx):
        """h and c (and the sequence, where a buffer holds it) from an op-by-op run."""
        L = layer.name
        for k, role in enumerate(loop.roles):
            if role in ("h", "c"):
                ctx.record[f"{L}/{role}"] = outs[k]
            elif role == "seq_h":
                ctx.record[f"{L}/sequence"] = outs[k].reshape(outs[k].shape[0], *outs[loop.h_arg].shape).transpose(1, 0, 2)


LOOP_RECURRENT = LoopRecurrent()
