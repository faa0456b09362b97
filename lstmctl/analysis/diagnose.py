"""Why your own LSTM disagrees: re-run a layer under known mistaken conventions and see which
one reproduces the user's numbers.

Each hypothesis is what a mistaken implementation computes, expressed as a change to Keras's
cell (gate blocks permuted, a bias added or dropped, another activation, the kernel applied to
[h, x]) or to the loop (state not carried, c reported for h, initial state swapped).
"""

from dataclasses import dataclass, replace

import numpy as np

from .. import kernels
from ..errors import LstmctlError, UsageError
from ..gates import Cell, n_gates
from ..model import Model
from ..runner import run, run_layer
from .compare import divergence
from .trace import only_recurrent

EXPLANATIONS = {
    "reference": "your numbers match Keras: your implementation is right",
    "forget_bias_added": "you add 1.0 to the forget gate's pre-activation on top of the saved bias, as TF1's LSTMCell does with forget_bias=1.0; a Keras file's b_f already holds the whole forget bias",
    "forget_bias_missing": "you leave out the forget-gate bias b_f (bias columns units:2·units)",
    "tf1_forget_bias_missing": "you use the stored TF1 bias as it is, leaving out the forget_bias TF1's LSTMCell adds to the forget gate at run time (add forget_bias to bias[2·units:3·units], TF1's f block)",
    "gate_order_ijfo": "you read the fused blocks as i, j, f, o (TF1's order, the same slices as Keras 1's i, c, f, o); Keras orders them i, f, c, o",
    "gate_order_iofc": "you read the fused blocks in ONNX's order i, o, f, c; Keras orders them i, f, c, o",
    "hard_sigmoid_keras2": "you use Keras 2's hard_sigmoid clip(0.2·x + 0.5, 0, 1) for the gates; this layer uses {gates}",
    "hard_sigmoid_keras3": "you use Keras 3's hard_sigmoid clip(x/6 + 0.5, 0, 1) for the gates; this layer uses {gates}",
    "sigmoid_for_hard_sigmoid": "you use the logistic sigmoid for the gates where the layer's recurrent_activation is hard_sigmoid",
    "concat_h_x": "you apply the stacked kernel [W; U] to [h, x]; Keras computes x·W + h·U, i.e. [x, h] against [W; U]",
    "state_not_carried": "you start every step from a zero state; carry h (and c) from one step to the next",
    "initial_state_swapped": "you pass the initial state as (c, h); Keras's initial_state is [h, c] (TF1's LSTMStateTuple is (c, h))",
    "cell_state_as_output": "you report the cell state c_t; the layer outputs h_t = o_t ⊙ tanh(c_t)",
    "bias_twice": "you add the bias twice (once with x·W and again with h·U)",
    "reset_after_flipped": "you apply the reset gate on the other side: reset_after=True computes r ⊙ (h·U_h + rb_h), reset_after=False (r ⊙ h)·U_h",
    "z_inverted": "you use z where Keras uses 1 − z: Keras's GRU is h_t = z ⊙ h_{t−1} + (1 − z) ⊙ h̃",
    "gate_order_rzn": "you read Keras's z, r, h blocks in PyTorch's order r, z, n",
}


# --- cell transformations ----------------------------------------------------------------------


def _blocks(cell: Cell, order) -> Cell:
    k, u = n_gates(cell.kind), cell.units

    def perm(a):
        return None if a is None else np.concatenate([a[..., j * u : (j + 1) * u] for j in order], axis=-1)

    assert len(order) == k
    return replace(cell, W=perm(cell.W), U=perm(cell.U), bias=perm(cell.bias))


def _bias(cell: Cell, edit) -> Cell:
    shape = (2, 3 * cell.units) if cell.kind == "gru" and cell.reset_after else (n_gates(cell.kind) * cell.units,)
    bias = np.zeros(shape, cell.W.dtype) if cell.bias is None else cell.bias.copy()
    return replace(cell, bias=edit(bias))


