"""`lstmctl report`: one self-contained HTML page (or its data as JSON) about a model and an input.

`build_report(model, ...)` gathers the data: inspect's facts, the layer graph, every recurrent
layer's equations, gate statistics and W/U heatmaps, its trace (each gate, c_t and h_t over steps ×
units, binned as `trace --view heatmap` bins them) for up to MAX_SAMPLES samples, the model's
outputs and final states. `render_html(data)` writes the page from that data alone: inline CSS,
JS and SVG, no request of any kind (a Content-Security-Policy forbids them), and every string that
came from the model file HTML-escaped (in the script's JSON, `<`, `>` and `&` as \\u escapes).
"""

from .data import build_report
from .page import render_html

__all__ = ["build_report", "render_html"]
