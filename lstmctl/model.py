"""The layer model: a saved Keras model as plain Python objects, built from config data.

Layer classes are matched against an allow-list; anything else is kept as an opaque layer
(listed, its weights counted, its config never interpreted). Weights are attached the way
Keras itself assigns them: by position under class-named groups in Keras 3 files, by
`layer_names` / `weight_names` in legacy HDF5 files.
"""

import re
from dataclasses import dataclass, field

import numpy as np

from . import gates as gates_mod
from .errors import LstmctlError
from .hdf5 import show
from .kernels import ACTIVATION_NAMES
from .readers import KerasV3Store, LegacyStore, Saved
from .safejson import positive_int

RECURRENT = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn", "CuDNNLSTM": "lstm", "CuDNNGRU": "gru"}
MODEL_CLASSES = {"Sequential", "Functional", "Model"}
PLAIN = {
    "InputLayer", "Dense", "Embedding", "Masking", "Dropout", "SpatialDropout1D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "Activation", "Flatten", "Reshape", "RepeatVector",
    "Concatenate", "Add", "Average", "Multiply",
}  # fmt: skip
ALLOWED = set(RECURRENT) | MODEL_CLASSES | PLAIN | {"Bidirectional", "TimeDistributed"}
# keras.ops nodes Keras 3 writes into a Functional graph to compute masks (Masking, merges).
OPS = {"NotEqual", "Equal", "Any", "All", "ExpandDims", "ZerosLike", "OnesLike", "LogicalOr", "LogicalAnd", "LogicalNot", "Concatenate"}
OPS_MODULES = ("keras.src.ops.", "keras.ops")


def _is_op(entry) -> bool:
    """A keras.ops node. Keras 3's legacy .h5 configs drop the module: then the name decides, and
    for Concatenate (also a layer) the config does: a layer's always has `trainable`."""
    cls, module = entry.get("class_name"), entry.get("module")
    if cls not in OPS:
        return False
    if module is None:
        config = entry.get("config")
        return cls not in ALLOWED or (isinstance(config, dict) and "trainable" not in config)
    return isinstance(module, str) and module.startswith(OPS_MODULES)
# A class name alone does not make a layer Keras's own: a custom class registered under an allowed
# name (module "my_pkg", registered_name "Custom>LSTM") would compute something else.
KERAS_MODULES = re.compile(r"(keras|tf_keras|tensorflow\.keras|tensorflow\.python\.keras)(\.[A-Za-z0-9_.]+)?")
MAX_DIM = 1 << 20  # one declared input dimension, RepeatVector's n, Reshape's target dimensions
MAX_SAMPLE_ELEMENTS = 1 << 24  # one sample of a declared input: what a shape probe or a random input allocates
FLOAT_DTYPES = ("float16", "float32", "float64")


@dataclass(frozen=True)
class Ref:
    """Output `index` of call `node` of layer `layer` (Keras's keras_history triple)."""

    layer: str
    node: int
    index: int


@dataclass
class Call:
    inputs: list  # list[Ref]
    initial_state: list  # list[Ref]
    mask: "Ref | None" = None  # Keras 3 records the mask a layer was called with
    explicit_mask: bool = False  # Keras 3 node: the mask is what `mask` says (or none), not inferred
    raw_args: list | None = None  # a keras.ops node's arguments, constants included


@dataclass
class InputSpec:
    name: str
    shape: tuple  # without batch; None where variable
    dtype: str


