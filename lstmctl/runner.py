"""Running a model graph on NumPy arrays, and the npz contract it returns.

Contract: `output` (or `output_0`, `output_1`, … in the model's output order); for every
recurrent layer L: `L/sequence` (batch, time, units), `L/h`, `L/c` (LSTM); Bidirectional also
`L/forward/…` and `L/backward/…` (h, c and each half as Bidirectional returns it). With masking, states are
those after each sample's last unmasked step, as Keras returns them.
"""

import contextlib
from dataclasses import dataclass, field

import numpy as np

from . import kernels
from .errors import LstmctlError, Unsupported
from .model import RECURRENT, Layer, Model, _tensor_refs, dtype_name
from .safejson import positive_int

FLOAT_DTYPES = ("float16", "float32", "float64")
IDENTITY = {"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout"}
_BOOL_OR_NUMBER = (bool, int, float)
# keras.ops that Keras 3 writes into Functional graphs to compute masks: (function, config params)
OPS = {
    "NotEqual": (np.not_equal, ()),
    "Equal": (np.equal, ()),
    "Any": (np.any, ("axis", "keepdims")),
    "All": (np.all, ("axis", "keepdims")),
    "ExpandDims": (np.expand_dims, ("axis",)),
    "ZerosLike": (np.zeros_like, ("dtype",)),
    "OnesLike": (np.ones_like, ("dtype",)),
    "LogicalOr": (np.logical_or, ()),
    "LogicalAnd": (np.logical_and, ()),
    "LogicalNot": (np.logical_not, ()),
    "Concatenate": (lambda xs, axis=-1: np.concatenate(xs, axis=axis), ("axis",)),
}
_OP_DTYPES = {"bool", "float16", "float32", "float64", "int32", "int64", "uint8"}


@dataclass
class Tensor:
    value: np.ndarray
    mask: np.ndarray | None = None  # (batch, time) bool


# ---------------------------------------------------------------------------------------------
# Inputs


def _check_array(name, array, spec_shape, dtype, where, warnings=None):
    """The array, checked; non-finite values raise, or are reported into `warnings` when given."""
    if not isinstance(array, np.ndarray):
        array = np.asarray(array)
    if array.dtype.kind not in "fiu" or array.dtype.fields is not None:
        raise LstmctlError(f"{where} '{name}': dtype {array.dtype} is not numeric")
    if array.size == 0:
        raise LstmctlError(f"{where} '{name}': array is empty (shape {array.shape})")
    want = (None, *spec_shape)
    if array.ndim != len(want):
        raise LstmctlError(f"{where} '{name}': expected rank {len(want)} {_fmt_shape(want)}, got shape {array.shape}")
    for got, exp in zip(array.shape, want):
        if exp is not None and got != exp:
            raise LstmctlError(f"{where} '{name}': expected shape {_fmt_shape(want)}, got {array.shape}")
    if dtype.startswith(("int", "uint")):
        if array.dtype.kind == "f":
            raise LstmctlError(f"{where} '{name}': the model expects integer token ids ({dtype}), got {array.dtype}")
    else:
        if array.dtype.kind != "f":
            raise LstmctlError(f"{where} '{name}': the model expects floats ({dtype}), got {array.dtype}")
        bad = ~np.isfinite(array)
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            message = f"{where} '{name}': {int(bad.sum())} non-finite value(s), first {array[pos]} at index {pos}"
            if array.ndim == 3:
                message += f"; the recurrence carries it: sample {pos[0]}'s states are non-finite from step {pos[1]} on"
            if warnings is None:
                raise LstmctlError(message)
            warnings.append(message)
    return array


