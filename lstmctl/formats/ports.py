"""A PyTorch state_dict (from a torch.save file or a .safetensors file) as a Model.

Each module is found by its keys: nn.LSTM / nn.GRU / nn.RNN (`weight_ih_l<k>[_reverse]`, …, read
through weights_builder), their cells (`weight_ih`, …, without `_l<k>`),
nn.Linear (`weight` (out, in) and `bias`), nn.Embedding (a lone `weight` under a name holding
"emb"); anything else stays an opaque module that inspect lists and run never reaches. A
state_dict does not record `forward()`: the modules are chained in the one order in which each
reads the features the one before gives, when exactly one order fits (an nn.Linear acting on every
time step); otherwise in the file's order, a module that does not fit, or follows an opaque one,
starting a chain with its own input. A whole pickled module (torch_file.ModuleNode) says what each
module is by its class and settings; an nn.Sequential runs its modules in order.

A module with num_layers > 1 becomes one layer per level, `<module>.l<k>`; run adds torch's own
outputs under the module's name: `<module>/output` (batch, time, directions·hidden) as with
batch_first=True, `<module>/h_n` and `<module>/c_n` (num_layers·directions, batch, hidden).
"""

from dataclasses import dataclass, field

import numpy as np

from ..conventions import TORCH_CLASS
from ..errors import LstmctlError, UsageError, show
from ..layers import REGISTRY
from ..model import Call, InputSpec, Layer, Ref
from ..runner import module_outputs
from .weights_builder import ImportedModel, Keys, bidirectional_wrapper, spec_layer, torch_levels, torch_modules

CELL_CLASS = {"lstm": "nn.LSTMCell", "gru": "nn.GRUCell", "simple_rnn": "nn.RNNCell"}
TORCH_ACTIVATIONS = ("tanh", "relu")  # nn.RNN's nonlinearity


@dataclass(repr=False)
class PortModel(ImportedModel):
    """A Model read from another framework's file; `ports` lists each torch recurrent module as
    (module name, its level layers, kind) for the outputs run adds under torch's names, `tensors`
    keeps the file's arrays by their own names (compare reads the bias pairs from them)."""

    ports: list = field(default_factory=list)
    tensors: dict = field(default_factory=dict)
    module_tree: list = field(default_factory=list)  # a whole pickled module's tree, one row per module (inspect)

    def module_layers(self, name: str) -> list:
        return next((levels for module, levels, _ in self.ports if module == name and len(levels) > 1), [])

    def run(self, *args, **kwargs):
        result = super().run(*args, **kwargs)
        for module, levels, _ in self.ports:
            module_outputs(result, module, levels)
        return result


def row_ranges(gates, u: int) -> str:
    """'i 0:4, f 4:8, …': where each gate's block sits in a fused tensor of blocks of u."""
    return ", ".join(f"{g} {j * u}:{(j + 1) * u}" for j, g in enumerate(gates))


def _torch_layout(module: str, kind: str, specs, level, cell: bool, activation: str, recorded: bool = False) -> str:
    """Where the gates shown (in Keras's layout) sit in the state_dict's tensors."""
    u = specs[0].units
    suffix = "" if cell else f"_l{level}"
    names = f"{module}.weight_ih{suffix}, weight_hh{suffix}" if module else f"weight_ih{suffix}, weight_hh{suffix}"
    two = " (and _reverse for the backward direction)" if len(specs) == 2 else ""
    if kind == "lstm":
        return f"torch {names}{two}: rows {row_ranges('ifgo', u)}, transposed into W and U; g is Keras's c (same order i, f, c, o); b_<g> shown = bias_ih{suffix} + bias_hh{suffix}"
    if kind == "gru":
        return f"torch {names}{two}: rows {row_ranges('rzn', u)}, transposed and reordered into Keras's z, r, h (n = h); b_<g> shown = bias_ih{suffix}, rb_<g> = bias_hh{suffix} (torch's GRU is Keras's reset_after=True)"
    said = "as the pickled module records it" if recorded else "a state_dict does not record it: --activation relu for nonlinearity='relu'"
    return f"torch {names}{two}: transposed into W and U; b shown = bias_ih{suffix} + bias_hh{suffix}; nonlinearity {activation} ({said})"


