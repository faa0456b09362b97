"""`lstmctl report`: one self-contained HTML page (or its data as JSON) about a model and an input.

`build_report(model, ...)` gathers the data: inspect's facts, the layer graph, every recurrent
layer's equations, gate statistics and W/U heatmaps, its trace (each gate, c_t and h_t over steps ×
units, binned as `trace --view heatmap` bins them) for up to MAX_SAMPLES samples, the model's
outputs and final states. `render_html(data)` writes the page from that data alone: inline CSS,
JS and SVG, no request of any kind (a Content-Security-Policy forbids them), and every string that
came from the model file HTML-escaped (in the script's JSON, `<`, `>` and `&` as \\u escapes).
"""

import base64
import hashlib
import html
import json
import math
import re

import numpy as np

from ...analysis.describe import inspect_facts, run_selection
from ...analysis.trace import SATURATION, trace
from ...errors import LstmctlError, UsageError
from ...gates import GATE_NAMES
from ...runner import random_inputs
from .. import diagram
from ..console import MAX_HEAT_COLUMNS, MAX_HEAT_ROWS, _cell_lines, _shape, bin_mean, colour

MAX_SAMPLES = 4  # samples whose traces are precomputed (the first ones, and --sample)
MAX_WEIGHT_ROWS, MAX_WEIGHT_COLUMNS = 24, 32  # W and U heatmaps are binned beyond these
MAX_TABLE_VALUES = 16  # an output or state shows this many values per sample, the rest summarised
TRACE_CELL_BUDGET = 16000  # trace heatmap cells on a whole page: beyond it, each heatmap is binned more coarsely
NAN_COLOUR = "#808080"


# --- data ------------------------------------------------------------------------------------


