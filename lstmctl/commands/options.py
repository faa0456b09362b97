"""What the commands share: MODEL, the --convention family of options, --precision, reading the
model as those options say, the output format from --output's suffix, and comparison reports.
"""

import os

import click

from ..conventions import CONVENTIONS
from ..errors import UsageError, show

TORCH_FORMATS = ("pytorch-zip", "pytorch-legacy", "safetensors")

MODEL = click.argument("model", envvar="LSTMCTL_MODEL", type=click.Path(dir_okay=True))


_IMPORT_KEYS = ("convention", "forget_bias", "activation", "recurrent_activation", "hard_sigmoid", "name")


def import_options(command):
    """--convention and its companions, for every command that reads MODEL: an .npz of one
    recurrent layer's weights in another framework's layout is read as a model. The wrapped
    command receives them as one dict, `source`, to pass to `load_model`."""
    import functools

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        source = {key: kwargs.pop(key) for key in _IMPORT_KEYS}
        return command(*args, source=source, **kwargs)

    options = [
        click.option("--convention", type=click.Choice(CONVENTIONS), help="MODEL is an .npz of one recurrent layer's weights in this framework's layout."),
        click.option("--forget-bias", type=float, help="For a TF1 checkpoint or --convention tf1: the forget_bias TF1 adds at run time (default 1.0); for run, trace and diagnose of any other model, a what-if: added to every LSTM's b_f."),
        click.option("--activation", help="With --convention or for a TF1 checkpoint: the cells' activation (default tanh); for a torch state_dict, nn.RNN's nonlinearity (tanh or relu); for run, trace and diagnose, a what-if on the recurrent layers."),
        click.option("--recurrent-activation", help="With --convention: the gates' activation (default sigmoid); for run, trace and diagnose, a what-if."),
        click.option("--hard-sigmoid", type=click.Choice(["keras2", "keras3"]), help="hard_sigmoid as clip(0.2x + 0.5) (keras2; the default with --convention) or clip(x/6 + 0.5) (keras3); for run, trace and diagnose, a what-if."),
        click.option("--name", help="With --convention: the imported layer's name (default: its kind, lstm / gru / simple_rnn)."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def output_format(fmt, output, choices) -> str:
    """--format, or the one --output's suffix names; a table is for the terminal only."""
    if fmt is None:
        suffix = os.path.splitext(output or "")[1].lower().lstrip(".")
        fmt = suffix if output not in (None, "-") and suffix in choices else "table"
    if fmt == "table" and output not in (None, "-"):  # `-o -` is standard output, where a table goes
        raise UsageError(f"--output writes {', '.join(c for c in choices if c != 'table')}: give --format or a file name ending in one")
    return fmt


def load_model(model, source, what_if=False, layer=None):
    """The model MODEL names, read as --convention says. Without a convention, --forget-bias and
    --activation are how a TF1 checkpoint is read; otherwise these two, --recurrent-activation and
    --hard-sigmoid change the recurrent layers (all, or `layer`) for a what-if run, trace or diagnose."""
    import lstmctl

    from ..analysis.whatif import override

    convention = source["convention"]
    if convention is None:
        if source["name"] is not None:
            raise UsageError("--name: applies only with --convention")
        changes = {k: source[k] for k in ("activation", "recurrent_activation", "hard_sigmoid", "forget_bias")}
        m = lstmctl.load(model)
        if m.format == "tf1-checkpoint" and (changes["forget_bias"] is not None or changes["activation"] is not None):
            m = lstmctl.load(model, forget_bias=1.0 if changes["forget_bias"] is None else changes["forget_bias"], activation=changes["activation"])
            changes["forget_bias"] = changes["activation"] = None
        elif m.format in TORCH_FORMATS and changes["activation"] is not None and any(c.kind == "simple_rnn" for c in _cells(m)):
            m = lstmctl.load(model, activation=changes["activation"])  # nn.RNN's nonlinearity, which a state_dict does not record
            changes["activation"] = None
        given = [f"--{k.replace('_', '-')}" for k, v in changes.items() if v is not None]
        if given and not what_if:
            raise UsageError(f"{', '.join(given)}: a what-if for run, trace and diagnose, or with --convention for an .npz of weights")
        changed = override(m, **changes, layer=layer)
        if changed is not m:
            say(changed.notes[0])
        return changed
    if source["forget_bias"] is not None and convention != "tf1":
        raise click.UsageError("--forget-bias applies to --convention tf1 only")
    return lstmctl.load(
        model, convention=convention, forget_bias=1.0 if source["forget_bias"] is None else source["forget_bias"],
        activation=source["activation"], recurrent_activation=source["recurrent_activation"],
        name=source["name"], hard_sigmoid=source["hard_sigmoid"] or "keras2",
    )  # fmt: skip


def _cells(m):
    from ..analysis.describe import named_cells

    return [cell for layer in m.recurrent_layers() for _, cell in named_cells(layer)]


def time_major_input(x, time_major: bool):
    """--time-major: inputs given (time, batch, …), as torch's batch_first=False and ONNX's layout 0
    take them, transposed to lstmctl's (batch, time, …); the results stay batch-major."""
    if not time_major or x is None:
        return x
    if isinstance(x, dict):
        return {k: _swap(v, k) for k, v in x.items()}
    return _swap(x, "input")


def _swap(a, name):
    if a.ndim < 2:
        raise UsageError(f"--time-major: input '{name}' has shape {a.shape}; it needs a time and a batch axis")
    return a.swapaxes(0, 1)


TIME_MAJOR = click.option("--time-major", is_flag=True, help="The input is (time, batch, features), torch's default (batch_first=False) and ONNX's layout 0; outputs stay (batch, time, …).")


def precision_option(default_text):
    """--precision N: the digits of numbers in table output (never npz/npy/json/csv)."""
    return click.option("--precision", type=click.IntRange(1, 17), help=f"Digits of the numbers in table output, 1..17 ({default_text}). Files and json are unaffected.")


def say(text: str):
    """One line on stderr: `lstmctl: ` and `text`, its control characters escaped (errors.show), so
    that a path or a name from a file can neither split the line nor move the cursor. Every
    line lstmctl writes on stderr goes through here; show is idempotent, so a name the message
    already escaped is not escaped twice."""
    click.echo(f"lstmctl: {show(text)}", err=True)


def warn(warnings):
    for line in warnings:
        say(f"warning: {line}")


def report_comparison(reports, path, fmt, what):
    """A comparison's table or JSON on stdout; CheckFailed (exit 1) naming the keys that differ."""
    import json

    from ..errors import CheckFailed

    if fmt == "json":
        from ..arrays.writers import echo

        echo(json.dumps({"match": all(r.ok for r in reports), "keys": [r.as_dict() for r in reports]}, indent=2))
    elif fmt == "table":
        from ..render.console import console, render_comparison

        render_comparison(reports, console())
    else:
        raise click.UsageError(f"{what} reports as a table or json")
    failed = [r.key for r in reports if not r.ok]
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(reports)} keys differ from the reference {path}: {', '.join(failed[:5])}")


def _fix_threads(ctx, param, value):
    """--threads, else LSTMCTL_THREADS, else the policy (lstmctl/threads.py); checked before any work."""
    from .. import threads

    threads.set_fixed(None if value is None else threads.parse(value, "--threads"))
    threads.fixed()  # a bad LSTMCTL_THREADS is a usage error now, not after the model is read
    return value


THREADS = click.option(
    "--threads", metavar="N", callback=_fix_threads, expose_value=False,
    help="Threads for the recurrent layers' matrix products (default: LSTMCTL_THREADS, else one for small products and the idle usable CPUs for large ones; see docs/speed.md).",
)  # fmt: skip
