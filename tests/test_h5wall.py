"""The wall around the HDF5 library: a file that hangs it, crashes it or makes it allocate without
end becomes one error naming the file. Proved with the two library faults found by fuzzing, their
guards in lstmctl.formats.hdf5 switched off here (the forked reader inherits the switch), and with a
memory budget set below what a file needs."""

import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from conftest import sample
from lstmctl.formats import h5wall, hdf5
from lstmctl.cli import main
from lstmctl.errors import LstmctlError
from test_hostile import LEGACY, _zero_size_free_object

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="the wall forks")


def _corrupt_vlen_type(tmp_path) -> Path:
    """keras_version's type byte 0x01 -> 0x05: HDF5 2.0.0 segfaults reading the attribute."""
    data = bytearray(Path(sample(LEGACY)).read_bytes())
    name = data.find(b"keras_version\x00")
    at = data.find(b"\x19\x01", name, name + 32)
    data[at + 1] = 0x05
    p = tmp_path / "vlen.h5"
    p.write_bytes(bytes(data))
    return p


class _Everything:
    def __contains__(self, item):
        return True


def test_a_library_hang_is_cut_off_and_named(tmp_path, monkeypatch):
    p = tmp_path / "heap.h5"
    p.write_bytes(_zero_size_free_object(Path(sample(LEGACY)).read_bytes()))
    with pytest.raises(LstmctlError, match="global heap"):  # the guard, when on
        lstmctl.load(p)
    monkeypatch.setattr(hdf5, "_scan_heaps", lambda data, where: (8, {}))
    monkeypatch.setattr(h5wall, "TIMEOUT", 3.0)
    with pytest.raises(LstmctlError) as caught:
        lstmctl.load(p)
    assert str(caught.value) == f"{p}: the HDF5 library did not finish reading it within 3 s; refused (set LSTMCTL_HDF5_TIMEOUT for a huge file)"


def test_a_library_crash_is_a_clean_error(tmp_path, monkeypatch):
    p = _corrupt_vlen_type(tmp_path)
    with pytest.raises(LstmctlError, match="not a string or number"):  # the guard, when on
        lstmctl.load(p)
    monkeypatch.setattr(hdf5, "_ATTRIBUTE_CLASSES", _Everything())
    with pytest.raises(LstmctlError) as caught:
        lstmctl.load(p)
    assert str(caught.value).startswith(f"{p}: ")
    assert "the HDF5 library crashed reading it (SIG" in str(caught.value) or "could not be read" in str(caught.value)
    result = CliRunner().invoke(main, ["inspect", str(p)])
    assert result.exit_code == 3 and result.stderr.count("\n") == 1 and str(p) in result.stderr


def test_a_memory_blowup_in_the_reader_is_a_clean_error(tmp_path, monkeypatch):
    import h5py

    p = tmp_path / "big.h5"
    with h5py.File(sample(LEGACY)) as src, h5py.File(p, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for key in src:
            src.copy(src[key], dst, name=key)
        dst["model_weights/dense"].create_dataset("extra", data=np.ones(64 << 20, np.uint8))  # read with the rest
    monkeypatch.setattr(h5wall, "MEMORY", 16 << 20)  # 64 MiB is above malloc's mmap threshold: a new mapping, refused
    snap = h5wall.open_h5(str(p), str(p))  # the reader ran out of its budget on 'extra' only
    assert snap.read("model_weights/dense/dense/kernel:0").shape == (5, 3)
    with pytest.raises(LstmctlError) as caught:
        snap.read("model_weights/dense/extra")
    assert str(caught.value) == f"{p}: dataset 'model_weights/dense/extra' ({64 << 20} bytes) does not fit in the memory allowed for reading it; refused"


def test_the_reader_answers_as_the_file_does():
    """What comes back over the pipe: attributes as Keras wrote them, arrays bit for bit, read-only."""
    import h5py

    snap = h5wall.open_h5(sample(LEGACY), "legacy")
    with h5py.File(sample(LEGACY)) as f:
        assert snap.attr(snap.file, "keras_version") == f.attrs["keras_version"]
        names = snap.attr(snap.get("model_weights"), "layer_names")
        assert names == [n.decode() if isinstance(n, bytes) else n for n in f["model_weights"].attrs["layer_names"]]
        for layer in names:
            group = snap.get(f"model_weights/{layer}")
            for w in snap.attr(group, "weight_names") or []:
                got = snap.read(f"model_weights/{layer}/{w}")
                np.testing.assert_array_equal(got, f[f"model_weights/{layer}/{w}"][()])
                assert not got.flags.writeable
    assert snap.get("optimizer_weights") is None  # optimizer state is never read


def test_threads_each_get_their_own_reader():
    x = np.random.default_rng(0).standard_normal((2, 6, 4)).astype(np.float32)
    want = lstmctl.load(sample(LEGACY)).run(x)["output"]
    got, errors = [None] * 8, []

    def work(i):
        try:
            got[i] = lstmctl.load(sample(LEGACY)).run(x)["output"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for g in got:
        np.testing.assert_array_equal(g, want)
