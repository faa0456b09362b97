"""`lstmctl diagnose`: which known convention reproduces the user's own outputs.
"""

import click

from ..errors import LstmctlError
from .options import MODEL, THREADS, import_options, load_model


@click.command()
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
@THREADS
def diagnose(model, inputs, theirs, layer, sample, direct, atol, rtol, fmt, source):
    """Which known convention reproduces your own implementation's outputs. Exit 0 if yours match Keras.

    Each hypothesis is a known mistake, tried on your input; the table ranks them by how close
    each comes to your outputs. Their ids (as --format json names them):

    \b
      reference                 the layer as Keras (or TF1, for a TF1 checkpoint) computes it
      forget_bias_added         1.0 added to b_f again (TF1's forget_bias on Keras weights)
      forget_bias_missing       b_f left out
      tf1_forget_bias_missing   a TF1 checkpoint's run-time forget_bias left out of b_f
      gate_order_ijfo           LSTM gate blocks read in TF1's order (i, j, f, o)
      gate_order_iofc           LSTM gate blocks read in ONNX's order (i, o, f, c)
      gate_order_rzn            GRU gate blocks read in PyTorch's order
      hard_sigmoid_keras2       the gates' activation as Keras 2's hard_sigmoid, clip(0.2x + 0.5)
      hard_sigmoid_keras3       the gates' activation as Keras 3's hard_sigmoid, clip(x/6 + 0.5)
      sigmoid_for_hard_sigmoid  sigmoid where the layer has hard_sigmoid
      reset_after_flipped       GRU's reset gate applied before / after the product
      z_inverted                GRU's update gate used the other way round
      concat_h_x                one matrix on [h, x] split in the wrong order
      state_not_carried         the states reset at every step
      initial_state_swapped     h0 and c0 swapped
      cell_state_as_output      c_t returned instead of h_t
      bias_twice                the bias added twice

    \b
    Examples:
      lstmctl diagnose model.h5 --input x.npy --outputs my_hidden_states.npy
      lstmctl diagnose train/model.ckpt --input x.npy --outputs mine.npy   # a TF1 user's NumPy loop
    """
    import json

    from ..analysis.diagnose import diagnose as do_diagnose
    from ..arrays.inputs import load_arrays, parse_input_options
    from ..errors import CheckFailed

    m = load_model(model, source, what_if=True, layer=layer.split("/")[0] if layer else None)
    ours = load_arrays(theirs)
    if isinstance(ours, dict):
        if len(ours) != 1:
            raise LstmctlError(f"{theirs}: give one array (the .npz holds {len(ours)})")
        ours = next(iter(ours.values()))
    d = do_diagnose(m, parse_input_options(inputs, m, direct=direct), ours, layer=layer, sample=sample, atol=atol, rtol=rtol, direct=direct)
    if fmt == "json":
        from ..arrays.writers import echo

        echo(json.dumps(d.as_dict(), indent=2))
    else:
        from ..render.console import console, render_diagnosis

        render_diagnosis(d, console())
    if not d.match:
        raise CheckFailed(f"your outputs differ from {d.reference}'s for layer '{d.layer}'" + ("" if not any(r["matches"] for r in d.results) else f"; best explanation: {d.results[0]['id']}"))
