"""Recurrent weights in other frameworks' conventions: export, import, and an ONNX model.

Each framework fuses the gates of one LSTM / GRU / simple RNN layer differently:

| convention | LSTM | GRU | simple RNN |
|---|---|---|---|
| keras   | kernel (in, 4u), recurrent_kernel (u, 4u), bias (4u,); i, f, c, o | z, r, h; bias (2, 3u) reset_after=True, (3u,) False | kernel, recurrent_kernel, bias |
| pytorch | weight_ih_l{k} (4u, in), weight_hh_l{k} (4u, u), bias_ih_l{k} + bias_hh_l{k}; i, f, g, o | r, z, n (= reset_after=True) | nn.RNN, tanh or relu |
| tf1     | <scope>/lstm_cell/kernel (in + u, 4u) for concat([x, h]), bias; i, j, f, o; forget_bias added at run time | gru_cell/gates/{kernel,bias} (r, u), candidate/{kernel,bias} (= reset_after=False) | basic_rnn_cell/{kernel,bias} |
| onnx    | W [dirs, 4u, in], R [dirs, 4u, u], B [dirs, 8u] = [Wb, Rb]; i, o, f, c | z, r, h; linear_before_reset ⇔ reset_after | ONNX RNN |

`export(model, to)` turns a model's recurrent layer(s) into one of these layouts (arrays and notes
for the user); `import_arrays(arrays, convention)` reads such arrays back into a `Model` with one
recurrent layer (or a stack), named after its kind, that `run`, `trace`, `inspect` and `diagnose`
treat like any Keras model. `onnx_model(model)` builds a runnable ONNX graph (needs `onnx`).

Every mapping here is exact: a permutation of gate blocks, a transpose, a bias split into two
halves one of which is zero, or (TF1 only) the run-time forget_bias subtracted from the stored
forget-gate bias, kept in float64 so that adding it back restores the Keras bias bit for bit.
Where a target framework cannot compute what the layer computes, export refuses and says why.
"""

import re
from dataclasses import dataclass, field

import numpy as np

from . import gates as gates_mod
from .errors import LstmctlError, UsageError
from .kernels import ACTIVATION_NAMES
from .graph import Call, InputSpec, Layer, Ref
from .layers import REGISTRY
from .layers.recurrent import bidirectional_layer, recurrent_layer
from .model import Model

CONVENTIONS = ("keras", "pytorch", "tf1", "onnx")
TARGETS = (*CONVENTIONS, "onnx-model")
HARD_SIGMOID_FORMS = {"keras2": 2, "keras3": 3}
KIND_BY_GATES = {4: "lstm", 3: "gru", 1: "simple_rnn"}
CLASS_NAME = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
TORCH_CLASS = {"lstm": "nn.LSTM", "gru": "nn.GRU", "simple_rnn": "nn.RNN"}
TF1_CELL = {"lstm": "lstm_cell", "gru": "gru_cell", "simple_rnn": "basic_rnn_cell"}
ONNX_OP = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}
IDENTITY_LAYERS = {"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout"}

# Gate-block permutations: new block j is old block PERM[j]. Each is its own inverse except ONNX's.
KERAS_TO_TF1 = (0, 2, 1, 3)  # i, f, c, o -> i, j, f, o
KERAS_TO_ONNX = (0, 3, 1, 2)  # i, f, c, o -> i, o, f, c
ONNX_TO_KERAS = (0, 2, 3, 1)
KERAS_TO_TORCH_GRU = (1, 0, 2)  # z, r, h -> r, z, n
TF1_F = 2  # the forget block in TF1's i, j, f, o

# What each framework's layer can compute (activation, recurrent_activation).
ONNX_ACTIVATIONS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "hard_sigmoid": "HardSigmoid", "linear": "Affine", "elu": "Elu", "softsign": "Softsign", "softplus": "Softplus"}


def _blocks(a: np.ndarray, perm, k: int) -> np.ndarray:
    """Reorder the k gate blocks along the last axis."""
    parts = np.split(a, k, axis=-1)
    return np.concatenate([parts[j] for j in perm], axis=-1)


# ---------------------------------------------------------------------------------------------
# Export


@dataclass
class _Level:
    """One recurrent layer of what is exported: one cell, or forward and backward cells."""

    layer: Layer
    cells: list  # [Cell] or [forward Cell, backward Cell]
    go_backwards: bool = False  # a plain layer that reads its input last step first
    in_stack: bool = False  # a cell of an RNN stack above its first: fed by the level below by construction

    @property
    def bidirectional(self) -> bool:
        return len(self.cells) == 2

    @property
    def kind(self) -> str:
        return self.cells[0].kind

    @property
    def units(self) -> int:
        return self.cells[0].units

    @property
    def input_dim(self) -> int:
        return self.cells[0].input_dim

    @property
    def use_bias(self) -> bool:
        return self.cells[0].bias is not None


def _levels(layer: Layer, to: str) -> list:
    """The levels of one recurrent layer: itself, or each cell of a stack (first to last)."""
    if not layer.is_recurrent:
        raise LstmctlError(f"layer '{layer.name}' is {layer.class_name}, not a recurrent layer")
    half = layer.forward or layer
    if half.cell is not None and half.cell.W.ndim != 2:
        raise LstmctlError(f"layer '{layer.name}': {half.class_name} convolves; the {to} convention holds dense recurrent layers only")
    if layer.cells:
        return [_Level(sub, [sub.cell], sub.flag("go_backwards"), k > 0) for k, sub in enumerate(layer.cells)]
    if layer.kind == "recurrent":
        return [_Level(layer, [layer.cell], layer.flag("go_backwards"))]
    fwd, bwd = layer.forward, layer.backward
    if fwd.cells:
        raise LstmctlError(f"layer '{layer.name}': refused: a Bidirectional around a stack of cells runs each direction's stack on its own; {to} stacks join the directions after every layer")
    if fwd.flag("go_backwards") or not bwd.flag("go_backwards"):
        raise LstmctlError(f"layer '{layer.name}': refused: a Bidirectional whose forward layer reads backwards (or whose backward layer reads forwards) has no {to} equivalent (its npz keys cannot say so)")
    a, b = fwd.cell, bwd.cell
    same = (a.kind, a.units, a.input_dim, a.bias is None, a.reset_after, a.activation_name, a.recurrent_activation_name)
    if same != (b.kind, b.units, b.input_dim, b.bias is None, b.reset_after, b.activation_name, b.recurrent_activation_name):
        raise LstmctlError(f"layer '{layer.name}': its forward and backward layers differ (kind, size, bias or activations); {to} keeps both directions in one layer")
    return [_Level(layer, [a, b])]


