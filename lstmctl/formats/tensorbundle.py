"""TensorFlow's checkpoint files (the TensorBundle format), read without TensorFlow.

A checkpoint `<prefix>` is `<prefix>.index`, a LevelDB-style sorted table mapping each variable's
name to a BundleEntryProto (dtype, shape, shard, offset, size, masked CRC-32C), and the shards
`<prefix>.data-0000k-of-0000n` holding the raw bytes. The table's first entry, under the empty
key, is a BundleHeaderProto (shard count, byte order). Every block's CRC and every tensor's CRC
is verified; offsets and sizes are checked against the file sizes before anything is read; only
the files of the checkpoint, inside its folder, are opened.
"""

import contextlib
import os
import stat
import struct

import numpy as np

from ..errors import LstmctlError, show
from . import crc32c
from .hdf5 import MAX_ARRAY_BYTES, MAX_TOTAL_BYTES
from .protowire import Message, read_varint

MAX_INDEX_BYTES = 256 << 20
MAX_ENTRIES = 1 << 20
MAX_KEY_BYTES = 1 << 16  # one tensor name (prefix compression lets a few bytes repeat a long one)
MAX_KEYS_TOTAL = 64 << 20  # every tensor name of the index together
MAX_SHARDS = 1 << 12
MAX_DIMS = 32
MAX_STRING_ELEMENTS = 1 << 16  # string tensors: the object graph is one scalar
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48
_TRAILER = 5  # a block's compression byte and masked CRC

# TensorFlow's DataType enum -> NumPy (little-endian; a big-endian bundle is swapped on read)
DTYPES = {
    1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
    10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64,
}  # fmt: skip
DT_STRING, DT_BFLOAT16 = 7, 14
DTYPE_NAMES = {7: "string", 8: "complex64", 14: "bfloat16", 18: "complex128", 20: "resource", 21: "variant"}


def regular_file(path: str, where: str, folder: str) -> int:
    """The size of `path`, a regular file whose real location is inside `folder`; refuses links
    out of the folder and anything that is not a plain file (a FIFO would block the read)."""
    real, root = os.path.realpath(path), os.path.realpath(folder)
    if os.path.commonpath([real, root]) != root:
        raise LstmctlError(f"{where}: '{show(path)}' is a link to a file outside {show(folder)}; refused")
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise LstmctlError(f"{where}: '{show(path)}' is missing") from None
    except OSError as exc:
        raise LstmctlError(f"{where}: '{show(path)}' cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise LstmctlError(f"{where}: '{show(path)}' is not a regular file")
    return info.st_size


@contextlib.contextmanager
def opened(path: str, where: str):
    """`path` (checked by regular_file) open for reading: failing to open or read it (permission
    denied, an I/O error) is one error naming it."""
    try:
        with open(path, "rb") as fh:
            yield fh
    except OSError as exc:
        raise LstmctlError(f"{where}: '{show(path)}' cannot be read ({exc.strerror})") from None


def _read_at(fh, offset: int, size: int, what: str, where: str) -> bytes:
    fh.seek(offset)
    data = fh.read(size)
    if len(data) != size:
        raise LstmctlError(f"{where}: {what} is truncated")
    return data


def _handle(buf: bytes, pos: int, where: str) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos, where)
    size, pos = read_varint(buf, pos, where)
    return offset, size, pos


class Entry:
    def __init__(self, key: str, proto: Message, where: str):
        self.key = key
        self.dtype = proto.uint(1)
        shape = proto.msg(2, where)
        if shape.uint(3):
            raise LstmctlError(f"{where}: tensor '{show(key)}' has an unknown rank")
        dims = [d.signed(1) for d in shape.repeated(2, where)]
        if len(dims) > MAX_DIMS or any(d < 0 for d in dims):
            raise LstmctlError(f"{where}: tensor '{show(key)}' has shape {dims}; refused")
        self.shape = tuple(dims)
        self.shard = proto.signed(3)
        self.offset = proto.signed(4)
        self.size = proto.signed(5)
        self.crc = proto.uint(6)
        if proto.has(7):
            raise LstmctlError(f"{where}: tensor '{show(key)}' is saved in slices (a partitioned variable); not supported")

    @property
    def dtype_name(self) -> str:
        if self.dtype in DTYPES:
            return np.dtype(DTYPES[self.dtype]).name
        return DTYPE_NAMES.get(self.dtype, f"dtype {self.dtype}")


