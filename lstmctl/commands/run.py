"""`lstmctl run`: the NumPy forward pass, its outputs, states and checks against a reference.
"""

import os

import click

from ..errors import LstmctlError, UsageError
from .options import MODEL, THREADS, TIME_MAJOR, import_options, load_model, output_format, precision_option, report_comparison, say, time_major_input, warn

FORMATS_RUN = ("table", "json", "npz", "npy", "csv")


@click.command()
@MODEL
@click.option("--input", "-i", "inputs", multiple=True, help="X.npy, X.npz, X.csv, X.json, '-' (stdin), or NAME=PATH (repeat).")
@TIME_MAJOR
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
@click.option("--no-header", "no_header", is_flag=True, help="--format csv without its header row (the values, and a sequence's sample/time columns, only).")
@click.option("--state-in", "state_in", type=click.Path(dir_okay=False), help="Start every recurrent layer from the states in this .npz (written by --state-out), as a stateful Keras model continues.")
@click.option("--state-out", "state_out", type=click.Path(dir_okay=False), help="Write every recurrent layer's final states, and the model's fingerprint, to this .npz: the next piece's --state-in.")
@import_options
@THREADS
def run(model, inputs, time_major, layer, return_sequences, return_state, initial_state, direct, dtype, seed, batch, timesteps, fmt, keys, output, outdir, full, precision, expect, mapping, atol, rtol, chunk, quiet, strict, no_header, state_in, state_out, source):
    """Forward pass in NumPy: model outputs, and each recurrent layer's sequence, h and c.

    \b
    Examples:
      lstmctl run model.keras --input x.npy --return-sequences --return-state
      lstmctl run model.h5 --input x.csv -o result.npz    # every key; the format from the suffix
      lstmctl run model.keras --input x.npy --expect keras_outputs.npz
      lstmctl run seq2seq.h5 --input encoder_in=a.npy --input decoder_in=b.npy
      lstmctl run model.keras --input piece1.npy --state-out s.npz     # a sequence in pieces:
      lstmctl run model.keras --input piece2.npy --state-in s.npz --state-out s.npz
      lstmctl run encoder.pt --input x.npy --time-major   # a torch state_dict; x is (time, batch, features)
    """
    from ..arrays.inputs import input_paths
    from ..arrays.writers import refuse_overwrite

    # Before anything is read or written: an output over a file the run reads would destroy it.
    reads = {"MODEL": model, "--input": input_paths(inputs), "--state-in": state_in, "--initial-state": initial_state, "--expect": expect}
    refuse_overwrite({"-o": output, "--state-out": state_out}, reads, allowed={("--state-out", "--state-in")})
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
    if no_header and fmt != "csv" and not (fmt is None and (output or "").lower().endswith(".csv")):
        raise click.UsageError("--no-header applies to --format csv")
    if initial_state and state_in:
        raise click.UsageError("--initial-state sets one layer's start and --state-in every layer's: give one")
    fmt = output_format(fmt, output, FORMATS_RUN)
    from ..analysis.describe import run_selection
    from ..arrays import stream
    from ..arrays.inputs import parse_input_options
    from ..arrays.writers import to_bytes, write
    from ..runner import random_inputs, run_layer

    m = load_model(model, source, what_if=True, layer=layer.split("/")[0] if layer else None)
    if direct and not layer:
        raise click.UsageError("--direct needs --layer and --input")
    carried = _state(state_in, m, layer if direct else None) if state_in else ({} if state_out else None)
    # Sequences of layers that do not return them are kept only when something will show them.
    sequences = bool(expect) or return_sequences or ((fmt in ("npz", "json") or outdir is not None) and not keys) or any(k.endswith("/sequence") for k in keys)
    streamed = None if direct or expect or initial_state or time_major else stream.streamable(inputs, chunk)
    if streamed is not None:
        rows = next(iter(streamed.values())).shape[0]
        with stream.ResultWriter(output, fmt, rows, outdir=outdir, reads=reads) as writer:
            warned, notes, final = stream.run_streamed(m, streamed, writer, stream.chunk_rows(streamed, chunk), keys, sequences, dtype, stream.Progress(rows, "samples", quiet), strict, carried)
        _said(warned, notes)
        if state_out:
            write(to_bytes(final.arrays(), "npz", output=state_out), state_out, binary=True)
        return
    notes = []
    x = time_major_input(parse_input_options(inputs, m, direct=direct), time_major)
    states = _initial_state(initial_state) if initial_state else None
    if direct:
        if x is None:
            raise click.UsageError("--direct needs --layer and --input")
        result = run_layer(m, layer, x, initial_state=states, dtype=dtype, state=carried)
    else:
        if x is None:
            if not m.inputs:
                raise LstmctlError(f"{model}: a weights-only file has no input layer; use --layer NAME --direct --input X")
            x = random_inputs(m, seed=seed, batch=batch, timesteps=timesteps)
            shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in x.items())
            notes.append(f"no --input given: using a random standard-normal input (seed {seed}): {shapes}")
        result = m.run(x, initial_state=states, layer=layer, dtype=dtype, sequences=sequences, strict=strict, state=carried)
    _said(result.warnings, result.notes)
    if state_out:
        write(to_bytes(result.state.arrays(), "npz", output=state_out), state_out, binary=True)
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
        from ..render.console import console, render_arrays

        render_arrays([(k, label, result[k]) for k, label in selected], console(), full=full, notes=notes, precision=precision)
        return
    for note in notes:
        say(note)
    if outdir is not None:
        _write_outdir(result if not keys else {k: result[k] for k in keys}, outdir, reads)
        return
    chosen = result if fmt in ("npz", "json") and not keys else {k: result[k] for k, _ in selected}
    write(to_bytes(chosen, fmt, header=not no_header, output=output), output, binary=fmt in ("npz", "npy"))


