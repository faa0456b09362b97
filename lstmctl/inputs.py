"""Reading the user's arrays: .npy, .npz, .csv, .json, or '-' for stdin. Never a pickle.

Binary formats are recognised by magic bytes. A .npy header is checked before any data is
allocated: numeric dtype only, and a declared size the file can actually hold.
"""

import csv
import io
import os
import sys
import zipfile

import numpy as np

from . import safejson
from .errors import LstmctlError
from .readers import MAGIC_NPY, MAGIC_ZIP

MAX_INPUT_BYTES = 4 << 30


def _npy_from_file(fh, size: int, where: str) -> np.ndarray:
    """Parse a .npy stream of `size` bytes with header checks; every numpy failure becomes ours."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # numpy's header parser raises many types: ValueError, SyntaxError, TokenError, EOFError…
        raise LstmctlError(f"{where}: not a valid .npy header ({type(exc).__name__})") from None
    if dtype.hasobject or dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None:
        raise LstmctlError(f"{where}: dtype {dtype} is not a plain numeric array")
    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    remaining = size - fh.tell()
    if declared > remaining:
        raise LstmctlError(f"{where}: header declares {declared} bytes of data, the file holds {remaining}")
    if declared > MAX_INPUT_BYTES:
        raise LstmctlError(f"{where}: array of {declared} bytes is over the {MAX_INPUT_BYTES}-byte cap")
    data = fh.read(declared)
    array = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)))
    array = array.reshape(shape, order="F" if fortran else "C")
    if dtype.kind == "b":
        raise LstmctlError(f"{where}: boolean arrays are not model inputs")
    return array.astype(dtype.newbyteorder("="), copy=True)


def load_npy_bytes(data: bytes, where: str) -> np.ndarray:
    return _npy_from_file(io.BytesIO(data), len(data), where)


def load_npz(path_or_bytes, where: str) -> dict:
    try:
        zf = zipfile.ZipFile(path_or_bytes)
    except Exception:
        raise LstmctlError(f"{where}: not a readable .npz (zip) file") from None
    out = {}
    with zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise LstmctlError(f"{where}: member '{info.filename}' is not an .npy array")
            if info.file_size > MAX_INPUT_BYTES:
                raise LstmctlError(f"{where}: member '{info.filename}' declares {info.file_size} bytes, over the cap")
            try:
                data = zf.read(info)
            except Exception:
                raise LstmctlError(f"{where}: member '{info.filename}' is corrupt") from None
            out[info.filename[: -len(".npy")]] = load_npy_bytes(data, f"{where}: {info.filename}")
    if not out:
        raise LstmctlError(f"{where}: .npz holds no arrays")
    return out


def _from_json(data, where: str) -> np.ndarray:
    value = safejson.loads(data, where)
    if isinstance(value, dict):
        raise LstmctlError(f"{where}: expected a nested list of numbers, got an object")
    try:
        array = np.array(value)
    except ValueError:
        raise LstmctlError(f"{where}: nested lists are ragged; every row needs the same length") from None
    if array.dtype.kind not in "if" or array.dtype == bool:
        raise LstmctlError(f"{where}: expected numbers only, got {array.dtype} values")
    return array


def _from_csv(text: str, where: str) -> np.ndarray:
    """One sample: a row per time step, a column per feature; a non-numeric first row is a header."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(cell.strip() for cell in r)]
    if rows and not _numeric_row(rows[0]):
        rows = rows[1:]
    if not rows:
        raise LstmctlError(f"{where}: CSV holds no data rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise LstmctlError(f"{where}: CSV rows have different lengths {sorted(widths)}")
    try:
        values = [[float(cell) for cell in r] for r in rows]
    except ValueError as exc:
        raise LstmctlError(f"{where}: CSV cell is not a number ({exc})") from None
    array = np.array(values)[None]  # one sample: (1, time, features)
    if np.all(np.isfinite(array)) and np.all(array == np.round(array)) and all("." not in c and "e" not in c.lower() for r in rows for c in r):
        array = array.astype(np.int64)
    return array


def _numeric_row(row) -> bool:
    try:
        [float(cell) for cell in row]
    except ValueError:
        return False
    return True


def _read_bytes(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    if os.path.isdir(path):
        raise LstmctlError(f"{path}: is a directory, not an array file")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise LstmctlError(f"{path}: no such file") from None
    except OSError as exc:
        raise LstmctlError(f"{path}: cannot be read ({exc.strerror})") from None


def load_arrays(path: str):
    """An array, or a dict of arrays (from an .npz), from a path or '-'."""
    where = "stdin" if path == "-" else path
    if path != "-" and not os.path.isdir(path) and os.path.exists(path) and os.path.getsize(path) > MAX_INPUT_BYTES:
        raise LstmctlError(f"{where}: larger than the {MAX_INPUT_BYTES}-byte input cap")
    data = _read_bytes(path)
    if not data:
        raise LstmctlError(f"{where}: is empty")
    if data.startswith(MAGIC_NPY):
        return load_npy_bytes(data, where)
    if data.startswith(MAGIC_ZIP):
        return load_npz(io.BytesIO(data), where)
    lower = path.lower()
    if lower.endswith(".csv"):
        return _from_csv(data.decode("utf-8", "replace"), where)
    if lower.endswith(".json") or path == "-":
        return _from_json(data, where)
    if lower.endswith((".npy", ".npz")):
        raise LstmctlError(f"{where}: not a valid {lower[-4:]} file (bad magic bytes)")
    raise LstmctlError(f"{where}: unknown input format; use .npy, .npz, .csv or .json")


def parse_input_options(values) -> object:
    """`--input` values: one PATH (array or npz by name) or several NAME=PATH."""
    values = list(values)
    if not values:
        return None
    named = [v for v in values if "=" in v and not os.path.exists(v)]
    if named and len(named) != len(values):
        raise LstmctlError("--input: give either one PATH or NAME=PATH for every input")
    if named:
        out = {}
        for item in named:
            name, _, path = item.partition("=")
            array = load_arrays(path)
            if isinstance(array, dict):
                if len(array) != 1:
                    raise LstmctlError(f"--input {name}={path}: the .npz holds {len(array)} arrays; give a single array")
                array = next(iter(array.values()))
            out[name] = array
        return out
    if len(values) > 1:
        raise LstmctlError("--input: several inputs must be given as NAME=PATH")
    array = load_arrays(values[0])
    return array
