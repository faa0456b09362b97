"""Fuzzing every reader with mutated real files: only lstmctl.LstmctlError may escape.

Each target mutates real sample files (bytes: bit flips, byte sets, interesting integers,
truncation, deletions, insertions, splices; structure: config.json / model_config values
re-serialised and re-zipped, HDF5 datasets and attributes changed with h5py on a copy;
TensorFlow checkpoints and SavedModel folders: one file of a copied folder mutated, beside its
unmodified companions, the checkpoint index's block CRCs sometimes recomputed) and feeds
the result to the reader, and whatever loads further on: `lstmctl.load` then inspect_facts, gates
and `run` on a small input; `lstmctl.arrays.inputs.load_arrays` then `run` of a sample model.
Four targets are about the world around the files: HDF5 groups hard-linked into loops and
diamonds; MODEL as a FIFO, a socket, a device or a symlink loop (or a model folder holding a FIFO);
each command's standard output a pipe whose reader closes it at some byte, where only exit 0
or 141 and no error line are allowed; and every path option of every command given a file the
command reads (by path, symbolic or hard link), a FIFO, a device or a folder, where no file read
may change.

Every example runs in a forked child under an address-space limit and a timeout
(LSTMCTL_FUZZ_TIMEOUT, 60 s): a hang or a crash inside a C library (HDF5) is reported as an escape
instead of stalling or killing the run.

The in-suite run is short and deterministic (derandomized). Deeper runs:

    LSTMCTL_FUZZ_EXAMPLES=2500 LSTMCTL_FUZZ_SEED=1 LSTMCTL_FUZZ_COLLECT=1 \\
        .venv/bin/python -m pytest -q tests/test_fuzz.py

LSTMCTL_FUZZ_EXAMPLES is the number of examples per target (there are 19 targets);
LSTMCTL_FUZZ_SEED switches to random generation from that seed; LSTMCTL_FUZZ_COLLECT=1 records
every escape (to fuzz-escapes.jsonl, and the file to fuzz-escapes/, in the current directory)
instead of stopping at the first; the summary line at the end gives cases tried, loaded and
escaped per target.
"""

import io
import json
import os
import resource
import select
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import lstmctl
import lstmctl.formats.crc32c
import lstmctl.runner
from lstmctl.analysis.describe import inspect_facts
from lstmctl.arrays.inputs import load_arrays
from conftest import MANIFEST, SAMPLES, sample
from test_hostile_tf import read_varint

EXAMPLES = int(os.environ.get("LSTMCTL_FUZZ_EXAMPLES", "50"))
SEED = os.environ.get("LSTMCTL_FUZZ_SEED")
COLLECT = bool(os.environ.get("LSTMCTL_FUZZ_COLLECT"))
FUZZ_TIMEOUT = float(os.environ.get("LSTMCTL_FUZZ_TIMEOUT", "60"))  # seconds per example
FUZZ_MEMORY = 2 << 30  # address space an example may add to the process's

KERAS = sorted(m["file"] for m in MANIFEST if m["file"].endswith(".keras"))
HDF5 = sorted(m["file"] for m in MANIFEST if m["file"].endswith(".h5"))
LEGACY = sorted(m["file"] for m in MANIFEST if m["format"] == "hdf5-model")
NPY = sample("k3_lstm_dense.input.npy")
LSTM = "k3_lstm_dense.keras"

TRIED = Counter()
LOADED = Counter()  # cases that got past the reader (and so reached the model builder or a run)
ESCAPES = Counter()
_WORK = Path(tempfile.mkdtemp(prefix="lstmctl-fuzz-"))


def fuzz_settings(f):
    f = settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=SEED is None,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )(f)
    return seed(int(SEED))(f) if SEED is not None else f


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    shutil.rmtree(_WORK, ignore_errors=True)
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is not None and capture is not None and TRIED:
        parts = ", ".join(f"{k} {TRIED[k]} tried / {LOADED[k]} loaded / {ESCAPES[k]} escaped" for k in sorted(TRIED))
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(f"lstmctl fuzz: {sum(TRIED.values())} cases, {sum(ESCAPES.values())} escapes ({parts})")


def _record(target, escape, blob):
    """An escape (anything but LstmctlError, a hang or a crash): a bug. Collect mode records it
    and goes on; otherwise the example fails and hypothesis shrinks it."""
    ESCAPES[target] += 1
    if not COLLECT:
        raise AssertionError(f"{target}: {escape['type']} escaped: {escape['message']} (at {', '.join(escape['where'])})")
    record = {"target": target, **escape}
    if blob is not None:
        folder = Path("fuzz-escapes")
        folder.mkdir(exist_ok=True)
        name = folder / f"{target}-{ESCAPES[target]}.bin"
        name.write_bytes(blob)
        record["file"] = str(name.resolve())
    with open("fuzz-escapes.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def _describe(exc) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)
    where = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames if "lstmctl" in f.filename][-3:]
    return {"type": type(exc).__name__, "message": str(exc)[:300], "where": where}


def _wrapped_memory_error(exc) -> bool:
    """Whether an exception was raised while handling a MemoryError (`from None` hides it from
    tracebacks, not from __context__)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _stage(escapes, action):
    """One stage in the child: True when it returned, False on LstmctlError or an escape.

    An LstmctlError made from a MemoryError is an escape too: a small fuzzed file that needs more
    than the child's memory limit got past a cap, and only the allocation failing stopped it.

    Underflow is ignored here (NumPy's default, unlike the suite's errstate): a fuzzed input of
    subnormal numbers underflows in any matrix product, and that is no error. Overflow and
    invalid operations still raise: outside the tests they would print warnings."""
    try:
        with np.errstate(all="raise", under="ignore"):
            action()
        return True
    except lstmctl.LstmctlError as exc:
        if _wrapped_memory_error(exc):
            escapes.append({**_describe(exc), "type": "MemoryError (as LstmctlError)"})
        return False
    except Exception as exc:  # noqa: BLE001 (the point: nothing else may escape)
        escapes.append(_describe(exc))
        return False


def _vm_size() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _isolated(body) -> dict:
    """Run body() (returning a JSON-able dict) in a forked child under an address-space limit and
    a timeout, so that a hang or a crash in a C library is a finding, not a stuck or dead run."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            vm = _vm_size()
            if vm:
                limit = vm + FUZZ_MEMORY
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            out = body()
        except BaseException as exc:  # noqa: BLE001
            out = {"loaded": False, "escapes": [_describe(exc)]}
            code = 1
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + FUZZ_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        ready = select.select([r], [], [], max(remaining, 0))[0] if remaining > 0 else []
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            return {"loaded": False, "escapes": [{"type": "Hang", "message": f"no result within {FUZZ_TIMEOUT} s", "where": []}]}
        data = os.read(r, 1 << 16)
        if not data:  # the child closed its end: it is exiting
            break
        chunks.append(data)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"loaded": False, "escapes": [{"type": "Crash", "message": f"killed by signal {os.WTERMSIG(status)}", "where": []}]}
    return json.loads(b"".join(chunks) or b'{"loaded": false, "escapes": [{"type": "NoResult", "message": "", "where": []}]}')


def _tally(target, outcome, blob):
    TRIED[target] += 1
    LOADED[target] += bool(outcome["loaded"])
    for escape in outcome["escapes"]:
        _record(target, escape, blob)


