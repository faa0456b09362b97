"""Bad files and bad inputs: one line on stderr, the documented exit code, no traceback, no partial file."""

import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from lstmctl.cli import main
from conftest import ROOT, expected, keras_inputs, sample

LSTM = "k3_lstm_dense.keras"


def fails(*args, code=3, contains=(), **kw):
    result = CliRunner().invoke(main, [str(a) for a in args], **kw)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("lstmctl: error:", "Error:", "Usage:")) or code == 2, result.stderr
    for text in contains:
        assert text in result.stderr, result.stderr
    return result


def test_not_a_model(tmp_path):
    p = tmp_path / "notes.h5"
    p.write_text("hello")
    fails("inspect", p, contains=[str(p), "not a Keras model file"])


def test_empty_file_and_directory(tmp_path):
    p = tmp_path / "empty.keras"
    p.write_bytes(b"")
    fails("inspect", p, contains=["empty"])
    fails("inspect", tmp_path, contains=["directory"])
    fails("inspect", tmp_path / "missing.keras", contains=["no such file"])


@pytest.mark.parametrize("name", [LSTM, "k2_lstm_dense.h5"])
def test_truncated_files(tmp_path, name):
    data = Path(sample(name)).read_bytes()
    p = tmp_path / name
    p.write_bytes(data[: len(data) // 2])
    fails("inspect", p, contains=[str(p)])


def test_extension_lies_format_by_magic(tmp_path):
    p = tmp_path / "model.h5"
    shutil.copy(sample(LSTM), p)  # a .keras zip named .h5
    result = CliRunner().invoke(main, ["inspect", str(p), "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.output)["format"] == "keras-zip"


def custom_conv(src, dst):
    """k3_conv.keras with its Conv1D made a custom class (module my_pkg): a layer lstmctl keeps opaque."""

    def edit(config):
        conv = next(entry for entry in config["config"]["layers"] if entry["class_name"] == "Conv1D")
        conv["module"] = "my_pkg.layers"

    _rewrite_config(src, dst, edit)
    return dst


def test_unknown_layer_run_names_it(tmp_path):
    fails("run", custom_conv(sample("k3_conv.keras"), tmp_path / "custom.keras"), contains=["conv1d", "Conv1D", "--direct"])


def _rewrite_config(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(item, data)


def test_units_contradicting_weights(tmp_path):
    p = tmp_path / "bad.keras"

    def edit(config):
        config["config"]["layers"][1]["config"]["units"] = 7

    _rewrite_config(sample(LSTM), p, edit)
    fails("inspect", p, contains=["layer 'lstm'", "units=7"])


def test_kernel_contradicting_input_size(tmp_path):
    p = tmp_path / "bad.keras"

    def edit(config):
        config["config"]["layers"][0]["config"]["batch_shape"] = [None, 6, 5]

    _rewrite_config(sample(LSTM), p, edit)
    fails("inspect", p, contains=["layer 'lstm'", "expects input (batch, time, 4), got (batch, 6, 5)"])


@pytest.mark.parametrize("value", [True, -3, 2.5, "5"])
def test_units_must_be_positive_integers(tmp_path, value):
    p = tmp_path / "bad.keras"

    def edit(config):
        config["config"]["layers"][1]["config"]["units"] = value

    _rewrite_config(sample(LSTM), p, edit)
    fails("inspect", p, contains=["units must be a positive integer"])


def test_missing_weights_in_legacy_h5(tmp_path):
    p = tmp_path / "bad.h5"
    shutil.copy(sample("k2_lstm_dense.h5"), p)
    with h5py.File(p, "r+") as f:
        g = f["model_weights/lstm"]
        g.attrs["weight_names"] = g.attrs["weight_names"][:2]
    fails("inspect", p, contains=["layer 'lstm'", "expected 3 weight arrays"])


@pytest.fixture
def x():
    return keras_inputs(expected(LSTM))["input_layer"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda x: x[0], "expected rank 3"),
        (lambda x: x[..., :3], "expected shape (batch, 6, 4)"),
        (lambda x: x.astype(np.int32), "expects floats"),
        (lambda x: x[:0], "empty"),
        (lambda x: x.astype(np.complex64), "not a plain numeric array"),
    ],
)
def test_bad_input_arrays(tmp_path, x, make, message):
    p = tmp_path / "x.npy"
    np.save(p, make(x))
    out = tmp_path / "out.npz"
    fails("run", sample(LSTM), "--input", p, "--format", "npz", "-o", out, contains=[message])
    assert not out.exists() and not list(tmp_path.glob(".lstmctl-*"))


def test_floats_into_embedding(tmp_path):
    tokens = keras_inputs(expected("k3_embed.keras"))
    (name, array), = tokens.items()
    p = tmp_path / "t.npy"
    np.save(p, array.astype(np.float32) + 0.5)
    fails("run", sample("k3_embed.keras"), "--input", p, contains=["integer token ids"])


def test_unknown_input_name_and_bad_initial_state(tmp_path, x):
    p = tmp_path / "x.npy"
    np.save(p, x)
    fails("run", sample(LSTM), "--input", f"nope={p}", contains=["unknown input name", "input_layer"])
    np.savez(tmp_path / "s.npz", h=np.zeros((x.shape[0], 4), np.float32), c=np.zeros((x.shape[0], 4), np.float32))
    fails("run", sample(LSTM), "--input", p, "--layer", "lstm", "--initial-state", tmp_path / "s.npz", contains=["initial state h must have shape"])


def test_pickled_npy_refused(tmp_path):
    p = tmp_path / "x.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    fails("run", sample(LSTM), "--input", p, contains=["not a plain numeric array"])


def test_usage_errors_exit_2(tmp_path):
    fails("run", sample(LSTM), "--format", "xml", code=2)
    fails("run", sample(LSTM), "--return-state", "--format", "npy", code=2, contains=["holds one array"])
    fails("inspect", code=2)  # no MODEL and no LSTMCTL_MODEL


def test_unknown_layer_name_lists_layers():
    fails("inspect", sample(LSTM), "--layer", "nope", contains=["no layer named 'nope'", "lstm, dense"])


def test_nan_input_warns_where_and_propagates_unless_strict(tmp_path, x):
    """HOSTILE #16: the NaN is reported with its position; it turns every later state of that sample
    into NaN (as in Keras) while the other samples keep Keras's numbers; --strict refuses."""
    exp = expected(LSTM)
    bad = x.copy()
    bad[1, 2, 3] = np.nan
    np.save(tmp_path / "x.npy", bad)
    out = tmp_path / "r.npz"
    r = CliRunner().invoke(main, ["run", sample(LSTM), "--input", str(tmp_path / "x.npy"), "--format", "npz", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "lstmctl: warning: input 'input_layer': 1 non-finite value(s), first nan at index (1, 2, 3)" in r.stderr
    assert "sample 1's states are non-finite from step 2 on" in r.stderr
    with np.load(out) as got:
        seq = got["lstm/sequence"]
        assert np.all(np.isnan(seq[1, 2:])) and np.all(np.isfinite(seq[1, :2]))
        np.testing.assert_allclose(seq[[0, 2]], exp["lstm/sequence"][[0, 2]], atol=1e-5)
        np.testing.assert_allclose(seq[1, :2], exp["lstm/sequence"][1, :2], atol=1e-5)
    out.unlink()
    fails("run", sample(LSTM), "--input", tmp_path / "x.npy", "--strict", "--format", "npz", "-o", out, contains=["non-finite", "(1, 2, 3)"])
    assert not out.exists()


CONTROL = {"newline": "a\nb", "carriage-return": "a\rb", "escape": "a\x1b[2Jb", "tab": "a\tb"}


@pytest.mark.parametrize("name", CONTROL.values(), ids=CONTROL)
def test_a_path_with_control_characters_stays_one_line(tmp_path, name):
    """A path holding a newline split the one error line in two (issue 23): each control
    character of a path is printed as Python escapes it (\\n, \\x1b), wherever the path is named."""
    shown = repr(name)[1:-1]
    missing = tmp_path / f"{name}.keras"
    assert fails("inspect", missing).stderr == f"lstmctl: error: {tmp_path}/{shown}.keras: no such file\n"
    notes = tmp_path / f"{name}.h5"
    notes.write_text("hello")
    assert fails("inspect", notes).stderr == f"lstmctl: error: {tmp_path}/{shown}.h5: not a Keras model file (neither HDF5 nor a .keras zip), nor a torch.save, safetensors, ONNX or TensorFlow Lite file\n"
    fails("run", sample(LSTM), "--input", tmp_path / f"{name}.npy", contains=[f"{shown}.npy: no such file"])
    fails("run", sample(LSTM), "--input", sample("k3_lstm_dense.input.npy"), "--format", "npz", "-o", tmp_path / name / "out.npz", contains=[f"directory {tmp_path}/{shown} does not exist"])


def test_names_read_from_a_file_are_escaped_the_same_way(tmp_path):
    """A group name in a weights file is a layer's name: it may hold a newline or a terminal escape."""
    model = tmp_path / "m.weights.h5"
    shutil.copy(sample("k3_lstm_dense.weights.h5"), model)
    with h5py.File(model, "r+") as f:
        f.move("layers/dense", "layers/den\nse\x1b[2J")
    result = fails("inspect", model, "--layer", "nope")
    assert result.stderr == f"lstmctl: error: {model}: no layer named 'nope' (layers: den\\nse\\x1b[2J, lstm)\n"


def test_a_bad_csv_cell_is_named_by_place_not_quoted_whole(tmp_path):
    """A .csv input that is a symlink to a password-style file put a whole line of it into the
    error (issue 23). The cell is named by line and column; at most a short prefix is quoted."""
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    (tmp_path / "x.csv").symlink_to(secret)
    result = fails("run", sample(LSTM), "--input", tmp_path / "x.csv")
    assert result.stderr == f"lstmctl: error: {tmp_path / 'x.csv'}: CSV line 2, column 1 is not a number: 'daemon:x:1:1:dae'…(47 characters)\n"
    (tmp_path / "y.csv").write_text("a,b,c,d\n1,2,3,4\n1,2,\x1b[2J,4\n")
    result = fails("run", sample(LSTM), "--input", tmp_path / "y.csv")
    assert result.stderr == f"lstmctl: error: {tmp_path / 'y.csv'}: CSV line 3, column 3 is not a number: '\\x1b[2J'\n"
    (tmp_path / "z.json").write_text(json.dumps([[1, 2, 3, 4], [1, 2, 3, secret.read_text().splitlines()[1]]]))
    result = fails("run", sample(LSTM), "--input", tmp_path / "z.json")
    assert result.stderr == f"lstmctl: error: {tmp_path / 'z.json'}: expected numbers only, got 'daemon:x:1:1:dae'…(47 characters)\n"


# ---------------------------------------------------------------------------------------------
# What ended in "unexpected X" from the shell (issue 23's inventory; docs/reliability-inventory.md)

X = sample("k3_lstm_dense.input.npy")


def _raise_on(error, *, when=lambda *a: True, real=None):
    def fake(*args, **kwargs):
        if when(*args):
            raise error
        return real(*args, **kwargs)

    return fake


@pytest.mark.parametrize(
    "args",
    [["run", LSTM, "--input", X, "-o", "{out}/r.npz"], ["run", LSTM, "--input", X, "--chunk", "1", "-o", "{out}/r.npz"], ["run", LSTM, "--input", X, "--outdir", "{out}"], ["report", LSTM, "--input", X, "-o", "{out}/r.html"]],
    ids=["run", "run-streamed", "run-outdir", "report"],
)
def test_a_folder_that_refuses_new_files(tmp_path, monkeypatch, args):
    """PermissionError making the temporary file beside the output (a folder not writable, /sys)."""
    import tempfile

    monkeypatch.setattr(tempfile, "mkstemp", _raise_on(PermissionError(13, "Permission denied")))
    monkeypatch.setattr(tempfile, "mkdtemp", _raise_on(PermissionError(13, "Permission denied")))
    args = [sample(a) if a == LSTM else a.format(out=tmp_path) for a in args]
    result = fails(*args)
    assert result.stderr.startswith(f"lstmctl: error: {tmp_path}/") and result.stderr.endswith(": cannot be written (Permission denied)\n"), result.stderr
    assert os.listdir(tmp_path) == []


def test_a_full_disk_while_a_streamed_npz_is_packed(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "copyfileobj", _raise_on(OSError(28, "No space left on device")))
    result = fails("run", sample(LSTM), "--input", X, "--chunk", "1", "-o", tmp_path / "r.npz")
    assert result.stderr == f"lstmctl: error: {tmp_path}/r.npz: cannot be written (No space left on device)\n"
    assert os.listdir(tmp_path) == []


def test_a_streamed_input_removed_between_chunks(tmp_path, monkeypatch):
    import lstmctl.model

    x = tmp_path / "x.npy"
    shutil.copy(X, x)
    real = lstmctl.model.Model.run
    monkeypatch.setattr(lstmctl.model.Model, "run", lambda *a, **kw: (x.unlink(missing_ok=True), real(*a, **kw))[1])
    result = fails("run", sample(LSTM), "--input", x, "--chunk", "1", "-o", tmp_path / "r.npz")
    assert result.stderr == f"lstmctl: error: {x}: cannot be read (No such file or directory)\n"
    assert os.listdir(tmp_path) == []


def test_a_result_too_big_for_memory(tmp_path, monkeypatch):
    """MemoryError outside the readers and the runner (which name the file or layer): an output built whole."""
    from lstmctl.arrays import writers

    monkeypatch.setattr(writers, "to_bytes", _raise_on(MemoryError()))
    result = fails("run", sample(LSTM), "--input", X, "--format", "json")
    assert result.stderr == "lstmctl: error: out of memory: the work needs more memory than this process may use (a large .npy input streams to a file with --chunk)\n"


def test_a_savedmodel_file_that_cannot_be_opened(monkeypatch):
    """PermissionError opening a file of a SavedModel folder (chmod 000; root reads it anyway, hence the stand-in)."""
    from lstmctl.formats import tensorbundle

    model = sample("tf/lstm.savedmodel")
    monkeypatch.setattr(tensorbundle, "open", _raise_on(PermissionError(13, "Permission denied"), when=lambda path, *a: path.endswith("keras_metadata.pb"), real=open), raising=False)
    result = fails("inspect", model)
    assert result.stderr == f"lstmctl: error: {model}: '{model}/keras_metadata.pb' cannot be read (Permission denied)\n"


def _process(args, **kwargs):
    return subprocess.run([sys.executable, "-m", "lstmctl", *map(str, args)], cwd=ROOT, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.parametrize("args", [["inspect", sample(LSTM)], ["inspect", sample(LSTM), "--format", "json"], ["run", sample(LSTM), "--input", X, "--format", "npy", "--key", "output"]], ids=["table", "json", "npy"])
def test_standard_output_closed(args):
    """`lstmctl … >&-`: Python starts with sys.stdout None. As cat says, a write error; not silence."""
    proc = _process(args, stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
    assert (proc.returncode, proc.stderr) == (3, "lstmctl: error: cannot write standard output: it is closed\n")


def test_standard_input_closed():
    proc = _process(["run", sample(LSTM), "--input", "-"], stdout=subprocess.PIPE, preexec_fn=lambda: os.close(0))
    assert (proc.returncode, proc.stderr) == (3, "lstmctl: error: stdin: is closed\n")


def test_standard_output_whose_encoding_lacks_a_character():
    """PYTHONIOENCODING=ascii (or an old locale): the table's arrows cannot be written."""
    proc = _process(["inspect", sample(LSTM)], stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert (proc.returncode, proc.stderr) == (3, "lstmctl: error: cannot write standard output: its encoding, ascii, has no '→' (use a UTF-8 locale, or PYTHONIOENCODING=utf-8)\n")
