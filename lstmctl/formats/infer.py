"""Weights-only files have no config: infer each recurrent layer's kind and sizes from shapes.

Kernel (input_dim, k·units) and recurrent kernel (units, k·units) give k: 4 is an LSTM, 3 a GRU,
1 a SimpleRNN; a (2, 3·units) bias is a GRU with reset_after. Activations cannot be known and
are assumed to be Keras's defaults; every such guess is written into the layer's notes.
"""

import itertools
import re
from types import SimpleNamespace

from .. import gates as gates_mod
from ..errors import LstmctlError
from ..layers import REGISTRY
from ..layers.base import NESTED_MODEL
from ..layers.recurrent import bidirectional_layer, recurrent_layer, stack_layer
from ..model import Layer, Model, keras_major
from .saved import KerasV3Store, Saved

_KINDS = {4: ("lstm", "LSTM"), 3: ("gru", "GRU"), 1: ("simple_rnn", "SimpleRNN")}
ASSUMED = "activations assumed to be Keras's defaults (tanh, sigmoid): a weights-only file does not record them"
ASSUMED_K1 = "activations assumed to be Keras 1's defaults (tanh, hard_sigmoid): a weights-only file does not record them"


def _rnn_shape(arrays):
    """(kind, class_name, units, reset_after, use_bias, cudnn) if arrays look like one RNN's weights."""
    if len(arrays) not in (2, 3) or arrays[0].ndim != 2 or arrays[1].ndim != 2:
        return None
    units, width = arrays[1].shape
    if units == 0 or width % units or width // units not in _KINDS or arrays[0].shape[1] != width:
        return None
    k = width // units
    kind, cls = _KINDS[k]
    if len(arrays) == 2:
        return kind, cls, units, False, False, False
    b = arrays[2].shape
    if b == (width,):
        return kind, cls, units, False, True, False
    if kind == "gru" and b == (2, width):
        return kind, cls, units, True, True, False
    if k in (3, 4) and b == (2 * width,):
        return kind, cls, units, kind == "gru", True, True
    return None


def _recurrent_layer(name, arrays, major, notes, recurrent_activation="sigmoid"):
    shape = _rnn_shape(arrays)
    if shape is None:
        return None
    kind, cls, units, reset_after, use_bias, cudnn = shape
    if cudnn:
        arrays = gates_mod.from_cudnn(kind, arrays)
        notes = [*notes, f"bias of 2·{gates_mod.n_gates(kind)}·units: cuDNN layout, converted as Keras converts it"]
    cell = gates_mod.make_cell(
        kind, units, list(arrays), where=name, activation="tanh", recurrent_activation=None if kind == "simple_rnn" else recurrent_activation,
        use_bias=use_bias, reset_after=reset_after, keras_major=major,
    )  # fmt: skip
    config = {"units": units, "use_bias": use_bias, "reset_after": reset_after}
    assumed = ASSUMED if recurrent_activation == "sigmoid" else ASSUMED_K1
    return recurrent_layer(name, cls, config, arrays, cell, [*notes, f"inferred {cls}({units}) from weight shapes", assumed])


def _bidirectional(name, forward, backward):
    if forward is None or backward is None or forward.class_name != backward.class_name:
        return None
    forward.name, backward.name = f"{name}/forward", f"{name}/backward"
    backward.config["go_backwards"] = True
    config = {"merge_mode": "concat", "units": forward.config["units"]}
    return bidirectional_layer(name, config, forward, backward, [f"inferred Bidirectional({forward.class_name}({forward.config['units']})); merge mode unknown", ASSUMED])


# Layers whose whole config follows from their weights' names and shapes, with Keras's defaults
# for what a weights-only file does not record (said in the layer's notes): the leaves of their
# weight names in Keras's order, and the config they give. Others (convolutions, attention…)
# need strides, padding or heads that no weight records, and stay opaque.
def _dense(w):
    return {"units": w[0].shape[1], "use_bias": len(w) == 2, "activation": "linear"}, "activation not recorded: assumed linear (Keras's default)"


def _embedding(w):
    return {"input_dim": w[0].shape[0], "output_dim": w[0].shape[1], "mask_zero": False}, "mask_zero not recorded: assumed False (Keras's default)"


def _normalization(leaves):
    def config(w):
        return {"axis": -1, "epsilon": 1e-3, "center": "beta" in leaves, "scale": "gamma" in leaves}, "axis and epsilon not recorded: assumed -1 and 0.001 (Keras's defaults)"

    return config


