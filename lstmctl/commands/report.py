"""`lstmctl report`: one self-contained HTML page (or its data as JSON).
"""

import click

from .options import MODEL, THREADS, import_options, load_model, say


@click.command()
@MODEL
@click.option("--input", "-i", "inputs", multiple=True, help="As for run; without it, a seeded (seed 0) random input, and the page says so.")
@click.option("--layer", "layers", multiple=True, help="Only this recurrent layer (repeatable; default: every one).")
@click.option("--sample", type=int, default=0, show_default=True, help="The sample shown first; traces are precomputed for the first 4 samples and this one.")
@click.option("--output", "-o", required=True, help="The file to write; '-' for stdout.")
@click.option("--format", "fmt", type=click.Choice(["html", "json"]), default="html", show_default=True, help="json: the page's data.")
@import_options
@THREADS
def report(model, inputs, layers, sample, output, fmt, source):
    """One self-contained HTML page: layer graph, gates, traces as heatmaps, outputs and states.

    Everything is inline (CSS, JS, SVG): the page makes no request and opens from file://.

    \b
    Examples:
      lstmctl report model.keras --input x.npy -o report.html
      lstmctl report seq2seq.h5 --input encoder_in=a.npy --input decoder_in=b.npy -o report.html
      lstmctl report model.h5 --layer lstm --sample 2 -o report.html
      lstmctl report model.keras --format json -o report.json
    """
    import json

    from ..arrays.inputs import input_paths, parse_input_options
    from ..arrays.writers import refuse_overwrite, write
    from ..render.report import build_report, render_html

    refuse_overwrite({"-o": output}, {"MODEL": model, "--input": input_paths(inputs)})
    m = load_model(model, source)
    x = parse_input_options(inputs, m)
    if x is None and m.inputs:
        say("no --input given: using a random standard-normal input (seed 0)")
    data = build_report(m, x, layers=list(layers) or None, sample=sample)
    text = json.dumps(data, indent=1, allow_nan=False) + "\n" if fmt == "json" else render_html(data)
    write(text.encode(), output, binary=False)