def exercise_model(target, path: Path, blob=None, **options):
    """load (with `options`, e.g. a convention); then each thing the CLI does with a model, each
    allowed to fail only our way."""

    def body():
        escapes = []
        holder = {}
        if not _stage(escapes, lambda: holder.__setitem__("m", lstmctl.load(path, **options))):
            return {"loaded": False, "escapes": escapes}
        model = holder["m"]
        _stage(escapes, lambda: inspect_facts(model))
        _stage(escapes, lambda: model.gates())
        if model.inputs:
            _stage(escapes, lambda: model.run())
        for layer in model.recurrent_layers()[:2]:
            side = layer.forward or layer
            cell = side.cell if side.cell is not None else side.cells[0].cell  # a stack (RNN over cells, MultiRNNCell): its first cell
            x = np.linspace(-2, 2, 2 * 3 * cell.input_dim, dtype=np.float32).reshape(2, 3, cell.input_dim)
            _stage(escapes, lambda: lstmctl.runner.run_layer(model, layer.name, x))
        return {"loaded": True, "escapes": escapes}

    try:
        _tally(target, _isolated(body), blob)
    finally:
        if path.parent == _WORK:
            path.unlink(missing_ok=True)


RUN_MODEL = lstmctl.load(sample(LSTM))


def exercise_input(target, path: Path, blob=None):
    """load_arrays; then a run of a sample model on what loaded."""

    def body():
        escapes = []
        holder = {}
        if not _stage(escapes, lambda: holder.__setitem__("x", load_arrays(str(path)))):
            return {"loaded": False, "escapes": escapes}
        x = holder["x"]
        _stage(escapes, lambda: RUN_MODEL.run(x))
        if isinstance(x, dict) and x:
            _stage(escapes, lambda: RUN_MODEL.run(next(iter(x.values()))))
        return {"loaded": True, "escapes": escapes}

    try:
        _tally(target, _isolated(body), blob)
    finally:
        if path.parent == _WORK:
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# mutation strategies

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2**63 - 1, 2**64 - 1, 16, 64, 4096]


@st.composite
def mutate_bytes(draw, data: bytes, max_ops=4):
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_ops))):
        if not buf:
            break
        op = draw(st.sampled_from(["flip", "set", "int", "truncate", "insert", "delete", "splice"]))
        # bias positions towards the start, where headers and metadata live
        if draw(st.booleans()):
            pos = draw(st.integers(0, min(len(buf), 2048) - 1))
        else:
            pos = draw(st.integers(0, len(buf) - 1))
        if op == "flip":
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            buf[pos] = draw(st.integers(0, 255))
        elif op == "int":
            size = draw(st.sampled_from([1, 2, 4, 8]))
            value = draw(st.sampled_from(INTERESTING)) % (1 << (8 * size))
            buf[pos : pos + size] = value.to_bytes(size, "little")
        elif op == "truncate":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif op == "delete":
            del buf[pos : pos + draw(st.integers(1, 64))]
        elif op == "splice":
            src = draw(st.integers(0, len(buf) - 1))
            length = draw(st.integers(1, 256))
            buf[pos : pos + length] = buf[src : src + length]
    return bytes(buf)


JSON_VALUES = st.one_of(
    st.sampled_from([
        None, True, False, 0, -1, 1, 2, 3, 7, 2**31, 2**63, 10**30, 0.5, -0.0, 1.5, 1e308,
        "", "x", "lstm", "dense", "tanh", "hard_sigmoid", "os.system", "float16", "int32", "concat", "LSTM",
        "Lambda", "Sequential", "Functional", "InputLayer", "__keras_tensor__", [], {}, [None], [None, 6, 4],
        [None, None, 4], ["lstm", 0, 0], {"class_name": "Lambda", "config": {"name": "l"}},
    ]),
    st.integers(-3, 40),
    st.text(max_size=8),
    st.lists(st.one_of(st.none(), st.integers(-2, 12)), max_size=4),
)


