"""Comparing results with a reference: per-key errors, pass/fail, where a sequence diverges."""

from dataclasses import dataclass, field

import numpy as np

from ..errors import CheckFailed, LstmctlError, UsageError

DEFAULT_TOL = 1e-5


@dataclass
class KeyReport:
    key: str
    shape: tuple
    ok: bool
    atol: float
    rtol: float
    max_abs: float | None = None
    mean_abs: float | None = None
    max_rel: float | None = None
    mean_rel: float | None = None
    first_divergent_step: int | None = None
    growth: list = field(default_factory=list)  # max |error| per step from the divergence on
    problem: str | None = None  # missing key, shape mismatch
    reference_key: str | None = None  # the reference's name for the array (with --map, may differ from ours)
    result_key: str | None = None  # the result key it was compared with
    note: str | None = None  # e.g. the batch axis of 1 dropped to match a one-sample reference

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def parse_tolerances(values, what: str):
    """--atol 1e-5 --atol lstm/c=1e-4 -> (default, {key: value})."""
    default, per_key = DEFAULT_TOL, {}
    for item in values:
        key, sep, number = item.rpartition("=")
        try:
            value = float(number)
        except ValueError:
            raise UsageError(f"--{what} {item!r}: expected a number or KEY=NUMBER") from None
        if not value >= 0:
            raise UsageError(f"--{what} {item!r}: tolerance must be a non-negative number")
        if sep:
            per_key[key] = value
        else:
            default = value
    return default, per_key


def divergence(got: np.ndarray, ref: np.ndarray, atol: float, rtol: float, time_axis: int):
    """First index along `time_axis` where any element is out of tolerance, and the max |error|
    at each step from there on (how the error grows once it starts)."""
    bad = np.abs(got - ref) > atol + rtol * np.abs(ref)
    other = tuple(a for a in range(got.ndim) if a != time_axis)
    per_step_bad = bad.any(axis=other) if other else bad
    if not per_step_bad.any():
        return None, []
    first = int(np.argmax(per_step_bad))
    err = np.abs(got - ref).max(axis=other) if other else np.abs(got - ref)
    return first, [float(e) for e in err[first:]]


def parse_mapping(values, what: str = "map") -> dict:
    """--map REF_KEY=OUR_KEY (repeatable) -> {reference key: result key}."""
    mapping = {}
    for item in values:
        ref_key, sep, our_key = item.partition("=")
        if not sep or not ref_key or not our_key:
            raise UsageError(f"--{what} {item!r}: expected REFERENCE_KEY=RESULT_KEY")
        if ref_key in mapping and mapping[ref_key] != our_key:
            raise UsageError(f"--{what}: reference key {ref_key!r} is mapped twice")
        mapping[ref_key] = our_key
    return mapping


def compare_arrays(key, got, ref, atol, rtol) -> KeyReport:
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    note = None
    if got.shape != ref.shape and got.ndim == ref.ndim + 1 and got.shape[0] == 1 and got.shape[1:] == ref.shape:
        got, note = got[0], f"one-sample reference {ref.shape}: compared with sample 0 of {(1, *ref.shape)}"
    if got.shape != ref.shape:
        return KeyReport(key, ref.shape, False, atol, rtol, problem=f"shape {got.shape} here, {ref.shape} in the reference")
    diff = np.abs(got - ref)
    rel = diff / np.maximum(np.abs(ref), 1e-12)
    ok = bool(np.all(diff <= atol + rtol * np.abs(ref)))
    report = KeyReport(key, ref.shape, ok, atol, rtol, float(diff.max(initial=0)), float(diff.mean()) if diff.size else 0.0,
                       float(rel.max(initial=0)), float(rel.mean()) if rel.size else 0.0)  # fmt: skip
    report.note = note
    if not ok and ref.ndim == 3:  # (batch, time, units): a sequence
        report.first_divergent_step, report.growth = divergence(got, ref, atol, rtol, time_axis=1)
    elif not ok and note and ref.ndim == 2:  # one sample's (time, units) sequence
        report.first_divergent_step, report.growth = divergence(got, ref, atol, rtol, time_axis=0)
    return report


