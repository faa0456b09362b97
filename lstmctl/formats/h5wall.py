"""HDF5 behind a wall: the C library reads an untrusted file in a forked child process.

The checks in lstmctl.formats.hdf5 block the HDF5 hangs and crashes found so far, but the library may
hold more. So the file is read in a child process, under an address-space limit and a time
limit, through those same checks: every group's members, the attributes lstmctl reads and every
dataset (optimizer state excepted) come back over a pipe as JSON and raw array bytes, never as
pickles. A child that crashes, hangs or runs out of memory becomes one error naming the file.
The parent never opens the file with HDF5 itself; `Snapshot` answers what `H5` answered.

On a platform without fork the file is read in this process, with the same checks.
"""

import faulthandler
import json
import os
import resource
import select
import signal
import struct
import time
import warnings

import numpy as np

from ..errors import LstmctlError, show
from .hdf5 import H5, MAX_ATTR_TOTAL, MAX_TOTAL_BYTES

#: the attributes lstmctl reads, on any group
ATTRIBUTES = ("keras_version", "backend", "model_config", "layer_names", "weight_names")
#: top-level groups never read: optimizer state (legacy `optimizer_weights`, Keras 3 `optimizer`)
SKIPPED = {"optimizer_weights", "optimizer"}
MAX_OBJECTS = 1 << 18  # groups and datasets walked in one file
MAX_DEPTH = 256  # groups within groups (Keras nests a few levels)
MAX_HEADER = MAX_ATTR_TOTAL + (64 << 20)  # the child's description: attributes, names, shapes
TIMEOUT = float(os.environ.get("LSTMCTL_HDF5_TIMEOUT", "120"))  # seconds for one file
MEMORY = 2 * MAX_TOTAL_BYTES + (1 << 30)  # address space the child may add to what it inherits
_CHUNK = 1 << 20


class Group:
    def __init__(self, addr: int, name: str, members: dict, attrs: dict, errors: dict):
        self.id, self.name, self._members, self.attrs = addr, name, members, attrs
        self.errors = errors  # member or attribute name -> the error reading it gave

    def keys(self):
        return list(self._members)


class Dataset:
    def __init__(self, addr: int, name: str, array: np.ndarray | None, error: str | None = None):
        self.id, self.name, self.array, self.error = addr, name, array, error


class Snapshot:
    """What a file's reading handed back: the same questions as `H5`, answered from memory. What
    could not be read raises its error only when asked for, as it did when read on demand."""

    def __init__(self, where: str, nodes: dict, root: int, nonfinite: list):
        self.where, self._nodes, self.nonfinite = where, nodes, nonfinite
        self.file = nodes[root]

    def get(self, path: str):
        node = self.file
        for part in [p for p in path.split("/") if p]:
            if part in (".", ".."):
                raise LstmctlError(f"{self.where}: path '{show(path)}' has a '{part}' component; refused")
            if not isinstance(node, Group):
                return None
            if f"member {part}" in node.errors:
                raise LstmctlError(node.errors[f"member {part}"])
            if part not in node._members:
                return None
            node = self._nodes[node._members[part]]
        return node

    def members(self, group) -> list[str]:
        bad = next((e for k, e in group.errors.items() if k.startswith("member ")), None)
        if bad is not None:
            raise LstmctlError(bad)
        return group.keys()

    def attr(self, obj, name: str, default=None):
        if not isinstance(obj, Group):
            return default
        if f"attribute {name}" in obj.errors:
            raise LstmctlError(obj.errors[f"attribute {name}"])
        return obj.attrs.get(name, default)

    def read(self, path: str) -> np.ndarray:
        ds = self.get(path)
        if not isinstance(ds, Dataset):
            raise LstmctlError(f"{self.where}: '{show(path)}' is not a dataset")
        return self.read_dataset(ds, path)

    def read_dataset(self, ds, path: str) -> np.ndarray:
        if ds.error is not None:
            raise LstmctlError(ds.error)
        return ds.array


