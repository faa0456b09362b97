"""`lstmctl compare`: two result files, key by key, as `run --expect` compares; or, with --input,
a model and its port (PyTorch, safetensors, ONNX or another Keras file) layer by layer.

The reference is the second file of two result files (RESULT against REFERENCE, as `run --expect`
takes it), and the first of two models (MODEL, the original, against its PORT): the metavars say so.
"""

import click

from ..errors import UsageError
from .options import THREADS, TIME_MAJOR, report_comparison, time_major_input


@click.command()
@click.argument("result", type=click.Path(), metavar="RESULT|MODEL")
@click.argument("reference", type=click.Path(), metavar="REFERENCE|PORT")
@click.option("--input", "-i", "inputs", multiple=True, help="Compare MODEL (the reference) with its PORT, both run on this input (X.npy, X.npz, X.csv, X.json, or NAME=PATH).")
@TIME_MAJOR
@click.option("--atol", multiple=True, help="Absolute tolerance (default 1e-5); KEY=VALUE for one key. Repeatable.")
@click.option("--rtol", multiple=True, help="Relative tolerance (default 1e-5); KEY=VALUE for one key. Repeatable.")
@click.option("--map", "mapping", multiple=True, metavar="REF_KEY=KEY", help="Compare REFERENCE's REF_KEY with RESULT's KEY (e.g. seq=lstm/sequence). Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@THREADS
def compare(result, reference, inputs, time_major, atol, rtol, mapping, fmt):
    """RESULT REFERENCE: two result files (.npz as `run --format npz` writes, or .npy); REFERENCE
    is the truth, and each of its arrays is checked against RESULT's, as `run --expect` does.

    MODEL PORT --input X: MODEL is the reference and PORT its port (PyTorch, safetensors, ONNX or
    another Keras file): their recurrent layers are mapped by order and shape, each gate's weights
    compared, both run on X, and each layer's sequence and states compared (the step where they
    first differ, and by how much), with the usual porting traps named.
    Exit 0 all match, 1 any differs, 2 two models without --input, 3 bad file.

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
    _result_files(result, reference)
    reports = compare_files(result, reference, atol, rtol, parse_mapping(mapping))
    report_comparison(reports, reference, fmt, "compare")


def _result_files(*paths):
    """Without --input both paths are result files: a model among them is a usage error that says
    what two models need, before either is read as arrays."""
    from ..formats import check_kind, is_model

    models = []
    for path in paths:
        check_kind(path, "a result file or a model")
        if is_model(path):
            models.append(path)
    if len(models) == 2:
        raise UsageError(f"{models[0]} and {models[1]} are models: comparing MODEL (the reference) with its PORT runs both on an input; give --input X (e.g. X.npy)")
    if models:
        raise UsageError(f"{models[0]} is a model, not a result file: compare MODEL PORT --input X compares two models; to check a model's results against a REFERENCE file, run MODEL --input X --expect REFERENCE")


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
        from ..arrays.writers import echo

        echo(json.dumps(c.as_dict(), indent=2))
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