class Bundle:
    """A checkpoint's table of tensors; `read(key)` returns one array, its CRC verified."""

    def __init__(self, prefix: str, where: str | None = None, folder: str | None = None):
        """`folder`: where every file read must really be (default: the prefix's folder)."""
        self.prefix = prefix
        self.where = where or prefix
        self.folder = folder or os.path.dirname(os.path.abspath(prefix))
        index = f"{prefix}.index"
        size = regular_file(index, self.where, self.folder)
        if size > MAX_INDEX_BYTES:
            raise LstmctlError(f"{self.where}: index of {size} bytes is over the {MAX_INDEX_BYTES}-byte cap")
        if size < _FOOTER:
            raise LstmctlError(f"{self.where}: '{show(os.path.basename(index))}' is too short to be a checkpoint index")
        with opened(index, self.where) as fh:
            self.entries = self._table(fh, size, f"{self.where}: {os.path.basename(index)}")
        header = self.entries.pop("", None)
        if header is None:
            raise LstmctlError(f"{self.where}: checkpoint index has no header entry")
        header = Message(header, self.where)
        self.num_shards = header.signed(1)
        if not 1 <= self.num_shards <= MAX_SHARDS:
            raise LstmctlError(f"{self.where}: checkpoint header declares {self.num_shards} shards")
        self.byteorder = "<" if header.uint(2) == 0 else ">"
        self.entries = {key: Entry(key, Message(raw, self.where), self.where) for key, raw in self.entries.items()}
        self._sizes = {}
        self._total = 0
        for entry in self.entries.values():
            if not 0 <= entry.shard < self.num_shards or entry.offset < 0 or entry.size < 0:
                raise LstmctlError(f"{self.where}: tensor '{show(entry.key)}' names shard {entry.shard} of {self.num_shards} at offset {entry.offset}, size {entry.size}")

    # --- the sorted table ---------------------------------------------------------------------

    def _block(self, fh, file_size, offset, size, what, where) -> bytes:
        if offset + size + _TRAILER > file_size - _FOOTER:  # blocks come before the footer
            raise LstmctlError(f"{where}: {what} at {offset}+{size} lies past the end of the file")
        raw = _read_at(fh, offset, size + _TRAILER, what, where)
        body, kind, stored = raw[:size], raw[size], struct.unpack("<I", raw[size + 1 :])[0]
        if crc32c.unmask(stored) != crc32c.value(raw[: size + 1]):
            raise LstmctlError(f"{where}: {what} fails its CRC-32C check (the file is corrupt)")
        if kind != 0:
            raise LstmctlError(f"{where}: {what} is compressed (type {kind}); TensorFlow writes checkpoint indexes uncompressed")
        return body

    @staticmethod
    def _entries(block: bytes, where: str) -> list:
        if len(block) < 4:
            raise LstmctlError(f"{where}: table block too short")
        restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
        end = len(block) - 4 - 4 * restarts
        if restarts == 0 or end < 0:
            raise LstmctlError(f"{where}: table block declares {restarts} restart points")
        out, pos, key, total = [], 0, b"", 0
        while pos < end:
            shared, pos = read_varint(block, pos, where)
            unshared, pos = read_varint(block, pos, where)
            length, pos = read_varint(block, pos, where)
            if shared > len(key) or pos + unshared + length > end:
                raise LstmctlError(f"{where}: table entry runs past its block")
            if shared + unshared > MAX_KEY_BYTES:
                raise LstmctlError(f"{where}: a table key of {shared + unshared} bytes; refused")
            key = key[:shared] + block[pos : pos + unshared]
            total += len(key)
            if total > MAX_KEYS_TOTAL:
                raise LstmctlError(f"{where}: tensor names over {MAX_KEYS_TOTAL} bytes in one block; refused")
            pos += unshared
            out.append((key, block[pos : pos + length]))
            pos += length
        return out

    def _table(self, fh, size, where) -> dict:
        footer = _read_at(fh, size - _FOOTER, _FOOTER, "footer", where)
        if struct.unpack("<Q", footer[40:])[0] != _TABLE_MAGIC:
            raise LstmctlError(f"{where}: not a TensorFlow checkpoint index (no table magic at its end)")
        _, _, pos = _handle(footer, 0, where)  # the meta-index block: TensorFlow leaves it empty
        offset, length, _ = _handle(footer, pos, where)
        index = self._entries(self._block(fh, size, offset, length, "index block", where), where)
        entries, previous, key_bytes = {}, None, 0
        for _, handle in index:
            offset, length, _ = _handle(handle, 0, where)
            for key, value in self._entries(self._block(fh, size, offset, length, "data block", where), where):
                if previous is not None and key <= previous:
                    raise LstmctlError(f"{where}: table keys are out of order or repeated")
                previous = key
                key_bytes += len(key)
                if key_bytes > MAX_KEYS_TOTAL:
                    raise LstmctlError(f"{where}: tensor names over {MAX_KEYS_TOTAL} bytes in all; refused")
                try:
                    entries[key.decode("utf-8")] = value
                except UnicodeDecodeError:
                    raise LstmctlError(f"{where}: a tensor name is not UTF-8") from None
                if len(entries) > MAX_ENTRIES:
                    raise LstmctlError(f"{where}: more than {MAX_ENTRIES} tensors; refused")
        return entries

    # --- tensors ------------------------------------------------------------------------------

    def shard_path(self, shard: int) -> str:
        return f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}"

    def _raw(self, entry: Entry) -> np.ndarray:
        """The entry's bytes, read straight into a new array (the one copy a tensor costs)."""
        path = self.shard_path(entry.shard)
        if path not in self._sizes:
            self._sizes[path] = regular_file(path, self.where, self.folder)
        if entry.offset + entry.size > self._sizes[path]:
            raise LstmctlError(f"{self.where}: tensor '{show(entry.key)}' at {entry.offset}+{entry.size} lies past the end of {show(os.path.basename(path))}")
        if entry.size > MAX_ARRAY_BYTES:
            raise LstmctlError(f"{self.where}: tensor '{show(entry.key)}' of {entry.size} bytes is over the {MAX_ARRAY_BYTES}-byte cap")
        self._total += entry.size
        if self._total > MAX_TOTAL_BYTES:
            raise LstmctlError(f"{self.where}: tensors over {MAX_TOTAL_BYTES} bytes in all; refused")
        buf = np.empty(entry.size, np.uint8)
        with opened(path, self.where) as fh:
            fh.seek(entry.offset)
            if fh.readinto(memoryview(buf)) != entry.size:
                raise LstmctlError(f"{self.where}: tensor '{show(entry.key)}' is truncated")
        return buf

    def _check(self, entry: Entry, crc: int):
        if crc != crc32c.unmask(entry.crc):
            raise LstmctlError(f"{self.where}: tensor '{show(entry.key)}' fails its CRC-32C check (the checkpoint is corrupt)")

    def read(self, key: str) -> np.ndarray:
        entry = self.entries[key]
        count = int(np.prod(entry.shape, dtype=object)) if entry.shape else 1
        if entry.dtype == DT_STRING:
            return self._strings(entry, count)
        if entry.dtype == DT_BFLOAT16:
            dtype, width = np.dtype(self.byteorder + "u2"), 2
        elif entry.dtype in DTYPES:
            dtype = np.dtype(DTYPES[entry.dtype]).newbyteorder(self.byteorder)
            width = dtype.itemsize
        else:
            raise LstmctlError(f"{self.where}: tensor '{show(entry.key)}' holds {entry.dtype_name}, which lstmctl does not read")
        if count * width != entry.size:
            raise LstmctlError(f"{self.where}: tensor '{show(entry.key)}' of shape {entry.shape} needs {count * width} bytes, its entry says {entry.size}")
        data = self._raw(entry)
        self._check(entry, crc32c.value(data))
        array = data.view(dtype).reshape(entry.shape)
        if entry.dtype == DT_BFLOAT16:
            return (array.astype(np.uint32) << 16).view(np.float32)
        return array if dtype.isnative else array.astype(dtype.newbyteorder("="))

    def _strings(self, entry: Entry, count: int) -> list:
        """A string tensor: varint lengths, a masked CRC of them, then the bytes, in order. The
        CRC TensorFlow keeps covers each length as 8 little-endian bytes, that CRC, the bytes."""
        if count > MAX_STRING_ELEMENTS:
            raise LstmctlError(f"{self.where}: string tensor '{show(entry.key)}' has {count} elements; refused")
        data = self._raw(entry).tobytes()
        lengths, pos = [], 0
        for _ in range(count):
            n, pos = read_varint(data, pos, self.where)
            lengths.append(n)
        if pos + 4 + sum(lengths) != len(data):
            raise LstmctlError(f"{self.where}: string tensor '{show(entry.key)}' lengths do not add up to its size")
        crc = crc32c.value(b"".join(struct.pack("<I" if n <= 0xFFFFFFFF else "<Q", n) for n in lengths))
        crc = crc32c.extend(crc, data[pos:])
        self._check(entry, crc)
        pos += 4
        out = []
        for n in lengths:
            out.append(data[pos : pos + n])
            pos += n
        return out


