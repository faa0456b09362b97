"""The command line: a few lines of option parsing over the Python API per command."""

import os
import signal
import sys

import click

from . import __version__
from .errors import EXIT_CHECK_FAILED, EXIT_INVALID, LstmctlError, UsageError

FORMATS_RUN = ("table", "json", "npz", "npy", "csv")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwound like Ctrl-C, so no partial or temporary file is left."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


_RECEIVED = []  # the termination signal, once one arrived


def _terminate(signum, frame):
    _RECEIVED.append(signum)
    raise Terminated(signum)


class _Group(click.Group):
    """Turns lstmctl's errors into one line on stderr and its exit code; never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LstmctlError as exc:
            kind = "check failed" if exc.exit_code == EXIT_CHECK_FAILED else "error"
            click.echo(f"lstmctl: {kind}: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Terminated as exc:
            click.echo(f"lstmctl: terminated by {signal.Signals(exc.signum).name}", err=True)
            ctx.exit(128 + exc.signum)
        except KeyboardInterrupt:
            click.echo("lstmctl: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # a bug in lstmctl: still one line, never a traceback
            if _RECEIVED:  # raised inside C code (NumPy) that the signal interrupted, and swallowed there
                click.echo(f"lstmctl: terminated by {signal.Signals(_RECEIVED[0]).name}", err=True)
                ctx.exit(128 + _RECEIVED[0])
            if os.environ.get("LSTMCTL_DEBUG"):
                raise
            click.echo(f"lstmctl: error: unexpected {type(exc).__name__}: {exc} (set LSTMCTL_DEBUG=1 for details)", err=True)
            ctx.exit(EXIT_INVALID)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lstmctl")
def main():
    """Show what is inside the recurrent layers of a saved Keras model (.keras, .h5), a TensorFlow
    checkpoint or SavedModel folder, without TensorFlow.

    Start with `lstmctl inspect MODEL` (the layers, what each recurrent layer returns, its
    gates), then `lstmctl run MODEL --input X.npy --return-state` for the numbers.

    Exit codes: 0 ok, 1 a check failed, 2 usage, 3 invalid, unsupported or unsafe input.
    """


MODEL = click.argument("model", envvar="LSTMCTL_MODEL", type=click.Path(dir_okay=True))
CONVENTIONS = ("keras", "pytorch", "tf1", "onnx")
_IMPORT_KEYS = ("convention", "forget_bias", "activation", "recurrent_activation", "hard_sigmoid", "name")


def import_options(command):
    """--convention and its companions, for every command that reads MODEL: an .npz of one
    recurrent layer's weights in another framework's layout is read as a model. The wrapped
    command receives them as one dict, `source`, to pass to `_load`."""
    import functools

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        source = {key: kwargs.pop(key) for key in _IMPORT_KEYS}
        return command(*args, source=source, **kwargs)

    options = [
        click.option("--convention", type=click.Choice(CONVENTIONS), help="MODEL is an .npz of one recurrent layer's weights in this framework's layout."),
        click.option("--forget-bias", type=float, help="For a TF1 checkpoint or --convention tf1: the forget_bias TF1 adds at run time (default 1.0); for run, trace and diagnose of any other model, a what-if: added to every LSTM's b_f."),
        click.option("--activation", help="With --convention or for a TF1 checkpoint: the cells' activation (default tanh); for run, trace and diagnose, a what-if on the recurrent layers."),
        click.option("--recurrent-activation", help="With --convention: the gates' activation (default sigmoid); for run, trace and diagnose, a what-if."),
        click.option("--hard-sigmoid", type=click.Choice(["keras2", "keras3"]), help="hard_sigmoid as clip(0.2x + 0.5) (keras2; the default with --convention) or clip(x/6 + 0.5) (keras3); for run, trace and diagnose, a what-if."),
        click.option("--name", help="With --convention: the imported layer's name (default: its kind, lstm / gru / simple_rnn)."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _output_format(fmt, output, choices) -> str:
    """--format, or the one --output's suffix names; a table is for the terminal only."""
    if fmt is None:
        suffix = os.path.splitext(output or "")[1].lower().lstrip(".")
        fmt = suffix if output not in (None, "-") and suffix in choices else "table"
    if fmt == "table" and output not in (None, "-"):  # `-o -` is standard output, where a table goes
        raise UsageError(f"--output writes {', '.join(c for c in choices if c != 'table')}: give --format or a file name ending in one")
    return fmt