def _said(warnings, notes):
    warn(warnings)
    for note in notes:
        say(f"note: {note}")


def _state(path, model, layer):
    """--state-in: the carried State, checked against the model (for --direct, its one layer)."""
    from ..arrays.inputs import load_arrays
    from ..state import from_arrays

    arrays = load_arrays(path)
    if not isinstance(arrays, dict):
        raise LstmctlError(f"{path}: a state file is an .npz written by --state-out, not one array")
    return from_arrays(arrays, model, path, model.layer(layer).name if layer else None)


def _write_outdir(arrays, outdir, reads):
    """`run --outdir`: one .npy per key, all or none written (see writers.write_many), none over a file the run read."""
    from ..arrays.writers import npy_file_name, refuse_overwrite, to_bytes, write_many

    files, owner = {}, {}
    for key, value in arrays.items():
        name = npy_file_name(key)
        if name in owner:
            raise LstmctlError(f"result keys {owner[name]!r} and {key!r} would both be written to {name}")
        owner[name] = key
        files[name] = to_bytes({key: value}, "npy", output=os.path.join(outdir, name))
    refuse_overwrite({"--outdir": [os.path.join(outdir, name) for name in files]}, reads)
    write_many(files, outdir)


def _expect(result, path, atol, rtol, fmt, mapping=()):
    from ..analysis.compare import compare, parse_mapping
    from ..arrays.inputs import load_arrays

    reports = compare(result, load_arrays(path), atol, rtol, parse_mapping(mapping))
    report_comparison(reports, path, fmt, "--expect")


def _initial_state(paths):
    from ..arrays.inputs import load_arrays

    if len(paths) == 1:
        loaded = load_arrays(paths[0])
        if isinstance(loaded, dict):
            order = [k for k in ("h", "c", "forward/h", "forward/c", "backward/h", "backward/c") if k in loaded]
            if not order:
                raise LstmctlError(f"{paths[0]}: initial state .npz needs keys h (and c for an LSTM)")
            return [loaded[k] for k in order]
        return [loaded]
    return [load_arrays(p) for p in paths]