def _num(x):
    """A float for JSON: finite values as they are, others as the strings 'nan', 'inf', '-inf'."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if x != x else ("inf" if x > 0 else "-inf")


def _clean(obj):
    """`obj` with every float made JSON-safe (see _num) and NumPy scalars and arrays made Python."""
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
        return _num(obj)
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
            "min": _num(finite.min()) if finite.size else "nan",
            "max": _num(finite.max()) if finite.size else "nan",
            "mean": _num(finite.mean()) if finite.size else "nan",
            "nonfinite": int(a.size - finite.size),
        },
        "index": index,
        "summarised": n > len(flat),
        "rows": [{"sample": s, "values": [_num(v) for v in a[s].reshape(-1)[flat]] if per else [_num(a[s])]} for s in samples],
    }


def build_report(model, inputs=None, layers=None, sample=0) -> dict:
    """The report's data (JSON-able): what `--format json` writes and render_html draws.

    inputs: as Model.run takes them (an array, or a dict by input name); None: a seeded
    (seed 0) standard-normal input of the model's shape, and a note saying so. layers: the
    recurrent layers to show (default all). sample: the sample selected first; traces are
    computed for the first MAX_SAMPLES samples and this one."""
    facts = inspect_facts(model)
    names = [f["name"] for f in facts["layers"]]
    slugs = _slugs(names)
    recurrent = [f for f in facts["layers"] if "recurrent" in f]
    if layers:
        known = {f["name"] for f in recurrent}
        for name in layers:
            if name not in known:
                raise UsageError(f"--layer {name!r} is not a recurrent layer of the model (recurrent layers: {', '.join(sorted(known)) or 'none'})")
        recurrent = [f for f in recurrent if f["name"] in set(layers)]

    notes = []
    given = inputs is not None
    x = inputs
    if x is None and model.inputs:
        x = random_inputs(model, seed=0)
        notes.append("no --input given: a random standard-normal input (seed 0) of the model's shape was used")
    elif x is None:
        notes.append("a weights-only file has no input layer: no traces or outputs (give a full model)")
    data_inputs = []
    result, batch, shown = None, 0, []
    if x is not None:
        named = x if isinstance(x, dict) else {(model.inputs[0].name if model.inputs else "input"): x}
        data_inputs = [{"name": k, "shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)} for k, v in named.items()]
        result = model.run(x)
        notes.extend(f"warning: {w}" for w in getattr(result, "warnings", []) or [])
        batch = int(np.shape(next(iter(named.values())))[0])
        if batch:
            if not -batch <= sample < batch:
                raise UsageError(f"--sample {sample} is out of range: the input has {batch} samples")
            sample %= batch
            shown = list(range(min(batch, MAX_SAMPLES)))
            if sample not in shown:
                shown.append(sample)
            if batch > len(shown):
                notes.append(f"the input holds {batch} samples; traces are precomputed for samples {', '.join(map(str, shown))} only (--sample N adds another)")

    traces = {}  # (layer to trace, sample) -> Trace, or the message of why it could not be traced

    def traced(name, s):
        if (name, s) not in traces:
            try:
                traces[name, s] = trace(model, x, name, sample=s)
            except LstmctlError as exc:
                traces[name, s] = str(exc)
        return traces[name, s]

    # Each part's heatmaps (at most 6: four gates, c, h) for each shown sample share the budget.
    n_maps = 6 * len(shown) * sum(len(_parts(model.layer(lf["name"]), lf["recurrent"])) for lf in recurrent)
    max_cells = max(64, TRACE_CELL_BUDGET // n_maps) if n_maps else None
    sections = []
    for lf in recurrent:
        layer = model.layer(lf["name"])
        rec = lf["recurrent"]
        matrices = model.gates(layer.name)
        parts = []
        for part in _parts(layer, rec):
            cf = part["facts"]
            weights = []
            for key, value in matrices.items():
                head, _, leaf = key.rpartition("/")
                if head == part["prefix"] and leaf.split("_")[0] in ("W", "U"):
                    weights.append({"key": key, "name": leaf, "grid": _grid(value, MAX_WEIGHT_ROWS, MAX_WEIGHT_COLUMNS, transpose=False, words=("rows", "units"))})
            samples = []
            for s in shown:
                tr = traced(part["trace"][0], s)
                if isinstance(tr, str):
                    samples.append({"sample": s, "error": tr})
                    continue
                d = part["trace"][1]
                heat = []
                for name in _trace_names(tr):
                    key = tr.key(d, name)
                    heat.append({"key": key, "name": name, "title": _trace_title(name), "diverging": _diverging(name), "grid": _grid(tr.arrays[key], MAX_HEAT_ROWS, MAX_HEAT_COLUMNS, transpose=True, max_cells=max_cells, words=("units", "steps"))})
                prefix = tr.key(d, "")
                initial = {k[len(prefix):]: v for k, v in tr.initial.items() if k.startswith(prefix) and "/" not in k[len(prefix):]}
                samples.append({
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
                })
            parts.append({
                "label": part["label"],
                "id": f"layer-{slugs[lf['name']]}" + (f"-{part['suffix']}" if part["suffix"] else ""),
                "prefix": part["prefix"],
                "cell": {k: cf[k] for k in ("units", "input_dim", "activation", "recurrent_activation", "kernel_shape", "recurrent_kernel_shape", "bias_shape", "equations", "gates", "forget_bias", "hard_sigmoid", "reset_after", "class_name", "feeds") if k in cf},
                "weights": weights,
                "samples": samples,
            })
        sections.append({
            "name": lf["name"],
            "class_name": lf["class_name"],
            "id": f"layer-{slugs[lf['name']]}",
            "flags": {k: rec.get(k) for k in ("return_sequences", "return_state", "go_backwards", "stateful", "masked_input", "merge_mode") if k in rec},
            "returns": rec.get("returns", []),
            "notes": list(lf["notes"]),
            "parts": parts,
        })

    outputs, states = [], []
    if result is not None:
        rows = shown
        outputs = [_value_table(k, label, result[k], rows) for k, label in run_selection(model, result)]
        chosen = {f["name"] for f in recurrent}
        for key, label in run_selection(model, result, return_state=True):
            owner = next((n for n in sorted(chosen, key=len, reverse=True) if key.startswith(n + "/")), None)
            if owner is not None:
                states.append(_value_table(key, label, result[key], rows))

    shown_layers = {f["name"] for f in recurrent}
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

    return _clean({
        "report": 1,
        "facts": {k: facts[k] for k in ("file", "format", "format_description", "keras_version", "backend", "hard_sigmoid", "params", "model", "notes", "inferred")},
        "input": {"given": given, "seed": None if given else 0, "arrays": data_inputs, "batch": batch},
        "samples": {"batch": batch, "shown": shown, "selected": shown[shown.index(sample)] if sample in shown else (shown[0] if shown else None), "max": MAX_SAMPLES},
        "notes": notes,
        "graph": {"nodes": nodes, "edges": edges},
        "layers": sections,
        "outputs": outputs,
        "states": states,
        "saturation": list(SATURATION),
    })


# --- HTML ------------------------------------------------------------------------------------


def e(text) -> str:
    """HTML-escaped text (quotes too: safe in attributes)."""
    return html.escape(str(text), quote=True)


def script_json(obj) -> str:
    """JSON safe inside <script>: `<`, `>`, `&` (and non-ASCII) as \\u escapes, so no `</script>`."""
    return json.dumps(obj, ensure_ascii=True, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _fmt6(v) -> str:
    return v if isinstance(v, str) else f"{v:.6f}"


def _fill(v, lo, hi, diverging) -> str:
    return NAN_COLOUR if isinstance(v, str) and v == "nan" else colour(float(v) if not isinstance(v, str) else (math.inf if v == "inf" else -math.inf), lo, hi, diverging)


def _span(a: int, b: int) -> str:
    """A bin's index range [a, b) as the page shows it: '3', or '0-3' when averaged."""
    return str(a) if b - a <= 1 else f"{a}-{b - 1}"