def _load(model, source, what_if=False, layer=None):
    """The model MODEL names, read as --convention says. Without a convention, --forget-bias and
    --activation are how a TF1 checkpoint is read; otherwise these two, --recurrent-activation and
    --hard-sigmoid change the recurrent layers (all, or `layer`) for a what-if run, trace or diagnose."""
    import lstmctl

    from .whatif import override

    convention = source["convention"]
    if convention is None:
        if source["name"] is not None:
            raise UsageError("--name: applies only with --convention")
        changes = {k: source[k] for k in ("activation", "recurrent_activation", "hard_sigmoid", "forget_bias")}
        m = lstmctl.load(model)
        if m.format == "tf1-checkpoint" and (changes["forget_bias"] is not None or changes["activation"] is not None):
            m = lstmctl.load(model, forget_bias=1.0 if changes["forget_bias"] is None else changes["forget_bias"], activation=changes["activation"])
            changes["forget_bias"] = changes["activation"] = None
        given = [f"--{k.replace('_', '-')}" for k, v in changes.items() if v is not None]
        if given and not what_if:
            raise UsageError(f"{', '.join(given)}: a what-if for run, trace and diagnose, or with --convention for an .npz of weights")
        changed = override(m, **changes, layer=layer)
        if changed is not m:
            click.echo(f"lstmctl: {changed.notes[0]}", err=True)
        return changed
    if source["forget_bias"] is not None and convention != "tf1":
        raise click.UsageError("--forget-bias applies to --convention tf1 only")
    return lstmctl.load(
        model, convention=convention, forget_bias=1.0 if source["forget_bias"] is None else source["forget_bias"],
        activation=source["activation"], recurrent_activation=source["recurrent_activation"],
        name=source["name"], hard_sigmoid=source["hard_sigmoid"] or "keras2",
    )  # fmt: skip


def precision_option(default_text):
    """--precision N: the digits of numbers in table output (never npz/npy/json/csv)."""
    return click.option("--precision", type=click.IntRange(1, 17), help=f"Digits of the numbers in table output, 1..17 ({default_text}). Files and json are unaffected.")


@main.command()
@MODEL
@click.option("--layer", help="Show only this layer.")
@click.option("--gate", help="Also print this gate's W, U and b (i f c o, z r h; 'all' for SimpleRNN); summarised above 1000 values unless --full.")
@click.option("--full", is_flag=True, help="With --gate: print every value of big matrices instead of NumPy's summary.")
@precision_option("default: 4 significant digits in the gate statistics, 6 decimals in --gate matrices")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "dot", "mermaid"]), default="table", show_default=True, help="dot (Graphviz) and mermaid: the layer graph with shapes and initial_state links.")
@import_options
def inspect(model, layer, gate, full, precision, fmt, source):
    """File format, layer graph, and each recurrent layer's gates and returns.

    \b
    Examples:
      lstmctl inspect model.keras
      lstmctl inspect model.h5 --layer lstm --gate f      # the forget gate's W, U, b in full
      lstmctl inspect train/model.ckpt                    # a TF1 checkpoint: no TensorFlow needed
      lstmctl inspect my_model/ --format json             # a SavedModel folder
      lstmctl inspect seq2seq.h5 --format dot | dot -Tsvg > graph.svg
    """
    import json

    from .describe import inspect_facts

    m = _load(model, source)
    if fmt in ("dot", "mermaid"):
        from . import graphs

        if layer or gate:
            raise UsageError(f"--format {fmt} draws the whole model; drop --layer and --gate")
        click.echo(getattr(graphs, fmt)(inspect_facts(m)), nl=False)
        return
    facts = inspect_facts(m, layer)
    arrays = _gate_subset(m, layer, gate) if gate else None
    if fmt == "json":
        if arrays:
            facts["gate_arrays"] = {k: v.tolist() for k, v in arrays.items()}
        click.echo(json.dumps(facts, indent=2))
        return
    from .render import console, render_inspect

    render_inspect(facts, console(), arrays, full=full, precision=precision)


