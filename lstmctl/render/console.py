"""Rich rendering of inspect facts and run results. No computation happens here."""

import errno
import os
import sys
from itertools import groupby

import numpy as np
from rich.console import Console, Group
from rich.markup import escape as esc
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from ..arrays.writers import stdout_text
from ..errors import show_lines


def console_width(stream=None) -> int | None:
    """COLUMNS when set to a positive integer (even when piped), else 110 off a terminal, else
    None: the terminal's own width."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    stream = sys.stdout if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return None if tty else 110


class _Console(Console):
    def render(self, renderable, options=None):
        """Every segment rich draws, its control characters escaped (errors.show_lines): a name
        from a file (a module, an ONNX node, op or domain) in a table cell or a panel title cannot
        clear the screen (ESC[2J) or retitle the terminal (an OSC sequence). Rich's own styling is
        applied after this, from the segments' styles, and its control segments are kept."""
        for segment in super().render(renderable, options):
            if segment.control is None and not segment.text.isprintable() and segment.text != "\n":
                segment = Segment(show_lines(segment.text), segment.style)
            yield segment

    def on_broken_pipe(self):
        """The reader closed the pipe: rich would exit 1 (lstmctl's "a check failed") itself; the
        CLI ends the run quietly, as for every other output."""
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def console(stderr=False) -> Console:
    # Rich drops colour codes by itself when the stream is not a terminal.
    return _Console(file=None if stderr else stdout_text(), stderr=stderr, highlight=False, emoji=False, soft_wrap=False, width=console_width(sys.stderr if stderr else sys.stdout))


def shown(value):
    """Facts for a table: every string in them through errors.show_lines, before rich measures
    and lays it out (a name from a file then keeps its width and is never cut short; the
    console's own escaping, _Console.render, is the net under every other string)."""
    if isinstance(value, str):
        return show_lines(value)
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown(v) for v in value]
    return value


def colour_off(out: Console) -> bool:
    """No colour reaches the reader: piped, NO_COLOR, TERM=dumb (rich has no colour system)."""
    return out.color_system is None or out.no_color


def shape_text(shape) -> str:
    if shape is None:
        return "?"
    dims = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _shapes(shapes) -> str:
    if not shapes:
        return "?"
    return ", ".join(shape_text(s) for s in shapes)


def _num(x, digits: int = 4) -> str:
    """A number to `digits` significant digits; a string (the report's "nan", "inf") as it is."""
    return x if isinstance(x, str) else f"{x:.{digits}g}"


def array_text(a, full=False, precision=None, width=100, threshold=40, edgeitems=2) -> str:
    """NumPy's text of `a`: everything with `full`, else summarised beyond `threshold` elements."""
    a = np.asarray(a)
    precision = 6 if precision is None else precision
    width = max(20, width)
    if full:
        return np.array2string(a, precision=precision, threshold=sys.maxsize, max_line_width=width)
    return np.array2string(a, precision=precision, threshold=threshold, edgeitems=edgeitems, max_line_width=width)


def _panel_width(out: Console) -> int:
    """The text width inside a Panel (borders and padding) on `out`, at most 100 as before."""
    return min(100, out.width - 4)


# --- inspect ---------------------------------------------------------------------------------


def _saved_by(facts) -> str:
    fmt = facts["format"]
    if fmt.startswith("npz-"):
        return f"not recorded: recurrent weights imported with --convention {fmt[4:]}"
    if fmt in ("tf1-checkpoint", "tf2-checkpoint") or (fmt == "savedmodel" and not facts["keras_version"]):
        return "TensorFlow (" + ("tf.compat.v1 Saver" if fmt == "tf1-checkpoint" else "no Keras version recorded") + ")"
    if fmt.startswith("pytorch-"):
        return "PyTorch (torch.save)"
    if fmt == "safetensors":
        return "not recorded: a state_dict in PyTorch's layout"
    if fmt == "onnx":
        return f"ONNX exporter {esc(facts['backend'] or 'not named')}"
    if fmt == "tflite":
        return f"TensorFlow Lite converter ({esc(facts['backend'])})"
    backend = f", backend {esc(facts['backend'])}" if facts.get("backend") else ""
    return f"Keras {esc(facts['keras_version'] or 'unknown (not recorded)')}{backend}"


