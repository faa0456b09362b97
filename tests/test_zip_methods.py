"""Zip members compressed with bzip2 or LZMA are refused before any is decompressed: one step of
those decompressors can turn a few hundred bytes into gigabytes, beyond any chunked cap."""

import io
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from conftest import sample
from lstmctl.cli import main

METHODS = {"bzip2": zipfile.ZIP_BZIP2, "lzma": zipfile.ZIP_LZMA}


@pytest.mark.parametrize("method", METHODS)
def test_keras_zip_with_a_bzip2_or_lzma_member_is_refused(tmp_path, method):
    out = tmp_path / "m.keras"
    with zipfile.ZipFile(sample("k3_lstm_dense.keras")) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item), compress_type=METHODS[method] if item.filename == "config.json" else zipfile.ZIP_DEFLATED)
    with pytest.raises(lstmctl.LstmctlError, match=f"member 'config.json' is compressed with method {METHODS[method]}"):
        lstmctl.load(out)


@pytest.mark.parametrize("method", METHODS)
def test_an_npz_input_bomb_is_refused_before_it_expands(tmp_path, method):
    """A 64 MiB array of zeros packs into a few hundred bytes; it is never decompressed."""
    buf = io.BytesIO()
    np.save(buf, np.zeros((1 << 24,), np.float32))
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w", compression=METHODS[method]) as zf:
        zf.writestr("input_layer.npy", buf.getvalue())
    assert path.stat().st_size < 100_000
    result = CliRunner().invoke(main, ["run", sample("k3_lstm_dense.keras"), "--input", str(path)])
    assert result.exit_code == 3
    assert f"compressed with method {METHODS[method]}; only stored and deflate members are read" in result.stderr
