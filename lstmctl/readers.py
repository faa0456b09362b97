"""Reading saved Keras files: format by magic bytes, the .keras zip, legacy and weights-only HDF5.

A reader returns a `Saved`: the format, the saving Keras version and backend, the model config
as plain JSON data (or None for weights-only files), and a weight store that hands out each
layer's arrays in Keras's `get_weights()` order. Nothing from the file is imported or evaluated.
"""

import abc
import io
import os
import stat
import struct
import zipfile
from dataclasses import dataclass, field

import numpy as np

from . import safejson
from .errors import LstmctlError
from .h5wall import Group, Snapshot, open_h5
from .hdf5 import show

MAGIC_HDF5 = b"\x89HDF\r\n\x1a\n"
MAGIC_ZIP = b"PK\x03\x04"
MAGIC_NPY = b"\x93NUMPY"

MAX_MEMBER_BYTES = 2 << 30  # model.weights.h5 inside a .keras zip
MAX_CONFIG_BYTES = safejson.MAX_JSON_BYTES
MAX_METADATA_BYTES = 1 << 20
MAX_ZIP_RATIO = 200  # uncompressed / compressed, for members over 1 MiB
_CHUNK = 1 << 20


def sniff(path: str) -> str:
    """'hdf5', 'zip' or 'npy' from the file's first bytes; errors for anything else."""
    if os.path.isdir(path):
        raise LstmctlError(f"{path}: is a directory, not a model file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise LstmctlError(f"{path}: no such file") from None
    except OSError as exc:
        raise LstmctlError(f"{path}: cannot be read ({exc.strerror})") from None
    if not head:
        raise LstmctlError(f"{path}: file is empty")
    if head.startswith(MAGIC_HDF5):
        return "hdf5"
    if head.startswith(MAGIC_ZIP):
        return "zip"
    if head.startswith(MAGIC_NPY):
        return "npy"
    raise LstmctlError(f"{path}: not a Keras model file (neither HDF5 nor a .keras zip)")


@dataclass
class Saved:
    path: str
    format: str  # keras-zip | hdf5-model | hdf5-weights | keras-weights
    keras_version: str | None
    backend: str | None
    config: dict | None
    store: "WeightStore"
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# .keras zip


def check_method(info: zipfile.ZipInfo, where: str):
    """Only stored and deflated members: Python inflates those in bounded steps, while one bzip2 or
    LZMA step can expand a few hundred bytes to gigabytes before any cap is checked."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise LstmctlError(f"{where} is compressed with method {info.compress_type}; only stored and deflate members are read")


def _zip_member(zf: zipfile.ZipFile, name: str, cap: int, where: str, sink=None):
    """A member's bytes (or written into `sink`), read in bounded chunks with a running cap.

    Refused before reading: a declared size over `cap`, or an expansion ratio of a zip bomb.
    Refused while reading: more data than declared, or a real expansion over the ratio."""
    info = zf.getinfo(name)
    shown = show(name)
    check_method(info, f"{where}: member '{shown}'")
    if info.file_size > cap:
        raise LstmctlError(f"{where}: member '{shown}' declares {info.file_size} bytes, over the {cap}-byte cap")
    compressed = max(info.compress_size, 1)
    if info.file_size > _CHUNK and info.file_size > MAX_ZIP_RATIO * compressed:
        raise LstmctlError(f"{where}: member '{shown}' expands {info.file_size // compressed}x; refused as a zip bomb")
    out = sink if sink is not None else io.BytesIO()
    total = 0
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > info.file_size or total > cap:
                    raise LstmctlError(f"{where}: member '{shown}' holds more data than its header declares; refused")
                if total > _CHUNK and total > MAX_ZIP_RATIO * compressed:
                    raise LstmctlError(f"{where}: member '{shown}' expands over {MAX_ZIP_RATIO}x; refused as a zip bomb")
                out.write(chunk)
    except LstmctlError:
        raise
    except Exception as exc:
        raise LstmctlError(f"{where}: member '{shown}' is corrupt or truncated ({type(exc).__name__}: {show(exc)[:100]})") from None
    if total != info.file_size:
        raise LstmctlError(f"{where}: member '{shown}' holds {total} bytes, its header declares {info.file_size}")
    if sink is not None:
        return sink
    return out.getvalue()


def check_names(zf: zipfile.ZipFile, where: str):
    """Member names that stay inside the archive, each once, none a symbolic link: nothing is
    extracted, but Keras's own extraction would follow a link or a '..' out of its folder."""
    seen = set()
    for info in zf.infolist():
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":") or "\0" in name:
            raise LstmctlError(f"{where}: zip member name '{show(name)}' escapes the archive; refused")
        if name in seen:
            raise LstmctlError(f"{where}: zip member '{show(name)}' appears twice; refused")
        if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
            raise LstmctlError(f"{where}: zip member '{show(name)}' is a symbolic link; refused")
        seen.add(name)