# --- the child: walk the file through H5's checks --------------------------------------------


def _attr_value(value):
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return {"array": value.item(), "dtype": value.dtype.str, "shape": []}
    return {"value": value}


def _walk(h5: H5) -> tuple[dict, list]:
    """(description, arrays): every group's members and attributes, every dataset's array. An
    error confined to one member, attribute or dataset is kept for when that one is asked for."""
    import h5py

    nodes, arrays, offset = {}, [], 0
    root = h5py.h5o.get_info(h5.file.id).addr
    stack = [(h5.file, "", 0, None, None)]  # object, path, depth, parent's address, name in the parent
    while stack:
        obj, path, depth, parent, link = stack.pop()
        addr = h5py.h5o.get_info(obj.id).addr
        if addr in nodes:
            if "group" in nodes[addr]:  # a dataset may have several names; a group met twice is not a tree
                del nodes[parent]["members"][link]
                nodes[parent]["errors"][f"member {link}"] = _second_link(h5.where, path, nodes[addr]["group"])
            continue
        if len(nodes) >= MAX_OBJECTS:
            raise LstmctlError(f"{h5.where}: more than {MAX_OBJECTS} HDF5 objects; refused")
        if isinstance(obj, h5py.Dataset):
            try:
                array = h5.read_dataset(obj, path)
            except LstmctlError as exc:
                nodes[addr] = {"dataset": path, "error": str(exc)}
                continue
            nodes[addr] = {"dataset": path, "dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
            arrays.append(array)
            offset += array.nbytes
            continue
        if depth > MAX_DEPTH:
            raise LstmctlError(f"{h5.where}: groups nested more than {MAX_DEPTH} deep at '{show(path[:200])}…'; refused")
        members, attrs, errors = {}, {}, {}
        for name in h5.names(obj):
            if path == "" and name in SKIPPED:
                continue
            inner = f"{path}/{name}" if path else name
            try:
                child = h5._child(obj, name, inner)
            except LstmctlError as exc:
                errors[f"member {name}"] = str(exc)
                continue
            if child is not None:
                members[name] = h5py.h5o.get_info(child.id).addr
                stack.append((child, inner, depth + 1, addr, name))
        for name in ATTRIBUTES:
            try:
                value = h5.attr(obj, name)
            except LstmctlError as exc:
                errors[f"attribute {name}"] = str(exc)
                continue
            if value is not None:
                attrs[name] = _attr_value(value)
        nodes[addr] = {"group": path, "members": members, "attrs": attrs, "errors": errors}
    return {"root": root, "nodes": {str(k): v for k, v in nodes.items()}, "nonfinite": h5.nonfinite}, arrays


def _second_link(where: str, path: str, first: str) -> str:
    """Why the group at `path`, already walked as `first`, is refused: Keras writes a tree. A group
    inside itself would make every walk of the layers endless (`layers/sequential` linking back
    to the root); one named twice, a chain of them doubling at each level, exponential.

    The walk is depth first and records a group when it first meets it, so the groups `path` lies
    inside are recorded by then, at the paths that lead to it: `first` is one of them exactly when
    the link closes a loop."""
    if first == "" or path.startswith(f"{first}/"):
        return f"{where}: HDF5 group '{show(path)}' links back to '{show(first) or '/'}', a group it is inside (a loop); refused"
    return f"{where}: HDF5 group '{show(path)}' is the group already read at '{show(first)}' (a group linked twice); refused"


def _write_all(fd: int, data):
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view[:_CHUNK]) :]


def _child(source, where: str, fd: int):
    faulthandler.disable()  # a crash here is reported by the parent, as one line
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as fh:
            used = int(fh.read().split()[0]) * resource.getpagesize()
        limit = used + MEMORY
        if soft != resource.RLIM_INFINITY:
            limit = min(limit, soft)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):
        pass  # no /proc or no limit to set: the time limit still holds
    try:
        header, arrays = _walk(H5(source, where))
    except LstmctlError as exc:
        header, arrays = {"error": str(exc)}, []
    except MemoryError:
        header, arrays = {"error": f"{where}: reading it needs more memory than lstmctl allows an HDF5 file ({MEMORY >> 30} GiB); refused"}, []
    text = json.dumps(header).encode()
    _write_all(fd, struct.pack("<Q", len(text)) + text)
    for array in arrays:
        _write_all(fd, np.ascontiguousarray(array).data)


