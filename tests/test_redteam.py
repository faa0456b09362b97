"""Red team: attacks on lstmctl's readers, each judged from outside a real CLI process.

Every case is built on the fly (no malicious binary is committed) and run as
`python -m lstmctl …` in a child process under RLIMIT_AS (2 GiB) and a timeout. The judge
sees only what a user would: the exit code (3 for a bad file, 2 for bad options, never a
signal), exactly one `lstmctl: error:` line on stderr, no traceback, nothing left in the
output folder, no sentinel file created by a payload, no secret from a file outside the model
in any output, and no connection to the canary socket a payload names.

Families: reconstructions of Keras CVEs against lstmctl's readers; structure attacks on the
model graph and the HDF5 and zip containers; input attacks (npz, CSV, JSON, stdin, options);
faults (concurrent writers, a model replaced or truncated while it is read).
"""

import io
import json
import os
import pickle
import re
import resource
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import ROOT, sample
from test_hostile import (
    KERNEL,
    LEGACY,
    LSTM,
    SECRET_TEXT,
    SECRET_VALUE,
    V3_KERNEL,
    X,
    _replace_with,
    config_of,
    copy_h5,
    edit_keras_weights,
    external_link,
    external_storage,
    keras2_lambda,
    keras3_lambda,
    lambda_code,
    legacy_with_layer,
    make_keras,
    npy_header,
    raw_zip,
    sample_members,
    secret_h5,
    stored,
    virtual,
)

ADDRESS_LIMIT = 2 << 30
TIMEOUT = 30  # seconds per CLI run; a run that needs longer is a finding (a hang)
SECRET_NUMBER = "4242.42"  # SECRET_VALUE as any output would print it


# ---------------------------------------------------------------------------------------------
# the judge


@dataclass
class Outcome:
    args: list
    code: int
    stdout: bytes
    stderr: str
    seconds: float

    @property
    def lines(self) -> list:
        return self.stderr.strip().splitlines()

    def __str__(self):
        return f"lstmctl {' '.join(map(str, self.args))[:300]} -> exit {self.code} in {self.seconds:.1f} s; stderr: {self.stderr[-1500:]!r}"


def _limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))


def _env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSTMCTL_")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return env


