"""The paths a command reads and writes (issue 27): an output never replaces a file the command
reads (MODEL, a file of a MODEL folder, --input, --state-in, --initial-state, --expect), through
symbolic and hard links alike, refused with exit 2 before anything is written; and every path a
command opens is a regular file (--input may also be a pipe), checked before it is opened.
"""

import hashlib
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLES, sample
from test_hostile import cli, fails

LSTM = "k3_lstm_dense.keras"


def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def work(tmp_path):
    """A copy of a model, an input and a state file written by run itself, in one folder."""
    shutil.copy(sample(LSTM), tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(2, 6, 4)).astype(np.float32))
    assert cli("run", tmp_path / "m.keras", "--input", tmp_path / "x.npy", "--state-out", tmp_path / "s.npz", "-o", tmp_path / "r.npz").exit_code == 0
    return tmp_path


def refused(work, *args, contains=()):
    """Exit 2 with one line, and no file in the folder changed, added or left half-written."""
    before = {p.name: digest(p) for p in work.iterdir() if p.is_file() and not p.is_symlink()}
    line = fails(*args, code=2, contains=contains)
    after = {p.name: digest(p) for p in work.iterdir() if p.is_file() and not p.is_symlink()}
    assert after == before
    return line


# (command line with {m} MODEL, {x} the input, {s} the state file; the option that writes; what it names)
CASES = [
    (["run", "{m}", "--input", "{x}", "--format", "npz", "-o", "{m}"], "-o", "MODEL"),
    (["run", "{m}", "--input", "{x}", "-o", "{x}"], "-o", "--input"),
    (["run", "{m}", "--input", "input_layer={x}", "--format", "npy", "-o", "{x}"], "-o", "--input"),
    (["run", "{m}", "--input", "{x}", "--state-out", "{m}"], "--state-out", "MODEL"),
    (["run", "{m}", "--input", "{x}", "--state-out", "{x}"], "--state-out", "--input"),
    (["run", "{m}", "--input", "{x}", "--state-in", "{s}", "-o", "{s}"], "-o", "--state-in"),
    (["run", "{m}", "--input", "{x}", "--expect", "{s}", "-o", "{s}"], "-o", "--expect"),
    (["run", "{m}", "--input", "{x}", "--layer", "lstm", "--initial-state", "{s}", "-o", "{s}"], "-o", "--initial-state"),
    (["run", "{m}", "--input", "{x}", "--chunk", "1", "-o", "{x}"], "-o", "--input"),  # streamed
    (["gates", "{m}", "-o", "{m}"], "-o", "MODEL"),
    (["export", "{m}", "--to", "pytorch", "-o", "{m}"], "-o", "MODEL"),
    (["report", "{m}", "--input", "{x}", "-o", "{m}"], "-o", "MODEL"),
    (["report", "{m}", "--input", "{x}", "-o", "{x}"], "-o", "--input"),
    (["trace", "{m}", "--input", "{x}", "--format", "npz", "-o", "{x}"], "-o", "--input"),
    (["trace", "{m}", "--input", "{x}", "--svg", "{m}"], "--svg", "MODEL"),
]


@pytest.mark.parametrize("args, option, read", CASES, ids=[" ".join(a[:1] + a[-2:]) + f" ({r})" for a, _, r in CASES])
@pytest.mark.parametrize("through", ["path", "symlink", "hardlink"])
def test_an_output_naming_a_file_the_command_reads_is_refused(work, args, option, read, through):
    """`run MODEL -o MODEL` replaced the model it read (and so did gates, export, --state-out…)."""
    names = {"m": work / "m.keras", "x": work / "x.npy", "s": work / "s.npz"}
    target = {"MODEL": "m", "--input": "x"}.get(read, "s")
    out = names[target]
    if through != "path":
        out = work / f"other{out.suffix}"
        (out.symlink_to if through == "symlink" else out.hardlink_to)(names[target])
    given = [a.format(**{k: str(v) for k, v in names.items()}) for a in args]
    given[len(given) - 1 - given[::-1].index(str(names[target]))] = str(out)  # the output option's value
    line = refused(work, *given, contains=[f"{option} {out}: is the {read} file this command reads ({names[target]}); write the result elsewhere"])
    assert "input_layer=" not in line


def test_outputs_naming_each_other_are_refused(work):
    refused(work, "run", work / "m.keras", "--input", work / "x.npy", "--state-out", work / "new.npz", "-o", work / "new.npz",
            contains=["--state-out", "is also where -o writes; give each its own file"])  # fmt: skip
    assert not (work / "new.npz").exists()