def _containers(node, path=()):
    """Every (path, container) in a JSON tree, containers only."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _containers(v, (*path, k))
    elif isinstance(node, list):
        yield path, node
        for i, v in enumerate(node):
            yield from _containers(v, (*path, i))


@st.composite
def mutate_json(draw, obj):
    """Structural edits of a parsed JSON document: set, delete, duplicate, graft, retype."""
    obj = json.loads(json.dumps(obj))
    for _ in range(draw(st.integers(1, 3))):
        containers = list(_containers(obj))
        _, node = draw(st.sampled_from(containers))
        if not node:
            continue
        key = draw(st.sampled_from(list(node.keys()) if isinstance(node, dict) else list(range(len(node)))))
        op = draw(st.sampled_from(["set", "set", "set", "delete", "duplicate", "graft", "wrap"]))
        if op == "set":
            node[key] = json.loads(json.dumps(draw(JSON_VALUES)))  # a copy: the pool's lists must stay as they are
        elif op == "delete":
            del node[key]
        elif op == "duplicate" and isinstance(node, list):
            node.insert(key, json.loads(json.dumps(node[key])))
        elif op == "graft":
            _, other = draw(st.sampled_from(containers))
            node[key] = json.loads(json.dumps(other)) if len(json.dumps(other)) < 20000 else None
        elif op == "wrap":
            node[key] = [node[key]]
    return obj


def _dump_json(draw, obj) -> bytes:
    text = json.dumps(obj, allow_nan=True)
    if draw(st.integers(0, 9)) == 0:  # sometimes a JSON trap at the text level
        trap = draw(st.sampled_from(["NaN", "Infinity", "1e999", "true", "-0", "18446744073709551617"]))
        text = text.replace("5", trap, 1)
    return text.encode()


def _keras_members(name):
    with zipfile.ZipFile(sample(name)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _fresh(suffix) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix, dir=_WORK)
    os.close(fd)
    return Path(name)


def _write(suffix, data: bytes) -> Path:
    path = _fresh(suffix)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------
# h5py edits on a copy


def _datasets(f):
    out = []
    f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Dataset) else None)
    return out


def _groups(f):
    out = [""]
    f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Group) else None)
    return out


SHAPES = st.lists(st.integers(0, 9), min_size=0, max_size=4).map(tuple)
DTYPES = st.sampled_from(["<f4", ">f4", "<f2", "<f8", "<i4", "<u1", "|b1", "S4", "<c8", [("a", "<f4")]])
ATTR_VALUES = st.one_of(
    JSON_VALUES.filter(lambda v: not isinstance(v, (dict, list)) and v is not None),
    st.just(np.array([], dtype=np.float64)),
    st.just(np.array(["lstm", "dense", "lstm"], dtype=h5py.string_dtype())),
    st.just(np.array(["../x", "", "/model_weights"], dtype=h5py.string_dtype())),
    st.just(np.arange(6).reshape(2, 3)),
    st.just(np.array([1.5, np.nan])),
)


@st.composite
def h5_edit(draw):
    """A function editing an open h5py.File copy; drawn before the file exists."""
    ops = draw(st.lists(st.sampled_from(["reshape", "retype", "delete", "rename", "attr", "names", "softlink", "extlink", "chunked", "fill", "config"]), min_size=1, max_size=3))
    picks = [draw(st.integers(0, 10**6)) for _ in ops]
    shapes = [draw(SHAPES) for _ in ops]
    dtypes = [draw(DTYPES) for _ in ops]
    attrs = [draw(ATTR_VALUES) for _ in ops]
    json_edit_seed = draw(st.integers(0, 2**32 - 1))

    def edit(f):
        rng = np.random.default_rng(json_edit_seed)
        for op, pick, shape, dtype, attr in zip(ops, picks, shapes, dtypes, attrs):
            try:
                _edit_one(f, rng, op, pick, shape, dtype, attr)
            except (ValueError, KeyError, TypeError, OSError, RuntimeError):
                pass  # an edit h5py itself refuses: the file stays as it was

    return edit


def _edit_one(f, rng, op, pick, shape, dtype, attr):
    """One h5py edit: a dataset reshaped, retyped, deleted, renamed, linked; attributes; model_config."""
    datasets, groups = _datasets(f), _groups(f)
    ds = datasets[pick % len(datasets)] if datasets else None
    group = groups[pick % len(groups)]
    target = f[group] if group else f
    if op in ("reshape", "retype", "fill", "chunked") and ds is not None:
        old = f[ds][()]
        del f[ds]
        if op == "reshape":
            data = np.resize(np.asarray(old, dtype=np.float64).ravel(), shape).astype(np.float32) if np.asarray(old).size else np.zeros(shape, np.float32)
            f.create_dataset(ds, data=data)
        elif op == "retype":
            try:
                data = np.zeros(np.shape(old), dtype=np.dtype(dtype))
            except TypeError:
                data = np.zeros(np.shape(old), np.float32)
            f.create_dataset(ds, data=data)
        elif op == "fill":
            big = tuple(int(d) * 1000 + 1 for d in np.shape(old)) or (1000,)
            f.create_dataset(ds, shape=big, dtype="<f4", fillvalue=float(rng.normal()))
        else:
            data = np.asarray(old)
            if data.ndim:
                f.create_dataset(ds, data=data, chunks=True, compression=str(rng.choice(["gzip", "lzf"])), shuffle=bool(rng.integers(2)))
            else:
                f.create_dataset(ds, data=data)
    elif op == "delete" and ds is not None:
        del f[ds]
    elif op == "rename" and ds is not None:
        f.move(ds, ds.rsplit("/", 1)[0] + "/" + str(rng.choice(["0", "9", "x", "01", "kernel:0", " 1"])) if "/" in ds else "renamed")
    elif op == "attr":
        key = str(rng.choice(["layer_names", "weight_names", "keras_version", "backend", "name"]))
        try:
            target.attrs[key] = attr
        except (TypeError, ValueError):
            pass
    elif op == "names":
        for key in ("layer_names", "weight_names"):
            if key in target.attrs:
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(target.attrs[key]).ravel().tolist()]
                if names:
                    rng.shuffle(names)
                    names = names[: int(rng.integers(0, len(names) + 2))] + names[: int(rng.integers(0, 2))]
                target.attrs[key] = np.array(names, dtype=h5py.string_dtype())
    elif op == "softlink" and ds is not None and datasets:
        other = datasets[(pick // 7) % len(datasets)]
        del f[ds]
        f[ds] = h5py.SoftLink("/" + other)
    elif op == "extlink" and ds is not None:
        del f[ds]
        f[ds] = h5py.ExternalLink(str(_WORK / "does-not-exist.h5"), "/x")
    elif op == "config" and "model_config" in f.attrs:
        config = json.loads(f.attrs["model_config"])
        containers = list(_containers(config))
        _, node = containers[int(rng.integers(len(containers)))]
        if node:
            keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
            node[keys[int(rng.integers(len(keys)))]] = [None, True, -1, 0, 2**40, "x", 1.5, []][int(rng.integers(8))]
        f.attrs["model_config"] = json.dumps(config)


# ---------------------------------------------------------------------------------------------
# targets: models


@fuzz_settings
@given(st.sampled_from(KERAS), st.data())
def test_fuzz_keras_zip_bytes(name, data):
    """Raw bytes of a .keras file."""
    blob = data.draw(mutate_bytes(Path(sample(name)).read_bytes()))
    exercise_model("keras-bytes", _write(".keras", blob), blob)


@fuzz_settings
@given(st.sampled_from(KERAS), st.data())
def test_fuzz_keras_config_json(name, data):
    """config.json edited as JSON, re-zipped with a valid directory."""
    members = _keras_members(name)
    config = json.loads(members["config.json"])
    members["config.json"] = _dump_json(data.draw, data.draw(mutate_json(config)))
    if data.draw(st.integers(0, 4)) == 0:
        members["metadata.json"] = _dump_json(data.draw, data.draw(mutate_json(json.loads(members["metadata.json"]))))
    blob = _zip(members)
    exercise_model("keras-config", _write(".keras", blob), blob)


@fuzz_settings
@given(st.sampled_from(KERAS), st.data())
def test_fuzz_keras_member_bytes(name, data):
    """Bytes of one member (weights HDF5, config, metadata), re-zipped with a valid CRC."""
    members = _keras_members(name)
    member = data.draw(st.sampled_from(sorted(members)))
    members[member] = data.draw(mutate_bytes(members[member]))
    blob = _zip(members)
    exercise_model("keras-member", _write(".keras", blob), blob)


@fuzz_settings
@given(st.sampled_from(KERAS), h5_edit())
def test_fuzz_keras_weights_structure(name, edit):
    """model.weights.h5 edited with h5py (shapes, dtypes, links, attributes), re-zipped."""
    members = _keras_members(name)
    h5 = _write(".h5", members["model.weights.h5"])
    with h5py.File(h5, "r+") as f:
        edit(f)
    members["model.weights.h5"] = h5.read_bytes()
    h5.unlink()
    blob = _zip(members)
    exercise_model("keras-weights", _write(".keras", blob), blob)


@fuzz_settings
@given(st.sampled_from(HDF5), st.data())
def test_fuzz_hdf5_bytes(name, data):
    """Raw bytes of legacy and weights-only HDF5 files."""
    blob = data.draw(mutate_bytes(Path(sample(name)).read_bytes()))
    exercise_model("h5-bytes", _write(".h5", blob), blob)


@fuzz_settings
@given(st.sampled_from(HDF5), h5_edit())
def test_fuzz_hdf5_structure(name, edit):
    """Legacy and weights-only HDF5 edited with h5py: datasets, attributes, links, model_config."""
    path = _fresh(".h5")
    shutil.copy(sample(name), path)
    with h5py.File(path, "r+") as f:
        edit(f)
    exercise_model("h5-structure", path, path.read_bytes())


@fuzz_settings
@given(st.sampled_from(LEGACY), st.data())
def test_fuzz_legacy_model_config(name, data):
    """A legacy file's model_config attribute edited as JSON."""
    path = _fresh(".h5")
    shutil.copy(sample(name), path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        f.attrs["model_config"] = _dump_json(data.draw, data.draw(mutate_json(config))).decode()
    exercise_model("h5-config", path, path.read_bytes())


# ---------------------------------------------------------------------------------------------
# targets: inputs


NPY_HEADER_VALUES = st.fixed_dictionaries(
    {
        "descr": st.one_of(st.sampled_from(["<f4", ">f4", "<f8", "<f2", "|u1", "<i8", "|b1", "<c8", "|O", "<U3", "|V4", "<M8[s]", "<f16", "zz"]), st.text(max_size=6)),
        "fortran_order": st.one_of(st.booleans(), st.integers(-1, 2), st.none()),
        "shape": st.one_of(
            st.lists(st.integers(-3, 8), max_size=4).map(tuple),
            st.lists(st.sampled_from([0, 1, 3, 6, 4, 2**31, 2**63, 2**70]), max_size=4).map(tuple),
            st.just((True, 6, 4)),
            st.just([3, 6, 4]),
        ),
    }
)


@st.composite
def npy_blob(draw):
    base = Path(NPY).read_bytes()
    kind = draw(st.sampled_from(["bytes", "header", "header-bytes"]))
    if kind == "bytes":
        return draw(mutate_bytes(base))
    header = repr(draw(NPY_HEADER_VALUES))
    if draw(st.integers(0, 5)) == 0:
        header = draw(mutate_bytes(header.encode("utf-8"), 2)).decode("utf-8", "replace")
    version = draw(st.sampled_from([1, 2, 3]))
    data = base[128:]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    h = (header + "\n").encode("utf-8")
    if version == 1:
        blob = b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + data
    else:
        blob = b"\x93NUMPY" + bytes([version, 0]) + len(h).to_bytes(4, "little") + h + data
    if kind == "header-bytes":
        blob = draw(mutate_bytes(blob, 2))
    return blob


@fuzz_settings
@given(npy_blob())
def test_fuzz_npy(blob):
    exercise_input("npy", _write(".npy", blob), blob)


@fuzz_settings
@given(st.lists(npy_blob(), min_size=1, max_size=3), st.data())
def test_fuzz_npz(members, data):
    names = data.draw(st.lists(st.sampled_from(["input_layer.npy", "x.npy", "h.npy", "../x.npy", "a", "input_layer.npy"]), min_size=len(members), max_size=len(members)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are part of the test
        for name, blob in zip(names, members):
            zf.writestr(name, blob)
    blob = buf.getvalue()
    if data.draw(st.booleans()):
        blob = data.draw(mutate_bytes(blob, 2))
    exercise_input("npz", _write(".npz", blob), blob)


CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-Infinity", "1e999", "0x10", "1_000", "true", "a", '"1"', "1,5", "\x00", "١"]),
)


@st.composite
def csv_text(draw):
    rows = draw(st.integers(0, 8))
    width = draw(st.integers(1, 6))
    lines = []
    for _ in range(rows):
        n = width if draw(st.integers(0, 5)) else draw(st.integers(0, 7))
        lines.append(",".join(draw(st.lists(CELLS, min_size=n, max_size=n))))
    text = "\n".join(lines)
    if draw(st.integers(0, 4)) == 0:
        text = draw(mutate_bytes(text.encode("utf-8", "surrogatepass"), 2)).decode("utf-8", "replace")
    return text


JSON_ARRAYS = st.recursive(
    st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(), st.text(max_size=3)),
    lambda children: st.lists(children, max_size=5),
    max_leaves=60,
)


@fuzz_settings
@given(st.data())
def test_fuzz_text_inputs(data):
    """.csv and .json inputs: generated text and mutated valid files."""
    if data.draw(st.booleans()):
        text = data.draw(csv_text())
        blob = text.encode("utf-8", "surrogatepass")
        exercise_input("csv-json", _write(".csv", blob), blob)
        return
    if data.draw(st.booleans()):
        blob = json.dumps(data.draw(JSON_ARRAYS)).encode()
    else:
        blob = json.dumps(np.load(NPY).tolist()).encode()
        blob = data.draw(mutate_bytes(blob, 3))
    exercise_input("csv-json", _write(".json", blob), blob)


# ---------------------------------------------------------------------------------------------
# targets: TensorFlow checkpoints and SavedModel folders (sample_models/tf/, written by TensorFlow)

TF = Path(sample("tf"))
TF1_FOLDERS = sorted(p.name for p in TF.glob("tf1_*") if p.is_dir())  # checkpoint + model.ckpt.*
TF2_PREFIXES = sorted(p.name.removesuffix(".index") for p in TF.glob("*.ckpt.index"))
SAVEDMODELS = sorted(p.name for p in TF.glob("*.savedmodel"))
_TABLE_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")


def _fix_table_crcs(blob: bytes) -> bytes:
    """A mutated checkpoint index with the CRCs of the blocks its footer and index block still
    point at recomputed, so the mutation reaches the table and entry parsing behind the CRCs.
    Best effort: whatever no longer parses is left as it is."""
    buf = bytearray(blob)

    def fix(offset, size):
        if offset + size + 5 > len(buf) - 48:
            raise ValueError
        crc = lstmctl.formats.crc32c.mask(lstmctl.formats.crc32c.value(bytes(buf[offset : offset + size + 1])))
        buf[offset + size + 1 : offset + size + 5] = crc.to_bytes(4, "little")
        return bytes(buf[offset : offset + size])

    try:
        if len(buf) < 48 or buf[-8:] != _TABLE_MAGIC:
            return blob
        tail = bytes(buf[-48:])
        _, pos = read_varint(tail, 0)  # the meta-index block's handle, then the index block's
        _, pos = read_varint(tail, pos)
        offset, pos = read_varint(tail, pos)
        size, _ = read_varint(tail, pos)
        index = fix(offset, size)
        restarts = int.from_bytes(index[-4:], "little")
        end, pos = len(index) - 4 - 4 * restarts, 0
        while 0 <= pos < end:  # the index block's entries: each value a data block's handle
            _, pos = read_varint(index, pos)  # shared
            unshared, pos = read_varint(index, pos)
            length, pos = read_varint(index, pos)
            pos += unshared
            handle = index[pos : pos + length]
            pos += length
            block_offset, at = read_varint(handle, 0)
            block_size, _ = read_varint(handle, at)
            fix(block_offset, block_size)
    except (ValueError, IndexError):
        pass
    return bytes(buf)


def _copy_folder(src: Path) -> tuple[Path, Path]:
    """A fresh copy of a fixture folder in the work folder: (its tmp parent, the copy)."""
    parent = Path(tempfile.mkdtemp(dir=_WORK))
    dst = parent / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.expected.npz"))
    return parent, dst


def _mutate_file(data, path: Path, index: bool) -> bytes:
    """Mutate one file of a copied checkpoint or SavedModel in place; the blob, for the record."""
    blob = data.draw(mutate_bytes(path.read_bytes()))
    if index and data.draw(st.booleans()):
        blob = _fix_table_crcs(blob)
    path.write_bytes(blob)
    return blob


def exercise_folder(target, parent: Path, model: Path, blob):
    try:
        exercise_model(target, model, blob)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@fuzz_settings
@given(st.sampled_from(TF1_FOLDERS), st.sampled_from(["model.ckpt.index", "model.ckpt.data-00000-of-00001"]), st.data())
def test_fuzz_tf1_checkpoint(name, member, data):
    """A TF1 Saver checkpoint folder: its .index or its data shard mutated; read as the folder."""
    parent, folder = _copy_folder(TF / name)
    blob = _mutate_file(data, folder / member, member.endswith(".index"))
    exercise_folder("tf1-checkpoint", parent, folder, blob)


@fuzz_settings
@given(st.sampled_from(TF2_PREFIXES), st.sampled_from([".index", ".data-00000-of-00001"]), st.data())
def test_fuzz_tf2_checkpoint(prefix, suffix, data):
    """A TF2 object-based checkpoint: its .index or its data shard (object graph) mutated."""
    parent = Path(tempfile.mkdtemp(dir=_WORK))
    for part in (".index", ".data-00000-of-00001"):
        shutil.copy(TF / f"{prefix}{part}", parent / f"{prefix}{part}")
    blob = _mutate_file(data, parent / f"{prefix}{suffix}", suffix == ".index")
    exercise_folder("tf2-checkpoint", parent, parent / prefix, blob)


@fuzz_settings
@given(st.sampled_from(SAVEDMODELS), st.sampled_from(["keras_metadata.pb", "keras_metadata.pb", "variables/variables.index"]), st.data())
def test_fuzz_savedmodel(name, member, data):
    """A SavedModel folder: keras_metadata.pb or variables/variables.index mutated."""
    parent, folder = _copy_folder(TF / name)
    if not (folder / member).exists():  # a SavedModel without Keras metadata (Keras 3's export)
        member = "variables/variables.index"
    blob = _mutate_file(data, folder / member, member.endswith(".index"))
    exercise_folder("savedmodel", parent, folder, blob)


PORTS = SAMPLES / "torch"
PORT_FILES = sorted(p.name for p in PORTS.iterdir() if p.suffix in (".pt", ".safetensors", ".onnx"))
TORCH_ZIPS = sorted(n for n in PORT_FILES if zipfile.is_zipfile(PORTS / n))


@fuzz_settings
@given(st.sampled_from(PORT_FILES), st.data())
def test_fuzz_port_bytes(name, data):
    """Raw bytes of a torch.save (zip or legacy), safetensors or ONNX file."""
    blob = data.draw(mutate_bytes((PORTS / name).read_bytes()))
    exercise_model("port-bytes", _write(Path(name).suffix, blob), blob)


@fuzz_settings
@given(st.sampled_from(TORCH_ZIPS), st.data())
def test_fuzz_torch_pickle(name, data):
    """The data.pkl of a torch.save zip mutated and the zip rebuilt around it: the allow-list unpickler and the storage checks."""
    with zipfile.ZipFile(PORTS / name) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    pkl = next(k for k in members if k.endswith("/data.pkl"))
    members[pkl] = data.draw(mutate_bytes(members[pkl]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for key, value in members.items():
            z.writestr(key, value)
    blob = out.getvalue()
    exercise_model("torch-pickle", _write(".pt", blob), blob)


# one level of nesting each: the opcodes that wrap what is on the stack in a new container
NESTERS = {"tuple1": (b"", b"\x85"), "tuple": (b"(", b"t"), "list": (b"(", b"l"), "frozenset": (b"(", b"\x91"), "dict-value": (b"}K\x01", b"s"), "list-append": (b"]", b"a")}


@fuzz_settings
@given(st.lists(st.sampled_from(sorted(NESTERS)), min_size=1, max_size=4), st.sampled_from([1, 150, 199, 200, 201, 5000, 10**5]), st.sampled_from(["key", "value", "set", "top"]))
def test_fuzz_pickle_nesting(kinds, depth, place):
    """Containers nested `depth` levels (the kinds in turn), as a dict key, a dict value, a set
    member or the whole pickle: refused by the depth budget or read, never a crash (Python's
    unpickler hashes a key or a member recursively, past the C stack)."""
    inner = b"K\x01"
    for level in range(depth):
        opening, closing = NESTERS[kinds[level % len(kinds)]]
        if opening == b"}K\x01" and place in ("key", "set"):
            opening, closing = b"(", b"t"  # a dict is no key
        inner = opening + inner + closing
    body = {"key": b"}" + inner + b"K\x01s", "value": b"}K\x01" + inner + b"s", "set": b"\x8f(" + inner + b"\x90", "top": inner}[place]
    blob = b"\x80\x04" + body + b"."
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", blob)
        z.writestr("archive/byteorder", b"little")
    exercise_model("pickle-nesting", _write(".pt", out.getvalue()), out.getvalue())


TFLITE = SAMPLES / "tflite"
TFLITE_FILES = ["k3_lstm.tflite", "k2_lstm.tflite", "k3_gru_quant.tflite", "k3_bidir.tflite", "k2_lstm_quant.tflite"]


@fuzz_settings
@given(st.sampled_from(TFLITE_FILES), st.data())
def test_fuzz_tflite_bytes(name, data):
    """Raw bytes of a .tflite file: FlatBuffer offsets, vector counts, tensor and subgraph indices,
    shapes, options and weights mutated (a WHILE's matched body checked again, or run op by op)."""
    blob = data.draw(mutate_bytes((TFLITE / name).read_bytes()))
    exercise_model("tflite-bytes", _write(".tflite", blob), blob)


def test_fuzz_tflite_target_reaches_the_reader():
    for name in TFLITE_FILES:
        exercise_model("sanity-tflite", TFLITE / name)
    assert LOADED["sanity-tflite"] == len(TFLITE_FILES) and ESCAPES["sanity-tflite"] == 0


def test_fuzz_port_targets_reach_the_readers():
    """The port targets' plumbing: each fixture kind loads and runs in the child."""
    for name in ("lstm2_bidir.pt", "gru_legacy.pt", "rnn_relu.safetensors", "gru_torchscript.onnx"):
        exercise_model("sanity-ports", PORTS / name)
    assert LOADED["sanity-ports"] == 4 and ESCAPES["sanity-ports"] == 0


LINK_NAMES = ["sequential", "functional_1", "layers", "cell", "vars", "loop"]  # names the readers walk into
LINKED = st.one_of(st.just("k3_lstm_dense.weights.h5"), st.just("k2_lstm_dense_weights.h5"), st.sampled_from([*HDF5, *KERAS]))


def _link_groups(draw, f):
    """Hard links from a group to a group (the root, its parent, itself, any), under names the
    readers walk into: loops, and groups named twice."""
    groups = _groups(f)
    walked = [g for g in groups if g.rpartition("/")[2] in ("layers", "model_weights")] or groups  # where nested models are looked for
    for _ in range(draw(st.integers(1, 3))):
        source = draw(st.one_of(st.sampled_from(walked), st.sampled_from(groups)))
        target = {"root": "", "parent": source.rpartition("/")[0], "self": source}.get(draw(st.sampled_from(["root", "parent", "self", "any"])))
        target = draw(st.sampled_from(groups)) if target is None else target
        holder, name = f[source] if source else f, draw(st.sampled_from(LINK_NAMES))
        if name not in holder:
            holder[name] = f[target or "/"]


@fuzz_settings
@given(LINKED, st.data())
def test_fuzz_hdf5_link_graphs(name, data):
    """HDF5 groups linked into loops and diamonds, in .h5 files and in a .keras's weights (issue 23:
    a .weights.h5 whose `layers/sequential` linked back ended in RecursionError)."""
    if name.endswith(".keras"):
        members = _keras_members(name)
        h5 = _write(".h5", members["model.weights.h5"])
        with h5py.File(h5, "r+") as f:
            _link_groups(data.draw, f)
        members["model.weights.h5"] = h5.read_bytes()
        h5.unlink()
        blob = _zip(members)
        exercise_model("h5-links", _write(".keras", blob), blob)
        return
    path = _fresh("".join(Path(name).suffixes))
    shutil.copy(sample(name), path)
    with h5py.File(path, "r+") as f:
        _link_groups(data.draw, f)
    exercise_model("h5-links", path, path.read_bytes())


NOT_FILES = ["fifo", "fifo-behind-a-symlink", "socket", "symlink-loop", "/dev/null", "/dev/zero", "fifo-as-savedmodel-member", "fifo-as-checkpoint-index"]


def _not_a_file(kind, suffix, folder: Path) -> Path:
    """MODEL as something that is no regular file (or a folder holding one where a file belongs)."""
    if kind.startswith("/dev/"):
        return Path(kind)
    path = folder / f"model{suffix}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "fifo-behind-a-symlink":
        os.mkfifo(folder / "target")
        path.symlink_to(folder / "target")
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
    elif kind == "symlink-loop":
        path.symlink_to(folder / "other")
        (folder / "other").symlink_to(path)
    elif kind == "fifo-as-savedmodel-member":
        path = folder / SAVEDMODELS[0]
        shutil.copytree(TF / SAVEDMODELS[0], path, ignore=shutil.ignore_patterns("*.expected.npz"))
        member = path / ("saved_model.pb" if suffix in (".keras", "") else "variables/variables.index" if suffix == ".h5" else "keras_metadata.pb")
        member.unlink(missing_ok=True)
        os.mkfifo(member)
    else:
        for part in (".index", ".data-00000-of-00001"):
            shutil.copy(TF / f"{TF2_PREFIXES[0]}{part}", folder / f"model{part}")
        (folder / "model.index").unlink()
        os.mkfifo(folder / "model.index")
        path = folder / ("model.index" if suffix == ".keras" else "model")
    return path


@fuzz_settings
@given(st.sampled_from(NOT_FILES), st.sampled_from([".keras", ".h5", ".weights.h5", ".npz", ""]), st.sampled_from([{}, {"convention": "pytorch"}]))
def test_fuzz_models_that_are_no_regular_file(kind, suffix, options):
    """A FIFO, a socket, a device, a symlink loop as MODEL, or as a file of a model folder: one
    LstmctlError, never a hang (issue 23: a FIFO as MODEL blocked inspect forever)."""
    parent = Path(tempfile.mkdtemp(dir=_WORK))
    try:
        exercise_model("not-a-file", _not_a_file(kind, suffix, parent), None, **options)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_fuzz_tf_targets_reach_the_readers():
    """The TF targets' plumbing: each fixture kind loads from its copy; a fixed-up index loads."""
    for src in (TF / "tf1_bidirectional_multi", TF / SAVEDMODELS[0]):  # a bidirectional stack of cells, a SavedModel
        parent, folder = _copy_folder(src)
        exercise_folder("sanity-tf", parent, folder, None)
    parent = Path(tempfile.mkdtemp(dir=_WORK))
    for part in (".index", ".data-00000-of-00001"):
        shutil.copy(TF / f"{TF2_PREFIXES[0]}{part}", parent / f"{TF2_PREFIXES[0]}{part}")
    index = parent / f"{TF2_PREFIXES[0]}.index"
    good = index.read_bytes()
    broken = bytearray(good)
    broken[-49] ^= 0xFF  # the index block's stored CRC
    assert _fix_table_crcs(bytes(broken)) == good
    exercise_folder("sanity-tf", parent, parent / TF2_PREFIXES[0], None)
    assert LOADED["sanity-tf"] == 3 and ESCAPES["sanity-tf"] == 0


def test_fuzz_harness_reaches_the_readers():
    """The harness itself: valid samples load and run in the child; a hang and a crash are findings."""
    exercise_model("sanity", Path(sample(LSTM)))
    exercise_input("sanity", Path(NPY))
    assert LOADED["sanity"] == 2 and ESCAPES["sanity"] == 0
    assert _isolated(lambda: {"loaded": True, "escapes": []}) == {"loaded": True, "escapes": []}

    def memory_error_made_ours():
        try:
            raise MemoryError
        except MemoryError:
            raise lstmctl.LstmctlError("x.keras: too large") from None

    escapes = []
    assert _stage(escapes, memory_error_made_ours) is False
    assert [e["type"] for e in escapes] == ["MemoryError (as LstmctlError)"]
    assert _stage(escapes, lambda: lstmctl.load("no-such-file.keras")) is False and len(escapes) == 1
    assert _isolated(lambda: os.kill(os.getpid(), signal.SIGKILL))["escapes"][0]["type"] == "Crash"


# ---------------------------------------------------------------------------------------------
# targets: outputs whose reader closed the pipe

MODEL = sample(LSTM)
BIG_INPUT = _WORK / "x3000.npy"  # 3000 samples: outputs far larger than a pipe's buffer
np.save(BIG_INPUT, np.random.default_rng(0).standard_normal((3000, 6, 4)).astype(np.float32))
PIPED = {  # every command's standard output, binary and text; {x} is a small or a big input
    "run-npy": ["run", MODEL, "--input", "{x}", "--format", "npy", "--key", "lstm/sequence"],
    "run-npz": ["run", MODEL, "--input", "{x}", "--format", "npz"],
    "run-npz-to-dev-stdout": ["run", MODEL, "--input", "{x}", "--format", "npz", "-o", "/dev/stdout"],
    "run-csv": ["run", MODEL, "--input", "{x}", "--format", "csv", "--key", "lstm/sequence"],
    "run-json": ["run", MODEL, "--input", "{x}", "--format", "json"],
    "run-table": ["run", MODEL, "--input", "{x}", "--return-sequences", "--full"],
    "inspect-table": ["inspect", MODEL, "--gate", "f", "--full"],
    "inspect-json": ["inspect", MODEL, "--format", "json"],
    "inspect-dot": ["inspect", MODEL, "--format", "dot"],
    "inspect-mermaid": ["inspect", MODEL, "--format", "mermaid"],
    "gates-npz": ["gates", MODEL, "--format", "npz", "-o", "-"],
    "trace-table": ["trace", MODEL, "--input", NPY, "--layer", "lstm"],
    "trace-json": ["trace", MODEL, "--input", NPY, "--layer", "lstm", "--format", "json"],
    "export-pytorch": ["export", MODEL, "--to", "pytorch", "-o", "-"],
    "report-html": ["report", MODEL, "--input", NPY, "-o", "-"],
}


def exercise_closed_pipe(args, read: int) -> dict:
    """The CLI (in the forked child, its standard output a pipe) while the reader takes `read`
    bytes and closes its end (0: closed before the first write). Allowed: exit 0 (everything fit
    before the close) or 141, and on stderr at most the notes a command gives after its output
    (export's); anything else is an escape."""
    from lstmctl.cli import main

    def body():
        r, w = os.pipe()
        os.dup2(w, 1)
        os.close(w)
        err = tempfile.TemporaryFile()
        os.dup2(err.fileno(), 2)
        import sys

        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True)
        if read:
            threading.Thread(target=lambda: (os.read(r, read), os.close(r)), daemon=True).start()
        else:
            os.close(r)
        escapes = []
        try:
            code = main.main(args=args, prog_name="lstmctl", standalone_mode=False) or 0
        except BaseException as exc:  # noqa: BLE001 (the point: nothing may escape the CLI)
            return {"loaded": True, "escapes": [_describe(exc)]}
        sys.stderr.flush()
        err.seek(0)
        said = err.read().decode("utf-8", "replace")
        if code not in ((141,) if not read else (0, 141)) or any(not line.startswith("lstmctl: note:") for line in said.splitlines()):
            escapes.append({"type": "ClosedPipe", "message": f"exit {code}, stderr {said[:300]!r}", "where": []})
        return {"loaded": True, "escapes": escapes}

    return _isolated(body)


@fuzz_settings
@given(st.sampled_from(sorted(PIPED)), st.sampled_from([NPY, str(BIG_INPUT)]), st.sampled_from([0, 1, 100, 65536, 300000]))
def test_fuzz_closed_pipes(command, x, read):
    """Standard output's reader closes the pipe at some byte: quiet, exit 141 (issue 23: run
    --format npy | head -c 10 and inspect --format json | head -c 1 ended in BrokenPipeError)."""
    args = [a.format(x=x) for a in PIPED[command]]
    _tally("closed-pipes", exercise_closed_pipe(args, read), None)


# ---------------------------------------------------------------------------------------------
# targets: the paths a command is given (issue 27)

PATH_COMMANDS = {  # {m} MODEL, {x} --input, {s} a state file; {o}, {p} the outputs, {q} another path option
    "run-o": ["run", "{m}", "--input", "{x}", "--format", "npz", "-o", "{o}", "--state-out", "{p}"],
    "run-state": ["run", "{m}", "--input", "{x}", "--state-in", "{q}", "--state-out", "{o}"],
    "run-expect": ["run", "{m}", "--input", "{x}", "--expect", "{q}", "-o", "{o}", "--format", "npz"],
    "run-initial-state": ["run", "{m}", "--input", "{x}", "--layer", "lstm", "--initial-state", "{q}", "-o", "{o}", "--format", "npz"],
    "run-chunked": ["run", "{m}", "--input", "{x}", "--chunk", "1", "-o", "{o}", "--format", "npz"],
    "gates": ["gates", "{m}", "-o", "{o}"],
    "export": ["export", "{m}", "--to", "pytorch", "-o", "{o}"],
    "report": ["report", "{m}", "--input", "{x}", "-o", "{o}"],
    "trace": ["trace", "{m}", "--input", "{x}", "--format", "npz", "-o", "{o}", "--svg", "{p}"],
    "diagnose": ["diagnose", "{m}", "--input", "{x}", "--outputs", "{q}"],
    "compare": ["compare", "{q}", "{s}"],
}
# what each placeholder may name: one of the files the command reads, a link to one, a new path, or
# something that is no regular file (a FIFO only where nothing would wait on it: not --input, not an output)
READ_FILES = ["model", "input", "state"]
PATH_KINDS = {
    "m": ["model", "model-symlink", "model-hardlink", "folder", "/dev/zero"],
    "x": ["input", "input-symlink", "input-hardlink", "state", "/dev/zero", "folder"],
    "s": ["state", "input"],
    "o": ["new", "model", "input", "state", "model-symlink", "input-hardlink", "state-hardlink", "/dev/null", "folder"],
    "p": ["new2", "model", "input", "state", "input-symlink", "/dev/null"],
    "q": ["state", "input", "model", "fifo", "fifo-symlink", "/dev/zero", "folder", "state-symlink"],
}


def _path_of(kind: str, folder: Path) -> str:
    """The path `kind` names inside `folder`, made if it is a link, a FIFO or a folder."""
    if kind.startswith("/dev/"):
        return kind
    files = {"model": folder / "m.keras", "input": folder / "x.npy", "state": folder / "s.npz"}
    if kind in files:
        return str(files[kind])
    if kind in ("new", "new2"):
        return str(folder / f"{kind}.npz")
    path = folder / f"{kind}.npz"
    if not os.path.lexists(path):
        if kind == "folder":
            path.mkdir()
        elif kind.startswith("fifo"):
            if not (folder / "fifo.npz").exists():
                os.mkfifo(folder / "fifo.npz")
            if kind == "fifo-symlink":
                path.symlink_to(folder / "fifo.npz")
            else:
                path = folder / "fifo.npz"
        else:
            name, how = kind.rsplit("-", 1)
            (path.symlink_to if how == "symlink" else path.hardlink_to)(files[name])
    return str(path)


def exercise_paths(args) -> dict:
    """The CLI in the forked child, its standard streams files: exit 0 to 3, at most one error line
    and no "unexpected" one (a click usage message, exit 2, may take several)."""
    from lstmctl.cli import main

    def body():
        import click

        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        import sys

        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True)
        try:
            code = main.main(args=args, prog_name="lstmctl", standalone_mode=False) or 0
        except click.ClickException as exc:
            code = exc.exit_code
        except BaseException as exc:  # noqa: BLE001 (the point: nothing else may escape the CLI)
            return {"loaded": True, "escapes": [_describe(exc)]}
        sys.stderr.flush()
        err.seek(0)
        said = err.read().decode("utf-8", "replace")
        errors = [line for line in said.splitlines() if line.startswith("lstmctl: error:")]
        if code not in (0, 1, 2, 3) or len(errors) > 1 or "unexpected" in said or (code == 3 and len(errors) != 1):
            return {"loaded": True, "escapes": [{"type": "Paths", "message": f"exit {code}, stderr {said[:300]!r}", "where": []}]}
        return {"loaded": code == 0, "escapes": []}

    return _isolated(body)


@fuzz_settings
@given(st.sampled_from(sorted(PATH_COMMANDS)), st.data())
def test_fuzz_paths(command, data):
    """Outputs naming the files a command reads (by path, symbolic or hard link), and FIFOs, devices
    and folders as every path option: exit 0-3 with at most one error line, never a hang, and no file
    the command reads changed (but --state-in's by --state-out, which is the point), nothing left behind."""
    folder = Path(tempfile.mkdtemp(dir=_WORK))
    try:
        shutil.copy(MODEL, folder / "m.keras")
        shutil.copy(NPY, folder / "x.npy")
        np.savez(folder / "s.npz", **lstmctl.load(folder / "m.keras").run(np.load(NPY), state={}).state.arrays())  # what --state-out writes
        chosen = {key: data.draw(st.sampled_from(kinds), label=key) for key, kinds in PATH_KINDS.items() if "{" + key + "}" in " ".join(PATH_COMMANDS[command])}
        args = [a.format(**{k: _path_of(v, folder) for k, v in chosen.items()}) for a in PATH_COMMANDS[command]]
        before = {name: (folder / name).read_bytes() for name in ("m.keras", "x.npy", "s.npz")}
        _tally("paths", exercise_paths(args), None)
        read = {{"model": "m.keras", "input": "x.npy", "state": "s.npz"}.get(kind.split("-")[0]) for key, kind in chosen.items() if key in "mxsq"}
        if command == "run-state" and chosen["q"].startswith("state") and chosen["o"].startswith("state"):
            read.discard("s.npz")  # --state-in replaced by --state-out: the point of running in pieces
        changed = [name for name, blob in before.items() if name in read and (folder / name).read_bytes() != blob]
        if changed or list(folder.glob(".lstmctl-*")):
            _record("paths", {"type": "InputChanged", "message": f"{args}: {changed or 'temporary files left'}", "where": []}, None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# ONNX graphs: op shapes and field types

ONNX_FIXTURES = sorted(n for n in PORT_FILES if n.endswith(".onnx"))
ONNX_OPS = sorted(__import__("lstmctl.layers.onnx", fromlist=["OPS"]).OPS)
ONNX_SIZES = st.one_of(st.integers(-3, 9), st.sampled_from([1 << 13, 1 << 20, 1 << 31, 1 << 40, 2**63 - 1, -(2**63)]))
ONNX_ATTRIBUTES = {
    "axis": st.integers(-6, 6), "axes": st.lists(st.integers(-6, 6), max_size=4), "perm": st.lists(st.integers(-1, 5), max_size=5),
    "starts": st.lists(ONNX_SIZES, max_size=3), "ends": st.lists(ONNX_SIZES, max_size=3), "keepdims": st.integers(-1, 2), "to": st.integers(-1, 17),
    "alpha": st.floats(-3, 3), "beta": st.floats(-3, 3), "transA": st.integers(0, 1), "transB": st.integers(0, 1), "allowzero": st.integers(0, 1),
    "split": st.lists(st.integers(-1, 5), max_size=3), "start": st.integers(-5, 5), "end": st.integers(-5, 5),
}  # fmt: skip


@st.composite
def onnx_op_graph(draw):
    """An LSTM whose Y_h [1, batch, 3] feeds one op of lstmctl.oplib, with constant inputs of drawn
    shapes and values (sizes and indices from tiny to 2**63) and drawn attributes of the right kinds."""
    from portwire import field, node, onnx_model, onnx_tensor, value_info
    from test_hostile_onnx import ints, raw_node

    op = draw(st.sampled_from(ONNX_OPS))
    constants, names = [], ["Y_h"]
    for k in range(draw(st.integers(0, 3))):
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        if draw(st.booleans()):
            values = np.array(draw(st.lists(ONNX_SIZES, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))), np.int64).reshape(shape)
        else:
            values = np.array(draw(st.lists(st.floats(-4, 4, width=32), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))), np.float32).reshape(shape)
        constants.append(onnx_tensor(f"k{k}", values))
        names.append(draw(st.sampled_from([f"k{k}", "", "Y", "X"])))
    attributes = []
    for name in draw(st.lists(st.sampled_from(sorted(ONNX_ATTRIBUTES)), max_size=3, unique=True)):
        value = draw(ONNX_ATTRIBUTES[name])
        if isinstance(value, list):
            attributes.append(ints(name, value))
        elif isinstance(value, float):
            attributes.append(field(1, name) + field(2, value) + field(20, 1))
        else:
            attributes.append(field(1, name) + field(3, value) + field(20, 2))
    r = np.random.default_rng(1)
    weights = [onnx_tensor("W", r.normal(size=(1, 12, 2)).astype(np.float32)), onnx_tensor("R", r.normal(size=(1, 12, 3)).astype(np.float32))]
    nodes = [node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], name="lstm", hidden_size=3), raw_node(op, names, ["Z"], "op", *attributes)]
    return onnx_model(nodes, [value_info("X", ["t", "b", 2])], [value_info("Z", [])], weights + constants, opset=draw(st.sampled_from([9, 11, 13])))