def _heat_svg(grid: dict, diverging: bool, cls: str, attrs: dict, row_word: str, col_word: str, trace_cells: bool) -> str:
    """A heatmap as inline SVG: a <rect> per (binned) cell, with the value in data-value."""
    lo, hi = (-1.0, 1.0) if diverging else (0.0, 1.0)
    values = grid["values"]
    n_rows, n_cols = len(grid["rows"]), len(grid["columns"])
    cw = max(4, min(18, 720 // max(n_cols, 1)))
    ch = max(4, min(14, 360 // max(n_rows, 1)))
    left, top = 64, 16
    width, height = left + cw * n_cols + 4, top + ch * n_rows + 4
    out = [f'<svg class="{cls}" width="{width}" height="{height}" viewBox="0 0 {width} {height}"' + "".join(f' {k}="{e(v)}"' for k, v in attrs.items()) + ">"]
    label_every = max(1, math.ceil(n_rows / 12))
    for r, (a, b) in enumerate(grid["rows"]):
        if r % label_every == 0:
            out.append(f'<text class="axis" x="{left - 4}" y="{top + r * ch + ch - 1}" text-anchor="end">{row_word}{_span(a, b)}</text>')
    col_every = max(1, math.ceil(n_cols / 10))
    for c, (a, b) in enumerate(grid["columns"]):
        if c % col_every == 0:
            out.append(f'<text class="axis" x="{left + c * cw}" y="{top - 4}">{col_word}{_span(a, b)}</text>')
    cell_cls = "cell" if trace_cells else "wcell"
    for r, (ra, rb) in enumerate(grid["rows"]):
        for c, (ca, cb) in enumerate(grid["columns"]):
            v = values[r][c]
            if trace_cells:  # rows are units, columns steps
                where = f'data-step="{_span(ca, cb)}" data-unit="{_span(ra, rb)}"'
            else:  # rows are the matrix's rows, columns its units
                where = f'data-row="{_span(ra, rb)}" data-unit="{_span(ca, cb)}"'
            out.append(f'<rect class="{cell_cls}" x="{left + c * cw}" y="{top + r * ch}" width="{cw}" height="{ch}" fill="{_fill(v, lo, hi, diverging)}" {where} data-value="{_fmt6(v)}"/>')
    out.append("</svg>")
    return "".join(out)


def _legend(diverging: bool) -> str:
    lo, hi = (-1.0, 1.0) if diverging else (0.0, 1.0)
    n, w = 16, 12
    rects = "".join(f'<rect class="swatch" x="{40 + k * w}" y="2" width="{w}" height="12" fill="{colour(lo + (hi - lo) * k / (n - 1), lo, hi, diverging)}"/>' for k in range(n))
    return (
        f'<svg class="legend" width="{40 + n * w + 44}" height="16" viewBox="0 0 {40 + n * w + 44} 16">'
        f'<text x="36" y="13" text-anchor="end">{lo:g}</text>{rects}<text x="{44 + n * w}" y="13">{hi:g}</text></svg>'
        f' {"diverging (c̃, h̃, c_t, h_t, weights): blue negative, white 0, red positive; clipped to −1 … 1" if diverging else "sequential (gates): 0 … 1"}'
    )


def _layout(nodes, edges) -> dict:
    """Node name -> (level, position in level): topological levels top to bottom (a layer one
    below the deepest layer it reads or takes a state from), side by side within a level."""
    level = {}
    sources = {}
    for edge in edges:
        sources.setdefault(edge["target"], []).append(edge["source"])
    for node in nodes:  # facts list layers in graph order: sources first
        level[node["name"]] = 1 + max((level[s] for s in sources.get(node["name"], []) if s in level), default=-1)
    for node in nodes:  # an input sits just above the first layer it feeds (a decoder's input beside the encoder)
        if not sources.get(node["name"]):
            fed = [level[edge["target"]] for edge in edges if edge["source"] == node["name"] and edge["target"] in level]
            if fed:
                level[node["name"]] = max(0, min(fed) - 1)
    slots, out = {}, {}
    for node in nodes:
        lv = level[node["name"]]
        out[node["name"]] = (lv, slots.get(lv, 0))
        slots[lv] = slots.get(lv, 0) + 1
    return out


def _clip(text: str, n: int = 34) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _graph_svg(graph) -> str:
    nodes, edges = graph["nodes"], graph["edges"]
    where = _layout(nodes, edges)
    box_w, box_h, gap_x, gap_y = 230, 58, 30, 46
    per_level = {}
    for lv, _ in where.values():
        per_level[lv] = per_level.get(lv, 0) + 1
    widest = max(per_level.values(), default=1)
    width = widest * (box_w + gap_x) + gap_x
    height = (max(per_level, default=0) + 1) * (box_h + gap_y) + gap_y
    pos = {}
    for name, (lv, k) in where.items():
        row_w = per_level[lv] * (box_w + gap_x) - gap_x
        x0 = (width - row_w) / 2 + k * (box_w + gap_x)
        pos[name] = (x0, gap_y + lv * (box_h + gap_y))
    out = [f'<svg id="graph" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="layer graph">']
    out.append('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>')
    seen = {}
    for edge in edges:
        if edge["source"] not in pos or edge["target"] not in pos:
            continue
        (sx, sy), (tx, ty) = pos[edge["source"]], pos[edge["target"]]
        k = seen[edge["source"], edge["target"]] = seen.get((edge["source"], edge["target"]), -1) + 1
        shift = box_w * 0.3 + k * 14 if edge["state"] else 0  # states leave and arrive right of centre
        x1, y1 = sx + box_w / 2 + shift, sy + box_h
        x2, y2 = tx + box_w / 2 + shift, ty
        cls = "edge state" if edge["state"] else "edge"
        title = edge["label"] or f"{edge['source']} → {edge['target']}"
        if edge["state"]:
            bend = 60 + 20 * k
            d = f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{(y1 + y2) / 2:.1f} {x2 + bend:.1f},{(y1 + y2) / 2:.1f} {x2:.1f},{y2:.1f}"
        else:
            d = f"M{x1:.1f},{y1:.1f} L{x2:.1f},{y2:.1f}"
        out.append(f'<path class="{cls}" d="{d}" marker-end="url(#arrow)" data-source="{e(edge["source"])}" data-target-layer="{e(edge["target"])}"><title>{e(title)}</title></path>')
    for node in nodes:
        x, y = pos[node["name"]]
        cls = "node recurrent" if node["recurrent"] else "node"
        shapes = ", ".join(_shape(s) for s in node["output_shapes"] or [])
        lines = [(_clip(node["name"]), "name"), (_clip(node["class_name"]), "cls"), (_clip(shapes, 38), "shape")]
        title = f"{node['name']} ({node['class_name']}) {shapes}"
        out.append(f'<g class="{cls}" data-target="{e(node["target"])}" tabindex="0" role="link"><title>{e(title)}</title>')
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{box_h}" rx="6"/>')
        for k, (text, kind) in enumerate(lines):
            out.append(f'<text class="{kind}" x="{x + box_w / 2:.1f}" y="{y + 17 + k * 16:.1f}" text-anchor="middle">{e(text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _gates_table(cell) -> str:
    rows = []
    for row in cell.get("gates", []):
        first = True
        lo, hi = row["columns"]
        for part in ("W", "U", "b", "rb"):
            if part not in row:
                continue
            s = row[part]
            bad = f' <span class="bad">{s["nonfinite"]} NaN/Inf</span>' if "nonfinite" in s else ""
            head = f"<td>{e(row['gate'])}</td><td>{e(row['name'])}</td><td>[..., {lo}:{hi}]</td>" if first else "<td></td><td></td><td></td>"
            rows.append(f"<tr>{head}<td>{part}</td><td>{_shape(s['shape'])}{bad}</td>" + "".join(f'<td class="num">{_num(s[k])}</td>' for k in ("mean", "std", "min", "max", "norm")) + "</tr>")
            first = False
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("gate", "", "fused columns", "part", "shape", "mean", "std", "min", "max", "‖·‖"))
    return f'<table class="gates"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _equations(cell) -> str:
    """inspect's lines for a cell (sizes, activations, step equations, forget-gate bias), as text."""
    lines = _cell_lines(cell)
    return f'<pre class="equations">{e(chr(10).join(lines))}</pre>'


def _summary_table(rows) -> str:
    if not rows or len(rows[0]) <= 1:
        return ""
    keys = list(rows[0])
    names = {"unit": "unit", "half_life": "half-life (steps)"}
    head = "".join(f'<th data-col="{e(k)}" title="click to sort">{e(names.get(k, k.replace("_", " ")))}</th>' for k in keys)
    body = []
    for row in rows:
        cells = []
        for k in keys:
            v = row[k]
            sort = {"inf": "1e308", "-inf": "-1e308", "nan": "-1e309"}.get(v, v) if isinstance(v, str) else v
            text = str(v) if isinstance(v, int) else ("∞" if v == "inf" else _num(v) if isinstance(v, str) else f"{v:.3f}")
            cells.append(f'<td class="num" data-sort="{e(sort)}">{e(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="summary sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _values_table(item, with_samples=True) -> str:
    head = "".join(f"<th>[{', '.join(map(str, i))}]</th>" if len(item["index"]) else "" for i in item["index"])
    if item["summarised"]:
        cut = MAX_TABLE_VALUES - 4
        cols = item["index"]
        head = "".join(f"<th>[{', '.join(map(str, i))}]</th>" for i in cols[:cut]) + "<th>…</th>" + "".join(f"<th>[{', '.join(map(str, i))}]</th>" for i in cols[cut:])
    body = []
    for row in item["rows"]:
        vals = [f'<td class="num value" data-key="{e(item["key"])}" data-batch-index="{row["sample"]}" data-index="{",".join(map(str, i))}">{_fmt6(v)}</td>' for v, i in zip(row["values"], item["index"] or [[]])]
        if item["summarised"]:
            vals = vals[: MAX_TABLE_VALUES - 4] + ['<td class="num">…</td>'] + vals[MAX_TABLE_VALUES - 4 :]
        body.append(f"<tr><th>sample {row['sample']}</th>{''.join(vals)}</tr>")
    st = item["stats"]
    caption = f"{e(item['key'])} {_shape(item['shape'])} {e(item['dtype'])}" + (f" — {e(item['label'])}" if item["label"] else "")
    summary = f"min {_fmt6(st['min'])}, max {_fmt6(st['max'])}, mean {_fmt6(st['mean'])}" + (f", {st['nonfinite']} NaN/Inf" if st["nonfinite"] else "")
    more = f"; {int(np.prod(item['shape'][1:]))} values per sample, the first {MAX_TABLE_VALUES - 4} and last 4 shown" if item["summarised"] else ""
    return f'<table class="values"><caption>{caption}<br><span class="muted">{summary}{more}</span></caption><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _part_html(part, selected) -> str:
    cell = part["cell"]
    out = []
    if part["label"]:
        out.append(f'<section id="{e(part["id"])}" class="part"><h3>{e(part["label"])}</h3>')
    out.append(_equations(cell))
    out.append(_gates_table(cell))
    if part["weights"]:
        out.append('<h4>Weights (rows: the matrix\'s rows, columns: units; colour −1 … 1)</h4><div class="heatmaps">')
        for w in part["weights"]:
            notes = "".join(f'<div class="note">{e(n)}</div>' for n in w["grid"]["notes"])
            out.append(f'<figure><figcaption>{e(w["name"])} {_shape(w["grid"]["shape"])}</figcaption>{_heat_svg(w["grid"], True, "weights", {"data-key": w["key"]}, "r", "u", False)}{notes}</figure>')
        out.append("</div>")
    for s in part["samples"]:
        hidden = "" if s["sample"] == selected else " hidden"
        out.append(f'<div class="sample-block" data-sample="{s["sample"]}"{hidden}>')
        if "error" in s:
            out.append(f'<p class="note">no trace for sample {s["sample"]}: {e(s["error"])}</p></div>')
            continue
        out.append(f'<h4>Trace of sample {s["sample"]}: {s["steps"]} steps × {s["units"]} units (rows: units, columns: steps)</h4>')
        for note in s["notes"]:
            out.append(f'<p class="note">{e(note)}</p>')
        for name, values in s["initial"].items():
            out.append(f'<p>initial state {e(name)}: <span class="num">{e(" ".join(_fmt6(v) for v in values))}</span></p>')
        out.append('<div class="heatmaps">')
        for h in s["heatmaps"]:
            notes = "".join(f'<div class="note">{e(n)}</div>' for n in h["grid"]["notes"])
            attrs = {"data-key": h["key"], "data-of-sample": s["sample"]}
            out.append(f'<figure><figcaption>{e(h["title"])}</figcaption>{_heat_svg(h["grid"], h["diverging"], "heatmap", attrs, "u", "t", True)}{notes}</figure>')
        out.append("</div>")
        if s["summary"]:
            out.append(f'<h4>Per-unit summary over {s["steps"]} steps (saturated: below 0.1 or above 0.9; half-life: ln 0.5 / ln mean keep gate); click a header to sort</h4>')
            out.append(_summary_table(s["summary"]))
        out.append("</div>")
    if part["label"]:
        out.append("</section>")
    return "".join(out)


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 2em 4em;color:#222;background:#fff}
h1{margin:.6em 0 .2em}h2{border-top:2px solid #ccc;padding-top:.6em}
pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:2px 8px;border-bottom:1px solid #e4e4e4;text-align:left}
td.num{text-align:right;font-family:ui-monospace,monospace}
caption{text-align:left;font-weight:600;padding:.3em 0}
.muted{color:#666;font-weight:normal}.note{color:#8a5a00}.bad{color:#b00}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th.asc::after{content:" \\25B2"}table.sortable th.desc::after{content:" \\25BC"}
#graph .node rect{fill:#f4f4f4;stroke:#777;stroke-width:1.2}
#graph .node.recurrent rect{fill:#fff3d6;stroke:#d08a00;stroke-width:2.2}
#graph .node{cursor:pointer}#graph .node:hover rect,#graph .node:focus rect{stroke:#225;stroke-width:3}
#graph .node .name{font-weight:600}#graph .node .shape,#graph .node .cls{font-size:12px;fill:#444}
#graph .edge{stroke:#555;stroke-width:1.4;fill:none}
#graph .edge.state{stroke:#c0392b;stroke-dasharray:6 4}
#graph .arrowhead{fill:#555}
.heatmaps{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:.3em 0}figcaption{font-weight:600}
svg text{font:10px ui-monospace,monospace;fill:#333}
svg.heatmap rect.cell:hover,svg.weights rect.wcell:hover{stroke:#000;stroke-width:1}
#tooltip{position:fixed;pointer-events:none;background:#222;color:#fff;padding:3px 7px;border-radius:3px;font:12px ui-monospace,monospace;z-index:10}
#tooltip[hidden]{display:none}
.sample-block[hidden]{display:none}
nav a{margin-right:1em}
header .controls{margin:.5em 0}
"""

JS = """
(function () {
  var tip = document.getElementById('tooltip');
  function place(ev) { tip.style.left = (ev.clientX + 14) + 'px'; tip.style.top = (ev.clientY + 14) + 'px'; }
  document.addEventListener('mouseover', function (ev) {
    var t = ev.target;
    if (!t || !t.classList) { return; }
    if (t.classList.contains('cell') && t.tagName.toLowerCase() === 'rect') {
      tip.textContent = 'step ' + t.getAttribute('data-step') + ', unit ' + t.getAttribute('data-unit') + ': ' + t.getAttribute('data-value');
    } else if (t.classList.contains('wcell') && t.tagName.toLowerCase() === 'rect') {
      tip.textContent = 'row ' + t.getAttribute('data-row') + ', unit ' + t.getAttribute('data-unit') + ': ' + t.getAttribute('data-value');
    } else { return; }
    tip.hidden = false;
    place(ev);
  });
  document.addEventListener('mousemove', function (ev) { if (!tip.hidden) { place(ev); } });
  document.addEventListener('mouseout', function (ev) {
    var t = ev.target;
    if (t && t.classList && (t.classList.contains('cell') || t.classList.contains('wcell'))) { tip.hidden = true; tip.textContent = ''; }
  });
  function go(node) {
    var target = node.getAttribute('data-target');
    var el = document.getElementById(target);
    if (!el) { return; }
    location.hash = target;
    el.scrollIntoView();
  }
  Array.prototype.forEach.call(document.querySelectorAll('#graph g.node'), function (node) {
    node.addEventListener('click', function () { go(node); });
    node.addEventListener('keydown', function (ev) { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); go(node); } });
  });
  var select = document.getElementById('sample');
  function show(k) {
    Array.prototype.forEach.call(document.querySelectorAll('[data-sample]'), function (el) {
      el.hidden = el.getAttribute('data-sample') !== k;
    });
  }
  if (select) {
    select.addEventListener('change', function () { show(select.value); });
    show(select.value);
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    var heads = table.querySelectorAll('thead th');
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener('click', function () {
        var asc = !th.classList.contains('asc');
        Array.prototype.forEach.call(heads, function (h) { h.classList.remove('asc', 'desc'); });
        th.classList.add(asc ? 'asc' : 'desc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = parseFloat(a.cells[col].getAttribute('data-sort'));
          var y = parseFloat(b.cells[col].getAttribute('data-sort'));
          if (isNaN(x)) { x = -Infinity; }
          if (isNaN(y)) { y = -Infinity; }
          return asc ? x - y : y - x;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render_html(data) -> str:
    """The page: one HTML document with everything inline, from build_report's data alone."""
    f = data["facts"]
    m = f["model"]
    samples = data["samples"]
    selected = samples["selected"]
    title = f"lstmctl report: {m['name']}"
    body = [f"<header><h1>{e(title)}</h1>"]
    body.append('<nav><a href="#graph-section">graph</a><a href="#facts">facts</a>' + "".join(f'<a href="#{e(s["id"])}">{e(s["name"])}</a>' for s in data["layers"]) + '<a href="#outputs">outputs</a></nav>')
    options = "".join(f'<option value="{k}"{" selected" if k == selected else ""}>sample {k}</option>' for k in samples["shown"])
    more = f' <span class="note">(the input holds {samples["batch"]} samples; traces are precomputed for these {len(samples["shown"])} only)</span>' if samples["batch"] > len(samples["shown"]) else ""
    body.append(f'<div class="controls"><label for="sample">sample shown in the traces: </label><select id="sample">{options}</select>{more}</div>')
    for note in data["notes"]:
        body.append(f'<p class="note">{e(note)}</p>')
    body.append(f'<div id="legend"><div>{_legend(False)}</div><div>{_legend(True)}</div></div></header>')

    body.append('<section id="graph-section"><h2>Layer graph</h2><p class="muted">Click a layer to go to it; recurrent layers are highlighted; dashed red edges are initial_state links (hover for which state).</p>')
    body.append(_graph_svg(data["graph"]))
    body.append("</section>")

    # facts
    rows = [
        ("file", f["file"]),
        ("format", f["format_description"]),
        ("saved by", f"not recorded: weights imported with --convention {f['format'][4:]}" if str(f["format"]).startswith("npz-") else f"Keras {f['keras_version']}" if f["keras_version"] else "not recorded"),
        ("backend", f["backend"] or "-"),
        ("hard_sigmoid", f["hard_sigmoid"]),
        ("model", f"{m['class_name']} '{m['name']}'"),
        ("parameters", f"{f['params']:,}"),
    ]
    rows += [("input", f"{s['name']} {_shape(s['shape'])} {s['dtype']}") for s in m["inputs"]]
    rows.append(("outputs", ", ".join(m["outputs"]) or "-"))
    inp = data["input"]
    if inp["arrays"]:
        what = "given with --input" if inp["given"] else f"a seeded random standard-normal input (seed {inp['seed']})"
        rows.append(("input used", what + ": " + ", ".join(f"{a['name']} {_shape(a['shape'])} {a['dtype']}" for a in inp["arrays"])))
    else:
        rows.append(("input used", "none"))
    rows += [("note", n) for n in f["notes"]]
    body.append('<section id="facts"><h2>File and model</h2><table class="facts"><tbody>' + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows) + "</tbody></table>")
    body.append('<h3>Layers</h3><table class="layers"><thead><tr><th>layer</th><th>class</th><th>input → output</th><th>params</th><th>fed by</th></tr></thead><tbody>')
    for node in data["graph"]["nodes"]:
        rid = "" if node["section"] else f' id="{e(node["target"])}"'
        name = f'<a href="#{e(node["target"])}">{e(node["name"])}</a>' if node["section"] else e(node["name"])
        io = (", ".join(_shape(s) for s in node["input_shapes"]) + " → " if node["input_shapes"] else "") + ", ".join(_shape(s) for s in node["output_shapes"] or [])
        fed = ", ".join(node["inbound"]) + (f"; initial_state ← {', '.join(node['initial_state_from'])}" if node["initial_state_from"] else "")
        notes = "".join(f'<div class="note">{e(n)}</div>' for n in node["notes"])
        body.append(f'<tr{rid}><td>{"&nbsp;&nbsp;" * node["depth"]}{name}</td><td>{e(node["class_name"])}</td><td>{e(io)}</td><td class="num">{node["params"]:,}</td><td>{e(fed)}{notes}</td></tr>')
    body.append("</tbody></table></section>")

    for s in data["layers"]:
        body.append(f'<section id="{e(s["id"])}" class="layer"><h2>{e(s["name"])} <span class="muted">({e(s["class_name"])})</span></h2>')
        body.append(f'<p>{e(", ".join(f"{k}={v}" for k, v in s["flags"].items()))}</p>')
        if s["returns"]:
            body.append('<table class="returns"><caption>a call returns</caption><thead><tr><th>#</th><th>Keras calls it</th><th>the math</th><th>shape</th></tr></thead><tbody>')
            body.extend(f"<tr><td>{i}</td><td>{e(r['keras'])}</td><td>{e(r['math'])}</td><td>{_shape(r['shape'])}</td></tr>" for i, r in enumerate(s["returns"]))
            body.append("</tbody></table>")
        for note in s["notes"]:
            body.append(f'<p class="note">{e(note)}</p>')
        for part in s["parts"]:
            body.append(_part_html(part, selected))
        body.append("</section>")

    body.append('<section id="outputs"><h2>Outputs and final states</h2>')
    if not data["outputs"] and not data["states"]:
        body.append('<p class="note">no run: no input</p>')
    if data["outputs"]:
        body.append("<h3>Model outputs</h3>")
        body.extend(_values_table(item) for item in data["outputs"])
    if data["states"]:
        body.append("<h3>Final states of the recurrent layers</h3>")
        body.extend(_values_table(item) for item in data["states"])
    body.append("</section>")
    body.append('<div id="tooltip" hidden></div>')

    meta = {"model": m["name"], "layers": [s["name"] for s in data["layers"]], "samples": samples}
    js = JS
    head = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src {_csp_hash(CSS)}; script-src {_csp_hash(js)}; img-src 'none'; connect-src 'none'; form-action 'none'; base-uri 'none'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
    )
    tail = f'<script type="application/json" id="report-data">{script_json(meta)}</script><script>{js}</script></body></html>\n'
    return head + "".join(body) + tail
