"""Names from a port reach the terminal escaped (issue 27): a module name in a safetensors key or a
torch state_dict key, an ONNX node's name, op_type or domain holding ESC[2J (clear the screen) or
an OSC sequence (set the terminal's title) is shown as `\\x1b[2J`, on standard output as on stderr,
in every output a command draws: inspect's tables and panels, run's, trace's and compare's, JSON,
DOT and Mermaid. The files are built on the fly.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from portwire import field, lstm_state_dict, node, onnx_model, onnx_tensor, value_info
from test_hostile import cli
from test_ports import write_safetensors

EVIL = "m\x1b[2J\x1b]0;pwned\x07\x9b31m\x7f"
SHOWN = "m\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\x7f"


def raw_controls(text: str) -> list:
    """The characters a terminal would act on: anything unprintable but the line break."""
    return sorted({c for c in text if not c.isprintable() and c != "\n"})


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from strings(item)


def _lstm(r, features=2, units=3):
    return {"weight_ih_l0": r.normal(size=(4 * units, features)).astype(np.float32), "weight_hh_l0": r.normal(size=(4 * units, units)).astype(np.float32),
            "bias_ih_l0": r.normal(size=4 * units).astype(np.float32), "bias_hh_l0": r.normal(size=4 * units).astype(np.float32)}  # fmt: skip


def safetensors_port(tmp_path: Path) -> Path:
    r = np.random.default_rng(0)
    return write_safetensors(tmp_path / "evil.safetensors", {f"{EVIL}.{k}": v for k, v in _lstm(r).items()})


def torch_port(tmp_path: Path) -> Path:
    return lstm_state_dict(tmp_path / "evil.pt", prefix=f"{EVIL}.")


def onnx_port(tmp_path: Path) -> Path:
    """An LSTM node named EVIL, then a node of an unknown op in an unknown domain, both named so."""
    r = np.random.default_rng(0)
    inits = [onnx_tensor("W", r.normal(size=(1, 12, 2)).astype(np.float32)), onnx_tensor("R", r.normal(size=(1, 12, 3)).astype(np.float32))]
    odd = node(f"Op{EVIL}", ["Y_h"], ["Z"], name=f"odd{EVIL}") + field(7, f"dom{EVIL}")
    nodes = [node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], name=EVIL, hidden_size=3), odd]
    path = tmp_path / "evil.onnx"
    path.write_bytes(onnx_model(nodes, [value_info("X", ["t", "b", 2])], [value_info("Y", []), value_info("Z", [])], inits))
    return path


PORTS = {"safetensors": safetensors_port, "torch": torch_port, "onnx": onnx_port}


@pytest.mark.parametrize("fmt", ["table", "json", "dot", "mermaid"])
@pytest.mark.parametrize("kind", sorted(PORTS))
def test_inspect_shows_hostile_names_escaped(tmp_path, kind, fmt):
    path = PORTS[kind](tmp_path)
    result = cli("inspect", path, "--format", fmt, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert raw_controls(result.stdout) == []
    if fmt == "json":
        assert any(EVIL in text for text in strings(json.loads(result.stdout)))  # JSON's own escapes, read back whole
    elif fmt == "dot":
        assert json.dumps(SHOWN)[1:-1] in result.stdout  # a DOT string escapes the backslashes again
    else:
        assert SHOWN in result.stdout  # the name is there, escaped, whole
    if kind == "onnx" and fmt == "table":
        assert f"dom{SHOWN}.Op{SHOWN}" in result.stdout and f"of domain dom{SHOWN}" in result.stdout


@pytest.mark.parametrize("kind", ["safetensors", "torch"])
def test_run_and_trace_show_hostile_names_escaped(tmp_path, kind):
    path = PORTS[kind](tmp_path)
    np.save(tmp_path / "x.npy", np.ones((1, 4, 2), np.float32))
    for args in (["run", path, "--input", tmp_path / "x.npy", "--return-state"], ["trace", path, "--input", tmp_path / "x.npy"], ["gates", path, "--format", "json"]):
        result = cli(*args, env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        assert raw_controls(result.stdout) == [] and raw_controls(result.stderr) == []
        assert SHOWN in result.stdout or "\\u001b[2J" in result.stdout


def test_compare_shows_hostile_names_escaped(tmp_path):
    """A port compared with itself: the layers' names in the tables' titles."""
    path = safetensors_port(tmp_path)
    np.save(tmp_path / "x.npy", np.ones((1, 4, 2), np.float32))
    result = cli("compare", path, path, "--input", tmp_path / "x.npy", env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert raw_controls(result.stdout) == [] and SHOWN in result.stdout


def test_the_console_escapes_whatever_it_draws():
    """The net under every table: a string given to rich unescaped still reaches the stream escaped."""
    import io

    from rich.table import Table

    from lstmctl.render.console import _Console

    out = io.StringIO()
    table = Table(title=EVIL)
    table.add_column(EVIL)
    table.add_row(EVIL)
    _Console(file=out, width=200).print(table)
    assert raw_controls(out.getvalue()) == [] and SHOWN.replace("\\x07", "") in out.getvalue().replace("\\x07", "")
