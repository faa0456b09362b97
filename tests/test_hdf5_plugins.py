"""HDF5 dlopens every library in its plugin folders when a file fails to open; lstmctl switches
plugin loading off before HDF5 starts, so a library planted there never runs."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, sample

TRIPWIRE = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void tripwire(void) {
    FILE *f = fopen(getenv("LSTMCTL_TRIPWIRE"), "w");
    if (f) { fputs("plugin loaded\n", f); fclose(f); }
}
"""


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the tripwire plugin")
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "trip.c").write_text(TRIPWIRE)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(folder / "libtrip.so"), str(folder / "trip.c")], check=True)
    return folder


def _bad_files(tmp_path):
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(Path(sample("k2_gru.h5")).read_bytes()[:3000])
    keras = tmp_path / "bad_weights.keras"
    with zipfile.ZipFile(sample("k3_lstm_dense.keras")) as src, zipfile.ZipFile(keras, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, b"\x89HDF\r\n\x1a\nnot really" if item.filename == "model.weights.h5" else src.read(item))
    return [truncated, keras]


def _env(plugin_dir, sentinel):
    import os

    return {**os.environ, "HDF5_PLUGIN_PATH": str(plugin_dir), "LSTMCTL_TRIPWIRE": str(sentinel)}


def test_plain_h5py_would_load_the_plugin(plugin_dir, tmp_path):
    """The control: without lstmctl's guard, opening the truncated file runs the tripwire."""
    sentinel = tmp_path / "fired"
    code = f"import h5py\ntry:\n    h5py.File({str(_bad_files(tmp_path)[0])!r})\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", code], env=_env(plugin_dir, sentinel), check=True)
    if not sentinel.exists():
        pytest.skip("this HDF5 build does not search plugins when a file fails to open")


@pytest.mark.parametrize("which", [0, 1], ids=["truncated-h5", "keras-with-bad-weights"])
def test_lstmctl_never_loads_an_hdf5_plugin(plugin_dir, tmp_path, which):
    sentinel = tmp_path / "fired"
    path = _bad_files(tmp_path)[which]
    proc = subprocess.run([sys.executable, "-m", "lstmctl", "inspect", str(path)], env=_env(plugin_dir, sentinel), capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 3, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr
    assert not sentinel.exists()