def _module_kind(prefix, keys, arrays, node=None):
    """'linear', 'embedding' or None (opaque) for a non-recurrent module's keys; a pickled module
    (`node`) says by its class, a state_dict's only by its keys' shapes (and an embedding's name)."""
    parts = {k[len(prefix) :]: arrays[k] for k in keys}
    weight, bias = parts.get("weight"), parts.get("bias")
    if weight is None or weight.ndim != 2:  # no nn.Linear or nn.Embedding, whatever the class says
        return None
    if node is not None:
        cls = node.cls.rsplit(".", 1)[-1] if node.cls.startswith("torch.nn.modules.") else None
        if cls == "Linear" and set(parts) <= {"weight", "bias"} and (bias is None or bias.shape == (weight.shape[0],)):
            return "linear"
        if cls == "Embedding" and set(parts) == {"weight"} and node.settings.get("max_norm") is None:
            return "embedding"  # max_norm would renormalise rows as they are looked up
        return None
    if set(parts) == {"weight", "bias"} and bias.shape == (weight.shape[0],) and weight.dtype.kind == bias.dtype.kind == "f":
        return "linear"
    if set(parts) == {"weight"} and weight.dtype.kind == "f" and weight.size:
        return "embedding" if "emb" in prefix.rstrip(".").rsplit(".", 1)[-1].lower() else "linear"
    return None


JOINED_CHECK_ELEMENTS = 1 << 16  # tensors up to this size are checked for NaN and infinity joined in one buffer


def _nonfinite(arrays) -> set:
    """The names of the floating-point arrays that hold a NaN or an infinity. The small ones are
    joined and checked in one NumPy call, each looked at alone only if that finds one: a
    state_dict may hold 10^5 tensors, and a call per tensor costs microseconds each."""
    small, bad = [], set()
    for k, a in arrays.items():
        if a.dtype.kind not in "fc":
            continue
        if a.size <= JOINED_CHECK_ELEMENTS:
            small.append(k)
        elif not np.isfinite(a).all():
            bad.add(k)
    if small and not np.isfinite(np.concatenate([arrays[k] for k in small], axis=None)).all():
        bad.update(k for k in small if not np.isfinite(arrays[k]).all())
    return bad


def _finite(keys, nonfinite, path):
    for key in keys:
        if key in nonfinite:
            raise LstmctlError(f"{path}: '{show(key)}' holds non-finite values")