@dataclass
class Layer:
    name: str
    class_name: str
    config: dict
    weights: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    known: bool = True
    cell: "gates_mod.Cell | None" = None
    forward: "Layer | None" = None  # Bidirectional
    backward: "Layer | None" = None
    inner: "Layer | None" = None  # TimeDistributed
    model: "Model | None" = None  # nested model
    notes: list = field(default_factory=list)
    node_offset: int = 0  # Keras 2 numbers a nested model's calls from 1 (node 0 is its own build)
    op: bool = False  # a keras.ops node (mask computation), evaluated by runner.OPS

    @property
    def kind(self) -> str:
        if not self.known and self.class_name != "TimeDistributed":
            return "opaque"
        if self.class_name in RECURRENT:
            return "recurrent"
        if self.class_name == "Bidirectional":
            return "bidirectional"
        if self.class_name in MODEL_CLASSES:
            return "model"
        return "layer" if self.known else "opaque"

    @property
    def is_recurrent(self) -> bool:
        return self.kind in ("recurrent", "bidirectional")

    def flag(self, key: str, default=False) -> bool:
        value = self.config.get(key, default)
        if not isinstance(value, bool):
            raise LstmctlError(f"layer '{self.name}': config '{key}' must be true or false, got {value!r}")
        return value

    @property
    def param_count(self) -> int:
        own = sum(int(w.size) for w in self.weights)
        if self.model is not None:
            own += sum(layer.param_count for layer in self.model.layers)
        return own


@dataclass
class Model:
    path: str
    format: str
    keras_version: str | None
    backend: str | None
    class_name: str
    name: str
    layers: list
    inputs: list  # list[InputSpec]
    input_refs: list  # list[Ref]
    outputs: list  # list[Ref]
    inferred: bool = False
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)  # non-finite weights: run warns, --strict refuses

    @property
    def keras_major(self) -> int:
        return keras_major(self.keras_version, self.format)

    def walk(self):
        """Every layer, nested models' layers after the model that holds them."""
        for layer in self.layers:
            yield layer
            if layer.model is not None:
                yield from layer.model.walk()

    def recurrent_layers(self) -> list:
        return [layer for layer in self.walk() if layer.is_recurrent]

    def layer(self, name: str) -> Layer:
        for layer in self.walk():
            if layer.name == name:
                return layer
        names = ", ".join(layer.name for layer in self.walk() if layer.class_name != "InputLayer")
        raise LstmctlError(f"{self.path}: no layer named '{name}' (layers: {names})")

    def run(self, inputs=None, initial_state=None, layer=None, dtype=None, sequences=True, strict=False):
        """Forward pass; returns the npz contract mapping (see lstmctl.runner.run)."""
        from .runner import run

        return run(self, inputs, initial_state=initial_state, layer=layer, dtype=dtype, sequences=sequences, strict=strict)

    def gates(self, layer=None) -> dict:
        """Named gate matrices under the `gates` npz contract."""
        from .describe import gate_arrays

        return gate_arrays(self, layer)


def keras_major(version: str | None, fmt: str) -> int:
    if version:
        match = re.match(r"\s*(\d+)", version)
        if match:
            return int(match.group(1))
    return 3 if fmt in ("keras-zip", "keras-weights") else 2


def snake_case(name: str) -> str:
    """Keras's naming.to_snake_case: how Keras 3 names a layer's weight group."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# ---------------------------------------------------------------------------------------------
# Config normalisation (Keras 1, 2 and 3 write the same facts differently)


def _entry_config(entry, where) -> dict:
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise LstmctlError(f"{where}: a layer entry has no class_name")
    cls = entry["class_name"]
    if not cls or not cls.isprintable() or len(cls) > 200:
        raise LstmctlError(f"{where}: layer class name '{show(cls)[:200]}' is not a plain name")
    config = entry.get("config", {})
    if not isinstance(config, dict):
        raise LstmctlError(f"{where}: layer config of {cls} is not an object")
    return config


def _entry_name(entry, where) -> str:
    config = _entry_config(entry, where)
    name = config.get("name", entry.get("name"))
    if not isinstance(name, str) or not name:
        raise LstmctlError(f"{where}: a {entry['class_name']} layer has no name")
    if not name.isprintable() or len(name) > 200:
        raise LstmctlError(f"{where}: layer name '{show(name)[:200]}' is not a plain name")
    return name


def _foreign(entry) -> str | None:
    """Why an entry is not Keras's own class of that name (a custom module or registered name), or None."""
    module = entry.get("module")
    registered = entry.get("registered_name")
    if module is not None and not (isinstance(module, str) and KERAS_MODULES.fullmatch(module)):
        return f"module {show(module) if isinstance(module, str) else module!r}"
    if registered is not None and registered != entry["class_name"]:
        return f"registered_name {show(registered) if isinstance(registered, str) else registered!r}"
    return None


