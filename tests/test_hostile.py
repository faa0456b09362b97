"""Hostile model and input files (see HOSTILE-INPUTS.md), each built on the fly in a tmp dir.

For every case: exit code 3 (0 where `inspect` shows an opaque layer), one line on stderr that
names the file (and the layer, dataset or member), no traceback, no partial --output file, and
nothing executed or read from outside the given file. Resource cases run in a subprocess under
an address-space limit and must end with exit 3, not a MemoryError or a kill.
"""

import base64
import binascii
import functools
import importlib
import io
import json
import marshal
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
import lstmctl.analysis.describe  # noqa: F401  (imported before the tripwires go up)
import lstmctl.arrays.inputs
import lstmctl.render.console  # noqa: F401
import lstmctl.arrays.writers  # noqa: F401
from lstmctl.cli import main
from conftest import ROOT, sample

LSTM = "k3_lstm_dense.keras"
LEGACY = "k2_lstm_dense.h5"
X = sample("k3_lstm_dense.input.npy")
SECRET_VALUE = 4242.4242
SECRET_TEXT = "TOPSECRET-7f3a9c"
EVIL_MODULE = "lstmctl_hostile_evil"
ADDRESS_LIMIT = 1 << 30  # a normal inspect or run needs about 150 MiB of address space


# ---------------------------------------------------------------------------------------------
# helpers


def cli(*args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], **kw)


def one_error_line(result, code=3, contains=()):
    """The documented failure shape: exit code, one 'lstmctl: error:' line, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert "4242" not in result.output and SECRET_TEXT not in result.output  # nothing from outside the file
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("lstmctl: error:"), line
    assert "unexpected" not in line, line
    for text in contains:
        assert str(text) in line, (text, line)
    return line


def fails(*args, contains=(), code=3, output=None, **kw):
    result = cli(*args, **kw)
    line = one_error_line(result, code, contains)
    if output is not None:
        no_output_file(output)
    return line


def no_output_file(output):
    output = Path(output)
    assert not output.exists(), output
    assert not list(output.parent.glob(".lstmctl-*")), list(output.parent.glob(".lstmctl-*"))


def every_command_fails(model, tmp_path, contains=(), secret=True):
    """inspect (table and json), run and gates with --output: all refuse, none leaks a secret."""
    out = tmp_path / "out.npz"
    lines = [
        fails("inspect", model, contains=contains),
        fails("inspect", model, "--format", "json", contains=contains),
        fails("run", model, "--input", X, "--format", "npz", "-o", out, contains=contains, output=out),
        fails("gates", model, "-o", out, contains=contains, output=out),
    ]
    if secret:
        for line in lines:
            assert "4242" not in line and SECRET_TEXT not in line
    return lines


def config_of(name):
    with zipfile.ZipFile(sample(name)) as zf:
        return json.loads(zf.read("config.json"))


def make_keras(dst, src=LSTM, config=None, replace=None, extra=(), config_bytes=None):
    """A copy of a sample .keras with config.json and/or members replaced or added."""
    replace = dict(replace or {})
    if config is not None:
        replace["config.json"] = json.dumps(config).encode()
    if config_bytes is not None:
        replace["config.json"] = config_bytes
    with zipfile.ZipFile(sample(src)) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, replace.pop(item.filename, None) or zin.read(item))
        for name, data in [*replace.items(), *extra]:
            zout.writestr(name, data)
    return dst


def edit_keras_weights(dst, edit, src=LSTM, tmp=None):
    """A copy of a sample .keras whose model.weights.h5 was changed by `edit(h5py.File)`."""
    tmp = Path(tmp or Path(dst).parent)
    h5_path = tmp / "weights-edit.h5"
    with zipfile.ZipFile(sample(src)) as zf:
        h5_path.write_bytes(zf.read("model.weights.h5"))
    with h5py.File(h5_path, "r+") as f:
        edit(f)
    return make_keras(dst, src, replace={"model.weights.h5": h5_path.read_bytes()})


def copy_h5(dst, src=LEGACY, edit=None):
    shutil.copy(sample(src), dst)
    if edit is not None:
        with h5py.File(dst, "r+") as f:
            edit(f)
    return dst


def secret_h5(path, shape_map):
    """An HDF5 file of secret values: dataset path -> shape."""
    with h5py.File(path, "w") as f:
        for name, shape in shape_map.items():
            f.create_dataset(name, data=np.full(shape, SECRET_VALUE, np.float32))
        f.attrs["note"] = SECRET_TEXT
    return path


def npy_bytes(header: str, data=b"", version=1) -> bytes:
    h = header.encode("latin1")
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(h)) + h + data


def npy_header(descr="<f4", shape=(3, 6, 4), fortran=False) -> str:
    return f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}".ljust(117) + "\n"


@functools.lru_cache(maxsize=4)
def zero_deflate(n_mib: int) -> tuple[bytes, int]:
    """A raw deflate stream of n_mib MiB of zeros, built without compressing them all, and its CRC."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(1 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush()
    crc = 0
    zeros = bytes(1 << 20)
    for _ in range(n_mib):
        crc = zlib.crc32(zeros, crc)
    return block * n_mib + tail, crc


def raw_zip(members) -> bytes:
    """A zip archive written by hand so sizes, names and methods can be forged.

    members: dicts with name, data (as stored), method (0 or 8), crc, size (uncompressed, as
    declared), csize (as declared; default len(data))."""
    out = bytearray()
    central = bytearray()
    for m in members:
        name = m["name"].encode()
        data = m["data"]
        csize = m.get("csize", len(data))
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, m.get("method", 8), 0, 0, m.get("crc", 0), csize & 0xFFFFFFFF, m["size"] & 0xFFFFFFFF, len(name), 0)
        out += name + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, m.get("method", 8), 0, 0, m.get("crc", 0), csize & 0xFFFFFFFF, m["size"] & 0xFFFFFFFF, len(name), 0, 0, 0, 0, 0, offset)
        central += name
    start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, 0)
    return bytes(out)


def stored(name, data: bytes) -> dict:
    return {"name": name, "data": data, "method": 0, "crc": zlib.crc32(data), "size": len(data)}


def sample_members(src=LSTM) -> list:
    with zipfile.ZipFile(sample(src)) as zf:
        return [stored(n, zf.read(n)) for n in zf.namelist()]


# One helper process imports lstmctl once; each resource case runs in a child forked from it, under
# RLIMIT_AS, so a case costs a fork instead of an interpreter start. It is the CLI's own code path:
# main(args) with click's standalone mode, stderr and stdout to files, the exit status reported back.
_SERVER = textwrap.dedent(
    """
    import io, json, os, resource, signal, sys, time, traceback
    import lstmctl.arrays.inputs, lstmctl.arrays.writers, lstmctl.analysis.describe, lstmctl.cli, lstmctl.render.console, lstmctl.runner
    requests = os.fdopen(3, "r")
    replies = os.fdopen(4, "w")
    for line in requests:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 99
            try:
                resource.setrlimit(resource.RLIMIT_AS, (req["limit"], req["limit"]))
                for fd, path, flags in ((0, req["stdin"] or os.devnull, os.O_RDONLY), (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
                    os.dup2(os.open(path, flags), fd)
                sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, closefd=False)))
                sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)))
                sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)))
                try:
                    lstmctl.cli.main(req["args"], prog_name="lstmctl")
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        deadline = time.monotonic() + req["timeout"]
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
        replies.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\\n")
        replies.flush()
    """
)


class _Limited:
    def __init__(self):
        self.proc = None

    def start(self):
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        env.pop("LSTMCTL_DEBUG", None)
        env.pop("LSTMCTL_MODEL", None)
        os.set_inheritable(req_r, True)
        os.set_inheritable(rep_w, True)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"import os; os.dup2({req_r}, 3); os.dup2({rep_w}, 4); exec({_SERVER!r})"],
            env=env, pass_fds=(req_r, rep_w), stdin=subprocess.DEVNULL,
        )
        os.close(req_r)
        os.close(rep_w)
        self.requests = os.fdopen(req_w, "w")
        self.replies = os.fdopen(rep_r, "r")

    def run(self, args, limit, stdin, timeout, tmp):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        out, err = tmp / "limited.stdout", tmp / "limited.stderr"
        req = {"args": [str(a) for a in args], "limit": limit, "stdin": str(stdin) if stdin else None, "stdout": str(out), "stderr": str(err), "timeout": timeout}
        self.requests.write(json.dumps(req) + "\n")
        self.requests.flush()
        reply = json.loads(self.replies.readline())
        return subprocess.CompletedProcess(args, reply["code"], out.read_bytes(), err.read_bytes())

    def stop(self):
        if self.proc is not None:
            self.requests.close()
            self.proc.wait(timeout=30)
            self.replies.close()


_LIMITED = _Limited()


@pytest.fixture(scope="module", autouse=True)
def _limited_server():
    yield
    _LIMITED.stop()


