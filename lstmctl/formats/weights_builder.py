"""The builder every weights-only reader calls: one recurrent layer's arrays in another framework's
layout (a PyTorch state_dict's module, a TF1 cell's variables, an ONNX LSTM/GRU/RNN node's W, R, B)
translated into Keras's layout (`Spec`) and made into lstmctl layers (`spec_layer`,
`bidirectional_wrapper`). The readers (torch_file/safetensors_file through ports.py, tf1_checkpoint,
onnx_file, and the `--convention` .npz reader npz_weights) each translate their format into these
terms. The layouts are in lstmctl.conventions.
"""

import re
from dataclasses import dataclass, field

import numpy as np

from .. import gates as gates_mod
from ..conventions import CLASS_NAME, KERAS_TO_TF1, KERAS_TO_TORCH_GRU, KIND_BY_GATES, ONNX_OP, ONNX_TO_KERAS, TF1_F, blocks
from ..errors import LstmctlError, show
from ..layers.recurrent import bidirectional_layer, recurrent_layer
from ..model import Layer, Model


@dataclass
class Spec:
    """One direction of one imported layer, already in Keras's layout."""

    kind: str
    W: np.ndarray
    U: np.ndarray
    bias: np.ndarray | None
    reset_after: bool = False
    where: str = ""
    projection: np.ndarray | None = None  # (units, proj): torch's weight_hr transposed (nn.LSTM proj_size)

    @property
    def units(self) -> int:
        return self.U.shape[1] // gates_mod.n_gates(self.kind)

    @property
    def width(self) -> int:
        """Features of the output: units, or proj_size."""
        return self.units if self.projection is None else self.projection.shape[1]


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
                raise LstmctlError(f"{self.path}: no array '{key}' ({self.convention} convention); the npz holds {key_list(self.arrays)}")
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


def key_list(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:12]) + (f", … ({len(keys)} in all)" if len(keys) > 12 else "")
    return shown or "nothing"


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
    projected = any(part == "weight_hr" for _, _, part in found)
    levels = []
    for level in range(n_levels):
        specs = []
        for rev in ((False, True) if reverse else (False,)):
            suffix = "" if cell else f"_l{level}{'_reverse' if rev else ''}"

            def key(part, suffix=suffix):
                return f"{prefix}{part}{suffix}"

            w_hh = keys.get(key("weight_hh"), 2)
            w_ih = keys.get(key("weight_ih"), 2)
            w_hr = keys.get(key("weight_hr"), 2, required=projected)
            if w_hr is not None:  # nn.LSTM(proj_size=p): weight_hh (4u, p), weight_hr (p, u)
                p, u = w_hr.shape
                if w_hh.shape != (4 * u, p) or not 0 < p < u:
                    raise LstmctlError(f"{path}: '{show(key('weight_hr'))}' {w_hr.shape} and '{show(key('weight_hh'))}' {w_hh.shape} are no nn.LSTM projection: weight_hr (proj_size, hidden) with proj_size < hidden, weight_hh (4·hidden, proj_size)")
                kind = "lstm"
            elif w_hh.shape[0] % max(w_hh.shape[1], 1) or w_hh.shape[1] == 0 or w_hh.shape[0] // w_hh.shape[1] not in KIND_BY_GATES:
                raise LstmctlError(f"{path}: '{show(key('weight_hh'))}' has shape {w_hh.shape}, which is no nn.LSTM (4u, u), nn.GRU (3u, u) or nn.RNN (u, u) weight")
            else:
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
            specs.append(Spec(kind, W, U, bias, reset_after, f"{path} ({'cell' if cell else f'layer {level}'}{', reverse' if rev else ''})", None if w_hr is None else w_hr.T))
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


def onnx_levels(keys: Keys) -> list:
    """An ONNX LSTM / GRU / RNN's W [dirs, k·u, in], R, optional B and linear_before_reset as one level of Specs (one per direction)."""
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


def spec_layer(spec: Spec, name: str, act: str, ract: str | None, dtype, form: int, go_backwards: bool = False, tf1_forget_bias: float | None = None, bias_note: str | None = None) -> Layer:
    """A recurrent layer returning its whole sequence, from one direction's arrays in Keras's layout;
    `tf1_forget_bias`: the run-time forget_bias folded into a TF1 LSTM's b_f, `bias_note`: where
    another framework's b_f came from (inspect says so)."""
    # views of the file's arrays where the dtype already fits: a big file is not held twice
    w = [spec.W.astype(dtype, copy=False), spec.U.astype(dtype, copy=False)] + ([] if spec.bias is None else [spec.bias.astype(dtype, copy=False)])
    projection = None if spec.projection is None else spec.projection.astype(dtype, copy=False)
    cell = gates_mod.make_cell(
        spec.kind, spec.units, w, where=spec.where, activation=act, recurrent_activation=ract,
        use_bias=spec.bias is not None, reset_after=spec.reset_after, keras_major=form, projection=projection,
    )  # fmt: skip
    if projection is not None:
        w.append(projection)
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
    if projection is not None:
        config["proj_size"] = projection.shape[1]
    return recurrent_layer(name, CLASS_NAME[spec.kind], config, w, cell)


def bidirectional_wrapper(name: str, forward: Layer, backward: Layer, dtype) -> Layer:
    """Two directions joined as Keras's Bidirectional(merge_mode="concat") joins them."""
    wrapper = {"name": name, "merge_mode": "concat", "return_sequences": True, "return_state": False, "go_backwards": False, "stateful": False, "dtype": np.dtype(dtype).name}
    return bidirectional_layer(name, wrapper, forward, backward)
