"""Rich rendering of inspect facts and run results. No computation happens here."""

import sys

import numpy as np
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def console(stderr=False) -> Console:
    # Rich drops colour codes by itself when the stream is not a terminal.
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 110)


def _shape(shape) -> str:
    if shape is None:
        return "?"
    dims = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _shapes(shapes) -> str:
    if not shapes:
        return "?"
    return ", ".join(_shape(s) for s in shapes)


def _num(x: float) -> str:
    return f"{x:.4g}"


def array_text(a, full=False) -> str:
    a = np.asarray(a)
    if full:
        return np.array2string(a, precision=6, threshold=sys.maxsize, max_line_width=100)
    return np.array2string(a, precision=6, threshold=40, edgeitems=2, max_line_width=100)


# --- inspect ---------------------------------------------------------------------------------


def _header(facts) -> Panel:
    m = facts["model"]
    lines = [
        f"[bold]file[/]            {facts['file']}",
        f"[bold]format[/]          {facts['format_description']}",
        f"[bold]saved by[/]        Keras {facts['keras_version'] or 'unknown (not recorded)'}"
        + (f", backend {facts['backend']}" if facts.get("backend") else ""),
        f"[bold]hard_sigmoid[/]    {facts['hard_sigmoid']}",
        f"[bold]model[/]           {m['class_name']} '{m['name']}', {facts['params']:,} parameters",
    ]
    for spec in m["inputs"]:
        lines.append(f"[bold]input[/]           {spec['name']} {_shape(spec['shape'])} {spec['dtype']}")
    if m["outputs"]:
        lines.append(f"[bold]outputs[/]         {', '.join(m['outputs'])}")
    for note in facts["notes"]:
        lines.append(f"[yellow]note[/]            {note}")
    return Panel("\n".join(lines), title="lstmctl inspect", expand=False)


def _graph(facts) -> Table:
    table = Table(title="Layers", title_justify="left")
    for col in ("layer", "class", "input → output", "params", "fed by"):
        table.add_column(col, justify="right" if col == "params" else "left")
    for layer in facts["layers"]:
        name = "  " * layer["depth"] + layer["name"]
        cls = layer["class_name"] + (" [yellow](opaque)[/]" if layer["kind"] == "opaque" else "")
        io_text = f"{_shapes(layer['input_shapes'])} → {_shapes(layer['output_shapes'])}" if layer["input_shapes"] else _shapes(layer["output_shapes"])
        fed = ", ".join(layer["inbound"])
        if layer["initial_state_from"]:
            fed += f"; initial_state ← {', '.join(layer['initial_state_from'])}"
        table.add_row(name, cls, io_text, f"{layer['params']:,}", fed)
    return table


def _gate_table(cell) -> Table:
    table = Table(box=None, pad_edge=False)
    for col in ("gate", "fused columns", "", "shape", "mean", "std", "min", "max", "‖·‖"):
        table.add_column(col, justify="left" if col in ("gate", "fused columns", "") else "right")
    for row in cell["gates"]:
        first = True
        for part in ("W", "U", "b", "rb"):
            if part not in row:
                continue
            s = row[part]
            label = f"{row['gate']}  {row['name']}" if first else ""
            lo, hi = row["columns"]
            table.add_row(label, f"[..., {lo}:{hi}]" if first else "", part, _shape(s["shape"]), _num(s["mean"]), _num(s["std"]), _num(s["min"]), _num(s["max"]), _num(s["norm"]))
            first = False
    return table


def _cell_lines(cell) -> list:
    lines = [
        f"units {cell['units']}, input_dim {cell['input_dim']}; kernel W {_shape(cell['kernel_shape'])}, "
        f"recurrent_kernel U {_shape(cell['recurrent_kernel_shape'])}, bias {_shape(cell['bias_shape']) if cell['bias_shape'] else 'none (use_bias=False)'}",
        f"activation {cell['activation']}, recurrent_activation {cell['recurrent_activation'] or '-'}"
        + (f"; reset_after={cell['reset_after']}" if "reset_after" in cell else ""),
    ]
    if "hard_sigmoid" in cell:
        lines.append(f"hard_sigmoid here is {cell['hard_sigmoid']}")
    if "forget_bias" in cell:
        fb = cell["forget_bias"]
        lines.append(f"forget-gate bias b_f: mean {_num(fb['mean'])}, min {_num(fb['min'])}, max {_num(fb['max'])} ({fb['note']})")
    return lines


def _recurrent_panel(layer) -> Panel:
    rec = layer["recurrent"]
    flags = ", ".join(f"{k}={rec[k]}" for k in ("return_sequences", "return_state", "go_backwards", "stateful"))
    masked = {True: "yes", False: "no", None: "unknown"}[rec["masked_input"]]
    parts = [Text.from_markup(f"{flags}; receives a mask: {masked}" + (f"; merge_mode={rec['merge_mode']}" if "merge_mode" in rec else ""))]
    if "returns" in rec:
        ret = Table(title="a call returns", title_justify="left", box=None, pad_edge=False)
        for col in ("#", "Keras calls it", "the math", "shape"):
            ret.add_column(col)
        for i, r in enumerate(rec["returns"]):
            ret.add_row(str(i), r["keras"], r["math"], _shape(r["shape"]))
        parts.append(ret)
    cells = rec.get("directions") or {"": rec}
    for direction, cell in cells.items():
        if direction:
            parts.append(Text(f"{direction}:", style="bold"))
        parts.extend(Text(line) for line in _cell_lines(cell))
        parts.append(_gate_table(cell))
    for note in layer["notes"]:
        parts.append(Text(f"note: {note}", style="yellow"))
    return Panel(Group(*parts), title=f"{layer['name']} ({layer['class_name']})", title_align="left", expand=False)


def render_inspect(facts, out: Console, gate_arrays: dict | None = None, full=False):
    out.print(_header(facts))
    out.print(_graph(facts))
    for layer in facts["layers"]:
        if "recurrent" in layer:
            out.print(_recurrent_panel(layer))
        elif layer["kind"] == "opaque" and layer["notes"]:
            out.print(Text(f"{layer['name']}: {'; '.join(layer['notes'])}", style="yellow"))
    if gate_arrays:
        for key, value in gate_arrays.items():
            out.print(Panel(array_text(value, full=True), title=f"{key} {_shape(value.shape)}", title_align="left", expand=False))


# --- run -------------------------------------------------------------------------------------


def render_arrays(items, out: Console, full=False, notes=()):
    """items: (key, label, array) triples."""
    for note in notes:
        out.print(Text(note, style="yellow"))
    for key, label, array in items:
        title = f"{key}  {_shape(array.shape)} {array.dtype}" + (f"  — {label}" if label else "")
        out.print(Panel(array_text(array, full=full), title=title, title_align="left", expand=False))