def limited(args, limit=ADDRESS_LIMIT, stdin=None, timeout=60):
    """Run the CLI under RLIMIT_AS in a child process; returns a CompletedProcess."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return _LIMITED.run(args, limit, stdin, timeout, Path(tmp))


def refused_under_limit(args, contains=(), output=None):
    proc = limited(args)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 3, (proc.returncode, err[-2000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmctl: error:"), err[-2000:]
    assert "MemoryError" not in err and "unexpected" not in err and "Traceback" not in err
    # under the limit, an allocation that fails inside h5py or zipfile would surface as "corrupt":
    # the refusal must come from a check made before allocating
    message = lines[0]
    for text in contains:  # file names (tmp dirs are named after tests) are not the message
        if isinstance(text, Path):
            message = message.replace(str(text), "")
    assert "corrupt" not in message or "Bad CRC-32" in message or "global heap" in message, lines[0]
    for text in contains:
        assert str(text) in lines[0], (text, lines[0])
    if output is not None:
        no_output_file(output)
    return lines[0]


def test_normal_run_fits_the_address_limit(tmp_path):
    """The limit used by the resource cases leaves ample room for ordinary work."""
    proc = limited(["inspect", sample(LSTM)])
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    proc = limited(["run", sample("k3_nested.keras"), "--format", "json"])
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]


# ---------------------------------------------------------------------------------------------
# tripwires: nothing imported, unmarshalled, unpickled or spawned


@pytest.fixture
def tripwires(monkeypatch, tmp_path):
    """Record any call that would execute or import something named by a file."""
    calls = []
    sentinel = tmp_path / "PWNED"
    evil_dir = tmp_path / "evil_path"
    evil_dir.mkdir()
    (evil_dir / f"{EVIL_MODULE}.py").write_text(f"open({str(sentinel)!r}, 'w').write('imported')\nclass Evil: pass\nclass Dense: pass\n")
    monkeypatch.syspath_prepend(str(evil_dir))

    def wire(target, name):
        original = getattr(target, name)

        def tripped(*a, **k):
            calls.append((name, a[:1]))
            return original(*a, **k)

        monkeypatch.setattr(target, name, tripped)

    def block(target, name):
        def tripped(*a, **k):
            calls.append((name, a[:1]))
            raise AssertionError(f"{name} called")

        monkeypatch.setattr(target, name, tripped)

    for target, name in [(os, "system"), (os, "popen"), (os, "execv"), (os, "execve"), (subprocess, "Popen"), (pickle, "loads"), (pickle, "load")]:
        block(target, name)
    wire(importlib, "import_module")
    marker = str(sentinel).encode()

    def watch(target, name, result_too=False):
        """Python's own machinery uses these (imports unmarshal .pyc files): flag only our payload."""
        original = getattr(target, name)

        def watched(data, *a, **k):
            out = original(data, *a, **k)
            seen = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else str(data).encode()
            if marker in seen or (result_too and isinstance(out, bytes) and marker in out):
                calls.append((name, "payload"))
            return out

        monkeypatch.setattr(target, name, watched)

    watch(marshal, "loads")
    watch(binascii, "a2b_base64", result_too=True)
    state = {"calls": calls, "sentinel": sentinel}
    yield state
    assert not sentinel.exists(), "a payload from a model file ran"
    assert EVIL_MODULE not in sys.modules, "a module named by a model file was imported"
    assert not [c for c in calls if c[0] != "import_module" or EVIL_MODULE in str(c[1]) or "keras" in str(c[1]) or "os" == str(c[1][0])], calls


def lambda_code(sentinel) -> str:
    """Base64 of marshalled bytecode that creates `sentinel` when called, as Keras saves a Lambda."""
    fn = eval(f"lambda x: (__import__('pathlib').Path({str(sentinel)!r}).write_text('pwned'), x)[1]")  # noqa: S307 (builds the payload)
    return base64.b64encode(marshal.dumps(fn.__code__)).decode()


def test_lambda_payload_is_live(tmp_path):
    """Control: the payload really runs if decoded the way Keras decodes it (so the sentinel means something)."""
    import types

    control = tmp_path / "control"
    fn = types.FunctionType(marshal.loads(base64.b64decode(lambda_code(control))), {"__builtins__": __builtins__})
    assert fn(7) == 7 and control.read_text() == "pwned"


def keras3_lambda(name, sentinel):
    return {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": name,
            "trainable": True,
            "function": {"class_name": "__lambda__", "config": {"code": lambda_code(sentinel), "defaults": None, "closure": None}},
            "arguments": {},
            "output_shape": None,
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 5]},
    }


def keras2_lambda(name, sentinel):
    return {
        "class_name": "Lambda",
        "config": {"name": name, "trainable": True, "dtype": "float32", "function": [lambda_code(sentinel), None, None], "function_type": "lambda", "module": "__main__", "output_shape": None, "output_shape_type": "raw", "arguments": {}},
    }


def opaque_layers(model_path) -> dict:
    result = cli("inspect", model_path, "--format", "json")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    facts = json.loads(result.stdout)
    return {layer["name"]: layer for layer in facts["layers"] if layer["kind"] == "opaque"}, result.output


# ---------------------------------------------------------------------------------------------
# 1-3. code execution: Lambda, foreign modules, custom classes, lookup layers


def test_lambda_in_keras_top_level(tmp_path, tripwires):
    config = config_of(LSTM)
    config["config"]["layers"].insert(2, keras3_lambda("evil_lambda", tripwires["sentinel"]))
    model = make_keras(tmp_path / "lambda.keras", config=config)
    opaque, text = opaque_layers(model)
    assert opaque["evil_lambda"]["class_name"] == "Lambda"
    assert lambda_code(tripwires["sentinel"])[:40] not in text
    table = cli("inspect", model)
    assert table.exit_code == 0 and "evil_lambda" in table.output and "opaque" in table.output
    out = tmp_path / "out.npz"
    fails("run", model, "--input", X, "--format", "npz", "-o", out, contains=["evil_lambda", "Lambda"], output=out)
    fails("run", model, contains=["evil_lambda", "Lambda"])
    # the recurrent layer before it can still be run directly
    ok = cli("run", model, "--layer", "lstm", "--direct", "--input", X, "--format", "json")
    assert ok.exit_code == 0, ok.output
    with pytest.raises(lstmctl.LstmctlError, match="evil_lambda"):
        lstmctl.load(model).run(np.load(X))


def test_lambda_in_nested_keras_model(tmp_path, tripwires):
    config = config_of("k3_nested.keras")
    inner = config["config"]["layers"][1]
    assert inner["class_name"] == "Sequential"
    inner["config"]["layers"].insert(2, keras3_lambda("nested_lambda", tripwires["sentinel"]))
    model = make_keras(tmp_path / "nested.keras", src="k3_nested.keras", config=config)
    out = tmp_path / "out.json"
    fails("run", model, "--format", "json", "-o", out, contains=["nested_lambda", "Lambda"], output=out)
    loaded = lstmctl.load(model)
    assert loaded.layer("nested_lambda").kind == "opaque"
    assert loaded.layer("nested_lambda").config == {}  # never interpreted


def test_inspect_lists_lambda_inside_nested_model(tmp_path):
    config = config_of("k3_nested.keras")
    config["config"]["layers"][1]["config"]["layers"].insert(2, keras3_lambda("nested_lambda", tmp_path / "PWNED"))
    model = make_keras(tmp_path / "nested.keras", src="k3_nested.keras", config=config)
    opaque, _ = opaque_layers(model)
    assert opaque["nested_lambda"]["class_name"] == "Lambda" and opaque["nested_lambda"]["depth"] == 1