def _header(facts) -> Panel:
    m = facts["model"]
    lines = [
        f"[bold]file[/]            {esc(facts['file'])}",
        f"[bold]format[/]          {facts['format_description']}",
        f"[bold]saved by[/]        {_saved_by(facts)}",
        *([f"[bold]hard_sigmoid[/]    {facts['hard_sigmoid']}"] if facts["hard_sigmoid"] else []),  # an ONNX graph without HardSigmoid gates: none
        f"[bold]model[/]           {esc(m['class_name'])} '{esc(m['name'])}', {facts['params']:,} parameters",
    ]
    for spec in m["inputs"]:
        lines.append(f"[bold]input[/]           {esc(spec['name'])} {shape_text(spec['shape'])} {esc(spec['dtype'])}")
    if m["outputs"]:
        lines.append(f"[bold]outputs[/]         {esc(', '.join(m['outputs']))}")
    for note in facts["notes"]:
        lines.append(f"[yellow]note[/]            {esc(note)}")
    return Panel("\n".join(lines), title="lstmctl inspect", expand=False)


def _graph(facts) -> Table:
    table = Table(title="Layers", title_justify="left")
    for col in ("layer", "class", "input → output", "params", "fed by"):
        table.add_column(col, justify="right" if col == "params" else "left", no_wrap=col == "params", overflow="fold")  # folded when narrow, never elided
    for layer in facts["layers"]:
        name = "  " * layer["depth"] + esc(layer["name"])
        cls = esc(layer["class_name"]) + (" [yellow](opaque)[/]" if layer["kind"] == "opaque" else "") + ("" if layer["trainable"] else " (frozen)")
        io_text = f"{_shapes(layer['input_shapes'])} → {_shapes(layer['output_shapes'])}" if layer["input_shapes"] else _shapes(layer["output_shapes"])
        call = layer.get("settings", {}).get("call") if layer["kind"] == "op" else None
        fed = esc(call or ", ".join(layer["inbound"]))  # an op shows what it computes: mean(lstm, axis=1)
        if layer["initial_state_from"]:
            fed += f"; initial_state ← {esc(', '.join(layer['initial_state_from']))}"
        table.add_row(name, cls, io_text, f"{layer['params']:,}", fed)
    return table


_STAT_KEYS = {"mean": "mean", "std": "std", "min": "min", "max": "max", "‖·‖": "norm"}


def _gate_table(cell, digits=4, narrow=False) -> Table:
    """The gate statistics. `narrow`: the statistics to show (a tuple of _STAT_KEYS), with the
    gate's name and fused columns listed elsewhere (see _gate_tables), leaving numbers the width."""
    table = Table(box=None, pad_edge=False)
    stats = ("mean", "std", "min", "max", "‖·‖") if narrow is False else narrow
    heads = ("gate", "fused columns", "", "shape") if narrow is False else ("", "shape")
    for col in (*heads, *stats):
        numeric = col not in ("gate", "fused columns", "")
        table.add_column(col, justify="right" if numeric else "left", overflow="fold", no_wrap=col == "shape")  # a number is folded at worst, never cut short
    for row in cell["gates"]:
        first = True
        for part in ("W", "U", "b", "rb"):
            if part not in row:
                continue
            s = row[part]
            lo, hi = row["columns"]
            shape = shape_text(s["shape"]) + (f" [red]{s['nonfinite']} NaN/Inf[/]" if "nonfinite" in s else "")
            numbers = [_num(s[_STAT_KEYS[k]], digits) for k in stats]
            if narrow is False:
                table.add_row(f"{row['gate']}  {row['name']}" if first else "", f"[..., {lo}:{hi}]" if first else "", part, shape, *numbers)
            else:
                table.add_row(f"{row['gate'] if first else ' '} {part}", shape, *numbers)
            first = False
    return table