def _gate_subset(m, layer, gate):
    arrays = m.gates(layer)
    if gate == "all":
        return arrays
    picked = {k: v for k, v in arrays.items() if k.rsplit("/", 1)[1].split("_", 1)[-1] == gate}
    if not picked:
        raise LstmctlError(f"no gate named '{gate}' (LSTM: i f c o; GRU: z r h; SimpleRNN: all)")
    return picked


@main.command()
@MODEL
@click.option("--layer", help="Only this layer (default: every recurrent layer).")
@click.option("--gate", help="Only this gate (i f c o / z r h).")
@click.option("--part", type=click.Choice(["W", "U", "b", "rb"]), help="Only this matrix of the gate.")
@click.option("--format", "fmt", type=click.Choice(["npz", "npy", "json"]), default="npz", show_default=True)
@click.option("--output", "-o", help="File to write (default: stdout).")
@import_options
def gates(model, layer, gate, part, fmt, output, source):
    """Write the named gate matrices: <layer>/W_<g>, <layer>/U_<g>, <layer>/b_<g>.

    \b
    Examples:
      lstmctl gates model.keras -o gates.npz
      lstmctl gates model.h5 --layer lstm --gate f --part W --format npy -o W_f.npy
    """
    from .writers import to_bytes, write

    arrays = _load(model, source).gates(layer)
    if gate or part:
        def keep(key):
            leaf = key.rsplit("/", 1)[1]
            p, _, g = leaf.partition("_")
            return (gate is None or g == gate) and (part is None or p == part)

        arrays = {k: v for k, v in arrays.items() if keep(k)}
        if not arrays:
            raise LstmctlError("no matrix matches --gate/--part")
    write(to_bytes(arrays, fmt, choose="--layer, --gate and --part"), output, binary=fmt != "json")


