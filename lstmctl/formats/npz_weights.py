"""An .npz of one recurrent layer's weights (or a stack) in Keras's, PyTorch's, TF1's or ONNX's
layout, read as a Model (`--convention`). The layouts are in lstmctl.conventions.
"""

import re
from dataclasses import dataclass, field

import numpy as np

from .. import gates as gates_mod
from ..conventions import CLASS_NAME, CONVENTIONS, HARD_SIGMOID_FORMS, KERAS_TO_TF1, KERAS_TO_TORCH_GRU, KIND_BY_GATES, ONNX_OP, ONNX_TO_KERAS, TF1_F, TF1_LEAVES, TF1_REFUSED, blocks
from ..errors import LstmctlError, UsageError, show
from ..kernels import ACTIVATION_NAMES
from ..layers import REGISTRY
from ..layers.recurrent import bidirectional_layer, recurrent_layer
from ..model import Call, InputSpec, Layer, Model, Ref


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


_TORCH_KEY = re.compile(r"(?P<prefix>.*?)(?P<part>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)(?:_l(?P<level>\d+)(?P<reverse>_reverse)?)?")


def torch_modules(names, path: str) -> tuple:
    """({module prefix: {(level, reverse, part): key}}, other keys) of a state_dict's names, in
    their order: the nn.LSTM / GRU / RNN modules (level None for an nn.LSTMCell / GRUCell / RNNCell,
    whose keys have no _l<k>) and whatever else the dict holds."""
    modules, others = {}, []
    for key in names:
        m = _TORCH_KEY.fullmatch(key)
        if m is None or (m["prefix"] and not m["prefix"].endswith(".")):
            others.append(key)
            continue
        if m["part"] == "weight_hr":
            raise LstmctlError(f"{path}: '{show(key)}' is an LSTM projection (nn.LSTM proj_size), which lstmctl does not compute; refused")
        found = modules.setdefault(m["prefix"], {})
        level = None if m["level"] is None else int(m["level"])
        if found and (level is None) != (next(iter(found))[0] is None):
            raise LstmctlError(f"{path}: module '{show(m['prefix'])}' mixes a cell's keys (weight_ih) with a layer's (weight_ih_l0)")
        found[(level, bool(m["reverse"]), m["part"])] = key
    return modules, others


def torch_levels(keys: Keys, prefix: str, found: dict) -> list:
    """One nn.LSTM / GRU / RNN (or cell) module's levels, each a list of Specs (two when bidirectional), in Keras's layout."""
    path = keys.path
    cell = next(iter(found))[0] is None
    n_levels = 1 if cell else 1 + max(level for level, _, _ in found)
    reverse = any(r for _, r, _ in found)
    with_bias = any(part.startswith("bias") for _, _, part in found)
    levels = []
    for level in range(n_levels):
        specs = []
        for rev in ((False, True) if reverse else (False,)):
            suffix = "" if cell else f"_l{level}{'_reverse' if rev else ''}"

            def key(part, suffix=suffix):
                return f"{prefix}{part}{suffix}"

            w_hh = keys.get(key("weight_hh"), 2)
            w_ih = keys.get(key("weight_ih"), 2)
            if w_hh.shape[0] % max(w_hh.shape[1], 1) or w_hh.shape[1] == 0 or w_hh.shape[0] // w_hh.shape[1] not in KIND_BY_GATES:
                raise LstmctlError(f"{path}: '{show(key('weight_hh'))}' has shape {w_hh.shape}, which is no nn.LSTM (4u, u), nn.GRU (3u, u) or nn.RNN (u, u) weight")
            kind = KIND_BY_GATES[w_hh.shape[0] // w_hh.shape[1]]
            if w_ih.shape[0] != w_hh.shape[0]:
                raise LstmctlError(f"{path}: '{show(key('weight_ih'))}' {w_ih.shape} and '{show(key('weight_hh'))}' {w_hh.shape} disagree on the number of rows")
            b_ih = keys.get(key("bias_ih"), 1, required=with_bias)
            b_hh = keys.get(key("bias_hh"), 1, required=with_bias)
            for name, b in ((key("bias_ih"), b_ih), (key("bias_hh"), b_hh)):
                if b is not None and b.shape != (w_hh.shape[0],):
                    raise LstmctlError(f"{path}: '{show(name)}' has shape {b.shape}, the weights need ({w_hh.shape[0]},)")
            W, U = w_ih.T, w_hh.T
            bias, reset_after = None, kind == "gru"
            if kind == "gru":
                W, U = blocks(W, KERAS_TO_TORCH_GRU, 3), blocks(U, KERAS_TO_TORCH_GRU, 3)
                if with_bias:
                    bias = np.stack([blocks(b_ih, KERAS_TO_TORCH_GRU, 3), blocks(b_hh, KERAS_TO_TORCH_GRU, 3)])
            elif with_bias:
                bias = np.add(b_ih, b_hh, dtype=np.result_type(b_ih, np.float32))  # as torch sums float16 biases: in float32
            specs.append(Spec(kind, W, U, bias, reset_after, f"{path} ({'cell' if cell else f'layer {level}'}{', reverse' if rev else ''})"))
        levels.append(specs)
    return levels


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
    keras_b = blocks(b64, KERAS_TO_TF1, 4).astype(dtype)
    return Spec("lstm", blocks(kernel[:n_in], KERAS_TO_TF1, 4), blocks(kernel[n_in:], KERAS_TO_TF1, 4), keras_b, False, where)


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
            Wk, Uk = blocks(Wk, ONNX_TO_KERAS, 4), blocks(Uk, ONNX_TO_KERAS, 4)
            if B is not None:
                bias = blocks(wb + rb, ONNX_TO_KERAS, 4)
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


def spec_layer(spec: Spec, name: str, act: str, ract: str | None, dtype, form: int, go_backwards: bool = False, tf1_forget_bias: float | None = None, bias_note: str | None = None) -> Layer:
    """A recurrent layer returning its whole sequence, from one direction's arrays in Keras's layout;
    `tf1_forget_bias`: the run-time forget_bias folded into a TF1 LSTM's b_f, `bias_note`: where
    another framework's b_f came from (inspect says so)."""
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
    if spec.kind == "lstm" and bias_note is not None:
        config["forget_bias_note"] = bias_note
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