def _select(model: Model, layers, to: str) -> list:
    names = list(layers or [])
    if len(set(names)) != len(names):
        raise UsageError("--layer names a layer twice")
    targets = [model.layer(n) for n in names] if names else model.recurrent_layers()
    if not targets:
        raise LstmctlError(f"{model.path}: no recurrent layers to export")
    levels = [level for t in targets for level in _levels(t, to)]
    if len(levels) > 1:
        listed = ", ".join(t.name for t in targets)
        if not names and len(targets) > 1:
            raise UsageError(f"{model.path} has {len(levels)} recurrent layers ({listed}): choose one with --layer (for a stack in pytorch or tf1, give --layer once per layer, first to last)")
        if to not in ("pytorch", "tf1"):
            raise LstmctlError(f"the {to} convention holds one layer; export {listed} one at a time (pytorch and tf1 can hold a stack)")
        _check_stack(model, levels, to)
    return levels


def _check_stack(model: Model, levels: list, to: str):
    first = levels[0]
    for below, above in zip(levels, levels[1:]):
        name = above.layer.name
        if (above.kind, above.bidirectional) != (first.kind, first.bidirectional):
            raise LstmctlError(f"layer '{name}' is not the same kind of layer as '{first.layer.name}'; a {to} stack repeats one kind")
        if not above.in_stack:  # the cells of one RNN run on the outputs of the one below by construction
            fed_by = _feeder(model, above.layer)
            if fed_by != below.layer.name:
                raise LstmctlError(f"layer '{name}' is fed by '{fed_by}', not by '{below.layer.name}': give --layer in stack order, first to last")
            if below.bidirectional and below.layer.config.get("merge_mode") != "concat":
                raise LstmctlError(f"layer '{below.layer.name}' merges its directions by '{below.layer.config.get('merge_mode')}'; a {to} stack feeds the next layer both directions concatenated")
            if not below.layer.flag("return_sequences"):
                raise LstmctlError(f"layer '{below.layer.name}' does not return sequences, so '{name}' does not run on its outputs as a stacked layer would")
        if above.input_dim != below.units * len(below.cells):
            raise LstmctlError(f"layer '{name}' takes inputs of {above.input_dim} features, but '{below.layer.name}' gives {below.units * len(below.cells)}: they are not a stack")
        if to == "pytorch":
            if above.units != first.units:
                raise LstmctlError(f"torch.{TORCH_CLASS[first.kind]}(num_layers={len(levels)}) has one hidden_size, but the layers have units {', '.join(str(lv.units) for lv in levels)}; export them one at a time")
            if above.use_bias != first.use_bias:
                raise LstmctlError(f"torch.{TORCH_CLASS[first.kind]} has bias in every layer or none; '{first.layer.name}' and '{name}' differ")
            if above.cells[0].activation_name != first.cells[0].activation_name:
                raise LstmctlError(f"torch.nn.RNN has one nonlinearity for all layers; '{first.layer.name}' and '{name}' differ")


def _feeder(model: Model, layer: Layer) -> str | None:
    """The recurrent layer whose output `layer` reads, looking through inference-time identities."""
    current = layer
    for _ in range(64):
        if len(current.calls) != 1 or len(current.calls[0].inputs) != 1:
            return None
        ref = current.calls[0].inputs[0]
        try:
            current = model.layer(ref.layer)
        except LstmctlError:
            return ref.layer
        if current.class_name not in IDENTITY_LAYERS:
            return current.name
    return None


def _check_activations(level: _Level, to: str, notes: list):
    cell, name = level.cells[0], level.layer.name
    act, ract = cell.activation_name, cell.recurrent_activation_name
    default = act == "tanh" and ract in (None, "sigmoid")
    if to == "pytorch":
        if cell.kind == "simple_rnn":
            if act not in ("tanh", "relu"):
                raise LstmctlError(f"layer '{name}': torch.nn.RNN computes tanh or relu, not {act}; refused (the weights would load but compute something else)")
        elif not default:
            raise LstmctlError(f"layer '{name}': torch.{TORCH_CLASS[cell.kind]} computes activation tanh and recurrent_activation sigmoid, this layer uses {act} and {ract}; refused (the weights would load but compute something else)")
        if cell.kind == "gru" and not cell.reset_after:
            raise LstmctlError(f"layer '{name}': torch.nn.GRU applies the reset gate after the recurrent product (Keras reset_after=True); this GRU has reset_after=False, which torch.nn.GRU cannot compute; refused (export it to tf1 or onnx)")
    elif to == "tf1":
        if cell.kind != "simple_rnn" and ract != "sigmoid":
            raise LstmctlError(f"layer '{name}': TF1's {TF1_CELL[cell.kind]} always uses sigmoid gates, this layer uses {ract}; refused")
        if cell.kind == "gru" and cell.reset_after:
            raise LstmctlError(f"layer '{name}': TF1's GRUCell applies the reset gate before the recurrent product (Keras reset_after=False); this GRU has reset_after=True, which GRUCell cannot compute; refused (export it to pytorch or onnx)")
        if act != "tanh":
            notes.append(f"layer '{name}' uses activation {act}: create the TF1 cell with activation={act}")
    elif to in ("onnx", "onnx-model"):
        for a in (act, ract):
            if a is not None and a not in ONNX_ACTIVATIONS:
                raise LstmctlError(f"layer '{name}': ONNX's {ONNX_OP[cell.kind]} has no activation {a} (it offers {', '.join(sorted(ONNX_ACTIVATIONS))}); refused")
        if to == "onnx" and not default:
            notes.append(f"layer '{name}': set the ONNX {ONNX_OP[cell.kind]} node's activations attribute (--to onnx-model does)")
    if not default and to != "onnx-model":
        flags = f"--activation {act}" + (f" --recurrent-activation {ract}" if ract not in (None, "sigmoid") else "")
        if "hard_sigmoid" in (act, ract):
            flags += f" --hard-sigmoid keras{3 if cell.keras_major >= 3 else 2}"
        notes.append(f"layer '{name}' uses activation {act}" + (f", recurrent_activation {ract}" if ract else "") + f"; an npz does not record activations: import it with {flags}")