def compare(result: dict, reference, atol=(), rtol=(), mapping=None, what="lstmctl's result") -> list:
    """Reports for every key of `reference` (a dict, or one array compared with the model output).

    `mapping` ({reference key: result key}, from --map) compares a reference written with its own
    names (seq, h, c) with our keys; a tolerance KEY=VALUE may name either key. A reference array
    without the batch axis, (time, units), is compared with a result of batch 1, (1, time, units)."""
    a_default, a_keys = parse_tolerances(atol, "atol")
    r_default, r_keys = parse_tolerances(rtol, "rtol")
    mapping = dict(mapping or {})
    if not isinstance(reference, dict):
        if "output" not in mapping:
            outputs = [k for k in result if k == "output" or k.startswith("output_")]
            if outputs != ["output"]:
                raise LstmctlError(f"an .npy reference is compared with the model's single output; this model has {len(outputs)} outputs: use an .npz with keys {', '.join(outputs)}, or --map output=KEY")
        reference = {"output": reference}
    for ref_key, our_key in mapping.items():
        if ref_key not in reference:
            raise UsageError(f"--map {ref_key}={our_key}: the reference holds no key {ref_key!r} (its keys: {', '.join(reference)})")
        if our_key not in result:
            raise UsageError(f"--map {ref_key}={our_key}: {what} holds no key {our_key!r} (its keys: {', '.join(result)})")
    known = set(reference) | set(mapping.values())
    unknown = sorted((set(a_keys) | set(r_keys)) - known)
    if unknown:
        raise UsageError(f"tolerance given for {unknown[0]!r}, which the reference does not hold")
    reports = []
    for ref_key, ref in reference.items():
        our_key = mapping.get(ref_key, ref_key)
        key = ref_key if our_key == ref_key else f"{ref_key}={our_key}"

        def tol(per_key, default):
            return per_key.get(ref_key, per_key.get(our_key, default))

        atol_k, rtol_k = tol(a_keys, a_default), tol(r_keys, r_default)
        if our_key not in result:
            report = KeyReport(key, np.shape(ref), False, atol_k, rtol_k, problem=f"not in {what}")
        else:
            report = compare_arrays(key, result[our_key], ref, atol_k, rtol_k)
        report.reference_key, report.result_key = ref_key, our_key
        reports.append(report)
    return reports


def compare_files(result_path: str, reference_path: str, atol=(), rtol=(), mapping=None) -> list:
    """`lstmctl compare RESULT REFERENCE`: every array of REFERENCE (an .npz as `run --format npz`
    writes, or an .npy) against RESULT's array of the same key (or the key `mapping` names).
    Unreadable or unsafe files raise LstmctlError (exit 3)."""
    from ..arrays.inputs import load_arrays

    result = load_arrays(result_path)
    if not isinstance(result, dict):
        result = {"output": result}
    return compare(result, load_arrays(reference_path), atol, rtol, mapping, what="the result file")


# --- a model and its port ------------------------------------------------------------------------


@dataclass
class LayerComparison:
    """One recurrent layer of the reference and the port's layer mapped to it."""

    reference: str
    port: str
    what: str  # e.g. "LSTM(4) over 3 features, bidirectional"
    weights: list = field(default_factory=list)  # KeyReport per gate matrix (W_i, U_i, b_i, … per direction)
    outputs: list = field(default_factory=list)  # KeyReport per result key (sequence, h, c)
    findings: list = field(default_factory=list)  # the known traps this pair falls into

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.weights + self.outputs)

    def as_dict(self) -> dict:
        return {"reference": self.reference, "port": self.port, "what": self.what, "ok": self.ok, "findings": self.findings,
                "weights": [r.as_dict() for r in self.weights], "outputs": [r.as_dict() for r in self.outputs]}  # fmt: skip


@dataclass
class PortComparison:
    reference: str
    port: str
    layers: list
    outputs: list  # KeyReport per model output, where both models' outputs have the same shapes
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(layer.ok for layer in self.layers) and all(r.ok for r in self.outputs)

    def as_dict(self) -> dict:
        return {"reference": self.reference, "port": self.port, "match": self.ok, "layers": [lay.as_dict() for lay in self.layers], "outputs": [r.as_dict() for r in self.outputs], "notes": self.notes}


def _shape_of(layer) -> tuple:
    """(kind, units, input_dim, directions) of a recurrent layer, what must agree to map it."""
    from .describe import named_cells

    cells = [cell for _, cell in named_cells(layer)]
    return cells[0].kind, cells[0].units, cells[0].input_dim, 2 if layer.forward is not None else 1


