"""An .npz of one recurrent layer's weights (or a stack) in Keras's, PyTorch's, TF1's or ONNX's
layout, read as a Model (`--convention`). The layouts are in lstmctl.conventions.
"""

import re

import numpy as np

from .. import gates as gates_mod
from ..conventions import CLASS_NAME, CONVENTIONS, HARD_SIGMOID_FORMS, KIND_BY_GATES, TF1_LEAVES, TF1_REFUSED
from ..errors import LstmctlError, UsageError, show
from ..kernels import ACTIVATION_NAMES
from ..layers import REGISTRY
from ..model import Call, InputSpec, Layer, Model, Ref
from .weights_builder import ImportedModel, Keys, Spec, bidirectional_wrapper, key_list, onnx_levels, spec_layer, tf1_cell, torch_levels, torch_modules


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


def _from_pytorch(keys: Keys) -> list:
    modules, others = torch_modules(keys.arrays, keys.path)
    if others:
        raise LstmctlError(f"{keys.path}: key '{show(others[0])}' is not a torch.nn.LSTM / GRU / RNN state_dict name (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, …_reverse)")
    if len(modules) > 1:
        raise LstmctlError(f"{keys.path}: the state_dict holds several modules ({', '.join(sorted(p or '(no prefix)' for p in modules))}); keep one module's weights")
    ((prefix, found),) = modules.items()
    return torch_levels(keys, prefix, found)


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
                raise LstmctlError(f"{path}: no TF1 cell for layer {level}{' (backward)' if backward else ''}; scopes found: {key_list(repr(p) for p in groups)}")
            specs.append(tf1_cell(keys, prefix, groups[prefix], forget_bias))
        levels.append(specs)
    return levels


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
        levels = onnx_levels(keys)
    unused = sorted(set(keys.arrays) - keys.used)
    if unused:
        raise LstmctlError(f"{path}: key(s) {', '.join(unused)} do not belong to the {convention} layer read from the others; remove them")
    return _build(levels, convention, path, activation, recurrent_activation, name, HARD_SIGMOID_FORMS[hard_sigmoid], float(forget_bias))


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
        width = specs[0].width * len(specs)
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
    from ..arrays.inputs import load_npz
    from . import sniff, torch_file
    from .zipsafe import open_zip

    kind = sniff(path)
    if kind == "hdf5":
        raise UsageError(f"{path}: is an HDF5 Keras file; --convention is for an .npz of weights (drop it to read the file as a model)")
    if kind != "zip":
        raise LstmctlError(f"{path}: --convention {convention} reads an .npz of weights; this is not one")
    with open_zip(path, path) as zf:
        names = zf.namelist()
    if "config.json" in names:
        raise UsageError(f"{path}: is a .keras model; --convention is for an .npz of weights (drop it to read the file as a model)")
    if torch_file.is_torch_zip(names):
        raise UsageError(f"{path}: is a torch.save file; --convention is for an .npz of weights (drop it: lstmctl reads the state_dict's modules by their names)")
    return import_arrays(load_npz(path, path), convention, path, **options)