MAX_CENTRAL_DIRECTORY = 1 << 20  # bytes of zip directory (about 20000 members; a .keras has 3)
_EOCD, _EOCD64, _LOCATOR64 = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"


def _directory_size(fh) -> int:
    """The central directory size a zip's end records declare (the largest reading, zip64 too)."""
    end = fh.seek(0, 2)
    fh.seek(max(0, end - (22 + 0xFFFF + 20)))  # end record, its comment, the zip64 locator
    tail = fh.read()
    at = len(tail) - 22  # as zipfile looks: an end record without a comment first, then the last one
    if at < 0 or tail[at : at + 4] != _EOCD or tail[-2:] != b"\0\0":
        at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        return 0  # not a zip: zipfile says so
    sizes = [struct.unpack_from("<I", tail, at + 12)[0]]
    if at >= 20 and tail[at - 20 : at - 16] == _LOCATOR64:
        # Python reads the zip64 record just before the locator (3.11) or where it points (later)
        for offset in (end - len(tail) + at - 20 - 56, struct.unpack_from("<Q", tail, at - 12)[0]):
            fh.seek(max(0, offset))
            record = fh.read(56)
            if len(record) == 56 and record[:4] == _EOCD64:
                sizes.append(struct.unpack_from("<Q", record, 40)[0])
    return max(sizes)