@fuzz_settings
@given(onnx_op_graph())
def test_fuzz_onnx_op_shapes(blob):
    """One op of the graph runner on drawn shapes, values and attributes: refused in one line within
    the budget, never a NumPy exception, a hang or a blown memory limit."""
    exercise_model("onnx-op-shapes", _write(".onnx", blob), blob)


def _proto_fields(data: bytes, depth=0):
    """A protobuf message as [number, wire, value] (value a nested list where a length-delimited
    field parses as a message), or None where the bytes are no message."""
    out, pos = [], 0
    try:
        while pos < len(data):
            key, pos = read_varint(data, pos)
            number, wire = key >> 3, key & 7
            if number == 0 or wire not in (0, 1, 2, 5):
                return None
            if wire == 0:
                value, pos = read_varint(data, pos)
            elif wire == 2:
                size, pos = read_varint(data, pos)
                if pos + size > len(data):
                    return None
                value = data[pos : pos + size]
                pos += size
                nested = _proto_fields(value, depth + 1) if depth < 6 and 0 < size < 1 << 14 else None
                value = nested if nested else value
            else:
                size = 8 if wire == 1 else 4
                if pos + size > len(data):
                    return None
                value = data[pos : pos + size]
                pos += size
            out.append([number, wire, value])
    except (IndexError, ValueError):
        return None
    return out


