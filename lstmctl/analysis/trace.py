"""Every gate at every step of one recurrent layer, for one sample.

Keys (time, units): `<L>/gate_<g>` for g in i f c o (LSTM; gate_c is the candidate c̃) or z r h
(GRU; gate_h is h̃), `<L>/pre_<g>` (pre-activations, on request), `<L>/c` (LSTM) and `<L>/h`;
a Bidirectional layer inserts `/forward` or `/backward` after the layer name. Rows follow
`run`'s sequence: a plain layer's in the order Keras returns them (reversed for go_backwards),
a Bidirectional's backward half reversed, as Keras returns it. So `<L>/h` equals `run`'s `L/sequence` row for row.
A ConvLSTM's units are its filters: each gate, c and h is averaged over the spatial positions
(`<L>/h` is then `L/sequence` averaged over its spatial axes).
"""

import math
import re
from dataclasses import dataclass, field

import numpy as np

from .. import gates as gates_mod
from ..errors import LstmctlError, UsageError
from ..model import Model
from ..runner import run, run_layer

SATURATION = (0.1, 0.9)


@dataclass
class Trace:
    layer: str
    kind: str  # lstm | gru | simple_rnn
    units: np.ndarray  # the unit indices kept
    steps: np.ndarray  # the row indices kept
    sample: int
    arrays: dict  # contract keys -> (time, units)
    time_index: dict  # direction prefix -> input time index of each row
    directions: list  # "" for a plain layer, else "forward", "backward"
    notes: list = field(default_factory=list)
    initial: dict = field(default_factory=dict)  # <layer>[/<direction>]/h0, c0: the states the layer was given (units kept)

    @property
    def gate_names(self) -> tuple:
        return gates_mod.GATES[self.kind]

    def key(self, direction: str, name: str) -> str:
        return f"{self.layer}/{direction + '/' if direction else ''}{name}"

    def summary(self, direction: str = "") -> list:
        """Per unit: mean forget (LSTM f, GRU z) gate, saturated fraction per gate, memory half-life."""
        keep = {"lstm": "f", "gru": "z"}.get(self.kind)
        rows = []
        for j, unit in enumerate(self.units):
            row = {"unit": int(unit)}
            if keep:
                mean_keep = float(np.mean(self.arrays[self.key(direction, f"gate_{keep}")][:, j]))
                row[f"mean_{keep}"] = mean_keep
                row["half_life"] = half_life(mean_keep)
            for g in self.gate_names:
                if g in ("c", "h"):  # candidates are tanh-valued, not gates
                    continue
                values = self.arrays[self.key(direction, f"gate_{g}")][:, j]
                row[f"saturated_{g}"] = float(np.mean((values < SATURATION[0]) | (values > SATURATION[1])))
            rows.append(row)
        return rows


def half_life(mean_keep: float) -> float:
    """Steps for a memory multiplied by `mean_keep` each step to halve: ln(0.5) / ln(mean)."""
    if mean_keep >= 1.0:
        return math.inf
    if mean_keep <= 0.0:
        return 0.0
    return math.log(0.5) / math.log(mean_keep)


def parse_spec(spec: str | None, n: int, what: str) -> np.ndarray:
    """'0:8', '3', '1,4,7', '-5:', '::2' (Python slice syntax, comma-separated) -> indices."""
    if spec is None or spec.strip() == "":
        return np.arange(n)
    picked = []
    for part in spec.split(","):
        part = part.strip()
        if not re.fullmatch(r"-?\d*(:-?\d*){0,2}", part) or part == "":
            raise UsageError(f"--{what} '{spec}': use indices and slices like 0:8, 3, 1,4,7 or -5:")
        if ":" in part:
            bounds = [int(b) if b else None for b in part.split(":")]
            picked.extend(range(n)[slice(*bounds)])
        else:
            i = int(part)
            if not -n <= i < n:
                raise UsageError(f"--{what} {i} is out of range: there are {n}")
            picked.append(i % n)
    if not picked:
        raise UsageError(f"--{what} '{spec}' selects nothing out of {n}")
    return np.array(sorted(set(picked)))


