"""The report's data: everything the page shows, as JSON-able values (what `report --format json` writes).
"""

import math
import re

import numpy as np

from ...analysis.describe import inspect_facts, run_selection
from ...analysis.trace import SATURATION, trace
from ...errors import LstmctlError, UsageError
from ...gates import GATE_NAMES
from ...runner import random_inputs
from .. import diagram
from ..console import MAX_HEAT_COLUMNS, MAX_HEAT_ROWS, bin_mean

MAX_SAMPLES = 4  # samples whose traces are precomputed (the first ones, and --sample)
MAX_WEIGHT_ROWS, MAX_WEIGHT_COLUMNS = 24, 32  # W and U heatmaps are binned beyond these
MAX_TABLE_VALUES = 16  # an output or state shows this many values per sample, the rest summarised
TRACE_CELL_BUDGET = 16000  # trace heatmap cells on a whole page: beyond it, each heatmap is binned more coarsely


def json_float(x):
    """A float for JSON: finite values as they are, others as the strings 'nan', 'inf', '-inf'."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if x != x else ("inf" if x > 0 else "-inf")


def _clean(obj):
    """`obj` with every float made JSON-safe (see json_float) and NumPy scalars and arrays made Python."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return json_float(obj)
    return obj


def _slugs(names) -> dict:
    """A distinct id-safe slug per name: letters, digits, '_' and '-' kept, runs of others as '-'."""
    out, used = {}, set()
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "layer"
        slug, k = base, 2
        while slug in used:
            slug, k = f"{base}-{k}", k + 1
        used.add(slug)
        out[name] = slug
    return out


def _limits(rows: int, cols: int, max_rows: int, max_cols: int, max_cells: int | None) -> tuple:
    """Bins per axis: at most max_rows × max_cols, and both scaled down alike to max_cells."""
    rows, cols = max(1, min(rows, max_rows)), max(1, min(cols, max_cols))
    if max_cells and rows * cols > max_cells:
        scale = math.sqrt(max_cells / (rows * cols))
        rows, cols = max(1, int(rows * scale)), max(1, int(cols * scale))
    return rows, cols


def _grid(values: np.ndarray, max_rows: int, max_cols: int, transpose: bool, max_cells: int | None = None, words=("rows", "columns")) -> dict:
    """A heatmap's cells. `values` is (steps, units) for a trace (`transpose`: a row per unit, a
    column per step) or (rows, units) for a weight matrix (a row per row). Binned by averaging
    beyond max_rows × max_cols (render.bin_mean, as trace's heatmaps are); each bin's index range
    [start, stop) is kept."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    notes = []
    if a.ndim > 2:  # a ConvLSTM's kernel (*kernel, in, filters) or a trace's spatial axes: one row per position
        notes.append(f"shape {tuple(a.shape)} shown with its leading axes flattened to {int(np.prod(a.shape[:-1]))} {words[0]}")
        a = a.reshape(-1, a.shape[-1])
    if transpose:
        a = a.T  # rows: units, columns: steps
    max_rows, max_cols = _limits(a.shape[0], a.shape[1], max_rows, max_cols, max_cells)
    grid, r_edges = bin_mean(a, max_rows, 0) if a.shape[0] else (a, np.array([0, 0]))
    grid, c_edges = bin_mean(grid, max_cols, 1) if a.shape[1] else (grid, np.array([0, 0]))
    if len(r_edges) - 1 < a.shape[0]:
        notes.append(f"{a.shape[0]} {words[0]} shown as {len(r_edges) - 1} rows, each the mean of ~{a.shape[0] / (len(r_edges) - 1):.1f}")
    if len(c_edges) - 1 < a.shape[1]:
        notes.append(f"{a.shape[1]} {words[1]} shown as {len(c_edges) - 1} columns, each the mean of ~{a.shape[1] / (len(c_edges) - 1):.1f}")
    return {
        "shape": list(a.shape),
        "rows": [[int(s), int(e)] for s, e in zip(r_edges[:-1], r_edges[1:])],
        "columns": [[int(s), int(e)] for s, e in zip(c_edges[:-1], c_edges[1:])],
        "values": grid.tolist(),
        "binned": bool(notes),
        "notes": notes,
    }


def _trace_names(tr) -> list:
    return [f"gate_{g}" for g in tr.gate_names] + (["c"] if tr.kind == "lstm" else []) + ["h"]


def _trace_title(name: str) -> str:
    if name.startswith("gate_"):
        g = name.removeprefix("gate_")
        return f"{g}: {GATE_NAMES[g]}"
    return "c_t (cell state)" if name == "c" else "h_t (hidden state)"


def _diverging(name: str) -> bool:
    """render_trace's rule: gates on 0 … 1; candidates (c̃, h̃), c_t and h_t on −1 … 1."""
    return not name.startswith("gate_") or name.removeprefix("gate_") in ("c", "h")


