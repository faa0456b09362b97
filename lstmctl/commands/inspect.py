"""`lstmctl inspect`: file format, layer graph, and each recurrent layer's gates and returns.
"""

import click

from ..errors import LstmctlError, UsageError
from .options import MODEL, import_options, load_model, precision_option

INSPECT_ROWS = 100  # layers the table lists without --all: a file may hold 10^5 modules or nodes, and rich draws ~1 ms a row


@click.command()
@MODEL
@click.option("--layer", help="Show only this layer.")
@click.option("--gate", help="Also print this gate's W, U and b (i f c o, z r h; 'all' for SimpleRNN); summarised above 1000 values unless --full.")
@click.option("--full", is_flag=True, help="With --gate: print every value of big matrices instead of NumPy's summary.")
@precision_option("default: 4 significant digits in the gate statistics, 6 decimals in --gate matrices")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "dot", "mermaid"]), default="table", show_default=True, help="dot (Graphviz) and mermaid: the layer graph with shapes and initial_state links.")
@click.option("--all", "every", is_flag=True, help=f"List every layer in the table (default: the first {INSPECT_ROWS}, the rest counted by class; json lists every one).")
@import_options
def inspect(model, layer, gate, full, precision, fmt, every, source):
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

    from ..analysis.describe import inspect_facts
    from ..arrays.writers import echo

    m = load_model(model, source)
    if fmt in ("dot", "mermaid"):
        from ..render import diagram

        if layer or gate:
            raise UsageError(f"--format {fmt} draws the whole model; drop --layer and --gate")
        echo(getattr(diagram, fmt)(inspect_facts(m)), nl=False)
        return
    facts = inspect_facts(m, layer, limit=None if every or fmt == "json" else INSPECT_ROWS)
    arrays = _gate_subset(m, layer, gate) if gate else None
    if fmt == "json":
        if arrays:
            facts["gate_arrays"] = {k: v.tolist() for k, v in arrays.items()}
        echo(json.dumps(facts, indent=2))
        return
    from ..render.console import console, render_inspect

    render_inspect(facts, console(), arrays, full=full, precision=precision)


def _gate_subset(m, layer, gate):
    arrays = m.gates(layer)
    if gate == "all":
        return arrays
    picked = {k: v for k, v in arrays.items() if k.rsplit("/", 1)[1].split("_", 1)[-1] == gate}
    if not picked:
        raise LstmctlError(f"no gate named '{gate}' (LSTM: i f c o; GRU: z r h; SimpleRNN: all)")
    return picked