def legacy_with_layer(dst, entry, position=2):
    def edit(f):
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"].insert(position, entry)
        f.attrs["model_config"] = json.dumps(config)
        group = f["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
        names.insert(position - 1, entry["config"]["name"])
        group.attrs["layer_names"] = np.array(names, dtype=h5py.string_dtype())
        g = group.create_group(entry["config"]["name"])
        g.attrs["weight_names"] = np.array([], dtype=h5py.string_dtype())

    return copy_h5(dst, LEGACY, edit)


def test_lambda_in_legacy_h5(tmp_path, tripwires):
    model = legacy_with_layer(tmp_path / "lambda.h5", keras2_lambda("legacy_lambda", tripwires["sentinel"]))
    opaque, text = opaque_layers(model)
    assert opaque["legacy_lambda"]["class_name"] == "Lambda"
    assert lambda_code(tripwires["sentinel"])[:40] not in text
    out = tmp_path / "out.npz"
    fails("run", model, "--input", X, "--format", "npz", "-o", out, contains=["legacy_lambda", "Lambda"], output=out)


FOREIGN = [
    pytest.param({"module": "os", "class_name": "system", "config": {"name": "os_system", "command": "touch PWNED"}, "registered_name": "os>system"}, "system", id="os.system"),
    pytest.param({"module": EVIL_MODULE, "class_name": "Evil", "config": {"name": "evil"}, "registered_name": "Custom>Evil"}, "Evil", id="evil-module"),
    pytest.param({"module": "keras.layers", "class_name": "Unheard", "config": {"name": "unheard"}, "registered_name": "Unheard>Of"}, "Unheard", id="unknown-registered-name"),
    pytest.param({"module": "keras.layers", "class_name": "TFSMLayer", "config": {"name": "tfsm", "filepath": "SECRETDIR", "call_endpoint": "serve"}}, "TFSMLayer", id="TFSMLayer"),
    pytest.param({"module": "keras.layers", "class_name": "TorchModuleWrapper", "config": {"name": "torch_wrapper", "module": "PICKLE"}}, "TorchModuleWrapper", id="TorchModuleWrapper"),
    pytest.param({"module": "keras.layers", "class_name": "StringLookup", "config": {"name": "lookup", "vocabulary": "SECRETFILE", "output_mode": "int"}}, "StringLookup", id="StringLookup-path"),
    pytest.param({"module": "keras.layers", "class_name": "IntegerLookup", "config": {"name": "lookup", "vocabulary": "http://127.0.0.1:9/vocab.txt"}}, "IntegerLookup", id="IntegerLookup-url"),
    pytest.param({"module": "keras.layers", "class_name": "TextVectorization", "config": {"name": "vectorize", "vocabulary": "SECRETFILE", "standardize": {"module": "os", "class_name": "function", "config": "system"}}}, "TextVectorization", id="TextVectorization"),
]


class _Evil:
    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


def _fill(entry, tripwires, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_TEXT)
    text = json.dumps(entry)
    text = text.replace("SECRETFILE", str(secret)).replace("SECRETDIR", str(tmp_path))
    text = text.replace("PICKLE", base64.b64encode(pickle.dumps(_Evil(tripwires["sentinel"]))).decode())
    text = text.replace("touch PWNED", f"touch {tripwires['sentinel']}")
    return json.loads(text)


@pytest.mark.parametrize("entry, cls", FOREIGN)
def test_foreign_classes_are_opaque_in_keras(tmp_path, tripwires, entry, cls):
    entry = _fill(entry, tripwires, tmp_path)
    config = config_of(LSTM)
    config["config"]["layers"].insert(2, entry)
    model = make_keras(tmp_path / "foreign.keras", config=config)
    opaque, text = opaque_layers(model)
    name = entry["config"]["name"]
    assert opaque[name]["class_name"] == cls
    assert SECRET_TEXT not in text and str(tmp_path / "secret.txt") not in text
    out = tmp_path / "out.npz"
    line = fails("run", model, "--input", X, "--format", "npz", "-o", out, contains=[name, cls], output=out)
    assert SECRET_TEXT not in line


@pytest.mark.parametrize("entry, cls", FOREIGN[:3])
def test_foreign_classes_are_opaque_in_legacy_h5(tmp_path, tripwires, entry, cls):
    entry = _fill(entry, tripwires, tmp_path)
    entry.pop("module", None)
    model = legacy_with_layer(tmp_path / "foreign.h5", entry)
    opaque, _ = opaque_layers(model)
    assert opaque[entry["config"]["name"]]["class_name"] == cls
    fails("run", model, "--input", X, contains=[entry["config"]["name"], cls])


@pytest.mark.parametrize(
    "module, registered",
    [(EVIL_MODULE, "Custom>Dense"), ("os", None), ("keras.layers", "my_package>Dense"), ("builtins", "Dense")],
)
def test_allowed_class_name_from_a_foreign_module_is_opaque(tmp_path, tripwires, module, registered):
    """A custom class that merely calls itself Dense is not Keras's Dense: shown opaque, not run."""
    config = config_of(LSTM)
    dense = config["config"]["layers"][2]
    dense["module"], dense["registered_name"] = module, registered
    model = make_keras(tmp_path / "fake.keras", config=config)
    opaque, _ = opaque_layers(model)
    assert opaque["dense"]["class_name"] == "Dense"
    assert opaque["dense"]["params"] == 18  # its weights are still counted
    fails("run", model, "--input", X, contains=["dense"])


def test_foreign_top_level_model_class_refused(tmp_path, tripwires):
    config = config_of(LSTM)
    config["module"], config["registered_name"] = EVIL_MODULE, "Custom>Sequential"
    model = make_keras(tmp_path / "top.keras", config=config)
    fails("inspect", model, contains=[model, "Sequential"])


def test_nested_model_from_a_foreign_module_is_opaque(tmp_path, tripwires):
    config = config_of("k3_nested.keras")
    config["config"]["layers"][1]["module"] = EVIL_MODULE
    config["config"]["layers"][1]["registered_name"] = "Custom>Sequential"
    model = make_keras(tmp_path / "nested.keras", src="k3_nested.keras", config=config)
    opaque, _ = opaque_layers(model)
    assert opaque["inner_model"]["class_name"] == "Sequential"
    fails("run", model, contains=["inner_model"])


@pytest.mark.parametrize(
    "activation, message",
    [
        ({"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}, "activation"),
        ("os.system", "activation"),
        (f"{EVIL_MODULE}.Evil", "activation"),
        ({"module": "builtins", "class_name": "function", "config": "eval"}, "activation"),
    ],
)
def test_activations_naming_functions_refused(tmp_path, tripwires, activation, message):
    config = config_of(LSTM)
    config["config"]["layers"][1]["config"]["activation"] = activation
    model = make_keras(tmp_path / "act.keras", config=config)
    fails("inspect", model, contains=[model, "lstm", message])


def test_run_refusal_of_opaque_layer_names_the_file(tmp_path):
    config = config_of(LSTM)
    config["config"]["layers"].insert(2, keras3_lambda("evil_lambda", tmp_path / "PWNED"))
    model = make_keras(tmp_path / "lambda.keras", config=config)
    fails("run", model, contains=[model, "evil_lambda"])


def test_control_characters_in_names_refused(tmp_path):
    """Names from the file end up in the one error line and the terminal: no newlines, no escapes."""
    config = config_of(LSTM)
    config["config"]["layers"][1]["config"]["name"] = "lstm\nlstmctl: error: forged\x1b[2J"
    model = make_keras(tmp_path / "ctl.keras", config=config)
    line = fails("inspect", model, contains=[model])
    assert "\x1b" not in line
    config = config_of(LSTM)
    config["config"]["layers"].insert(2, {"class_name": "Evil\x1b]0;title\x07", "config": {"name": "evil"}})
    model = make_keras(tmp_path / "ctl2.keras", config=config)
    line = fails("inspect", model, contains=[model])
    assert "\x1b" not in line and "\x07" not in line


# ---------------------------------------------------------------------------------------------
# 4. HDF5 data that points outside the file


KERNEL = "model_weights/lstm/lstm/lstm_cell/kernel:0"


def _replace_with(f, path, make):
    shape, dtype = f[path].shape, f[path].dtype
    del f[path]
    make(f, path, shape, dtype)


def external_storage(secret):
    def make(f, path, shape, dtype):
        nbytes = int(np.prod(shape)) * 4
        f.create_dataset(path, shape=shape, dtype="<f4", external=[(str(secret), 0, nbytes)])

    return make


def external_link(secret_file, target):
    def make(f, path, shape, dtype):
        f[path] = h5py.ExternalLink(str(secret_file), target)

    return make


def soft_link(target):
    def make(f, path, shape, dtype):
        f[path] = h5py.SoftLink(target)

    return make


def virtual(secret_file, target):
    def make(f, path, shape, dtype):
        layout = h5py.VirtualLayout(shape=shape, dtype="<f4")
        layout[...] = h5py.VirtualSource(str(secret_file), target, shape=shape)
        f.create_virtual_dataset(path, layout, fillvalue=0)

    return make


@pytest.fixture
def secrets(tmp_path):
    raw = tmp_path / "secret.bin"
    raw.write_bytes(np.full(4096, SECRET_VALUE, np.float32).tobytes() + SECRET_TEXT.encode())
    h5 = secret_h5(tmp_path / "secret.h5", {"kernel": (4, 20), "model_weights/lstm/lstm/lstm_cell/kernel:0": (4, 20), "model_weights/lstm/lstm/lstm_cell/recurrent_kernel:0": (5, 20), "model_weights/lstm/lstm/lstm_cell/bias:0": (20,)})
    return {"raw": raw, "h5": h5}


OUTSIDE = ["external-storage", "external-link", "soft-link", "virtual"]


def _outside(kind, secrets):
    return {
        "external-storage": (external_storage(secrets["raw"]), "external storage"),
        "external-link": (external_link(secrets["h5"], "kernel"), "ExternalLink"),
        "soft-link": (soft_link("/model_weights/dense/dense/kernel:0"), "SoftLink"),
        "virtual": (virtual(secrets["h5"], "kernel"), "virtual dataset"),
    }[kind]


@pytest.mark.parametrize("kind", OUTSIDE)
def test_legacy_h5_dataset_outside_the_file(tmp_path, secrets, kind):
    make, word = _outside(kind, secrets)
    model = copy_h5(tmp_path / "model.h5", edit=lambda f: _replace_with(f, KERNEL, make))
    for line in every_command_fails(model, tmp_path, contains=[model, KERNEL]):
        assert word in line


def test_external_link_on_an_intermediate_group(tmp_path, secrets):
    def edit(f):
        del f["model_weights/lstm/lstm"]
        f["model_weights/lstm/lstm"] = h5py.ExternalLink(str(secrets["h5"]), "/model_weights/lstm/lstm")

    model = copy_h5(tmp_path / "model.h5", edit=edit)
    every_command_fails(model, tmp_path, contains=[model, "model_weights/lstm/lstm", "ExternalLink"])

    def edit_top(f):  # the whole model_weights group lives elsewhere
        del f["model_weights/lstm"]
        f["model_weights/lstm"] = h5py.ExternalLink(str(secrets["h5"]), "/model_weights/lstm")

    model = copy_h5(tmp_path / "model2.h5", edit=edit_top)
    every_command_fails(model, tmp_path, contains=[model, "model_weights/lstm", "ExternalLink"])


V3_KERNEL = "layers/lstm/cell/vars/0"


@pytest.mark.parametrize("kind", OUTSIDE)
def test_keras_zip_weights_outside_the_file(tmp_path, secrets, kind):
    make, word = _outside(kind, secrets)
    if kind == "soft-link":
        make = soft_link("/layers/dense/vars/0")
    model = edit_keras_weights(tmp_path / "model.keras", lambda f: _replace_with(f, V3_KERNEL, make))
    for line in every_command_fails(model, tmp_path, contains=[model, "model.weights.h5", V3_KERNEL]):
        assert word in line


def test_keras_zip_intermediate_group_link(tmp_path, secrets):
    def edit(f):
        del f["layers/lstm/cell"]
        f["layers/lstm/cell"] = h5py.ExternalLink(str(secrets["h5"]), "/model_weights/lstm/lstm")

    model = edit_keras_weights(tmp_path / "model.keras", edit)
    every_command_fails(model, tmp_path, contains=[model, "layers/lstm/cell", "ExternalLink"])


@pytest.mark.parametrize("kind", OUTSIDE)
def test_weights_only_files_outside_the_file(tmp_path, secrets, kind):
    make, _ = _outside(kind, secrets)
    if kind == "soft-link":
        make = soft_link("/layers/dense/vars/0")
    model = copy_h5(tmp_path / "w.weights.h5", "k3_lstm_dense.weights.h5", edit=lambda f: _replace_with(f, V3_KERNEL, make))
    fails("inspect", model, contains=[model, V3_KERNEL])
    out = tmp_path / "g.npz"
    fails("gates", model, "-o", out, contains=[model, V3_KERNEL], output=out)
    make, _ = _outside(kind, secrets)
    if kind == "soft-link":
        make = soft_link("/dense/dense/kernel:0")
    k2 = "lstm/lstm/lstm_cell/kernel:0"
    model = copy_h5(tmp_path / "w2.h5", "k2_lstm_dense_weights.h5", edit=lambda f: _replace_with(f, k2, make))
    fails("inspect", model, contains=[model, k2])


def test_weight_names_pointing_at_absent_or_odd_paths(tmp_path):
    for names in (["../../etc/passwd"], ["/model_weights/dense/dense/kernel:0", ".", ".."], ["lstm/lstm/lstm_cell/kernel:0//"]):
        def edit(f, names=names):
            f["model_weights/lstm"].attrs["weight_names"] = np.array(names, dtype=h5py.string_dtype())

        model = copy_h5(tmp_path / "odd.h5", edit=edit)
        fails("inspect", model, contains=[model])


def test_filters_outside_the_allow_list_refused(tmp_path):
    """An unknown filter id would make HDF5 search for and load a plugin library."""

    def edit(f):
        data = f[KERNEL][()]
        del f[KERNEL]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk(data.shape)
        dcpl.set_filter(31999, h5py.h5z.FLAG_OPTIONAL, ())
        space = h5py.h5s.create_simple(data.shape)
        h5py.h5d.create(f.id, KERNEL.encode(), h5py.h5t.IEEE_F32LE, space, dcpl=dcpl, lcpl=_lcpl())

    model = copy_h5(tmp_path / "filter.h5", edit=edit)
    fails("inspect", model, contains=[model, KERNEL, "filter"])


def _lcpl():
    lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
    lcpl.set_create_intermediate_group(True)
    return lcpl


# ---------------------------------------------------------------------------------------------
# 5. pickles and object arrays


def test_pickled_object_npy_never_unpickled(tmp_path, tripwires):
    p = tmp_path / "x.npy"
    np.save(p, np.array([_Evil(tripwires["sentinel"])], dtype=object), allow_pickle=True)
    out = tmp_path / "out.npz"
    fails("run", sample(LSTM), "--input", p, "--format", "npz", "-o", out, contains=[p, "object"], output=out)
    fails("run", sample(LSTM), "--input", f"input_layer={p}", contains=[p])
    fails("run", sample(LSTM), "--input", "-", input=p.read_bytes(), contains=["stdin"])
    fails("run", sample(LSTM), "--input", X, "--layer", "lstm", "--initial-state", p, contains=[p])
    with pytest.raises(lstmctl.LstmctlError):
        lstmctl.arrays.inputs.load_arrays(str(p))


def test_pickle_in_npz_member_and_raw_pickle(tmp_path, tripwires):
    p = tmp_path / "x.npz"
    np.savez(p, input_layer=np.array([_Evil(tripwires["sentinel"])], dtype=object))
    fails("run", sample(LSTM), "--input", p, contains=[p, "input_layer.npy"])
    raw = tmp_path / "raw.npy"
    raw.write_bytes(pickle.dumps(_Evil(tripwires["sentinel"])))
    fails("run", sample(LSTM), "--input", raw, contains=[raw])
    model = tmp_path / "model.keras"
    model.write_bytes(pickle.dumps(_Evil(tripwires["sentinel"])))
    fails("inspect", model, contains=[model, "not a Keras model file"])


# ---------------------------------------------------------------------------------------------
# 6-9. resource exhaustion: refused before allocating (subprocess under RLIMIT_AS)


def _sparse(shape, **kw):
    def make(f, path, _shape, dtype):
        f.create_dataset(path, shape=shape, dtype="<f4", **kw)

    return make


@pytest.mark.parametrize(
    "make, message",
    [
        (_sparse((1 << 34,), chunks=(1 << 18,), compression="gzip"), "over the cap"),
        (_sparse((1 << 28,), chunks=(1 << 18,), compression="gzip"), "stores only"),
        (_sparse((1 << 28,), fillvalue=1.5), "stores only"),
        (_sparse((1 << 16, 1 << 12), chunks=(1 << 10, 1 << 8), compression="lzf", fillvalue=3.0), "stores only"),
    ],
    ids=["64GiB-chunked", "1GiB-chunked", "1GiB-fillvalue-contiguous", "1GiB-lzf-2d"],
)
def test_hdf5_huge_declared_shape(tmp_path, make, message):
    model = copy_h5(tmp_path / "huge.h5", edit=lambda f: _replace_with(f, KERNEL, make))
    assert model.stat().st_size < 1 << 20
    refused_under_limit(["inspect", model], contains=[model, KERNEL, message])
    out = tmp_path / "out.npz"
    refused_under_limit(["run", model, "--input", X, "--format", "npz", "-o", out], contains=[KERNEL], output=out)


def test_hdf5_huge_declared_shape_in_keras_zip(tmp_path):
    model = edit_keras_weights(tmp_path / "huge.keras", lambda f: _replace_with(f, V3_KERNEL, _sparse((1 << 28,), chunks=(1 << 16,), compression="gzip")))
    refused_under_limit(["inspect", model], contains=[model, V3_KERNEL])


def test_hdf5_many_sparse_datasets_just_under_the_limit(tmp_path):
    """80 fill-value datasets of 15 MiB each: no single one is suspicious, together 1.2 GiB."""
    names = [f"lstm/pad{i}" for i in range(80)]

    def edit(f):
        g = f["model_weights/lstm"]
        for n in names:
            g.create_dataset(n, shape=(15 << 18,), dtype="<f4", fillvalue=1.0)
        g.attrs["weight_names"] = np.array(names, dtype=h5py.string_dtype())

    model = copy_h5(tmp_path / "many.h5", edit=edit)
    assert model.stat().st_size < 1 << 20
    refused_under_limit(["inspect", model], contains=[model, "lstm/pad", "stores only"])


def test_hdf5_one_dataset_referenced_many_times(tmp_path):
    """One real 8 MiB dataset named 200 times in weight_names, and by 200 hard links: 1.6 GiB if each were read."""
    def edit(f):
        g = f["model_weights/lstm"]
        g.create_dataset("big", data=np.ones(2 << 20, np.float32))
        for i in range(200):
            g[f"alias{i}"] = g["big"]
        g.attrs["weight_names"] = np.array(["big"] * 200, dtype=h5py.string_dtype())

    model = copy_h5(tmp_path / "alias.h5", edit=edit)
    refused_under_limit(["inspect", model], contains=[model, "lstm", "found 200"])

    def edit_links(f):
        f["model_weights/lstm"].attrs["weight_names"] = np.array([f"alias{i}" for i in range(200)], dtype=h5py.string_dtype())

    with h5py.File(model, "r+") as f:
        edit_links(f)
    refused_under_limit(["inspect", model], contains=[model, "lstm", "found 200"])


def test_hdf5_huge_compressed_chunk_for_a_tiny_dataset(tmp_path):
    """A 10-element dataset whose one chunk inflates to 1 GiB when read."""
    bomb, _ = zero_deflate(1024)
    zbomb = b"\x78\x9c" + bomb  # zlib wrapper (checksum not needed: the read must not happen)

    def make(f, path, shape, dtype):
        ds = f.create_dataset(path, shape=(4, 20), maxshape=(None, None), chunks=(1 << 14, 1 << 14), dtype="<f4", compression="gzip")
        ds.id.write_direct_chunk((0, 0), zbomb)

    model = copy_h5(tmp_path / "chunk.h5", edit=lambda f: _replace_with(f, KERNEL, make))
    refused_under_limit(["inspect", model], contains=[model, KERNEL, "has chunks of"])


def test_npy_declaring_more_than_the_file_holds(tmp_path):
    p = tmp_path / "x.npy"
    p.write_bytes(npy_bytes(npy_header(shape=(1 << 20, 1 << 12, 4)), b"\0" * 64))
    out = tmp_path / "out.npz"
    refused_under_limit(["run", sample(LSTM), "--input", p, "--format", "npz", "-o", out], contains=[p, "declares"], output=out)
    proc = limited(["run", sample(LSTM), "--input", "-"], stdin=p)
    assert proc.returncode == 3 and b"stdin" in proc.stderr and b"declares" in proc.stderr, proc.stderr


def test_npz_member_declaring_more_than_it_holds(tmp_path):
    body = npy_bytes(npy_header(shape=(1 << 16, 1 << 12, 4)), b"\0" * 64)
    p = tmp_path / "x.npz"
    p.write_bytes(raw_zip([stored("input_layer.npy", body)]))
    refused_under_limit(["run", sample(LSTM), "--input", p], contains=[p, "input_layer.npy", "declares"])
    # the same with forged zip sizes: the directory claims 4 GiB, the member really holds 200 bytes
    forged = dict(stored("input_layer.npy", body), size=(1 << 32) - 1)
    p.write_bytes(raw_zip([forged]))
    refused_under_limit(["run", sample(LSTM), "--input", p], contains=[p, "input_layer.npy"])


def test_npz_zip_bomb(tmp_path):
    bomb, _ = zero_deflate(1536)
    header = npy_bytes(npy_header(shape=(1 << 26, 6, 1)))  # 1.5 GiB of float32 zeros after it
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)
    # CRC left 0: it is checked only at the end of the member, which a refused read never reaches
    member = {"name": "input_layer.npy", "data": head + bomb, "method": 8, "crc": 0, "size": len(header) + (1536 << 20)}
    p = tmp_path / "bomb.npz"
    p.write_bytes(raw_zip([member]))
    assert p.stat().st_size < 4 << 20
    refused_under_limit(["run", sample(LSTM), "--input", p], contains=[p, "input_layer.npy", "zip bomb"])
    # the directory understates the size: reading stops at the declared size
    member["size"] = 1 << 20
    p.write_bytes(raw_zip([member]))
    refused_under_limit(["run", sample(LSTM), "--input", p], contains=[p, "input_layer.npy", "declares"])


@pytest.mark.parametrize("member", ["model.weights.h5", "config.json", "metadata.json"])
def test_keras_zip_bomb_members(tmp_path, member):
    bomb, crc = zero_deflate(1536)
    members = [m for m in sample_members() if m["name"] != member]
    members.append({"name": member, "data": bomb, "method": 8, "crc": crc, "size": 1536 << 20})
    p = tmp_path / "bomb.keras"
    p.write_bytes(raw_zip(members))
    refused_under_limit(["inspect", p], contains=[p, member])


@pytest.mark.parametrize("declared", [100, 3000, (1 << 32) - 1])
def test_keras_zip_forged_directory_sizes(tmp_path, declared):
    """The central directory lies about the size of a member that really inflates to 1.5 GiB."""
    bomb, crc = zero_deflate(1536)
    members = [m for m in sample_members() if m["name"] != "model.weights.h5"]
    members.append({"name": "model.weights.h5", "data": bomb, "method": 8, "crc": crc, "size": declared})
    p = tmp_path / "forged.keras"
    p.write_bytes(raw_zip(members))
    refused_under_limit(["inspect", p], contains=[p, "model.weights.h5"])


@pytest.mark.parametrize("csize", [0, 1, 1 << 31, (1 << 32) - 1])
@pytest.mark.parametrize("method", [0, 8])
def test_keras_zip_forged_compressed_size(tmp_path, csize, method):
    """A lying compressed size: the member reads correctly or the file is refused; never more."""
    members = sample_members()
    for m in members:
        if method == 8:
            comp = zlib.compressobj(9, zlib.DEFLATED, -15)
            m["data"] = comp.compress(m["data"]) + comp.flush()
            m["method"] = 8
        if m["name"] == "config.json":
            m["csize"] = csize
    p = tmp_path / "forged.keras"
    p.write_bytes(raw_zip(members))
    result = cli("inspect", p)
    if result.exit_code != 0:
        one_error_line(result, contains=[p])


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd", "layers/../../x", "..\\..\\x", "C:\\windows\\x", "./../x"])
def test_keras_zip_member_names_escaping(tmp_path, name):
    p = make_keras(tmp_path / "names.keras", extra=[(name, b"x")])
    line = fails("inspect", p, contains=[p, "escapes"])
    assert name.replace("\\", "\\\\") in line or name in line


def test_deeply_nested_json_config(tmp_path):
    deep = b'{"class_name": "Sequential", "config": {"layers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    p = make_keras(tmp_path / "deep.keras", config_bytes=deep)
    refused_under_limit(["inspect", p], contains=[p, "config.json", "nested"])
    legacy = copy_h5(tmp_path / "deep.h5", edit=lambda f: f.attrs.__setitem__("model_config", deep.decode()))
    refused_under_limit(["inspect", legacy], contains=[legacy, "model_config", "nested"])
    x = tmp_path / "x.json"
    x.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    refused_under_limit(["run", sample(LSTM), "--input", x], contains=[x, "nested"])


@pytest.mark.parametrize(
    "text",
    [
        '{"class_name": "Sequential", "config": {"name": "' + '\\"' * 300_000,  # unterminated string of escaped quotes
        '{"a": "' + "[" * 300_000,
        '{"a": ' + '"[",' * 300_000 + "}",
        "[" + "[]," * 1_200_000 + "[]]",  # 1.2 M arrays: a lot of objects from 3.6 MB
    ],
    ids=["escaped-quotes", "brackets-in-unterminated-string", "many-strings", "many-arrays"],
)
def test_json_config_scan_is_linear(tmp_path, text):
    """The pre-parse scan of a config must not backtrack: each of these is refused within seconds."""
    import time

    p = make_keras(tmp_path / "slow.keras", config_bytes=text.encode())
    start = time.monotonic()
    fails("inspect", p, contains=[p, "config.json"])
    assert time.monotonic() - start < 10


def test_huge_json_config(tmp_path):
    huge = b'{"class_name": "Sequential", "config": {"layers": [], "pad": "' + b"a" * (65 << 20) + b'"}}'
    p = make_keras(tmp_path / "huge.keras", config_bytes=huge)
    refused_under_limit(["inspect", p], contains=[p, "config.json"])
    wide = b"[" + b"0," * (20 << 20) + b"0]"  # 40 MiB, 20 M list items
    p = make_keras(tmp_path / "wide.keras", config_bytes=b'{"class_name": "Sequential", "config": {"layers": ' + wide + b"}}")
    refused_under_limit(["inspect", p], contains=[p])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["config"]["layers"][0]["config"].__setitem__("batch_shape", [None, 1 << 40, 4]), "input"),
        (lambda c: c["config"]["layers"][0]["config"].__setitem__("batch_shape", [None, 1 << 22, 1 << 22]), "input"),
        (lambda c: c["config"]["layers"][0]["config"].__setitem__("batch_shape", [None, 10 ** 30, 4]), "input"),
    ],
    ids=["time-2^40", "product-2^44", "10^30"],
)
def test_config_declaring_huge_input(tmp_path, edit, message):
    config = config_of(LSTM)
    edit(config)
    p = make_keras(tmp_path / "big.keras", config=config)
    refused_under_limit(["inspect", p], contains=[p, message])
    refused_under_limit(["run", p], contains=[p, message])