def export(model: Model, to: str, layers=None, forget_bias: float = 1.0):
    """The selected recurrent layer(s) in convention `to`: (arrays name -> ndarray, notes)."""
    if to not in CONVENTIONS:
        raise UsageError(f"unknown convention {to!r}; choose from {', '.join(CONVENTIONS)}")
    if not isinstance(forget_bias, (int, float)) or isinstance(forget_bias, bool) or not np.isfinite(forget_bias):
        raise UsageError(f"forget_bias must be a finite number, got {forget_bias!r}")
    levels = _select(model, layers, to)
    notes = []
    if model.inferred:
        notes.append(f"{model.path} is weights-only: its layers' activations are assumed (tanh, sigmoid), not read")
    for level in levels:
        _check_activations(level, to, notes)
        if level.go_backwards:
            notes.append(f"layer '{level.layer.name}' has go_backwards=True: the weights do not say so; feed the layer its input reversed in time (Keras returns that reversed-time sequence)")
        if level.bidirectional and level.layer.config.get("merge_mode") != "concat" and to != "keras":
            notes.append(f"layer '{level.layer.name}' merges its directions by '{level.layer.config.get('merge_mode')}'; {to} returns them concatenated (forward first)")
    arrays = {"keras": _to_keras, "pytorch": _to_pytorch, "tf1": _to_tf1, "onnx": _to_onnx}[to](levels, notes, float(forget_bias))
    return arrays, list(dict.fromkeys(notes))


def _to_keras(levels, notes, forget_bias):
    (level,) = levels
    out = {}
    prefixes = ["forward/", "backward/"] if level.bidirectional else [""]
    for prefix, cell in zip(prefixes, level.cells):
        out[f"{prefix}kernel"] = cell.W
        out[f"{prefix}recurrent_kernel"] = cell.U
        if cell.bias is not None:
            out[f"{prefix}bias"] = cell.bias
        elif cell.kind == "gru":
            out[f"{prefix}reset_after"] = np.array(int(cell.reset_after))
    weights = "[kernel, recurrent_kernel" + (", bias]" if level.use_bias else "]")
    if level.bidirectional:
        notes.append(f"Keras: bidirectional.set_weights(forward {weights} + backward {weights})")
    else:
        notes.append(f"Keras: layer.set_weights({weights})")
    return out


def _torch_arrays(cell):
    """weight_ih, weight_hh, bias_ih, bias_hh (the biases None without bias) in PyTorch's layout."""
    if cell.kind == "gru":
        W, U = _blocks(cell.W, KERAS_TO_TORCH_GRU, 3), _blocks(cell.U, KERAS_TO_TORCH_GRU, 3)
        b_ih = b_hh = None
        if cell.bias is not None:
            b_ih, b_hh = _blocks(cell.bias[0], KERAS_TO_TORCH_GRU, 3), _blocks(cell.bias[1], KERAS_TO_TORCH_GRU, 3)
    else:  # LSTM i, f, g, o is Keras's i, f, c, o; nn.RNN has one block
        W, U = cell.W, cell.U
        b_ih = cell.bias
        b_hh = None if b_ih is None else np.zeros_like(b_ih)
    return np.ascontiguousarray(W.T), np.ascontiguousarray(U.T), b_ih, b_hh


def _to_pytorch(levels, notes, forget_bias):
    out = {}
    for k, level in enumerate(levels):
        for suffix, cell in zip(("", "_reverse"), level.cells):
            w_ih, w_hh, b_ih, b_hh = _torch_arrays(cell)
            out[f"weight_ih_l{k}{suffix}"] = w_ih
            out[f"weight_hh_l{k}{suffix}"] = w_hh
            if b_ih is not None:
                out[f"bias_ih_l{k}{suffix}"] = b_ih
                out[f"bias_hh_l{k}{suffix}"] = b_hh
    first = levels[0]
    args = [f"input_size={first.input_dim}", f"hidden_size={first.units}", f"num_layers={len(levels)}"]
    if first.kind == "simple_rnn":
        args.append(f"nonlinearity='{first.cells[0].activation_name}'")
    if not first.use_bias:
        args.append("bias=False")
    if first.bidirectional:
        args.append("bidirectional=True")
    args.append("batch_first=True")
    notes.append(f"PyTorch: m = torch.{TORCH_CLASS[first.kind]}({', '.join(args)}); m.load_state_dict({{k: torch.from_numpy(v) for k, v in np.load(FILE).items()}})")
    if first.use_bias and first.kind != "gru":
        notes.append("bias_ih holds the Keras bias and bias_hh is zeros (PyTorch adds the two)")
    return out


def _tf1_prefixes(levels) -> list:
    """One scope per (level, direction), as TF1's dynamic_rnn / MultiRNNCell / bidirectional_dynamic_rnn name them."""
    out = []
    for k, level in enumerate(levels):
        cell = TF1_CELL[level.kind]
        if len(levels) == 1:
            base = ["bidirectional_rnn/fw/", "bidirectional_rnn/bw/"] if level.bidirectional else ["rnn/"]
        elif level.bidirectional:
            base = [f"stack_bidirectional_rnn/cell_{k}/bidirectional_rnn/fw/", f"stack_bidirectional_rnn/cell_{k}/bidirectional_rnn/bw/"]
        else:
            base = [f"rnn/multi_rnn_cell/cell_{k}/"]
        out.append([f"{b}{cell}/" for b in base])
    return out


def _tf1_bias(cell, forget_bias, notes, where):
    """TF1's stored LSTM bias: Keras's in i, j, f, o with forget_bias taken off f, in float64."""
    u = cell.units
    keras_b = cell.bias if cell.bias is not None else np.zeros(4 * u, cell.W.dtype)
    tf_b = _blocks(keras_b, KERAS_TO_TF1, 4).astype(np.float64)
    tf_b[TF1_F * u : (TF1_F + 1) * u] -= forget_bias
    back = (tf_b[TF1_F * u : (TF1_F + 1) * u] + forget_bias).astype(keras_b.dtype)
    lost = back != keras_b[u : 2 * u]
    if lost.any():
        worst = float(np.max(np.abs(back.astype(np.float64) - keras_b[u : 2 * u])))
        notes.append(f"{where}: {int(lost.sum())} forget-gate bias value(s) do not survive b - {forget_bias!r} exactly even in float64 (largest change {worst:.3g}); importing gives those back to within that")
    return tf_b


