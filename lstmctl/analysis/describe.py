"""What `inspect` and `gates` report: plain facts as JSON-able dicts, and named gate arrays.

Rendering (rich tables) lives in lstmctl.render.console; both it and `--format json` read these facts.
"""

from ..errors import LstmctlError, show
from ..layers.recurrent import HARD_SIGMOID, state_names, top_cell

FORMATS = {
    "keras-zip": "Keras native .keras (zip: config.json, metadata.json, model.weights.h5)",
    "hdf5-model": "legacy HDF5 full model (model_config + model_weights)",
    "hdf5-weights": "Keras 1/2 save_weights() HDF5 (weights only, no config)",
    "keras-weights": "Keras 3 .weights.h5 (weights only, no config)",
    "npz-keras": ".npz of Keras weights (kernel, recurrent_kernel, bias), read with --convention keras",
    "npz-pytorch": ".npz of a PyTorch state_dict (weight_ih_l0, weight_hh_l0, …), read with --convention pytorch",
    "npz-tf1": ".npz of TF1 cell variables (kernel for x and h stacked, bias), read with --convention tf1",
    "npz-onnx": ".npz of ONNX weights (W, R, B), read with --convention onnx",
    "savedmodel": "TensorFlow SavedModel folder (saved_model.pb, keras_metadata.pb, variables/)",
    "tf2-checkpoint": "TensorFlow 2 object-based checkpoint (.index + .data shards; weights only, no config)",
    "tf1-checkpoint": "TensorFlow 1 Saver checkpoint (.index + .data shards; cells found by variable scope)",
    "pytorch-zip": "PyTorch torch.save zip (data.pkl + storages), read without torch",
    "pytorch-legacy": "PyTorch legacy torch.save pickle (before torch 1.6), read without torch",
    "safetensors": "safetensors file of a state_dict (JSON header + raw tensors)",
    "onnx": "ONNX model (ModelProto): its LSTM / GRU / RNN nodes and the ops around them",
    "tflite": "TensorFlow Lite FlatBuffer (TFL3): its LSTM ops and WHILE loops matched to Keras layers, and the ops around them",
}


def _shape(shape):
    return None if shape is None else list(shape)


def returns(layer, in_shape, units: int) -> list:
    """What calling the layer returns, in Keras's words and the math's."""
    cell = top_cell(layer.forward or layer)
    batch_time = (in_shape or (None, None))[:2]

    def dims(n):  # after batch (and time): (units,), a ConvLSTM's (*spatial, filters) or (filters, *spatial)
        return cell.state_dims(in_shape, n) if hasattr(cell, "state_dims") else [n]

    width = cell.output_dim  # a projected LSTM's h: proj_size
    mode = layer.config.get("merge_mode") if layer.kind == "bidirectional" else None
    if layer.kind == "bidirectional" and mode == "concat":
        width = 2 * width
    seq = layer.flag("return_sequences")
    if seq:
        first = {"keras": "whole_seq_output", "math": "h_1..h_T" + (" (in reversed time order: go_backwards)" if layer.flag("go_backwards") else ""), "shape": [batch_time[0], batch_time[1], *dims(width)]}
    else:
        first = {"keras": "output", "math": "h_T (the last hidden state)", "shape": [batch_time[0], *dims(width)]}
    if layer.kind == "bidirectional":
        first["math"] += f"; forward and backward merged by '{mode}'" if mode else "; merge_mode=None returns forward and backward separately"
    out = [first] if mode is not None or layer.kind != "bidirectional" else [dict(first, keras=first["keras"] + " (forward)"), dict(first, keras=first["keras"] + " (backward)")]
    if layer.flag("return_state"):
        halves = [("forward ", layer.forward), ("backward ", layer.backward)] if layer.kind == "bidirectional" else [("", layer)]
        for prefix, half in halves:
            # A stack returns every cell's states, cell by cell.
            for label, sub in [(f"cell_{k} ", c) for k, c in enumerate(half.cells)] or [("", half)]:
                who, n = prefix + label, sub.cell.units
                out.append({"keras": f"{who}final_memory_state", "math": "h_T", "shape": [batch_time[0], *dims(sub.cell.output_dim)]})
                if sub.cell.kind == "lstm":
                    out.append({"keras": f"{who}final_carry_state", "math": "c_T (cell state)", "shape": [batch_time[0], *dims(n)]})
    return out