def open_zip(source, where: str) -> zipfile.ZipFile:
    """A zip archive (path or file object), its directory size checked first: Python's zipfile
    reads every directory entry into memory before anything else can be looked at."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                size = _directory_size(fh)
        else:
            size = _directory_size(source)
            source.seek(0)
    except OSError as exc:
        raise LstmctlError(f"{where}: cannot be read ({exc.strerror})") from None
    if size > MAX_CENTRAL_DIRECTORY:
        raise LstmctlError(f"{where}: zip central directory of {size} bytes is over the {MAX_CENTRAL_DIRECTORY}-byte cap; refused")
    try:
        return zipfile.ZipFile(source)
    except Exception:
        raise LstmctlError(f"{where}: not a readable zip archive (truncated or corrupt)") from None


def read_keras_zip(path: str) -> Saved:
    zf = open_zip(path, path)
    with zf:
        check_names(zf, path)
        names = set(zf.namelist())
        if "config.json" not in names:
            raise LstmctlError(f"{path}: zip has no config.json; not a .keras model")
        config = safejson.loads(_zip_member(zf, "config.json", MAX_CONFIG_BYTES, path), f"{path}: config.json")
        metadata = {}
        if "metadata.json" in names:
            metadata = safejson.loads(_zip_member(zf, "metadata.json", MAX_METADATA_BYTES, path), f"{path}: metadata.json")
        if "model.weights.h5" in names:
            blob = _zip_member(zf, "model.weights.h5", MAX_MEMBER_BYTES, path, sink=io.BytesIO())
            blob.seek(0)
            h5 = open_h5(blob, f"{path}: model.weights.h5")
        elif "model.weights.npz" in names:
            raise LstmctlError(f"{path}: weights stored as model.weights.npz are not supported")
        else:
            h5 = None
    if not isinstance(config, dict):
        raise LstmctlError(f"{path}: config.json is not a JSON object")
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    store = KerasV3Store(h5, path) if h5 is not None else EmptyStore(path)
    return Saved(path, "keras-zip", _version(version, f"{path}: metadata.json"), None, config, store)


# ---------------------------------------------------------------------------------------------
# HDF5: full legacy model, Keras 2 save_weights, Keras 3 .weights.h5


def read_hdf5(path: str) -> Saved:
    h5 = open_h5(path, path)
    root = h5.file
    version = _version(h5.attr(root, "keras_version"), f"{path}: attribute keras_version")
    backend = _version(h5.attr(root, "backend"), f"{path}: attribute backend")
    model_config = h5.attr(root, "model_config")
    if model_config is not None:
        config = safejson.loads(model_config, f"{path}: model_config")
        group = h5.get("model_weights")
        if not isinstance(group, Group):
            raise LstmctlError(f"{path}: has a model_config but no model_weights group")
        version = version or _version(h5.attr(group, "keras_version"), f"{path}: model_weights attribute keras_version")
        backend = backend or _version(h5.attr(group, "backend"), f"{path}: model_weights attribute backend")
        return Saved(path, "hdf5-model", version, backend, config, LegacyStore(h5, "model_weights", path))
    if h5.attr(root, "layer_names") is not None:
        return Saved(path, "hdf5-weights", version, backend, None, LegacyStore(h5, "", path))
    if h5.get("layers") is not None or h5.get("vars") is not None:
        store = KerasV3Store(h5, path)
        notes = ["group names use Windows backslashes (the file was written on Windows); read as Keras's '/' paths"] if store.windows else []
        return Saved(path, "keras-weights", version, backend, None, store, notes)
    raise LstmctlError(f"{path}: HDF5 file holds no Keras model or weights")


def read(path: str) -> Saved:
    kind = sniff(path)
    if kind == "zip":
        return read_keras_zip(path)
    if kind == "hdf5":
        return read_hdf5(path)
    raise LstmctlError(f"{path}: is a NumPy array file, not a model")


def _version(value, where):
    """A version or backend string; numbers are accepted as Keras 1 wrote some, nothing else."""
    if value is None:
        return None
    if isinstance(value, (bytes, np.bytes_)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, (np.integer, np.floating)) and not isinstance(value, np.bool_):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise LstmctlError(f"{where} is not a version string")
    value = show(str(value))
    if len(value) > 100:
        raise LstmctlError(f"{where} is not a version string (too long)")
    return value


# ---------------------------------------------------------------------------------------------
# Weight stores


class WeightStore:
    """Hands out arrays by location; the model builder decides which location a layer has."""

    where: str


class EmptyStore(WeightStore):
    def __init__(self, where):
        self.where = where


class KerasV3Store(WeightStore):
    """Keras 3 layout: groups named after snake_cased class names; arrays under `vars/0..n`.

    A file written on Windows names its groups with backslashes, all at the top
    (`layers\\lstm\\cell` holding `vars`): paths are mapped onto those names."""

    def __init__(self, h5: Snapshot, where: str):
        self.h5 = h5
        self.where = where
        root = h5.members(h5.file)
        self.windows = "layers" not in root and any(name.startswith("layers\\") for name in root)
        self._root = root if self.windows else []

    def _physical(self, path: str) -> str:
        if not self.windows:
            return path
        parts = [p for p in path.split("/") if p]
        cut = parts.index("vars") if "vars" in parts else len(parts)
        return "/".join(["\\".join(parts[:cut]), *parts[cut:]])

    def vars(self, path: str) -> list[np.ndarray] | None:
        """The arrays under `<path>/vars`, in index order; None when the group is absent."""
        where = self._physical(f"{path}/vars")
        group = self.h5.get(where)
        if group is None:
            return None
        if not hasattr(group, "keys"):
            raise LstmctlError(f"{self.where}: '{show(where)}' is not a group")
        keys = self.h5.members(group)
        if not all(k.isascii() and k.isdigit() and str(int(k)) == k for k in keys):
            raise LstmctlError(f"{self.where}: '{show(where)}' holds members not numbered 0..{len(keys) - 1}")
        indices = sorted(int(k) for k in keys)
        if indices != list(range(len(indices))):
            raise LstmctlError(f"{self.where}: '{show(where)}' is not numbered 0..{len(indices) - 1}")
        return [self.h5.read(f"{where}/{i}") for i in indices]

    def children(self, path: str) -> list[str]:
        if self.windows:
            prefix = self._physical(path) + "\\"
            return [n[len(prefix) :] for n in self._root if n.startswith(prefix) and "\\" not in n[len(prefix) :]]
        group = self.h5.get(path)
        if group is None or not hasattr(group, "keys"):
            return []
        return self.h5.members(group)

    def all_arrays(self, path: str) -> list[np.ndarray]:
        """Every array below a group (depth first, names sorted): for layers not interpreted.

        Each object is visited once, so a group that links back to itself cannot loop."""
        phys = self._physical(path)
        starts = [n for n in self._root if n == phys or n.startswith(phys + "\\")] if self.windows else [path]
        out, seen = [], set()
        stack = sorted(starts, reverse=True)
        while stack:
            current = stack.pop()
            obj = self.h5.get(current)
            if obj is None or obj.id in seen:
                continue
            seen.add(obj.id)
            if hasattr(obj, "keys"):
                stack.extend(f"{current}/{name}" for name in sorted(self.h5.members(obj), reverse=True))
            else:
                out.append(self.h5.read_dataset(obj, current))
        return out


class LayerStore(WeightStore, abc.ABC):
    """Arrays by layer name, in Keras's `get_weights()` order (legacy HDF5, TensorFlow checkpoints)."""

    @abc.abstractmethod
    def layer_names(self) -> list[str]: ...

    @abc.abstractmethod
    def weight_names(self, layer: str) -> list[str]: ...

    @abc.abstractmethod
    def layer_weights(self, layer: str) -> list[np.ndarray]: ...


