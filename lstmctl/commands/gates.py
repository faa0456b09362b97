"""`lstmctl gates`: the named gate matrices, for scripts.
"""

import click

from ..errors import LstmctlError
from .options import MODEL, import_options, load_model


@click.command()
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
    from ..arrays.writers import refuse_overwrite, to_bytes, write

    refuse_overwrite({"-o": output}, {"MODEL": model})
    arrays = load_model(model, source).gates(layer)
    if gate or part:
        def keep(key):
            leaf = key.rsplit("/", 1)[1]
            p, _, g = leaf.partition("_")
            return (gate is None or g == gate) and (part is None or p == part)

        arrays = {k: v for k, v in arrays.items() if keep(k)}
        if not arrays:
            raise LstmctlError("no matrix matches --gate/--part")
    write(to_bytes(arrays, fmt, choose="--layer, --gate and --part", output=output), output, binary=fmt != "json")