# --- the parent --------------------------------------------------------------------------------


class _Pipe:
    def __init__(self, fd: int, deadline: float, where: str):
        self.fd, self.deadline, self.where = fd, deadline, where

    def readinto(self, view: memoryview):
        while view:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError
            n = os.readv(self.fd, [view[:_CHUNK]])
            if n == 0:
                raise EOFError
            view = view[n:]


def _receive(pipe: _Pipe, where: str) -> Snapshot:
    head = bytearray(8)
    pipe.readinto(memoryview(head))
    (size,) = struct.unpack("<Q", head)
    if size > MAX_HEADER:
        raise EOFError
    text = bytearray(size)
    pipe.readinto(memoryview(text))
    header = json.loads(bytes(text))
    if "error" in header:
        raise LstmctlError(header["error"])
    described = header["nodes"]
    total = sum(_nbytes(n) for n in described.values() if "dtype" in n)
    blob = bytearray(total)
    pipe.readinto(memoryview(blob))
    return _snapshot(header, blob, where)


def _attr_from(encoded):
    if "value" in encoded:
        return encoded["value"]
    return np.array(encoded["array"], dtype=np.dtype(encoded["dtype"])).reshape(encoded["shape"])


def open_h5(source, where: str) -> Snapshot:
    """The file (a path or an in-memory file object) read behind the wall."""
    if not hasattr(os, "fork"):
        header, arrays = _walk(H5(source, where))
        return _snapshot(header, b"".join(np.ascontiguousarray(a).tobytes() for a in arrays), where)
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork from a threaded process: the child only reads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is the parent's tests
        code = 0
        try:
            os.close(read_fd)
            _child(source, where, write_fd)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        try:
            return _receive(_Pipe(read_fd, time.monotonic() + TIMEOUT, where), where)
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            raise LstmctlError(f"{where}: the HDF5 library did not finish reading it within {TIMEOUT:g} s; refused (set LSTMCTL_HDF5_TIMEOUT for a huge file)") from None
        except (EOFError, ValueError, KeyError, TypeError, RecursionError):
            _, status = os.waitpid(pid, 0)
            pid = 0
            raise LstmctlError(_failure(status, where)) from None
    except BaseException:
        if pid:
            os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(read_fd)
        if pid:
            os.waitpid(pid, 0)


def _failure(status: int, where: str) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        return f"{where}: the HDF5 library crashed reading it ({name}); refused"
    return f"{where}: reading it failed in the HDF5 library (exit status {os.WEXITSTATUS(status)}); refused"


def _nbytes(node) -> int:
    return int(np.prod(node["shape"], dtype=np.int64)) * np.dtype(node["dtype"]).itemsize


def _snapshot(header: dict, blob, where: str) -> Snapshot:
    nodes = {}
    for key, n in header["nodes"].items():
        addr = int(key)
        if "group" in n:
            attrs = {name: _attr_from(v) for name, v in n["attrs"].items()}
            nodes[addr] = Group(addr, n["group"], {k: int(v) for k, v in n["members"].items()}, attrs, n["errors"])
        elif "error" in n:
            nodes[addr] = Dataset(addr, n["dataset"], None, n["error"])
        else:
            count = int(np.prod(n["shape"], dtype=np.int64))
            array = np.frombuffer(blob, dtype=np.dtype(n["dtype"]), count=count, offset=n["offset"]).reshape(n["shape"])
            array.flags.writeable = False
            nodes[addr] = Dataset(addr, n["dataset"], array)
    return Snapshot(where, nodes, int(header["root"]), header["nonfinite"])