@main.command()
@MODEL
@click.option("--input", "-i", "inputs", multiple=True, help="X.npy, X.npz, X.csv, X.json, '-' (stdin), or NAME=PATH (repeat).")
@click.option("--layer", help="The recurrent layer whose states to show (and whose --initial-state to set).")
@click.option("--return-sequences", is_flag=True, help="Show the whole-sequence output h_1..h_T (Keras's whole_seq_output).")
@click.option("--return-state", is_flag=True, help="Show the final states h_T and c_T (final_memory_state, final_carry_state).")
@click.option("--initial-state", "initial_state", multiple=True, help=".npz with h (and c), or .npy files h then c, for --layer.")
@click.option("--direct", is_flag=True, help="Feed the input straight to --layer instead of running the whole model.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), help="Compute in this dtype (default: the model's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random input used when --input is not given.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Batch size of the random input.")
@click.option("--timesteps", type=click.IntRange(1), help="Time steps of the random input, for variable-length models.")
@click.option("--format", "fmt", type=click.Choice(FORMATS_RUN), help="Default: from --output's suffix (.npz .npy .json .csv), else table.")
@click.option("--key", "keys", multiple=True, help="Only these result keys (e.g. lstm/h) in the output.")
@click.option("--output", "-o", help="File to write (npz/npy/json/csv); default stdout.")
@click.option("--outdir", type=click.Path(), help="Write one .npy per result key into this folder (made if missing): lstm/sequence -> lstm__sequence.npy. Not with -o.")
@click.option("--full", is_flag=True, help="Print every value instead of a summary.")
@precision_option("default 6 decimals")
@click.option("--expect", type=click.Path(), help="Compare with a reference: .npz with result keys, or .npy for the model output. Exit 1 on mismatch.")
@click.option("--map", "mapping", multiple=True, metavar="REF_KEY=KEY", help="For --expect: compare the reference's REF_KEY with our result KEY (e.g. seq=lstm/sequence). Repeatable.")
@click.option("--atol", multiple=True, help="Absolute tolerance for --expect (default 1e-5); KEY=VALUE for one key. Repeatable.")
@click.option("--rtol", multiple=True, help="Relative tolerance for --expect (default 1e-5); KEY=VALUE for one key. Repeatable.")
@click.option("--chunk", type=click.IntRange(1), help="Process .npy inputs this many samples at a time (read in bounded pieces, never memory-mapped), streaming to --output (automatic above 256 MiB).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--strict", is_flag=True, help="Refuse NaN or Inf in the weights or inputs (default: run, and warn where they are).")
@import_options
def run(model, inputs, layer, return_sequences, return_state, initial_state, direct, dtype, seed, batch, timesteps, fmt, keys, output, outdir, full, precision, expect, mapping, atol, rtol, chunk, quiet, strict, source):
    """Forward pass in NumPy: model outputs, and each recurrent layer's sequence, h and c.

    \b
    Examples:
      lstmctl run model.keras --input x.npy --return-sequences --return-state
      lstmctl run model.h5 --input x.csv -o result.npz    # every key; the format from the suffix
      lstmctl run model.keras --input x.npy --expect keras_outputs.npz
      lstmctl run seq2seq.h5 --input encoder_in=a.npy --input decoder_in=b.npy
    """
    if outdir is not None:
        if output is not None:
            raise click.UsageError("--outdir and --output are mutually exclusive")
        if expect:
            raise click.UsageError("--outdir writes results and --expect compares them: give one")
        if fmt not in (None, "npy"):
            raise click.UsageError("--outdir writes .npy files: drop --format")
        fmt = "npy"
    if mapping and not expect:
        raise click.UsageError("--map applies to --expect")
    fmt = _output_format(fmt, output, FORMATS_RUN)
    from .describe import run_selection
    from .inputs import parse_input_options
    from .runner import random_inputs, run_layer
    from .writers import to_bytes, write

    from . import stream

    m = _load(model, source, what_if=True, layer=layer.split("/")[0] if layer else None)
    # Sequences of layers that do not return them are kept only when something will show them.
    sequences = bool(expect) or return_sequences or ((fmt in ("npz", "json") or outdir is not None) and not keys) or any(k.endswith("/sequence") for k in keys)
    streamed = None if direct or expect or initial_state else stream.streamable(inputs, chunk)
    if streamed is not None:
        rows = next(iter(streamed.values())).shape[0]
        writer = stream.ResultWriter(output, fmt, rows, outdir=outdir)
        warned = stream.run_streamed(m, streamed, writer, stream.chunk_rows(streamed, chunk), keys, sequences, dtype, stream.Progress(rows, "samples", quiet), strict)
        _warn(warned)
        return
    notes = []
    x = parse_input_options(inputs, m, direct=direct)
    states = _initial_state(initial_state) if initial_state else None
    if direct:
        if not layer or x is None:
            raise click.UsageError("--direct needs --layer and --input")
        result = run_layer(m, layer, x, initial_state=states, dtype=dtype)
    else:
        if x is None:
            if not m.inputs:
                raise LstmctlError(f"{model}: a weights-only file has no input layer; use --layer NAME --direct --input X")
            x = random_inputs(m, seed=seed, batch=batch, timesteps=timesteps)
            shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in x.items())
            notes.append(f"no --input given: using a random standard-normal input (seed {seed}): {shapes}")
        result = m.run(x, initial_state=states, layer=layer, dtype=dtype, sequences=sequences, strict=strict)
    _warn(result.warnings)
    if expect:
        _expect(result, expect, atol, rtol, fmt, mapping)
        return
    if keys:
        missing = [k for k in keys if k not in result]
        if missing:
            known = [*result, *(f"{k[:-2]}/sequence" for k in result if k.endswith("/h") and f"{k[:-2]}/sequence" not in result)]
            raise UsageError(f"no result key {missing[0]!r}; keys are: {', '.join(known)}")
        selected = [(k, "") for k in keys]
    else:
        selected = run_selection(m, result, layer, return_sequences, return_state)
    if fmt == "table":
        from .render import console, render_arrays

        render_arrays([(k, label, result[k]) for k, label in selected], console(), full=full, notes=notes, precision=precision)
        return
    for note in notes:
        click.echo(f"lstmctl: {note}", err=True)
    if outdir is not None:
        _write_outdir(result if not keys else {k: result[k] for k in keys}, outdir)
        return
    chosen = result if fmt in ("npz", "json") and not keys else {k: result[k] for k, _ in selected}
    write(to_bytes(chosen, fmt), output, binary=fmt in ("npz", "npy"))


def _warn(warnings):
    for line in warnings:
        click.echo(f"lstmctl: warning: {line}", err=True)


def _write_outdir(arrays, outdir):
    """`run --outdir`: one .npy per key, all or none written (see writers.write_many)."""
    from .writers import npy_file_name, to_bytes, write_many

    files, owner = {}, {}
    for key, value in arrays.items():
        name = npy_file_name(key)
        if name in owner:
            raise LstmctlError(f"result keys {owner[name]!r} and {key!r} would both be written to {name}")
        owner[name] = key
        files[name] = to_bytes({key: value}, "npy")
    write_many(files, outdir)


def _expect(result, path, atol, rtol, fmt, mapping=()):
    from .compare import compare, parse_mapping
    from .inputs import load_arrays

    reports = compare(result, load_arrays(path), atol, rtol, parse_mapping(mapping))
    _report_comparison(reports, path, fmt, "--expect")


def _report_comparison(reports, path, fmt, what):
    """A comparison's table or JSON on stdout; CheckFailed (exit 1) naming the keys that differ."""
    import json

    from .errors import CheckFailed

    if fmt == "json":
        click.echo(json.dumps({"match": all(r.ok for r in reports), "keys": [r.as_dict() for r in reports]}, indent=2))
    elif fmt == "table":
        from .render import console, render_comparison

        render_comparison(reports, console())
    else:
        raise click.UsageError(f"{what} reports as a table or json")
    failed = [r.key for r in reports if not r.ok]
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(reports)} keys differ from {path}: {', '.join(failed[:5])}")