def _forget_slice(cell):
    return slice(cell.units, 2 * cell.units)


def _plus_forget(bias, cell, amount=1.0):
    bias[_forget_slice(cell)] += amount
    return bias


def _zero_forget(bias, cell):
    bias[_forget_slice(cell)] = 0.0
    return bias


def _recurrent_activation(cell: Cell, name: str, major: int) -> Cell:
    return replace(cell, recurrent_activation_name=name, keras_major=major)


def _concat_h_x(cell: Cell) -> Cell:
    stacked = np.concatenate([cell.W, cell.U], axis=0)  # rows: x then h
    return replace(cell, W=stacked[cell.units :], U=stacked[: cell.units])


def _reset_after_flipped(cell: Cell) -> Cell:
    if cell.reset_after:
        bias = None if cell.bias is None else cell.bias[0] + cell.bias[1]
    else:
        bias = None if cell.bias is None else np.stack([cell.bias, np.zeros_like(cell.bias)])
    return replace(cell, reset_after=not cell.reset_after, bias=bias)


def _z_inverted(cell: Cell) -> Cell:
    # σ(−x) = 1 − σ(x) for sigmoid and both hard_sigmoids: negate the z block.
    u = cell.units

    def neg(a):
        if a is None:
            return None
        a = a.copy()
        a[..., :u] *= -1
        return a

    return replace(cell, W=neg(cell.W), U=neg(cell.U), bias=neg(cell.bias))


@dataclass
class Hypothesis:
    id: str
    cell: Cell
    loop: str = "normal"  # normal | reset | cell_output | swap_init


def hypotheses(cell: Cell, has_initial_state: bool, file_major: int, tf1_forget_bias: float | None = None) -> list:
    """The hypotheses that apply to this cell (skipping those that would compute the reference);
    `tf1_forget_bias`: the forget_bias a TF1 model was read with (its b_f includes it)."""
    out = [Hypothesis("reference", cell)]
    ract = cell.recurrent_activation_name
    hard_form = 2 if file_major < 3 else 3
    if cell.kind == "lstm":
        out.append(Hypothesis("forget_bias_added", _bias(cell, lambda b: _plus_forget(b, cell))))
        if cell.bias is not None and np.any(cell.bias[_forget_slice(cell)] != 0):
            out.append(Hypothesis("forget_bias_missing", _bias(cell, lambda b: _zero_forget(b, cell))))
        if tf1_forget_bias:
            out.append(Hypothesis("tf1_forget_bias_missing", _bias(cell, lambda b: _plus_forget(b, cell, -tf1_forget_bias))))
        out.append(Hypothesis("gate_order_ijfo", _blocks(cell, (0, 2, 1, 3))))
        out.append(Hypothesis("gate_order_iofc", _blocks(cell, (0, 2, 3, 1))))
    if cell.kind in ("lstm", "gru"):
        if not (ract == "hard_sigmoid" and hard_form == 2):
            out.append(Hypothesis("hard_sigmoid_keras2", _recurrent_activation(cell, "hard_sigmoid", 2)))
        if not (ract == "hard_sigmoid" and hard_form == 3):
            out.append(Hypothesis("hard_sigmoid_keras3", _recurrent_activation(cell, "hard_sigmoid", 3)))
        if ract == "hard_sigmoid":
            out.append(Hypothesis("sigmoid_for_hard_sigmoid", _recurrent_activation(cell, "sigmoid", cell.keras_major)))
    if cell.kind == "gru":
        out.append(Hypothesis("reset_after_flipped", _reset_after_flipped(cell)))
        out.append(Hypothesis("z_inverted", _z_inverted(cell)))
        out.append(Hypothesis("gate_order_rzn", _blocks(cell, (1, 0, 2))))
    out.append(Hypothesis("concat_h_x", _concat_h_x(cell)))
    out.append(Hypothesis("state_not_carried", cell, loop="reset"))
    if cell.kind == "lstm":
        if has_initial_state:
            out.append(Hypothesis("initial_state_swapped", cell, loop="swap_init"))
        out.append(Hypothesis("cell_state_as_output", cell, loop="cell_output"))
    if cell.bias is not None:
        out.append(Hypothesis("bias_twice", _bias(cell, lambda b: b * 2)))
    return out


