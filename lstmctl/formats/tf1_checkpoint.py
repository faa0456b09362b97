"""TF1 checkpoints (`tf.compat.v1.train.Saver`): the recurrent cells found by their variable scopes.

    <root>/lstm_cell/kernel, bias                    LSTMCell (BasicLSTMCell: basic_lstm_cell)
    <root>/gru_cell/gates/…, candidate/…             GRUCell
    <root>/basic_rnn_cell/kernel, bias               BasicRNNCell
    <root>/multi_rnn_cell/cell_<k>/<cell>/…          MultiRNNCell: a stack, cell k feeding cell k+1
    <root>/fw/…, <root>/bw/…                         bidirectional_dynamic_rnn (each side may be a stack)

Each root (`rnn`, `encoder/rnn`, `bidirectional_rnn`) becomes one layer returning its whole
sequence, named after the root with dots (`encoder.rnn`). The arrays are converted into Keras's
layout by the tf1 convention (lstmctl.conventions): kernel on [x, h], blocks i, j, f, o, and the
forget_bias TF1 adds at run time folded into the forget gate's bias.
"""

import re

import numpy as np

from ..conventions import TF1_LEAVES, TF1_REFUSED
from ..errors import LstmctlError, show
from ..layers import REGISTRY
from ..layers.recurrent import stack_layer
from ..model import Call, InputSpec, Layer, Ref
from .weights_builder import ImportedModel, Keys, bidirectional_wrapper, spec_layer, tf1_cell
from .tf2_checkpoint import skip_reason, skipped_notes

CELL_SCOPE = re.compile(r"(basic_lstm_cell|lstm_cell|gru_cell|basic_rnn_cell)(_\d+)?")
CELL_CLASS = {"basic_lstm_cell": "BasicLSTMCell", "lstm_cell": "LSTMCell", "gru_cell": "GRUCell", "basic_rnn_cell": "BasicRNNCell"}


def _place(name: str):
    """(root, direction, stack index, cell prefix, leaf) of a cell variable, or None."""
    parts = name.split("/")
    at = max((i for i, p in enumerate(parts) if CELL_SCOPE.fullmatch(p)), default=None)
    if at is None:
        return None
    leaf = "/".join(parts[at + 1 :])
    prefix = "/".join(parts[: at + 1]) + "/"
    for refused, what in TF1_REFUSED.items():
        if leaf == refused:
            raise LstmctlError(f"'{show(name)}' holds {what}, which Keras's recurrent layers do not have; refused")
    if leaf not in TF1_LEAVES:
        return None
    scope = parts[:at]
    stack = None
    if len(scope) >= 2 and scope[-2] == "multi_rnn_cell" and re.fullmatch(r"cell_\d+", scope[-1]):
        stack, scope = int(scope[-1][5:]), scope[:-2]
    direction = None
    if scope and scope[-1] in ("fw", "bw"):
        direction, scope = scope[-1], scope[:-1]
    root = "/".join(scope) or CELL_SCOPE.fullmatch(parts[at]).group(1)
    return root, direction, stack, prefix, leaf


