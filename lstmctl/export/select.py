"""Which recurrent layers an export takes, level by level (a stack's cells, a Bidirectional's
directions), and the checks that a target framework can compute them.
"""

from dataclasses import dataclass

from ..conventions import IDENTITY_LAYERS, ONNX_ACTIVATIONS, ONNX_OP, TF1_CELL, TORCH_CLASS
from ..errors import LstmctlError, UsageError
from ..model import Layer, Model


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


def select(model: Model, layers, to: str) -> list:
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


def check_activations(level: _Level, to: str, notes: list):
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