def _units(config, where) -> int:
    # Keras 1 called it output_dim.
    return positive_int(config.get("units", config.get("output_dim")), f"{where}: units")


def _recurrent_activation(config):
    if "recurrent_activation" in config:
        return config["recurrent_activation"]
    return config.get("inner_activation", "hard_sigmoid" if "inner_activation" in config else "sigmoid")


def _use_bias(config, where="") -> bool:
    value = config.get("use_bias", config.get("bias", True))
    if not isinstance(value, bool):
        raise LstmctlError(f"{where}{': ' if where else ''}config 'use_bias' must be true or false, got {_short(value)}")
    return value


RNN_FLAGS = ("return_sequences", "return_state", "go_backwards", "stateful", "zero_output_for_mask")


def _check_flags(config, keys, where):
    for key in keys:
        value = config.get(key, False)
        if not isinstance(value, bool):
            raise LstmctlError(f"{where}: config '{key}' must be true or false, got {_short(value)}")


def _shape(value, where):
    if not isinstance(value, list) or not value or len(value) > 32:
        raise LstmctlError(f"{where}: input shape {_short(value)} is not a list")
    out = []
    elements = 1
    for dim in value[1:]:
        if dim is None:
            out.append(None)
        else:
            out.append(positive_int(dim, f"{where}: input dimension", MAX_DIM))
            elements *= dim
    if elements > MAX_SAMPLE_ELEMENTS:
        raise LstmctlError(f"{where}: input shape {tuple(value)} declares {elements} values per sample, over lstmctl's cap of {MAX_SAMPLE_ELEMENTS}")
    return tuple(out)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def dtype_name(value, where="") -> str:
    """A layer's dtype: a string (Keras 2) or a DTypePolicy dict (Keras 3)."""
    if value is None:
        return "float32"
    if isinstance(value, dict):
        config = value.get("config")
        value = config.get("name") if isinstance(config, dict) else None
    if not isinstance(value, str) or not value.isprintable() or len(value) > 40:
        raise LstmctlError(f"{where}: dtype {_short(value)} is not understood")
    if value.startswith("mixed_"):
        value = value[len("mixed_") :]
    return value


def _tensor_refs(obj, where) -> list:
    """Refs from a Keras 3 call argument: a __keras_tensor__ dict, or lists of them."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            config = obj.get("config")
            return [_ref(config.get("keras_history") if isinstance(config, dict) else None, where)]
        return []
    if isinstance(obj, (list, tuple)):
        out = []
        for item in obj:
            out.extend(_tensor_refs(item, where))
        return out
    return []


def _ref(triple, where) -> Ref:
    if not isinstance(triple, (list, tuple)) or len(triple) < 3 or not isinstance(triple[0], str):
        raise LstmctlError(f"{where}: malformed tensor reference {triple!r}")
    node, index = triple[1], triple[2]
    for v in (node, index):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise LstmctlError(f"{where}: malformed tensor reference {triple!r}")
    return Ref(triple[0], node, index)


def _calls(entry, is_rnn: bool, where) -> list:
    """A Functional layer entry's inbound nodes as Calls (Keras 2 lists or Keras 3 args/kwargs)."""
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list):
        raise LstmctlError(f"{where}: inbound_nodes is not a list")
    calls = []
    for node in nodes:
        if isinstance(node, dict):  # Keras 3
            inputs = _tensor_refs(node.get("args", []), where)
            kwargs = node.get("kwargs") or {}
            if not isinstance(kwargs, dict):
                raise LstmctlError(f"{where}: malformed call kwargs")
            states = _tensor_refs(kwargs.get("initial_state"), where)
            masks = _tensor_refs(kwargs.get("mask"), where)
            args = node.get("args", [])
            calls.append(Call(inputs, states, masks[0] if len(masks) == 1 else None, True, args if isinstance(args, list) else None))
            continue
        elif isinstance(node, list):  # Keras 1/2: [[name, node, index, kwargs], ...]
            inputs, states = [], []
            for item in node:
                inputs.append(_ref(item, where))
                if isinstance(item, list) and len(item) > 3 and isinstance(item[3], dict):
                    states.extend(_tensor_refs_k2(item[3].get("initial_state"), where))
            if is_rnn and len(inputs) > 1 and not states:
                # Keras 2 RNNs receive [inputs, *initial_state] as one list.
                inputs, states = inputs[:1], inputs[1:]
        else:
            raise LstmctlError(f"{where}: malformed inbound node")
        calls.append(Call(inputs, states))
    return calls


