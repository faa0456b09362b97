"""SIGTERM and SIGHUP end a run like Ctrl-C: exit 128 + signal, one line on stderr, and nothing
left behind (no output file, no temporary file). Real signals to real processes, and Ctrl-C made
to land at chosen points of a streamed run (before the first chunk, mid-write, at the rename)."""

import io
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl.model
from conftest import ROOT, sample
from lstmctl import cli
from lstmctl.arrays import stream
from lstmctl.cli import main


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_in_a_streamed_run_leaves_nothing(tmp_path, signum):
    x = np.random.default_rng(0).standard_normal((200_000, 6, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstmctl", "run", sample("k3_lstm_dense.keras"), "--input", str(tmp_path / "x.npy"), "--chunk", "1", "--format", "npz", "-o", str(tmp_path / "out.npz"), "--quiet"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(3)  # well into the run: imports done, chunks being written
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    expected = {signal.SIGINT: 130}.get(signum, 128 + signum)
    assert proc.returncode == expected, err
    assert err.strip().splitlines()[-1] in ("lstmctl: interrupted", f"lstmctl: terminated by {signal.Signals(signum).name}")
    assert sorted(os.listdir(tmp_path)) == ["x.npy"]


def test_an_input_with_no_samples_is_refused_in_a_streamed_run(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((0, 6, 4), np.float32))
    result = CliRunner().invoke(main, ["run", sample("k3_lstm_dense.keras"), "--input", str(tmp_path / "x.npy"), "--chunk", "1", "--format", "npz", "-o", str(tmp_path / "o.npz")])
    assert result.exit_code == 3
    assert "no samples" in result.stderr and "unexpected" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["x.npy"]


def _streamed_run(tmp_path, fmt):
    """A streamed run's arguments (five chunks of one sample), over an output that already holds
    something: whatever stops the run, that file must be left as it was."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((5, 6, 4)).astype(np.float32))
    out = tmp_path / f"out.{fmt}"
    out.write_bytes(b"the user's old file")
    keys = ["--key", "lstm/h"] if fmt == "npy" else []
    return ["run", sample("k3_lstm_dense.keras"), "--input", str(tmp_path / "x.npy"), "--chunk", "1", "--format", fmt, "-o", str(out), *keys]


def _interrupt_on_call(n, real=None):
    """A stand-in for `real` that raises KeyboardInterrupt on its n-th call (as Ctrl-C landing there)."""
    calls = []

    def fake(*args, **kwargs):
        calls.append(args)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return fake


class _WriterInterruptedMidChunk(io.BufferedWriter):
    """A temporary file whose third write (the second chunk's data, after the header and the first
    chunk) stops halfway: Ctrl-C in the middle of writing."""

    writes = 0

    def write(self, data):
        type(self).writes += 1
        if type(self).writes == 3:
            super().write(memoryview(data).cast("B")[: len(memoryview(data).cast("B")) // 2])
            raise KeyboardInterrupt
        return super().write(data)


def _open_interrupted(path, mode="r", *args, **kwargs):
    if mode == "wb":
        return _WriterInterruptedMidChunk(io.FileIO(path, "wb"))
    return open(path, mode, *args, **kwargs)


INTERRUPT_POINTS = {  # where Ctrl-C lands: (formats, what to patch)
    "before-the-first-chunk": (("npz", "npy"), lambda m: m.setattr(stream.NpyRows, "__getitem__", _interrupt_on_call(1))),
    "in-the-third-chunk's-run": (("npz", "npy"), lambda m: m.setattr(lstmctl.model.Model, "run", _interrupt_on_call(3, lstmctl.model.Model.run))),
    "mid-write": (("npz", "npy"), lambda m: m.setattr(stream, "open", _open_interrupted, raising=False)),
    "packing-the-npz": (("npz",), lambda m: m.setattr(shutil, "copyfileobj", _interrupt_on_call(2, shutil.copyfileobj))),
    "at-the-final-rename": (("npz", "npy"), lambda m: m.setattr(os, "replace", _interrupt_on_call(1))),
}


@pytest.mark.parametrize("point, fmt", [(point, fmt) for point, (formats, _) in INTERRUPT_POINTS.items() for fmt in formats])
def test_ctrl_c_at_each_point_of_a_streamed_run(tmp_path, monkeypatch, point, fmt):
    """Issue 23: Ctrl-C during `run --chunk 1` once ended in "unexpected TypeError". Wherever it
    lands: exit 130, "lstmctl: interrupted" alone, the old output untouched, no temporary file."""
    _, patch = INTERRUPT_POINTS[point]
    _WriterInterruptedMidChunk.writes = 0
    args = _streamed_run(tmp_path, fmt)
    patch(monkeypatch)
    result = CliRunner().invoke(main, args)
    assert (result.exit_code, result.stderr) == (130, "lstmctl: interrupted\n"), result.output
    assert (tmp_path / f"out.{fmt}").read_bytes() == b"the user's old file"
    assert sorted(os.listdir(tmp_path)) == sorted(["x.npy", f"out.{fmt}"])


def test_ctrl_c_inside_numpys_file_check_cannot_be_swallowed(tmp_path, monkeypatch):
    """How the TypeError happened: `ndarray.tofile(f)` and `np.fromfile(f)` ask isinstance(f,
    os.PathLike), which runs Python code; the SIGINT handler ran inside it, and NumPy replaced its
    KeyboardInterrupt with "expected str, bytes or os.PathLike object, not BufferedWriter". Here
    that check raises each time it is asked about a file object: a streamed run never asks it, so
    it ends as usual, with the numbers of an unstreamed run."""

    def hook(cls, subclass):
        if issubclass(subclass, io.IOBase):
            raise KeyboardInterrupt
        return NotImplemented

    args = _streamed_run(tmp_path, "npz")
    monkeypatch.setattr(os.PathLike, "__subclasshook__", classmethod(hook))
    os.PathLike._abc_caches_clear()
    try:
        streamed = CliRunner().invoke(main, args)
    finally:
        monkeypatch.undo()
        os.PathLike._abc_caches_clear()
    assert streamed.exit_code == 0, streamed.output
    whole = CliRunner().invoke(main, [*args[:4], "--format", "npz", "-o", str(tmp_path / "whole.npz")])
    assert whole.exit_code == 0, whole.output
    with np.load(tmp_path / "out.npz") as got, np.load(tmp_path / "whole.npz") as want:
        assert sorted(got.files) == sorted(want.files)
        for key in want.files:
            np.testing.assert_allclose(got[key], want[key], atol=1e-6)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_that_c_code_turned_into_another_error_is_still_the_signal(tmp_path, monkeypatch, signum):
    """Any C code may swallow the exception a signal handler raised and raise its own: the handler
    records the signal first, and the CLI reports the signal, not "unexpected TypeError"."""

    def swallowing(self, *args):
        try:
            cli._signalled(signum, None)
        except KeyboardInterrupt:
            pass
        raise TypeError("expected str, bytes or os.PathLike object, not BufferedWriter")

    monkeypatch.setattr(stream.ResultWriter, "append", swallowing)
    result = CliRunner().invoke(main, _streamed_run(tmp_path, "npz"))
    said = "lstmctl: interrupted" if signum == signal.SIGINT else "lstmctl: terminated by SIGTERM"
    assert (result.exit_code, result.stderr) == (128 + signum, said + "\n")
    assert sorted(os.listdir(tmp_path)) == ["out.npz", "x.npy"]