def test_state_in_and_state_out_may_be_one_file(work):
    """The documented way to run a sequence in pieces: the state is read whole, then replaced."""
    before = digest(work / "s.npz")
    assert cli("run", work / "m.keras", "--input", work / "x.npy", "--state-in", work / "s.npz", "--state-out", work / "s.npz").exit_code == 0
    assert digest(work / "s.npz") != before


def test_outputs_beside_the_inputs_are_written(work):
    """Only the files read are protected: a new or an unrelated file in the same folder is written."""
    (work / "old.npz").write_bytes(b"replaced")
    assert cli("run", work / "m.keras", "--input", work / "x.npy", "-o", work / "old.npz").exit_code == 0
    with np.load(work / "old.npz") as data:
        assert data["output"].shape == (2, 3)


@pytest.mark.parametrize("chunk", [[], ["--chunk", "1"]], ids=["whole", "streamed"])
def test_outdir_never_replaces_an_input(work, chunk):
    """--outdir writes <key>.npy files: an input of the same name in that folder stays."""
    np.save(work / "lstm__h.npy", np.zeros((2, 6, 4), np.float32))
    refused(work, "run", work / "m.keras", "--input", work / "lstm__h.npy", "--outdir", work, *chunk,
            contains=[f"--outdir {work / 'lstm__h.npy'}: is the --input file this command reads"])  # fmt: skip


def test_a_file_inside_a_model_folder(tmp_path):
    """A SavedModel folder as MODEL: any file inside it, and a hard link to one from outside, is read."""
    folder = tmp_path / "sm"
    shutil.copytree(SAMPLES / "tf" / "bidir.savedmodel", folder)
    member = folder / "variables" / "variables.index"
    (tmp_path / "hard.npz").hardlink_to(member)
    for out in (member, tmp_path / "hard.npz", folder / "saved_model.pb"):
        before = digest(out)
        fails("gates", folder, "-o", out, code=2, contains=[f"-o {out}: is a file inside the MODEL folder this command reads ({folder})"])
        assert digest(out) == before
    assert cli("gates", folder, "-o", folder / "gates.npz").exit_code == 0  # a new file there is no file it reads


def test_a_checkpoint_named_by_its_prefix(tmp_path):
    """MODEL as a checkpoint prefix (no file of that name): its .index and data shard are read."""
    for part in (".index", ".data-00000-of-00001"):
        shutil.copy(SAMPLES / "tf" / f"bidir.ckpt{part}", tmp_path / f"bidir.ckpt{part}")
    for model in (tmp_path / "bidir.ckpt", tmp_path / "bidir.ckpt.index"):
        out = tmp_path / "bidir.ckpt.data-00000-of-00001"
        fails("gates", model, "-o", out, code=2, contains=[f"-o {out}: is the MODEL file this command reads ({model}, through {out})"])


def test_the_library_call(tmp_path):
    """writers.refuse_overwrite on its own: a list of inputs, a missing output, standard output."""
    from lstmctl.arrays.writers import refuse_overwrite
    from lstmctl.errors import UsageError

    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    refuse_overwrite({"-o": str(tmp_path / "new.npz"), "--x": "-"}, {"--input": [str(a), str(b)]})
    with pytest.raises(UsageError, match="-o .*b.npy: is the --input file"):
        refuse_overwrite({"-o": str(b)}, {"--input": [str(a), str(b)]})


# ---------------------------------------------------------------------------------------------
# paths that are no regular file


def _fifo(tmp_path):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    return fifo


NOT_FILES = {  # option -> the command line it is given in; {p} the path
    "--state-in": ["run", "{m}", "--input", "{x}", "--state-in", "{p}"],
    "--initial-state": ["run", "{m}", "--input", "{x}", "--layer", "lstm", "--initial-state", "{p}"],
    "--expect": ["run", "{m}", "--input", "{x}", "--expect", "{p}"],
    "--outputs": ["diagnose", "{m}", "--input", "{x}", "--outputs", "{p}"],
    "compare RESULT": ["compare", "{p}", "{s}"],
    "compare REFERENCE": ["compare", "{s}", "{p}"],
    "compare PORT": ["compare", "{m}", "{p}", "--input", "{x}"],
}