def start(args, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    """The CLI in a child process under the address-space limit."""
    return subprocess.Popen(
        [sys.executable, "-m", "lstmctl", *map(str, args)], cwd=ROOT, env=_env(), stdin=stdin,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limit_address_space,
    )  # fmt: skip


def finish(proc, args, began, timeout=TIMEOUT) -> Outcome:
    try:
        out, err = proc.communicate(timeout=max(0.1, began + timeout - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"hang: lstmctl {' '.join(map(str, args))[:300]} did not finish within {timeout} s")
    return Outcome(list(args), proc.returncode, out, err.decode("utf-8", "replace"), time.monotonic() - began)


class RedTeam:
    """A test's world: an output folder, a sentinel a payload would create, secrets outside the
    model, and every CLI outcome, checked for leaks and leftovers when the test ends."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.out = tmp / "out"
        self.out.mkdir()
        self.sentinel = tmp / "PWNED"
        self.secret_txt = tmp / "secret.txt"
        self.secret_txt.write_text(SECRET_TEXT)
        self.secret_raw = tmp / "secret.bin"
        self.secret_raw.write_bytes(np.full(4096, SECRET_VALUE, np.float32).tobytes() + SECRET_TEXT.encode())
        self.secret_h5 = secret_h5(tmp / "secret.h5", {"kernel": (4, 20), KERNEL: (4, 20), "model_weights/dense/dense/kernel:0": (5, 3)})
        self.outcomes = []

    def run(self, *args, stdin=subprocess.DEVNULL, timeout=TIMEOUT) -> Outcome:
        began = time.monotonic()
        outcome = finish(start(args, stdin), args, began, timeout)
        self.outcomes.append(outcome)
        return outcome

    def run_many(self, arg_lists, parallel=2, timeout=TIMEOUT) -> list:
        """Several runs, `parallel` at a time (the cases are independent)."""
        results = [None] * len(arg_lists)
        pending = list(enumerate(arg_lists))
        running = []
        try:
            while pending or running:
                while pending and len(running) < parallel:
                    i, args = pending.pop(0)
                    running.append((i, args, start(args), time.monotonic()))
                i, args, proc, began = running[0]
                results[i] = finish(proc, args, began, timeout)
                running.pop(0)
        finally:
            for _, _, proc, _ in running:  # a hang failed the test: end the runs still going
                proc.kill()
                proc.communicate()
        self.outcomes.extend(results)
        return results

    def check(self):
        assert not self.sentinel.exists(), "a payload from a model file ran"
        leftovers = [p.name for p in self.out.iterdir() if p.name.startswith(".lstmctl-")]
        assert not leftovers, leftovers
        for outcome in self.outcomes:
            text = outcome.stderr + outcome.stdout.decode("latin1")
            assert SECRET_TEXT not in text and SECRET_NUMBER not in text, f"a secret from outside the model leaked: {outcome}"
            assert "Traceback" not in outcome.stderr, str(outcome)
            assert outcome.code >= 0, f"killed by signal {-outcome.code}: {outcome}"


@pytest.fixture
def rt(tmp_path):
    world = RedTeam(tmp_path)
    yield world
    world.check()


def refused(outcome: Outcome, *contains, code=3) -> str:
    """The documented failure: exit code, one `lstmctl: error:` line, no output, nothing else."""
    assert outcome.code == code, str(outcome)
    lines = outcome.lines
    assert len(lines) == 1 and lines[0].startswith("lstmctl: error:"), str(outcome)
    line = lines[0]
    for word in ("unexpected", "MemoryError", "Traceback"):
        assert word not in line, str(outcome)
    message = _TMP_PATH.sub("", line)  # a word must come from the message, not a tmp folder named after the test
    for text in contains:
        assert str(text) in (line if isinstance(text, Path) else message), (text, str(outcome))
    assert not outcome.stdout, str(outcome)
    return line


_TMP_PATH = re.compile(r"/\S*/pytest-\d+/[^/\s]+/\S*")


def succeeded(outcome: Outcome) -> Outcome:
    assert outcome.code == 0, str(outcome)
    assert not [line for line in outcome.lines if line.startswith("lstmctl: error")], str(outcome)
    return outcome


def refused_everywhere(rt, model, *contains) -> list:
    """inspect and run (to a file) both refuse; nothing is written."""
    target = rt.out / "result.npz"
    outcomes = rt.run_many([["inspect", model, "--format", "json"], ["run", model, "--input", X, "--format", "npz", "-o", target]])
    lines = [refused(o, model, *contains) for o in outcomes]
    assert not list(rt.out.iterdir())
    return lines


def opaque_then_refused(rt, model, name, cls):
    """`inspect` lists the layer as opaque (its config uninterpreted); `run` refuses it by name."""
    shown = succeeded(rt.run("inspect", model, "--format", "json"))
    layers = {layer["name"]: layer for layer in json.loads(shown.stdout)["layers"]}
    assert layers[name]["kind"] == "opaque" and layers[name]["class_name"] == cls, layers[name]
    refused(rt.run("run", model, "--input", X, "--format", "npz", "-o", rt.out / "r.npz"), name)
    assert not list(rt.out.iterdir())


# ---------------------------------------------------------------------------------------------
# builders


def keras_zip(path, config, config_bytes=None, method=zipfile.ZIP_DEFLATED) -> Path:
    """A weightless .keras archive written from scratch: config.json and metadata.json."""
    with zipfile.ZipFile(path, "w", method) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        zf.writestr("config.json", config_bytes if config_bytes is not None else json.dumps(config))
    return Path(path)


def legacy_with_config(dst, edit_config) -> Path:
    """A copy of the legacy sample whose model_config was edited (as JSON) or replaced (as text)."""

    def edit(f):
        config = json.loads(f.attrs["model_config"])
        new = edit_config(config)
        f.attrs["model_config"] = new if isinstance(new, str) else json.dumps(config)

    return copy_h5(dst, LEGACY, edit)


def k3_tensor(layer, node=0, index=0):
    return {"class_name": "__keras_tensor__", "config": {"shape": None, "dtype": "float32", "keras_history": [layer, node, index]}}


def k3_layer(cls, name, config=None, calls=()):
    return {
        "module": "keras.layers", "class_name": cls, "config": {"name": name, **(config or {})}, "registered_name": None,
        "inbound_nodes": [{"args": [k3_tensor(*ref)], "kwargs": {}} for ref in calls],
    }  # fmt: skip


K3_INPUT = {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 6, 4], "dtype": "float32", "name": "in"}, "registered_name": None, "inbound_nodes": []}


def k3_functional(layers, output, inputs=("in", 0, 0)):
    return {
        "module": "keras", "class_name": "Functional", "registered_name": "Functional",
        "config": {"name": "functional", "trainable": True, "layers": [K3_INPUT, *layers], "input_layers": [list(inputs)], "output_layers": [list(output)]},
    }  # fmt: skip


def chain(n: int) -> dict:
    """n weightless layers, each called on the one before."""
    layers = [k3_layer("Activation", f"a{i}", {"activation": "relu"}, [("in" if i == 0 else f"a{i - 1}", 0, 0)]) for i in range(n)]
    return k3_functional(layers, (f"a{n - 1}", 0, 0))


def shared(n: int) -> dict:
    """One layer called n times, each call on the previous call's output."""
    calls = [("in", 0, 0)] + [("s", i, 0) for i in range(n - 1)]
    return k3_functional([k3_layer("Activation", "s", {"activation": "relu"}, calls)], ("s", n - 1, 0))


def nested_text(depth: int) -> str:
    """A model config of `depth` models nested in each other, built as text (json would recurse)."""
    inner = '{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [null, 6, 4]}}'
    head = '{"class_name": "Sequential", "config": {"name": "m%d", "layers": ['
    text = inner
    for i in range(depth):
        text = head % i + text + "]}}"
    return text


def heap_objects(data: bytes) -> list:
    """(collection offset, object index, object header offset, size) of every global heap object."""
    out = []
    for match in re.finditer(re.escape(b"GCOL\x01"), data):
        start = match.start()
        end = start + struct.unpack_from("<Q", data, start + 8)[0]
        p = start + 16
        while p + 16 <= min(end, len(data)):
            index = struct.unpack_from("<H", data, p)[0]
            size = struct.unpack_from("<Q", data, p + 8)[0]
            if index == 0:
                break
            out.append((start, index, p, size))
            p += 16 + (size + 7) // 8 * 8
    return out


def aliased_names(dst, items: int, big: int) -> Path:
    """A legacy model whose layer_names attribute holds `items` variable-length strings that all
    name one `big`-byte global heap object: declared size items x 16 bytes, decoded items x big."""

    def edit(f):
        f.attrs["padding"] = "P" * big
        f["model_weights"].attrs["layer_names"] = np.array([f"zz{i:09d}" for i in range(items)], dtype=h5py.string_dtype())

    copy_h5(dst, LEGACY, edit)
    data = bytearray(Path(dst).read_bytes())
    objects = heap_objects(bytes(data))
    (target,) = [(c, i) for c, i, _, size in objects if size == big]
    aliased = 0
    for collection, index, _, size in objects:
        if size == 11:
            ref = struct.pack("<IQI", 11, collection, index)
            at = data.find(ref)
            if at >= 0:
                data[at : at + 16] = struct.pack("<IQI", big, *target)
                aliased += 1
    assert aliased == items, aliased
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def heap_object_size(dst, src, size: int) -> Path:
    """A copy of `src` whose first global heap object declares `size` bytes."""
    data = bytearray(Path(sample(src)).read_bytes())
    _, _, header, _ = heap_objects(bytes(data))[0]
    struct.pack_into("<Q", data, header + 8, size)
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def zip_with_attrs(path, members) -> Path:
    """A zip whose members carry explicit external attributes: (name, data, mode)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.create_system = 3  # unix: the mode bits mean what they say
            zf.writestr(info, data)
    return Path(path)


def npy_stream_writer(header: str) -> list:
    """argv of a process that writes a .npy header, then zeros until its pipe closes."""
    code = textwrap.dedent(
        f"""
        import struct, sys
        h = {header.encode("latin1")!r}
        out = sys.stdout.buffer
        out.write(b"\\x93NUMPY\\x01\\x00" + struct.pack("<H", len(h)) + h)
        zeros = bytes(1 << 20)
        try:
            while True:
                out.write(zeros)
        except (BrokenPipeError, OSError):
            pass
        """
    )
    return [sys.executable, "-c", code]


# ---------------------------------------------------------------------------------------------
# controls: the judge sees what it should


def test_control_normal_runs_fit_the_limit(rt):
    succeeded(rt.run("inspect", sample(LSTM)))
    out = rt.out / "r.npz"
    succeeded(rt.run("run", sample(LSTM), "--input", X, "--format", "npz", "-o", out))
    assert out.exists()
    out.unlink()


def test_control_the_judge_sees_a_payload_and_a_leak(tmp_path):
    """The checks mean something: a sentinel written, a secret printed and a crash are caught."""
    world = RedTeam(tmp_path)
    world.sentinel.write_text("x")
    with pytest.raises(AssertionError, match="payload"):
        world.check()
    world.sentinel.unlink()
    world.outcomes.append(Outcome([], 0, SECRET_TEXT.encode(), "", 0))
    with pytest.raises(AssertionError, match="secret"):
        world.check()
    world.outcomes = [Outcome([], -signal.SIGBUS, b"", "", 0)]
    with pytest.raises(AssertionError, match="signal"):
        world.check()


# ---------------------------------------------------------------------------------------------
# CVE-2024-3660: a Lambda layer carrying marshalled bytecode (Keras runs it while loading)


def _lambda_model(rt, place) -> Path:
    evil = keras3_lambda("evil", rt.sentinel)
    if place == "top-level":
        config = config_of(LSTM)
        config["config"]["layers"].insert(2, evil)
        return make_keras(rt.tmp / "m.keras", config=config)
    if place == "nested-model":
        config = config_of("k3_nested.keras")
        config["config"]["layers"][1]["config"]["layers"].insert(2, evil)
        return make_keras(rt.tmp / "m.keras", src="k3_nested.keras", config=config)
    if place == "bidirectional":
        config = config_of("k3_bidir.keras")
        config["config"]["layers"][1]["config"]["layer"] = evil
        return make_keras(rt.tmp / "m.keras", src="k3_bidir.keras", config=config)
    if place == "time-distributed":
        config = config_of("k3_encdec.keras")
        (td,) = [layer for layer in config["config"]["layers"] if layer["class_name"] == "TimeDistributed"]
        td["config"]["layer"] = evil
        return make_keras(rt.tmp / "m.keras", src="k3_encdec.keras", config=config)
    if place == "output-shape":  # the function is harmless; the payload is the output_shape function
        evil["config"]["function"] = {"class_name": "__lambda__", "config": {"code": lambda_code(rt.tmp / "unused"), "defaults": None, "closure": None}}
        evil["config"]["output_shape"] = {"class_name": "__lambda__", "config": {"code": lambda_code(rt.sentinel), "defaults": None, "closure": None}}
        config = config_of(LSTM)
        config["config"]["layers"].insert(2, evil)
        return make_keras(rt.tmp / "m.keras", config=config)
    raise AssertionError(place)


@pytest.mark.parametrize("place", ["top-level", "nested-model", "output-shape"])
def test_cve_2024_3660_lambda_bytecode_is_opaque(rt, place):
    model = _lambda_model(rt, place)
    opaque_then_refused(rt, model, "evil", "Lambda")


@pytest.mark.parametrize("place", ["bidirectional", "time-distributed"])
def test_cve_2024_3660_lambda_inside_a_wrapper_is_refused(rt, place):
    """A wrapper around a Lambda is never decoded: Bidirectional refuses it everywhere;
    inspect lists TimeDistributed(Lambda) and run refuses it."""
    model = _lambda_model(rt, place)
    shown, ran = rt.run_many([["inspect", model], ["run", model, "-o", rt.out / "r.npz", "--format", "npz"]])
    if place == "bidirectional":
        refused(shown, model, "Lambda")
    else:
        assert "time_distributed" in succeeded(shown).stdout.decode()
    refused(ran, model, "Lambda")


def test_cve_2024_3660_lambda_in_legacy_h5(rt):
    """CVE-2025-9905 too: Keras ignored safe_mode for .h5 files; lstmctl has no unsafe mode."""
    model = legacy_with_layer(rt.tmp / "m.h5", keras2_lambda("evil", rt.sentinel))
    opaque_then_refused(rt, model, "evil", "Lambda")


# ---------------------------------------------------------------------------------------------
# CVE-2025-1550: config.json naming arbitrary modules and functions


def _touch(rt) -> str:
    return f"touch {rt.sentinel}"


FOREIGN_ENTRIES = {
    "os.system": lambda rt: {"module": "os", "class_name": "system", "config": {"name": "evil", "command": _touch(rt)}, "registered_name": "system"},
    "subprocess.Popen": lambda rt: {"module": "subprocess", "class_name": "Popen", "config": {"name": "evil", "args": ["touch", str(rt.sentinel)]}},
    "builtins.exec": lambda rt: {"module": "builtins", "class_name": "exec", "config": {"name": "evil", "source": f"open({str(rt.sentinel)!r}, 'w')"}},
    "registered-name": lambda rt: {"module": "keras.layers", "class_name": "Activation", "config": {"name": "evil", "activation": "relu"}, "registered_name": "os>system"},
    "keras-module-unknown-class": lambda rt: {"module": "keras.src.utils", "class_name": "__import__", "config": {"name": "evil"}, "registered_name": "__import__"},
}


@pytest.mark.parametrize("kind", FOREIGN_ENTRIES)
def test_cve_2025_1550_foreign_layer_classes_are_opaque(rt, kind):
    config = config_of(LSTM)
    entry = FOREIGN_ENTRIES[kind](rt)
    config["config"]["layers"].insert(2, entry)
    model = make_keras(rt.tmp / "m.keras", config=config)
    opaque_then_refused(rt, model, "evil", entry["class_name"])


@pytest.mark.parametrize("kind", ["os.system", "subprocess.Popen"])
def test_cve_2025_1550_foreign_model_class_refused(rt, kind):
    config = config_of(LSTM)
    entry = FOREIGN_ENTRIES[kind](rt)
    config["module"], config["class_name"], config["registered_name"] = entry["module"], entry["class_name"], entry.get("registered_name")
    model = make_keras(rt.tmp / "m.keras", config=config)
    refused_everywhere(rt, model, entry["class_name"])


GADGET = {"module": "os", "class_name": "system", "config": "touch SENTINEL", "registered_name": "system"}


@pytest.mark.parametrize("key", ["activation", "recurrent_activation"])
def test_cve_2025_1550_activation_naming_a_function_refused(rt, key):
    config = config_of(LSTM)
    config["config"]["layers"][1]["config"][key] = json.loads(json.dumps(GADGET).replace("SENTINEL", str(rt.sentinel)))
    model = make_keras(rt.tmp / "m.keras", config=config)
    refused_everywhere(rt, model, "lstm", key)


@pytest.mark.parametrize("key", ["kernel_initializer", "kernel_regularizer", "kernel_constraint", "dtype"])
def test_cve_2025_1550_gadgets_in_ignored_settings_never_run(rt, key):
    """Initializers, regularizers and constraints are never used (the weights come from the
    file) and a dtype policy is read by name only: the model runs and the gadget does not."""
    config = config_of(LSTM)
    gadget = json.loads(json.dumps(GADGET).replace("SENTINEL", str(rt.sentinel)))
    if key == "dtype":
        gadget["config"] = {"name": "float32", "command": _touch(rt)}
    config["config"]["layers"][1]["config"][key] = gadget
    model = make_keras(rt.tmp / "m.keras", config=config)
    succeeded(rt.run("run", model, "--input", X, "--format", "json"))


def test_cve_2025_1550_foreign_classes_in_legacy_h5(rt):
    entry = FOREIGN_ENTRIES["os.system"](rt)
    model = legacy_with_layer(rt.tmp / "m.h5", entry)
    opaque_then_refused(rt, model, "evil", "system")


# ---------------------------------------------------------------------------------------------
# CVE-2025-8747: a keras.utils.get_file gadget (Keras fetched a URL while loading)


@pytest.fixture
def canary():
    """A listening socket a payload would reach; the test fails if anything connects."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield f"http://127.0.0.1:{server.getsockname()[1]}/payload.py"
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        conn = None
    server.close()
    if conn is not None:
        conn.close()
        pytest.fail("a URL named by the model file was fetched")


def _get_file(url, rt):
    return {"module": "keras.utils", "class_name": "get_file", "config": {"fname": "payload.py", "origin": url, "cache_dir": str(rt.out), "extract": True}, "registered_name": "get_file"}


@pytest.mark.parametrize("place", ["layer", "initializer", "vocabulary", "model", "file-url"])
def test_cve_2025_8747_get_file_gadget_never_fetches(rt, canary, place):
    config = config_of(LSTM)
    if place == "layer":
        entry = _get_file(canary, rt)
        entry["config"]["name"] = "evil"
        config["config"]["layers"].insert(2, entry)
    elif place == "initializer":
        config["config"]["layers"][1]["config"]["kernel_initializer"] = _get_file(canary, rt)
    elif place == "vocabulary":
        config["config"]["layers"].insert(2, {"module": "keras.layers", "class_name": "StringLookup", "config": {"name": "evil", "vocabulary": canary}, "registered_name": None})
    elif place == "model":
        config = _get_file(canary, rt)
    elif place == "file-url":
        entry = _get_file(f"file://{rt.secret_txt}", rt)
        entry["config"]["name"] = "evil"
        config["config"]["layers"].insert(2, entry)
    model = make_keras(rt.tmp / "m.keras", config=config)
    if place == "model":
        refused_everywhere(rt, model, "get_file")
    elif place == "initializer":
        succeeded(rt.run("run", model, "--input", X, "--format", "json"))
    else:
        opaque_then_refused(rt, model, "evil", config["config"]["layers"][2]["class_name"])
    assert list(rt.out.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# CVE-2025-9905 / CVE-2025-9906: safe_mode bypasses (an .h5 model_config; a config that
# switches unsafe deserialisation on before a Lambda)


UNSAFE_SWITCH = {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization", "registered_name": "function"}


def test_cve_2025_9906_unsafe_switch_then_lambda_in_keras(rt):
    config = config_of(LSTM)
    config["config"]["layers"].insert(1, {**UNSAFE_SWITCH, "config": {"name": "switch", "fn": "enable_unsafe_deserialization"}})
    config["config"]["layers"].insert(3, keras3_lambda("evil", rt.sentinel))
    model = make_keras(rt.tmp / "m.keras", config=config)
    opaque_then_refused(rt, model, "switch", "function")


def test_cve_2025_9906_switch_as_an_activation_refused(rt):
    config = config_of(LSTM)
    config["config"]["layers"][1]["config"]["activation"] = UNSAFE_SWITCH
    config["config"]["layers"].insert(2, keras3_lambda("evil", rt.sentinel))
    model = make_keras(rt.tmp / "m.keras", config=config)
    refused_everywhere(rt, model, "activation")


def test_cve_2025_9905_unsafe_switch_then_lambda_in_legacy_h5(rt):
    def edit(config):
        config["config"]["layers"].insert(1, {"class_name": "function", "module": "keras.config", "config": {"name": "switch", "fn": "enable_unsafe_deserialization"}})
        config["config"]["layers"].insert(2, keras2_lambda("evil", rt.sentinel))

    model = legacy_with_config(rt.tmp / "m.h5", edit)
    shown = succeeded(rt.run("inspect", model, "--format", "json"))
    kinds = {layer["name"]: layer["kind"] for layer in json.loads(shown.stdout)["layers"]}
    assert kinds["switch"] == kinds["evil"] == "opaque"
    refused(rt.run("run", model, "--input", X), "switch")


# ---------------------------------------------------------------------------------------------
# CVE-2026-0897 / CVE-2026-1669: HDF5 data outside the file, huge declared shapes


def _outside_maker(rt, kind):
    return {
        "external-storage": external_storage(rt.secret_raw),
        "external-link": external_link(rt.secret_h5, "kernel"),
        "virtual": virtual(rt.secret_h5, "kernel"),
    }[kind]


OUTSIDE_KINDS = ["external-storage", "external-link", "virtual"]


@pytest.mark.parametrize("kind", OUTSIDE_KINDS)
def test_cve_2026_hdf5_outside_the_legacy_file(rt, kind):
    model = copy_h5(rt.tmp / "m.h5", edit=lambda f: _replace_with(f, KERNEL, _outside_maker(rt, kind)))
    refused_everywhere(rt, model, KERNEL)


@pytest.mark.parametrize("kind", OUTSIDE_KINDS)
def test_cve_2026_hdf5_outside_the_keras_weights(rt, kind):
    model = edit_keras_weights(rt.tmp / "m.keras", lambda f: _replace_with(f, V3_KERNEL, _outside_maker(rt, kind)))
    refused_everywhere(rt, model, "model.weights.h5", V3_KERNEL)


def test_cve_2026_external_link_on_the_weights_root(rt):
    def edit(f):
        del f["model_weights"]
        f["model_weights"] = h5py.ExternalLink(str(rt.secret_h5), "/model_weights")

    model = copy_h5(rt.tmp / "m.h5", edit=edit)
    refused_everywhere(rt, model, "model_weights", "ExternalLink")


def _huge(kind):
    def make(f, path, shape, dtype):
        if kind == "chunked-fill":
            f.create_dataset(path, shape=(1 << 20, 1 << 20), dtype="<f4", chunks=(256, 256), fillvalue=1.0)
        elif kind == "contiguous-unallocated":
            f.create_dataset(path, shape=(1 << 16, 1 << 16), dtype="<f8")
        elif kind == "one-dim-2^40":
            f.create_dataset(path, shape=(1 << 40,), dtype="<f4", chunks=(1 << 12,), maxshape=(None,))
        elif kind == "resizable-grown":
            f.create_dataset(path, shape=(4, 20), dtype="<f4", chunks=(4, 20), maxshape=(None, None), data=np.ones((4, 20), np.float32)).resize((1 << 30, 20))

    return make


@pytest.mark.parametrize("kind", ["chunked-fill", "contiguous-unallocated", "one-dim-2^40", "resizable-grown"])
def test_cve_2026_huge_declared_shapes(rt, kind):
    model = copy_h5(rt.tmp / "m.h5", edit=lambda f: _replace_with(f, KERNEL, _huge(kind)))
    refused_everywhere(rt, model, KERNEL)
    model = edit_keras_weights(rt.tmp / "m.keras", lambda f: _replace_with(f, V3_KERNEL, _huge(kind)))
    refused(rt.run("inspect", model), V3_KERNEL)


# ---------------------------------------------------------------------------------------------
# structure: the model graph


def test_models_nested_5000_deep(rt):
    deep = nested_text(5000)
    keras = keras_zip(rt.tmp / "deep.keras", None, config_bytes=deep)
    legacy = legacy_with_config(rt.tmp / "deep.h5", lambda config: deep)
    for outcome in rt.run_many([["inspect", keras], ["inspect", legacy], ["run", keras], ["run", legacy]]):
        refused(outcome, "nested deeper")


def test_models_nested_as_deep_as_allowed(rt):
    """20 models deep fits the JSON depth cap: read (or refused for its content), never a crash."""
    config = json.loads(nested_text(20))
    model = keras_zip(rt.tmp / "deep.keras", config)
    outcome = rt.run("inspect", model)
    if outcome.code:
        refused(outcome, model)


def _cyclic(calls: dict) -> dict:
    layers = [k3_layer("Activation", name, {"activation": "relu"}, refs) for name, refs in calls.items()]
    return k3_functional(layers, (list(calls)[-1], 0, 0))


GRAPHS = {
    "self-loop": {"a0": [("in", 0, 0)], "a1": [("a1", 0, 0)], "a2": [("a1", 0, 0)]},
    "two-layer-cycle": {"a0": [("a1", 0, 0)], "a1": [("a0", 0, 0)]},
    "unknown-layer": {"a0": [("nowhere", 0, 0)]},
    "node-2^62": {"a0": [("in", 1 << 62, 0)]},
    "output-index-10^9": {"a0": [("in", 0, 10**9)]},
    "call-cycle-of-a-shared-layer": {"s": [("in", 0, 0), ("s", 2, 0), ("s", 1, 0)]},
}


@pytest.mark.parametrize("graph", GRAPHS)
def test_graphs_that_never_complete(rt, graph):
    """Cycles and references to nothing: run refuses naming the layers; inspect shows the
    graph (shapes unknown past the break) or refuses; never a hang or a recursion error."""
    model = keras_zip(rt.tmp / "g.keras", _cyclic(GRAPHS[graph]))
    shown, ran = rt.run_many([["inspect", model, "--format", "json"], ["run", model, "--format", "npz", "-o", rt.out / "r.npz"]])
    if shown.code:
        refused(shown, model)
    refused(ran, model)
    assert not list(rt.out.iterdir())


def test_twenty_thousand_layers_in_linear_time(rt):
    """2·10^4 layers in a chain (a 10^5-layer config takes ~45 s just to inspect, in describe)."""
    model = keras_zip(rt.tmp / "chain.keras", chain(20_000))
    shown, ran = rt.run_many([["inspect", model, "--format", "json"], ["run", model, "--format", "json"]])
    assert len(json.loads(succeeded(shown).stdout)["layers"]) == 20_001
    assert "output" in json.loads(succeeded(ran).stdout)


def test_one_layer_called_a_hundred_thousand_times(rt):
    ran = succeeded(rt.run("run", keras_zip(rt.tmp / "shared.keras", shared(100_000)), "--format", "json"))
    assert "output" in json.loads(ran.stdout)


def _set(config, index, key, value):
    config["config"]["layers"][index]["config"][key] = value
    return config


HUGE_SIZES = {
    "lstm-units-2^31": ("k3_lstm_dense.keras", 1, "units", 1 << 31, "lstm"),
    "dense-units-2^31": ("k3_lstm_dense.keras", 2, "units", 1 << 31, "dense"),
    "gru-units-2^31": ("k3_gru.keras", 1, "units", 1 << 31, "gru"),
    "simplernn-units-2^63": ("k3_simplernn.keras", 1, "units", 1 << 63, "simple_rnn"),
    "time-steps-10^9": ("k3_lstm_dense.keras", 0, "batch_shape", [None, 10**9, 4], "input"),
    "features-2^31": ("k3_lstm_dense.keras", 0, "batch_shape", [None, 6, 1 << 31], "input"),
    "embedding-input-dim-2^40": ("k3_embed.keras", 1, "input_dim", 1 << 40, "embedding"),
}


@pytest.mark.parametrize("case", HUGE_SIZES)
def test_huge_sizes_in_a_config(rt, case):
    src, index, key, value, name = HUGE_SIZES[case]
    model = make_keras(rt.tmp / "m.keras", src=src, config=_set(config_of(src), index, key, value))
    for outcome in rt.run_many([["inspect", model], ["run", model, "--format", "npz", "-o", rt.out / "r.npz"]]):
        refused(outcome, model, name)


def test_huge_units_without_any_weights(rt):
    """No weights file to contradict the config: the size itself must be refused before use."""
    config = _set(config_of(LSTM), 2, "units", 1 << 31)
    model = keras_zip(rt.tmp / "m.keras", config)
    for outcome in rt.run_many([["inspect", model], ["run", model]]):
        refused(outcome, model)


def test_repeat_vector_10_9(rt):
    config = config_of("k3_misc.keras")
    (rv,) = [layer for layer in config["config"]["layers"] if layer["class_name"] == "RepeatVector"]
    rv["config"]["n"] = 10**9
    model = make_keras(rt.tmp / "rv.keras", src="k3_misc.keras", config=config)
    for outcome in rt.run_many([["inspect", model], ["run", model]]):
        refused(outcome, model, "repeat_vector")


def _dense_input(features):
    return {**K3_INPUT, "config": {**K3_INPUT["config"], "batch_shape": [None, features]}}


def test_repeat_vector_at_its_cap_with_a_big_batch(rt):
    """n = 2^20 is allowed; with 16 samples of 64 features the output needs 4 GiB."""
    config = k3_functional([k3_layer("RepeatVector", "rv", {"n": 1 << 20}, [("in", 0, 0)])], ("rv", 0, 0))
    config["config"]["layers"][0] = _dense_input(64)
    model = keras_zip(rt.tmp / "rv.keras", config)
    refused(rt.run("run", model, "--batch", "16", "--format", "npz", "-o", rt.out / "r.npz"), model, "'rv'", "memory")


def test_concatenate_of_one_big_input_64_times(rt):
    """A 64 MiB input (the per-sample cap) concatenated with itself 64 times: 4 GiB."""
    config = k3_functional([{**k3_layer("Concatenate", "cat", {"axis": -1}), "inbound_nodes": [{"args": [[k3_tensor("in")] * 64], "kwargs": {}}]}], ("cat", 0, 0))
    config["config"]["layers"][0] = {**K3_INPUT, "config": {**K3_INPUT["config"], "batch_shape": [None, 4096, 4096]}}
    model = keras_zip(rt.tmp / "cat.keras", config)
    refused(rt.run("run", model, "--format", "npz", "-o", rt.out / "r.npz"), model, "'cat'", "memory")


def test_inspect_of_a_declared_million_step_input_is_quick(rt):
    config = _set(config_of(LSTM), 0, "batch_shape", [None, 1 << 20, 4])
    model = make_keras(rt.tmp / "long.keras", config=config)
    succeeded(rt.run("inspect", model, timeout=5))


# ---------------------------------------------------------------------------------------------
# structure: HDF5 containers


def _rewrite(path, **kw):
    def make(f, p, shape, dtype):
        f.create_dataset(p, data=np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape), chunks=shape, **kw)

    return make


def _corrupt_chunk(path, dataset, where=0.5):
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(0)
    data = bytearray(Path(path).read_bytes())
    data[info.byte_offset + int(info.size * where)] ^= 0xFF
    Path(path).write_bytes(bytes(data))


@pytest.mark.parametrize("filters", [{"fletcher32": True}, {"compression": "gzip"}, {"compression": "gzip", "shuffle": True, "fletcher32": True}])
def test_hdf5_chunks_with_bad_checksums_or_streams(rt, filters):
    model = copy_h5(rt.tmp / "m.h5", edit=lambda f: _replace_with(f, KERNEL, _rewrite(KERNEL, **filters)))
    _corrupt_chunk(model, KERNEL)
    refused_everywhere(rt, model, KERNEL, "corrupt")


@pytest.mark.parametrize("filter_id", [307, 32001, 32008, 65535])
def test_hdf5_unknown_filter_ids(rt, filter_id):
    """bzip2, blosc, bitshuffle, the last id: HDF5 would search its plugin path for each."""

    def make(f, path, shape, dtype):
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk(shape)
        dcpl.set_filter(filter_id, h5py.h5z.FLAG_OPTIONAL, ())
        lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
        lcpl.set_create_intermediate_group(True)
        h5py.h5d.create(f.id, path.encode(), h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple(shape), dcpl=dcpl, lcpl=lcpl)

    model = copy_h5(rt.tmp / "m.h5", edit=lambda f: _replace_with(f, KERNEL, make))
    refused_everywhere(rt, model, KERNEL, f"filter {filter_id}")


def test_hdf5_global_heap_size_that_wraps_2_64(rt):
    """An object of 2^64-16 bytes: HDF5 adds its 16-byte header in size_t, gets 0 and walks the
    collection forever. The pre-scan must add the way HDF5 does, not with Python's big ints."""
    for size in ((1 << 64) - 16, (1 << 64) - 8, (1 << 63)):
        model = heap_object_size(rt.tmp / "wrap.h5", LEGACY, size)
        refused(rt.run("inspect", model), model, "global heap")


def test_hdf5_attribute_aliasing_one_heap_object(rt):
    """4000 variable-length names that all point at one 1 MiB heap object: in a 1.2 MB file, a
    layer_names attribute of 64 KB of references that decodes to 4 GB."""
    model = aliased_names(rt.tmp / "alias.h5", 4000, 1 << 20)
    for line in refused_everywhere(rt, model, "layer_names"):
        assert "corrupt" not in line.replace(str(model), ""), line  # refused before HDF5 allocates, not after it failed


def test_hdf5_long_layer_names_beside_a_big_config_are_read(rt):
    """The aliasing bound is no false alarm: 100 names x a 2 MiB model_config is over the cap
    as a product, but the config's collection is named once in the file, so the file is read."""

    def edit(f):
        config = json.loads(f.attrs["model_config"])
        config["config"]["padding"] = "P" * (2 << 20)
        f.attrs["model_config"] = json.dumps(config)
        group = f["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
        group.attrs["layer_names"] = np.array(names + [f"unused_{i}" for i in range(100)], dtype=h5py.string_dtype())

    model = copy_h5(rt.tmp / "long.h5", edit=edit)
    succeeded(rt.run("run", model, "--input", X, "--format", "json"))


def test_hdf5_attribute_bytes_capped_per_file(tmp_path, monkeypatch):
    """In process, with the per-file budget lowered so that a small file reaches it."""
    import lstmctl.formats.hdf5

    monkeypatch.setattr(lstmctl.formats.hdf5, "MAX_ATTR_TOTAL", 4000)
    h5 = lstmctl.formats.hdf5.H5(sample(LEGACY), "legacy")
    h5.attr(h5.file, "model_config")
    with pytest.raises(lstmctl.errors.LstmctlError, match="over 4000 bytes"):
        for _ in range(3):
            h5.attr(h5.file, "model_config")


def _diamonds(f, levels=40):
    """`levels` nested models, each the group both `sequential` and `sequential_1` name: 2^levels paths."""
    group = f["layers"]
    for _ in range(levels):
        inner = f.create_group(f"g{len(f.keys())}")
        group["sequential"] = group["sequential_1"] = inner
        group = inner.create_group("layers")


def _legacy_loop(f):
    """The legacy LSTM's group holds the root, and its first weight name is a path through that link."""
    f["model_weights/lstm/lstm/loop"] = f["/"]
    group = f["model_weights/lstm"]
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
    group.attrs["weight_names"] = np.array(["lstm/loop/model_weights/lstm/lstm/lstm_cell/kernel:0", *names[1:]], dtype=h5py.string_dtype())


V3_WEIGHTS = "k3_lstm_dense.weights.h5"
LINK_GRAPHS = {  # (file, edit, what the error says: the looping path and where it leads)
    "nested-model-is-the-root": (V3_WEIGHTS, lambda f: f.__setitem__("layers/sequential", f["/"]), "'layers/sequential' links back to '/'"),
    "nested-layers-are-the-layers": (V3_WEIGHTS, lambda f: (f.create_group("layers/sequential"), f.__setitem__("layers/sequential/layers", f["layers"])), "'layers/sequential/layers' links back to 'layers'"),
    "uninterpreted-layer-holds-its-parent": (V3_WEIGHTS, lambda f: f.__setitem__("layers/dense/loop", f["layers"]), "'layers/dense/loop' links back to 'layers'"),
    "a-group-in-itself": (V3_WEIGHTS, lambda f: f.__setitem__("layers/dense/self", f["layers/dense"]), "'layers/dense/self' links back to 'layers/dense'"),
    "legacy-weight-path-through-a-loop": (LEGACY, _legacy_loop, "'model_weights/lstm/lstm/loop' links back to '/'"),
    "nested-models-doubling-40-deep": (V3_WEIGHTS, _diamonds, "(a group linked twice)"),
}


@pytest.mark.parametrize("graph", LINK_GRAPHS)
def test_hdf5_groups_that_link_back_or_twice(rt, graph):
    """Hard links make an HDF5 file's groups a graph: a loop made `inspect` recurse until Python
    gave up (issue 23), a chain of groups each named twice doubles the walk at every level. Groups
    are known by their address in the file: the looping path is named, and the file refused."""
    src, edit, said = LINK_GRAPHS[graph]
    model = copy_h5(rt.tmp / f"{graph}{''.join(Path(src).suffixes)}", src, edit)
    refused_everywhere(rt, model, said, "refused")


# ---------------------------------------------------------------------------------------------
# structure: truncation and zip containers


TRUNCATED = ["k3_lstm_dense.keras", "k2_lstm_dense.h5", "k3_lstm_dense.weights.h5", "k2_lstm_dense_weights.h5"]


@pytest.mark.parametrize("name", TRUNCATED)
def test_truncated_at_every_tenth(rt, name):
    data = Path(sample(name)).read_bytes()
    runs = []
    for tenth in range(1, 10):
        path = rt.tmp / f"cut{tenth}{Path(name).suffix}"
        path.write_bytes(data[: len(data) * tenth // 10])
        runs.append(["run", path, "--input", X, "--layer", "lstm", "--direct", "--format", "npz", "-o", rt.out / "r.npz"])
    for args, outcome in zip(runs, rt.run_many(runs)):
        refused(outcome, args[1])
    assert not list(rt.out.iterdir())


def test_zip_duplicate_members(rt):
    members = sample_members()
    config = [m for m in members if m["name"] == "config.json"][0]
    weights = [m for m in members if m["name"] == "model.weights.h5"][0]
    evil_config = stored("config.json", json.dumps(_set(config_of(LSTM), 1, "units", 7)).encode())
    cases = {
        "config-twice": [*members, evil_config],
        "config-first-twice": [evil_config, *members],
        "weights-twice": [*members, stored("model.weights.h5", Path(rt.secret_h5).read_bytes())],
        "all-twice": [*members, config, weights],
    }
    paths = []
    for name, zipped in cases.items():
        path = rt.tmp / f"{name}.keras"
        path.write_bytes(raw_zip(zipped))
        paths.append(path)
    for path, outcome in zip(paths, rt.run_many([["inspect", p] for p in paths])):
        refused(outcome, path, "twice")


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5", "metadata.json"])
def test_zip_members_that_are_symlinks(rt, member):
    """A member marked S_IFLNK holds a link target, not data: Keras's extraction would follow it."""
    with zipfile.ZipFile(sample(LSTM)) as zf:
        members = [(n, zf.read(n), stat.S_IFREG | 0o644) for n in zf.namelist()]
    target = str(rt.secret_h5 if member.endswith(".h5") else rt.secret_txt).encode()
    members = [(n, target, stat.S_IFLNK | 0o777) if n == member else (n, d, m) for n, d, m in members]
    model = zip_with_attrs(rt.tmp / "m.keras", members)
    refused_everywhere(rt, model, member, "symbolic link")


def test_zip_with_thirty_thousand_members(rt):
    """zipfile reads every directory entry before anything can be checked: the directory size is capped first."""
    path = rt.tmp / "many.keras"
    with zipfile.ZipFile(sample(LSTM)) as zin, zipfile.ZipFile(path, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
        for i in range(30_000):  # 1.5 MB of directory entries
            zout.writestr(f"x/{i:08d}", b"")
    refused(rt.run("inspect", path), path, "central directory")


# ---------------------------------------------------------------------------------------------
# inputs


def _npz(path, members) -> Path:
    """An .npz from (name, bytes) pairs, names as given (nothing checks them here)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return Path(path)


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


NPZ_MEMBERS = {
    "traversal": "../../input_layer.npy",
    "deep-traversal": "a/../../../../etc/input_layer.npy",
    "absolute": "/tmp/input_layer.npy",
    "windows-drive": "C:\\input_layer.npy",
    "nul-byte": "input_layer\x00.npy",
}


@pytest.mark.parametrize("case", NPZ_MEMBERS)
def test_npz_member_names_that_escape(rt, case):
    x = np.load(X)
    path = _npz(rt.tmp / "x.npz", [(NPZ_MEMBERS[case], _npy(x))])
    refused(rt.run("run", sample(LSTM), "--input", path, "--format", "npz", "-o", rt.out / "r.npz"), path)
    assert not list(rt.out.iterdir())


@pytest.mark.parametrize("member", ["input_layer.txt", "input_layer.pkl", "input_layer.npy/"])
def test_npz_members_that_are_not_arrays(rt, member):
    path = _npz(rt.tmp / "x.npz", [(member, pickle.dumps({"x": 1}))])
    refused(rt.run("run", sample(LSTM), "--input", path), path, "member")


def test_npz_member_that_is_a_symlink(rt):
    path = zip_with_attrs(rt.tmp / "x.npz", [("input_layer.npy", str(rt.secret_raw).encode(), stat.S_IFLNK | 0o777)])
    refused(rt.run("run", sample(LSTM), "--input", path), path, "symbolic link")


def _csv_cases(rt) -> dict:
    wide = rt.tmp / "wide.csv"
    wide.write_bytes(b"0," * (10**7 - 1) + b"0\n")
    cells = rt.tmp / "cells.csv"
    row = b"0," * 1023 + b"0\n"
    cells.write_bytes(row * ((64 << 20) // len(row) - 1))
    tall = rt.tmp / "tall.csv"
    tall.write_bytes(b"0\n" * 10**7)
    return {"10^7 columns": wide, "64 MiB of one-character cells": cells, "10^7 rows": tall}


def test_csv_inputs_of_ten_million_cells(rt):
    cases = _csv_cases(rt)
    outcomes = rt.run_many([["run", sample(LSTM), "--input", path] for path in cases.values()])
    for path, outcome in zip(cases.values(), outcomes):
        refused(outcome, path, "CSV")


JSON_INPUTS = {  # 24 MiB each: far over the value and container caps, a third of the size cap
    "nested-10^6": lambda: b"[" * 10**6 + b"]" * 10**6,
    "12M-numbers": lambda: b"[" + b"0," * (12 << 20) + b"0]",
    "6M-floats": lambda: b"[" + b"0.5," * (6 << 20) + b"0]",
    "6M-strings": lambda: b"[" + b'"a",' * (6 << 20) + b'"a"]',
    "8M-objects": lambda: b"[" + b"{}," * (8 << 20) + b"{}]",
    "one-wide-string": lambda: b'["\xf0\x9f\x98\x80' + b"a" * (24 << 20) + b'"]',  # one emoji: 4 bytes a character
}


@pytest.mark.parametrize("case", JSON_INPUTS)
def test_json_inputs_over_the_caps(rt, case):
    path = rt.tmp / "x.json"
    path.write_bytes(JSON_INPUTS[case]())
    refused(rt.run("run", sample(LSTM), "--input", path), path)


def test_config_near_the_size_cap_is_refused_before_parsing(rt):
    """60 MiB of two-character strings in config.json would parse into about 700 MiB of objects."""
    text = b'{"class_name": "Sequential", "config": {"layers": [' + b'"ab",' * (12 << 20) + b'"ab"]}}'
    model = keras_zip(rt.tmp / "m.keras", None, config_bytes=text, method=zipfile.ZIP_STORED)  # stored: no zip-bomb ratio
    refused(rt.run("inspect", model), model, "values")


@pytest.mark.parametrize(
    "header",
    [npy_header("<f4", (1 << 30,)), npy_header("<f8", (1 << 24, 6, 4)), npy_header("<f4", (1 << 27, 6, 4))],
    ids=["4-GiB-vector", "3-GiB-of-samples", "12-GiB-over-the-cap"],
)
def test_stdin_npy_declaring_gigabytes_then_endless_zeros(rt, header):
    """A generator process writes the header, then zeros until the pipe closes."""
    writer = subprocess.Popen(npy_stream_writer(header), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        outcome = rt.run("run", sample(LSTM), "--input", "-", "--format", "npz", "-o", rt.out / "r.npz", stdin=writer.stdout)
    finally:
        writer.stdout.close()
        writer.kill()
        writer.wait()
    refused(outcome, "stdin")
    assert not list(rt.out.iterdir())


VARIABLE = "variable.keras"


@pytest.fixture
def variable_length(rt):
    return make_keras(rt.tmp / VARIABLE, config=_set(config_of(LSTM), 0, "batch_shape", [None, None, 4]))


@pytest.mark.parametrize(
    "options",
    [["--timesteps", "1000000000"], ["--batch", "1000000000"], ["--batch", "100000", "--timesteps", "100000"], ["--batch", str(1 << 62)]],
    ids=["timesteps-10^9", "batch-10^9", "product-10^10", "batch-2^62"],
)
def test_random_input_options_are_capped_before_allocating(rt, variable_length, options):
    runs = [["run", variable_length, *options, "--format", "npz", "-o", rt.out / "r.npz"]]
    if options[0] == "--timesteps":  # trace draws its random input the same way (one sample)
        runs.append(["trace", variable_length, "--timesteps", options[-1], "--format", "npz", "-o", rt.out / "t.npz"])
    for outcome in rt.run_many(runs):
        refused(outcome, "random input", code=2)
    assert not list(rt.out.iterdir())


def test_timesteps_on_a_fixed_length_model_allocate_nothing(rt):
    """--timesteps only shapes variable axes: a fixed-length model ignores 10^9."""
    succeeded(rt.run("run", sample(LSTM), "--timesteps", "1000000000", "--format", "json"))


# ---------------------------------------------------------------------------------------------
# faults


def _not_a_file(rt, kind) -> tuple[Path, str]:
    """(MODEL, what the error calls it): something that is no regular file and no folder."""
    if kind in ("fifo", "fifo-behind-a-symlink"):
        fifo = rt.tmp / "model.keras"
        os.mkfifo(fifo)
        if kind == "fifo":
            return fifo, "is a FIFO (named pipe)"
        (rt.tmp / "link.keras").symlink_to(fifo)
        return rt.tmp / "link.keras", "is a FIFO (named pipe)"
    if kind == "socket":
        path = rt.tmp / "model.h5"
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))  # the socket stays in the folder once closed
        return path, "is a socket"
    return Path(f"/dev/{kind}"), "is a character device"


@pytest.mark.parametrize("kind", ["fifo", "fifo-behind-a-symlink", "socket", "zero", "null"])
@pytest.mark.parametrize("convention", [[], ["--convention", "pytorch"]], ids=["model", "npz-with-convention"])
def test_a_model_that_is_no_regular_file(rt, kind, convention):
    """A FIFO as MODEL blocked `inspect` forever (issue 23), waiting for a writer; /dev/zero never
    ends. MODEL is a regular file or a folder, checked before it is opened: one line naming it."""
    model, said = _not_a_file(rt, kind)
    if not model.exists():
        pytest.skip(f"no {model}")
    refused(rt.run("inspect", model, *convention), model, said, "not a model file")


def test_a_fifo_as_input_is_read_as_cat_reads_it(rt):
    """--input from a FIFO (a shell's process substitution, `<(…)`) is a feature: read to its end."""
    fifo = rt.tmp / "x.npy"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(Path(X).read_bytes()))
    writer.start()
    shown = succeeded(rt.run("run", sample(LSTM), "--input", fifo, "--format", "json"))
    writer.join(TIMEOUT)
    assert np.asarray(json.loads(shown.stdout)["output"]).shape == (3, 3)


def test_two_runs_writing_the_same_output_at_once(rt):
    refs = []
    for seed in (1, 2):
        path = rt.out / f"ref{seed}.npz"
        succeeded(rt.run("run", sample(LSTM), "--seed", str(seed), "--batch", "512", "--format", "npz", "-o", path))
        with np.load(path) as data:
            refs.append(dict(data))
    target = rt.out / "same.npz"
    for _ in range(2):
        both = rt.run_many([["run", sample(LSTM), "--seed", str(seed), "--batch", "512", "--format", "npz", "-o", target] for seed in (1, 2)])
        for outcome in both:
            succeeded(outcome)
        with np.load(target) as data:
            got = dict(data)
        assert any(got.keys() == ref.keys() and all(np.array_equal(got[k], ref[k]) for k in ref) for ref in refs)
    assert sorted(p.name for p in rt.out.iterdir()) == ["ref1.npz", "ref2.npz", "same.npz"]


def _swapper(target: Path, versions: list, stop: threading.Event):
    """Rename each version over `target` in turn, as fast as possible (hard link, then rename)."""
    staging = target.with_name("staging")
    i = 0
    while not stop.is_set():
        os.link(versions[i % len(versions)], staging)
        os.replace(staging, target)
        i += 1


def test_model_replaced_while_it_is_read(rt):
    """A benign and a hostile file (a heap that makes HDF5 spin) renamed over the model path in
    turn: the pre-scan must check the very file HDF5 opened, not whatever the path names later."""
    good = copy_h5(rt.tmp / "good.h5")
    bad = heap_object_size(rt.tmp / "bad.h5", LEGACY, (1 << 64) - 16)
    target = rt.tmp / "model.h5"
    shutil.copy(good, target)
    stop = threading.Event()
    swapper = threading.Thread(target=_swapper, args=(target, [good, bad], stop), daemon=True)
    swapper.start()
    try:
        outcomes = rt.run_many([["inspect", target]] * 8, timeout=20)
    finally:
        stop.set()
        swapper.join()
    for outcome in outcomes:
        if outcome.code:
            refused(outcome, target)


def _tree(pid: int) -> list:
    """The process and its descendants (lstmctl reads HDF5 in a child process)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children") if Path(f"/proc/{p}/task").exists() else []:
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return out


def _read_bytes(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/io").read_text().splitlines():
                if line.startswith("rchar:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _maps(pid: int, path: Path) -> bool:
    for p in _tree(pid):
        try:
            if str(path) in Path(f"/proc/{p}/maps").read_text():
                return True
        except OSError:
            pass
    return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # removed between listing and looking
        return 0


def test_model_truncated_in_place_while_it_is_read(rt):
    """A 192 MiB legacy file cut to 1 MiB once lstmctl is reading it (it has mapped the file, or
    read 48 MiB of it): a memory map would die of SIGBUS; plain reads see the file end."""

    def edit(f):
        f.create_dataset("padding", data=np.random.default_rng(0).integers(0, 255, 192 << 20, dtype=np.uint8))

    model = copy_h5(rt.tmp / "big.h5", edit=edit)
    proc = start(["inspect", model])
    began = time.monotonic()
    baseline = None
    while proc.poll() is None and time.monotonic() - began < TIMEOUT:
        read = _read_bytes(proc.pid)
        baseline = read if baseline is None else baseline
        if _maps(proc.pid, model) or read - baseline > 48 << 20:
            os.truncate(model, 1 << 20)
            break
        time.sleep(0.0005)
    outcome = finish(proc, ["inspect", model], began)
    rt.outcomes.append(outcome)
    refused(outcome, model, "shrank")


@pytest.mark.parametrize("fortran", [False, True], ids=["C-order", "Fortran-order"])
def test_streamed_input_truncated_while_it_is_read(rt, fortran):
    x = np.random.default_rng(0).standard_normal((1 << 20, 6, 4), dtype=np.float32)
    path = rt.tmp / "x.npy"
    np.save(path, np.asfortranarray(x) if fortran else x)
    target = rt.out / "r.npz"
    args = ["run", sample(LSTM), "--input", path, "--chunk", "2048", "--format", "npz", "-o", target]
    proc = start(args)
    began = time.monotonic()
    while proc.poll() is None and time.monotonic() - began < TIMEOUT:
        if any(_size(p) > 1 << 20 for p in rt.out.glob(".lstmctl-*/*.npy")):
            os.truncate(path, path.stat().st_size // 2)
            break
        time.sleep(0.002)
    outcome = finish(proc, args, began)
    rt.outcomes.append(outcome)
    refused(outcome, path, "ended")
    assert not list(rt.out.iterdir())
