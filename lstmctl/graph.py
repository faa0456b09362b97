"""The layer graph as plain data: layers, their calls and the tensors that link them.

A `Layer` is one entry of a saved model's config with its weights attached; `spec` is the
layer type from lstmctl.layers that parsed it (None for an opaque layer, whose config is
never interpreted). Nothing here computes anything.
"""

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