def test_config_repeat_vector_huge(tmp_path):
    config = config_of("k3_misc.keras")
    (rv,) = [layer for layer in config["config"]["layers"] if layer["class_name"] == "RepeatVector"]
    rv["config"]["n"] = 1 << 40
    p = make_keras(tmp_path / "rv.keras", src="k3_misc.keras", config=config)
    refused_under_limit(["inspect", p], contains=[p, "repeat_vector"])


def test_npy_header_over_numpys_limit(tmp_path):
    p = tmp_path / "x.npy"
    header = npy_header().rstrip("\n") + " " * 20_000 + "\n"
    p.write_bytes(npy_bytes(header, np.zeros((3, 6, 4), np.float32).tobytes(), version=2))
    fails("run", sample(LSTM), "--input", p, contains=[p, ".npy header"])
    p.write_bytes(npy_bytes(npy_header().rstrip("\n") + " " * 60_000 + "\n", np.zeros((3, 6, 4), np.float32).tobytes(), version=1))
    fails("run", sample(LSTM), "--input", p, contains=[p, ".npy header"])


# ---------------------------------------------------------------------------------------------
# 10. malformed files


@pytest.mark.parametrize("name", [LSTM, LEGACY, "k3_lstm_dense.weights.h5", "k2_lstm_dense_weights.h5", "k3_nested.keras"])
@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.6, 0.9, 0.99])
def test_truncated_models(tmp_path, name, fraction):
    data = Path(sample(name)).read_bytes()
    p = tmp_path / name
    p.write_bytes(data[: max(int(len(data) * fraction), 9)])
    out = tmp_path / "out.npz"
    fails("run", p, "--format", "npz", "-o", out, contains=[p], output=out)


