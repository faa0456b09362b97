"""Guarded access to an untrusted HDF5 file.

h5py silently follows soft links, external links, external storage and virtual datasets, even
for a file opened from memory. Every path component and dataset is checked here before a byte of
data is read: link types, external storage, virtual layout, filters (an unknown filter id would
make HDF5 search for a plugin library), chunk size and the declared size against caps and against
the bytes really stored. Each dataset is read once (aliases share the array), and the running
total of declared bytes is capped too, so a small file cannot make lstmctl allocate much.
"""

import io
import mmap
import os
import re
import struct

# lstmctl never needs an HDF5 plugin, and HDF5 dlopens every library in its plugin folders when a
# file fails to open or names an unknown filter: switch plugin loading off before HDF5 starts
# ("::" is HDF5's value for that), and empty the search path in case h5py was loaded already.
os.environ["HDF5_PLUGIN_PRELOAD"] = "::"
import h5py  # noqa: E402
import h5py.h5pl  # noqa: E402
import numpy as np  # noqa: E402

while h5py.h5pl.size():
    h5py.h5pl.remove(0)

from .errors import LstmctlError

MAX_ARRAY_BYTES = 1 << 30  # one weight tensor
MAX_TOTAL_BYTES = 4 << 30  # every weight tensor of one file together
SPARSE_LIMIT = 16 << 20  # above this, the data must really be stored in the file
MAX_EXPANSION = 64  # declared bytes per stored byte, for datasets (and the file's total) above SPARSE_LIMIT
MAX_CHUNK_BYTES = 64 << 20  # one chunk, decompressed whole by HDF5 on read
MAX_ATTR_BYTES = 64 << 20
MAX_ATTR_ITEMS = 1 << 20  # elements of an array attribute (layer_names, weight_names)
MAX_MEMBERS = 1 << 16  # members of one group
# deflate, shuffle, fletcher32, szip, nbit, scaleoffset, lzf: built into HDF5 / h5py, no plugin search
ALLOWED_FILTERS = {1, 2, 3, 4, 5, 6, 32000}
_NUMERIC_KINDS = "fiu"
_ATTRIBUTE_CLASSES = {h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.STRING}


def show(text) -> str:
    """A name from the file, safe inside a one-line message (control characters escaped)."""
    text = str(text)
    if text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


_GCOL = b"GCOL\x01"


def _signatures(buf):
    """Offsets of every collection signature; by .find on an mmap (no buffer stays exported)."""
    if hasattr(buf, "find"):
        at = buf.find(_GCOL)
        while at >= 0:
            yield at
            at = buf.find(_GCOL, at + 1)
    else:
        for match in re.finditer(re.escape(_GCOL), buf):
            yield match.start()


