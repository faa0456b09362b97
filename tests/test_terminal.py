"""Strings from a model file are text, never rich markup: no hyperlink can be forged into the
terminal, and markup-like text cannot break inspect."""

import json
import zipfile

import pytest
from click.testing import CliRunner

from conftest import sample
from lstmctl.cli import main


def _with_metadata(tmp_path, **metadata):
    src = zipfile.ZipFile(sample("k3_lstm_dense.keras"))
    out = tmp_path / "m.keras"
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "metadata.json":
                data = json.dumps({**json.loads(data), **metadata}).encode()
            dst.writestr(item, data)
    return str(out)


@pytest.mark.parametrize("version", ["[link=https://evil.example/login]3.15.1[/link]", "[/]", "3.15.1[bold red]"])
def test_keras_version_from_the_file_is_shown_as_text(tmp_path, version, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # colour on, as in a terminal: markup would become escape codes
    result = CliRunner().invoke(main, ["inspect", _with_metadata(tmp_path, keras_version=version)])
    assert result.exit_code == 0, result.output
    assert version in result.output  # the literal text, brackets and all
    assert "\x1b]8;" not in result.output  # no OSC 8 hyperlink