def _parts(layer, rec) -> list:
    """The sub-sections of a recurrent layer: one for a plain layer, one per direction of a
    Bidirectional, one per cell of a stack. `prefix` is the key prefix of its gate matrices,
    `trace` the (layer to trace, direction) that gives its trace."""
    if "directions" in rec:
        out = []
        for d in ("forward", "backward"):
            half, sub = getattr(layer, d), rec["directions"][d]
            if "cells" in sub:
                for k, cf in enumerate(sub["cells"]):
                    name = half.cells[k].name
                    out.append({"label": f"{d} {name.rsplit('/', 1)[-1]} ({cf['class_name']})", "suffix": f"{d}-cell_{k}", "facts": cf, "prefix": name, "trace": (name, "")})
            else:
                out.append({"label": d, "suffix": d, "facts": sub, "prefix": half.name, "trace": (layer.name, d)})
        return out
    if "cells" in rec:
        return [
            {"label": f"{cf['name'].rsplit('/', 1)[-1]} ({cf['class_name']}) → {cf.get('feeds', '')}", "suffix": f"cell_{k}", "facts": cf, "prefix": layer.cells[k].name, "trace": (layer.cells[k].name, "")}
            for k, cf in enumerate(rec["cells"])
        ]
    return [{"label": "", "suffix": "", "facts": rec, "prefix": layer.name, "trace": (layer.name, "")}]


def _value_table(key: str, label: str, array: np.ndarray, samples: list) -> dict:
    """An output or state for the page: its shape and statistics, and per shown sample up to
    MAX_TABLE_VALUES values (the first ones and the last four when there are more)."""
    a = np.asarray(array)
    if a.ndim == 0:  # a reduction over the batch too: one value, shown as one sample's
        a = a[None]
    samples = [s for s in samples if s < a.shape[0]] or ([0] if a.shape[0] else [])  # an op may have reshaped the batch away
    per = a.shape[1:]
    n = int(np.prod(per)) if per else 1
    if n <= MAX_TABLE_VALUES:
        flat = list(range(n))
    else:
        flat = list(range(MAX_TABLE_VALUES - 4)) + list(range(n - 4, n))
    index = [list(map(int, np.unravel_index(i, per))) if per else [] for i in flat]
    finite = a[np.isfinite(a)] if a.size else a
    return {
        "key": key,
        "label": label,
        "shape": list(a.shape),
        "dtype": str(a.dtype),
        "stats": {
            "min": json_float(finite.min()) if finite.size else "nan",
            "max": json_float(finite.max()) if finite.size else "nan",
            "mean": json_float(finite.mean()) if finite.size else "nan",
            "nonfinite": int(a.size - finite.size),
        },
        "index": index,
        "summarised": n > len(flat),
        "rows": [{"sample": s, "values": [json_float(v) for v in a[s].reshape(-1)[flat]] if per else [json_float(a[s])]} for s in samples],
    }