@pytest.mark.parametrize("kind", ["fifo", "fifo-behind-a-symlink", "/dev/zero", "folder"])
@pytest.mark.parametrize("option", sorted(NOT_FILES))
def test_a_path_that_is_no_regular_file_is_refused_unopened(work, option, kind):
    """`run … --state-in FIFO` blocked forever: only MODEL was checked. Every path is now checked
    before it is opened (a FIFO nobody writes to would block the open)."""
    if kind == "/dev/zero":
        path, said = "/dev/zero", "is a character device"
    elif kind == "folder":
        if option == "--state-in":
            pytest.skip("click's dir_okay=False refuses a folder there, as a usage error")
        path, said = work, "is a directory"
    else:
        path, said = _fifo(work), "is a FIFO (named pipe)"
        if kind == "fifo-behind-a-symlink":
            (work / "link.npz").symlink_to(path)
            path = work / "link.npz"
    args = [a.format(m=work / "m.keras", x=work / "x.npy", s=work / "s.npz", p=path) for a in NOT_FILES[option]]
    fails(*args, contains=[f"{path}: {said}"], code=3)


def test_a_fifo_as_input_is_still_read_to_its_end(work):
    """--input from a shell's `<(…)` is documented (docs/reliability.md): a FIFO there is read as cat reads it."""
    fifo = work / "in.npy"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes((work / "x.npy").read_bytes()))
    writer.start()
    result = cli("run", work / "m.keras", "--input", fifo, "--format", "npz", "-o", work / "fifo.npz")
    writer.join(30)
    assert result.exit_code == 0, result.output
    with np.load(work / "fifo.npz") as got, np.load(work / "r.npz") as ref:
        np.testing.assert_array_equal(got["output"], ref["output"])


@pytest.mark.parametrize("path, said", [("/dev/zero", "is a character device, not an array file; refused"), ("/dev/null", "is a character device")])
def test_a_device_as_input_is_refused(work, path, said):
    fails("run", work / "m.keras", "--input", path, contains=[f"{path}: {said}"])


# ---------------------------------------------------------------------------------------------
# compare: which side is the reference, and what two models need (issue 26)


@pytest.mark.parametrize("second", ["torch/k3_lstm_dense.lstm.pt", "k3_lstm_dense.keras", "tf/bidir.savedmodel"])
def test_compare_two_models_without_input_says_what_they_need(second):
    """`compare model.keras port.pt` said "member 'metadata.json' is not an .npy array"."""
    fails("compare", sample(LSTM), sample(second), code=2,
          contains=[f"{sample(LSTM)} and {sample(second)} are models: comparing MODEL (the reference) with its PORT runs both on an input; give --input X"])  # fmt: skip


def test_compare_a_model_with_a_result_file(work):
    """One model and one result file: the line points at run --expect, which does that."""
    for args in ([work / "m.keras", work / "r.npz"], [work / "r.npz", work / "m.keras"]):
        fails("compare", *args, code=2, contains=[f"{work / 'm.keras'} is a model, not a result file", "run MODEL --input X --expect REFERENCE"])


def test_compare_names_the_reference_in_both_modes(work):
    usage = cli("compare", "--help").output
    assert "compare [OPTIONS] RESULT|MODEL REFERENCE|PORT" in usage
    assert "REFERENCE\n  is the truth" in usage or "REFERENCE is the truth" in " ".join(usage.split())
    assert "MODEL is the reference and PORT its port" in " ".join(usage.split())
    np.savez(work / "other.npz", output=np.zeros((2, 3), np.float32))
    files = cli("compare", work / "r.npz", work / "other.npz")
    assert files.exit_code == 1 and f"keys differ from the reference {work / 'other.npz'}" in files.stderr
    port = cli("compare", sample(LSTM), sample("torch/k3_lstm_dense.lstm.pt"), "--input", sample("k3_lstm_dense.input.npy"), env={"COLUMNS": "200"})
    assert port.exit_code == 0, port.output
    assert "reference lstm ↔ port lstm: LSTM(5)" in port.stdout and "1 of 1 recurrent layers of the port agree with the reference" in port.stdout


# ---------------------------------------------------------------------------------------------
# packing the results


def _savez_out_of_memory(file, **arrays):
    """np.savez as it fails on a huge result: a MemoryError inside zipfile, which its unwinding
    turns into "ValueError: I/O operation on closed file" (what `run` said, as "unexpected")."""
    try:
        raise MemoryError
    except MemoryError:
        raise ValueError("I/O operation on closed file")  # noqa: B904 (its context is the MemoryError, as in zipfile)


@pytest.mark.parametrize("output", ["r.npz", "-"])
def test_a_memory_error_while_packing_names_the_output(work, monkeypatch, output):
    monkeypatch.setattr(np, "savez", _savez_out_of_memory)
    target = "-" if output == "-" else str(work / "new.npz")
    line = fails("run", work / "m.keras", "--input", work / "x.npy", "--format", "npz", "-o", target)
    where = "standard output" if output == "-" else target
    assert f"{where}: not written: packing " in line and "bytes of results as npz needs more memory than this process may use" in line
    assert not (work / "new.npz").exists() and not list(work.glob(".lstmctl-*"))
