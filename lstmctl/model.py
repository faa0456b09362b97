"""A saved Keras model as plain Python objects: its layers, inputs and outputs, and the calls
the Python API offers on it (run, gates)."""

from dataclasses import dataclass, field

from . import describe, runner
from .config import keras_major
from .errors import LstmctlError
from .graph import Layer


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

    def run(self, inputs=None, initial_state=None, layer=None, dtype=None, sequences=True, strict=False, layer_outputs=False):
        """Forward pass; returns the npz contract mapping (see lstmctl.runner.run)."""
        return runner.run(self, inputs, initial_state=initial_state, layer=layer, dtype=dtype, sequences=sequences, strict=strict, layer_outputs=layer_outputs)

    def gates(self, layer=None) -> dict:
        """Named gate matrices under the `gates` npz contract."""
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
