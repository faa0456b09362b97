"""The protocol-buffer wire format, read as bounded data.

TensorFlow's checkpoint index and Keras's `keras_metadata.pb` are protobuf messages. Their few
fields are read here by number (as the .proto files declare them) instead of through the protobuf
package: that would need TensorFlow's generated classes for a handful of integers and strings.
Every length is checked against the bytes that are there; nesting is read lazily, one level at a
time, so no input can recurse.
"""

from ..errors import LstmctlError

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    if pos < len(buf) and buf[pos] < 0x80:  # one byte, as most keys and lengths are (a graph may hold 10^5 nodes)
        return buf[pos], pos + 1
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise LstmctlError(f"{where}: truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise LstmctlError(f"{where}: protobuf varint longer than 10 bytes")


def read_varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    """(value, next position) of the varint at `pos`."""
    return _varint(buf, pos, where)


class Message:
    """One message's fields: number -> values in order (ints for varints and fixed, bytes otherwise)."""

    def __init__(self, buf: bytes, where: str):
        self.where = where
        self.fields: dict[int, list] = {}
        pos, end = 0, len(buf)
        while pos < end:
            key, pos = _varint(buf, pos, where)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise LstmctlError(f"{where}: protobuf field number 0")
            if wire == VARINT:
                value, pos = _varint(buf, pos, where)
            elif wire == FIXED64 or wire == FIXED32:
                size = 8 if wire == FIXED64 else 4
                if pos + size > end:
                    raise LstmctlError(f"{where}: truncated protobuf field {number}")
                value = int.from_bytes(buf[pos : pos + size], "little")
                pos += size
            elif wire == LENGTH:
                size, pos = _varint(buf, pos, where)
                if size > end - pos:
                    raise LstmctlError(f"{where}: protobuf field {number} declares {size} bytes, {end - pos} are left")
                value = bytes(buf[pos : pos + size])
                pos += size
            else:
                raise LstmctlError(f"{where}: protobuf wire type {wire} (groups or unknown) in field {number}")
            self.fields.setdefault(number, []).append(value)

    def _last(self, number, default, kind):
        values = self.fields.get(number)
        if not values:
            return default
        value = values[-1]  # protobuf: the last occurrence of a singular field wins
        if not isinstance(value, kind):
            raise LstmctlError(f"{self.where}: protobuf field {number} has the wrong wire type")
        return value

    def uint(self, number: int, default: int = 0) -> int:
        return self._last(number, default, int)

    def signed(self, number: int, default: int = 0) -> int:
        """An int32/int64 field (negative values are written as 64-bit two's complement)."""
        value = self.uint(number, default)
        return value - (1 << 64) if value >= 1 << 63 else value

    def raw(self, number: int, default: bytes = b"") -> bytes:
        return self._last(number, default, bytes)

    def text(self, number: int, default: str = "") -> str:
        raw = self.raw(number, None)
        if raw is None:
            return default
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise LstmctlError(f"{self.where}: protobuf field {number} is not UTF-8 text") from None

    def msg(self, number: int, where: str | None = None) -> "Message":
        return Message(self.raw(number), where or self.where)

    def repeated(self, number: int, where: str | None = None) -> list["Message"]:
        values = self.fields.get(number, [])
        if not all(isinstance(v, bytes) for v in values):
            raise LstmctlError(f"{self.where}: protobuf field {number} has the wrong wire type")
        return [Message(v, where or self.where) for v in values]

    def has(self, number: int) -> bool:
        return number in self.fields