def _gate_tables(cell, out: Console, digits=4) -> list:
    """The gate table as it fits the panel on `out`: as one table when it can, else with each
    gate's name and fused columns listed above a narrower table."""
    from rich.measure import Measurement

    width = out.width - 4
    wide = _gate_table(cell, digits)
    if Measurement.get(out, out.options.update_width(1 << 20), wide).minimum <= width:
        return [wide]
    names = "; ".join(f"{row['gate']} {row['name']} [..., {row['columns'][0]}:{row['columns'][1]}]" for row in cell["gates"])
    tables = fitted_tables(out, width, lambda chosen, part: _gate_table(cell, digits, narrow=tuple(chosen)), list(_STAT_KEYS))
    return [Text(f"gates (fused columns): {names}"), *tables]


def cell_lines(cell, digits=4) -> list:
    lines = [
        f"units {cell['units']}, input_dim {cell['input_dim']}; kernel W {shape_text(cell['kernel_shape'])}, "
        f"recurrent_kernel U {shape_text(cell['recurrent_kernel_shape'])}, bias {shape_text(cell['bias_shape']) if cell['bias_shape'] else 'none (use_bias=False)'}",
        f"activation {cell['activation']}, recurrent_activation {cell['recurrent_activation'] or '-'}"
        + (f"; reset_after={cell['reset_after']}" if "reset_after" in cell else ""),
    ]
    if "kernel_size" in cell:  # a ConvLSTM: its units are filters, its gates convolutions
        lines.append(
            f"filters {cell['filters']}, kernel_size {tuple(cell['kernel_size'])}, strides {tuple(cell['strides'])}, padding {cell['padding']}, "
            f"dilation_rate {tuple(cell['dilation_rate'])}, {cell['data_format']}; the recurrent convolution: {cell['recurrent_convolution']}"
        )
    if "equations" in cell:
        eq = cell["equations"]
        states = " and ".join(f"{k} ({v} values)" for k, v in eq["state_sizes"].items())
        lines.append(f"one step, carrying {states}; {eq['sizes']}:")
        lines.extend(f"  {step}" for step in eq["step"])
        if "colah" in eq:
            lines.append(eq["colah"])
    if "hard_sigmoid" in cell:
        lines.append(f"hard_sigmoid here is {cell['hard_sigmoid']}")
    if "forget_bias" in cell:
        fb = cell["forget_bias"]
        lines.append(f"forget-gate bias b_f: mean {_num(fb['mean'], digits)}, min {_num(fb['min'], digits)}, max {_num(fb['max'], digits)} ({fb['note']})")
    return lines


def _cells(rec, prefix="") -> list:
    """(label, cell facts) for every cell of a recurrent layer: its directions, a stack's cells."""
    if "directions" in rec:
        return [item for d, facts in rec["directions"].items() for item in _cells(facts, f"{prefix}{d}")]
    if "cells" in rec:
        return [
            (f"{prefix + ' ' if prefix else ''}{c['name'].rsplit('/', 1)[1]} ({c['class_name']}{'' if c['trainable'] else ', frozen'}) → {c['feeds']}:", c)
            for c in rec["cells"]
        ]
    return [(f"{prefix}:" if prefix else "", rec)]


def _recurrent_panel(layer, out: Console, digits=4) -> Panel:
    rec = layer["recurrent"]
    flags = ", ".join(f"{k}={rec[k]}" for k in ("return_sequences", "return_state", "go_backwards", "stateful"))
    masked = {True: "yes", False: "no", None: "unknown"}[rec["masked_input"]]
    parts = [Text.from_markup(f"{flags}; receives a mask: {masked}" + (f"; merge_mode={rec['merge_mode']}" if "merge_mode" in rec else ""), emoji=False)]
    if "returns" in rec:
        ret = Table(title="a call returns", title_justify="left", box=None, pad_edge=False)
        for col in ("#", "Keras calls it", "the math", "shape"):
            ret.add_column(col)
        for i, r in enumerate(rec["returns"]):
            ret.add_row(str(i), r["keras"], r["math"], shape_text(r["shape"]))
        parts.append(ret)
    if not layer["trainable"]:
        parts.append(Text("frozen: trainable=False (training leaves these weights alone)"))
    for label, cell in _cells(rec):
        if label:
            parts.append(Text(label, style="bold"))
        parts.extend(Text(line) for line in cell_lines(cell, digits))
        parts.extend(_gate_tables(cell, out, digits))
    for note in layer["notes"]:
        parts.append(Text(f"note: {note}", style="yellow"))
    return Panel(Group(*parts), title=Text(f"{layer['name']} ({layer['class_name']})"), title_align="left", expand=False)


