"""A state_dict written as torch.save writes it, without torch: a zip (stored, not compressed) of

    archive/data.pkl        pickle protocol 2: an OrderedDict of name -> _rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())
    archive/data/<k>        each tensor's storage, its raw little-endian bytes
    archive/byteorder       "little"
    archive/version         "3"

The pickle names only what torch.load(weights_only=True) allows (collections.OrderedDict,
torch._utils._rebuild_tensor_v2, torch.<Type>Storage); each tensor is its own contiguous storage.
And the same arrays as safetensors: an 8-byte header length, the JSON header, then the bytes.
"""

import io
import json
import struct
import zipfile

import numpy as np

from ..errors import LstmctlError
from ..formats.torch_file import contiguous_strides

STORAGE = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage", np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage"}
SAFETENSORS = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("float16"): "F16", np.dtype("int64"): "I64"}


# pickle opcodes, protocol 2 (also the hostile-file tests' vocabulary)


def op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_text(s: str) -> bytes:
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_int(n: int) -> bytes:
    return b"J" + struct.pack("<i", n) if -(1 << 31) <= n < 1 << 31 else b"\x8a\x08" + struct.pack("<q", n)


def op_tuple(items) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor(key: str, a: np.ndarray) -> bytes:
    """The opcodes of one tensor: _rebuild_tensor_v2 of a persistent storage (('storage', type, key, 'cpu', numel) by BINPERSID)."""
    storage = op_tuple([op_text("storage"), op_global("torch", STORAGE[a.dtype]), op_text(key), op_text("cpu"), op_int(a.size)]) + b"Q"
    strides = contiguous_strides(a.shape)
    hooks = op_global("collections", "OrderedDict") + b")R"
    args = op_tuple([storage, op_int(0), op_tuple(map(op_int, a.shape)), op_tuple(map(op_int, strides)), b"\x89", hooks])
    return op_global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _checked(arrays: dict) -> dict:
    out = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype not in STORAGE:
            raise LstmctlError(f"'{name}' holds {a.dtype}, which this writer does not store")
        out[name] = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False)
    return out


def torch_save_bytes(arrays: dict) -> bytes:
    """The bytes of `torch.save(state_dict)` for these arrays (name -> array)."""
    arrays = _checked(arrays)
    body = b"".join(op_text(name) + _tensor(str(k), a) for k, (name, a) in enumerate(arrays.items()))
    pickle = b"\x80\x02" + op_global("collections", "OrderedDict") + b")R(" + body + b"u."
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle)
        z.writestr("archive/byteorder", b"little")
        for k, a in enumerate(arrays.values()):
            z.writestr(f"archive/data/{k}", a.tobytes())
        z.writestr("archive/version", b"3\n")
    return out.getvalue()


def safetensors_bytes(arrays: dict) -> bytes:
    """The bytes of safetensors' save_file for these arrays, with __metadata__ {"format": "pt"}."""
    arrays = _checked(arrays)
    header, at = {"__metadata__": {"format": "pt"}}, 0
    for name, a in arrays.items():
        header[name] = {"dtype": SAFETENSORS[a.dtype], "shape": list(a.shape), "data_offsets": [at, at + a.nbytes]}
        at += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads its header to 8 bytes with spaces
    return struct.pack("<Q", len(text)) + text + b"".join(a.tobytes() for a in arrays.values())