def _to_tf1(levels, notes, forget_bias):
    out = {}
    for level, prefixes in zip(levels, _tf1_prefixes(levels)):
        for prefix, cell in zip(prefixes, level.cells):
            W, U, u = cell.W, cell.U, cell.units
            zero = np.zeros(gates_mod.n_gates(cell.kind) * u, W.dtype)
            if cell.kind == "lstm":
                out[f"{prefix}kernel"] = np.concatenate([_blocks(W, KERAS_TO_TF1, 4), _blocks(U, KERAS_TO_TF1, 4)], axis=0)
                out[f"{prefix}bias"] = _tf1_bias(cell, forget_bias, notes, f"layer '{level.layer.name}'")
            elif cell.kind == "gru":
                b = cell.bias if cell.bias is not None else zero
                out[f"{prefix}gates/kernel"] = np.concatenate([np.concatenate([W[:, u : 2 * u], W[:, :u]], axis=1), np.concatenate([U[:, u : 2 * u], U[:, :u]], axis=1)], axis=0)
                out[f"{prefix}gates/bias"] = np.concatenate([b[u : 2 * u], b[:u]])
                out[f"{prefix}candidate/kernel"] = np.concatenate([W[:, 2 * u :], U[:, 2 * u :]], axis=0)
                out[f"{prefix}candidate/bias"] = b[2 * u :]
            else:
                out[f"{prefix}kernel"] = np.concatenate([W, U], axis=0)
                out[f"{prefix}bias"] = cell.bias if cell.bias is not None else zero
            if cell.bias is None:
                notes.append(f"layer '{level.layer.name}' has no bias; TF1 cells always have one: written as zeros" + (f" (minus forget_bias on f)" if cell.kind == "lstm" else "") + ", so an import gives use_bias=True with the same numbers")
    if any(level.kind == "lstm" for level in levels):
        notes.append(
            f"TF1 adds forget_bias={forget_bias!r} to the forget gate at run time: the stored bias is the Keras bias with {forget_bias!r} subtracted "
            f"from its f block, kept in float64 so that adding it back is exact; build LSTMCell(..., forget_bias={forget_bias!r}) and import with --forget-bias {forget_bias!r}"
        )
        notes.append("TF1 orders the LSTM blocks i, j, f, o (j = the candidate) and its state tuple is (c, h)")
    return out


def _onnx_arrays(level):
    """W, R, B (B None without bias) and linear_before_reset (GRU) in ONNX's layout."""
    Ws, Rs, Bs = [], [], []
    for cell in level.cells:
        k = gates_mod.n_gates(cell.kind)
        if cell.kind == "lstm":
            W, U = _blocks(cell.W, KERAS_TO_ONNX, 4), _blocks(cell.U, KERAS_TO_ONNX, 4)
            b = None if cell.bias is None else np.concatenate([_blocks(cell.bias, KERAS_TO_ONNX, 4), np.zeros(k * cell.units, cell.bias.dtype)])
        else:
            W, U = cell.W, cell.U
            if cell.bias is None:
                b = None
            elif cell.kind == "gru" and cell.reset_after:
                b = np.concatenate([cell.bias[0], cell.bias[1]])
            else:
                b = np.concatenate([cell.bias, np.zeros_like(cell.bias)])
        Ws.append(W.T)
        Rs.append(U.T)
        Bs.append(b)
    B = None if Bs[0] is None else np.stack(Bs)
    lbr = int(level.cells[0].reset_after) if level.kind == "gru" else None
    return np.stack(Ws), np.stack(Rs), B, lbr


def _to_onnx(levels, notes, forget_bias):
    (level,) = levels
    W, R, B, lbr = _onnx_arrays(level)
    out = {"W": W, "R": R}
    if B is not None:
        out["B"] = B
    op = ONNX_OP[level.kind]
    attrs = f"hidden_size={level.units}, direction='{'bidirectional' if level.bidirectional else 'forward'}'"
    if lbr is not None:
        out["linear_before_reset"] = np.array(lbr, np.int64)
        attrs += f", linear_before_reset={lbr}"
    order = {"lstm": "i, o, f, c", "gru": "z, r, h", "simple_rnn": "one block"}[level.kind]
    notes.append(f"ONNX {op}({attrs}): W, R and B in ONNX's gate order {order}" + ("; B = [Wb, Rb] with the Keras bias in Wb and Rb zeros" if level.kind != "gru" and B is not None else ""))
    return out


# ---------------------------------------------------------------------------------------------
# ONNX model


def _onnx_activation(name: str, form: int):
    """(ONNX name, alpha, beta) for a Keras activation; alpha/beta None where not used."""
    if name == "hard_sigmoid":
        return "HardSigmoid", (0.2 if form < 3 else 1.0 / 6.0), 0.5
    if name == "linear":
        return "Affine", 1.0, 0.0
    if name == "elu":
        return "Elu", 1.0, None
    return ONNX_ACTIVATIONS[name], None, None


def onnx_model(model: Model, layers=None, opset: int = 14):
    """A runnable ONNX model of one recurrent layer: (serialized bytes, notes).

    Graph input X [seq_length, batch, input_size] (ONNX layout 0); outputs Y [seq_length,
    num_directions, batch, hidden_size], Y_h [num_directions, batch, hidden_size] (and Y_c).
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise LstmctlError("--to onnx-model needs the onnx package: pip install 'lstmctl[onnx]' (or pip install onnx)") from None
    levels = _select(model, layers, "onnx")
    notes = []
    (level,) = levels
    _check_activations(level, "onnx-model", notes)
    W, R, B, lbr = _onnx_arrays(level)
    dtype = W.dtype
    if dtype not in (np.float32, np.float64):
        raise LstmctlError(f"layer '{level.layer.name}': ONNX {ONNX_OP[level.kind]} takes float32 or float64 weights, not {dtype}")
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    direction = "bidirectional" if level.bidirectional else ("reverse" if level.go_backwards else "forward")
    attrs = {"hidden_size": level.units, "direction": direction}
    if lbr is not None:
        attrs["linear_before_reset"] = lbr
    cell = level.cells[0]
    per_direction = {"lstm": [cell.recurrent_activation_name, cell.activation_name, cell.activation_name], "gru": [cell.recurrent_activation_name, cell.activation_name], "simple_rnn": [cell.activation_name]}[level.kind]
    defaults = {"lstm": ["sigmoid", "tanh", "tanh"], "gru": ["sigmoid", "tanh"], "simple_rnn": ["tanh"]}[level.kind]
    if per_direction != defaults:
        names, alphas, betas = [], [], []
        for _ in level.cells:
            for act in per_direction:
                onnx_name, alpha, beta = _onnx_activation(act, cell.keras_major)
                names.append(onnx_name)
                if alpha is not None:
                    alphas.append(alpha)
                if beta is not None:
                    betas.append(beta)
        attrs["activations"] = names
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
    inputs = ["X", "W", "R"] + (["B"] if B is not None else [])
    initializers = [numpy_helper.from_array(np.ascontiguousarray(W), "W"), numpy_helper.from_array(np.ascontiguousarray(R), "R")]
    if B is not None:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(B), "B"))
    dirs, u = len(level.cells), level.units
    outputs = ["Y", "Y_h"] + (["Y_c"] if level.kind == "lstm" else [])
    node = helper.make_node(ONNX_OP[level.kind], inputs, outputs, name=level.layer.name, **attrs)
    graph = helper.make_graph(
        [node],
        f"lstmctl_{level.layer.name}".replace("/", "_"),
        [helper.make_tensor_value_info("X", elem, ["seq_length", "batch", level.input_dim])],
        [helper.make_tensor_value_info("Y", elem, ["seq_length", dirs, "batch", u])]
        + [helper.make_tensor_value_info(name, elem, [dirs, "batch", u]) for name in outputs[1:]],
        initializer=initializers,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="lstmctl")
    proto.ir_version = 8  # opset 14 needs IR 7+; 8 is read by every current runtime
    onnx.checker.check_model(proto)
    notes.append(
        f"ONNX {ONNX_OP[level.kind]} ({direction}): feed X as (time, batch, features), i.e. x.transpose(1, 0, 2); "
        "Y is (time, directions, batch, units): Y.transpose(2, 0, 1, 3).reshape(batch, time, -1) is the whole sequence "
        + ("(both directions concatenated, as Keras's merge_mode='concat')" if level.bidirectional else "")
        + ("in input time order (Keras's go_backwards sequence is it reversed)" if level.go_backwards else "")
    )
    return proto.SerializeToString(), list(dict.fromkeys(notes))


# ---------------------------------------------------------------------------------------------
# Import


@dataclass
class Spec:
    """One direction of one imported layer, already in Keras's layout."""

    kind: str
    W: np.ndarray
    U: np.ndarray
    bias: np.ndarray | None
    reset_after: bool = False
    where: str = ""

    @property
    def units(self) -> int:
        return self.U.shape[0]