INSPECT_SUMMARY_THRESHOLD = 1000  # --gate matrices with more elements are summarised unless --full


def _module_tree(rows) -> Table:
    """A whole pickled torch module: each module's name (indented by depth), class path and settings."""
    table = Table(title="Module tree (pickled classes, read as data)", title_justify="left", box=None, pad_edge=False)
    for column in ("module", "class", "settings"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(Text("  " * row["depth"] + row["name"]), Text(row["class"]), Text(row["settings"]))
    return table


def render_inspect(facts, out: Console, gate_arrays: dict | None = None, full=False, precision=None):
    """precision: significant digits of the gate statistics (default 4) and decimals of the
    --gate matrices (default 6)."""
    digits = 4 if precision is None else precision
    facts = shown(facts)
    out.print(_header(facts))
    if facts.get("module_tree"):
        out.print(_module_tree(facts["module_tree"]))
    out.print(_graph(facts))
    unlisted = facts.get("unlisted") or {}
    if unlisted.get("layers"):
        classes = sorted(unlisted["classes"].items(), key=lambda kv: -kv[1])
        counts = ", ".join(f"{n:,} {esc(cls)}" for cls, n in classes[:5]) + (f", {len(classes) - 5} more classes" if len(classes) > 5 else "")
        recurrent = f", {unlisted['recurrent']:,} of them recurrent" if unlisted["recurrent"] else ""
        out.print(Text.from_markup(f"[yellow]the first {len(facts['layers']):,} of {len(facts['layers']) + unlisted['layers']:,} layers are listed; {unlisted['layers']:,} more ({counts}){recurrent}: --all lists every one, --layer NAME shows one[/]", emoji=False))
    for recurrent, group in groupby(facts["layers"], key=lambda layer: "recurrent" in layer):
        if recurrent:
            for layer in group:
                out.print(_recurrent_panel(layer, out, digits))
            continue
        said = [f"{layer['name']}: {'; '.join(layer['notes'])}" for layer in group if layer["kind"] == "opaque" and layer["notes"]]
        if said:  # one print for the run of them: rich takes about a millisecond a print
            out.print(Text("\n".join(said), style="yellow"))
    if gate_arrays:
        for key, value in gate_arrays.items():
            text = array_text(value, full=full, precision=precision, width=_panel_width(out), threshold=INSPECT_SUMMARY_THRESHOLD, edgeitems=3)
            out.print(Panel(text, title=Text(show_lines(f"{key} {shape_text(value.shape)}")), title_align="left", expand=False))
            if not full and np.size(value) > INSPECT_SUMMARY_THRESHOLD:
                out.print(Text(f"{key}: {np.size(value):,} values, summarised (--full prints every one)", style="yellow"))


# --- run -------------------------------------------------------------------------------------


def render_arrays(items, out: Console, full=False, notes=(), precision=None):
    """items: (key, label, array) triples. precision: decimals shown (default 6)."""
    for note in notes:
        out.print(Text(show_lines(note), style="yellow"))
    for key, label, array in items:
        title = show_lines(f"{key}  {shape_text(array.shape)} {array.dtype}" + (f"  — {label}" if label else ""))
        out.print(Panel(array_text(array, full=full, precision=precision, width=_panel_width(out)), title=Text(title), title_align="left", expand=False))


# --- trace -----------------------------------------------------------------------------------

_SEQUENTIAL = ((0x44, 0x01, 0x54), (0x21, 0x91, 0x8C), (0xFD, 0xE7, 0x25))  # viridis ends and middle: 0 … 1
_DIVERGING = ((0x3B, 0x4C, 0xC0), (0xF7, 0xF7, 0xF7), (0xB4, 0x04, 0x26))  # coolwarm: −1 … 0 … 1
MAX_HEAT_COLUMNS = 96
MAX_HEAT_ROWS = 48
MAX_TABLE_ROWS = 40
MAX_TABLE_UNITS = 4
RAMP = " .:-=+*#%@"  # heatmap shades, low to high, when colour is off


def colour(value: float, lo: float, hi: float, diverging: bool) -> str:
    """Hex colour of `value` on a three-stop scale from lo to hi (clipped)."""
    stops = _DIVERGING if diverging else _SEQUENTIAL
    x = 0.0 if hi == lo else min(max((value - lo) / (hi - lo), 0.0), 1.0)
    seg = 0 if x <= 0.5 else 1
    t = x * 2 - seg
    a, b = stops[seg], stops[seg + 1]
    return "#" + "".join(f"{round(p + (q - p) * t):02x}" for p, q in zip(a, b))


def bin_mean(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    n = values.shape[axis]
    edges = np.linspace(0, n, min(n, size) + 1).round().astype(int)
    return np.stack([values.take(range(a, b), axis=axis).mean(axis=axis) for a, b in zip(edges[:-1], edges[1:])], axis=axis), edges


def shade(value: float, lo: float, hi: float) -> str:
    """The RAMP character of `value` from lo to hi (clipped): ten equal bands; '?' for NaN."""
    if value != value:
        return "?"
    x = 0.0 if hi == lo else min(max((value - lo) / (hi - lo), 0.0), 1.0)
    return RAMP[min(int(x * len(RAMP)), len(RAMP) - 1)]


def heatmap(values: np.ndarray, units, time_index, title: str, diverging: bool, ramp: bool = False):
    """A (time, units) array as coloured cells: a row per unit, a column per step (binned by
    averaging when there are more than fit; the returned notes say so). With `ramp` (colour is
    off: piped, NO_COLOR, TERM=dumb) each cell is a RAMP character instead, over the same range."""
    if ramp:
        return _shade_heatmap(values, units, time_index, title, diverging)
    lo, hi = (-1.0, 1.0) if diverging else (0.0, 1.0)
    grid, u_edges, notes, width = _heat_grid(values)
    cell = "█" * width
    text = Text(show_lines(f"{title}  (colour scale {lo:g} … {hi:g}; rows: units, columns: steps t={time_index[0]}…{time_index[-1]})\n"), style="bold")
    for r in range(grid.shape[1]):
        a, b = u_edges[r], u_edges[r + 1]
        label = f"u{units[a]}" if b - a == 1 else f"u{units[a]}-{units[b - 1]}"
        text.append(f"{label:>9} ")
        for c in range(grid.shape[0]):
            text.append(cell, style=colour(float(grid[c, r]), lo, hi, diverging))
        text.append("\n")
    legend = " " * 10 + "".join(Text("█", style=colour(lo + (hi - lo) * k / 15, lo, hi, diverging)).markup for k in range(16))
    text.append_text(Text.from_markup(f"{legend} {lo:g} → {hi:g}\n", emoji=False))
    return text, notes


def _heat_grid(values: np.ndarray):
    """The binned grid, its unit edges, the notes on binning, and the cell width."""
    notes = []
    grid, t_edges = bin_mean(values.astype(np.float64), MAX_HEAT_COLUMNS, 0)
    grid, u_edges = bin_mean(grid, MAX_HEAT_ROWS, 1)
    if len(t_edges) - 1 < values.shape[0]:
        notes.append(f"{values.shape[0]} steps shown as {len(t_edges) - 1} columns, each the mean of ~{values.shape[0] / (len(t_edges) - 1):.1f} steps")
    if len(u_edges) - 1 < values.shape[1]:
        notes.append(f"{values.shape[1]} units shown as {len(u_edges) - 1} rows, each the mean of ~{values.shape[1] / (len(u_edges) - 1):.1f} units")
    width = max(1, min(3, MAX_HEAT_COLUMNS // max(grid.shape[0], 1)))  # wider cells for short sequences
    return grid, u_edges, notes, width


def _shade_heatmap(values: np.ndarray, units, time_index, title: str, diverging: bool):
    """heatmap() without colour: RAMP characters, low to high, and a legend line naming the ends."""
    lo, hi = (-1.0, 1.0) if diverging else (0.0, 1.0)
    grid, u_edges, notes, width = _heat_grid(values)
    text = Text(show_lines(f"{title}  (shade scale {lo:g} … {hi:g}; rows: units, columns: steps t={time_index[0]}…{time_index[-1]})\n"), style="bold")
    for r in range(grid.shape[1]):
        a, b = u_edges[r], u_edges[r + 1]
        label = f"u{units[a]}" if b - a == 1 else f"u{units[a]}-{units[b - 1]}"
        text.append(f"{label:>9} " + "".join(shade(float(grid[c, r]), lo, hi) * width for c in range(grid.shape[0])) + "\n")
    text.append(f"{'shades':>9} \"{RAMP}\": \"{RAMP[0]}\" = {lo:g} (low) … \"{RAMP[-1]}\" = {hi:g} (high)\n")
    return text, notes


def svg_of(draw, title: str) -> bytes:
    """What `draw(console)` prints, as an SVG image (rich's recording console, true colour)."""
    import io

    recorder = _Console(record=True, width=140, file=io.StringIO(), force_terminal=True, color_system="truecolor", no_color=False, emoji=False)
    draw(recorder)
    return recorder.export_svg(title=title).encode()


def fitted_tables(out: Console, width: int, build, columns: list, probe=None) -> list:
    """build(chosen_columns, title_suffix) -> Table, as few tables as keep every number whole at
    `width`: the columns are split across tables (each repeating the key columns) when one table
    cannot fit. A single column too wide on its own is folded by rich, never cut with an ellipsis.
    probe(chosen_columns) -> a Table as wide as build's at its narrowest (say, one row of each
    column's longest cell), measured instead of a long table."""
    from rich.measure import Measurement

    probe = probe or (lambda chosen: build(chosen, ""))

    def fits(chosen):  # measured unconstrained: a measurement at `width` is capped at it
        return Measurement.get(out, out.options.update_width(1 << 20), probe(chosen)).minimum <= width

    if fits(columns):
        return [build(columns, "")]
    groups, chosen = [], []
    for col in columns:
        if chosen and not fits(chosen + [col]):
            groups.append(chosen)
            chosen = []
        chosen.append(col)
    groups.append(chosen)
    return [build(g, f" ({k + 1} of {len(groups)})") for k, g in enumerate(groups)]


def render_trace(tr, out: Console, table=True, heat=True, full=False, summary=True, precision=None):
    """precision: decimals of the step table's and the summary's numbers (default 4 and 3)."""
    from ..gates import GATE_NAMES

    step_digits, summary_digits = (4, 3) if precision is None else (precision, precision)
    ramp = colour_off(out)

    out.print(Text(show_lines(f"trace of layer '{tr.layer}' ({tr.kind}), sample {tr.sample}" + (f"; {'; '.join(tr.notes)}" if tr.notes else "")), style="bold"))
    for key, value in tr.initial.items():  # where the recurrence starts when the layer is given its states
        out.print(Text(f"initial state {key}: " + " ".join(f"{v:+.{step_digits}f}" for v in value[:MAX_TABLE_UNITS]) + (" …" if len(value) > MAX_TABLE_UNITS else "")))
    for direction in tr.directions:
        label = f" ({direction})" if direction else ""
        names = [f"gate_{g}" for g in tr.gate_names] + (["c"] if tr.kind == "lstm" else []) + ["h"]
        times = tr.time_index[direction]
        if table:
            shown = list(range(min(len(tr.units), MAX_TABLE_UNITS)))
            rows = list(range(len(times)))
            if not full and len(rows) > MAX_TABLE_ROWS:
                half = MAX_TABLE_ROWS // 2
                rows = rows[:half] + [None] + rows[-half:]

            kept = [r for r in rows if r is not None]
            cells = {n: [[f"{v:+.{step_digits}f}" for v in tr.arrays[tr.key(direction, n)][r, shown]] for r in kept] for n in names}
            row_of = {r: i for i, r in enumerate(kept)}

            def step_table(chosen, part="", probe=False):
                t = Table(title=Text(show_lines(f"{tr.layer}{label}: every gate at every step{part}")), title_justify="left")
                for col in ("step", "t", "unit"):
                    t.add_column(col, justify="right", no_wrap=True)
                for name in chosen:
                    g = name.removeprefix("gate_")
                    t.add_column(f"{g}: {GATE_NAMES[g]}" if name.startswith("gate_") else f"{name}_t", justify="right", overflow="fold")
                if probe:  # one row of the longest cells: as wide as the whole table at its narrowest
                    longest = [max(map(str, values), key=len, default="") for values in (tr.steps[kept].astype(int), times[kept].astype(int), tr.units[shown].astype(int))]
                    t.add_row(*longest, *[max((c for row in cells[n] for c in row), key=len, default="") for n in chosen])
                    return t
                for r in rows:
                    if r is None:
                        t.add_row("…", "…", "…", *["…"] * len(chosen))
                        continue
                    for k, j in enumerate(shown):
                        head = (str(int(tr.steps[r])), str(int(times[r]))) if k == 0 else ("", "")
                        t.add_row(*head, str(int(tr.units[j])), *[cells[n][row_of[r]][k] for n in chosen], end_section=k == len(shown) - 1)
                return t

            for t in fitted_tables(out, out.width, step_table, names, probe=lambda chosen: step_table(chosen, probe=True)):
                out.print(t)
            if len(tr.units) > len(shown):
                out.print(Text(f"table shows {len(shown)} of {len(tr.units)} selected units (--units picks others); the heatmaps show all", style="yellow"))
            if len(rows) < len(times):
                out.print(Text(f"table shows the first and last {MAX_TABLE_ROWS // 2} of {len(times)} steps (--full or --steps for more)", style="yellow"))
        if heat:
            for name in names:
                g = name.removeprefix("gate_")
                title = f"{tr.layer}{label} {g} ({GATE_NAMES[g]})" if name.startswith("gate_") else f"{tr.layer}{label} {'c_t (cell state)' if name == 'c' else 'h_t (hidden state)'}"
                diverging = not name.startswith("gate_") or g in ("c", "h")
                text, notes = heatmap(tr.arrays[tr.key(direction, name)], tr.units, times, title, diverging, ramp=ramp)
                out.print(text)
                for note in notes:
                    out.print(Text(f"note: {note}", style="yellow"))
        rows = tr.summary(direction) if summary else []
        if rows and len(rows[0]) > 1:

            def summary_table(keys, part="", rows=rows):
                s = Table(title=Text(show_lines(f"{tr.layer}{label}: per-unit summary over {len(times)} steps{part} (saturated: below 0.1 or above 0.9; half-life: ln 0.5 / ln mean)")), title_justify="left")
                for key in ("unit", *keys):
                    s.add_column(key.replace("_", " "), justify="right", overflow="fold", no_wrap=key == "unit")
                for row in rows:
                    s.add_row(*[str(row[k]) if isinstance(row[k], int) else f"{row[k]:.{summary_digits}f}" for k in ("unit", *keys)])
                return s

            for s in fitted_tables(out, out.width, summary_table, [k for k in rows[0] if k != "unit"]):
                out.print(s)


# --- comparison and diagnosis ------------------------------------------------------------------


def _err(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def _growth(values, limit=8) -> str:
    shown = ", ".join(f"{v:.2g}" for v in values[:limit])
    return shown + (f", … ({len(values)} steps)" if len(values) > limit else "")


def render_comparison(reports, out: Console):
    table = Table(title="comparison with the reference", title_justify="left")
    for col in ("key", "shape", "max |err|", "mean |err|", "max rel", "mean rel", "atol / rtol", "result", "diverges at step"):
        table.add_column(col, justify="left" if col in ("key", "result") else "right")
    for r in reports:
        result = "[green]pass[/]" if r.ok else "[red]FAIL[/]" + (f" ({esc(r.problem)})" if r.problem else "")
        table.add_row(Text(show_lines(r.key)), shape_text(r.shape), _err(r.max_abs), _err(r.mean_abs), _err(r.max_rel), _err(r.mean_rel), f"{r.atol:g} / {r.rtol:g}", result,
                      "-" if r.first_divergent_step is None else str(r.first_divergent_step))  # fmt: skip
    out.print(table)
    for r in reports:
        if r.growth:
            out.print(Text(show_lines(f"{r.key}: max |error| per step from step {r.first_divergent_step} on: {_growth(r.growth)}")))
    failed = sum(not r.ok for r in reports)
    out.print(Text(f"{len(reports) - failed} of {len(reports)} keys within tolerance", style="bold green" if not failed else "bold red"))


def render_diagnosis(d, out: Console):
    table = Table(title=Text(show_lines(f"diagnosis of layer '{d.layer}' (comparing your {d.compared} with each convention)")), title_justify="left")
    for col in ("hypothesis", "max |err|", "matches", "what it means"):
        table.add_column(col, justify="right" if col == "max |err|" else "left", overflow="fold")
    for r in d.results:
        table.add_row(r["id"], f"{r['max_abs_error']:.3g}", "[green]yes[/]" if r["matches"] else "no", Text(r["explanation"]))
    out.print(table)
    matches = [r for r in d.results if r["matches"]]
    if d.match:
        out.print(Text(f"Your outputs match {d.reference} for this layer.", style="bold green"))
    elif matches:
        out.print(Text(f"Your outputs are reproduced by '{matches[0]['id']}': {matches[0]['explanation']}.", style="bold yellow"))
    else:
        out.print(Text("No known convention reproduces your outputs (best first above).", style="bold red"))
    if d.first_divergent_step is not None:
        out.print(Text(f"Against {d.reference} your sequence first diverges at step {d.first_divergent_step}; max |error| per step from there: {_growth(d.growth)}"))


def render_port_comparison(c, out: Console):
    """`compare MODEL PORT`: per mapped layer, each gate's weights (the worst of W, U, b) and the
    layer's sequence and states, then the traps found and a verdict."""
    for layer in c.layers:
        table = Table(title=Text(show_lines(f"reference {layer.reference} ↔ port {layer.port}: {layer.what}")), title_justify="left")
        for col in ("compared", "max |diff|", "result", "first differs at step"):
            table.add_column(col, justify="right" if col in ("max |diff|", "first differs at step") else "left")
        gates = {}
        for r in layer.weights:
            half, _, leaf = r.key.rpartition("/")
            part, _, gate = leaf.partition("_")
            gates.setdefault((half, gate or "-"), []).append((part, r))
        for (half, gate), parts in gates.items():
            worst = max((r.max_abs or 0.0) for _, r in parts)
            bad = [p for p, r in parts if not r.ok]
            table.add_row(Text(show_lines(f"{half + ' ' if half else ''}gate {gate}: {', '.join(p for p, _ in parts)}")), _err(worst), "[green]same[/]" if not bad else f"[red]differs[/] ({esc(', '.join(bad))})", "")
        for r in layer.outputs:
            table.add_row(Text(show_lines(r.key)), _err(r.max_abs), "[green]pass[/]" if r.ok else "[red]FAIL[/]", "-" if r.first_divergent_step is None else str(r.first_divergent_step))
        out.print(table)
        for finding in layer.findings:
            out.print(Text(show_lines(f"trap: {finding}"), style="yellow"))
    if c.outputs:
        render_comparison(c.outputs, out)
    for note in c.notes:
        out.print(Text(show_lines(f"note: {note}")))
    bad = [lay for lay in c.layers if not lay.ok]
    verdict = f"{len(c.layers) - len(bad)} of {len(c.layers)} recurrent layers of the port agree with the reference" + ("" if not c.outputs else f", {sum(r.ok for r in c.outputs)} of {len(c.outputs)} model outputs")
    out.print(Text(verdict, style="bold green" if c.ok else "bold red"))
