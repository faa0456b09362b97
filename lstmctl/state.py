"""Carried recurrent state: every recurrent layer's final states after a run, to start the next run
from, as a `stateful=True` Keras model carries them between calls (a sequence streamed in pieces).

A `State` maps a layer key (its name; `name@n` for a shared layer's later calls) to the layer's
states in the order its `initial_state` takes them: h (and c) for one direction, a stack's cells
bottom up, a Bidirectional's forward then backward. Its file form is an .npz of
`<key>/<state name>` arrays (`lstm/h`, `bi/backward/c`, `rnn/cell_1/h`) and `__model__`, the
model's fingerprint, so that a state cannot be fed to another model silently.
"""

import numpy as np

from .errors import LstmctlError, UsageError, first_bad, show
from .layers.recurrent import state_names

FINGERPRINT_KEY = "__model__"


def fingerprint(model) -> str:
    """SHA-256 of the model's layers (names, kinds) and weights: the same for the same model in
    another container (.h5 and .keras), different for other weights. Cached on the model."""
    cached = getattr(model, "_fingerprint", None)
    if cached is None:
        import hashlib  # here: a run that carries no state does not load OpenSSL (2.5 ms of start-up)

        digest = hashlib.sha256()
        for layer in model.walk():
            digest.update(f"{layer.name}\0{layer.class_name}\0{len(layer.weights)}\0".encode())
            for w in layer.weights:
                a = np.ascontiguousarray(w)
                digest.update(f"{a.dtype.str}{a.shape}".encode())
                digest.update(a.data)
        cached = model._fingerprint = digest.hexdigest()
    return cached


def layer_states(model) -> dict:
    """Key -> the state names a run carries for it, for every call of every recurrent layer."""
    out = {}
    for layer in model.walk():
        if not layer.is_recurrent:
            continue
        names = [f"{d}/{n}" for d in ("forward", "backward") for n in state_names(getattr(layer, d))] if layer.forward else state_names(layer)
        for n in range(max(1, len(layer.calls))):
            out[layer.name + (f"@{n}" if n else "")] = names
    return out


class State(dict):
    """Key -> tuple of state arrays (see the module docstring); `model` is the model it belongs to."""

    def __init__(self, model, states=()):
        super().__init__(states)
        self.model = model

    @property
    def batch(self) -> int | None:
        sizes = {a.shape[0] for states in self.values() for a in states}
        return sizes.pop() if len(sizes) == 1 else None

    def arrays(self) -> dict:
        """The file form: `<key>/<state name>` -> array, and the model's fingerprint."""
        names = layer_states(self.model)
        out = {f"{key}/{name}": np.asarray(a) for key, states in self.items() for name, a in zip(names[key], states)}
        out[FINGERPRINT_KEY] = np.frombuffer(bytes.fromhex(fingerprint(self.model)), np.uint8)
        return out

    def rows(self, start: int, stop: int) -> "State":
        """The states of samples start..stop (a chunk of a streamed run)."""
        return State(self.model, {k: tuple(a[start:stop] for a in states) for k, states in self.items()})


def concatenate(parts: list) -> "State":
    """The states of consecutive chunks of samples, joined along the batch."""
    return State(parts[0].model, {k: tuple(np.concatenate(arrays, axis=0) for arrays in zip(*(p[k] for p in parts))) for k in parts[0]})


def from_arrays(arrays: dict, model, where: str, layer: str | None = None) -> State:
    """A State from its file form, checked against `model`: the same fingerprint, a state for every
    recurrent layer (or for `layer` only) and nothing else, finite floats, one batch size."""
    mark = arrays.get(FINGERPRINT_KEY)
    if mark is None:
        raise LstmctlError(f"{where}: not a state file written by `lstmctl run --state-out` (no '{FINGERPRINT_KEY}' array)")
    if mark.dtype != np.uint8 or mark.shape != (32,) or bytes(mark).hex() != fingerprint(model):
        raise LstmctlError(f"{where}: holds the state of another model (its fingerprint is not {show(model.path)}'s); start without --state-in, or give that model")
    expected = layer_states(model)
    if layer is not None:
        expected = {layer: expected[layer]}
    states, batch = {}, None
    for key, names in expected.items():
        missing = [f"{key}/{n}" for n in names if f"{key}/{n}" not in arrays]
        if missing:
            raise LstmctlError(f"{where}: no state '{show(missing[0])}' for layer '{show(key)}' (the model's states: {', '.join(f'{k}/{n}' for k, ns in expected.items() for n in ns)})")
        values = []
        for n in names:
            name = f"{key}/{n}"
            a = arrays[name]
            if a.dtype.kind != "f" or a.ndim < 2:
                raise LstmctlError(f"{where}: state '{show(name)}' has dtype {a.dtype} and shape {a.shape}, not (batch, …) floats")
            first_bad(~np.isfinite(a), a, f"{where}: state '{show(name)}' is not finite", "is not")
            if batch is not None and a.shape[0] != batch:
                raise LstmctlError(f"{where}: state '{show(name)}' holds {a.shape[0]} samples, the others {batch}")
            batch = a.shape[0]
            values.append(a)
        states[key] = tuple(values)
    extra = sorted(set(arrays) - {FINGERPRINT_KEY} - {f"{k}/{n}" for k, ns in expected.items() for n in ns})
    if extra:
        raise LstmctlError(f"{where}: state '{show(extra[0])}' belongs to no recurrent layer of {show(model.path)}")
    return State(model, states)


def check_batch(state: State, batch: int):
    """A carried state fits inputs of its own batch size only."""
    if state and state.batch != batch:
        raise UsageError(f"the carried state holds {state.batch} samples and the input {batch}: give the same samples, in the same order, in every piece")
