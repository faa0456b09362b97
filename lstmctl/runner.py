"""Running a model graph on NumPy arrays, and the npz contract it returns.

Contract: `output` (or `output_0`, `output_1`, … in the model's output order); for every
recurrent layer L: `L/sequence` (batch, time, units), `L/h`, `L/c` (LSTM); Bidirectional also
`L/forward/…` and `L/backward/…` (h, c and each half as Bidirectional returns it). With masking, states are
those after each sample's last unmasked step, as Keras returns them.
"""

import contextlib
import math
from collections import deque

import numpy as np

from .config import FLOAT_DTYPES
from .errors import LstmctlError, Unsupported, UsageError, first_bad
from .layers import Context, Tensor
from .state import State, check_batch

# ---------------------------------------------------------------------------------------------
# Inputs


def _check_array(name, array, spec_shape, dtype, where, warnings=None, tokens=False, notes=None, free_time=False, batch=None):
    """The array, checked; non-finite values raise, or are reported into `warnings` when given.
    `tokens`: the input feeds an Embedding, so integer ids are fine even where it is declared float.
    Whole-number floats given for integer token ids are cast, as Keras casts them (said in `notes`).
    `free_time`: state is carried, so a sequence may be a piece of the declared time axis.
    `batch`: a first axis the file fixes (ONNX), else any batch."""
    if not isinstance(array, np.ndarray):
        array = np.asarray(array)
    if array.dtype.kind not in "fiu" or array.dtype.fields is not None:
        raise LstmctlError(f"{where} '{name}': dtype {array.dtype} is not numeric")
    if array.size == 0:
        raise LstmctlError(f"{where} '{name}': array is empty (shape {array.shape})")
    want = (batch, *spec_shape)
    if array.ndim != len(want):
        raise LstmctlError(f"{where} '{name}': expected rank {len(want)} {_fmt_shape(want)}, got shape {array.shape}")
    if free_time and array.ndim >= 3 and want[1] not in (None, array.shape[1]):
        if notes is not None:
            notes.append(f"{where} '{name}': {array.shape[1]} time steps where the model declares {want[1]}: run as a piece of the sequence, with the state carried")
        want = (want[0], None, *want[2:])
    for got, exp in zip(array.shape, want):
        if exp is not None and got != exp:
            raise LstmctlError(f"{where} '{name}': expected shape {_fmt_shape(want)}, got {array.shape}")
    if dtype.startswith(("int", "uint")):
        if array.dtype.kind == "f":
            array = _float_ids(name, array, dtype, where, notes)
    elif tokens and array.dtype.kind in "iu":
        pass  # Keras 1 and 2.1 declared token inputs float32; Keras casts the ids it is given
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


def _float_ids(name, array, dtype, where, notes):
    """Float token ids as the integers they hold: Keras casts a float input to an integer one
    (a float .npy of ids is what many authors ship). A fraction, NaN/Inf or a value outside the
    integer type is refused, naming the first such position."""
    info = np.iinfo(dtype)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(array) | (array != np.round(array)) | (array < info.min) | (array > info.max)
    first_bad(bad, array, f"{where} '{name}': the model expects integer token ids ({dtype})", "is not a whole number in its range")
    if notes is not None:
        notes.append(f"{where} '{name}': {array.dtype} values read as {dtype} token ids, as Keras casts them")
    return array.astype(dtype)


