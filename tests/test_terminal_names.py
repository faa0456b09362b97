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
    for args in (["run", path, "--input", tmp_path / "x.npy", "--return-state"], ["trace", path, "--input", tmp_path / "x.npy"], ["gates", path, "--format", "json"],
                 ["run", path, "--input", tmp_path / "x.npy", "--format", "csv", "--key", f"{EVIL}/h_n"]):  # fmt: skip
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


def test_emoji_codes_in_names_are_shown_as_written(tmp_path):
    """A module named 'enc:fire:' is shown so, not as 'enc🔥' (rich turns :name: into an emoji by
    default): the name the user reads is the one --layer takes."""
    r = np.random.default_rng(0)
    path = write_safetensors(tmp_path / "emoji.safetensors", {f"enc:fire:.{k}": v for k, v in _lstm(r).items()})
    np.save(tmp_path / "x.npy", np.ones((1, 4, 2), np.float32))
    for args in (["inspect", path], ["run", path, "--input", tmp_path / "x.npy", "--return-state"], ["trace", path, "--input", tmp_path / "x.npy"],
                 ["gates", path, "--layer", "enc:fire:"]):  # fmt: skip
        result = cli(*args, env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        assert "enc:fire:" in result.stdout and "\N{FIRE}" not in result.stdout, args


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


# ---------------------------------------------------------------------------------------------
# files of many modules or nodes: inspect lists the first rows and counts the rest


def _table_rows(stdout: str) -> list:
    """The names in the first column of inspect's layer table."""
    start = stdout.index("Layers")
    rows = [line for line in stdout[start:].splitlines() if line.startswith("│ ")]
    end = next(i for i, line in enumerate(stdout[start:].splitlines()) if line.startswith("└"))
    return [line.split("│")[1].strip() for line in stdout[start:].splitlines()[:end] if line in rows]


def many_modules(tmp_path: Path, n: int) -> Path:
    """An nn.LSTM then `n` one-weight modules (m0.weight …), as a safetensors file."""
    r = np.random.default_rng(0)
    tensors = {f"rnn.{k}": v for k, v in _lstm(r).items()}
    tensors.update({f"m{i}.weight": np.ones(1, np.float32) for i in range(n)})
    return write_safetensors(tmp_path / "many.safetensors", tensors)


def many_nodes(tmp_path: Path, n: int) -> Path:
    """An ONNX LSTM node then a chain of `n` Identity nodes."""
    r = np.random.default_rng(0)
    inits = [onnx_tensor("W", r.normal(size=(1, 12, 2)).astype(np.float32)), onnx_tensor("R", r.normal(size=(1, 12, 3)).astype(np.float32))]
    nodes = [node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], name="lstm", hidden_size=3)]
    nodes += [node("Identity", [f"i{k - 1}" if k else "Y_h"], [f"i{k}"], name=f"id{k}") for k in range(n)]
    path = tmp_path / "many.onnx"
    path.write_bytes(onnx_model(nodes, [value_info("X", ["t", "b", 2])], [value_info(f"i{n - 1}", [])], inits))
    return path


@pytest.mark.parametrize("build, total, counted", [(many_modules, 302, "202 more (202 torch module)"), (many_nodes, 303, "203 more (203 Identity)")], ids=["safetensors", "onnx"])
def test_inspect_of_a_file_with_many_modules_lists_the_first(tmp_path, build, total, counted):
    """A safetensors file of 150k tensors took over a minute: rich draws ~1 ms a row. The table
    lists the first 100 layers and counts the others by class; --all lists every one; json holds all."""
    from lstmctl.commands.inspect import INSPECT_ROWS

    path = build(tmp_path, 300)
    result = cli("inspect", path, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert len(_table_rows(result.stdout)) == INSPECT_ROWS == 100
    assert f"the first 100 of {total} layers are listed; {counted}: --all lists every one" in result.stdout
    every = cli("inspect", path, "--all", env={"COLUMNS": "200"})
    assert len(_table_rows(every.stdout)) == total and "--all lists" not in every.stdout
    assert len(json.loads(cli("inspect", path, "--format", "json").stdout)["layers"]) == total