def resolve(path: str) -> str | None:
    """The checkpoint prefix MODEL names, or None if it names no checkpoint: `<prefix>.index`, a
    data shard, the prefix itself, or a folder whose `checkpoint` file names one."""
    if os.path.isdir(path):
        state = os.path.join(path, "checkpoint")
        if os.path.isfile(state) or os.path.islink(state):
            return os.path.join(path, latest(state, path))
        return None
    if path.endswith(".index"):
        return path[: -len(".index")]
    base, sep, rest = path.rpartition(".data-")
    if sep and "-of-" in rest:
        return base
    if not os.path.exists(path) and os.path.isfile(f"{path}.index"):
        return path
    return None


def latest(state_file: str, folder: str) -> str:
    """The `model_checkpoint_path` a TensorFlow `checkpoint` file names, as a name inside `folder`.

    Savers often write an absolute path from the machine that trained: its last component is
    looked up in this folder; nothing outside the folder is read."""
    size = regular_file(state_file, folder, folder)
    if size > 1 << 20:
        raise LstmctlError(f"{folder}: 'checkpoint' file of {size} bytes is not a checkpoint state")
    with opened(state_file, folder) as fh:
        text = fh.read().decode("utf-8", "replace")
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model_checkpoint_path":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                name = os.path.basename(value[1:-1].replace("\\", "/"))
                if name and name not in (".", ".."):
                    return name
    raise LstmctlError(f"{folder}: its 'checkpoint' file names no model_checkpoint_path")