def _fmt_shape(shape):
    return "(" + ", ".join("batch" if i == 0 and d is None else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + ")"


def normalize_inputs(model, inputs, warnings=None, notes=None, free_time=False) -> dict:
    """Map user inputs (array, list, or dict by input name) to the model's inputs, checked."""
    specs = model.inputs
    if isinstance(inputs, dict):
        unknown = sorted(set(inputs) - {s.name for s in specs})
        if unknown:
            raise LstmctlError(f"{model.path}: unknown input name(s) {unknown}; the model's inputs are {[s.name for s in specs]}")
        missing = [s.name for s in specs if s.name not in inputs]
        if missing:
            raise LstmctlError(f"{model.path}: missing input(s) {missing}")
        arrays = [inputs[s.name] for s in specs]
    elif isinstance(inputs, (list, tuple)):
        if len(inputs) != len(specs):
            raise LstmctlError(f"{model.path}: the model has {len(specs)} input(s), {len(inputs)} given")
        arrays = list(inputs)
    else:
        if len(specs) != 1:
            raise LstmctlError(f"{model.path}: the model has {len(specs)} inputs {[s.name for s in specs]}; name each one")
        arrays = [inputs]
    out = {}
    for spec, array in zip(specs, arrays):
        out[spec.name] = _check_array(spec.name, array, spec.shape, spec.dtype, "input", warnings, _embedding_size(model, spec.name) is not None, notes, free_time, spec.batch)
    batches = {out[s.name].shape[0] for s in specs if s.batch is None}  # a first axis the file fixes may be no batch (ONNX's initial_h [directions, batch, hidden])
    if len(batches) > 1:
        raise LstmctlError(f"{model.path}: inputs disagree on batch size: {sorted(batches)}")
    return out


MAX_RANDOM_VALUES = 1 << 24  # a random input is drawn as float64 first: 192 MiB at most


def random_inputs(model, seed=0, batch=1, timesteps=None) -> dict:
    """A deterministic input of the model's shape: standard normal floats, or token ids."""
    rng = np.random.default_rng(seed)
    shapes = {}
    for spec in model.inputs:
        shape = [spec.batch or batch]
        for i, d in enumerate(spec.shape):
            if d is None:
                if timesteps is None:
                    timesteps = 10
                d = timesteps if i == 0 else 1
            shape.append(d)
        shapes[spec.name] = shape
    total = sum(math.prod(shape) for shape in shapes.values())
    if total > MAX_RANDOM_VALUES:
        steps = "" if timesteps is None else f" and {timesteps} time steps"
        raise UsageError(f"a random input of batch {batch}{steps} holds {total} values, over lstmctl's cap of {MAX_RANDOM_VALUES}; give an input instead")
    out = {}
    for spec in model.inputs:
        shape = shapes[spec.name]
        high = _embedding_size(model, spec.name)
        if spec.dtype.startswith(("int", "uint")) or high:
            # Token ids, also for a float-declared input that feeds an Embedding (Keras 2.1's default).
            out[spec.name] = rng.integers(0, high or 10, size=shape).astype(spec.dtype)
        else:
            out[spec.name] = rng.standard_normal(shape).astype(spec.dtype if spec.dtype in FLOAT_DTYPES else "float32")
    return out


def _embedding_size(model, input_name):
    """The vocabulary size of an Embedding reading `input_name` directly, if one does."""
    for layer in model.walk():
        if layer.class_name == "Embedding" and layer.weights and any(ref.layer == input_name for call in layer.calls for ref in call.inputs):
            return layer.weights[0].shape[0]
    return None


# ---------------------------------------------------------------------------------------------
# Graph


def _call_refs(call) -> list:
    refs = [*call.inputs, *call.initial_state, *(r for rs in call.tensor_kwargs.values() for r in rs)]
    return refs + ([call.mask] if call.mask is not None else [])


def _feeding(model, names: set) -> list:
    """The layers `names` and those whose values they read, directly or through others, in the
    model's order: a probe of the first 100 of 10^5 layers builds the graph of those alone."""
    by_name = {layer.name: layer for layer in model.layers}
    needed, todo = set(), [name for name in names if name in by_name]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += [ref.layer for call in by_name[name].calls for ref in _call_refs(call) if ref.layer in by_name]
    return [layer for layer in model.layers if layer.name in needed]


def _execute(model, feeds: dict, ctx: Context, shapes: dict | None = None, until: set | None = None) -> list:
    """Evaluate the graph; feeds maps input layer name -> Tensor. Returns output Tensors.

    Each call waits for the tensors it reads and runs once they exist: work linear in the
    number of calls, in an order that respects every edge (any such order gives Keras's values).
    `until` (a probe): the names of the layers whose shapes are wanted; the walk ends once each
    has been called."""
    values = {(name, 0): [tensor] for name, tensor in feeds.items()}  # (layer, node) -> list[Tensor]
    items, waiting, readers = [], {}, {}
    for layer in model.layers if until is None else _feeding(model, until):
        if layer.class_name == "InputLayer":
            continue
        for n, call in enumerate(layer.calls):
            needed = {(r.layer, r.node) for r in _call_refs(call)}
            for key in needed:
                readers[key] = readers.get(key, 0) + 1
            missing = needed - values.keys()
            for key in missing:
                waiting.setdefault(key, []).append(len(items))
            items.append([layer, n, call, len(missing), needed])
    kept = {(r.layer, r.node) for r in model.outputs}
    wanted = None if until is None else {layer.name for layer, *_ in items if layer.name in until}

    def get(ref):
        outs = values.get((ref.layer, ref.node))
        if outs is None:
            return None
        if ref.index >= len(outs):
            raise LstmctlError(f"{model.path}: layer '{ref.layer}' has no output {ref.index}")
        return outs[ref.index]

    ready = deque(i for i, item in enumerate(items) if item[3] == 0)
    done = 0
    while ready:
        layer, n, call, _, needed = items[ready.popleft()]
        done += 1
        if wanted is not None:
            wanted.discard(layer.name)
        try:
            outs = _call(model, layer, n, call, get, ctx, shapes)
        except MemoryError:
            raise LstmctlError(f"{model.path}: layer '{layer.name}' ({layer.class_name}) needs more memory than this process may use") from None
        except Unsupported:
            if ctx.probe:  # inspect still shows what follows an opaque layer, shapes unknown
                continue
            raise
        for used in needed:
            readers[used] -= 1
            if not readers[used] and used not in kept:
                del values[used]  # read by nothing else: a long graph keeps only its live tensors
        key = (layer.name, n + layer.node_offset)
        values[key] = outs
        if ctx.layer_outputs:
            name = f"layer/{layer.name}" + (f"@{n}" if n else "")
            ctx.record.update({name: outs[0].value} if len(outs) == 1 else {f"{name}/{i}": t.value for i, t in enumerate(outs)})
        for j in waiting.pop(key, ()):
            items[j][3] -= 1
            if items[j][3] == 0:
                ready.append(j)
        if wanted is not None and not wanted:
            break
    if done < len(items) and not ctx.probe:
        stuck = ", ".join(sorted({layer.name for layer, _, _, left, _ in items if left}))
        raise LstmctlError(f"{model.path}: layers {stuck} are not reachable from the model's inputs")
    outs = [get(ref) for ref in model.outputs]
    if any(t is None for t in outs) and not ctx.probe:
        raise LstmctlError(f"{model.path}: an output of the model was never computed")
    return outs


def _as_mask(value, layer):
    value = np.asarray(value)
    if value.dtype != bool or value.ndim < 2:  # a Masking layer over frames masks each position: (batch, time, *spatial)
        raise LstmctlError(f"layer '{layer.name}': its recorded mask has shape {value.shape} and dtype {value.dtype}, not (batch, time, …) booleans")
    return value


def _call(model, layer, n, call, get, ctx: Context, shapes) -> list:
    args = [get(r) for r in call.inputs]
    if layer.op:
        outs = [layer.spec.evaluate(layer, call, get, ctx)]
        if shapes is not None:  # inspect lists the ops a user wrote, with their shapes
            shapes[(layer.name, n)] = ([a.value.shape for a in args], [outs[0].value.shape], False)
        return outs
    if call.explicit_mask and args and (call.mask is not None or layer.is_recurrent):
        # Keras 3 calls a layer with the mask it recorded; a recurrent layer called
        # with initial_state gets none (Keras 3 fills in the mask for a lone input only).
        mask = get(call.mask) if call.mask is not None else None
        args[0] = Tensor(args[0].value, None if mask is None else _as_mask(mask.value, layer))
    if layer.spec is None:
        raise Unsupported(
            f"{model.path}: layer '{layer.name}' ({layer.class_name}) is not supported by run; "
            "to run one recurrent layer on an input of its own, use --layer NAME --direct"
        )
    if layer.model is not None:
        sub = layer.model
        if len(args) != len(sub.inputs):
            raise LstmctlError(f"nested model '{layer.name}' takes {len(sub.inputs)} inputs, called with {len(args)}")
        outs = _execute(sub, {spec.name: t for spec, t in zip(sub.inputs, args)}, ctx, shapes)
        if any(t is None for t in outs) or not outs:
            raise Unsupported(f"{model.path}: nested model '{layer.name}' holds a layer run does not support")  # probe skips it
    else:
        ctx.states = [get(r).value for r in call.initial_state]
        ctx.node = n
        ctx.kwargs = {key: [get(r) for r in refs] for key, refs in call.tensor_kwargs.items()}
        ctx.call_kwargs = call.kwargs
        outs = layer.spec.call(layer, args, ctx)
    if shapes is not None:
        shapes[(layer.name, n)] = ([a.value.shape for a in args], [o.value.shape for o in outs], args[0].mask is not None)
    return outs


def run(model, inputs=None, initial_state=None, layer=None, dtype=None, watch=(), sequences=True, strict=False, layer_outputs=False, state=None) -> dict:
    """Run the whole model. Returns the contract mapping (see module docstring).

    `initial_state`: arrays ([h, c] for LSTM, [h] otherwise; forward then backward for a
    Bidirectional) that replace the initial state of `layer`. `dtype`: force float32/float64.
    `watch`: names of recurrent layers (or cells of a stack, `L/cell_<k>`) whose input, initial
    states and per-step gates are kept in the `seen` attribute of the returned mapping (for
    trace and diagnose).
    `sequences=False` leaves out L/sequence for layers that do not return sequences: memory then
    stays independent of the sequence length for them.
    NaN or Inf in the weights or inputs is reported in the result's `warnings` (the numbers carry
    it through); `strict=True` refuses such a run instead.
    `layer_outputs=True` adds every layer's output as `layer/<name>` (`layer/<name>/<i>` for a
    layer with several outputs, `@<n>` after the name for a shared layer's later calls).
    `state`: a `lstmctl.state.State` (the `state` of an earlier result) that the recurrent layers
    start from, as a stateful Keras model continues; `{}` starts from zeros. With a state, a model
    with a fixed time axis takes pieces of it. The result's `state` is where the run ended.
    """
    if dtype is not None and dtype not in FLOAT_DTYPES:
        raise LstmctlError(f"dtype must be one of {', '.join(FLOAT_DTYPES)}, got {dtype!r}")
    if strict and model.warnings:
        raise LstmctlError(model.warnings[0])
    warnings, notes = (None if strict else []), []
    arrays = normalize_inputs(model, inputs if inputs is not None else random_inputs(model), warnings, notes, free_time=state is not None)
    if state is not None:
        check_batch(state, next(iter(arrays.values())).shape[0])
    overrides = {}
    if initial_state is not None:
        if layer is None:
            raise LstmctlError("initial_state needs the layer it is for")
        levels = model.module_layers(layer)
        if levels:
            overrides.update(zip((lay.name for lay in levels), module_states(levels, initial_state, layer)))
        else:
            target = model.layer(layer)
            if not target.is_recurrent:
                raise LstmctlError(f"layer '{layer}' is not recurrent; it has no initial state")
            overrides[target.name] = list(initial_state)
    feeds = {name: Tensor(a) for name, a in arrays.items()}
    ctx = Context(model.path, model.keras_major, dtype, overrides=overrides, sequences=sequences, watch=frozenset(watch), layer_outputs=layer_outputs, carry=dict(state or {}))
    warnings = list(model.warnings) + (warnings or [])
    with np.errstate(invalid="ignore", over="ignore") if warnings else contextlib.nullcontext():
        outs = _execute(model, feeds, ctx)
    return _result(outs, ctx, warnings, notes, model)


def _result(outs, ctx, warnings, notes, model) -> "Result":
    result = Result({"output": outs[0].value} if len(outs) == 1 else {f"output_{i}": t.value for i, t in enumerate(outs)})
    result.update(ctx.record)
    result.seen = ctx.seen
    result.state = State(model, ctx.final_states)
    result.warnings = list(warnings)
    result.notes = list(notes)
    return result


PROBE_STEPS = (2, 3)  # two lengths tell a variable time axis from a fixed one


def probe(model, arrays: dict, until: set | None = None) -> dict:
    """(layer, node) -> (input shapes, output shapes, masked) of one run on `arrays` (inspect's
    shape probe: layers run cannot are skipped, with what follows them; `until`: only as far as
    these layers, as inspect lists the first of 10^5 nodes)."""
    ctx = Context(model.path, model.keras_major, probe=True)
    shapes = {}
    with np.errstate(all="ignore"):  # only shapes matter here; a diverged model's NaNs are fine
        _execute(model, {k: Tensor(v) for k, v in arrays.items()}, ctx, shapes, until)
    return shapes


def probe_shapes(model, until: set | None = None) -> dict:
    """(layer, node) -> (input shapes, output shapes, masked) with None for the batch and for
    dimensions that follow a variable time axis: the graph run twice on tiny inputs (`until` as for probe)."""
    fixed = all(d is not None for spec in model.inputs for d in spec.shape)
    # a second length only finds variable axes
    logs = [probe(model, random_inputs(model, seed=0, batch=1, timesteps=timesteps), until) for timesteps in (PROBE_STEPS[:1] if fixed else PROBE_STEPS)]

    batch_fixed = bool(model.inputs) and all(spec.batch is not None for spec in model.inputs)  # a converted .tflite, a static ONNX export

    def merge(a, b):  # axis 0 is the batch only where the file leaves the batch open (a time-major tensor has time there)
        return tuple(None if (i == 0 and not batch_fixed) or x != y else x for i, (x, y) in enumerate(zip(a, b)))

    return merge_probes(logs, merge)


def merge_probes(logs, merge) -> dict:
    """The first and last probe runs' shapes joined axis by axis: `merge(shape_a, shape_b)` says
    what each axis is once both sizes are seen."""
    out = {}
    for key, (ins, outs, masked) in logs[0].items():
        ins2, outs2, _ = logs[-1].get(key, (ins, outs, masked))
        out[key] = ([merge(a, b) for a, b in zip(ins, ins2)], [merge(a, b) for a, b in zip(outs, outs2)], masked)
    return out


class Result(dict):
    """The contract mapping; `seen` holds what `watch` asked for, `warnings` what was non-finite,
    `notes` what was done to the inputs (float token ids cast), `state` every recurrent layer's
    final states (to carry into the next run)."""

    seen: dict = {}
    state: dict = {}
    warnings: list = []
    notes: list = []

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {v.dtype}{tuple(v.shape)}" for k, v in self.items())
        return f"<lstmctl Result {{{items}}}>"


def _run_plain_layer(model, layer, x, dtype):
    """A non-recurrent layer on its own input: its output as `output`."""
    if layer.spec is None or layer.model is not None or layer.op or layer.spec.n_inputs != 1:
        raise LstmctlError(f"{model.path}: layer '{layer.name}' ({layer.class_name}) cannot run on an input of its own")
    x = np.asarray(x)
    x = _check_array("input", x, x.shape[1:], "int32" if layer.class_name == "Embedding" else "float32", "input")
    ctx = Context(model.path, model.keras_major, dtype)
    ctx.states, ctx.node = [], 0
    outs = layer.spec.call(layer, [Tensor(x)], ctx)
    return _result(outs, ctx, (), (), model)


def run_layer(model, name: str, x, initial_state=None, dtype=None, watch=(), state=None) -> dict:
    """Feed `x` straight to one layer (for models whose other layers cannot run, and weights-only
    files, which have no graph). `state` as for `run`: this layer's carried state. A module of
    several layers (model.module_layers) runs whole, each level reading the one below."""
    levels = model.module_layers(name)
    if levels:
        return _run_module(model, name, levels, x, initial_state, dtype, state)
    layer = model.layer(name)
    if not layer.is_recurrent:
        return _run_plain_layer(model, layer, x, dtype)
    half = layer.forward or layer
    cell = (half.cells[0] if half.cells else half).cell
    x = _check_array("input", x, (None, *[None] * getattr(cell, "rank", 0), cell.input_dim), "float32", "input")  # ConvLSTM: spatial axes
    carry = {} if state is None else {layer.name: state[layer.name]} if layer.name in state else {}
    if carry:
        check_batch(state, x.shape[0])
    ctx = Context(model.path, model.keras_major, dtype, watch=frozenset(watch), carry=carry, direct=True)
    ctx.states = list(initial_state or [])
    outs = layer.spec.call(layer, [Tensor(x)], ctx)
    return _result(outs, ctx, (), (), model)


def module_states(levels, initial_state, name) -> list:
    """A module's initial states as torch gives them, each (levels·directions, batch, units) (h_0,
    then c_0 for an LSTM), split into each level's list in Keras's order (h, c; forward then backward)."""
    directions = 2 if levels[0].forward is not None else 1
    arrays = [np.asarray(a) for a in initial_state]
    for a in arrays:
        if a.ndim != 3 or a.shape[0] != len(levels) * directions:
            raise LstmctlError(f"module '{name}': an initial state has shape {a.shape}; it takes (num_layers·directions = {len(levels) * directions}, batch, hidden) as torch's h_0 / c_0")
    return [[a[k * directions + d] for d in range(directions) for a in arrays] for k in range(len(levels))]


def module_outputs(result, name, levels) -> None:
    """Adds a module's own outputs as torch names them: `<name>/output` (its top level's sequence),
    `<name>/h_n` and `<name>/c_n` (num_layers·directions, batch, hidden)."""
    top = levels[-1]
    if f"{top.name}/sequence" not in result:
        return
    result[f"{name}/output"] = result[f"{top.name}/sequence"]
    for state in ("h", "c"):
        halves = [f"{layer.name}/{half}{state}" for layer in levels for half in (("forward/", "backward/") if layer.forward else ("",))]
        if all(key in result for key in halves):
            result[f"{name}/{state}_n"] = np.stack([result[key] for key in halves])


def _run_module(model, name, levels, x, initial_state, dtype, state) -> "Result":
    starts = module_states(levels, initial_state, name) if initial_state else [None] * len(levels)
    merged = Result()
    merged.state, merged.warnings, merged.notes, merged.seen = State(model), [], [], {}
    for layer, start in zip(levels, starts):
        part = run_layer(model, layer.name, x, initial_state=start, dtype=dtype, state=state)
        x = part.pop("output")
        merged.update(part)
        merged.state.update(part.state)
        merged.warnings += [w for w in part.warnings if w not in merged.warnings]
        merged.notes += [n for n in part.notes if n not in merged.notes]
    merged["output"] = x
    module_outputs(merged, name, levels)
    return merged