def _tensor_refs_k2(obj, where) -> list:
    if obj is None:
        return []
    if isinstance(obj, list) and obj and isinstance(obj[0], str):
        return [_ref(obj, where)]
    if isinstance(obj, list):
        out = []
        for item in obj:
            out.extend(_tensor_refs_k2(item, where))
        return out
    return _tensor_refs(obj, where)


def _io_refs(value, where) -> list:
    """input_layers / output_layers: one triple, or lists / dicts of them, nested."""
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list) or not value:
        raise LstmctlError(f"{where}: model inputs/outputs are missing")
    if isinstance(value[0], str):
        return [_ref(value, where)]
    return [ref for item in value for ref in _io_refs(item, where)]


# ---------------------------------------------------------------------------------------------
# Weight locations


def _expected_count(entry, where) -> int | None:
    """How many arrays a layer keeps in a legacy file; None for layers not interpreted."""
    cls = entry["class_name"]
    config = _entry_config(entry, where)
    if _is_op(entry):
        return 0
    if cls in RECURRENT:
        return 3 if _use_bias(config, where) else 2
    if cls == "Bidirectional" or cls == "TimeDistributed":
        inner = config.get("layer")
        n = _expected_count(inner, where) if isinstance(inner, dict) else None
        if n is None:
            return None
        return 2 * n if cls == "Bidirectional" else n
    if cls == "Dense":
        return 2 if _use_bias(config, where) else 1
    if cls == "Embedding":
        return 1
    if cls in MODEL_CLASSES:
        total = 0
        for inner in _model_layer_entries(config, where):
            n = _expected_count(inner, where)
            if n is None:
                return None
            total += n
        return total
    if cls in PLAIN:
        return 0
    return None


def _model_layer_entries(config, where) -> list:
    layers = config if isinstance(config, list) else config.get("layers")
    if not isinstance(layers, list):
        raise LstmctlError(f"{where}: model config has no layers list")
    return layers


# ---------------------------------------------------------------------------------------------
# Building