class LegacyStore(LayerStore):
    """Keras 1/2 `save_weights` / legacy `model.save` layout: `<layer>/<weight_names…>`."""

    def __init__(self, h5: Snapshot, root: str, where: str):
        self.h5 = h5
        self.root = root
        self.where = where

    def _group_path(self, name: str) -> str:
        return f"{self.root}/{name}" if self.root else name

    def _names(self, group, attr: str, path: str) -> list[str]:
        names = self.h5.attr(group, attr)
        if names is None:
            return []
        if isinstance(names, np.ndarray) and names.size == 0:
            return []  # Keras writes an empty float array for a layer without weights
        if not isinstance(names, list):
            raise LstmctlError(f"{self.where}: attribute '{attr}' of '{show(path) or '/'}' is not a list of names")
        return names

    def layer_names(self) -> list[str]:
        group = self.h5.get(self.root) if self.root else self.h5.file
        if group is None:
            return []
        return self._names(group, "layer_names", self.root)

    def weight_names(self, layer: str) -> list[str]:
        path = self._group_path(layer)
        group = self.h5.get(path)
        if group is None:
            return []
        if not hasattr(group, "keys"):
            raise LstmctlError(f"{self.where}: '{show(path)}' is not a group")
        return self._names(group, "weight_names", path)

    def layer_weights(self, layer: str) -> list[np.ndarray]:
        return [self.h5.read(f"{self._group_path(layer)}/{w}") for w in self.weight_names(layer)]
