"""`lstmctl compare`: two result files, key by key, as `run --expect` compares.
"""

import click

from .options import report_comparison


@click.command()
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
    from ..analysis.compare import compare_files, parse_mapping

    reports = compare_files(result, reference, atol, rtol, parse_mapping(mapping))
    report_comparison(reports, reference, fmt, "compare")
