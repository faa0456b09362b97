"""Where results go: a regular file or a new path is replaced atomically; a device, a FIFO or
/dev/stdout is written through and never replaced; `-o -` is standard output; a symlink writes
the file it names; a write failure is one line naming the target."""

import io
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT, sample
from lstmctl.cli import main

MODEL = sample("k3_lstm_dense.keras")
X = sample("k3_lstm_dense.input.npy")


def _run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
@pytest.mark.parametrize("chunk", [[], ["--chunk", "1"]])
def test_a_character_device_is_written_through_not_replaced(tmp_path, chunk):
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    result = _run("run", MODEL, "--input", X, "--format", "npz", "-o", str(null), *chunk)
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["null"]  # no temporary file left beside it


def test_a_fifo_is_written_through_and_its_reader_gets_everything(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = {}

    def read():
        with open(fifo, "rb") as fh:
            got["data"] = fh.read()

    reader = threading.Thread(target=read)
    reader.start()
    result = _run("run", MODEL, "--input", X, "--format", "npz", "-o", str(fifo))
    reader.join(10)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with np.load(io.BytesIO(got["data"])) as npz:
        assert npz["output"].shape == (3, 3)


def test_a_symlinked_output_writes_the_file_it_names(tmp_path):
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real.json")
    result = _run("run", MODEL, "--input", X, "--format", "json", "-o", str(tmp_path / "link.json"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "link.json").is_symlink()
    assert (tmp_path / "real.json").read_text().startswith('{"output"')


@pytest.mark.parametrize(
    "args",
    [
        ["run", MODEL, "--input", X, "--format", "npz"],
        ["gates", MODEL, "--format", "npz"],
        ["trace", MODEL, "--input", X, "--format", "npz"],
        ["export", MODEL, "--to", "pytorch"],
    ],
    ids=["run", "gates", "trace", "export"],
)
def test_dash_is_standard_output_for_every_command(args):
    result = _run(*args, "-o", "-")
    assert result.exit_code == 0, result.output
    with np.load(io.BytesIO(result.stdout_bytes)) as npz:
        assert len(npz.files) > 0


def test_an_output_directory_is_refused_with_its_name(tmp_path):
    result = _run("run", MODEL, "--input", X, "--format", "npz", "-o", str(tmp_path))
    assert result.exit_code == 3
    assert result.stderr.strip() == f"lstmctl: error: {tmp_path}: is a directory"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_full_disk_on_standard_output_is_one_clear_line(fmt):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "lstmctl", "run", MODEL, "--input", X, "--format", fmt], stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines() == ["lstmctl: error: cannot write standard output: No space left on device"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_device_as_output_file_names_it():
    result = _run("run", MODEL, "--input", X, "--format", "npz", "-o", "/dev/full")
    assert result.exit_code == 3
    assert result.stderr.strip() == "lstmctl: error: /dev/full: cannot be written (No space left on device)"


CLOSED_PIPE = {  # binary and text outputs, through each way lstmctl writes standard output
    "run-npy": ["run", MODEL, "--input", X, "--format", "npy", "--key", "lstm/h"],
    "run-npz-to-dev-stdout": ["run", MODEL, "--input", X, "--format", "npz", "-o", "/dev/stdout"],
    "run-csv": ["run", MODEL, "--input", X, "--format", "csv", "--key", "output"],
    "run-table": ["run", MODEL, "--input", X],
    "inspect-json": ["inspect", MODEL, "--format", "json"],
    "inspect-table": ["inspect", MODEL],
    "inspect-dot": ["inspect", MODEL, "--format", "dot"],
    "report-html": ["report", MODEL, "--input", X, "-o", "-"],
    "help": ["--help"],
    "run-help": ["run", "--help"],
    "version": ["--version"],
}


@pytest.mark.parametrize("args", CLOSED_PIPE.values(), ids=CLOSED_PIPE)
def test_a_reader_that_closed_the_pipe_ends_the_run_quietly(args):
    """`lstmctl run … --format npy | head -c 10` ended in "unexpected BrokenPipeError", exit 3
    (issue 23). Closing the pipe is the reader's choice: no line on stderr, and exit 141 (128 +
    SIGPIPE), what a shell reports for cat or yes in the same place, so `set -o pipefail` sees it
    as it sees theirs. The pipe here is closed before lstmctl writes a byte."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "lstmctl", *args], stdout=write, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")
