"""Guarded access to an untrusted HDF5 file.

h5py silently follows soft links, external links, external storage and virtual datasets, even
for a file opened from memory. Every path component and dataset is checked here before a byte of
data is read: link types, external storage, virtual layout, filters (an unknown filter id would
make HDF5 search for a plugin library), chunk size and the declared size against caps and against
the bytes really stored. Each dataset is read once (aliases share the array), and the running
total of declared bytes is capped too, so a small file cannot make lstmctl allocate much.
"""

import io
import os
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

from ..errors import LstmctlError, show

MAX_ARRAY_BYTES = 1 << 30  # one weight tensor
MAX_TOTAL_BYTES = 4 << 30  # every weight tensor of one file together
SPARSE_LIMIT = 16 << 20  # above this, the data must really be stored in the file
MAX_EXPANSION = 64  # declared bytes per stored byte, for datasets (and the file's total) above SPARSE_LIMIT
MAX_CHUNK_BYTES = 64 << 20  # one chunk, decompressed whole by HDF5 on read
MAX_ATTR_BYTES = 64 << 20
MAX_ATTR_TOTAL = 256 << 20  # every attribute read from one file together
MAX_ATTR_ITEMS = 1 << 20  # elements of an array attribute (layer_names, weight_names)
MAX_MEMBERS = 1 << 16  # members of one group
# deflate, shuffle, fletcher32, szip, nbit, scaleoffset, lzf: built into HDF5 / h5py, no plugin search
ALLOWED_FILTERS = {1, 2, 3, 4, 5, 6, 32000}
_NUMERIC_KINDS = "fiu"
_ATTRIBUTE_CLASSES = {h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.STRING}




_GCOL = b"GCOL\x01"
_CHUNK = 1 << 20
_SIZE_T = 1 << 64  # HDF5 adds object sizes in size_t: a sum past 2^64 wraps
MAX_HEAP_OBJECTS = 1 << 20  # global heap objects walked in one file (Keras writes a few thousand)
MAX_HEAP_COLLECTIONS = 1 << 16  # collection signatures in one file (a real collection takes 4 KiB)
MAX_SCANNED_COLLECTIONS = 16  # large collections whose references are counted for one attribute


