"""Building a Model from a saved config and its weights.

Layer classes are matched against the registry of lstmctl.layers; anything else is kept as an
opaque layer (listed, its weights counted, its config never interpreted). Weights are attached
the way Keras itself assigns them: by position under class-named groups in Keras 3 files, by
`layer_names` / `weight_names` in legacy HDF5 files.
"""

from .. import config as cfg
from ..errors import LstmctlError
from ..layers import REGISTRY, is_op, op_type
from ..layers.base import NESTED_MODEL, entry_weight_count
from ..model import Call, InputSpec, Layer, Model, Ref, keras_major
from .saved import KerasV3Store, LayerStore, Saved

MODEL_CLASSES = {"Sequential", "Functional", "Model"}


def _expected_count(entry, where) -> int | None:
    """How many arrays a layer keeps in a legacy file; None for layers not interpreted."""
    cfg.entry_config(entry, where)
    if is_op(entry):
        return 0
    if entry["class_name"] in MODEL_CLASSES:
        total = 0
        for inner in _model_layer_entries(entry["config"], where):
            n = _expected_count(inner, where)
            if n is None:
                return None
            total += n
        return total
    return entry_weight_count(entry, where)


def _model_layer_entries(config, where) -> list:
    layers = config if isinstance(config, list) else config.get("layers")
    if not isinstance(layers, list):
        raise LstmctlError(f"{where}: model config has no layers list")
    return layers


def _check_call_arity(layer, where):
    """Every call of a layer gets input tensors; a single-input Keras layer gets exactly one."""
    for call in layer.calls:
        if not call.inputs:
            raise LstmctlError(f"{where}: an inbound node has no input tensors")
        if layer.spec is not None and not layer.op and layer.spec.n_inputs == 1 and len(call.inputs) != 1:
            raise LstmctlError(f"{where}: {layer.class_name} takes one input tensor, an inbound node gives {len(call.inputs)}")