# --- running a hypothesis --------------------------------------------------------------------


def _simulate(h: Hypothesis, x, states, mask, go_backwards, zero_output):
    """(sequence in processing order, final output) for the whole batch."""
    cell = h.cell
    if h.loop == "swap_init":
        states = tuple(reversed(states))
    if h.loop == "reset":
        xw = kernels.project_inputs(cell, x)
        step = kernels.STEPS[cell.kind]
        order = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
        zeros = tuple(np.zeros_like(s) for s in states)
        seq = np.stack([step(cell, xw[:, t], zeros)[0] for t in order], axis=1)
        return seq, seq[:, -1]
    trace = [] if h.loop == "cell_output" else None
    seq, final = kernels.scan(cell, x, states, mask, go_backwards, zero_output, trace)
    if h.loop == "cell_output":
        seq = np.stack([states_t[1] for _, states_t in trace], axis=1)
        return seq, final[1]
    return seq, final[0]


@dataclass
class Diagnosis:
    layer: str
    compared: str  # "sequence" or "final h"
    results: list  # [{"id", "max_abs_error", "matches", "explanation"}], best first
    match: bool
    first_divergent_step: int | None
    growth: list
    atol: float
    reference: str = "Keras"  # what the layer's own numbers are: Keras's, or TF1's for a TF1 model

    def as_dict(self) -> dict:
        return {
            "match": self.match,
            "first_divergent_step": self.first_divergent_step,
            "explanations": [{"id": r["id"], "max_abs_error": r["max_abs_error"], "matches": r["matches"]} for r in self.results],
            "layer": self.layer,
            "compared": self.compared,
            "error_growth": self.growth,
        }


def _align(theirs: np.ndarray, seq: np.ndarray, final: np.ndarray, sample: int):
    """Which of our arrays the user's array corresponds to: (ours, what, time_axis)."""
    batch, steps, units = seq.shape
    if theirs.ndim == 3 and theirs.shape == seq.shape:
        return seq, "sequence", 1
    if theirs.ndim == 2 and theirs.shape == (steps, units) and (batch == 1 or theirs.shape[0] != batch or steps == batch):
        return seq[sample], "sequence", 0
    if theirs.ndim == 2 and theirs.shape == (batch, units):
        return final, "final h", None
    if theirs.ndim == 1 and theirs.shape == (units,):
        return final[sample], "final h", None
    raise LstmctlError(
        f"--outputs has shape {theirs.shape}; expected a hidden sequence ({steps}, {units}) or ({batch}, {steps}, {units}), or a final h ({units},) or ({batch}, {units})"
    )


