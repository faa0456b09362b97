"""A tiny FlatBuffers writer for tests: builds .tflite files on the fly (hostile ones included),
so no malicious binary is committed. Tables are written parent first, children after (every
offset points forward, as FlatBuffers requires); each scalar field takes a 4-byte slot.

    T((0, "u32", 3), (2, "tables", [T(...)]))   # field id, kind, value

Kinds: u8 i8 i32 u32 f32 bool (scalars), str, ivec (int32 vector), bytes (ubyte vector), table,
tables (vector of tables)."""

import struct

SCALARS = {"u8": "B", "i8": "b", "i32": "i", "u32": "I", "f32": "f", "bool": "?"}


class T:
    def __init__(self, *fields):
        self.fields = list(fields)


def build(root: T, ident: bytes = b"TFL3") -> bytes:
    buf = bytearray(8)
    buf[4:8] = ident

    def align(n=4):
        buf.extend(b"\0" * (-len(buf) % n))

    def table(t):
        align()
        n = max((i for i, _, _ in t.fields), default=-1) + 1
        vtable = len(buf)
        slots = [0] * n
        for i, _, _ in t.fields:
            slots[i] = 4 + 4 * i
        buf.extend(struct.pack(f"<HH{n}H", 4 + 2 * n, 4 + 4 * n, *slots))
        align()
        pos = len(buf)
        buf.extend(struct.pack("<i", pos - vtable) + b"\0" * (4 * n))
        later = []
        for i, kind, value in t.fields:
            at = pos + 4 + 4 * i
            if kind in SCALARS:
                struct.pack_into("<" + SCALARS[kind], buf, at, value)
            else:
                later.append((at, kind, value))
        for at, kind, value in later:
            struct.pack_into("<I", buf, at, obj(kind, value) - at)
        return pos

    def obj(kind, value):
        if kind == "table":
            return table(value)
        align(16 if kind == "bytes" else 4)
        if kind == "bytes":  # the data itself 16-aligned, after its count
            buf.extend(b"\0" * 12)
        pos = len(buf)
        if kind == "str":
            data = value.encode()
            buf.extend(struct.pack("<I", len(data)) + data + b"\0")
        elif kind == "ivec":
            buf.extend(struct.pack(f"<I{len(value)}i", len(value), *value))
        elif kind == "bytes":
            buf.extend(struct.pack("<I", len(value)) + bytes(value))
        elif kind == "tables":
            buf.extend(struct.pack("<I", len(value)) + b"\0" * (4 * len(value)))
            for k, t in enumerate(value):
                slot = pos + 4 + 4 * k
                struct.pack_into("<I", buf, slot, table(t) - slot)
        return pos

    struct.pack_into("<I", buf, 0, table(root))
    return bytes(buf)


# --- a .tflite model from plain lists -----------------------------------------------------------

CODES = {"ADD": 0, "FULLY_CONNECTED": 9, "LESS": 58, "WHILE": 119, "FILL": 94, "CUSTOM": 32, "TANH": 28}
OPTIONS = {"WHILE": 93}  # BuiltinOptions union tag of the options written


def tensor(name, shape, type_=0, buffer=0):
    return T((0, "ivec", list(shape)), (1, "i8", type_), (2, "u32", buffer), (3, "str", name))


def operator(opcode_index, inputs, outputs, while_options=None):
    fields = [(0, "u32", opcode_index), (1, "ivec", list(inputs)), (2, "ivec", list(outputs))]
    if while_options is not None:
        fields += [(3, "u8", OPTIONS["WHILE"]), (4, "table", T((0, "i32", while_options[0]), (1, "i32", while_options[1])))]
    return T(*fields)


def subgraph(name, tensors, inputs, outputs, operators):
    return T((0, "tables", tensors), (1, "ivec", inputs), (2, "ivec", outputs), (3, "tables", operators), (4, "str", name))


def model(codes, subgraphs, buffers, custom=None) -> bytes:
    """`codes`: builtin operator names (or 'CUSTOM'); `buffers`: bytes per buffer (buffer 0 empty)."""
    opcodes = [T((0, "i8", min(CODES[c], 127)), (3, "i32", CODES[c]), *([(1, "str", custom)] if c == "CUSTOM" else [])) for c in codes]
    return build(T((0, "u32", 3), (1, "tables", opcodes), (2, "tables", subgraphs), (4, "tables", [T((0, "bytes", b)) for b in [b"", *buffers]])))
