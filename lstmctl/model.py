"""The model as plain data: a `Model` holds the layer graph a reader built (layers, their calls and
the tensors that link them) and offers the Python API on it (run, gates).

A `Layer` is one entry of a saved model's config with its weights attached; `spec` is the
layer type from lstmctl.layers that parsed it (None for an opaque layer, whose config is
never interpreted). Nothing here computes anything.
"""

import re
from dataclasses import dataclass, field

from .errors import LstmctlError


def config_flag(config: dict, key: str, where: str, default=False) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        text = repr(value)
        raise LstmctlError(f"{where}: config '{key}' must be true or false, got {text if len(text) <= 60 else text[:57] + '...'}")
    return value


@dataclass(frozen=True)
class Ref:
    """Output `index` of call `node` of layer `layer` (Keras's keras_history triple)."""

    layer: str
    node: int
    index: int


@dataclass
class Call:
    inputs: list  # list[Ref], the positional tensors
    initial_state: list  # list[Ref]
    mask: "Ref | None" = None  # Keras 3 records the mask a layer was called with
    explicit_mask: bool = False  # Keras 3 node: the mask is what `mask` says (or none), not inferred
    raw_args: list | None = None  # a keras.ops node's arguments, constants included
    kwargs: dict = field(default_factory=dict)  # the call's keyword arguments as saved (data)
    tensor_kwargs: dict = field(default_factory=dict)  # keyword -> list[Ref] for tensors passed by keyword


@dataclass
class InputSpec:
    name: str
    shape: tuple  # without batch; None where variable
    dtype: str
    batch: int | None = None  # a batch size the file fixes (an ONNX graph exported with static shapes)


@dataclass
class Layer:
    name: str
    class_name: str
    config: dict
    weights: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    spec: object = None  # the lstmctl.layers type that parsed it; None: opaque
    cell: object = None  # gates.Cell of a recurrent layer with one cell
    cells: list = field(default_factory=list)  # a stack of cells: one Layer per cell, named <layer>/cell_<k>
    forward: "Layer | None" = None  # Bidirectional
    backward: "Layer | None" = None
    inner: "Layer | None" = None  # TimeDistributed, and an RNN wrapper's single cell
    model: object = None  # nested Model
    notes: list = field(default_factory=list)
    node_offset: int = 0  # Keras 2 numbers a nested model's calls from 1 (node 0 is its own build)
    params: dict = field(default_factory=dict)  # what the spec parsed from the config, for call()
    trainable: bool = True

    @property
    def known(self) -> bool:
        return self.spec is not None

    @property
    def op(self) -> bool:
        return self.spec is not None and self.spec.kind == "op"

    @property
    def kind(self) -> str:
        """opaque | layer | op | model | recurrent | bidirectional."""
        return "opaque" if self.spec is None else self.spec.kind

    @property
    def is_recurrent(self) -> bool:
        return self.kind in ("recurrent", "bidirectional")

    def flag(self, key: str, default=False) -> bool:
        return config_flag(self.config, key, f"layer '{self.name}'", default)

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
        """A layer by name; `L/cell_<k>` names a cell of a stack, `L/forward` a Bidirectional's half."""
        for layer in self.walk():
            if layer.name == name:
                return layer
            for sub in _parts(layer):
                if sub.name == name:
                    return sub
        names = ", ".join(layer.name for layer in self.walk() if layer.class_name != "InputLayer" and not layer.op)
        raise LstmctlError(f"{self.path}: no layer named '{name}' (layers: {names})")

    def module_layers(self, name: str) -> list:
        """The layers one module of another framework became, in order (a torch nn.LSTM of
        num_layers > 1 is one layer per level, which run, --layer and --initial-state also take
        whole); [] when `name` names no such module."""
        return []

    def run(self, inputs=None, initial_state=None, layer=None, dtype=None, sequences=True, strict=False, layer_outputs=False, state=None):
        """Forward pass; returns the npz contract mapping (see lstmctl.runner.run). To stream a
        sequence in pieces, pass each result's `state` to the next call (`state={}` for the first)."""
        from . import runner  # the model is data; running it is the runner's (and no import circle)

        return runner.run(self, inputs, initial_state=initial_state, layer=layer, dtype=dtype, sequences=sequences, strict=strict, layer_outputs=layer_outputs, state=state)

    def probe_shapes(self, until: set | None = None) -> dict:
        """(layer, node) -> (input shapes, output shapes, masked), as inspect shows them (see lstmctl.runner.probe_shapes)."""
        from . import runner

        return runner.probe_shapes(self, until)

    def gates(self, layer=None) -> dict:
        """Named gate matrices under the `gates` npz contract."""
        from .analysis import describe

        return describe.gate_arrays(self, layer)

    def __repr__(self) -> str:
        recurrent = ", ".join(f"{layer.name} ({layer.class_name})" for layer in self.recurrent_layers()) or "none"
        return f"<lstmctl Model {self.name!r} from {self.path!r}: {len([lay for lay in self.walk() if not lay.op])} layers, recurrent: {recurrent}>"


def _parts(layer):
    """The named sub-layers of a recurrent layer: a Bidirectional's halves, a stack's cells."""
    for half in (layer.forward, layer.backward):
        if half is not None:
            yield half
            yield from _parts(half)
    yield from layer.cells


def keras_major(version: str | None, fmt: str) -> int:
    if version:
        match = re.match(r"\s*(\d+)", version)
        if match:
            return int(match.group(1))
    return 3 if fmt in ("keras-zip", "keras-weights") else 2


_SEPARATORS = re.compile(r"[/@]+")  # compiled once: a graph may name 10^5 nodes


class LayerNames:
    """Layer names for a graph format's nodes (ONNX, TFLite), as lstmctl's go: '/' and '@' become
    '.' (they separate parts of result keys), each unique (a taken or `reserved` name gets _1, _2,
    …), the first comers keeping their own: the graph's inputs. Linear in the number of names,
    however many repeat."""

    def __init__(self, reserved=()):
        self.used, self.suffix = set(reserved), {}

    def __call__(self, raw: str, fallback: str) -> str:
        name = _SEPARATORS.sub(".", raw).strip(".") or fallback
        name = name if name.isprintable() and len(name) <= 200 else fallback
        base, k = name, self.suffix.get(name, 1)
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.suffix[base] = k
        self.used.add(name)
        return name
