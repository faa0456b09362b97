"""What-if runs: the same weights with another activation, gate activation, hard_sigmoid form or
forget-gate bias, on every recurrent layer or on one. `run`, `trace` and `diagnose` take them as
--activation, --recurrent-activation, --hard-sigmoid and --forget-bias, e.g. to see a Keras 3
file's numbers with Keras 2's hard_sigmoid. The model read from the file is left as it is.
"""

import copy
import dataclasses

import numpy as np

from ..errors import UsageError
from ..kernels import ACTIVATION_NAMES

HARD_SIGMOID = {"keras2": (2, "Keras 2's clip(0.2·x + 0.5, 0, 1)"), "keras3": (3, "Keras 3's clip(x/6 + 0.5, 0, 1)")}


def _cell(cell, activation, recurrent_activation, hard_sigmoid, forget_bias):
    """A new cell (never the old one changed: the fast path caches prepared weights on it)."""
    changes = {}
    if activation is not None:
        changes["activation_name"] = activation
    if recurrent_activation is not None and cell.kind != "simple_rnn":
        changes["recurrent_activation_name"] = recurrent_activation
    if hard_sigmoid is not None:
        changes["keras_major"] = HARD_SIGMOID[hard_sigmoid][0]
    if forget_bias is not None and cell.kind == "lstm":
        u = cell.units
        bias = np.zeros(4 * u, cell.W.dtype) if cell.bias is None else cell.bias.astype(cell.bias.dtype, copy=True)
        bias[u : 2 * u] += forget_bias  # Keras's f block
        changes["bias"] = bias
    return dataclasses.replace(cell, **changes)


def _layer(layer, edit):
    new = copy.copy(layer)
    if layer.cell is not None:
        new.cell = edit(layer.cell)
    new.cells = [_layer(c, edit) for c in layer.cells]
    for part in ("forward", "backward", "inner"):
        if getattr(layer, part) is not None:
            setattr(new, part, _layer(getattr(layer, part), edit))
    return new


def _model(model, edit, names):
    """A copy of `model` whose recurrent layers (those named in `names`, when given) are edited,
    nested models' included."""

    def one(layer):
        if layer.model is not None:
            new_layer = copy.copy(layer)
            new_layer.model = _model(layer.model, edit, names)
            return new_layer
        if layer.is_recurrent and (names is None or layer.name in names):
            return _layer(layer, edit)
        return layer

    new = copy.copy(model)
    new.layers = [one(layer) for layer in model.layers]
    new.notes = list(model.notes)
    return new


def override(model, activation=None, recurrent_activation=None, hard_sigmoid=None, forget_bias=None, layer=None):
    """`model` with the recurrent layers' cells changed as asked (all of them, or `layer`'s), and a
    note saying what; `model` itself when nothing is asked."""
    asked = {"activation": activation, "recurrent_activation": recurrent_activation, "hard_sigmoid": hard_sigmoid, "forget_bias": forget_bias}
    if all(v is None for v in asked.values()):
        return model
    for what in ("activation", "recurrent_activation"):
        if asked[what] is not None and asked[what] not in ACTIVATION_NAMES:
            raise UsageError(f"{what} {asked[what]!r} is not a Keras activation lstmctl knows ({', '.join(ACTIVATION_NAMES)})")
    if hard_sigmoid is not None and hard_sigmoid not in HARD_SIGMOID:
        raise UsageError(f"hard_sigmoid must be keras2 or keras3, got {hard_sigmoid!r}")
    if forget_bias is not None and (isinstance(forget_bias, bool) or not np.isfinite(forget_bias)):
        raise UsageError(f"forget_bias must be a finite number, got {forget_bias!r}")
    targets = [model.layer(layer)] if layer else model.recurrent_layers()
    if not targets or not all(t.is_recurrent for t in targets):
        raise UsageError(f"{model.path}: " + (f"layer '{layer}' is not recurrent" if layer else "no recurrent layer to change"))
    kinds = {c.kind for t in targets for c in _cells(t)}
    if forget_bias is not None and "lstm" not in kinds:
        raise UsageError(f"{model.path}: --forget-bias changes an LSTM's forget gate; {'this layer is' if layer else 'the recurrent layers are'} {', '.join(sorted(kinds))}")
    new = _model(model, lambda c: _cell(c, activation, recurrent_activation, hard_sigmoid, forget_bias), {layer} if layer else None)
    said = []
    if activation is not None:
        said.append(f"activation {activation}")
    if recurrent_activation is not None:
        said.append(f"recurrent_activation {recurrent_activation}")
    if hard_sigmoid is not None:
        said.append(f"hard_sigmoid as {HARD_SIGMOID[hard_sigmoid][1]}")
    if forget_bias is not None:
        said.append(f"forget_bias {forget_bias!r} added to every LSTM's b_f")
    where = f"layer '{layer}'" if layer else "every recurrent layer"
    new.notes.insert(0, f"what-if: {', '.join(said)} on {where}; these are not the numbers of the file as saved")
    return new


def _cells(layer):
    if layer.cell is not None:
        yield layer.cell
    for part in (*layer.cells, layer.forward, layer.backward, layer.inner):
        if part is not None:
            yield from _cells(part)