def state_dict_model(arrays: dict, dtypes: dict, path: str, fmt: str, notes: list, activation=None, tree=None) -> PortModel:
    """The Model of a state_dict (name -> array, name -> torch dtype); `tree`: the torch_file.ModuleNode
    of a whole pickled module, whose classes and settings then decide what each module is."""
    nodes = {node.name: node for node in _walk(tree)} if tree is not None else {}
    if activation is not None and activation not in TORCH_ACTIVATIONS:
        raise UsageError(f"activation {activation!r}: torch's nn.RNN computes tanh or relu")
    modules, _ = torch_modules(arrays, path)
    owner = {key: prefix for prefix, found in modules.items() for key in found.values()}
    groups = {}  # every module in file order: prefix -> ("recurrent", found) | ("other", keys)
    for key in arrays:
        if key in owner:
            groups.setdefault(owner[key], ("recurrent", modules[owner[key]]))
        else:
            prefix = key.rpartition(".")[0]
            prefix = prefix + "." if prefix else ""
            if prefix in modules:
                raise LstmctlError(f"{path}: '{show(key)}' sits beside the recurrent weights of module '{show(prefix.rstrip('.')) or '(no prefix)'}', which nn.LSTM / GRU / RNN do not hold")
            groups.setdefault(prefix, ("other", []))[1].append(key)
    narrow = sorted({d for d in dtypes.values() if d in ("float16", "bfloat16")})
    floats = {a.dtype for a in arrays.values() if a.dtype.kind == "f"}
    dtype = np.dtype(np.float64 if floats == {np.dtype(np.float64)} else np.float32)
    dtype_name = dtype.name  # computed by Python code in NumPy at each call: once here, for 10^5 modules
    keys = Keys(dict(arrays), path, "pytorch")
    units, ports, kinds, by_module, recorded_acts = [], [], set(), {}, set()  # units: (name, its layers, features in, features out, reads tokens), None for an opaque module
    used_names, nonfinite = set(), _nonfinite({k: a for k, a in arrays.items() if k not in owner})  # recurrent weights: Keys.get checks them
    for prefix, (what, found) in groups.items():
        module = prefix.rstrip(".")
        if what == "recurrent":
            levels = torch_levels(keys, prefix, found)
            cell = next(iter(found))[0] is None
            kind = levels[0][0].kind
            kinds.add(kind)
            base = module or kind
            node = nodes.get(module)
            recorded = node.settings.get("nonlinearity") if node is not None else None
            if recorded not in (None, *TORCH_ACTIVATIONS):
                raise LstmctlError(f"{path}: module '{show(module)}' records nonlinearity '{show(str(recorded))[:20]}', not tanh or relu")
            act = (activation or recorded or "tanh") if kind == "simple_rnn" else "tanh"
            if kind == "simple_rnn" and recorded is not None:
                recorded_acts.add(recorded)
            ract = None if kind == "simple_rnn" else "sigmoid"
            module_layers = []
            for k, specs in enumerate(levels):
                name = base if len(levels) == 1 else f"{base}.l{k}"
                _unique(name, used_names, path)
                suffix = "" if cell else f"_l{k}"
                note = f"b_f is torch's bias_ih{suffix} + bias_hh{suffix} in the f rows: torch adds the two"
                if len(specs) == 1:
                    layer = spec_layer(specs[0], name, act, ract, dtype, 3, bias_note=note)
                else:
                    halves = [spec_layer(s, f"{name}/{d}", act, ract, dtype, 3, go_backwards=d == "backward", bias_note=note) for s, d in zip(specs, ("forward", "backward"))]
                    layer = bidirectional_wrapper(name, *halves, dtype)
                cls = CELL_CLASS[kind] if cell else TORCH_CLASS[kind]
                shape = "" if cell else f" layer {k} of {len(levels)}" + (", bidirectional" if len(specs) == 2 else "")
                layer.notes.append(f"torch {cls} '{module or '(no prefix)'}'{shape}" + (": one step, applied at every time step as a loop over the sequence does" if cell else ""))
                layer.notes.append(_torch_layout(module, kind, specs, k, cell, act, recorded is not None))
                if specs[0].projection is not None:
                    p, u = specs[0].width, specs[0].units
                    layer.notes.append(f"nn.LSTM proj_size={p}: h = (o ⊙ tanh(c))·W_hrᵀ, computed as torch does: h and the output have {p} features, c has {u}; P shown = weight_hr{'' if cell else f'_l{k}'} transposed ({u}, {p}), U has {p} rows")
                if node is not None and node.settings.get("batch_first") is False and k == 0:
                    layer.notes.append("batch_first=False: the torch module takes (time, batch, features); run takes (batch, time, features), or --time-major")
                module_layers.append(layer)
            units.append((base, module_layers, levels[0][0].W.shape[0], levels[-1][0].width * len(levels[-1]), False))
            by_module[module] = units[-1]
            if not cell:
                ports.append((base, module_layers, kind))
            continue
        _finite(found, nonfinite, path)
        kind = _module_kind(prefix, found, arrays, nodes.get(module))
        name = module or "module"
        _unique(name, used_names, path)
        if kind == "linear":
            weight = arrays[f"{prefix}weight"]
            bias = arrays.get(f"{prefix}bias")
            w = [weight.T.astype(dtype, copy=False)] + ([] if bias is None else [bias.astype(dtype, copy=False)])
            config = {"name": name, "units": weight.shape[0], "activation": "linear", "use_bias": bias is not None, "dtype": dtype_name}
            layer = Layer(name, "Dense", config, w, spec=REGISTRY["Dense"], params={"activation": "linear"})
            layer.notes.append(f"torch nn.Linear '{name}': weight ({weight.shape[0]}, {weight.shape[1]}) transposed into the kernel; applied to every time step of its input")
            units.append((name, [layer], weight.shape[1], weight.shape[0], False))
        elif kind == "embedding":
            weight = arrays[f"{prefix}weight"]
            config = {"name": name, "input_dim": weight.shape[0], "output_dim": weight.shape[1], "mask_zero": False, "dtype": dtype_name}
            layer = Layer(name, "Embedding", config, [weight.astype(dtype, copy=False)], spec=REGISTRY["Embedding"], params={"mask_zero": False})
            layer.notes.append(f"torch nn.Embedding '{name}' ({weight.shape[0]} tokens, {weight.shape[1]} features)" + (", as the pickled module's class says" if nodes else ", taken as one by its name"))
            units.append((name, [layer], weight.shape[0], weight.shape[1], True))
        else:
            shapes = ", ".join([f"{show(k[len(prefix) :])} {arrays[k].shape}" for k in found[:6]])
            units.append((name, [Layer(name, "torch module", {"name": name}, [arrays[k] for k in found], notes=[f"tensors {shapes}: not a module lstmctl computes; run stops at it"])], None, None, False))
        by_module[module] = units[-1]
    listed = []
    if tree is not None:
        units, listed = _tree_units(tree, by_module, dtype, used_names, path)
    order, chain_note = _chain_order(units)
    layers, inputs, outputs = _chain([units[i] for i in order], dtype)
    layers += listed
    if not any(layer.calls for layer in layers):
        raise LstmctlError(f"{path}: holds no nn.LSTM / GRU / RNN, cell, nn.Linear or nn.Embedding weights; its tensors are {', '.join(show(k) for k in list(arrays)[:8])}")
    if activation is not None and "simple_rnn" not in kinds:
        raise UsageError(f"--activation sets nn.RNN's nonlinearity, and {path} holds no nn.RNN; for a what-if run on it, use lstmctl's what-if options on a Keras model")
    notes = list(notes)
    if tree is not None and not tree.cls.startswith("torch.nn.modules."):
        chain_note = f"a whole pickled module: {show(tree.cls)}.forward() is code, which the file does not hold (nothing of it was imported or run); " + chain_note.split(": ", 1)[1]
    elif tree is not None:
        chain_note = f"a whole pickled {show(tree.cls)}: " + chain_note.split(": ", 1)[1]
    notes.append(chain_note)
    if narrow:
        notes.append(f"{' and '.join(narrow)} tensors widened to float32 exactly; lstmctl computes what torch computes with module.float()")
    if "simple_rnn" in kinds and recorded_acts and not activation:
        notes.append(f"nn.RNN nonlinearity {', '.join(sorted(recorded_acts))}, as the pickled module records it")
    elif "simple_rnn" in kinds:
        notes.append(f"nn.RNN nonlinearity {activation or 'tanh'}" + (" (set with --activation)" if activation else " (torch's default; a state_dict does not record it: --activation relu for nonlinearity='relu')"))
    notes.append("run adds torch's outputs per module: <module>/output (batch, time, directions·hidden), <module>/h_n and <module>/c_n (num_layers·directions, batch, hidden)")
    return PortModel(
        path, fmt, None, "torch", "Functional", "state_dict" if tree is None else show(tree.cls), layers, inputs, [Ref(i.name, 0, 0) for i in inputs], outputs,
        notes=notes, convention="pytorch", hard_sigmoid_form=3, ports=ports, tensors=arrays, module_tree=_tree_rows(tree),
    )  # fmt: skip