def test_truncated_weights_inside_a_valid_zip(tmp_path):
    with zipfile.ZipFile(sample(LSTM)) as zf:
        blob = zf.read("model.weights.h5")
    for cut in (8, 100, len(blob) // 2, len(blob) - 1):
        p = make_keras(tmp_path / "cut.keras", replace={"model.weights.h5": blob[:cut]})
        fails("inspect", p, contains=[p, "model.weights.h5"])


@pytest.mark.parametrize(
    "make, name, message",
    [
        (lambda: Path(X).read_bytes(), "model.keras", "NumPy array"),
        (lambda: Path(sample(LSTM)).read_bytes(), "model.npy", "Sequential"),  # format by magic: it works
        (lambda: b"PK\x05\x06" + bytes(18), "model.keras", "not a Keras model"),
        (lambda: b"\x89HDF\r\n\x1a\n" + bytes(100), "model.h5", "HDF5"),
        (lambda: b"PK\x03\x04" + bytes(100), "model.keras", "zip"),
        (lambda: b"\x93NUMPY", "model.h5", "NumPy"),
        (lambda: b"{}", "model.json", "not a Keras model"),
    ],
)
def test_extension_lies_and_junk(tmp_path, make, name, message):
    p = tmp_path / name
    p.write_bytes(make())
    result = cli("inspect", p)
    if message == "Sequential":
        assert result.exit_code == 0 and message in result.output
    else:
        one_error_line(result, contains=[p, message])


def test_inputs_whose_extension_lies(tmp_path):
    p = tmp_path / "x.csv"
    shutil.copy(X, p)  # an .npy named .csv: read by magic bytes
    assert cli("run", sample(LSTM), "--input", p, "--format", "json").exit_code == 0
    for name, data, message in [
        ("x.npy", Path(sample(LEGACY)).read_bytes(), "bad magic"),
        ("x.npz", b"hello", "bad magic"),
        ("x.npy", Path(sample(LSTM)).read_bytes(), "not an .npy array"),
        ("x.txt", b"1,2,3", "unknown input format"),
        ("x.json", b"\xff\xfe[1]", "UTF-8"),
        ("x.csv", b"\xff\xfe\x00\x00", "CSV"),
    ]:
        q = tmp_path / name
        q.write_bytes(data)
        fails("run", sample(LSTM), "--input", q, contains=[q, message])


def test_empty_files_and_directories(tmp_path):
    for name in ("m.keras", "m.h5", "m.weights.h5"):
        p = tmp_path / name
        p.write_bytes(b"")
        fails("inspect", p, contains=[p, "empty"])
    d = tmp_path / "dir.keras"
    d.mkdir()
    fails("inspect", d, contains=[d, "directory"])
    for name in ("x.npy", "x.npz", "x.csv", "x.json"):
        p = tmp_path / name
        p.write_bytes(b"")
        fails("run", sample(LSTM), "--input", p, contains=[p, "empty"])
    fails("run", sample(LSTM), "--input", d, contains=[d, "directory"])
    fails("run", sample(LSTM), "--input", "-", input=b"", contains=["stdin", "empty"])


def test_input_from_an_endless_device_is_bounded(tmp_path):
    """A character device that never ends: read in bounded chunks, refused at the cap."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    proc = limited(["run", sample(LSTM), "--input", "/dev/zero"], timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 3 and "/dev/zero" in err and "MemoryError" not in err, err


# ---------------------------------------------------------------------------------------------
# 11. .npy headers that make numpy raise something other than ValueError


NPY_HEADERS = {
    "leading-indent": "   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 6, 4), }\n",
    "token-error": "{'descr': '<f4', 'fortran_order': False, 'shape': (3,\n",
    "unterminated-string": "{'descr': '<f4\n",
    "syntax": "{'descr': '<f4' 'fortran_order': False 'shape' (3, 6, 4)}\n",
    "deep-parentheses": "(" * 3000 + ")" * 3000 + "\n",
    "not-a-dict": "[1, 2, 3]\n",
    "missing-keys": "{'descr': '<f4'}\n",
    "extra-keys": "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 6, 4), 'x': 1}\n",
    "call": "{'descr': __import__('os').system('touch PWNED'), 'fortran_order': False, 'shape': (1,)}\n",
    "bad-descr": "{'descr': 'zz9', 'fortran_order': False, 'shape': (3, 6, 4), }\n",
    "descr-int": "{'descr': 5, 'fortran_order': False, 'shape': (3, 6, 4), }\n",
    "fortran-not-bool": "{'descr': '<f4', 'fortran_order': 'yes', 'shape': (3, 6, 4), }\n",
    "shape-not-tuple": "{'descr': '<f4', 'fortran_order': False, 'shape': [3, 6, 4], }\n",
    "negative-dims": "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, -72), }\n",
    "negative-dim": "{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 6, 4), }\n",
    "bool-dims": "{'descr': '<f4', 'fortran_order': False, 'shape': (True, 6, 4), }\n",
    "huge-dim-zero-size": "{'descr': '<f4', 'fortran_order': False, 'shape': (1180591620717411303424, 0), }\n",
    "huge-dims-overflow": "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }\n",
    "nul-bytes": "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 6, 4), }\x00\x00\n",
    "non-ascii": "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 6, 4), '\xe9': 1}\n",
}


ACCEPTED_BY_NUMPY = {"leading-indent"}  # numpy strips the indent: a valid file, and it runs


@pytest.mark.parametrize("header", list(NPY_HEADERS.values()), ids=list(NPY_HEADERS))
def test_npy_headers_numpy_chokes_on(tmp_path, header):
    data = np.zeros((3, 6, 4), np.float32).tobytes()
    p = tmp_path / "x.npy"
    name = [k for k, v in NPY_HEADERS.items() if v == header][0]
    for version in (1, 2, 3):
        p.write_bytes(npy_bytes(header, data, version))
        if name in ACCEPTED_BY_NUMPY:
            assert cli("run", sample(LSTM), "--input", p).exit_code == 0
            continue
        fails("run", sample(LSTM), "--input", p, contains=[p])
        fails("run", sample(LSTM), "--input", "-", input=p.read_bytes(), contains=["stdin"])
        assert not (tmp_path / "PWNED").exists()
        with pytest.raises(lstmctl.LstmctlError):
            lstmctl.arrays.inputs.load_arrays(str(p))


@pytest.mark.parametrize("cut", [1, 6, 7, 8, 9, 10, 11, 50, 127, 128, 200])
def test_npy_truncated_anywhere(tmp_path, cut):
    data = Path(X).read_bytes()
    p = tmp_path / "x.npy"
    p.write_bytes(data[:cut])
    fails("run", sample(LSTM), "--input", p, contains=[p])


def test_npy_unknown_versions(tmp_path):
    p = tmp_path / "x.npy"
    for major, minor in [(0, 0), (4, 0), (1, 1), (255, 255)]:
        p.write_bytes(b"\x93NUMPY" + bytes([major, minor]) + b"\x10\x00" + b"{}".ljust(16) + b"\0" * 16)
        fails("run", sample(LSTM), "--input", p, contains=[p, ".npy"])


# ---------------------------------------------------------------------------------------------
# 12. dtypes and shapes of inputs


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((3, 6), dtype=[("a", "<f4"), ("b", "<f4")]), "dtype"),
        (np.zeros((3, 6, 4), dtype="U3"), "dtype"),
        (np.zeros((3, 6, 4), dtype="S3"), "dtype"),
        (np.zeros((3, 6, 4), dtype=np.complex64), "dtype"),
        (np.zeros((3, 6, 4), dtype="datetime64[s]"), "dtype"),
        (np.zeros((3, 6, 4), dtype="timedelta64[s]"), "dtype"),
        (np.zeros((3, 6, 4), dtype=bool), "boolean"),
        (np.zeros((3, 6, 4), dtype=np.longdouble), "dtype"),
        (np.zeros((3, 6, 4), dtype="V4"), "dtype"),
        (np.float32(1.0), "rank"),
        (np.zeros((0, 6, 4), np.float32), "empty"),
        (np.zeros((3, 0, 4), np.float32), "empty"),
        (np.zeros((3, 6, 4, 1), np.float32), "rank"),
        (np.zeros((6, 4), np.float32), "rank"),
        (np.zeros((3, 6, 5), np.float32), "shape"),
    ],
    ids=["structured", "unicode", "bytes", "complex", "datetime", "timedelta", "bool", "longdouble", "void", "0-d", "empty-batch", "empty-time", "rank-4", "rank-2", "features"],
)
def test_input_dtypes_and_shapes(tmp_path, array, message):
    p = tmp_path / "x.npy"
    np.save(p, array, allow_pickle=False)
    out = tmp_path / "out.npz"
    fails("run", sample(LSTM), "--input", p, "--format", "npz", "-o", out, contains=[message], output=out)


@pytest.mark.parametrize("dtype", [">f4", ">f8", "<f8", ">f2"])
def test_big_endian_and_other_float_inputs_work(tmp_path, dtype):
    x = np.load(X)
    p = tmp_path / "x.npy"
    np.save(p, x.astype(dtype))
    assert np.load(p).dtype.str == np.dtype(dtype).str
    ref = cli("run", sample(LSTM), "--input", X, "--format", "npz", "--dtype", "float64")
    got = cli("run", sample(LSTM), "--input", p, "--format", "npz", "--dtype", "float64")
    assert ref.exit_code == 0 and got.exit_code == 0, got.output
    with np.load(io.BytesIO(ref.stdout_bytes)) as a, np.load(io.BytesIO(got.stdout_bytes)) as b:
        for key in a.files:
            np.testing.assert_allclose(b[key], a[key], atol=1e-3 if dtype == ">f2" else 0, rtol=0)
    if dtype == ">f4":
        model = lstmctl.load(sample(LSTM))
        little, big = model.run(x), model.run(x.astype(">f4"))
        for key in little:
            np.testing.assert_array_equal(little[key], big[key])
        npz = tmp_path / "x.npz"
        np.savez(npz, input_layer=x.astype(">f4"))
        assert cli("run", sample(LSTM), "--input", npz).exit_code == 0


def test_big_endian_weights_give_the_same_numbers(tmp_path):
    def edit(f):
        for path in [KERNEL, "model_weights/lstm/lstm/lstm_cell/recurrent_kernel:0"]:
            data = f[path][()]
            del f[path]
            f.create_dataset(path, data=data.astype(">f4"))

    model = copy_h5(tmp_path / "be.h5", edit=edit)
    x = np.load(X)
    a = lstmctl.load(sample(LEGACY)).run(x)
    b = lstmctl.load(model).run(x)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize(
    "text, message",
    [
        ("[true, 1]", "boolean"),
        ("[[[1, 2, 3, 4]], [[1, 2, 3]]]", "ragged"),
        ("[[[1, 2, 3, [4]]]]", "ragged"),
        ("[1e999]", "overflows"),
        ("[NaN]", "NaN"),
        ("[-Infinity]", "Infinity"),
        ('[1, "2"]', "numbers"),
        ("[null]", "numbers"),
        ('{"a": 1, "a": 2}', "duplicate"),
        ("[1" + "0" * 400 + "]", "number"),
        ("[1.5, 1" + "0" * 400 + "]", "number"),
        ("5", "rank"),
        ("[]", "empty"),
        ("[[[]]]", "empty"),
    ],
)
def test_json_inputs(tmp_path, text, message):
    p = tmp_path / "x.json"
    p.write_text(text)
    fails("run", sample(LSTM), "--input", p, contains=[message])
    # stdin is sniffed: JSON when it opens with [ or {, else CSV (a bare 5 is a one-cell CSV sample)
    fails("run", sample(LSTM), "--input", "-", input=text.encode(), contains=[message if text.lstrip()[:1] in "[{" else "(1, 1, 1)"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,2\n3\n", "different lengths"),
        ("a,b,c,d\n", "no data rows"),
        ("1,2,3,4\n1,2,3,x\n", "not a number"),
        ("1,2,3,4\x00\n", "CSV"),
        ("1," + "9" * 200_000 + "\n", "CSV"),
        ("100000000000000000000,1,2,3\n" * 6, None),  # too large for an exact int: read as floats
        ("nan,1,2,3\n" * 6, "non-finite"),
        ("1e999,1,2,3\n" * 6, "non-finite"),
        ('"1\n' * 3, "CSV"),
    ],
)
def test_csv_inputs(tmp_path, text, message):
    p = tmp_path / "x.csv"
    p.write_text(text)
    if message is None:
        result = cli("run", sample(LSTM), "--input", p)
        assert result.exit_code == 0, result.output
    else:  # --strict: non-finite values are otherwise a warning, not a refusal
        fails("run", sample(LSTM), "--input", p, "--strict", contains=[message])


def test_csv_input_works(tmp_path):
    x = np.load(X)[:1]
    p = tmp_path / "x.csv"
    np.savetxt(p, x[0], delimiter=",", header="a,b,c,d", comments="")
    result = cli("run", sample(LSTM), "--input", p, "--format", "npz")
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------------------------------------
# 13. JSON traps in configs


UNITS_TRAPS = [
    ('"units": 5', '"units": true', "units"),
    ('"units": 5', '"units": false', "units"),
    ('"units": 5', '"units": NaN', "NaN"),
    ('"units": 5', '"units": Infinity', "Infinity"),
    ('"units": 5', '"units": -Infinity', "Infinity"),
    ('"units": 5', '"units": 1e999', "overflows"),
    ('"units": 5', '"units": -5', "units"),
    ('"units": 5', '"units": 0', "units"),
    ('"units": 5', '"units": 5.0', "units"),
    ('"units": 5', '"units": 5.5', "units"),
    ('"units": 5', '"units": "5"', "units"),
    ('"units": 5', '"units": null', "units"),
    ('"units": 5', '"units": [5]', "units"),
    ('"units": 5', '"units": 5, "units": 5', "duplicate"),
    ('"units": 5', '"units": 18446744073709551621', "units"),
    ('"return_sequences": false', '"return_sequences": 0', "return_sequences"),
    ('"use_bias": true', '"use_bias": 1', "use_bias"),
    ('"use_bias": true', '"use_bias": "false"', "use_bias"),
    ('"go_backwards": false', '"go_backwards": null', "go_backwards"),
    ('"batch_shape": [null, 6, 4]', '"batch_shape": [null, 6.0, 4]', "input"),
    ('"batch_shape": [null, 6, 4]', '"batch_shape": [null, true, 4]', "input"),
    ('"batch_shape": [null, 6, 4]', '"batch_shape": [null, 0, 4]', "input"),
    ('"batch_shape": [null, 6, 4]', '"batch_shape": [null, -6, 4]', "input"),
    ('"batch_shape": [null, 6, 4]', '"batch_shape": [null, NaN, 4]', "NaN"),
    ('"batch_shape": [null, 6, 4]', '"batch_shape": "6,4"', "input"),
    ('"batch_shape": [null, 6, 4]', '"batch_shape": [null, 6, 4], "batch_shape": [null, 6, 4]', "duplicate"),
    ('"name": "lstm"', '"name": 7', "name"),
    ('"name": "lstm"', '"name": ""', "name"),
    ('"class_name": "LSTM"', '"class_name": null', "class_name"),
]


def _keras_config_text():
    with zipfile.ZipFile(sample(LSTM)) as zf:
        return zf.read("config.json").decode()


@pytest.mark.parametrize("old, new, message", UNITS_TRAPS, ids=[t[1][:40] for t in UNITS_TRAPS])
def test_config_json_traps_keras(tmp_path, old, new, message):
    text = json.dumps(config_of(LSTM))  # canonical spacing, so the replacements apply
    assert old in text
    p = make_keras(tmp_path / "trap.keras", config_bytes=text.replace(old, new, 1).encode())
    out = tmp_path / "out.npz"
    fails("inspect", p, contains=[p, message])
    fails("run", p, "--input", X, "--format", "npz", "-o", out, contains=[p, message], output=out)


@pytest.mark.parametrize("old, new, message", UNITS_TRAPS[:15], ids=[t[1][:40] for t in UNITS_TRAPS[:15]])
def test_config_json_traps_legacy(tmp_path, old, new, message):
    def edit(f):
        text = json.dumps(json.loads(f.attrs["model_config"]))
        assert old in text
        f.attrs["model_config"] = text.replace(old, new, 1)

    p = copy_h5(tmp_path / "trap.h5", edit=edit)
    fails("inspect", p, contains=[p, message])


@pytest.mark.parametrize(
    "metadata, ok",
    [
        (b'{"keras_version": "3.15.1", "keras_version": "2.0"}', False),
        (b'{"keras_version": NaN}', False),
        (b"[1, 2]", True),
        (b'{"keras_version": 3}', True),
        (b"\xff", False),
    ],
)
def test_metadata_json_traps(tmp_path, metadata, ok):
    p = make_keras(tmp_path / "meta.keras", replace={"metadata.json": metadata})
    result = cli("inspect", p)
    if ok:
        assert result.exit_code == 0, result.output
    else:
        one_error_line(result, contains=[p, "metadata.json"])


@pytest.mark.parametrize(
    "src, layer, key, value, message",
    [
        ("k3_misc.keras", "RepeatVector", "n", True, "n"),
        ("k3_misc.keras", "RepeatVector", "n", 0, "n"),
        ("k3_misc.keras", "RepeatVector", "n", 2.0, "n"),
        ("k3_misc.keras", "Concatenate", "axis", True, "axis"),
        ("k3_misc.keras", "Concatenate", "axis", 1.5, "axis"),
        ("k3_misc.keras", "Concatenate", "axis", "x", "axis"),
        ("k3_misc.keras", "Reshape", "target_shape", [True, 2], "target_shape"),
        ("k3_misc.keras", "Reshape", "target_shape", "2,3", "target_shape"),
        ("k3_embed.keras", "Embedding", "input_dim", "x", "input_dim"),
        ("k3_embed.keras", "Embedding", "input_dim", -1, "input_dim"),
        ("k3_embed.keras", "Embedding", "input_dim", 10 ** 20, "input_dim"),
        ("k3_embed.keras", "Embedding", "mask_zero", "yes", "mask_zero"),
        ("k3_masked.keras", "Masking", "mask_value", "x", "mask_value"),
        ("k3_masked.keras", "Masking", "mask_value", True, "mask_value"),
        ("k3_masked.keras", "Masking", "mask_value", [1, 2], "mask_value"),
        ("k3_bidir.keras", "Bidirectional", "merge_mode", "xor", "merge_mode"),
        ("k3_lstm_dense.keras", "LSTM", "dtype", {"module": "keras", "class_name": "DTypePolicy", "config": [1]}, "dtype"),
        ("k3_lstm_dense.keras", "LSTM", "dtype", "complex64", "dtype"),
        ("k3_lstm_dense.keras", "LSTM", "dtype", {"config": {"name": 5}}, "dtype"),
        ("k3_lstm_dense.keras", "Dense", "activation", "no_such", "activation"),
        ("k3_lstm_dense.keras", "Dense", "activation", 5, "activation"),
        ("k3_lstm_dense.keras", "LSTM", "recurrent_activation", "os.system", "activation"),
        ("k3_lstm_dense.keras", "LSTM", "activation", ["tanh"], "activation"),
    ],
)
def test_layer_config_traps(tmp_path, src, layer, key, value, message):
    config = config_of(src)
    entries = [e for e in config["config"]["layers"] if e["class_name"] == layer]
    assert entries, layer
    entries[0]["config"][key] = value
    p = make_keras(tmp_path / "trap.keras", src=src, config=config)
    fails("inspect", p, contains=[p, message])
    fails("run", p, contains=[message])


def test_backward_layer_that_is_not_recurrent(tmp_path):
    config = config_of("k3_bidir.keras")
    (bidir, *_) = [e for e in config["config"]["layers"] if e["class_name"] == "Bidirectional"]
    bidir["config"]["backward_layer"] = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 3}}
    p = make_keras(tmp_path / "bw.keras", src="k3_bidir.keras", config=config)
    fails("inspect", p, contains=[p, "Dense"])


@pytest.mark.parametrize(
    "attr, value",
    [
        ("layer_names", 5),
        ("layer_names", "lstm"),
        ("layer_names", np.array([1.5, 2.5])),
        ("model_config", np.array(["{}", "{}"], dtype=h5py.string_dtype())),
        ("model_config", 7),
        ("model_config", np.frombuffer(b'{"class_name": "Sequential"}', np.uint8)),
        ("keras_version", np.arange(3)),
        ("model_config", "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [], \"name\": \"a\", \"name\": \"b\"}}"),
    ],
)
def test_hdf5_attribute_traps(tmp_path, attr, value):
    def edit(f):
        target = f["model_weights"] if attr == "layer_names" else f
        target.attrs[attr] = value

    p = copy_h5(tmp_path / "attr.h5", edit=edit)
    fails("inspect", p, contains=[p])


# ---------------------------------------------------------------------------------------------
# 14. weights that contradict the config


def _set_var(path, value):
    def edit(f):
        if path in f:
            del f[path]
        f.create_dataset(path, data=value)

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set_var("layers/lstm/cell/vars/0", np.zeros((4, 24), np.float32)), "kernel"),
        (_set_var("layers/lstm/cell/vars/0", np.zeros((20, 4), np.float32)), "kernel"),
        (_set_var("layers/lstm/cell/vars/0", np.zeros((4, 20, 1), np.float32)), "kernel"),
        (_set_var("layers/lstm/cell/vars/1", np.zeros((20, 5), np.float32)), "recurrent_kernel"),
        (_set_var("layers/lstm/cell/vars/2", np.zeros((21,), np.float32)), "bias"),
        (_set_var("layers/lstm/cell/vars/2", np.zeros((40,), np.float32)), "cuDNN"),
        (_set_var("layers/lstm/cell/vars/2", np.float32(1)), "bias"),
        (_set_var("layers/lstm/cell/vars/0", np.zeros((4, 20), "S4")), "dtype"),
        (_set_var("layers/lstm/cell/vars/0", np.zeros((4, 20), np.complex64)), "dtype"),
        (_set_var("layers/lstm/cell/vars/0", np.zeros((4, 20), [("a", "<f4")])), "dtype"),
        (_set_var("layers/lstm/cell/vars/0", np.zeros((4, 20), bool)), "dtype"),
        (_set_var("layers/dense/vars/0", np.zeros((5, 4), np.float32)), "Dense"),
        (_set_var("layers/dense/vars/1", np.zeros((5, 3), np.float32)), "Dense"),
        (_set_var("layers/lstm/cell/vars/3", np.zeros((20,), np.float32)), "weight arrays"),
        (lambda f: f.__delitem__("layers/lstm/cell/vars/2"), "weight arrays"),
        (lambda f: f.__delitem__("layers/lstm/cell/vars"), "weight arrays"),
        (lambda f: f.__delitem__("layers/dense"), "Dense"),
        (lambda f: f.move("layers/lstm/cell/vars/2", "layers/lstm/cell/vars/x"), "numbered"),
        (lambda f: f.move("layers/lstm/cell/vars/2", "layers/lstm/cell/vars/7"), "numbered"),
        (lambda f: f.move("layers/lstm/cell/vars/2", "layers/lstm/cell/vars/-1"), "numbered"),
        (lambda f: f.move("layers/lstm/cell/vars/2", "layers/lstm/cell/vars/ 2"), "numbered"),
        (lambda f: f.move("layers/lstm/cell/vars/2", "layers/lstm/cell/vars/02"), "numbered"),
        (lambda f: (f.__delitem__("layers/lstm/cell/vars/2"), f["layers/lstm/cell/vars"].create_group("2")), "not a dataset"),
    ],
)
def test_keras_weights_contradicting_config(tmp_path, edit, message):
    p = edit_keras_weights(tmp_path / "w.keras", edit)
    out = tmp_path / "out.npz"
    fails("inspect", p, contains=[p, message])
    fails("run", p, "--input", X, "--format", "npz", "-o", out, contains=[message], output=out)


@pytest.mark.parametrize(
    "names, message",
    [
        (["lstm/lstm_cell/kernel:0", "lstm/lstm_cell/recurrent_kernel:0"], "weight arrays"),
        (["lstm/lstm_cell/kernel:0", "lstm/lstm_cell/recurrent_kernel:0", "lstm/lstm_cell/bias:0", "lstm/lstm_cell/bias:0"], "weight arrays"),
        (["lstm/lstm_cell/recurrent_kernel:0", "lstm/lstm_cell/kernel:0", "lstm/lstm_cell/bias:0"], "kernel"),
        (["lstm/lstm_cell/kernel:0", "lstm/lstm_cell/recurrent_kernel:0", "lstm/lstm_cell/nope:0"], "not a dataset"),
        (["lstm/lstm_cell"], "not a dataset"),
    ],
)
def test_legacy_weights_contradicting_config(tmp_path, names, message):
    def edit(f):
        f["model_weights/lstm"].attrs["weight_names"] = np.array(names, dtype=h5py.string_dtype())

    p = copy_h5(tmp_path / "w.h5", edit=edit)
    fails("inspect", p, contains=[p, message])


def test_weights_only_files_with_odd_shapes_are_inferred_or_refused(tmp_path):
    """No config: odd shapes become 'unknown' layers; run --direct on them is refused by name."""

    def edit(f):
        del f["layers/lstm/cell/vars/1"]
        f.create_dataset("layers/lstm/cell/vars/1", data=np.zeros((5, 21), np.float32))

    p = copy_h5(tmp_path / "w.weights.h5", "k3_lstm_dense.weights.h5", edit=edit)
    result = cli("inspect", p, "--format", "json")
    assert result.exit_code == 0, result.output
    fails("run", p, "--layer", "lstm", "--direct", "--input", X, contains=["lstm"])


# ---------------------------------------------------------------------------------------------
# escapes the fuzz harness (tests/test_fuzz.py) found, kept as plain cases


def _first(config, cls):
    return [e for e in config["config"]["layers"] if e["class_name"] == cls][0]


@pytest.mark.parametrize(
    "src, edit, message",
    [
        (LSTM, lambda c: c.__setitem__("class_name", {"class_name": "Sequential"}), "model class"),
        (LSTM, lambda c: c.__setitem__("class_name", ["Sequential"]), "model class"),
        ("k3_bidir.keras", lambda c: _first(c, "Bidirectional")["config"]["layer"].__setitem__("class_name", {"a": 1}), "Bidirectional"),
        ("k3_nested.keras", lambda c: c["config"]["layers"][2]["inbound_nodes"][0]["args"][0].__setitem__("config", "x"), "tensor reference"),
        ("k3_nested.keras", lambda c: c["config"]["layers"][2]["inbound_nodes"][0].__setitem__("args", []), "no input tensors"),
        ("k3_nested.keras", lambda c: c["config"]["layers"][3]["inbound_nodes"][0]["args"].append(c["config"]["layers"][3]["inbound_nodes"][0]["args"][0]), "takes one input tensor"),
    ],
    ids=["class-name-dict", "class-name-list", "bidirectional-inner-dict", "keras-tensor-config-str", "no-inputs", "two-inputs-to-dense"],
)
def test_fuzz_found_config_escapes(tmp_path, src, edit, message):
    config = config_of(src)
    edit(config)
    p = make_keras(tmp_path / "found.keras", src=src, config=config)
    fails("inspect", p, contains=[p, message])


def test_fuzz_found_cudnn_kernel_shapes(tmp_path):
    def edit(f):
        group = f["model_weights/cu_dnnlstm"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        kernel = f"model_weights/cu_dnnlstm/{names[0]}"
        data = f[kernel][()]
        del f[kernel]
        f.create_dataset(kernel, data=data[:, :-1])

    p = copy_h5(tmp_path / "cudnn.h5", "k2_cudnn_lstm.h5", edit=edit)
    fails("inspect", p, contains=[p, "cu_dnnlstm", "do not fit"])


def test_fuzz_found_keras1_per_gate_shapes(tmp_path):
    def edit(f):
        group = f["model_weights/lstm_1"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        target = f"model_weights/lstm_1/{names[3]}"  # W_c
        data = f[target][()]
        del f[target]
        f.create_dataset(target, data=np.zeros((data.shape[0] + 1, data.shape[1]), data.dtype))

    p = copy_h5(tmp_path / "k1.h5", "k1_lstm.h5", edit=edit)
    fails("inspect", p, contains=[p, "lstm_1", "do not fuse"])


@pytest.mark.parametrize("var, value", [("0", np.nan), ("1", np.inf)])
def test_non_finite_weights_are_shown_warned_or_refused(tmp_path, var, value):
    """A diverged model is still inspectable; run warns where the NaN/Inf sits; --strict refuses."""
    shape = (4, 20) if var == "0" else (5, 20)
    p = edit_keras_weights(tmp_path / "w.keras", _set_var(f"layers/lstm/cell/vars/{var}", np.full(shape, value, np.float32)))
    where = f"layers/lstm/cell/vars/{var}"
    shown = cli("inspect", p)
    assert shown.exit_code == 0 and "non-finite" in shown.output and where in shown.output
    warned = cli("run", p, "--input", X, "--format", "json")
    assert warned.exit_code == 0 and f"lstmctl: warning: {p}: model.weights.h5: dataset '{where}'" in warned.stderr or ("warning" in warned.stderr and where in warned.stderr)
    out = tmp_path / "out.npz"
    fails("run", p, "--input", X, "--strict", "--format", "npz", "-o", out, contains=[where, "non-finite"], output=out)


def _zero_size_free_object(data: bytes) -> bytes:
    """The first global heap collection with a free-space object of size 0 in place of its
    second object: the corruption that made HDF5 2.0.0 spin forever in H5Aread (found by fuzzing)."""
    buf = bytearray(data)
    start = buf.find(b"GCOL\x01")
    assert start >= 0
    first = start + 16
    second = first + 16 + (struct.unpack_from("<Q", buf, first + 8)[0] + 7) // 8 * 8
    buf[second : second + 16] = bytes(16)
    return bytes(buf)


def test_global_heap_that_would_hang_hdf5(tmp_path):
    p = tmp_path / "heap.h5"
    p.write_bytes(_zero_size_free_object(Path(sample(LEGACY)).read_bytes()))
    refused_under_limit(["inspect", p], contains=[p, "global heap"])  # a child that spins is killed: returncode -9
    with zipfile.ZipFile(sample(LSTM)) as zf:
        blob = zf.read("model.weights.h5")
    if b"GCOL\x01" in blob:
        k = make_keras(tmp_path / "heap.keras", replace={"model.weights.h5": _zero_size_free_object(blob)})
        fails("inspect", k, contains=[k, "model.weights.h5", "global heap"])


# ---------------------------------------------------------------------------------------------
# found by the fuzz harness outside the reader files: documented here until fixed there


def test_dense_kernel_contradicting_its_input_width(tmp_path):
    def edit(f):
        config = json.loads(f.attrs["model_config"])
        bidirs = [e for e in config["config"]["layers"] if e["class_name"] == "Bidirectional"]
        assert bidirs[-1]["config"]["merge_mode"] == "ave"
        del bidirs[-1]["config"]["merge_mode"]  # Keras's default, concat: twice as wide as the Dense kernel expects
        f.attrs["model_config"] = json.dumps(config)

    p = copy_h5(tmp_path / "wide.h5", "k2_bidir_masked.h5", edit=edit)
    with pytest.raises(lstmctl.LstmctlError):
        lstmctl.load(p).run()


def test_weights_only_keras1_per_gate_shapes(tmp_path):
    def edit(f):
        f.attrs["keras_version"] = "1.2.2"
        group = f["lstm"]
        names = []
        for i in range(12):  # W, U, b for i, c, f, o; W_c one row short
            group.create_dataset(f"w{i}", data=np.zeros((4,) if i % 3 == 2 else (3 if i == 3 else 4, 4), np.float32))
            names.append(f"w{i}")
        group.attrs["weight_names"] = np.array(names, dtype=h5py.string_dtype())

    p = copy_h5(tmp_path / "k1w.h5", "k2_lstm_dense_weights.h5", edit=edit)
    with pytest.raises(lstmctl.LstmctlError):
        lstmctl.load(p)


def test_attribute_with_a_corrupt_variable_length_type(tmp_path):
    """keras_version's vlen-string type turned into a vlen sequence of a garbage base type (one
    byte, 0x01 -> 0x05): HDF5 2.0.0 segfaults reading it (found by fuzzing). Attributes whose type is
    not a string or a number are refused before they are read."""
    data = bytearray(Path(sample(LEGACY)).read_bytes())
    name = data.find(b"keras_version\x00")
    assert name > 0
    at = data.find(b"\x19\x01", name, name + 32)  # datatype message: class 9 (vlen) version 1, then "string"
    assert at > 0
    data[at + 1] = 0x05
    p = tmp_path / "vlen.h5"
    p.write_bytes(bytes(data))
    refused_under_limit(["inspect", p], contains=[p, "keras_version", "not a string or number"])  # a crash would be returncode -11