def build_report(model, inputs=None, layers=None, sample=0) -> dict:
    """The report's data (JSON-able): what `--format json` writes and render_html draws.

    inputs: as Model.run takes them (an array, or a dict by input name); None: a seeded
    (seed 0) standard-normal input of the model's shape, and a note saying so. layers: the
    recurrent layers to show (default all). sample: the sample selected first; traces are
    computed for the first MAX_SAMPLES samples and this one."""
    facts = inspect_facts(model)
    slugs = _slugs([f["name"] for f in facts["layers"]])
    recurrent = _chosen_layers(facts, layers)
    run = _Run(model, inputs, sample)
    # Each part's heatmaps (at most 6: four gates, c, h) for each shown sample share the budget.
    n_maps = 6 * len(run.shown) * sum(len(_parts(model.layer(lf["name"]), lf["recurrent"])) for lf in recurrent)
    max_cells = max(64, TRACE_CELL_BUDGET // n_maps) if n_maps else None
    shown = run.shown
    return _clean({
        "report": 1,
        "facts": {k: facts[k] for k in ("file", "format", "format_description", "keras_version", "backend", "hard_sigmoid", "params", "model", "notes", "inferred")},
        "input": {"given": inputs is not None, "seed": None if inputs is not None else 0, "arrays": run.arrays, "batch": run.batch},
        "samples": {"batch": run.batch, "shown": shown, "selected": shown[shown.index(run.sample)] if run.sample in shown else (shown[0] if shown else None), "max": MAX_SAMPLES},
        "notes": run.notes,
        "graph": _graph(facts, slugs, {f["name"] for f in recurrent}),
        "layers": [_section(model, lf, slugs, run, max_cells) for lf in recurrent],
        **_values(model, run, recurrent),
        "saturation": list(SATURATION),
    })


def _chosen_layers(facts, layers) -> list:
    """The facts of the recurrent layers to show: all, or those --layer names."""
    recurrent = [f for f in facts["layers"] if "recurrent" in f]
    if layers:
        known = {f["name"] for f in recurrent}
        for name in layers:
            if name not in known:
                raise UsageError(f"--layer {name!r} is not a recurrent layer of the model (recurrent layers: {', '.join(sorted(known)) or 'none'})")
        recurrent = [f for f in recurrent if f["name"] in set(layers)]
    return recurrent


class _Run:
    """The model run once on the page's input (given, or seeded random), the samples shown, and
    each (layer, sample) trace computed once, on demand."""

    def __init__(self, model, inputs, sample):
        self.model, self.notes, self.arrays = model, [], []
        self.x, self.result, self.batch, self.shown, self.sample = inputs, None, 0, [], sample
        self._traces = {}  # (layer to trace, sample) -> Trace, or the message of why it could not be traced
        if self.x is None and model.inputs:
            self.x = random_inputs(model, seed=0)
            self.notes.append("no --input given: a random standard-normal input (seed 0) of the model's shape was used")
        elif self.x is None:
            self.notes.append("a weights-only file has no input layer: no traces or outputs (give a full model)")
        if self.x is not None:
            self._run()

    def _run(self):
        x = self.x
        named = x if isinstance(x, dict) else {(self.model.inputs[0].name if self.model.inputs else "input"): x}
        self.arrays = [{"name": k, "shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)} for k, v in named.items()]
        self.result = self.model.run(x)
        self.notes.extend(f"warning: {w}" for w in getattr(self.result, "warnings", []) or [])
        self.batch = batch = int(np.shape(next(iter(named.values())))[0])
        if batch:
            if not -batch <= self.sample < batch:
                raise UsageError(f"--sample {self.sample} is out of range: the input has {batch} samples")
            self.sample %= batch
            self.shown = list(range(min(batch, MAX_SAMPLES)))
            if self.sample not in self.shown:
                self.shown.append(self.sample)
            if batch > len(self.shown):
                self.notes.append(f"the input holds {batch} samples; traces are precomputed for samples {', '.join(map(str, self.shown))} only (--sample N adds another)")

    def trace(self, name, s):
        if (name, s) not in self._traces:
            try:
                self._traces[name, s] = trace(self.model, self.x, name, sample=s)
            except LstmctlError as exc:
                self._traces[name, s] = str(exc)
        return self._traces[name, s]


def _section(model, lf, slugs, run, max_cells) -> dict:
    """One recurrent layer's section: its flags and returns, and a part per direction or cell."""
    layer = model.layer(lf["name"])
    rec = lf["recurrent"]
    matrices = model.gates(layer.name)
    parts = []
    for part in _parts(layer, rec):
        cf = part["facts"]
        parts.append({
            "label": part["label"],
            "id": f"layer-{slugs[lf['name']]}" + (f"-{part['suffix']}" if part["suffix"] else ""),
            "prefix": part["prefix"],
            "cell": {k: cf[k] for k in ("units", "input_dim", "activation", "recurrent_activation", "kernel_shape", "recurrent_kernel_shape", "bias_shape", "equations", "gates", "forget_bias", "hard_sigmoid", "reset_after", "class_name", "feeds") if k in cf},
            "weights": _weights(matrices, part["prefix"]),
            "samples": [_sample(run.trace(part["trace"][0], s), s, part["trace"][1], max_cells) for s in run.shown],
        })
    return {
        "name": lf["name"],
        "class_name": lf["class_name"],
        "id": f"layer-{slugs[lf['name']]}",
        "flags": {k: rec.get(k) for k in ("return_sequences", "return_state", "go_backwards", "stateful", "masked_input", "merge_mode") if k in rec},
        "returns": rec.get("returns", []),
        "notes": list(lf["notes"]),
        "parts": parts,
    }


def _weights(matrices, prefix) -> list:
    """The W and U heatmaps of one part (gate matrices under `prefix`)."""
    out = []
    for key, value in matrices.items():
        head, _, leaf = key.rpartition("/")
        if head == prefix and leaf.split("_")[0] in ("W", "U"):
            out.append({"key": key, "name": leaf, "grid": _grid(value, MAX_WEIGHT_ROWS, MAX_WEIGHT_COLUMNS, transpose=False, words=("rows", "units"))})
    return out


def _sample(tr, s, d, max_cells) -> dict:
    """One sample's trace of one part (direction `d`): heatmaps, initial states, summary."""
    if isinstance(tr, str):
        return {"sample": s, "error": tr}
    heat = []
    for name in _trace_names(tr):
        key = tr.key(d, name)
        heat.append({"key": key, "name": name, "title": _trace_title(name), "diverging": _diverging(name), "grid": _grid(tr.arrays[key], MAX_HEAT_ROWS, MAX_HEAT_COLUMNS, transpose=True, max_cells=max_cells, words=("units", "steps"))})
    prefix = tr.key(d, "")
    initial = {k[len(prefix):]: v for k, v in tr.initial.items() if k.startswith(prefix) and "/" not in k[len(prefix):]}
    return {
        "sample": s,
        "layer": tr.layer,
        "direction": d,
        "steps": len(tr.steps),
        "units": len(tr.units),
        "time_index": tr.time_index[d].tolist(),
        "notes": list(tr.notes),
        "initial": {k: np.ravel(v).tolist() for k, v in initial.items()},
        "heatmaps": heat,
        "summary": tr.summary(d),
    }


def _values(model, run, recurrent) -> dict:
    """The model's outputs and the shown layers' final states, for the shown samples."""
    outputs, states = [], []
    if run.result is not None:
        result, rows = run.result, run.shown
        outputs = [_value_table(k, label, result[k], rows) for k, label in run_selection(model, result)]
        chosen = {f["name"] for f in recurrent}
        for key, label in run_selection(model, result, return_state=True):
            owner = next((n for n in sorted(chosen, key=len, reverse=True) if key.startswith(n + "/")), None)
            if owner is not None:
                states.append(_value_table(key, label, result[key], rows))
    return {"outputs": outputs, "states": states}


def _graph(facts, slugs, shown_layers) -> dict:
    """The layer graph: a node per layer (linking to its section when it has one), edges with labels."""
    nodes = []
    for lf in facts["layers"]:
        nodes.append({
            "name": lf["name"],
            "class_name": lf["class_name"],
            "kind": lf["kind"],
            "depth": lf["depth"],
            "params": lf["params"],
            "output_shapes": lf["output_shapes"],
            "input_shapes": lf["input_shapes"],
            "inbound": lf["inbound"],
            "initial_state_from": lf["initial_state_from"],
            "recurrent": "recurrent" in lf,
            "target": f"layer-{slugs[lf['name']]}",
            "section": lf["name"] in shown_layers,
            "notes": list(lf["notes"]),
        })
    edges = [{"source": s, "target": t, "label": label, "state": dashed} for s, t, label, dashed in diagram.edges(facts) if s in slugs]
    return {"nodes": nodes, "edges": edges}