MAX_ORDERS_TRIED = 1 << 14  # steps of the search for orders that fit: a state_dict has a handful of modules
MAX_MODULES_ORDERED = 16  # more modules than this keep the file's order (each step of the search looks at every module)
MAX_MODULES_NAMED = 12  # modules a note names in order; a file may hold 10^5, and rich wraps a long note slowly


def _fits(a, b) -> bool:
    """Module unit `b` can read what unit `a` gives (sizes alone; an embedding reads tokens, so it only starts a chain)."""
    return a[3] is not None and b[2] is not None and not b[4] and a[3] == b[2]


def _chain_order(units) -> tuple:
    """(the order of `units` to chain, the note saying why): the one order in which every module
    reads the features of the one before, when exactly one exists; otherwise the file's order."""
    shown = " → ".join(u[0] for u in units[:MAX_MODULES_NAMED]) + (f" → … ({len(units):,} modules in all)" if len(units) > MAX_MODULES_NAMED else "")
    file_order = list(range(len(units)))
    said = "a state_dict does not record forward(): "
    if len(units) == 1:
        return file_order, said + "the module reads the input"
    if any(u[2] is None for u in units):
        return file_order, said + f"modules chained in the file's order ({shown}) where their sizes fit; an opaque module starts a new chain"
    if len(units) > MAX_MODULES_ORDERED:
        return file_order, said + f"{len(units)} modules, too many to try their orders, so they are chained in the file's order where their sizes fit"
    found, steps = [], 0

    def extend(path, left):
        nonlocal steps
        steps += 1
        if len(found) > 1 or steps > MAX_ORDERS_TRIED:
            return
        if not left:
            found.append(list(path))
            return
        for j in sorted(left):
            if _fits(units[path[-1]], units[j]):
                extend(path + [j], left - {j})

    for first in file_order:
        extend([first], set(file_order) - {first})
    if len(found) == 1 and steps <= MAX_ORDERS_TRIED:
        order = found[0]
        chosen = " → ".join(units[i][0] for i in order)
        where = "" if order == file_order else f" (the file lists {shown})"
        return order, said + f"modules chained in the one order their sizes fit: {chosen}{where}, an nn.Linear acting on every time step"
    if found:
        many = "several orders" if steps <= MAX_ORDERS_TRIED else "too many orders to try"
        return file_order, said + f"{many} of the modules fit their sizes, so the file's order is kept: {shown}, an nn.Linear acting on every time step"
    return file_order, said + f"no order chains every module, so they are chained in the file's order ({shown}) where their sizes fit, a module that does not fit starting a new chain"


