"""`lstmctl compare`: two result files, key by key, as `run --expect` compares; or, with --input,
a model and its port (PyTorch, safetensors, ONNX or another Keras file) layer by layer.
"""

import click

from .options import TIME_MAJOR, report_comparison, time_major_input


@click.command()
@click.argument("result", type=click.Path())
@click.argument("reference", type=click.Path())
@click.option("--input", "-i", "inputs", multiple=True, help="With two MODELS: the input both run on (X.npy, X.npz, X.csv, X.json, or NAME=PATH); makes this a model-vs-port comparison.")
@TIME_MAJOR
@click.option("--atol", multiple=True, help="Absolute tolerance (default 1e-5); KEY=VALUE for one key. Repeatable.")
@click.option("--rtol", multiple=True, help="Relative tolerance (default 1e-5); KEY=VALUE for one key. Repeatable.")
@click.option("--map", "mapping", multiple=True, metavar="REF_KEY=KEY", help="Compare REFERENCE's REF_KEY with RESULT's KEY (e.g. seq=lstm/sequence). Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def compare(result, reference, inputs, time_major, atol, rtol, mapping, fmt):
    """Compare two result files (.npz as `run --format npz` writes, or .npy): every array of
    REFERENCE against RESULT's, as `run --expect` does. With --input, RESULT and REFERENCE are a
    MODEL and its PORT: their recurrent layers are mapped by order and shape, each gate's weights
    compared, both run on the input, and each layer's sequence and states compared (the step where
    they first differ, and by how much), with the usual porting traps named.
    Exit 0 all match, 1 any differs, 3 bad file.

    \b
    Examples:
      lstmctl compare today.npz yesterday.npz
      lstmctl compare ours.npz keras_ref.npz --map seq=lstm/sequence --map h=lstm/h --atol 1e-4
      lstmctl compare model.keras port.pt --input x.npy     # also .onnx, .safetensors, .tflite
    """
    from ..analysis.compare import compare_files, parse_mapping
    from ..analysis.compare_tflite import compare_with_tflite

    if inputs:
        _models(result, reference, inputs, time_major, atol, rtol, mapping, fmt, compare_with_tflite)
        return
    if time_major:
        raise click.UsageError("--time-major applies to --input, for comparing two models")
    reports = compare_files(result, reference, atol, rtol, parse_mapping(mapping))
    report_comparison(reports, reference, fmt, "compare")


def _models(model, port, inputs, time_major, atol, rtol, mapping, fmt, compare_models):
    import json

    import lstmctl

    from ..arrays.inputs import parse_input_options
    from ..errors import CheckFailed

    if mapping:
        raise click.UsageError("--map applies to result files; two models are mapped layer by layer")
    reference = lstmctl.load(model)
    x = time_major_input(parse_input_options(inputs, reference), time_major)
    c = compare_models(reference, lstmctl.load(port), x, atol, rtol)
    if fmt == "json":
        click.echo(json.dumps(c.as_dict(), indent=2))
    else:
        from ..render.console import console, render_port_comparison

        render_port_comparison(c, console())
    if not c.ok:
        first = next((lay for lay in c.layers if not lay.ok), None)
        if first is None:
            raise CheckFailed(f"{port}: the recurrent layers agree with {model}, the model outputs do not")
        bad = next((r for r in first.outputs if not r.ok), None) or next(r for r in first.weights if not r.ok)
        step = f" from step {bad.first_divergent_step}" if bad.first_divergent_step is not None else ""
        trap = f"; {first.findings[0].split(': ', 1)[1]}" if first.findings else ""
        raise CheckFailed(f"{port} differs from {model}: layer {first.reference} ↔ {first.port}, {bad.key}{step} by up to {bad.max_abs:.3g}{trap}")
