"""SIGTERM and SIGHUP end a run like Ctrl-C: exit 128 + signal, one line on stderr, and nothing
left behind (no output file, no temporary file)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT, sample
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