_BY_LEAVES = {
    ("kernel", "bias"): ("Dense", _dense),
    ("kernel",): ("Dense", _dense),
    ("embeddings",): ("Embedding", _embedding),
    **{tuple(k): ("BatchNormalization", _normalization(k)) for k in (["gamma", "beta", "moving_mean", "moving_variance"], ["gamma", "moving_mean", "moving_variance"], ["beta", "moving_mean", "moving_variance"])},
    **{tuple(k): ("LayerNormalization", _normalization(k)) for k in (["gamma", "beta"], ["gamma"], ["beta"])},
}
# Keras 3 .weights.h5 groups name the class, not the weights: the leaves in Keras's order for the
# counts that fix them (one lone LayerNormalization array could be gamma or beta: not listed).
_LEAVES_BY_CLASS = {"Dense": [("kernel", "bias"), ("kernel",)], "Embedding": [("embeddings",)], "LayerNormalization": [("gamma", "beta")], "BatchNormalization": [("gamma", "beta", "moving_mean", "moving_variance")]}


def _known(name, arrays, leaves, context):
    """A registry layer built from `leaves` (the weights' short names) and shapes, or None."""
    found = _BY_LEAVES.get(tuple(leaves))
    if found is None or (found[0] == "Dense" and arrays[0].ndim != 2):
        return None
    cls, config_of = found
    config, assumed = config_of(arrays)
    layer = Layer(name, cls, config, list(arrays), spec=REGISTRY[cls])
    where = f"{context.saved.path}: layer '{name}'"
    try:
        layer.spec.build(context, layer, {"class_name": cls, "config": config}, where)
    except LstmctlError:
        return None  # names that fit but shapes that do not: not this layer
    layer.params["dtype"] = layer.spec.compute_dtype(config, where)
    layer.notes = [f"inferred {cls} from its weights' names and shapes", assumed]
    return layer


def _plain(name, arrays, weight_names, context):
    leaves = [w.split(":")[0].rsplit("/", 1)[-1] for w in weight_names]
    layer = _known(name, arrays, leaves, context) if len(leaves) == len(arrays) else None
    if layer is not None:
        return layer
    if len(arrays) in (1, 2) and arrays[0].ndim == 2 and (len(arrays) == 1 or arrays[1].shape == (arrays[0].shape[1],)):
        cls = "Dense" if len(arrays) == 2 else "Dense or Embedding"
        return Layer(name, cls, {}, list(arrays), notes=[f"{cls} by its shapes; not interpreted (no weight names say which)"])
    return Layer(name, "unknown", {}, list(arrays), notes=["weights not recognised as a recurrent layer"])


def _stack(name, per_cell, major):
    """An RNN over a stack of cells, from each cell's arrays in order; None unless all are cells
    and each cell's input width is the units of the one below."""
    cells = [_recurrent_layer(name, arrays, major, []) for arrays in per_cell]
    if len(cells) < 2 or any(c is None for c in cells):
        return None
    if any(above.cell.input_dim != below.cell.units for below, above in zip(cells, cells[1:])):
        return None
    kinds = ", ".join(f"{c.class_name}Cell({c.cell.units})" for c in cells)
    return stack_layer(name, cells, [f"inferred RNN over a stack of cells [{kinds}] from weight shapes", ASSUMED])


def _keras1_names(weight_names) -> bool:
    """Keras 1 named its per-gate arrays `<layer>_W_i`, `<layer>_U_c`, `<layer>_b_f`…"""
    return bool(weight_names) and all(re.search(r"_[WUb]_[a-z]$", w.split(":")[0]) for w in weight_names)


def _cells_by_name(arrays, weight_names) -> list:
    """Arrays grouped by the cell in their names (`stack/stacked_rnn_cells/lstm_cell_1/kernel:0`)."""
    groups = {}
    for array, wname in zip(arrays, weight_names):
        parts = wname.split("/")
        if len(parts) < 3 or not re.fullmatch(r"stacked_rnn_cells(_\d+)?", parts[-3]):
            return []
        groups.setdefault(parts[-2], []).append(array)
    return list(groups.values())