def trace(model: Model, inputs=None, layer=None, sample=0, dtype=None, direct=False, initial_state=None, pre=False, units=None, steps=None) -> Trace:
    """Run the model (or, with `direct`, the layer alone) and keep layer `layer`'s gates."""
    target = model.layer(layer) if layer else only_recurrent(model)
    if not target.is_recurrent:
        raise LstmctlError(f"layer '{target.name}' is {target.class_name}, not a recurrent layer")
    for half in (target.forward, target.backward) if target.forward else (target,):
        if half.cells:
            raise UsageError(f"'{half.name}' is a stack of {len(half.cells)} cells: trace one cell, --layer {half.name}/cell_0 … {half.name}/cell_{len(half.cells) - 1}")
    if direct:
        result = run_layer(model, target.name, inputs, initial_state=initial_state, dtype=dtype, watch={target.name})
    else:
        result = run(model, inputs, initial_state=initial_state, layer=target.name if initial_state is not None else None, dtype=dtype, watch={target.name})
    seen = result.seen.get(target.name)
    if seen is None:
        raise LstmctlError(f"layer '{target.name}' was not reached while running the model")
    batch = seen["x"].value.shape[0]
    if not -batch <= sample < batch:
        raise UsageError(f"--sample {sample} is out of range: the input has {batch} samples")
    sample %= batch
    cell = (target.forward or target).cell
    directions = [""] if target.kind == "recurrent" else ["forward", "backward"]
    n_rows = seen["x"].value.shape[1]
    unit_idx = parse_spec(units, cell.units, "units")
    row_idx = parse_spec(steps, n_rows, "steps")
    arrays, time_index = {}, {}
    for direction in directions:
        sub = target if not direction else getattr(target, direction)
        records = seen["traces"][direction]
        produced = np.arange(n_rows)[::-1] if sub.flag("go_backwards") else np.arange(n_rows)
        # Rows as run reports them: a plain layer's and a forward half's as produced, a backward
        # half's reversed (as Bidirectional returns it).
        order = np.arange(n_rows)[::-1] if direction == "backward" else np.arange(n_rows)
        prefix = f"{target.name}/{direction + '/' if direction else ''}"
        seq_key = f"{target.name}/{direction}/sequence" if direction else f"{target.name}/sequence"
        rows = order[row_idx]
        time_index[direction] = produced[rows]
        for g in gates_mod.GATES[cell.kind]:
            arrays[f"{prefix}gate_{g}"] = _per_unit([records[t][0][g][1][sample] for t in rows], cell)[:, unit_idx]
            if pre:
                arrays[f"{prefix}pre_{g}"] = _per_unit([records[t][0][g][0][sample] for t in rows], cell)[:, unit_idx]
        if cell.kind == "lstm":
            arrays[f"{prefix}c"] = _per_unit([records[t][1][1][sample] for t in rows], cell)[:, unit_idx]
        sequence = result[seq_key][sample]
        arrays[f"{prefix}h"] = _per_unit(sequence[row_idx], cell)[:, unit_idx]
    initial = {}
    given = [np.asarray(a) for a in seen["states"]]
    if given:  # an initial_state (from the graph: an encoder's h_T, c_T; or --initial-state)
        names = list(cell.state_names)
        for d, direction in enumerate(directions):
            prefix = f"{target.name}/{direction + '/' if direction else ''}"
            for j, name in enumerate(names):
                state = given[d * len(names) + j][sample]
                if state.ndim == 1:
                    initial[f"{prefix}{name}0"] = state[unit_idx]
    notes = []
    spatial = result[seq_key].shape[3:] if getattr(cell, "channels_first", False) else result[seq_key].shape[2:-1]
    if spatial:
        notes.append(f"{(target.forward or target).class_name}: units are filters; each gate, c and h is its mean over the {int(np.prod(spatial))} spatial positions {tuple(spatial)}")
    if len(unit_idx) < cell.units:
        notes.append(f"units {_describe(unit_idx)} of {cell.units}")
    if len(row_idx) < n_rows:
        notes.append(f"steps {_describe(row_idx)} of {n_rows}")
    return Trace(target.name, cell.kind, unit_idx, row_idx, sample, arrays, time_index, directions, notes, initial)


def _per_unit(rows, cell) -> np.ndarray:
    """Rows of (units,) as (time, units); a ConvLSTM's rows of (*spatial, filters) (or (filters,
    *spatial), channels_first) averaged over the positions."""
    a = np.stack(rows)
    if getattr(cell, "channels_first", False):
        a = np.moveaxis(a, 1, -1)
    return a.reshape(len(a), -1, a.shape[-1]).mean(axis=1)


def _describe(idx) -> str:
    if len(idx) > 1 and np.all(np.diff(idx) == 1):
        return f"{idx[0]}..{idx[-1]}"
    return ",".join(str(i) for i in idx[:8]) + ("…" if len(idx) > 8 else "")


def only_recurrent(model: Model):
    layers = model.recurrent_layers()
    if len(layers) == 1:
        return layers[0]
    names = ", ".join(layer.name for layer in layers) or "none"
    raise UsageError(f"choose a layer with --layer (recurrent layers: {names})")