class Builder:
    def __init__(self, saved: Saved):
        self.saved = saved
        self.where = saved.path
        self.major = keras_major(saved.keras_version, saved.format)

    # --- weights -------------------------------------------------------------------------

    def _v3_layer_weights(self, cls, config, path) -> list:
        store = self.saved.store
        if cls in RECURRENT:
            return store.vars(f"{path}/cell") or []
        if cls in ("Dense", "Embedding"):
            return store.vars(path) or []
        if cls in PLAIN:
            return []  # weightless layers; Keras 3 may keep e.g. a seed generator's state here
        return store.all_arrays(path)

    def _split_legacy(self, name, arrays, entries_counts):
        out, pos = [], 0
        for n in entries_counts:
            out.append(arrays[pos : pos + n])
            pos += n
        if pos != len(arrays):
            raise LstmctlError(f"{self.where}: layer '{name}' holds {len(arrays)} weight arrays, the config needs {pos}")
        return out

    # --- layers --------------------------------------------------------------------------

    def layer(self, entry, weights, v3_path, where) -> Layer:
        """Build one layer. `weights` is a list (legacy) or None with `v3_path` (Keras 3 store)."""
        cls = entry["class_name"]
        config = _entry_config(entry, where)
        name = _entry_name(entry, where)
        where = f"{self.where}: layer '{name}'"
        if _is_op(entry):
            return Layer(name, cls, config, [], op=True)
        foreign = _foreign(entry)
        if cls not in ALLOWED or foreign:
            # Opaque: the config is never interpreted (a Lambda's code is never decoded).
            arrays = weights if weights is not None else (self.saved.store.all_arrays(v3_path) if v3_path else [])
            note = f"{cls} from {foreign} is a custom class" if foreign else f"{cls} is not on lstmctl's allow-list"
            return Layer(name, cls, {}, arrays, known=False, notes=[f"{note}; shown as opaque"])
        if cls in MODEL_CLASSES:
            sub = self.model(entry, weights, v3_path, where)
            return Layer(name, cls, config, [], model=sub, node_offset=1 if self.major < 3 else 0)
        if cls == "Bidirectional":
            return self._bidirectional(name, config, weights, v3_path, where)
        if cls == "TimeDistributed":
            inner_entry = config.get("layer")
            if not isinstance(inner_entry, dict):
                raise LstmctlError(f"{where}: TimeDistributed has no inner layer")
            inner = self.layer(inner_entry, weights, f"{v3_path}/layer" if v3_path else None, where)
            return Layer(name, cls, config, inner.weights, inner=inner, known=inner.known)
        if weights is None:
            weights = self._v3_layer_weights(cls, config, v3_path) if v3_path else []
        layer = Layer(name, cls, config, list(weights))
        _check_dtype(cls, config, where)
        if cls in RECURRENT:
            layer.cell = self.cell(cls, config, layer.weights, where, layer.notes)
        else:
            self._check_plain(layer, where)
        return layer

    def cell(self, cls, config, weights, where, notes):
        kind = RECURRENT[cls]
        units = _units(config, where)
        _check_flags(config, RNN_FLAGS, where)
        if not cls.startswith("CuDNN"):
            _activation_name(config.get("activation", "tanh"), "activation", where)
            if kind != "simple_rnn":
                _activation_name(_recurrent_activation(config), "recurrent_activation", where)
        k = gates_mod.n_gates(kind)
        if cls.startswith("CuDNN"):
            if not gates_mod.is_cudnn_layout(kind, weights):
                raise LstmctlError(f"{where}: {cls} weights do not have cuDNN's {2 * k}·units bias")
            W, U = weights[0], weights[1]
            if W.ndim != 2 or W.shape[1] != k * units or U.shape != (units, k * units):
                raise LstmctlError(f"{where}: {cls} kernels {W.shape} and {U.shape} do not fit units={units}")
            weights = gates_mod.from_cudnn(kind, weights)
            notes.append(f"{cls} weights converted to {'LSTM' if kind == 'lstm' else 'GRU(reset_after=True)'} (biases {'summed' if kind == 'lstm' else 'split into input and recurrent'}, as Keras converts them)")
            return gates_mod.make_cell(kind, units, weights, where=where, activation="tanh", recurrent_activation="sigmoid", use_bias=True, reset_after=(kind == "gru"), keras_major=self.major)
        if len(weights) in (9, 12) and self.major == 1:
            for part in range(3):
                shapes = [w.shape for w in weights[part::3]]
                if any(len(sh) == 0 or len(sh) != len(shapes[0]) or sh[:-1] != shapes[0][:-1] for sh in shapes):
                    raise LstmctlError(f"{where}: Keras 1 per-gate arrays have shapes {shapes} that do not fuse")
            weights = gates_mod.from_keras1(kind, weights)
            notes.append("Keras 1 per-gate arrays (i, c, f, o order) fused into Keras's i, f, c, o layout")
        elif kind == "lstm" and gates_mod.is_cudnn_layout(kind, weights):
            raise LstmctlError(f"{where}: LSTM bias has cuDNN's 8·units layout; re-save the model from Keras to convert it")
        reset_after = False
        if kind == "gru":
            # Every Keras version whose default is True writes the key; older ones meant False.
            reset_after = config.get("reset_after", False)
            if not isinstance(reset_after, bool):
                raise LstmctlError(f"{where}: config 'reset_after' must be true or false")
        return gates_mod.make_cell(
            kind, units, weights, where=where,
            activation=config.get("activation", "tanh"),
            recurrent_activation=_recurrent_activation(config) if kind != "simple_rnn" else None,
            use_bias=_use_bias(config, where), reset_after=reset_after, keras_major=self.major,
        )  # fmt: skip

    def _bidirectional(self, name, config, weights, v3_path, where) -> Layer:
        inner_entry = config.get("layer")
        if not isinstance(inner_entry, dict) or not isinstance(inner_entry.get("class_name"), str) or inner_entry["class_name"] not in RECURRENT:
            cls = inner_entry.get("class_name") if isinstance(inner_entry, dict) else None
            raise LstmctlError(f"{where}: Bidirectional wraps {cls!r}, not a recurrent layer lstmctl knows")
        backward_entry = config.get("backward_layer") or inner_entry
        for entry in (inner_entry, backward_entry):
            _entry_config(entry, where)
            if entry["class_name"] not in RECURRENT or _foreign(entry):
                raise LstmctlError(f"{where}: Bidirectional wraps {entry['class_name']!r}, not a recurrent layer lstmctl knows")
            _check_dtype(entry["class_name"], entry.get("config", {}), where)
        halves = [None, None]
        if weights is not None:
            if len(weights) % 2:
                raise LstmctlError(f"{where}: Bidirectional holds an odd number ({len(weights)}) of weight arrays")
            half = len(weights) // 2
            halves = [weights[:half], weights[half:]]
        directions = []
        for direction, entry, arrays in (("forward", inner_entry, halves[0]), ("backward", backward_entry, halves[1])):
            inner_config = dict(_entry_config(entry, where))
            if arrays is None and v3_path:
                arrays = self.saved.store.vars(f"{v3_path}/{direction}_layer/cell") or []
            inner_name = f"{name}/{direction}"
            cell = self.cell(entry["class_name"], inner_config, arrays or [], f"{where} ({direction})", [])
            if direction == "backward" and "backward_layer" not in config:
                inner_config["go_backwards"] = not inner_config.get("go_backwards", False)
            directions.append(Layer(inner_name, entry["class_name"], inner_config, list(arrays or []), cell=cell))
        _check_flags(config, RNN_FLAGS, where)
        merge_mode = config.get("merge_mode", "concat")
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise LstmctlError(f"{where}: unknown merge_mode {_short(merge_mode)}")
        merged = dict(config)
        merged["merge_mode"] = merge_mode
        for key in ("return_sequences", "return_state", "go_backwards", "stateful"):
            merged.setdefault(key, inner_entry.get("config", {}).get(key, False))
        weights_all = directions[0].weights + directions[1].weights
        return Layer(name, "Bidirectional", merged, weights_all, forward=directions[0], backward=directions[1])

    def _check_plain(self, layer, where):
        cls, config, w = layer.class_name, layer.config, layer.weights
        if cls == "Dense":
            units = _units(config, where)
            want = 2 if _use_bias(config, where) else 1
            if len(w) != want or w[0].ndim != 2 or w[0].shape[1] != units or (want == 2 and w[1].shape != (units,)):
                raise LstmctlError(f"{where}: Dense weights {[a.shape for a in w]} do not fit units={units}")
        elif cls == "Embedding":
            if len(w) != 1 or w[0].ndim != 2:
                raise LstmctlError(f"{where}: Embedding weights {[a.shape for a in w]} are not one matrix")
        elif w:
            raise LstmctlError(f"{where}: {cls} should hold no weights, found {len(w)}")
        _check_plain_config(cls, config, w, where)

    # --- models --------------------------------------------------------------------------

    def model(self, top, weights, v3_path, where) -> Model:
        if isinstance(top, list):  # Keras 1 Sequential: a bare list of layers
            cls, config = "Sequential", {"layers": top}
        elif isinstance(top, dict):
            cls = top.get("class_name")
            config = top.get("config")
            if cls == "Sequential" and isinstance(config, list):
                config = {"layers": config}
        else:
            raise LstmctlError(f"{where}: the model config is not a JSON object")
        if not isinstance(cls, str) or cls not in MODEL_CLASSES or not isinstance(config, dict):
            raise LstmctlError(f"{where}: model class {_short(cls)} is not Sequential or Functional")
        foreign = _foreign(top) if isinstance(top, dict) else None
        if foreign:
            raise LstmctlError(f"{where}: model class {cls} from {foreign} is a custom class; refused")
        name = config.get("name") if isinstance(config.get("name"), str) and config["name"].isprintable() else cls.lower()
        entries = _model_layer_entries(config, where)
        if not all(isinstance(e, dict) for e in entries):
            raise LstmctlError(f"{where}: a layer entry is not an object")
        legacy = self._legacy_weights(entries, weights, where)
        used = {}
        layers = []
        for i, entry in enumerate(entries):
            _entry_config(entry, where)
            path = None
            if v3_path is not None:
                key = snake_case(entry["class_name"] if entry["class_name"] != "Model" else "Functional")
                n = used.get(key)
                used[key] = 0 if n is None else n + 1
                path = f"{v3_path}/layers/{key}" + (f"_{used[key]}" if n is not None else "")
            layers.append(self.layer(entry, legacy[i], path, where))
        names = [layer.name for layer in layers]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise LstmctlError(f"{where}: duplicate layer names {sorted(dupes)}")
        if cls == "Sequential":
            return self._sequential(name, config, entries, layers, where)
        by_name = {layer.name: layer for layer in layers}
        for entry, layer in zip(entries, layers):
            if layer.class_name != "InputLayer":
                layer.calls = _calls(entry, layer.is_recurrent, where)
                _check_call_arity(layer, f"{self.where}: layer '{layer.name}'")
        input_refs = _io_refs(config.get("input_layers"), where)
        outputs = _io_refs(config.get("output_layers"), where)
        inputs = []
        for ref in input_refs:
            layer = by_name.get(ref.layer)
            if layer is None or layer.class_name != "InputLayer":
                raise LstmctlError(f"{where}: model input '{ref.layer}' is not an InputLayer")
            inputs.append(self._input_spec(layer, where))
        for ref in outputs:
            if ref.layer not in by_name:
                raise LstmctlError(f"{where}: model output names unknown layer '{ref.layer}'")
        return Model(self.where, self.saved.format, self.saved.keras_version, self.saved.backend, "Functional", name, layers, inputs, input_refs, outputs)

    def _legacy_weights(self, entries, weights, where) -> list:
        """Per-entry weight lists for legacy files (None entries for Keras 3 stores)."""
        store = self.saved.store
        if not isinstance(store, LegacyStore):
            return [None] * len(entries)
        if weights is None:  # top level: one HDF5 group per layer
            groups = set(store.layer_names())
            out = []
            for entry in entries:
                name = _entry_name(entry, where)
                out.append(store.layer_weights(name) if name in groups else [])
            return out
        counts = [_expected_count(e, where) for e in entries]
        if None in counts:
            raise LstmctlError(f"{where}: a nested model holds a layer lstmctl does not interpret; its weights cannot be assigned")
        return self._split_legacy(where, weights, counts)

    def _input_spec(self, layer, where) -> InputSpec:
        config = layer.config
        shape = config.get("batch_shape", config.get("batch_input_shape"))
        if shape is None and "shape" in config:
            shape = [None, *config["shape"]] if isinstance(config["shape"], list) else None
        return InputSpec(layer.name, _shape(shape, f"{where}: input '{layer.name}'"), dtype_name(config.get("dtype"), where))

    def _sequential(self, name, config, entries, layers, where) -> Model:
        if layers and layers[0].class_name == "InputLayer":
            input_layer, rest = layers[0], layers[1:]
        else:
            first = entries[0] if entries else {}
            first_config = _entry_config(first, where) if entries else {}
            shape = first_config.get("batch_input_shape", first_config.get("batch_shape"))
            if shape is None and first_config.get("input_dim") is not None:  # Keras 1
                shape = [None, first_config.get("input_length"), first_config["input_dim"]]
            if shape is None:
                build = config.get("build_input_shape")
                shape = build if isinstance(build, list) else None
            if shape is None:
                raise LstmctlError(f"{where}: Sequential model declares no input shape")
            input_name = f"{layers[0].name}_input" if layers else "input"
            input_layer = Layer(input_name, "InputLayer", {"batch_shape": shape, "dtype": first_config.get("dtype")})
            rest = layers
        previous = Ref(input_layer.name, 0, 0)
        for layer in rest:
            layer.calls = [Call([previous], [])]
            previous = Ref(layer.name, layer.node_offset, 0)
        spec = self._input_spec(input_layer, where)
        return Model(self.where, self.saved.format, self.saved.keras_version, self.saved.backend, "Sequential", name, [input_layer, *rest], [spec], [Ref(input_layer.name, 0, 0)], [previous])


