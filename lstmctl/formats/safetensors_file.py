""".safetensors files read by hand: an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the tensors' bytes back to back (little-endian).

The header is checked as the format's own reader checks it before any tensor is read: its size
bounded, JSON parsed strictly (safejson), every dtype known, each byte range the size its shape
and dtype need, the ranges contiguous from 0 to the end of the file with no gap or overlap.
"""

import math
import os

import numpy as np

from .. import budget
from ..errors import LstmctlError, show
from . import safejson

MAX_HEADER_BYTES = 16 << 20
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
TORCH_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def looks_like(head: bytes, size: int) -> bool:
    """The first bytes of a safetensors file: a header length that fits the file, then '{'."""
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _entry(name, entry, where):
    """(dtype, shape, offsets) of one header entry, each field's type and range checked where read."""
    at = f"{where}: tensor '{show(name)}'"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise LstmctlError(f"{where}: header entry '{show(name)}' is not {{dtype, shape, data_offsets}}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str):
        raise LstmctlError(f"{at}: dtype is a JSON {type(dtype).__name__}, expected a string ({', '.join(DTYPES)})")
    if dtype not in DTYPES:
        raise LstmctlError(f"{at} has dtype {show(dtype[:20])}, which lstmctl does not read ({', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(type(d) is int for d in shape):
        raise LstmctlError(f"{at}: shape is not a list of integers")
    shape = budget.check_shape(shape, f"{at}: shape")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1]:
        raise LstmctlError(f"{at} has data_offsets that are not [begin, end] with 0 <= begin <= end")
    nbytes = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise LstmctlError(f"{at} {dtype}{shape} needs {nbytes} bytes; its data_offsets span {budget.number(offsets[1] - offsets[0])}")
    return dtype, shape, offsets


def read(path: str) -> tuple:
    """(name -> array, name -> torch dtype name, notes) in the file's order."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(0)
        n = int.from_bytes(fh.read(8), "little")
        if n > MAX_HEADER_BYTES:
            raise LstmctlError(f"{path}: safetensors header of {n} bytes is over the {MAX_HEADER_BYTES}-byte cap")
        if n + 8 > size:
            raise LstmctlError(f"{path}: safetensors header of {n} bytes reaches past the end of the file ({size} bytes)")
        header = safejson.loads(fh.read(n), f"{path}: safetensors header")
        if not isinstance(header, dict):
            raise LstmctlError(f"{path}: safetensors header is not a JSON object")
        notes = []
        metadata = header.pop("__metadata__", None)
        if metadata is not None:
            if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
                raise LstmctlError(f"{path}: safetensors __metadata__ is not an object of strings")
            if metadata:
                notes.append("safetensors metadata: " + ", ".join(f"{show(k)}={show(v)[:40]}" for k, v in list(metadata.items())[:6]))
        budget.check("tensors", len(header), path)
        entries = {name: _entry(name, entry, path) for name, entry in header.items()}
        if not entries:
            raise LstmctlError(f"{path}: safetensors file holds no tensors")
        end = 0
        for name, (_, _, (begin, stop)) in sorted(entries.items(), key=lambda item: item[1][2]):
            if begin != end:
                raise LstmctlError(f"{path}: tensor '{show(name)}' starts at byte {begin} of the data, where {end} was expected (ranges must be contiguous)")
            end = stop
        if end != size - 8 - n:
            raise LstmctlError(f"{path}: the tensors' byte ranges end at {end}, but the file holds {size - 8 - n} bytes of data")
        budget.check("bytes", end, path)
        fh.seek(8 + n)
        data = bytearray(end)  # the tensors' bytes, read once; each array is a view of them
        fh.readinto(data)
        arrays, dtypes = {}, {}
        for name, (dtype, shape, (begin, stop)) in entries.items():
            kind = np.dtype(DTYPES[dtype])
            a = np.frombuffer(data, kind, (stop - begin) // kind.itemsize, begin).reshape(shape)
            if dtype == "BF16":  # bfloat16 is float32's upper half: widening it is exact
                a = (a.astype(np.uint32) << 16).view(np.float32)
            arrays[name] = a.astype(a.dtype.newbyteorder("="), copy=False)
            dtypes[name] = TORCH_NAMES[dtype]
    return arrays, dtypes, notes