def model(bundle, path: str, forget_bias: float = 1.0, activation: str | None = None) -> ImportedModel:
    """The model a TF1 checkpoint's cells make: one layer per root, each with its own input."""
    roots, skipped, arrays = {}, {}, {}
    for name in bundle.entries:
        try:
            place = _place(name)
        except LstmctlError as exc:
            raise LstmctlError(f"{path}: {exc}") from None
        if place is None:
            skipped.setdefault(skip_reason(name, "outside any recurrent cell's scope"), []).append(name)
            continue
        root, direction, stack, prefix, leaf = place
        cells = roots.setdefault(root, {}).setdefault(direction, {})
        cells.setdefault(stack, (prefix, set()))[1].add(leaf)
        arrays[name] = bundle.read(name)
    if not roots:
        found = ", ".join(show(n) for n in list(bundle.entries)[:8])
        raise LstmctlError(f"{path}: TF1 checkpoint without recurrent cell variables (…/lstm_cell/kernel, …/gru_cell/gates/kernel, …/basic_rnn_cell/kernel); it holds {found}")
    keys = Keys(arrays, path, "tf1")
    act = activation or "tanh"
    layers, inputs, outputs, kinds = [], [], [], set()
    for root, directions in roots.items():
        name = root.replace("/", ".")
        if set(directions) not in ({None}, {"fw", "bw"}):
            raise LstmctlError(f"{path}: scope '{show(root)}' has cells for {', '.join(sorted(str(d) for d in directions))}; a bidirectional RNN needs both fw and bw")
        halves, layout = [], []
        for direction in sorted(directions, key=lambda d: d != "fw"):
            cells = directions[direction]
            if None in cells and len(cells) > 1:
                raise LstmctlError(f"{path}: scope '{show(root)}' holds a single cell and a MultiRNNCell")
            specs = [tf1_cell(keys, *cells[k], forget_bias) for k in sorted(cells, key=lambda k: -1 if k is None else k)]
            if None not in cells and sorted(cells) != list(range(len(cells))):
                raise LstmctlError(f"{path}: scope '{show(root)}' has MultiRNNCell cells {sorted(cells)}, not 0..{len(cells) - 1}")
            kinds.update(s.kind for s in specs)
            half = f"{name}/{'forward' if direction == 'fw' else 'backward'}" if direction else name
            halves.append(_direction(half, specs, act, direction == "bw", forget_bias))
            layout += [_layout(cells[k][0], s, forget_bias) for k, s in zip(sorted(cells, key=lambda k: -1 if k is None else k), specs)]
        layer = halves[0] if len(halves) == 1 else bidirectional_wrapper(name, *halves, halves[0].weights[0].dtype)
        cell_names = sorted({CELL_CLASS[CELL_SCOPE.fullmatch(p.rstrip("/").rsplit("/", 1)[-1]).group(1)] for d in directions.values() for p, _ in d.values()})
        structure = ("bidirectional_dynamic_rnn over " if len(halves) == 2 else "") + ("MultiRNNCell of " + str(len(directions[next(iter(directions))])) + " " if None not in directions[next(iter(directions))] else "") + "/".join(cell_names)
        layer.notes.append(f"TF1 {structure} under scope '{root}'")
        layer.notes.extend(layout)
        source = "input" if len(roots) == 1 else f"{name}_input"
        width = layer.weights[0].shape[0]
        layers.append(Layer(source, "InputLayer", {"batch_shape": [None, None, width], "dtype": layer.weights[0].dtype.name}, spec=REGISTRY["InputLayer"]))
        layer.calls = [Call([Ref(source, 0, 0)], [])]
        layers.append(layer)
        inputs.append(InputSpec(source, (None, width), layer.weights[0].dtype.name))
        outputs.append(Ref(name, 0, 0))
    notes = [
        "TF1 checkpoint (tf.compat.v1.train.Saver): cells found by their variable scopes; each layer returns its whole sequence, as dynamic_rnn does",
        f"activation {act}" + (" (set with --activation)" if activation else " (TF1's default; a checkpoint does not record it: override with --activation)") + "; gates sigmoid, as TF1's cells always use",
    ]
    if "lstm" in kinds:
        notes.append(f"TF1 LSTM bias: forget_bias {forget_bias!r} added to the stored forget-gate bias (TF1 adds it at run time; another value with --forget-bias)")
    notes += skipped_notes(skipped)
    return ImportedModel(path, "tf1-checkpoint", None, "tensorflow", "Functional", "tf1", layers, inputs, [Ref(i.name, 0, 0) for i in inputs], outputs, notes=notes, convention="tf1", hard_sigmoid_form=2, forget_bias=forget_bias)


def _layout(prefix: str, spec, forget_bias: float) -> str:
    """Where the gates shown (in Keras's layout) sit in the checkpoint's own variables."""
    n, u = spec.W.shape[0], spec.units
    rows = f"rows 0:{n} multiply x (W), rows {n}:{n + u} multiply h (U)"
    if spec.kind == "lstm":
        return f"TF1 {prefix}kernel ({n + u}, {4 * u}): {rows}; columns i 0:{u}, j = c̃ {u}:{2 * u}, f {2 * u}:{3 * u}, o {3 * u}:{4 * u}; b_f shown = {prefix}bias[{2 * u}:{3 * u}] + forget_bias {forget_bias!r}"
    if spec.kind == "gru":
        return f"TF1 {prefix}gates/kernel ({n + u}, {2 * u}): {rows}; columns r 0:{u}, u = z {u}:{2 * u}; {prefix}candidate/kernel ({n + u}, {u}) is h̃"
    return f"TF1 {prefix}kernel ({n + u}, {u}): {rows}"


def _direction(name, specs, act, backwards, forget_bias) -> Layer:
    """One side of a root: a cell, or a MultiRNNCell's cells as a stack (an RNN over them)."""
    dtype = np.result_type(*[a for s in specs for a in (s.W, s.U)])
    for below, above in zip(specs, specs[1:]):
        if above.W.shape[0] != below.units:
            raise LstmctlError(f"{above.where}: takes inputs of {above.W.shape[0]} features, the cell below gives {below.units}")
    layers = [spec_layer(s, name, act, None if s.kind == "simple_rnn" else "sigmoid", dtype, 2, go_backwards=backwards, tf1_forget_bias=forget_bias) for s in specs]
    if len(layers) == 1:
        return layers[0]
    stack = stack_layer(name, layers)
    stack.config.update(return_sequences=True, return_state=False, go_backwards=backwards, stateful=False, dtype=np.dtype(dtype).name)
    return stack
