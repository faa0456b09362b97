"""Recurrent weights as arrays in another framework's layout (`lstmctl export --to keras|pytorch|tf1|onnx`).
"""

import numpy as np

from .. import gates as gates_mod
from ..conventions import CONVENTIONS, KERAS_TO_ONNX, KERAS_TO_TF1, KERAS_TO_TORCH_GRU, ONNX_OP, TF1_CELL, TF1_F, TORCH_CLASS, blocks
from ..errors import UsageError
from ..model import Model
from .select import check_activations, select


def export(model: Model, to: str, layers=None, forget_bias: float = 1.0):
    """The selected recurrent layer(s) in convention `to`: (arrays name -> ndarray, notes)."""
    if to not in CONVENTIONS:
        raise UsageError(f"unknown convention {to!r}; choose from {', '.join(CONVENTIONS)}")
    if not isinstance(forget_bias, (int, float)) or isinstance(forget_bias, bool) or not np.isfinite(forget_bias):
        raise UsageError(f"forget_bias must be a finite number, got {forget_bias!r}")
    levels = select(model, layers, to)
    notes = []
    if model.inferred:
        notes.append(f"{model.path} is weights-only: its layers' activations are assumed (tanh, sigmoid), not read")
    for level in levels:
        check_activations(level, to, notes)
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
        W, U = blocks(cell.W, KERAS_TO_TORCH_GRU, 3), blocks(cell.U, KERAS_TO_TORCH_GRU, 3)
        b_ih = b_hh = None
        if cell.bias is not None:
            b_ih, b_hh = blocks(cell.bias[0], KERAS_TO_TORCH_GRU, 3), blocks(cell.bias[1], KERAS_TO_TORCH_GRU, 3)
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
    tf_b = blocks(keras_b, KERAS_TO_TF1, 4).astype(np.float64)
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
                out[f"{prefix}kernel"] = np.concatenate([blocks(W, KERAS_TO_TF1, 4), blocks(U, KERAS_TO_TF1, 4)], axis=0)
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
                notes.append(f"layer '{level.layer.name}' has no bias; TF1 cells always have one: written as zeros" + (" (minus forget_bias on f)" if cell.kind == "lstm" else "") + ", so an import gives use_bias=True with the same numbers")
    if any(level.kind == "lstm" for level in levels):
        notes.append(
            f"TF1 adds forget_bias={forget_bias!r} to the forget gate at run time: the stored bias is the Keras bias with {forget_bias!r} subtracted "
            f"from its f block, kept in float64 so that adding it back is exact; build LSTMCell(..., forget_bias={forget_bias!r}) and import with --forget-bias {forget_bias!r}"
        )
        notes.append("TF1 orders the LSTM blocks i, j, f, o (j = the candidate) and its state tuple is (c, h)")
    return out


def onnx_arrays(level):
    """W, R, B (B None without bias) and linear_before_reset (GRU) in ONNX's layout."""
    Ws, Rs, Bs = [], [], []
    for cell in level.cells:
        k = gates_mod.n_gates(cell.kind)
        if cell.kind == "lstm":
            W, U = blocks(cell.W, KERAS_TO_ONNX, 4), blocks(cell.U, KERAS_TO_ONNX, 4)
            b = None if cell.bias is None else np.concatenate([blocks(cell.bias, KERAS_TO_ONNX, 4), np.zeros(k * cell.units, cell.bias.dtype)])
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
    W, R, B, lbr = onnx_arrays(level)
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
