"""`lstmctl trace`: every gate at every step of one recurrent layer.
"""

import click

from .options import MODEL, THREADS, import_options, load_model, output_format, precision_option, say


@click.command()
@MODEL
@click.option("--input", "-i", "inputs", multiple=True, help="As for run; without it, a seeded random input.")
@click.option("--layer", help="The recurrent layer to trace (needed when the model has several).")
@click.option("--sample", type=int, default=0, show_default=True, help="Which sample of the batch.")
@click.option("--units", help="Units to keep, e.g. 0:8 or 1,4,7 (default all).")
@click.option("--steps", help="Steps to keep, e.g. 0:50 or -10: (default all).")
@click.option("--pre", is_flag=True, help="Also keep the gates' pre-activations (pre_<g>).")
@click.option("--direct", is_flag=True, help="Feed the input straight to --layer.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--timesteps", type=click.IntRange(1), help="Time steps of the random input, for variable-length models.")
@click.option("--view", type=click.Choice(["all", "table", "heatmap", "summary"]), default="all", show_default=True)
@click.option("--svg", type=click.Path(dir_okay=False), help="Also save the heatmaps (and summary) as an SVG image.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "npz"]), help="Default: from --output's suffix (.csv .json .npz), else table.")
@click.option("--output", "-o", help="File for csv/json/npz (default stdout).")
@click.option("--full", is_flag=True, help="Every step in the table.")
@precision_option("default: 4 decimals in the step table, 3 in the summary")
@import_options
@THREADS
def trace(model, inputs, layer, sample, units, steps, pre, direct, seed, timesteps, view, svg, fmt, output, full, precision, source):
    """Every gate at every step of one recurrent layer (i, f, c̃, o or z, r, h̃), with c_t and h_t.

    \b
    Examples:
      lstmctl trace model.keras --input x.npy
      lstmctl trace model.h5 --layer decoder --steps 0:5 --units 0:4 --view table
      lstmctl trace model.keras --input x.npy -o trace.csv
    """
    fmt = output_format(fmt, output, ("table", "csv", "json", "npz"))
    from ..analysis.trace import trace as do_trace
    from ..arrays.inputs import input_paths, parse_input_options
    from ..arrays.writers import refuse_overwrite, to_bytes, write

    refuse_overwrite({"-o": output, "--svg": svg}, {"MODEL": model, "--input": input_paths(inputs)})
    from ..runner import random_inputs

    m = load_model(model, source, what_if=True, layer=layer.split("/")[0] if layer else None)
    x = parse_input_options(inputs, m, direct=direct)
    if x is None:
        if direct or not m.inputs:
            raise click.UsageError("--input is needed here")
        x = random_inputs(m, seed=seed, timesteps=timesteps)
        say(f"no --input given: using a random standard-normal input (seed {seed})")
    tr = do_trace(m, x, layer, sample=sample, direct=direct, pre=pre, units=units, steps=steps)
    if svg:
        from ..render.console import render_trace, svg_of

        write(svg_of(lambda out: render_trace(tr, out, table=False, heat=True), f"lstmctl trace {tr.layer}"), svg, binary=False)
    if fmt == "table":
        from ..render.console import console, render_trace

        render_trace(tr, console(), table=view in ("all", "table"), heat=view in ("all", "heatmap"), full=full, summary=view in ("all", "summary"), precision=precision)
        return
    if fmt == "csv":
        write(_trace_csv(tr).encode(), output, binary=False)
        return
    arrays = {**tr.arrays, **tr.initial}
    if fmt == "json":
        import json

        doc = {k: v.tolist() for k, v in arrays.items()}
        doc["units"], doc["steps"], doc["sample"] = tr.units.tolist(), tr.steps.tolist(), tr.sample
        doc["time_index"] = {d or tr.layer: t.tolist() for d, t in tr.time_index.items()}
        doc["summary"] = {d or tr.layer: tr.summary(d) for d in tr.directions}
        write((json.dumps(doc, indent=1) + "\n").encode(), output, binary=False)
        return
    write(to_bytes(arrays, "npz", output=output), output, binary=True)


def _trace_csv(tr) -> str:
    """One row per step: direction, step, t, then <name>_<unit> columns."""
    names = [n for n in sorted({k.rsplit("/", 1)[1] for k in tr.arrays})]
    header = ["direction", "step", "t"] + [f"{n}_{u}" for n in names for u in tr.units]
    lines = [",".join(header)]
    for d in tr.directions:
        for r, (step, t) in enumerate(zip(tr.steps, tr.time_index[d])):
            values = [f"{tr.arrays[tr.key(d, n)][r, j]:.9g}" for n in names for j in range(len(tr.units))]
            lines.append(",".join([d or "-", str(int(step)), str(int(t)), *values]))
    return "\n".join(lines) + "\n"