def diagnose(model: Model, inputs, theirs, layer=None, sample=0, atol=1e-5, rtol=1e-5, direct=False, initial_state=None) -> Diagnosis:
    theirs = np.asarray(theirs)
    if theirs.dtype.kind != "f" or not np.all(np.isfinite(theirs)):
        raise LstmctlError("--outputs must hold finite floating-point numbers")
    target, direction = _resolve(model, layer) if layer else (only_recurrent(model), "")
    if target.kind == "bidirectional" and not direction:
        raise UsageError(f"'{target.name}' is Bidirectional: diagnose one direction, --layer {target.name}/forward or {target.name}/backward")
    half = getattr(target, direction) if direction else target
    if half.cells:
        raise UsageError(f"'{half.name}' is a stack of {len(half.cells)} cells: diagnose one cell, --layer {half.name}/cell_0 … {half.name}/cell_{len(half.cells) - 1}")
    if half.cell.W.ndim != 2:
        raise LstmctlError(f"layer '{half.name}': {half.class_name} convolves; diagnose knows the conventions of dense recurrent layers only")
    if direct:
        result = run_layer(model, target.name, inputs, initial_state=initial_state, watch={target.name})
    else:
        result = run(model, inputs, initial_state=initial_state, layer=target.name if initial_state is not None else None, watch={target.name})
    seen = result.seen.get(target.name)
    if seen is None:
        raise LstmctlError(f"layer '{target.name}' was not reached while running the model")
    sub = getattr(target, direction) if direction else target
    cell = sub.cell.astype(seen["dtype"])
    x = seen["x"].value.astype(seen["dtype"], copy=False)
    n = len(cell.state_names)
    given = seen["states"][n:] if direction == "backward" else seen["states"][:n]
    states = tuple(np.asarray(s, seen["dtype"]) for s in given) if given else tuple(np.zeros((x.shape[0], cell.units), seen["dtype"]) for _ in range(n))
    has_init = bool(given) and any(np.any(s != 0) for s in states)
    go_backwards = sub.flag("go_backwards")
    zero_output = target.kind == "bidirectional" or sub.flag("zero_output_for_mask")
    if not -x.shape[0] <= sample < x.shape[0]:
        raise UsageError(f"--sample {sample} is out of range: the input has {x.shape[0]} samples")
    results, reference = [], None
    tf1_forget_bias = getattr(model, "forget_bias", None) if getattr(model, "convention", None) == "tf1" else None
    for h in hypotheses(cell, has_init, model.keras_major, tf1_forget_bias):
        seq, final = _simulate(h, x, states, seen["x"].mask, go_backwards, zero_output)
        if direction == "backward":
            seq = seq[:, ::-1]  # as Bidirectional returns a backward half, and run reports it
        ours, what, time_axis = _align(theirs, seq, final, sample)
        err = float(np.abs(ours.astype(np.float64) - theirs).max())
        ok = bool(np.all(np.abs(ours - theirs) <= atol + rtol * np.abs(ours)))
        if h.id == "reference":
            reference = (ours, time_axis)
        results.append({"id": h.id, "max_abs_error": err, "matches": ok, "explanation": _explain(h.id, cell, tf1_forget_bias)})
    results.sort(key=lambda r: (not r["matches"], r["max_abs_error"], r["id"] != "reference"))
    match = next(r["matches"] for r in results if r["id"] == "reference")
    first, growth = None, []
    if not match and reference[1] is not None:
        first, growth = divergence(theirs.astype(np.float64), reference[0].astype(np.float64), atol, rtol, reference[1])
    name = f"{target.name}/{direction}" if direction else target.name
    return Diagnosis(name, what, results, match, first, growth, atol, "TF1" if tf1_forget_bias is not None else "Keras")


def _gates_form(cell: Cell) -> str:
    """The gate activation in words, hard_sigmoid in its version's form."""
    if cell.recurrent_activation_name != "hard_sigmoid":
        return f"{cell.recurrent_activation_name}"
    return "Keras 3's hard_sigmoid clip(x/6 + 0.5, 0, 1)" if cell.keras_major >= 3 else "Keras 2's hard_sigmoid clip(0.2·x + 0.5, 0, 1)"


def _explain(hid: str, cell: Cell, tf1_forget_bias: float | None) -> str:
    if hid == "reference" and tf1_forget_bias is not None:
        return f"your numbers match TF1's cell with forget_bias {tf1_forget_bias!r}: your implementation is right"
    return EXPLANATIONS[hid].replace("{gates}", _gates_form(cell) if cell.recurrent_activation_name else "")


def _resolve(model: Model, name: str):
    head, _, tail = name.partition("/")
    if tail in ("forward", "backward"):
        layer = model.layer(head)
        if layer.kind != "bidirectional":
            raise LstmctlError(f"layer '{head}' is not Bidirectional; it has no {tail} direction")
        return layer, tail
    layer = model.layer(name)
    if not layer.is_recurrent:
        raise LstmctlError(f"layer '{name}' is {layer.class_name}, not a recurrent layer")
    return layer, ""