def _chain(units, dtype) -> tuple:
    """(layers, inputs, outputs): each unit reads the one before where the sizes fit, else an input of its own."""
    layers, inputs, outputs = [], [], []
    previous = None  # the unit the next may read

    def start(width, tokens):
        name = "input" if not inputs else f"input_{len(inputs)}"
        shape = [None, None] if tokens else [None, None, width]
        layers.append(Layer(name, "InputLayer", {"batch_shape": shape, "dtype": "int64" if tokens else dtype.name}, spec=REGISTRY["InputLayer"]))
        inputs.append(InputSpec(name, (None,) if tokens else (None, width), "int64" if tokens else dtype.name))
        return name

    for unit in units:
        name, unit_layers, width_in, _, tokens = unit
        if width_in is None:
            layers.extend(unit_layers)
            previous = None
            continue
        if previous is not None and _fits(previous, unit):
            source = previous[1][-1].name
            if outputs and outputs[-1].layer == source:
                outputs.pop()
        else:
            source = start(width_in, tokens)
        for layer in unit_layers:
            layer.calls = [Call([Ref(source, 0, 0)], [])]
            layers.append(layer)
            source = layer.name
        outputs.append(Ref(source, 0, 0))
        previous = unit
    return layers, inputs, outputs


# torch.nn classes that hold no tensors and compute what a Keras activation computes, with the
# settings that must hold for that to be so
TORCH_ACTIVATION_CLASSES = {
    "ReLU": ("relu", {}), "Tanh": ("tanh", {}), "Sigmoid": ("sigmoid", {}), "SiLU": ("silu", {}), "Softsign": ("softsign", {}),
    "ReLU6": ("relu6", {}), "Mish": ("mish", {}), "LogSigmoid": ("log_sigmoid", {}), "ELU": ("elu", {"alpha": 1.0}),
    "GELU": ("gelu", {"approximate": "none"}), "Hardtanh": ("hard_tanh", {"min_val": -1.0, "max_val": 1.0}), "Softmax": ("softmax", {"dim": -1}),
}  # fmt: skip
TORCH_IDENTITY_CLASSES = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "Identity")  # identities in eval()


