"""`lstmctl export`: recurrent weights in another framework's convention, or an ONNX model.
"""

import click

from ..conventions import TARGETS
from .options import MODEL, import_options, load_model, say


@click.command()
@MODEL
@click.option("--to", "to", required=True, type=click.Choice(TARGETS), help="The convention to write (onnx-model: a runnable .onnx file, needs the onnx package).")
@click.option("--layer", "layers", multiple=True, help="The recurrent layer to export; repeat, first to last, for a stack (pytorch, tf1).")
@click.option("--output", "-o", required=True, help="The file to write: .npz; with --to pytorch also .pt (a torch.save zip) or .safetensors; .onnx for onnx-model.")
@import_options
def export(model, to, layers, output, source):
    """Write recurrent weights as Keras, PyTorch, TF1 LSTMCell or ONNX expect them (.npz; for PyTorch also .pt or .safetensors), or an ONNX model.

    The forget_bias TF1 adds at run time is taken off the stored bias (--forget-bias, default 1.0).
    MODEL may itself be an .npz read with --convention: export converts between conventions.

    \b
    Examples:
      lstmctl export model.keras --to pytorch -o lstm.pt       # torch.load(..., weights_only=True) opens it
      lstmctl export model.keras --to pytorch -o lstm_torch.npz
      lstmctl export train/model.ckpt --to keras -o keras_weights.npz
      lstmctl export model.h5 --to onnx-model -o lstm.onnx
    """
    from ..arrays.writers import refuse_overwrite, to_bytes, write

    refuse_overwrite({"-o": output}, {"MODEL": model})
    suffix = output.lower().rpartition(".")[2]
    if suffix in ("pt", "pth", "safetensors") and to not in ("pytorch", "onnx-model"):  # a usage error before the model is read
        raise click.UsageError(f"-o {output}: a .{suffix} file holds a PyTorch state_dict; use --to pytorch, or an .npz for {to} weights")
    forget_bias = source["forget_bias"]
    if forget_bias is not None and "tf1" not in (to, source["convention"]):
        raise click.UsageError("--forget-bias applies to tf1 weights only (--to tf1 or --convention tf1)")
    if source["convention"] != "tf1":
        source = dict(source, forget_bias=None)  # here it is the forget_bias of the tf1 output
    m = load_model(model, source)
    if to == "onnx-model":
        from ..export.onnx_model import onnx_model

        data, notes = onnx_model(m, layers)
    else:
        from ..export.arrays import export as export_arrays

        arrays, notes = export_arrays(m, to, layers, forget_bias=1.0 if forget_bias is None else forget_bias)
        if suffix in ("pt", "pth", "safetensors"):
            from ..export.torch_save import safetensors_bytes, torch_save_bytes

            data = safetensors_bytes(arrays) if suffix == "safetensors" else torch_save_bytes(arrays)
            loaded = f"safetensors.torch.load_file({output!r})" if suffix == "safetensors" else f"torch.load({output!r}, weights_only=True)"
            notes = [n.replace("{k: torch.from_numpy(v) for k, v in np.load(FILE).items()}", loaded) for n in notes]
        else:
            data = to_bytes(arrays, "npz", output=output)
    write(data, output, binary=True)
    for note in notes:
        say(f"note: {note.replace('(FILE)', f'({output!r})')}")