def _proto_bytes(fields) -> bytes:
    from portwire import varint

    out = bytearray()
    for number, wire, value in fields:
        out += varint(number << 3 | wire)
        if wire == 0:
            out += varint(value)
        elif wire == 2:
            data = _proto_bytes(value) if isinstance(value, list) else value
            out += varint(len(data)) + data
        else:
            out += value
    return bytes(out)


def _all_fields(fields, found=None):
    found = [] if found is None else found
    for f in fields:
        found.append(f)
        if isinstance(f[2], list):
            _all_fields(f[2], found)
    return found


@st.composite
def onnx_field_types(draw, data: bytes):
    """An ONNX file with 1-3 fields anywhere in its message tree given another wire type or value:
    a string as a varint, an int as bytes, a float as a huge varint, a count as 2**63, a name as
    control characters, a message emptied, a field repeated."""
    fields = _proto_fields(data)
    every = _all_fields(fields)
    for _ in range(draw(st.integers(1, 3))):
        f = every[draw(st.integers(0, len(every) - 1))]
        kind = draw(st.sampled_from(["varint", "bytes", "fixed32", "fixed64", "huge", "negative", "text", "empty", "repeat"]))
        if kind == "varint":
            f[1], f[2] = 0, draw(st.sampled_from(INTERESTING))
        elif kind == "bytes":
            f[1], f[2] = 2, draw(st.binary(max_size=12))
        elif kind in ("fixed32", "fixed64"):
            f[1], f[2] = (5, draw(st.binary(min_size=4, max_size=4))) if kind == "fixed32" else (1, draw(st.binary(min_size=8, max_size=8)))
        elif kind in ("huge", "negative"):
            f[1], f[2] = 0, (2**64 - 1 - draw(st.integers(0, 3))) if kind == "negative" else draw(st.sampled_from([1 << 31, 1 << 40, 2**63 - 1]))
        elif kind == "text":
            f[1], f[2] = 2, draw(st.sampled_from(["\x1b[2J", "a/b@c", "", "input", "Y_h", "x" * 300, "\udcff"])).encode("utf-8", "surrogatepass")
        elif kind == "empty":
            f[1], f[2] = 2, b""
        else:
            f[2] = f[2] if not isinstance(f[2], list) else [*f[2], *f[2]]
    return _proto_bytes(fields)


@fuzz_settings
@given(st.sampled_from(ONNX_FIXTURES), st.data())
def test_fuzz_onnx_field_types(name, data):
    """Fields of real ONNX files (torch, tf2onnx, keras2onnx-style, hand-built) with the wrong wire type or value."""
    blob = data.draw(onnx_field_types((PORTS / name).read_bytes()))
    exercise_model("onnx-field-types", _write(".onnx", blob), blob)