def _check_global_heaps(source, where: str):
    """Refuse a global heap collection that would send HDF5 into an endless loop.

    Variable-length strings (model_config, layer_names, weight_names) live in global heap
    collections. HDF5 walks a collection's objects by their sizes, and a free-space object of
    size 0 never advances the walk: H5Aread then spins forever (HDF5 2.0.0, found by the fuzz
    harness). Every "GCOL" collection in the file is walked here first, the way HDF5 walks it."""
    if isinstance(source, io.BytesIO):
        _walk_heaps(source.getbuffer(), where)
        return
    try:
        with open(source, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            _walk_heaps(buf, where)
    except (OSError, ValueError):
        return  # not mappable: h5py has already opened it, and nothing here can be checked


MAX_HEAP_OBJECTS = 1 << 24  # global heap objects walked in one file (each takes at least 16 bytes)


def _length_size(buf) -> int | None:
    """The superblock's "size of lengths" (8 in every file h5py writes), or None if not found."""
    offset = 0
    while offset + 16 <= len(buf):
        if bytes(buf[offset : offset + 8]) == b"\x89HDF\r\n\x1a\n":
            version = buf[offset + 8]
            at = offset + (14 if version in (0, 1) else 10)
            return buf[at] if at < len(buf) else None
        offset = 512 if offset == 0 else offset * 2  # a user block shifts the superblock
    return None


def _walk_heaps(buf, where: str):
    size = len(buf)
    length = _length_size(buf)
    if length not in (2, 4, 8):
        return
    fmt = {2: "<H", 4: "<I", 8: "<Q"}[length]
    header = 8 + length  # object index, reference count, reserved, size
    walked = 0
    for start in _signatures(buf):
        if start + 8 + length > size:
            continue
        end = min(start + struct.unpack_from(fmt, buf, start + 8)[0], size)
        p = start + 8 + length
        while p + header <= end:
            index = struct.unpack_from("<H", buf, p)[0]
            object_size = struct.unpack_from(fmt, buf, p + 8)[0]
            step = header + (object_size + 7) // 8 * 8 if index else object_size
            if step < header:  # HDF5 would loop forever on 0 and walk garbage on less than a header
                raise LstmctlError(f"{where}: global heap collection at byte {start} is corrupt (a free-space object of {object_size} bytes); refused")
            walked += 1
            if walked > MAX_HEAP_OBJECTS:
                raise LstmctlError(f"{where}: more than {MAX_HEAP_OBJECTS} global heap objects; refused")
            p += step


class H5:
    """An HDF5 file (path or file object) read through checked paths only."""

    def __init__(self, source, where: str):
        self.where = where
        self._cache = {}  # object address -> array: a dataset named twice is read (and counted) once
        self._declared = 0
        self._stored = 0
        self.nonfinite = []  # one line per weight array holding NaN or Inf
        try:
            self.file = h5py.File(source, "r")
            self.size = self.file.id.get_filesize()
        except Exception:
            raise LstmctlError(f"{where}: not a readable HDF5 file (truncated or corrupt)") from None
        _check_global_heaps(source, where)

    def close(self):
        self.file.close()

    def _corrupt(self, path: str, what="could not be read"):
        return LstmctlError(f"{self.where}: '{show(path)}' {what} (corrupt file)")

    def _child(self, group, name: str, path: str):
        try:
            link = group.get(name, getlink=True)
        except Exception:
            raise self._corrupt(path) from None
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            kind = type(link).__name__
            raise LstmctlError(f"{self.where}: '{show(path)}' is a {kind}; links out of the file are refused")
        try:
            return group[name]
        except Exception:
            raise self._corrupt(path) from None

    def get(self, path: str):
        """The object at a slash-separated path, or None; every component must be a hard link."""
        node = self.file
        done = []
        for part in [p for p in path.split("/") if p]:
            if not isinstance(node, h5py.Group):
                return None
            done.append(part)
            if part in (".", ".."):
                raise LstmctlError(f"{self.where}: path '{show(path)}' has a '{part}' component; refused")
            node = self._child(node, part, "/".join(done))
            if node is None:
                return None
        return node

    def members(self, group) -> list[str]:
        """Names of a group's members, every one checked to be a hard link."""
        try:
            prefix = group.name.strip("/")
            if group.id.get_num_objs() > MAX_MEMBERS:
                raise LstmctlError(f"{self.where}: group '{show(prefix)}' has more than {MAX_MEMBERS} members; refused")
            names = list(group.keys())
        except LstmctlError:
            raise
        except Exception:
            raise LstmctlError(f"{self.where}: a group could not be listed (corrupt file)") from None
        for name in names:
            self._child(group, name, f"{prefix}/{name}".strip("/"))
        return names

    def attr(self, obj, name: str, default=None):
        try:
            if name not in obj.attrs:
                return default
            attr_id = obj.attrs.get_id(name)
            kind = attr_id.get_type().get_class()
            if kind not in _ATTRIBUTE_CLASSES:
                # Keras writes strings and numbers only; HDF5 has crashed reading a corrupt
                # variable-length sequence type (found by the fuzz harness)
                raise LstmctlError(f"{self.where}: attribute '{name}' has HDF5 type class {kind}, not a string or number; refused")
            shape = attr_id.shape or ()
            items = int(np.prod(shape, dtype=np.float64))
            declared = items * attr_id.dtype.itemsize
            if declared > MAX_ATTR_BYTES or items > MAX_ATTR_ITEMS:
                raise LstmctlError(f"{self.where}: attribute '{name}' is too large ({items} items, {declared} bytes)")
            value = obj.attrs[name]
        except LstmctlError:
            raise
        except Exception:
            raise LstmctlError(f"{self.where}: attribute '{name}' could not be read (corrupt file)") from None
        if isinstance(value, (bytes, np.bytes_)):
            return bytes(value).decode("utf-8", "replace")
        if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value.ravel().tolist()]
        return value

    def read(self, path: str) -> np.ndarray:
        """A numeric dataset's contents, after the link, storage and size checks."""
        ds = self.get(path)
        if not isinstance(ds, h5py.Dataset):
            raise LstmctlError(f"{self.where}: '{show(path)}' is not a dataset")
        return self.read_dataset(ds, path)

    def _check_layout(self, ds, path: str):
        where = f"{self.where}: dataset '{show(path)}'"
        if ds.external:
            raise LstmctlError(f"{where} uses external storage; refused")
        if ds.is_virtual:
            raise LstmctlError(f"{where} is a virtual dataset; refused")
        plist = ds.id.get_create_plist()
        for i in range(plist.get_nfilters()):
            code = plist.get_filter(i)[0]
            if code not in ALLOWED_FILTERS:
                raise LstmctlError(f"{where} uses HDF5 filter {code}, not one built into HDF5; refused")
        chunks = ds.chunks
        if chunks is not None:
            chunk_bytes = int(np.prod(chunks, dtype=np.float64)) * ds.dtype.itemsize
            if chunk_bytes > MAX_CHUNK_BYTES:
                raise LstmctlError(f"{where} has chunks of {chunk_bytes} bytes, over the {MAX_CHUNK_BYTES}-byte cap; refused")

    def read_dataset(self, ds, path: str) -> np.ndarray:
        where = f"{self.where}: dataset '{show(path)}'"
        try:
            key = h5py.h5o.get_info(ds.id).addr
            if key in self._cache:
                return self._cache[key]
            self._check_layout(ds, path)
            dtype = ds.dtype
            shape = ds.shape
            stored = ds.id.get_storage_size()
        except LstmctlError:
            raise
        except Exception:
            raise self._corrupt(f"dataset {path}") from None
        if shape is None or dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize > 8:
            raise LstmctlError(f"{where} has non-numeric dtype {dtype}")
        declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if declared > MAX_ARRAY_BYTES:
            raise LstmctlError(f"{where} declares shape {shape} ({declared} bytes), over the cap")
        if declared > SPARSE_LIMIT and stored * MAX_EXPANSION < declared:
            raise LstmctlError(f"{where} declares {declared} bytes but stores only {stored}; refused")
        declared_total = self._declared + declared
        stored_total = self._stored + stored
        if stored_total > self.size:
            raise LstmctlError(f"{where}: datasets claim {stored_total} stored bytes, more than the file's {self.size}; refused")
        if declared_total > MAX_TOTAL_BYTES or (declared_total > SPARSE_LIMIT and stored_total * MAX_EXPANSION < declared_total):
            raise LstmctlError(
                f"{where}: the weights read so far declare {declared_total} bytes but the file stores only {stored_total}; refused"
            )
        self._declared, self._stored = declared_total, stored_total
        try:
            data = np.asarray(ds[()])
        except Exception:
            raise LstmctlError(f"{where} could not be read (corrupt file)") from None
        if data.shape != shape or data.dtype != dtype:
            raise LstmctlError(f"{where} could not be read (corrupt file)")
        data = data.astype(dtype.newbyteorder("="), copy=False)
        if data.dtype.kind == "f":
            bad = ~np.isfinite(data)
            if bad.any():  # a diverged model is still worth inspecting: reported, not refused
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                self.nonfinite.append(f"{where} holds {int(bad.sum())} non-finite value(s), first {data[first]} at index {first}")
        data.flags.writeable = False
        self._cache[key] = data
        return data