@dataclass(repr=False)  # keep Model's short repr
class ImportedModel(Model):
    """A Model read from an npz of weights; `hard_sigmoid_form` picks hard_sigmoid's formula (2 or 3)."""

    convention: str = ""
    hard_sigmoid_form: int = 2
    forget_bias: float = 1.0  # tf1: what was added to the stored forget-gate bias

    @property
    def keras_major(self) -> int:  # what lstmctl's Keras-version-dependent behaviour follows
        return self.hard_sigmoid_form


@dataclass
class Keys:
    """The npz's arrays, with checks that name the file and the key."""

    arrays: dict
    path: str
    convention: str
    used: set = field(default_factory=set)

    def get(self, key, ndim=None, required=True):
        if key not in self.arrays:
            if required:
                raise LstmctlError(f"{self.path}: no array '{key}' ({self.convention} convention); the npz holds {_list(self.arrays)}")
            return None
        a = self.arrays[key]
        self.used.add(key)
        if ndim is not None and a.ndim != ndim:
            raise LstmctlError(f"{self.path}: '{key}' has shape {a.shape}; the {self.convention} convention needs {ndim} dimensions")
        if a.dtype.kind != "f":
            raise LstmctlError(f"{self.path}: '{key}' holds {a.dtype}, not floating-point weights")
        if not np.all(np.isfinite(a)):
            raise LstmctlError(f"{self.path}: '{key}' holds non-finite values")
        return a


def _list(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:12]) + (f", … ({len(keys)} in all)" if len(keys) > 12 else "")
    return shown or "nothing"