MERGE = {"Concatenate", "Add", "Average", "Multiply"}


def _check_call_arity(layer, where):
    """Every call of a layer gets input tensors; a single-input Keras layer gets exactly one."""
    for call in layer.calls:
        if not call.inputs:
            raise LstmctlError(f"{where}: an inbound node has no input tensors")
        if layer.known and not layer.op and layer.model is None and layer.class_name not in MERGE and len(call.inputs) != 1:
            raise LstmctlError(f"{where}: {layer.class_name} takes one input tensor, an inbound node gives {len(call.inputs)}")


def _activation_name(value, key, where):
    if value is not None and not (isinstance(value, str) and value in ACTIVATION_NAMES):
        raise LstmctlError(f"{where}: {key} {_short(value)} is not a built-in Keras activation lstmctl knows")


def _check_dtype(cls, config, where):
    name = dtype_name(config.get("dtype"), where)
    if cls != "InputLayer" and name not in FLOAT_DTYPES:
        raise LstmctlError(f"{where}: compute dtype {name} is not supported")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_plain_config(cls, config, weights, where):
    """The config values `run` reads for a plain layer, checked once when the model is built."""
    if cls in ("Dense", "Activation"):
        _activation_name(config.get("activation", "linear" if cls == "Dense" else None), "activation", where)
        if cls == "Activation" and config.get("activation") is None:
            raise LstmctlError(f"{where}: Activation layer names no activation")
    elif cls == "Embedding":
        rows = weights[0].shape[0]
        dim = positive_int(config.get("input_dim"), f"{where}: input_dim")
        if dim != rows:
            raise LstmctlError(f"{where}: input_dim {dim} contradicts the embedding matrix's {rows} rows")
        if not isinstance(config.get("mask_zero", False), bool):
            raise LstmctlError(f"{where}: config 'mask_zero' must be true or false, got {_short(config.get('mask_zero'))}")
    elif cls == "Masking":
        if not _is_number(config.get("mask_value", 0.0)):
            raise LstmctlError(f"{where}: mask_value {_short(config.get('mask_value'))} is not a number")
    elif cls == "Concatenate":
        axis = config.get("axis", -1)
        if not _is_int(axis) or not -32 <= axis < 32:
            raise LstmctlError(f"{where}: axis {_short(axis)} is not an axis")
    elif cls == "RepeatVector":
        positive_int(config.get("n"), f"{where}: n", MAX_DIM)
    elif cls == "Reshape":
        target = config.get("target_shape")
        if not isinstance(target, list) or not target or len(target) > 32 or any(not _is_int(d) or not (d == -1 or 1 <= d <= MAX_DIM) for d in target):
            raise LstmctlError(f"{where}: target_shape {_short(target)} is not a list of positive integers")
        if target.count(-1) > 1:
            raise LstmctlError(f"{where}: target_shape {_short(target)} has more than one -1")


def build(saved: Saved) -> Model:
    if saved.config is None:
        from .infer import infer_model

        model = infer_model(saved)
    else:
        v3 = "" if isinstance(saved.store, KerasV3Store) else None
        model = Builder(saved).model(saved.config, None, v3, saved.path)
        model.notes.extend(saved.notes)
    h5 = getattr(saved.store, "h5", None)
    model.warnings.extend(h5.nonfinite if h5 is not None else [])
    model.notes.extend(model.warnings)
    return model