class _Bytes:
    """Bounded reads at any offset of the very file HDF5 opened: through its descriptor, or from
    the buffer of an in-memory file. Never a memory map: a file that another process shrinks
    while it is read must end in an error, not kill the process with SIGBUS."""

    def __init__(self, source, file, size: int, where: str):
        self.source, self.size, self.where = source, size, where
        self.fd = None if isinstance(source, io.BytesIO) else file.id.get_vfd_handle()

    def read(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        if self.fd is None:
            with self.source.getbuffer() as view:
                return bytes(view[offset : offset + n])
        try:
            data = os.pread(self.fd, n, offset)
        except OSError as exc:
            raise LstmctlError(f"{self.where}: cannot be read ({exc.strerror})") from None
        if len(data) < n:
            raise LstmctlError(f"{self.where}: the file shrank while it was being read; refused")
        return data

    def chunks(self, overlap: int):
        """(offset, bytes) over the whole file, each chunk overlapping the next by `overlap` bytes."""
        for offset in range(0, self.size, _CHUNK):
            yield offset, self.read(offset, _CHUNK + overlap)

    def cursor(self, end: int):
        """read(offset, n) for a forward walk below `end`, served from a window of the file."""
        window = [0, b""]

        def read(offset, n):
            at, data = window
            if not (at <= offset and offset + n <= at + len(data)):
                window[:] = offset, self.read(offset, max(n, min(_CHUNK, end - offset)))
                at, data = window
            return data[offset - at : offset - at + n]

        return read


def _superblock(data: _Bytes) -> tuple[int, int, int]:
    """(file offset of the superblock, size of offsets, size of lengths): the superblock sits at
    0, 512, 1024, 2048… (after a user block), and HDF5 counts addresses from where it sits."""
    offset = 0
    while offset + 16 <= data.size:
        head = data.read(offset, 16)
        if head[:8] == b"\x89HDF\r\n\x1a\n":
            at = 13 if head[8] in (0, 1) else 9
            return offset, head[at], head[at + 1]
        offset = 512 if offset == 0 else offset * 2
    raise LstmctlError(f"{data.where}: no HDF5 superblock found; refused")


def _scan_heaps(data: _Bytes, where: str) -> tuple[int, dict]:
    """(size of offsets, {collection address: its largest object}) for every global heap
    collection HDF5 could read, after refusing any that would make HDF5 loop forever.

    Variable-length strings (model_config, layer_names, weight_names) live in global heap
    collections. HDF5 walks a collection's objects by their sizes, adding in size_t: a free-space
    object of size 0 never advances the walk (found by the fuzz harness), nor does an object of
    2^64-16 bytes, whose 16-byte header wraps the step to 0 (found by the red team); H5Aread then
    spins forever (HDF5 2.0.0). Every "GCOL" collection in the file is walked here the same way."""
    base, offsets, length = _superblock(data)
    if offsets not in (2, 4, 8) or length not in (2, 4, 8):
        raise LstmctlError(f"{where}: HDF5 superblock declares {offsets}-byte addresses and {length}-byte lengths; only 2, 4 and 8 are read")
    fmt = {2: "<H", 4: "<I", 8: "<Q"}[length]
    header = 8 + length  # object index, reference count, reserved, size
    starts = []
    for offset, chunk in data.chunks(len(_GCOL) - 1):
        at = chunk.find(_GCOL)
        while 0 <= at < _CHUNK:
            starts.append(offset + at)
            if len(starts) > MAX_HEAP_COLLECTIONS:
                raise LstmctlError(f"{where}: more than {MAX_HEAP_COLLECTIONS} global heap collections; refused")
            at = chunk.find(_GCOL, at + 1)
    collections, walked = {}, 0
    for start in starts:
        if start < base or start + 8 + length > data.size:
            continue  # no address names it, or HDF5 cannot read it
        end = start + struct.unpack(fmt, data.read(start + 8, length))[0]
        if end > data.size:
            continue  # HDF5 cannot read a collection that ends past the file
        read, p, largest = data.cursor(end), start + 8 + length, 0
        while p + header <= end:
            obj = read(p, header)
            index, size = struct.unpack_from("<H", obj)[0], struct.unpack_from(fmt, obj, 8)[0]
            step = (header + (size + 7) % _SIZE_T // 8 * 8) % _SIZE_T if index else size
            if step < header or step >= _SIZE_T >> 1:  # HDF5 would stand still, walk garbage, or step backwards
                raise LstmctlError(f"{where}: global heap collection at byte {start} is corrupt (an object of {size} bytes); refused")
            walked += 1
            if walked > MAX_HEAP_OBJECTS:
                raise LstmctlError(f"{where}: more than {MAX_HEAP_OBJECTS} global heap objects; refused")
            if index and p + header + size <= end:  # HDF5 refuses to read an object past its collection
                largest = max(largest, size)
            p += step
        collections[start - base] = largest
    return offsets, collections


def _decoded_size(value) -> int:
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return sum(len(v) for v in value.ravel() if isinstance(v, (str, bytes)))
    return 0


class H5:
    """An HDF5 file (path or file object) read through checked paths only."""

    def __init__(self, source, where: str):
        self.where = where
        self._cache = {}  # object address -> array: a dataset named twice is read (and counted) once
        self._declared = 0
        self._stored = 0
        self.nonfinite = []  # one line per weight array holding NaN or Inf
        self._attr_bytes = 0
        try:
            self.file = h5py.File(source, "r")
            self.size = self.file.id.get_filesize()
            self._bytes = _Bytes(source, self.file, self.size, where)
        except Exception:
            raise LstmctlError(f"{where}: not a readable HDF5 file (truncated or corrupt)") from None
        self._offsets, self._heaps = _scan_heaps(self._bytes, where)

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

    def names(self, group) -> list[str]:
        """Names of a group's members (at most MAX_MEMBERS), not yet checked."""
        try:
            if group.id.get_num_objs() > MAX_MEMBERS:
                raise LstmctlError(f"{self.where}: group '{show(group.name.strip('/'))}' has more than {MAX_MEMBERS} members; refused")
            return list(group.keys())
        except LstmctlError:
            raise
        except Exception:
            raise LstmctlError(f"{self.where}: a group could not be listed (corrupt file)") from None

    def members(self, group) -> list[str]:
        """Names of a group's members, every one checked to be a hard link."""
        names = self.names(group)
        prefix = group.name.strip("/")
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
            if items > MAX_ATTR_ITEMS:
                raise LstmctlError(f"{self.where}: attribute '{name}' is too large ({items} items)")
            vlen = kind == h5py.h5t.STRING and attr_id.get_type().is_variable_str()
            declared = self._vlen_bound(items) if vlen else items * attr_id.dtype.itemsize
            if declared > MAX_ATTR_BYTES:
                raise LstmctlError(f"{self.where}: attribute '{name}' is too large ({items} items, up to {declared} bytes)")
            if self._attr_bytes + declared > MAX_ATTR_TOTAL:
                raise LstmctlError(f"{self.where}: attribute '{name}' would bring the attributes read from this file over {MAX_ATTR_TOTAL} bytes; refused")
            value = obj.attrs[name]
        except LstmctlError:
            raise
        except Exception:
            raise LstmctlError(f"{self.where}: attribute '{name}' could not be read (corrupt file)") from None
        self._attr_bytes += _decoded_size(value) if vlen else declared  # strings: what was read, not the bound
        if isinstance(value, (bytes, np.bytes_)):
            return bytes(value).decode("utf-8", "replace")
        if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value.ravel().tolist()]
        return value

    def _vlen_bound(self, items: int) -> int:
        """The most bytes HDF5 may allocate decoding `items` variable-length strings.

        Each string is a reference to a global heap object, and nothing stops many references from
        naming one object: 4000 names of one 1 MiB object make a 64 KiB attribute decode to 4 GiB.
        `items` x the largest object bounds that. Where this is over the cap, the objects larger
        than their share of it count only as often as their collection's address is spelled out in
        the file (every reference spells it out), so a big model_config does not inflate the bound
        of a long layer_names list."""
        largest = max(self._heaps.values(), default=0)
        if items * largest <= MAX_ATTR_BYTES:
            return items * largest
        share = MAX_ATTR_BYTES // items
        big = {address: size for address, size in self._heaps.items() if size > share}
        if len(big) > MAX_SCANNED_COLLECTIONS or any(address >= 1 << (8 * self._offsets) for address in big):
            return items * largest
        patterns = {address: address.to_bytes(self._offsets, "little") for address in big}
        counts = dict.fromkeys(big, 0)
        for _, chunk in self._bytes.chunks(self._offsets - 1):
            for address, pattern in patterns.items():
                counts[address] += chunk.count(pattern)
        small = max((size for size in self._heaps.values() if size <= share), default=0)
        return items * small + sum(min(counts[address], items) * size for address, size in big.items())

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
        except MemoryError:
            raise LstmctlError(f"{where} ({declared} bytes) does not fit in the memory allowed for reading it; refused") from None
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