def _kind_of(U, path, key) -> tuple:
    """(kind, units) from a Keras-layout recurrent kernel (units, k·units)."""
    units, width = U.shape
    if units == 0 or width % units or width // units not in KIND_BY_GATES:
        raise LstmctlError(f"{path}: '{key}' has shape {U.shape}, which is no LSTM (u, 4u), GRU (u, 3u) or simple RNN (u, u) recurrent kernel")
    return KIND_BY_GATES[width // units], units


def _from_keras(keys: Keys) -> list:
    arrays, path = keys.arrays, keys.path
    directions = [""]
    if any(k.startswith(("forward/", "backward/")) for k in arrays):
        directions = ["forward/", "backward/"]
    specs = []
    for prefix in directions:
        U = keys.get(f"{prefix}recurrent_kernel", 2)
        kind, units = _kind_of(U, path, f"{prefix}recurrent_kernel")
        W = keys.get(f"{prefix}kernel", 2)
        if W.shape[1] != U.shape[1]:
            raise LstmctlError(f"{path}: '{prefix}kernel' {W.shape} and '{prefix}recurrent_kernel' {U.shape} disagree on the number of columns")
        bias = keys.get(f"{prefix}bias", required=False)
        flag = arrays.get(f"{prefix}reset_after")
        if flag is not None:
            keys.used.add(f"{prefix}reset_after")
            if kind != "gru" or flag.shape != () or flag.dtype.kind not in "iub" or int(flag) not in (0, 1):
                raise LstmctlError(f"{path}: '{prefix}reset_after' must be a scalar 0 or 1 next to GRU weights")
        k = gates_mod.n_gates(kind)
        reset_after = False
        if bias is not None:
            if kind == "gru" and bias.shape == (2, k * units):
                reset_after = True
            elif bias.shape != (k * units,):
                raise LstmctlError(f"{path}: '{prefix}bias' has shape {bias.shape}; a {CLASS_NAME[kind]}({units}) needs ({k * units},)" + (f" or (2, {k * units}) (reset_after=True)" if kind == "gru" else ""))
            if flag is not None and bool(int(flag)) != reset_after:
                raise LstmctlError(f"{path}: '{prefix}reset_after' is {int(flag)}, but '{prefix}bias' has shape {bias.shape}")
        elif kind == "gru":
            if flag is None:
                raise LstmctlError(f"{path}: a GRU without bias does not say whether reset_after is True or False; add a scalar array '{prefix}reset_after' (1 or 0)")
            reset_after = bool(int(flag))
        specs.append(Spec(kind, W, U, bias, reset_after, f"{path} ({prefix.rstrip('/') or 'keras'})"))
    return [specs]


_TORCH_KEY = re.compile(r"(?P<prefix>.*?)(?P<part>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<level>\d+)(?P<reverse>_reverse)?")


def _from_pytorch(keys: Keys) -> list:
    arrays, path = keys.arrays, keys.path
    found = {}
    prefixes = set()
    for key in arrays:
        m = _TORCH_KEY.fullmatch(key)
        if m is None:
            raise LstmctlError(f"{path}: key '{key}' is not a torch.nn.LSTM / GRU / RNN state_dict name (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, …_reverse)")
        if m["part"] == "weight_hr":
            raise LstmctlError(f"{path}: '{key}' is an LSTM projection (proj_size), which Keras's LSTM does not have; refused")
        prefixes.add(m["prefix"])
        found[(int(m["level"]), bool(m["reverse"]), m["part"])] = key
    if len(prefixes) > 1:
        raise LstmctlError(f"{path}: the state_dict holds several modules ({', '.join(sorted(p or '(no prefix)' for p in prefixes))}); keep one module's weights")
    (prefix,) = prefixes
    n_levels = 1 + max(level for level, _, _ in found)
    reverse = any(r for _, r, _ in found)
    with_bias = any(part.startswith("bias") for _, _, part in found)
    levels = []
    for level in range(n_levels):
        specs = []
        for rev in ((False, True) if reverse else (False,)):
            suffix = f"_l{level}{'_reverse' if rev else ''}"

            def key(part, suffix=suffix):
                return f"{prefix}{part}{suffix}"

            w_hh = keys.get(key("weight_hh"), 2)
            w_ih = keys.get(key("weight_ih"), 2)
            if w_hh.shape[0] % max(w_hh.shape[1], 1) or w_hh.shape[1] == 0 or w_hh.shape[0] // w_hh.shape[1] not in KIND_BY_GATES:
                raise LstmctlError(f"{path}: '{key('weight_hh')}' has shape {w_hh.shape}, which is no nn.LSTM (4u, u), nn.GRU (3u, u) or nn.RNN (u, u) weight")
            kind, units = KIND_BY_GATES[w_hh.shape[0] // w_hh.shape[1]], w_hh.shape[1]
            if w_ih.shape[0] != w_hh.shape[0]:
                raise LstmctlError(f"{path}: '{key('weight_ih')}' {w_ih.shape} and '{key('weight_hh')}' {w_hh.shape} disagree on the number of rows")
            b_ih = keys.get(key("bias_ih"), 1, required=with_bias)
            b_hh = keys.get(key("bias_hh"), 1, required=with_bias)
            for name, b in ((key("bias_ih"), b_ih), (key("bias_hh"), b_hh)):
                if b is not None and b.shape != (w_hh.shape[0],):
                    raise LstmctlError(f"{path}: '{name}' has shape {b.shape}, the weights need ({w_hh.shape[0]},)")
            W, U = w_ih.T, w_hh.T
            bias, reset_after = None, kind == "gru"
            if kind == "gru":
                W, U = _blocks(W, KERAS_TO_TORCH_GRU, 3), _blocks(U, KERAS_TO_TORCH_GRU, 3)
                if with_bias:
                    bias = np.stack([_blocks(b_ih, KERAS_TO_TORCH_GRU, 3), _blocks(b_hh, KERAS_TO_TORCH_GRU, 3)])
            elif with_bias:
                bias = b_ih + b_hh
            specs.append(Spec(kind, W, U, bias, reset_after, f"{path} (layer {level}{', reverse' if rev else ''})"))
        levels.append(specs)
    return levels


TF1_LEAVES = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias", "kernel", "bias")
TF1_REFUSED = {"w_f_diag": "peephole weights", "w_i_diag": "peephole weights", "w_o_diag": "peephole weights", "projection/kernel": "a projection (num_proj)"}


def _from_tf1(keys: Keys, forget_bias: float) -> list:
    arrays, path = keys.arrays, keys.path
    groups = {}
    for key in arrays:
        for leaf, what in TF1_REFUSED.items():
            if key == leaf or key.endswith("/" + leaf):
                raise LstmctlError(f"{path}: '{key}' holds {what}, which Keras's LSTM does not have; refused")
        leaf = next((lf for lf in TF1_LEAVES if key == lf or key.endswith("/" + lf)), None)
        if leaf is None:
            raise LstmctlError(f"{path}: key '{key}' is not a TF1 cell variable (expected [scope/]kernel and [scope/]bias for LSTMCell, [scope/]gates/kernel, gates/bias, candidate/kernel, candidate/bias for GRUCell)")
        groups.setdefault(key[: len(key) - len(leaf)], set()).add(leaf)
    placed = {}
    for prefix in groups:
        segments = [s for s in prefix.split("/") if s]
        cells = [int(s[5:]) for s in segments if re.fullmatch(r"cell_\d+", s)]
        level = cells[-1] if cells else 0
        backward = "bw" in segments
        if (level, backward) in placed:
            raise LstmctlError(f"{path}: scopes '{placed[(level, backward)]}' and '{prefix}' both hold layer {level}{' backward' if backward else ''}; keep one cell's variables")
        placed[(level, backward)] = prefix
    n_levels = 1 + max(level for level, _ in placed)
    reverse = any(b for _, b in placed)
    levels = []
    for level in range(n_levels):
        specs = []
        for backward in ((False, True) if reverse else (False,)):
            prefix = placed.get((level, backward))
            if prefix is None:
                raise LstmctlError(f"{path}: no TF1 cell for layer {level}{' (backward)' if backward else ''}; scopes found: {_list(repr(p) for p in groups)}")
            specs.append(tf1_cell(keys, prefix, groups[prefix], forget_bias))
        levels.append(specs)
    return levels


def tf1_cell(keys: Keys, prefix: str, leaves: set, forget_bias: float) -> Spec:
    """One TF1 cell's variables under `prefix` (LSTMCell, BasicLSTMCell, GRUCell, BasicRNNCell) in Keras's layout."""
    path = keys.path
    where = f"{path} ({prefix.rstrip('/') or 'tf1'})"
    scope = [s for s in prefix.split("/") if s][-1:] or [""]
    if leaves & {"gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"}:
        gk, gb = keys.get(f"{prefix}gates/kernel", 2), keys.get(f"{prefix}gates/bias", 1)
        ck, cb = keys.get(f"{prefix}candidate/kernel", 2), keys.get(f"{prefix}candidate/bias", 1)
        if leaves - {"gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"}:
            raise LstmctlError(f"{path}: scope '{prefix}' mixes GRUCell and LSTMCell variables")
        u = ck.shape[1]
        n_in = ck.shape[0] - u
        if u == 0 or n_in <= 0 or gk.shape != (n_in + u, 2 * u) or gb.shape != (2 * u,) or cb.shape != (u,):
            raise LstmctlError(f"{path}: GRUCell shapes gates/kernel {gk.shape}, gates/bias {gb.shape}, candidate/kernel {ck.shape}, candidate/bias {cb.shape} do not fit (in + u, 2u), (2u,), (in + u, u), (u,)")
        r_k, u_k = gk[:, :u], gk[:, u:]
        kernel = np.concatenate([u_k, r_k, ck], axis=1)  # z (TF1's u), r, h
        bias = np.concatenate([gb[u:], gb[:u], cb])
        return Spec("gru", kernel[:n_in], kernel[n_in:], bias, False, where)
    kernel, bias = keys.get(f"{prefix}kernel", 2), keys.get(f"{prefix}bias", 1)
    rnn = "rnn_cell" in scope[0] and "lstm" not in scope[0]
    cols = kernel.shape[1]
    if not rnn and cols % 4:
        raise LstmctlError(f"{path}: '{prefix}kernel' has shape {kernel.shape}: {cols} columns are not 4·units of an LSTMCell (a BasicRNNCell's variables need their scope, e.g. rnn/basic_rnn_cell/kernel)")
    u = cols if rnn else cols // 4
    n_in = kernel.shape[0] - u
    if u == 0 or n_in <= 0:
        raise LstmctlError(f"{path}: '{prefix}kernel' has shape {kernel.shape}, which is no (input_dim + units, {'units' if rnn else '4·units'}) kernel")
    if bias.shape != (cols,):
        raise LstmctlError(f"{path}: '{prefix}bias' has shape {bias.shape}; '{prefix}kernel' {kernel.shape} needs ({cols},)")
    if rnn:
        return Spec("simple_rnn", kernel[:n_in], kernel[n_in:], bias, False, where)
    b64 = bias.astype(np.float64)
    b64[TF1_F * u : (TF1_F + 1) * u] += forget_bias
    dtype = kernel.dtype
    keras_b = _blocks(b64, KERAS_TO_TF1, 4).astype(dtype)
    return Spec("lstm", _blocks(kernel[:n_in], KERAS_TO_TF1, 4), _blocks(kernel[n_in:], KERAS_TO_TF1, 4), keras_b, False, where)


def _from_onnx(keys: Keys) -> list:
    path = keys.path
    if "P" in keys.arrays:
        raise LstmctlError(f"{path}: 'P' holds ONNX LSTM peephole weights, which Keras's LSTM does not have; refused")
    unknown = sorted(set(keys.arrays) - {"W", "R", "B", "linear_before_reset"})
    if unknown:
        raise LstmctlError(f"{path}: unknown key(s) {', '.join(unknown)}; the onnx convention holds W [dirs, k·u, in], R [dirs, k·u, u], optional B [dirs, 2·k·u] and, for a GRU, linear_before_reset")
    W, R = keys.get("W", 3), keys.get("R", 3)
    B = keys.get("B", 2, required=False)
    dirs = R.shape[0]
    if dirs not in (1, 2) or R.shape[2] == 0 or R.shape[1] % R.shape[2] or R.shape[1] // R.shape[2] not in KIND_BY_GATES:
        raise LstmctlError(f"{path}: 'R' has shape {R.shape}; expected [num_directions (1 or 2), k·hidden, hidden] with k 4 (LSTM), 3 (GRU) or 1 (RNN)")
    u = R.shape[2]
    kind = KIND_BY_GATES[R.shape[1] // u]
    k = gates_mod.n_gates(kind)
    if W.shape[:2] != (dirs, k * u) or W.shape[2] == 0:
        raise LstmctlError(f"{path}: 'W' has shape {W.shape}; 'R' {R.shape} needs [{dirs}, {k * u}, input_size]")
    if B is not None and B.shape != (dirs, 2 * k * u):
        raise LstmctlError(f"{path}: 'B' has shape {B.shape}; 'R' {R.shape} needs [{dirs}, {2 * k * u}]")
    lbr = keys.arrays.get("linear_before_reset")
    if kind == "gru":
        if lbr is None:
            raise LstmctlError(f"{path}: ONNX GRU weights do not say linear_before_reset; add a scalar array 'linear_before_reset' (1 for Keras reset_after=True, 0 for False)")
        keys.used.add("linear_before_reset")
        if lbr.shape != () or lbr.dtype.kind not in "iub" or int(lbr) not in (0, 1):
            raise LstmctlError(f"{path}: 'linear_before_reset' must be a scalar 0 or 1")
    elif lbr is not None:
        raise LstmctlError(f"{path}: 'linear_before_reset' belongs to a GRU, but 'R' {R.shape} is an ONNX {ONNX_OP[kind]}")
    specs = []
    for d in range(dirs):
        Wk, Uk = W[d].T, R[d].T
        bias = None
        if B is not None:
            wb, rb = B[d, : k * u], B[d, k * u :]
        if kind == "lstm":
            Wk, Uk = _blocks(Wk, ONNX_TO_KERAS, 4), _blocks(Uk, ONNX_TO_KERAS, 4)
            if B is not None:
                bias = _blocks(wb + rb, ONNX_TO_KERAS, 4)
        elif B is not None:
            bias = np.stack([wb, rb]) if kind == "gru" and int(lbr) else wb + rb
        reset_after = kind == "gru" and bool(int(lbr))
        specs.append(Spec(kind, Wk, Uk, bias, reset_after, f"{path} (direction {d})"))
    return [specs]


def import_arrays(arrays: dict, convention: str, path: str = "<arrays>", forget_bias: float = 1.0, activation=None, recurrent_activation=None, name=None, hard_sigmoid: str = "keras2") -> Model:
    """A Model with the recurrent layer(s) these arrays hold in `convention`, returning whole sequences.

    The model's input is named `input`, (batch, time, input_dim); its output `output` is the last
    layer's whole sequence (both directions concatenated for a bidirectional layer)."""
    if convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    if hard_sigmoid not in HARD_SIGMOID_FORMS:
        raise UsageError(f"hard_sigmoid must be one of {', '.join(HARD_SIGMOID_FORMS)}, got {hard_sigmoid!r}")
    if not isinstance(forget_bias, (int, float)) or isinstance(forget_bias, bool) or not np.isfinite(forget_bias):
        raise UsageError(f"forget_bias must be a finite number, got {forget_bias!r}")
    for what, value in (("activation", activation), ("recurrent_activation", recurrent_activation)):
        if value is not None and value not in ACTIVATION_NAMES:
            raise UsageError(f"{what} {value!r} is not a Keras activation lstmctl knows ({', '.join(ACTIVATION_NAMES)})")
    if name is not None and (not isinstance(name, str) or not name or not name.isprintable() or "/" in name or "@" in name or len(name) > 200 or name == "input"):
        raise UsageError(f"layer name {name!r} must be a plain name without '/' or '@', other than 'input' (the model's input)")
    if not arrays:
        raise LstmctlError(f"{path}: holds no arrays")
    keys = Keys(dict(arrays), path, convention)
    if convention == "keras":
        levels = _from_keras(keys)
    elif convention == "pytorch":
        levels = _from_pytorch(keys)
    elif convention == "tf1":
        levels = _from_tf1(keys, float(forget_bias))
    else:
        levels = _from_onnx(keys)
    unused = sorted(set(keys.arrays) - keys.used)
    if unused:
        raise LstmctlError(f"{path}: key(s) {', '.join(unused)} do not belong to the {convention} layer read from the others; remove them")
    return _build(levels, convention, path, activation, recurrent_activation, name, HARD_SIGMOID_FORMS[hard_sigmoid], float(forget_bias))


def spec_layer(spec: Spec, name: str, act: str, ract: str | None, dtype, form: int, go_backwards: bool = False, tf1_forget_bias: float | None = None) -> Layer:
    """A recurrent layer returning its whole sequence, from one direction's arrays in Keras's layout;
    `tf1_forget_bias`: the run-time forget_bias folded into a TF1 LSTM's b_f (inspect says so)."""
    w = [spec.W.astype(dtype), spec.U.astype(dtype)] + ([] if spec.bias is None else [spec.bias.astype(dtype)])
    cell = gates_mod.make_cell(
        spec.kind, spec.units, w, where=spec.where, activation=act, recurrent_activation=ract,
        use_bias=spec.bias is not None, reset_after=spec.reset_after, keras_major=form,
    )  # fmt: skip
    config = {
        "name": name, "units": spec.units, "activation": act, "use_bias": spec.bias is not None,
        "return_sequences": True, "return_state": False, "go_backwards": go_backwards, "stateful": False, "dtype": np.dtype(dtype).name,
    }  # fmt: skip
    if ract is not None:
        config["recurrent_activation"] = ract
    if spec.kind == "gru":
        config["reset_after"] = spec.reset_after
    if spec.kind == "lstm" and tf1_forget_bias is not None:
        config["tf1_forget_bias"] = tf1_forget_bias
    return recurrent_layer(name, CLASS_NAME[spec.kind], config, w, cell)


def bidirectional_wrapper(name: str, forward: Layer, backward: Layer, dtype) -> Layer:
    """Two directions joined as Keras's Bidirectional(merge_mode="concat") joins them."""
    wrapper = {"name": name, "merge_mode": "concat", "return_sequences": True, "return_state": False, "go_backwards": False, "stateful": False, "dtype": np.dtype(dtype).name}
    return bidirectional_layer(name, wrapper, forward, backward)


def _build(levels, convention, path, activation, recurrent_activation, name, form, forget_bias) -> Model:
    kind = levels[0][0].kind
    for specs in levels:
        for spec in specs:
            if spec.W.shape[0] == 0:
                raise LstmctlError(f"{spec.where}: the input kernel has no rows (input_dim 0)")
            if spec.kind != kind:
                raise LstmctlError(f"{spec.where}: a {CLASS_NAME[spec.kind]} among {CLASS_NAME[kind]} layers")
            if spec.units != specs[0].units or spec.W.shape[0] != specs[0].W.shape[0] or (spec.bias is None) != (specs[0].bias is None):
                raise LstmctlError(f"{spec.where}: the two directions of a layer disagree on shapes")
    if kind == "simple_rnn" and recurrent_activation is not None:
        raise UsageError("a simple RNN has no recurrent activation; drop --recurrent-activation")
    act = activation or "tanh"
    ract = None if kind == "simple_rnn" else (recurrent_activation or "sigmoid")
    dtype = np.result_type(*[a for specs in levels for s in specs for a in (s.W, s.U) if a is not None])
    if dtype not in (np.float16, np.float32, np.float64):
        dtype = np.dtype(np.float32)
    dtype = np.dtype(dtype)
    base = name or kind
    input_dim = levels[0][0].W.shape[0]
    layers = [Layer("input", "InputLayer", {"batch_shape": [None, None, input_dim], "dtype": dtype.name}, spec=REGISTRY["InputLayer"])]
    previous = "input"
    width = input_dim
    for k, specs in enumerate(levels):
        lname = base if k == 0 else f"{base}_{k}"
        if specs[0].W.shape[0] != width:
            raise LstmctlError(f"{specs[0].where}: takes inputs of {specs[0].W.shape[0]} features, but the layer below gives {width}")
        fb = forget_bias if convention == "tf1" else None
        if len(specs) == 1:
            layer = spec_layer(specs[0], lname, act, ract, dtype, form, tf1_forget_bias=fb)
        else:
            fwd = spec_layer(specs[0], f"{lname}/forward", act, ract, dtype, form, tf1_forget_bias=fb)
            bwd = spec_layer(specs[1], f"{lname}/backward", act, ract, dtype, form, go_backwards=True, tf1_forget_bias=fb)
            layer = bidirectional_wrapper(lname, fwd, bwd, dtype)
        layer.calls = [Call([Ref(previous, 0, 0)], [])]
        layer.notes.append(f"imported from {convention} weights" + (f" (layer {k} of {len(levels)})" if len(levels) > 1 else ""))
        layers.append(layer)
        previous = lname
        width = specs[0].units * len(specs)
    notes = [f"weights imported from the {convention} convention; an npz does not record activations: activation {act}" + (f", recurrent_activation {ract}" if ract else "") + (" (set with --activation / --recurrent-activation)" if activation or recurrent_activation else " (the defaults; override with --activation / --recurrent-activation)")]
    if convention == "tf1" and kind == "lstm":
        notes.append(f"TF1 LSTM bias: forget_bias {forget_bias!r} added to the stored forget-gate bias (TF1 adds it at run time)")
    if "hard_sigmoid" in (act, ract):
        notes.append("hard_sigmoid read as " + ("clip(0.2·x + 0.5, 0, 1) (Keras 1/2, TF1-era tf.keras, ONNX HardSigmoid's default)" if form == 2 else "clip(x/6 + 0.5, 0, 1) (Keras 3, PyTorch's Hardsigmoid)"))
    return ImportedModel(
        path, f"npz-{convention}", None, None, "Sequential", base, layers, [InputSpec("input", (None, input_dim), dtype.name)],
        [Ref("input", 0, 0)], [Ref(previous, 0, 0)], notes=notes, convention=convention, hard_sigmoid_form=form, forget_bias=forget_bias,
    )  # fmt: skip


def import_file(path: str, convention: str, **options) -> Model:
    """Read an .npz of one recurrent layer's weights in `convention` (see import_arrays)."""
    from .inputs import load_npz
    from .readers import open_zip, sniff

    kind = sniff(path)
    if kind == "hdf5":
        raise UsageError(f"{path}: is an HDF5 Keras file; --convention is for an .npz of weights (drop it to read the file as a model)")
    if kind != "zip":
        raise LstmctlError(f"{path}: --convention {convention} reads an .npz of weights; this is not one")
    with open_zip(path, path) as zf:
        names = zf.namelist()
    if "config.json" in names:
        raise UsageError(f"{path}: is a .keras model; --convention is for an .npz of weights (drop it to read the file as a model)")
    return import_arrays(load_npz(path, path), convention, path, **options)


def refuse_unmarked_npz(path: str):
    """An .npz of arrays given as a model: say that --convention is needed (before the .keras reader fails)."""
    from .readers import MAGIC_ZIP, open_zip

    try:
        with open(path, "rb") as fh:
            if fh.read(4) != MAGIC_ZIP:
                return
        with open_zip(path, path) as zf:
            names = zf.namelist()
    except Exception:
        return  # the model readers give the error
    if "config.json" not in names and names and all(n.endswith(".npy") for n in names):
        raise UsageError(f"{path}: an .npz of arrays, not a Keras model; to read it as one recurrent layer's weights pass --convention keras|pytorch|tf1|onnx")