@main.command()
@click.argument("result", type=click.Path())
@click.argument("reference", type=click.Path())
@click.option("--atol", multiple=True, help="Absolute tolerance (default 1e-5); KEY=VALUE for one key. Repeatable.")
@click.option("--rtol", multiple=True, help="Relative tolerance (default 1e-5); KEY=VALUE for one key. Repeatable.")
@click.option("--map", "mapping", multiple=True, metavar="REF_KEY=KEY", help="Compare REFERENCE's REF_KEY with RESULT's KEY (e.g. seq=lstm/sequence). Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def compare(result, reference, atol, rtol, mapping, fmt):
    """Compare two result files (.npz as `run --format npz` writes, or .npy): every array of
    REFERENCE against RESULT's, as `run --expect` does. Exit 0 all match, 1 any differs, 3 bad file.

    \b
    Examples:
      lstmctl compare today.npz yesterday.npz
      lstmctl compare ours.npz keras_ref.npz --map seq=lstm/sequence --map h=lstm/h --atol 1e-4
    """
    from .compare import compare_files, parse_mapping

    reports = compare_files(result, reference, atol, rtol, parse_mapping(mapping))
    _report_comparison(reports, reference, fmt, "compare")


@main.command()
@MODEL
@click.option("--input", "-i", "inputs", multiple=True, help="As for run; without it, a seeded (seed 0) random input, and the page says so.")
@click.option("--layer", "layers", multiple=True, help="Only this recurrent layer (repeatable; default: every one).")
@click.option("--sample", type=int, default=0, show_default=True, help="The sample shown first; traces are precomputed for the first 4 samples and this one.")
@click.option("--output", "-o", required=True, help="The file to write; '-' for stdout.")
@click.option("--format", "fmt", type=click.Choice(["html", "json"]), default="html", show_default=True, help="json: the page's data.")
@import_options
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

    from .inputs import parse_input_options
    from .report import build_report, render_html
    from .writers import write

    m = _load(model, source)
    x = parse_input_options(inputs, m)
    if x is None and m.inputs:
        click.echo("lstmctl: no --input given: using a random standard-normal input (seed 0)", err=True)
    data = build_report(m, x, layers=list(layers) or None, sample=sample)
    text = json.dumps(data, indent=1, allow_nan=False) + "\n" if fmt == "json" else render_html(data)
    write(text.encode(), output, binary=False)


@main.command()
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
def trace(model, inputs, layer, sample, units, steps, pre, direct, seed, timesteps, view, svg, fmt, output, full, precision, source):
    """Every gate at every step of one recurrent layer (i, f, c̃, o or z, r, h̃), with c_t and h_t.

    \b
    Examples:
      lstmctl trace model.keras --input x.npy
      lstmctl trace model.h5 --layer decoder --steps 0:5 --units 0:4 --view table
      lstmctl trace model.keras --input x.npy -o trace.csv
    """
    fmt = _output_format(fmt, output, ("table", "csv", "json", "npz"))
    from .inputs import parse_input_options
    from .runner import random_inputs
    from .trace import trace as do_trace
    from .writers import to_bytes, write

    m = _load(model, source, what_if=True, layer=layer.split("/")[0] if layer else None)
    x = parse_input_options(inputs, m, direct=direct)
    if x is None:
        if direct or not m.inputs:
            raise click.UsageError("--input is needed here")
        x = random_inputs(m, seed=seed, timesteps=timesteps)
        click.echo(f"lstmctl: no --input given: using a random standard-normal input (seed {seed})", err=True)
    tr = do_trace(m, x, layer, sample=sample, direct=direct, pre=pre, units=units, steps=steps)
    if svg:
        from .render import render_trace, svg_of

        write(svg_of(lambda out: render_trace(tr, out, table=False, heat=True), f"lstmctl trace {tr.layer}"), svg, binary=False)
    if fmt == "table":
        from .render import console, render_trace

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
    write(to_bytes(arrays, "npz"), output, binary=True)


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


@main.command()
@MODEL
@click.option("--input", "-i", "inputs", multiple=True, required=True, help="The input you fed your implementation (as for run).")
@click.option("--outputs", "theirs", required=True, type=click.Path(), help="What your implementation produced: hidden sequence or final h (.npy, .json, .csv).")
@click.option("--layer", help="The layer (L, or L/forward, L/backward for a Bidirectional).")
@click.option("--sample", type=int, default=0, show_default=True, help="The sample your (time, units) outputs belong to.")
@click.option("--direct", is_flag=True, help="The input goes straight to --layer.")
@click.option("--atol", type=float, default=1e-5, show_default=True)
@click.option("--rtol", type=float, default=1e-5, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@import_options
def diagnose(model, inputs, theirs, layer, sample, direct, atol, rtol, fmt, source):
    """Which known convention reproduces your own implementation's outputs. Exit 0 if yours match Keras.

    \b
    Examples:
      lstmctl diagnose model.h5 --input x.npy --outputs my_hidden_states.npy
      lstmctl diagnose train/model.ckpt --input x.npy --outputs mine.npy   # a TF1 user's NumPy loop
    """
    import json

    from .diagnose import diagnose as do_diagnose
    from .errors import CheckFailed
    from .inputs import load_arrays, parse_input_options

    m = _load(model, source, what_if=True, layer=layer.split("/")[0] if layer else None)
    ours = load_arrays(theirs)
    if isinstance(ours, dict):
        if len(ours) != 1:
            raise LstmctlError(f"{theirs}: give one array (the .npz holds {len(ours)})")
        ours = next(iter(ours.values()))
    d = do_diagnose(m, parse_input_options(inputs, m, direct=direct), ours, layer=layer, sample=sample, atol=atol, rtol=rtol, direct=direct)
    if fmt == "json":
        click.echo(json.dumps(d.as_dict(), indent=2))
    else:
        from .render import console, render_diagnosis

        render_diagnosis(d, console())
    if not d.match:
        raise CheckFailed(f"your outputs differ from {d.reference}'s for layer '{d.layer}'" + ("" if not any(r["matches"] for r in d.results) else f"; best explanation: {d.results[0]['id']}"))


@main.command()
@MODEL
@click.option("--to", "to", required=True, type=click.Choice([*CONVENTIONS, "onnx-model"]), help="The convention to write (onnx-model: a runnable .onnx file, needs the onnx package).")
@click.option("--layer", "layers", multiple=True, help="The recurrent layer to export; repeat, first to last, for a stack (pytorch, tf1).")
@click.option("--output", "-o", required=True, help="The .npz (or .onnx) file to write.")
@import_options
def export(model, to, layers, output, source):
    """Write recurrent weights as Keras, PyTorch, TF1 LSTMCell or ONNX expect them (.npz), or an ONNX model.

    The forget_bias TF1 adds at run time is taken off the stored bias (--forget-bias, default 1.0).
    MODEL may itself be an .npz read with --convention: export converts between conventions.

    \b
    Examples:
      lstmctl export model.keras --to pytorch -o lstm_torch.npz
      lstmctl export train/model.ckpt --to keras -o keras_weights.npz
      lstmctl export model.h5 --to onnx-model -o lstm.onnx
    """
    from . import conventions
    from .writers import to_bytes, write

    forget_bias = source["forget_bias"]
    if forget_bias is not None and "tf1" not in (to, source["convention"]):
        raise click.UsageError("--forget-bias applies to tf1 weights only (--to tf1 or --convention tf1)")
    if source["convention"] != "tf1":
        source = dict(source, forget_bias=None)  # here it is the forget_bias of the tf1 output
    m = _load(model, source)
    if to == "onnx-model":
        data, notes = conventions.onnx_model(m, layers)
    else:
        arrays, notes = conventions.export(m, to, layers, forget_bias=1.0 if forget_bias is None else forget_bias)
        data = to_bytes(arrays, "npz")
    write(data, output, binary=True)
    for note in notes:
        click.echo(f"lstmctl: note: {note.replace('np.load(FILE)', f'np.load({output!r})')}", err=True)


def _initial_state(paths):
    from .inputs import load_arrays

    if len(paths) == 1:
        loaded = load_arrays(paths[0])
        if isinstance(loaded, dict):
            order = [k for k in ("h", "c", "forward/h", "forward/c", "backward/h", "backward/c") if k in loaded]
            if not order:
                raise LstmctlError(f"{paths[0]}: initial state .npz needs keys h (and c for an LSTM)")
            return [loaded[k] for k in order]
        return [loaded]
    return [load_arrays(p) for p in paths]


def entry():
    """The console script. Before NumPy loads: single-threaded BLAS, because the fast path splits
    large batches across cores itself (faster, measured in benchmarks/); a user's own setting wins."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