def _fmt_shape(shape):
    return "(" + ", ".join("batch" if i == 0 and d is None else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + ")"


def normalize_inputs(model: Model, inputs, warnings=None) -> dict:
    """Map user inputs (array, list, or dict by input name) to the model's inputs, checked."""
    specs = model.inputs
    if isinstance(inputs, dict):
        unknown = sorted(set(inputs) - {s.name for s in specs})
        if unknown:
            raise LstmctlError(f"unknown input name(s) {unknown}; the model's inputs are {[s.name for s in specs]}")
        missing = [s.name for s in specs if s.name not in inputs]
        if missing:
            raise LstmctlError(f"missing input(s) {missing}")
        arrays = [inputs[s.name] for s in specs]
    elif isinstance(inputs, (list, tuple)):
        if len(inputs) != len(specs):
            raise LstmctlError(f"the model has {len(specs)} input(s), {len(inputs)} given")
        arrays = list(inputs)
    else:
        if len(specs) != 1:
            raise LstmctlError(f"the model has {len(specs)} inputs {[s.name for s in specs]}; name each one")
        arrays = [inputs]
    out = {}
    for spec, array in zip(specs, arrays):
        out[spec.name] = _check_array(spec.name, array, spec.shape, spec.dtype, "input", warnings)
    batches = {a.shape[0] for a in out.values()}
    if len(batches) > 1:
        raise LstmctlError(f"inputs disagree on batch size: {sorted(batches)}")
    return out


def random_inputs(model: Model, seed=0, batch=1, timesteps=None) -> dict:
    """A deterministic input of the model's shape: standard normal floats, or token ids."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in model.inputs:
        shape = [batch]
        for i, d in enumerate(spec.shape):
            if d is None:
                if timesteps is None:
                    timesteps = 10
                d = timesteps if i == 0 else 1
            shape.append(d)
        if spec.dtype.startswith(("int", "uint")):
            high = _embedding_size(model, spec.name) or 10
            out[spec.name] = rng.integers(0, high, size=shape).astype(spec.dtype)
        else:
            out[spec.name] = rng.standard_normal(shape).astype(spec.dtype if spec.dtype in FLOAT_DTYPES else "float32")
    return out


def _embedding_size(model, input_name):
    for layer in model.walk():
        if layer.class_name == "Embedding" and any(ref.layer == input_name for call in layer.calls for ref in call.inputs):
            return layer.config.get("input_dim")
    return None


# ---------------------------------------------------------------------------------------------
# Recurrent layers


def _layer_dtype(layer: Layer, forced):
    if forced:
        return forced
    name = dtype_name(layer.config.get("dtype"), layer.name)
    if name not in FLOAT_DTYPES:
        raise LstmctlError(f"layer '{layer.name}': compute dtype {name} is not supported")
    return name


def _zero_states(cell, batch, dtype):
    return tuple(np.zeros((batch, cell.units), dtype) for _ in cell.state_names)


def _given_states(layer, cell, states, batch, dtype):
    if not states:
        return _zero_states(cell, batch, dtype)
    if len(states) != len(cell.state_names):
        raise LstmctlError(f"layer '{layer.name}': initial_state needs {len(cell.state_names)} arrays ({', '.join(cell.state_names)}), got {len(states)}")
    out = []
    for name, s in zip(cell.state_names, states):
        s = np.asarray(s)
        if s.shape != (batch, cell.units):
            raise LstmctlError(f"layer '{layer.name}': initial state {name} must have shape ({batch}, {cell.units}), got {s.shape}")
        if s.dtype.kind != "f" or not np.isfinite(s).all():
            raise LstmctlError(f"layer '{layer.name}': initial state {name} must hold finite floats")
        out.append(s.astype(dtype))
    return tuple(out)


def run_direction(layer: Layer, x, states, mask, dtype, zero_output, trace=None, keep_sequence=True):
    """One recurrent layer (one direction): (sequence as Keras orders it, final states)."""
    cell = layer.cell.astype(dtype)
    if x.ndim != 3 or x.shape[2] != cell.input_dim:
        got = "(batch, " + ", ".join(str(d) for d in x.shape[1:]) + ")"
        raise LstmctlError(f"layer '{layer.name}': its kernel expects input (batch, time, {cell.input_dim}), got {got}")
    init = _given_states(layer, cell, states, x.shape[0], dtype)
    go_backwards = layer.flag("go_backwards")
    return kernels.scan(cell, x.astype(dtype, copy=False), init, mask, go_backwards, zero_output, trace, keep_sequence)


def _recurrent(layer: Layer, x: Tensor, states, dtype, record: dict, traces=None, sequences=True):
    trace = None if traces is None else traces.setdefault("", [])
    keep = sequences or layer.flag("return_sequences") or trace is not None
    seq, final = run_direction(layer, x.value, states, x.mask, dtype, layer.flag("zero_output_for_mask"), trace, keep)
    if seq is None:  # not asked for: the last output is h_T (no mask reaches the fast path)
        outs = [Tensor(final[0])] + ([Tensor(s) for s in final] if layer.flag("return_state") else [])
        for name, value in zip(layer.cell.state_names, final):
            record[f"{layer.name}/{name}"] = value
        return outs
    record[f"{layer.name}/sequence"] = seq
    for name, value in zip(layer.cell.state_names, final):
        record[f"{layer.name}/{name}"] = value
    main = seq if layer.flag("return_sequences") else seq[:, -1]
    outs = [Tensor(main, x.mask if layer.flag("return_sequences") else None)]
    if layer.flag("return_state"):
        outs += [Tensor(s) for s in final]
    return outs


def _last_output(layer: Layer, seq, mask):
    """The output Keras returns without return_sequences: the latest unmasked step's (zeros if none).

    `seq` is in processing order with masked steps zeroed."""
    if mask is None:
        return seq[:, -1]
    processed = mask[:, ::-1] if layer.flag("go_backwards") else mask
    steps = processed.shape[1]
    last = steps - 1 - np.argmax(processed[:, ::-1], axis=1)
    out = seq[np.arange(seq.shape[0]), last]
    return np.where(processed.any(axis=1)[:, None], out, np.zeros_like(out))


def _merge(mode, a, b):
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    if mode == "sum":
        return a + b
    if mode == "mul":
        return a * b
    return (a + b) / 2  # ave


def _bidirectional(layer: Layer, x: Tensor, states, dtype, record: dict, traces=None, sequences=True):
    fwd, bwd = layer.forward, layer.backward
    n = len(fwd.cell.state_names)
    if states and len(states) != 2 * n:
        raise LstmctlError(f"layer '{layer.name}': initial_state needs {2 * n} arrays (forward then backward), got {len(states)}")
    return_sequences = layer.flag("return_sequences")
    # L/sequence is what the layer returns with return_sequences=True, and then Keras zeroes
    # the outputs of masked steps inside a Bidirectional.
    f_trace = None if traces is None else traces.setdefault("forward", [])
    b_trace = None if traces is None else traces.setdefault("backward", [])
    keep = sequences or return_sequences or traces is not None
    f_seq, f_states = run_direction(fwd, x.value, states[:n], x.mask, dtype, True, f_trace, keep)
    b_seq, b_states = run_direction(bwd, x.value, states[n:], x.mask, dtype, True, b_trace, keep)
    if f_seq is None:  # no sequences kept, no mask: each direction's last output is its final h
        f_seq, b_seq = f_states[0][:, None], b_states[0][:, None]
    # As Bidirectional returns them: the forward half as produced, the backward half reversed
    # (whatever each direction's own go_backwards says).
    f_aligned, b_aligned = f_seq, b_seq[:, ::-1]
    mode = layer.config.get("merge_mode")
    L = layer.name
    if keep:
        record[f"{L}/forward/sequence"] = f_aligned
        record[f"{L}/backward/sequence"] = b_aligned
        if mode is not None:
            record[f"{L}/sequence"] = _merge(mode, f_aligned, b_aligned)
    for direction, final in (("forward", f_states), ("backward", b_states)):
        for name, value in zip(fwd.cell.state_names, final):
            record[f"{L}/{direction}/{name}"] = value
    record[f"{L}/h"] = np.concatenate([f_states[0], b_states[0]], axis=-1)
    if len(f_states) > 1:
        record[f"{L}/c"] = np.concatenate([f_states[1], b_states[1]], axis=-1)
    if return_sequences:
        y, y_rev = f_aligned, b_aligned
    else:
        y, y_rev = _last_output(fwd, f_seq, x.mask), _last_output(bwd, b_seq, x.mask)
    out_mask = x.mask if return_sequences else None
    outs = [Tensor(y, out_mask), Tensor(y_rev, out_mask)] if mode is None else [Tensor(_merge(mode, y, y_rev), out_mask)]
    if layer.flag("return_state"):
        outs += [Tensor(s) for s in (*f_states, *b_states)]
    return outs


# ---------------------------------------------------------------------------------------------
# Other layers


def _dense(layer: Layer, x: Tensor, dtype, major) -> Tensor:
    w = layer.weights
    if x.value.shape[-1] != w[0].shape[0]:
        raise LstmctlError(f"layer '{layer.name}': its kernel takes {w[0].shape[0]} features, its input has {x.value.shape[-1]}")
    y = x.value.astype(dtype, copy=False) @ w[0].astype(dtype, copy=False)
    if len(w) > 1:
        y = y + w[1].astype(dtype, copy=False)
    return Tensor(kernels.activation(layer.config.get("activation", "linear"), major)(y), x.mask)


def _merge_layer(cls, config, args, major) -> Tensor:
    """Concatenate / Add / Average / Multiply with Keras's mask rules: Keras 1/2 AND the masks and
    leave values alone; Keras 3 ORs them (Concatenate counting an unmasked input as all-true, the
    others giving no mask unless every input has one), and Multiply ignores masked positions."""
    values = [a.value for a in args]
    masks = [a.mask for a in args]
    if cls == "Concatenate":
        out = np.concatenate(values, axis=config.get("axis", -1))
    elif cls == "Multiply" and major >= 3 and all(m is not None for m in masks):
        out = np.ones_like(values[0])
        for v, m in zip(values, masks):
            out = out * np.where(m[..., None], v, 1)
        out = np.where(np.logical_or.reduce(masks)[..., None], out, 0)
    elif cls == "Multiply":
        out = values[0]
        for v in values[1:]:
            out = out * v
    else:
        out = sum(values[1:], values[0])
        if cls == "Average":
            out = out / len(values)
    if all(m is None for m in masks):
        return Tensor(out)
    if major >= 3:
        if cls == "Concatenate":
            mask = np.logical_or.reduce([np.ones(v.shape[:2], bool) if m is None else m for v, m in zip(values, masks)])
        else:
            mask = None if any(m is None for m in masks) else np.logical_or.reduce(masks)
    else:
        mask = np.logical_and.reduce([m for m in masks if m is not None])
    return Tensor(out, mask)


def _single(layer: Layer, args: list, dtype, major) -> Tensor:
    cls, config = layer.class_name, layer.config
    if cls in ("Concatenate", "Add", "Average", "Multiply"):
        if len(args) < 2:
            raise LstmctlError(f"layer '{layer.name}': {cls} needs at least two inputs")
        try:
            return _merge_layer(cls, config, args, major)
        except ValueError:
            raise LstmctlError(f"layer '{layer.name}': {cls} inputs have shapes {[a.value.shape for a in args]} that do not combine") from None
    (x,) = args
    if cls in IDENTITY:
        return x
    if cls == "Dense":
        return _dense(layer, x, dtype, major)
    if cls == "TimeDistributed":
        if layer.inner is None or layer.inner.class_name not in ("Dense", *IDENTITY, "Activation"):
            inner = layer.inner.class_name if layer.inner else "?"
            raise Unsupported(f"layer '{layer.name}': TimeDistributed({inner}) is not supported by run")
        return _single(layer.inner, [x], dtype, major)
    if cls == "Activation":
        return Tensor(kernels.activation(config.get("activation"), major)(x.value), x.mask)
    if cls == "Embedding":
        table = layer.weights[0]
        tokens = x.value
        if tokens.dtype.kind == "f":
            if not np.all(np.isfinite(tokens)) or np.any(tokens != np.round(tokens)):
                raise LstmctlError(f"layer '{layer.name}': Embedding needs integer token ids, got non-integral floats")
            tokens = tokens.astype(np.int64)
        if tokens.min() < 0 or tokens.max() >= table.shape[0]:
            raise LstmctlError(f"layer '{layer.name}': token ids must lie in [0, {table.shape[0]}), got {tokens.min()}..{tokens.max()}")
        mask = tokens != 0 if config.get("mask_zero") else None
        return Tensor(table[tokens].astype(dtype, copy=False), mask)
    if cls == "Masking":
        value = config.get("mask_value", 0.0)
        mask = np.any(x.value != value, axis=-1)
        return Tensor(x.value * mask[..., None].astype(x.value.dtype), mask)
    if cls == "Flatten":
        return Tensor(x.value.reshape(x.value.shape[0], -1))
    if cls == "Reshape":
        target = config.get("target_shape")
        if not isinstance(target, list) or any(isinstance(d, bool) or not isinstance(d, int) for d in target):
            raise LstmctlError(f"layer '{layer.name}': target_shape {target!r} is not a list of integers")
        try:
            return Tensor(x.value.reshape(x.value.shape[0], *target))
        except ValueError:
            raise LstmctlError(f"layer '{layer.name}': cannot reshape {x.value.shape[1:]} to {tuple(target)}") from None
    if cls == "RepeatVector":
        n = positive_int(config.get("n"), f"layer '{layer.name}': n")
        if x.value.ndim != 2:
            raise LstmctlError(f"layer '{layer.name}': RepeatVector expects (batch, features), got {x.value.shape}")
        return Tensor(np.repeat(x.value[:, None, :], n, axis=1))
    raise Unsupported(f"layer '{layer.name}': {cls} is not supported by run")


# ---------------------------------------------------------------------------------------------
# Graph


@dataclass
class _Run:
    record: dict  # contract keys -> arrays
    dtype: str | None  # forced compute dtype
    overrides: dict  # layer name -> initial state arrays
    shapes: dict | None = None  # (layer, node) -> (input shapes, output shapes, masked); for inspect
    probe: bool = False  # inspect's shape probe: skip what cannot run instead of failing
    sequences: bool = True  # record L/sequence also for layers that do not return sequences
    watch: frozenset = frozenset()  # recurrent layers whose input, states and gates to keep
    seen: dict = field(default_factory=dict)  # name -> {"x": Tensor, "states": [...], "traces": {...}}


def _execute(model: Model, feeds: dict, ctx: _Run) -> list:
    """Evaluate the graph; feeds maps input layer name -> Tensor. Returns output Tensors."""
    values = {}  # (layer, node) -> list[Tensor]
    for name, tensor in feeds.items():
        values[(name, 0)] = [tensor]
    pending = [(layer, n, call) for layer in model.layers if layer.class_name != "InputLayer" for n, call in enumerate(layer.calls)]

    def get(ref):
        outs = values.get((ref.layer, ref.node))
        if outs is None:
            return None
        if ref.index >= len(outs):
            raise LstmctlError(f"{model.path}: layer '{ref.layer}' has no output {ref.index}")
        return outs[ref.index]

    while pending:
        done = []
        for item in pending:
            layer, n, call = item
            args = [get(r) for r in call.inputs]
            states = [get(r) for r in call.initial_state]
            mask = get(call.mask) if call.mask is not None else None
            if any(a is None for a in args + states) or (call.mask is not None and mask is None):
                continue
            done.append(item)
            if call.explicit_mask and args and (mask is not None or layer.is_recurrent):
                # Keras 3 calls a layer with the mask it recorded; a recurrent layer called
                # with initial_state gets none (Keras 3 fills in the mask for a lone input only).
                args[0] = Tensor(args[0].value, None if mask is None else _as_mask(mask.value, layer))
            try:
                outs = [_op(model, layer, call, get)] if layer.op else _call(model, layer, n, args, [s.value for s in states], ctx)
            except Unsupported:
                if ctx.probe:  # inspect still shows what follows an opaque layer, shapes unknown
                    continue
                raise
            values[(layer.name, n + layer.node_offset)] = outs
            if ctx.shapes is not None:
                ctx.shapes[(layer.name, n)] = ([a.value.shape for a in args], [o.value.shape for o in outs], args[0].mask is not None)
        if not done:
            if ctx.probe:
                return []
            stuck = ", ".join(sorted({layer.name for layer, _, _ in pending}))
            raise LstmctlError(f"{model.path}: layers {stuck} are not reachable from the model's inputs")
        pending = [p for p in pending if p not in done]
    outs = [get(ref) for ref in model.outputs]
    if any(t is None for t in outs) and not ctx.probe:
        raise LstmctlError(f"{model.path}: an output of the model was never computed")
    return outs


def _as_mask(value, layer):
    value = np.asarray(value)
    if value.dtype != bool or value.ndim != 2:
        raise LstmctlError(f"layer '{layer.name}': its recorded mask has shape {value.shape} and dtype {value.dtype}, not (batch, time) booleans")
    return value


def _op(model: Model, layer: Layer, call, get) -> Tensor:
    """One keras.ops node: its tensor arguments substituted, constants checked to be plain data."""
    fn, params = OPS[layer.class_name]

    def resolve(arg):
        if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
            return get(_tensor_refs(arg, f"op '{layer.name}'")[0]).value
        if isinstance(arg, list):
            return [resolve(a) for a in arg]
        if arg is None or isinstance(arg, _BOOL_OR_NUMBER):
            return arg
        raise Unsupported(f"{model.path}: op '{layer.name}' ({layer.class_name}) has an argument lstmctl does not evaluate")

    args = [resolve(a) for a in (call.raw_args or [])]
    kwargs = {}
    for key in params:
        if key in layer.config:
            value = layer.config[key]
            if key == "dtype" and value not in _OP_DTYPES:
                raise Unsupported(f"{model.path}: op '{layer.name}' has dtype {value!r}")
            kwargs[key] = value
    try:
        return Tensor(np.asarray(fn(*args, **kwargs)))
    except (TypeError, ValueError) as exc:
        raise LstmctlError(f"{model.path}: op '{layer.name}' ({layer.class_name}) failed: {exc}") from None


def _call(model: Model, layer: Layer, n, args, states, ctx: _Run) -> list:
    if not layer.known:
        raise Unsupported(
            f"{model.path}: layer '{layer.name}' ({layer.class_name}) is not supported by run; "
            "to run one recurrent layer on an input of its own, use --layer NAME --direct"
        )
    if layer.model is not None:
        sub = layer.model
        if len(args) != len(sub.inputs):
            raise LstmctlError(f"nested model '{layer.name}' takes {len(sub.inputs)} inputs, called with {len(args)}")
        outs = _execute(sub, {spec.name: t for spec, t in zip(sub.inputs, args)}, ctx)
        if any(t is None for t in outs) or not outs:
            raise Unsupported(f"{model.path}: nested model '{layer.name}' holds a layer run does not support")  # probe skips it
        return outs
    dtype = _layer_dtype(layer, ctx.dtype)
    if not layer.is_recurrent:
        return [_single(layer, args, dtype, model.keras_major)]
    if len(args) != 1:
        raise LstmctlError(f"layer '{layer.name}': expected one input tensor, got {len(args)}")
    rec = {}
    states = ctx.overrides.get(layer.name, states)
    traces = None
    if layer.name in ctx.watch and layer.name not in ctx.seen:
        traces = {}
        ctx.seen[layer.name] = {"x": args[0], "states": list(states), "traces": traces, "dtype": dtype}
    outs = (_bidirectional if layer.kind == "bidirectional" else _recurrent)(layer, args[0], states, dtype, rec, traces, ctx.sequences)
    suffix = f"@{n}" if n else ""  # a shared layer's later calls
    for key, value in rec.items():
        head, _, tail = key.partition("/")
        ctx.record[f"{head}{suffix}/{tail}"] = value
    return outs


def run(model: Model, inputs=None, initial_state=None, layer=None, dtype=None, watch=(), sequences=True, strict=False) -> dict:
    """Run the whole model. Returns the contract mapping (see module docstring).

    `initial_state`: arrays ([h, c] for LSTM, [h] otherwise; forward then backward for a
    Bidirectional) that replace the initial state of `layer`. `dtype`: force float32/float64.
    `watch`: names of recurrent layers whose input, initial states and per-step gates are kept
    in the `seen` attribute of the returned mapping (for trace and diagnose).
    `sequences=False` leaves out L/sequence for layers that do not return sequences: memory then
    stays independent of the sequence length for them.
    NaN or Inf in the weights or inputs is reported in the result's `warnings` (the numbers carry
    it through); `strict=True` refuses such a run instead.
    """
    if dtype is not None and dtype not in FLOAT_DTYPES:
        raise LstmctlError(f"dtype must be one of {', '.join(FLOAT_DTYPES)}, got {dtype!r}")
    if strict and model.warnings:
        raise LstmctlError(model.warnings[0])
    warnings = None if strict else []
    arrays = normalize_inputs(model, inputs if inputs is not None else random_inputs(model), warnings)
    overrides = {}
    if initial_state is not None:
        if layer is None:
            raise LstmctlError("initial_state needs the layer it is for")
        target = model.layer(layer)
        if not target.is_recurrent:
            raise LstmctlError(f"layer '{layer}' is not recurrent; it has no initial state")
        overrides[target.name] = list(initial_state)
    feeds = {name: Tensor(a) for name, a in arrays.items()}
    ctx = _Run({}, dtype, overrides, sequences=sequences, watch=frozenset(watch))
    warnings = list(model.warnings) + (warnings or [])
    with np.errstate(invalid="ignore", over="ignore") if warnings else contextlib.nullcontext():
        outs = _execute(model, feeds, ctx)
    result = Result()
    result.seen = ctx.seen
    result.warnings = warnings
    if len(outs) == 1:
        result["output"] = outs[0].value
    else:
        for i, t in enumerate(outs):
            result[f"output_{i}"] = t.value
    result.update(ctx.record)
    return result


def probe_shapes(model: Model) -> dict:
    """(layer, node) -> (input shapes, output shapes, masked) with None for the batch and for
    dimensions that follow a variable time axis: the graph run twice on tiny inputs."""
    logs = []
    for timesteps in (2, 3):
        ctx = _Run({}, None, {}, shapes={}, probe=True)
        arrays = random_inputs(model, seed=0, batch=1, timesteps=timesteps)
        with np.errstate(all="ignore"):  # only shapes matter here; a diverged model's NaNs are fine
            _execute(model, {k: Tensor(v) for k, v in arrays.items()}, ctx)
        logs.append(ctx.shapes)

    def merge(a, b):
        return tuple(None if i == 0 or x != y else x for i, (x, y) in enumerate(zip(a, b)))

    out = {}
    for key, (ins, outs, masked) in logs[0].items():
        ins2, outs2, _ = logs[1].get(key, (ins, outs, masked))
        out[key] = ([merge(a, b) for a, b in zip(ins, ins2)], [merge(a, b) for a, b in zip(outs, outs2)], masked)
    return out


class Result(dict):
    """The contract mapping; `seen` holds what `watch` asked for, `warnings` what was non-finite."""

    seen: dict = {}
    warnings: list = []


def run_layer(model: Model, name: str, x, initial_state=None, dtype=None, watch=()) -> dict:
    """Feed `x` straight to one recurrent layer (for models whose other layers cannot run)."""
    layer = model.layer(name)
    if not layer.is_recurrent:
        raise LstmctlError(f"layer '{name}' is not recurrent")
    cell = (layer.forward or layer).cell
    x = _check_array("input", x, (None, cell.input_dim), "float32", "input")
    ldtype = _layer_dtype(layer, dtype)
    record = {}
    states = list(initial_state or [])
    traces = {} if name in watch else None
    outs = (_bidirectional if layer.kind == "bidirectional" else _recurrent)(layer, Tensor(x), states, ldtype, record, traces)
    result = Result({"output": outs[0].value} if len(outs) == 1 else {f"output_{i}": t.value for i, t in enumerate(outs)})
    result.update(record)
    if traces is not None:
        result.seen = {name: {"x": Tensor(x), "states": states, "traces": traces, "dtype": ldtype}}
    return result