def _walk(node):
    yield node
    for child in node.children:
        yield from _walk(child)


def _plain_layer(node, dtype):
    """The layer of a torch.nn module that holds no tensors (an activation, a dropout), or None."""
    if not node.cls.startswith("torch.nn.modules.") or node.tensors or node.children:
        return None
    cls = node.cls.rsplit(".", 1)[-1]
    name = node.name or "module"
    if cls in TORCH_IDENTITY_CLASSES:
        layer = Layer(name, "Dropout", {"name": name, "dtype": dtype.name}, spec=REGISTRY["Dropout"])
        layer.notes.append(f"torch nn.{cls}: the identity in eval(), as torch runs a model for inference")
        return layer
    if cls in TORCH_ACTIVATION_CLASSES:
        act, needs = TORCH_ACTIVATION_CLASSES[cls]
        if any(node.settings.get(k) != v for k, v in needs.items()):
            return None
        layer = Layer(name, "Activation", {"name": name, "activation": act, "dtype": dtype.name}, spec=REGISTRY["Activation"], params={"activation": act})
        layer.notes.append(f"torch nn.{cls}: Keras's {act}")
        return layer
    return None


def _tree_units(tree, by_name, dtype, used, path) -> tuple:
    """(units to chain, layers only listed) of a whole pickled module: an nn.Sequential runs its
    modules in order, so they are one unit; any other module's forward() is code the file does not
    hold, so its children are units chained as a state_dict's are, and the modules without tensors
    outside an nn.Sequential (an activation, a dropout) are listed where forward() would call them."""
    listed = []

    def collect(node) -> list:
        found = [by_name[node.name]] if node.name in by_name else []  # its own tensors (a module may also hold children)
        if not found and node.cls == "torch.nn.modules.container.Sequential" and node.children:
            whole = _sequential(node)
            if whole is not None:
                return [whole]
        for child in node.children:
            plain = _plain_layer(child, dtype)
            if plain is not None:
                _unique(plain.name, used, path)
                plain.notes.append("not chained: the file does not record where forward() calls it")
                listed.append(plain)
            elif child.tensors or child.children:
                found += collect(child)
            else:
                _unique(child.name, used, path)
                listed.append(Layer(child.name, "torch module", {"name": child.name}, notes=[f"{show(child.cls)}: holds no tensors, not a module lstmctl computes"]))
        return found

    def _sequential(node):
        """One unit for an nn.Sequential whose modules lstmctl computes and whose sizes fit, else None."""
        layers, width_in, width, tokens = [], None, None, False
        for child in node.children:
            plain = _plain_layer(child, dtype)
            if plain is not None:
                _unique(plain.name, used, path)
                layers.append(plain)
                continue
            for unit in collect(child):
                if unit[2] is None or (width is not None and (unit[4] or unit[2] != width)) or (width is None and layers and unit[4]):
                    return None
                if width_in is None:
                    width_in, tokens = unit[2], unit[4]
                layers += unit[1]
                width = unit[3]
        if width_in is None:
            return None
        for layer in layers:
            layer.notes.append(f"in nn.Sequential '{show(node.name) or '(top)'}', which runs its modules in order")
        return (node.name or "module", layers, width_in, width, tokens)

    return collect(tree), listed


def _tree_rows(tree) -> list:
    """inspect's module tree: (depth, name, class path, settings) per module."""
    if tree is None:
        return []
    rows = []

    def visit(node, depth):
        settings = ", ".join(f"{k}={v!r}" for k, v in list(node.settings.items())[:12])
        rows.append((depth, show(node.name.rsplit(".", 1)[-1]) or "(top)", show(node.cls), show(settings)))
        for child in node.children:
            visit(child, depth + 1)

    visit(tree, 0)
    return rows


def _unique(name, used, path):
    if name in used or name == "input" or name.startswith("input_") or "/" in name:
        raise LstmctlError(f"{path}: module name '{show(name)}' is used twice or is not a name lstmctl can give a layer")
    used.add(name)
