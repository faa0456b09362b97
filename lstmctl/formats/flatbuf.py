"""A small FlatBuffers reader: tables, vectors and strings read from a file's bytes, every offset,
length and count checked against the buffer (and counts against lstmctl.budget) where it is read.

Why not the `flatbuffers` package: it is not one of lstmctl's runtime dependencies, and the code
its compiler generates does no bounds checks at all (a table offset past the end of the buffer
raises whatever struct.unpack_from raises, or reads another field's bytes), so every access would
need wrapping anyway. The format is small: a table starts with a signed offset back to its vtable
(u16 vtable size, u16 table size, u16 field offsets); a field holding a table, vector or string
holds an unsigned offset forward from where it sits; a vector is a u32 count and its elements.

Errors name the file and what was being read: `model.tflite: subgraph 0 tensor 3 'shape': vector
of 4294967295 elements runs past the end of the file (1204 bytes)`.
"""

import struct

import numpy as np

from .. import budget
from ..errors import LstmctlError

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")


class Buffer:
    """The file's bytes and its path, for messages."""

    def __init__(self, data: bytes, path: str):
        self.data = memoryview(data)
        self.size = len(data)
        self.path = path

    def fail(self, what: str, message: str):
        raise LstmctlError(f"{self.path}: {what}: {message}")

    def span(self, start: int, length: int, what: str) -> int:
        """`start` if [start, start + length) lies inside the buffer."""
        if start < 0 or length < 0 or start + length > self.size:
            self.fail(what, f"{length} bytes at offset {start} run past the end of the file ({self.size} bytes)")
        return start

    def u32(self, pos: int, what: str) -> int:
        return _U32.unpack_from(self.data, self.span(pos, 4, what))[0]

    def root(self, what: str = "root table") -> "Table":
        return Table(self, self.u32(0, what), what)


class Table:
    """One table at `pos`; fields by their id in the schema (0, 1, 2, …)."""

    __slots__ = ("buf", "pos", "what", "_vtable", "_vsize")

    def __init__(self, buf: Buffer, pos: int, what: str):
        self.buf, self.pos, self.what = buf, pos, what
        buf.span(pos, 4, what)
        vtable = pos - _I32.unpack_from(buf.data, pos)[0]
        buf.span(vtable, 4, what + " (vtable)")
        vsize = _U16.unpack_from(buf.data, vtable)[0]
        if vsize < 4 or vsize % 2:
            buf.fail(what, f"vtable of {vsize} bytes is not a FlatBuffers vtable")
        buf.span(vtable, vsize, what + " (vtable)")
        self._vtable, self._vsize = vtable, vsize

    def _field(self, i: int, size: int, name: str) -> int | None:
        """Absolute position of field `i` (None: absent), its `size` bytes inside the buffer."""
        entry = 4 + 2 * i
        if entry + 2 > self._vsize:
            return None
        offset = _U16.unpack_from(self.buf.data, self._vtable + entry)[0]
        if offset == 0:
            return None
        return self.buf.span(self.pos + offset, size, f"{self.what} '{name}'")

    def scalar(self, i: int, fmt: str, default, name: str):
        """A scalar field (struct format `fmt`: b B h H i I q Q f d ?), `default` when absent."""
        size = struct.calcsize("<" + fmt)
        at = self._field(i, size, name)
        return default if at is None else struct.unpack_from("<" + fmt, self.buf.data, at)[0]

    def _indirect(self, i: int, name: str) -> int | None:
        at = self._field(i, 4, name)
        return None if at is None else at + self.buf.u32(at, f"{self.what} '{name}'")

    def table(self, i: int, name: str) -> "Table | None":
        at = self._indirect(i, name)
        return None if at is None else Table(self.buf, at, f"{self.what} '{name}'")

    def _vector(self, i: int, width: int, name: str, budget_name: str | None = None) -> tuple:
        """(first element's position, count) of a vector field; (0, 0) when absent."""
        at = self._indirect(i, name)
        if at is None:
            return 0, 0
        what = f"{self.what} '{name}'"
        count = self.buf.u32(at, what)
        if budget_name is not None:
            budget.check(budget_name, count, f"{self.buf.path}: {what}")
        self.buf.span(at + 4, count * width, f"{what} (vector of {count} elements)")
        return at + 4, count

    def tables(self, i: int, name: str, budget_name: str = "nodes") -> list:
        start, count = self._vector(i, 4, name, budget_name)
        out = []
        for k in range(count):
            pos = start + 4 * k
            out.append(Table(self.buf, pos + self.buf.u32(pos, self.what), f"{self.what} {name}[{k}]"))
        return out

    def array(self, i: int, dtype: str, name: str, budget_name: str = "tensor_elements") -> np.ndarray:
        """A vector of scalars as a read-only NumPy array (little-endian `dtype`); empty when absent."""
        dt = np.dtype(dtype)
        start, count = self._vector(i, dt.itemsize, name, budget_name)
        return np.frombuffer(self.buf.data, dt, count, start) if count else np.zeros(0, dt)

    def has(self, i: int) -> bool:
        entry = 4 + 2 * i
        return entry + 2 <= self._vsize and _U16.unpack_from(self.buf.data, self._vtable + entry)[0] != 0

    def string(self, i: int, name: str) -> str:
        start, count = self._vector(i, 1, name)
        return bytes(self.buf.data[start : start + count]).decode("utf-8", "replace") if count else ""

    def strings(self, i: int, name: str) -> list:
        start, count = self._vector(i, 4, name, "tensors")
        out = []
        for k in range(count):
            pos = start + 4 * k
            at = pos + self.buf.u32(pos, self.what)
            length = self.buf.u32(at, f"{self.what} {name}[{k}]")
            self.buf.span(at + 4, length, f"{self.what} {name}[{k}]")
            out.append(bytes(self.buf.data[at + 4 : at + 4 + length]).decode("utf-8", "replace"))
        return out