def _what(shape) -> str:
    from ..conventions import CLASS_NAME

    kind, units, n, dirs = shape
    return f"{CLASS_NAME[kind]}({units}) over {n} features" + (", bidirectional" if dirs == 2 else "")


def _traps(ref_cell, port_cell, where) -> list:
    """What a port typically gets wrong, named when the weights show it."""
    out = []
    if ref_cell.kind == "gru" and ref_cell.reset_after != port_cell.reset_after:
        out.append(f"{where}: GRU reset_after={ref_cell.reset_after} in the reference, {port_cell.reset_after} in the port: the candidate h̃ is computed differently whatever the weights "
                   "(torch's nn.GRU and ONNX linear_before_reset=1 are reset_after=True; a Keras GRU(reset_after=False) has no torch port)")  # fmt: skip
    for what, a, b in (("activation", ref_cell.activation_name, port_cell.activation_name), ("recurrent_activation", ref_cell.recurrent_activation_name, port_cell.recurrent_activation_name)):
        if a != b:
            out.append(f"{where}: {what} {a} in the reference, {b} in the port")
    if "hard_sigmoid" in (ref_cell.recurrent_activation_name, ref_cell.activation_name) and ref_cell.keras_major != port_cell.keras_major and min(ref_cell.keras_major, port_cell.keras_major) < 3 <= max(ref_cell.keras_major, port_cell.keras_major):
        out.append(f"{where}: hard_sigmoid is clip(0.2x + 0.5) on one side and clip(x/6 + 0.5) (Keras 3, torch's Hardsigmoid) on the other")
    a, b = ref_cell.split(), port_cell.split()
    gates = [k[2:] for k in a if k.startswith("W_")]
    moved = [f"{g}←{h}" for g in gates for h in gates if g != h and a[f"W_{h}"].shape == b[f"W_{g}"].shape and np.allclose(b[f"W_{g}"], a[f"W_{h}"]) and not np.allclose(b[f"W_{g}"], a[f"W_{g}"])]
    if moved:
        out.append(f"{where}: the port's gate blocks hold the reference's in another order ({', '.join(moved)}): torch orders them i, f, g, o (LSTM) and r, z, n (GRU), ONNX i, o, f, c and z, r, h")
    reshaped = [name for name, x, y in (("W", ref_cell.W, port_cell.W), ("U", ref_cell.U, port_cell.U)) if x.ndim == 2 and x.shape == y.shape and x.shape[0] != x.shape[1] and not np.allclose(x, y) and _reshaped(x, y)]
    if reshaped:
        out.append(f"{where}: the port's {' and '.join(reshaped)} hold the reference's values in reshaped order: a reshape was used where a transpose belongs (Keras's kernel is (in, gates·units), torch's weight_ih (gates·units, in) is its transpose, not its reshape)")
    if (ref_cell.projection is None) != (port_cell.projection is None):
        out.append(f"{where}: one side projects h (nn.LSTM proj_size: h = (o ⊙ tanh(c))·W_hrᵀ) and the other does not")
    if ref_cell.bias is not None and port_cell.bias is not None and ref_cell.bias.shape == port_cell.bias.shape:
        ra, rb = ref_cell.input_bias, port_cell.input_bias
        if not np.allclose(ra, rb) and np.allclose(rb, 2 * ra):
            out.append(f"{where}: the port's bias is twice the reference's: torch adds bias_ih and bias_hh (ONNX Wb and Rb), so the Keras bias goes into one and zeros into the other")
        if ref_cell.recurrent_bias is not None and not np.allclose(ra, rb) and np.allclose(rb, ref_cell.recurrent_bias) and np.allclose(port_cell.recurrent_bias, ra):
            out.append(f"{where}: the port's input and recurrent biases are swapped (Keras's bias[0] is torch's bias_ih, bias[1] its bias_hh)")
        if ref_cell.kind == "lstm":
            fa, fb = a["b_f"], b["b_f"]
            if not np.allclose(fa, fb) and np.allclose(fb - fa, np.round(fb - fa)) and np.allclose(fb - fa, (fb - fa)[0]):
                out.append(f"{where}: the port's forget-gate bias b_f is the reference's {float((fb - fa)[0]):+g}: a forget_bias added (or left out) on the way (TF1 adds forget_bias=1.0 at run time)")
    return out