def _layer_facts(model, layer, shapes: dict, depth: int) -> dict:
    facts = {
        "name": layer.name,
        "class_name": layer.class_name,
        "kind": layer.kind,
        "depth": depth,
        "params": layer.param_count,
        "trainable": layer.trainable,
        "inbound": list(dict.fromkeys(r.layer for c in layer.calls for r in c.inputs)),
        "initial_state_from": [f"{r.layer}[{r.index}]" for c in layer.calls for r in c.initial_state],
        "notes": list(layer.notes),
    }
    probed = shapes.get((layer.name, 0))
    facts["input_shapes"] = [_shape(s) for s in probed[0]] if probed else None
    facts["output_shapes"] = [_shape(s) for s in probed[1]] if probed else None
    if layer.class_name == "InputLayer":
        spec = next((s for s in model.inputs if s.name == layer.name), None)
        if spec and not probed:
            facts["output_shapes"] = [[spec.batch, *spec.shape]]  # None unless the file fixes the batch
    if layer.is_recurrent:
        major = model.keras_major
        rec = {
            "return_sequences": layer.flag("return_sequences"),
            "return_state": layer.flag("return_state"),
            "go_backwards": layer.flag("go_backwards"),
            "stateful": layer.flag("stateful"),
            "masked_input": bool(probed[2]) if probed else None,
        }
        rec.update(layer.spec.facts(layer, major))
        units = top_cell(layer.forward or layer).units
        if not model.inferred:
            said = getattr(layer.spec, "returns", returns)  # an ONNX node says what it returns in ONNX's terms
            rec["returns"] = said(layer, probed[0][0] if probed else None, units)
        facts["recurrent"] = rec
    elif layer.spec is not None and layer.kind in ("layer", "op"):
        facts["settings"] = layer.spec.facts(layer, model.keras_major)
    return facts


def _hard_sigmoid(model) -> str | None:
    """The hard_sigmoid formula inspect states: the Keras version's; for a port (PyTorch,
    safetensors, ONNX, TFLite), the one its recurrent gates compute (an ONNX HardSigmoid's alpha
    says which), or None where none uses one."""
    from ..formats import PORT_FORMATS

    if model.format not in PORT_FORMATS:
        return HARD_SIGMOID[3 if model.keras_major >= 3 else 2]
    hard = {"hard_sigmoid", "hard_silu", "hard_swish"}
    forms = sorted({cell.keras_major for layer in model.recurrent_layers() for _, cell in named_cells(layer) if hard & {cell.activation_name, cell.recurrent_activation_name}})
    return "; ".join(HARD_SIGMOID[3 if form >= 3 else 2] for form in forms) or None


def _mask_ops(m) -> set:
    """The keras.ops nodes whose values only ever feed layers' `mask` arguments, directly or through
    other such nodes: the mask computation Keras 3 records for Masking, Embedding(mask_zero), masked
    merges and attention. An op whose value reaches a layer's input or a model output is tensor
    code the user wrote, and inspect lists it."""
    ops = {item.name for item in m.layers if item.op}
    if not ops:  # no keras.ops node (a port's 10^5 modules): no users to find
        return ops
    uses = {}  # layer name -> its value's users: a layer's name, or None for a `mask` argument
    for layer in m.layers:
        for call in layer.calls:
            for key, refs in [("", call.inputs), ("", call.initial_state), ("mask", [call.mask] if call.mask else []), *call.tensor_kwargs.items()]:
                for ref in refs:
                    uses.setdefault(ref.layer, []).append(None if key == "mask" else layer.name)
    masks = {name for name in ops if name in uses} - {r.layer for r in m.outputs}
    while True:
        kept = {name for name in masks if all(user is None or user in masks for user in uses[name])}
        if kept == masks:
            return masks
        masks = kept


def inspect_facts(model, layer: str | None = None, limit: int | None = None) -> dict:
    """What inspect shows. With `limit`, only the first `limit` layers are described (a file may
    hold 10^5 modules or nodes): the others are counted by class in `unlisted`."""
    listed = None if limit is None or layer is not None else {item.name for item in model.layers[:limit]}
    shapes = model.probe_shapes(listed) if model.inputs else {}
    layers = []
    unlisted = {"layers": 0, "recurrent": 0, "classes": {}}

    ops = 0

    def visit(m, depth: int):
        nonlocal ops
        masks = _mask_ops(m)
        for item in m.layers:
            if item.name in masks:  # mask plumbing Keras 3 writes into the graph, not code of the model
                ops += 1
                continue
            if limit is not None and len(layers) >= limit and layer is None:
                unlisted["layers"] += 1
                unlisted["recurrent"] += item.is_recurrent
                unlisted["classes"][item.class_name] = unlisted["classes"].get(item.class_name, 0) + 1
            else:
                layers.append(_layer_facts(m, item, shapes, depth))
            if item.model is not None:
                visit(item.model, depth + 1)

    visit(model, 0)
    if layer is not None:
        names = {lay.name for lay in model.module_layers(layer)} or {model.layer(layer).name}  # a module of several layers: each; model.layer raises with the list of names
        layers = [f for f in layers if f["name"] in names]
    return {
        "file": model.path,
        "format": model.format,
        "format_description": FORMATS[model.format],
        "keras_version": model.keras_version,
        "backend": model.backend,
        "hard_sigmoid": _hard_sigmoid(model),
        "model": {
            "class_name": model.class_name,
            "name": model.name,
            "inputs": [{"name": s.name, "shape": list(shapes[(s.name, 0)][1][0]) if (s.name, 0) in shapes else [s.batch, *s.shape], "dtype": s.dtype} for s in model.inputs],  # an ONNX probe names its dimensions
            "outputs": [f"{r.layer}[{r.index}]" for r in model.outputs],
        },
        "inferred": model.inferred,
        "notes": list(model.notes) + ([f"{ops} keras.ops nodes that compute masks (Keras 3 records them in the graph) are not listed"] if ops else []),
        "layers": layers,
        **({"unlisted": unlisted} if limit is not None else {}),
        "params": sum(item.param_count for item in model.layers),
        **({"module_tree": [{"depth": d, "name": n, "class": c, "settings": st} for d, n, c, st in model.module_tree]} if getattr(model, "module_tree", None) else {}),
    }