def _classify(name, arrays, weight_names, major, context):
    layer = _recurrent_layer(name, arrays, major, [])
    if layer is not None:
        return layer
    if len(weight_names) == len(arrays):
        layer = _stack(name, _cells_by_name(arrays, weight_names), major)
        if layer is not None:
            return layer
    if (major == 1 or _keras1_names(weight_names)) and len(arrays) in (9, 12):
        kind = "lstm" if len(arrays) == 12 else "gru"
        layer = _recurrent_layer(name, gates_mod.from_keras1(kind, arrays), major, ["Keras 1 per-gate arrays fused into Keras 2 layout"], "hard_sigmoid")
        if layer is not None:
            return layer
    if len(arrays) % 2 == 0 and arrays:
        half = len(arrays) // 2
        directional = any("forward" in w for w in weight_names) or not weight_names
        if directional:
            layer = _bidirectional(name, _recurrent_layer(name, arrays[:half], major, []), _recurrent_layer(name, arrays[half:], major, []))
            if layer is not None:
                return layer
    return _plain(name, arrays, weight_names, context)


def _v3_layers(store: KerasV3Store, path: str, major: int, context) -> list:
    layers = []
    for group in store.children(f"{path}/layers"):
        gpath = f"{path}/layers/{group}"
        base = re.sub(r"_\d+$", "", group)
        if base in ("sequential", "functional"):
            inner = _v3_layers(store, gpath, major, context)
            layers.append(Layer(group, base.capitalize(), {}, [], spec=NESTED_MODEL, model=_model(store.where, inner, "keras-weights", None)))
            continue
        if base == "bidirectional":
            fwd = _recurrent_layer(group, store.vars(f"{gpath}/forward_layer/cell") or [], major, [])
            bwd = _recurrent_layer(group, store.vars(f"{gpath}/backward_layer/cell") or [], major, [])
            layer = _bidirectional(group, fwd, bwd)
            if layer is not None:
                layers.append(layer)
                continue
        cells = store.children(f"{gpath}/cell/cells")
        if cells:  # RNN over a stack: cell groups are named by class; the order must come from the shapes
            layer = _ordered_stack(group, {c: store.vars(f"{gpath}/cell/cells/{c}") or [] for c in cells}, major)
            if layer is not None:
                layers.append(layer)
                continue
        arrays = store.vars(f"{gpath}/cell")
        if arrays is None:
            arrays = store.all_arrays(gpath)
        if not arrays:
            continue
        # Keras 3 names a layer's group after its class: with the class, its weights' names are known.
        cls = "".join(part.capitalize() for part in base.split("_"))
        names = next((list(leaves) for leaves in _LEAVES_BY_CLASS.get(cls, []) if len(leaves) == len(arrays)), [])
        layers.append(_classify(group, arrays, names, major, context))
    for layer in layers:
        layer.notes.insert(0, "name is the storage group's (derived from the class name), not the layer's own")
    return layers


def _ordered_stack(name, by_group, major):
    """Keras 3 names a stack's cell groups by class (`lstm_cell`, `lstm_cell_1`, `gru_cell`) and
    HDF5 lists them alphabetically: keep each class's numbering and take the order of classes
    that chains the shapes (each cell's input width the units of the one below)."""
    def number(group):
        match = re.fullmatch(r"(.*?)(?:_(\d+))?", group)
        return match.group(1), int(match.group(2) or 0)

    classes = {}
    for group in sorted(by_group, key=number):
        classes.setdefault(number(group)[0], []).append(by_group[group])
    found = []
    for order in itertools.islice(_interleavings(list(classes.values())), 5000):
        layer = _stack(name, order, major)
        if layer is not None:
            found.append(layer)
            if len(found) > 1:
                break
    if not found:
        return None
    if len(found) > 1:
        found[0].notes.append("the order of the cells is not certain: more than one order fits the shapes")
    return found[0]


def _interleavings(queues):
    """Every merge of the lists that keeps each list's own order."""
    if all(not q for q in queues):
        yield []
        return
    for i, q in enumerate(queues):
        if q:
            for rest in _interleavings([*queues[:i], q[1:], *queues[i + 1 :]]):
                yield [q[0], *rest]


def _model(path, layers, fmt, version):
    return Model(path, fmt, version, None, "weights-only", "weights", layers, [], [], [], inferred=True)


def infer_model(saved: Saved) -> Model:
    major = keras_major(saved.keras_version, saved.format)
    context = SimpleNamespace(saved=saved, major=major)  # what a layer type's build reads of the builder
    if isinstance(saved.store, KerasV3Store):
        layers = _v3_layers(saved.store, "", major, context)
    else:
        layers = []
        for name in saved.store.layer_names():
            arrays = saved.store.layer_weights(name)
            if arrays:
                layers.append(_classify(name, arrays, saved.store.weight_names(name), major, context))
    model = _model(saved.path, layers, saved.format, saved.keras_version)
    model.backend = saved.backend
    model.notes.append("weights-only file: no config, so layer kinds and sizes are inferred from weight shapes")
    return model