def _reshaped(x, y) -> bool:
    """`y` is `x` read back through a reshape to the transposed shape (either way round), as
    `W.reshape(4u, n)` in place of `W.T` writes it."""
    return np.allclose(y, x.reshape(x.shape[::-1]).T) or np.allclose(x, y.reshape(y.shape[::-1]).T)


def _head_notes(reference, port) -> list:
    """Where the models end in a dense head whose activation only one side applies: a state_dict
    records an nn.Linear's weights, never the softmax or sigmoid its forward() applied."""
    out = []
    for ra, rb in zip(reference.outputs, port.outputs):
        a, b = reference.layer(ra.layer), port.layer(rb.layer)
        if a.class_name == b.class_name == "Dense":
            fa, fb = a.params.get("activation", "linear"), b.params.get("activation", "linear")
            if fa != fb:
                out.append(f"head '{a.name}' applies {fa}, the port's '{b.name}' {fb}: the heads are compared without the activation "
                           f"{'a state_dict does not record (its forward() applies it)' if fb == 'linear' else 'the reference does not apply'}, so their outputs differ by it")  # fmt: skip
    return out


def compare_models(reference, port, inputs, atol=(), rtol=()) -> PortComparison:
    """`lstmctl compare MODEL PORT --input X`: the recurrent layers of both mapped by order and shape,
    each gate's matrices compared, both models run on `inputs`, and each layer's sequence and
    states compared (where they first differ and by how much); traps named where the weights show them."""
    from .describe import named_cells

    a_default, _ = parse_tolerances(atol, "atol")
    r_default, _ = parse_tolerances(rtol, "rtol")
    ours, theirs = reference.recurrent_layers(), port.recurrent_layers()
    if not ours or not theirs:
        raise LstmctlError(f"{(reference if not ours else port).path}: no recurrent layer to compare")
    notes = _head_notes(reference, port)
    if len(ours) != len(theirs):
        notes.append(f"the reference has {len(ours)} recurrent layers, the port {len(theirs)}: the first {min(len(ours), len(theirs))} are compared in order")
    pairs = []
    for k, (a, b) in enumerate(zip(ours, theirs)):
        sa, sb = _shape_of(a), _shape_of(b)
        if sa != sb:
            raise CheckFailed(f"recurrent layer {k + 1} does not map: {a.name} is {_what(sa)} in {reference.path}, {b.name} is {_what(sb)} in {port.path}")
        pairs.append((a, b, sa))
    ra = reference.run(inputs)
    rb = port.run(inputs)
    layers = []
    for a, b, shape in pairs:
        item = LayerComparison(a.name, b.name, _what(shape))
        halves = ["forward/", "backward/"] if shape[3] == 2 else [""]
        for (_, ca), (_, cb), half in zip(named_cells(a), named_cells(b), halves):
            where = f"{a.name}{'/' + half.rstrip('/') if half else ''}"
            item.findings += _traps(ca, cb, where)
            sa_, sb_ = ca.split(), cb.split()
            for key in sa_:
                if key in sb_:
                    item.weights.append(compare_arrays(f"{half}{key}", sb_[key], sa_[key], a_default, r_default))
                else:
                    item.weights.append(KeyReport(f"{half}{key}", sa_[key].shape, False, a_default, r_default, problem="not in the port"))
        for half in halves:
            for part in ("sequence", "h", "c"):
                ka, kb = f"{a.name}/{half}{part}", f"{b.name}/{half}{part}"
                if ka in ra and kb in rb:
                    report = compare_arrays(f"{half}{part}", rb[kb], ra[ka], a_default, r_default)
                    report.reference_key, report.result_key = ka, kb
                    item.outputs.append(report)
        layers.append(item)
    outputs = []
    for key in (k for k in ra if k == "output" or k.startswith("output_")):
        if key in rb and np.shape(ra[key]) == np.shape(rb[key]):
            outputs.append(compare_arrays(key, rb[key], ra[key], a_default, r_default))
        else:
            notes.append(f"model output '{key}' has shape {np.shape(ra[key])} in the reference and {np.shape(rb.get(key))} in the port: compared layer by layer only")
    return PortComparison(reference.path, port.path, layers, outputs, notes)