def gate_arrays(model, layer: str | None = None) -> dict:
    """`<layer>/W_<g>`, `<layer>/U_<g>`, `<layer>/b_<g>` (…`/forward`, `/backward` for Bidirectional,
    `/cell_<k>` for each cell of a stack)."""
    targets = [model.layer(layer)] if layer else model.recurrent_layers()
    if not targets:
        raise LstmctlError(f"{model.path}: no recurrent layers")
    out = {}
    for target in targets:
        if not target.is_recurrent:
            raise LstmctlError(f"layer '{target.name}' is {target.class_name}, not a recurrent layer")
        for prefix, cell in named_cells(target):
            for key, value in cell.split().items():
                out[f"{prefix}/{key}"] = value
    return out


_LABELS = {
    "sequence": "whole_seq_output (h_1..h_T)",
    "h": "final_memory_state (h_T)",
    "c": "final_carry_state (c_T)",
}


def named_cells(layer) -> list:
    """(key prefix, Cell) for every cell of a recurrent layer."""
    if layer.forward is not None:
        return named_cells(layer.forward) + named_cells(layer.backward)
    if layer.cells:
        return [(sub.name, sub.cell) for sub in layer.cells]
    return [(layer.name, layer.cell)]


def output_label(model, ref) -> str:
    """What a model output is, in Keras's words: `model output: encoder[1] = final_memory_state (h_T)`."""
    where = f"model output: {ref.layer}[{ref.index}]"
    try:
        layer = model.layer(ref.layer)
    except LstmctlError:
        return where
    if not layer.is_recurrent:
        return where
    if ref.index == 0:
        return f"{where} = " + (_LABELS["sequence"] if layer.flag("return_sequences") else "output (h_T, the last hidden state)")
    halves = [("", layer)] if layer.kind == "recurrent" else [("forward ", layer.forward), ("backward ", layer.backward)]
    states = [(prefix, name) for prefix, half in halves for name in state_names(half)]
    if ref.index - 1 < len(states):
        prefix, name = states[ref.index - 1]
        cell, _, part = name.rpartition("/")
        return f"{where} = {prefix}{cell + ' ' if cell else ''}{_LABELS.get(part, part)}"
    return where


def run_selection(model, result: dict, layer=None, return_sequences=False, return_state=False) -> list:
    """(key, label) pairs to show for `run`: the model outputs by default, or, with the Keras-named
    flags, each selected recurrent layer's whole sequence and/or final states in Keras's order."""
    if layer and model.module_layers(layer):  # a module of several layers, by the names its framework gives
        return [(key, f"module '{layer}' {key.rsplit('/', 1)[1]}") for key in (f"{layer}/output", f"{layer}/h_n", f"{layer}/c_n") if key in result]
    if not (return_sequences or return_state):
        if layer is None:
            keys = [k for k in result if k == "output" or k.startswith("output_")]
            names = getattr(model, "output_names", [])  # an ONNX graph's outputs, shown under its own names
            if len(names) == len(keys) and all(result.get(n) is result[k] for n, k in zip(names, keys)):
                keys = names
            return [(k, output_label(model, ref)) for k, ref in zip(keys, model.outputs)]
        return_sequences = return_state = True
    targets = [model.layer(layer)] if layer else model.recurrent_layers()
    if layer and not targets[0].is_recurrent:
        if set(result) == {"output"}:  # the layer run on its own (--direct)
            return [("output", f"layer '{targets[0].name}' output")]
        raise LstmctlError(f"layer '{layer}' is {targets[0].class_name}, not a recurrent layer")
    parts = (["sequence"] if return_sequences else []) + (["h", "c"] if return_state else [])
    out = []
    for target in targets:
        prefixes = [""] if target.kind == "recurrent" else ["", "forward/", "backward/"]
        for part in parts:
            for prefix in prefixes:
                half = target.forward if prefix == "forward/" else target.backward if prefix == "backward/" else target
                # A stack returns every cell's states, in cell order.
                if part != "sequence" and half.cells:
                    if part == "c":
                        continue  # given with each cell's h, as Keras returns them: h_0, c_0, h_1, c_1, …
                    items = [(f"{c.name.rsplit('/', 1)[1]}/", p) for c in half.cells for p in ("h", "c") if p in parts]
                else:
                    items = [("", part)]
                for cell, part in items:
                    key = f"{target.name}/{prefix}{cell}{part}"
                    if key in result:
                        label = (prefix.replace("/", " ") + cell.replace("/", " ") + _LABELS[part]).strip()
                        if prefix == "" and target.kind == "bidirectional" and part != "sequence":
                            label += ", forward and backward concatenated" + (" (top cells)" if half.forward.cells else "")
                        out.append((key, label))
    return out
