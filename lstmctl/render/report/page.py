"""The report's HTML page, drawn from build_report's data alone: inline SVG heatmaps and graph,
tables, and the page's CSS and JS (assets.py) under a hash-pinned Content-Security-Policy.
"""

import base64
import hashlib
import html
import json
import math

import numpy as np

from ..console import cell_lines, colour, shape_text
from .assets import CSS, JS
from .data import MAX_TABLE_VALUES, json_float

NAN_COLOUR = "#808080"


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
        shapes = ", ".join(shape_text(s) for s in node["output_shapes"] or [])
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
            rows.append(f"<tr>{head}<td>{part}</td><td>{shape_text(s['shape'])}{bad}</td>" + "".join(f'<td class="num">{json_float(s[k])}</td>' for k in ("mean", "std", "min", "max", "norm")) + "</tr>")
            first = False
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("gate", "", "fused columns", "part", "shape", "mean", "std", "min", "max", "‖·‖"))
    return f'<table class="gates"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _equations(cell) -> str:
    """inspect's lines for a cell (sizes, activations, step equations, forget-gate bias), as text."""
    lines = cell_lines(cell)
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
            text = str(v) if isinstance(v, int) else ("∞" if v == "inf" else json_float(v) if isinstance(v, str) else f"{v:.3f}")
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
    caption = f"{e(item['key'])} {shape_text(item['shape'])} {e(item['dtype'])}" + (f" — {e(item['label'])}" if item["label"] else "")
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
            out.append(f'<figure><figcaption>{e(w["name"])} {shape_text(w["grid"]["shape"])}</figcaption>{_heat_svg(w["grid"], True, "weights", {"data-key": w["key"]}, "r", "u", False)}{notes}</figure>')
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
        ("hard_sigmoid", f["hard_sigmoid"] or "not used"),
        ("model", f"{m['class_name']} '{m['name']}'"),
        ("parameters", f"{f['params']:,}"),
    ]
    rows += [("input", f"{s['name']} {shape_text(s['shape'])} {s['dtype']}") for s in m["inputs"]]
    rows.append(("outputs", ", ".join(m["outputs"]) or "-"))
    inp = data["input"]
    if inp["arrays"]:
        what = "given with --input" if inp["given"] else f"a seeded random standard-normal input (seed {inp['seed']})"
        rows.append(("input used", what + ": " + ", ".join(f"{a['name']} {shape_text(a['shape'])} {a['dtype']}" for a in inp["arrays"])))
    else:
        rows.append(("input used", "none"))
    rows += [("note", n) for n in f["notes"]]
    body.append('<section id="facts"><h2>File and model</h2><table class="facts"><tbody>' + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows) + "</tbody></table>")
    body.append('<h3>Layers</h3><table class="layers"><thead><tr><th>layer</th><th>class</th><th>input → output</th><th>params</th><th>fed by</th></tr></thead><tbody>')
    for node in data["graph"]["nodes"]:
        rid = "" if node["section"] else f' id="{e(node["target"])}"'
        name = f'<a href="#{e(node["target"])}">{e(node["name"])}</a>' if node["section"] else e(node["name"])
        io = (", ".join(shape_text(s) for s in node["input_shapes"]) + " → " if node["input_shapes"] else "") + ", ".join(shape_text(s) for s in node["output_shapes"] or [])
        fed = ", ".join(node["inbound"]) + (f"; initial_state ← {', '.join(node['initial_state_from'])}" if node["initial_state_from"] else "")
        notes = "".join(f'<div class="note">{e(n)}</div>' for n in node["notes"])
        body.append(f'<tr{rid}><td>{"&nbsp;&nbsp;" * node["depth"]}{name}</td><td>{e(node["class_name"])}</td><td>{e(io)}</td><td class="num">{node["params"]:,}</td><td>{e(fed)}{notes}</td></tr>')
    body.append("</tbody></table></section>")

    for s in data["layers"]:
        body.append(f'<section id="{e(s["id"])}" class="layer"><h2>{e(s["name"])} <span class="muted">({e(s["class_name"])})</span></h2>')
        body.append(f'<p>{e(", ".join(f"{k}={v}" for k, v in s["flags"].items()))}</p>')
        if s["returns"]:
            body.append('<table class="returns"><caption>a call returns</caption><thead><tr><th>#</th><th>Keras calls it</th><th>the math</th><th>shape</th></tr></thead><tbody>')
            body.extend(f"<tr><td>{i}</td><td>{e(r['keras'])}</td><td>{e(r['math'])}</td><td>{shape_text(r['shape'])}</td></tr>" for i, r in enumerate(s["returns"]))
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