class Builder:
    def __init__(self, saved: Saved):
        self.saved = saved
        self.where = saved.path
        self.major = keras_major(saved.keras_version, saved.format)
        self.v3 = isinstance(saved.store, KerasV3Store)
        self._v3_paths = {}  # id(layer) -> its group in a Keras 3 store, for wrappers' inner layers

    def v3_path_of(self, layer) -> str:
        return self._v3_paths[id(layer)]

    # --- layers --------------------------------------------------------------------------

    def layer(self, entry, weights, v3_path, where) -> Layer:
        """Build one layer. `weights` is a list (legacy) or None with `v3_path` (Keras 3 store)."""
        cls = entry["class_name"]
        config = cfg.entry_config(entry, where)
        name = cfg.entry_name(entry, where)
        where = f"{self.where}: layer '{name}'"
        if is_op(entry):
            return Layer(name, cls, config, [], spec=op_type(cls))
        foreign = cfg.foreign(entry)
        if cls in MODEL_CLASSES and not foreign:
            sub = self.model(entry, weights, v3_path, where)
            return Layer(name, cls, config, [], spec=NESTED_MODEL, model=sub, node_offset=1 if self.major < 3 else 0)
        spec = REGISTRY.get(cls)
        if spec is None or foreign:
            # Opaque: the config is never interpreted (a Lambda's code is never decoded).
            arrays = weights if weights is not None else (self.saved.store.all_arrays(v3_path) if v3_path else [])
            note = f"{cls} from {foreign} is a custom class" if foreign else f"{cls} is not on lstmctl's allow-list"
            return Layer(name, cls, {}, list(arrays), notes=[f"{note}; shown as opaque"])
        if weights is None:
            weights = spec.v3_weights(self.saved.store, v3_path, config) if v3_path is not None else []
        layer = Layer(name, cls, config, list(weights or []), spec=spec, trainable=cfg.flag(config, "trainable", where, True))
        layer.params["dtype"] = spec.compute_dtype(config, where)
        self._v3_paths[id(layer)] = v3_path
        spec.build(self, layer, entry, where)
        return layer

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
            raise LstmctlError(f"{where}: model class {cfg.short(cls)} is not Sequential or Functional")
        foreign = cfg.foreign(top) if isinstance(top, dict) else None
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
            cfg.entry_config(entry, where)
            path = None
            if v3_path is not None:
                key = cfg.snake_case(entry["class_name"] if entry["class_name"] != "Model" else "Functional")
                n = used.get(key)
                used[key] = 0 if n is None else n + 1
                path = f"{v3_path}/layers/{key}" + (f"_{used[key]}" if n is not None else "")
            layers.append(self.layer(entry, legacy[i], path, where))
        seen = set()
        dupes = {layer.name for layer in layers if layer.name in seen or seen.add(layer.name)}
        if dupes:
            raise LstmctlError(f"{where}: duplicate layer names {sorted(dupes)}")
        if cls == "Sequential":
            return self._sequential(name, config, entries, layers, where)
        by_name = {layer.name: layer for layer in layers}
        for entry, layer in zip(entries, layers):
            if layer.class_name != "InputLayer":
                layer.calls = cfg.calls(entry, layer.is_recurrent, where)
                _check_call_arity(layer, f"{self.where}: layer '{layer.name}'")
        input_refs = cfg.io_refs(config.get("input_layers"), where)
        outputs = cfg.io_refs(config.get("output_layers"), where)
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
        if not isinstance(store, LayerStore):
            return [None] * len(entries)
        if weights is None:  # top level: one HDF5 group per layer
            groups = set(store.layer_names())
            return [store.layer_weights(name) if (name := cfg.entry_name(e, where)) in groups else [] for e in entries]
        counts = [_expected_count(e, where) for e in entries]
        if None in counts:
            raise LstmctlError(f"{where}: a nested model holds a layer lstmctl does not interpret; its weights cannot be assigned")
        out, pos = [], 0
        for n in counts:
            out.append(weights[pos : pos + n])
            pos += n
        if pos != len(weights):
            raise LstmctlError(f"{where}: the nested model holds {len(weights)} weight arrays, its config needs {pos}")
        return out

    def _input_spec(self, layer, where) -> InputSpec:
        config = layer.config
        shape = config.get("batch_shape", config.get("batch_input_shape"))
        if shape is None and "shape" in config:
            shape = [None, *config["shape"]] if isinstance(config["shape"], list) else None
        return InputSpec(layer.name, cfg.shape(shape, f"{where}: input '{layer.name}'"), cfg.dtype_name(config.get("dtype"), where))

    def _sequential(self, name, config, entries, layers, where) -> Model:
        if layers and layers[0].class_name == "InputLayer":
            input_layer, rest = layers[0], layers[1:]
        else:
            first = entries[0] if entries else {}
            first_config = cfg.entry_config(first, where) if entries else {}
            shape = first_config.get("batch_input_shape", first_config.get("batch_shape"))
            if shape is None and first_config.get("input_dim") is not None:  # Keras 1
                shape = [None, first_config.get("input_length"), first_config["input_dim"]]
            if shape is None:
                build = config.get("build_input_shape")
                shape = build if isinstance(build, list) else None
            if shape is None:
                raise LstmctlError(f"{where}: Sequential model declares no input shape")
            input_name = f"{layers[0].name}_input" if layers else "input"
            dtype = first_config.get("dtype", first_config.get("input_dtype"))  # Keras 1 wrote input_dtype
            input_layer = Layer(input_name, "InputLayer", {"batch_shape": shape, "dtype": dtype}, spec=REGISTRY["InputLayer"])
            rest = layers
        previous = Ref(input_layer.name, 0, 0)
        for layer in rest:
            layer.calls = [Call([previous], [])]
            previous = Ref(layer.name, layer.node_offset, 0)
        spec = self._input_spec(input_layer, where)
        return Model(self.where, self.saved.format, self.saved.keras_version, self.saved.backend, "Sequential", name, [input_layer, *rest], [spec], [Ref(input_layer.name, 0, 0)], [previous])


def build(saved: Saved) -> Model:
    if saved.config is None:
        from .infer import infer_model  # weights-only files only

        model = infer_model(saved)
    else:
        model = Builder(saved).model(saved.config, None, "" if isinstance(saved.store, KerasV3Store) else None, saved.path)
    model.notes.extend(saved.notes)
    h5 = getattr(saved.store, "h5", None)
    model.warnings.extend(h5.nonfinite if h5 is not None else [])
    model.notes.extend(model.warnings)
    return model
