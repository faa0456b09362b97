"""Reading the user's arrays: .npy, .npz, .csv, .json, or '-' for stdin. Never a pickle.

Binary formats are recognised by magic bytes. A .npy header is checked before any data is
allocated: numeric dtype only, and a declared size the file can actually hold.
"""

import csv
import io
import math
import os
import stat
import sys

import numpy as np

from ..config import short
from ..errors import LstmctlError, excerpt, show
from ..formats import MAGIC_NPY, MAGIC_ZIP, check_kind, safejson
from ..formats.zipsafe import check_method, check_names, open_zip

MAX_INPUT_BYTES = 4 << 30
MAX_TEXT_BYTES = safejson.MAX_JSON_BYTES  # .csv and .json inputs
MAX_ZIP_RATIO = 200  # uncompressed / compressed, for .npz members over 1 MiB
_CHUNK = 1 << 20
_INT_EXACT = 1 << 53  # integers a float64 holds exactly


def _read_npy_header(fh, where: str):
    """(shape, fortran, dtype) from a .npy stream, every numpy failure turned into ours."""
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
    if not isinstance(shape, tuple) or len(shape) > 32 or any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= MAX_INPUT_BYTES for d in shape):
        raise LstmctlError(f"{where}: .npy header shape {short(shape)} is not a tuple of sizes")
    if not isinstance(fortran, bool):
        raise LstmctlError(f"{where}: not a valid .npy header (fortran_order)")
    if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize > 8:
        raise LstmctlError(f"{where}: dtype {short(str(dtype))} is not a plain numeric array (object, string, structured, complex and date dtypes are refused)")
    if dtype.kind == "b":
        raise LstmctlError(f"{where}: boolean arrays are not model inputs")
    return shape, fortran, dtype


def _npy_from_file(fh, size: int | None, where: str) -> np.ndarray:
    """Parse a .npy stream of `size` bytes (None: a stream of unknown length): header checked,
    declared size checked against the size, then exactly the declared bytes read in chunks."""
    shape, fortran, dtype = _read_npy_header(fh, where)
    count = math.prod(shape)
    declared = count * dtype.itemsize
    remaining = None if size is None else size - fh.tell()
    if remaining is not None and declared > remaining:
        raise LstmctlError(f"{where}: header declares {declared} bytes of data, the file holds {remaining}")
    if declared > MAX_INPUT_BYTES:
        raise LstmctlError(f"{where}: array of {declared} bytes is over the {MAX_INPUT_BYTES}-byte cap")
    # The array is allocated once and filled in place (no second copy); a stream of unknown
    # length may declare more than this process may allocate: that is said before reading it.
    try:
        array = np.empty(count, dtype)
    except MemoryError:
        raise LstmctlError(f"{where}: header declares an array of {declared} bytes, more than this process may allocate") from None
    data = memoryview(array.view(np.uint8))
    filled = 0
    while filled < declared:
        try:
            chunk = fh.read(min(_CHUNK, declared - filled))
        except Exception:
            raise LstmctlError(f"{where}: array data is corrupt") from None
        if not chunk:
            raise LstmctlError(f"{where}: header declares {declared} bytes of data, the file holds {filled}")
        data[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array.reshape(shape, order="F" if fortran else "C")


def load_npy_bytes(data: bytes, where: str) -> np.ndarray:
    return _npy_from_file(io.BytesIO(data), len(data), where)


def load_npz(path_or_bytes, where: str) -> dict:
    zf = open_zip(path_or_bytes, where)
    out = {}
    total = 0
    with zf:
        check_names(zf, where)
        for info in zf.infolist():
            member = f"{where}: member '{show(info.filename)}'"
            if not info.filename.endswith(".npy"):
                raise LstmctlError(f"{member} is not an .npy array")
            key = info.filename[: -len(".npy")]
            if info.file_size > MAX_INPUT_BYTES or total + info.file_size > MAX_INPUT_BYTES:
                raise LstmctlError(f"{member} declares {info.file_size} bytes, over the {MAX_INPUT_BYTES}-byte cap")
            check_method(info, member)
            compressed = max(info.compress_size, 1)
            if info.file_size > _CHUNK and info.file_size > MAX_ZIP_RATIO * compressed:
                raise LstmctlError(f"{member} expands {info.file_size // compressed}x; refused as a zip bomb")
            try:
                with zf.open(info) as fh:
                    out[key] = _npy_from_file(_Bounded(fh, info.file_size, compressed, member), info.file_size, f"{where}: {show(info.filename)}")
            except LstmctlError:
                raise
            except Exception:
                raise LstmctlError(f"{member} is corrupt") from None
            total += info.file_size
    if not out:
        raise LstmctlError(f"{where}: .npz holds no arrays")
    return out


class _Bounded:
    """A zip member stream that counts what it hands out: never past the declared size or the ratio."""

    def __init__(self, fh, size, compressed, where):
        self.fh, self.size, self.compressed, self.where = fh, size, compressed, where
        self.pos = 0

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        data = self.fh.read(min(n, self.size - self.pos + 1))
        self.pos += len(data)
        if self.pos > self.size:
            raise LstmctlError(f"{self.where} holds more data than its header declares")
        if self.pos > _CHUNK and self.pos > MAX_ZIP_RATIO * self.compressed:
            raise LstmctlError(f"{self.where} expands over {MAX_ZIP_RATIO}x; refused as a zip bomb")
        return data

    def tell(self):
        return self.pos


def _from_json(data, where: str) -> np.ndarray:
    """A nested list of numbers (no booleans, no nulls, rectangular) as an int64 or float64 array."""
    value = safejson.loads(data, where)
    if isinstance(value, dict):
        raise LstmctlError(f"{where}: expected a nested list of numbers, got an object")
    shape = []
    level = [value]
    while level and isinstance(level[0], list):
        width = len(level[0])
        if any(not isinstance(item, list) or len(item) != width for item in level):
            raise LstmctlError(f"{where}: nested lists are ragged; every row needs the same length")
        shape.append(width)
        level = [x for item in level for x in item]
    for x in level:
        if isinstance(x, list):
            raise LstmctlError(f"{where}: nested lists are ragged; every row needs the same length")
        if isinstance(x, bool):
            raise LstmctlError(f"{where}: expected numbers only, got a boolean ({str(x).lower()})")
        if not isinstance(x, (int, float)):
            got = excerpt(x) if isinstance(x, str) else "null" if x is None else "an object"
            raise LstmctlError(f"{where}: expected numbers only, got {got}")
    if level and all(isinstance(x, int) for x in level):
        if any(not -(1 << 63) <= x < (1 << 63) for x in level):
            raise LstmctlError(f"{where}: an integer does not fit in 64 bits")
        array = np.array(level, dtype=np.int64)
    else:
        array = np.array(level, dtype=np.float64)
    return array.reshape(shape)


MAX_CSV_CELLS = 1 << 22  # cells of one CSV input (each is a Python string while parsing)


def _from_csv(text: str, where: str) -> np.ndarray:
    """One sample: a row per time step, a column per feature; a non-numeric first row is a header."""
    cells = text.count(",") + text.count("\n") + text.count("\r") + 1  # at least the cells the parser would make
    if cells > MAX_CSV_CELLS:
        raise LstmctlError(f"{where}: CSV holds more than {MAX_CSV_CELLS} cells; give an input this large as .npy")
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        numbered = [(reader.line_num, r) for r in reader if r and any(cell.strip() for cell in r)]
    except csv.Error as exc:
        raise LstmctlError(f"{where}: CSV is malformed ({exc})") from None
    if numbered and not _numeric_row(numbered[0][1]):
        numbered = numbered[1:]
    if not numbered:
        raise LstmctlError(f"{where}: CSV holds no data rows")
    rows = [r for _, r in numbered]
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise LstmctlError(f"{where}: CSV rows have different lengths {sorted(widths)}")
    try:
        values = [[float(cell) for cell in r] for r in rows]
    except ValueError:  # its message quotes the whole cell: a line of whatever file the input was
        line, column, cell = next((line, j, cell) for line, r in numbered for j, cell in enumerate(r, 1) if not _numeric_row([cell]))
        raise LstmctlError(f"{where}: CSV line {line}, column {column} is not a number: {excerpt(cell)}") from None
    array = np.array(values)[None]  # one sample: (1, time, features)
    finite = np.isfinite(array)
    if (
        np.all(finite)
        and np.all(np.abs(array) < _INT_EXACT)
        and np.all(array == np.round(array))
        and all("." not in c and "e" not in c.lower() for r in rows for c in r)
    ):
        array = array.astype(np.int64)
    return array


def _numeric_row(row) -> bool:
    try:
        [float(cell) for cell in row]
    except ValueError:
        return False
    return True


def _read_capped(fh, where: str, cap: int, head: bytes = b"") -> bytes:
    """The rest of a stream in bounded chunks, refused once it passes `cap` bytes."""
    data = bytearray(head)
    while True:
        if len(data) > cap:
            raise LstmctlError(f"{where}: larger than the {cap}-byte cap for this kind of input")
        chunk = fh.read(_CHUNK)
        if not chunk:
            return bytes(data)
        data += chunk


class _Stream:
    """A binary stream with its first bytes already read (sniffed) put back in front."""

    def __init__(self, head: bytes, fh):
        self.head, self.fh, self.pos = head, fh, 0

    def read(self, n=-1):
        if n is None or n < 0:
            raise ValueError("unbounded read")
        out = b""
        if self.pos < len(self.head):
            out = self.head[self.pos : self.pos + n]
        if len(out) < n:
            out += self.fh.read(n - len(out))
        self.pos += len(out)
        return out

    def tell(self):
        return self.pos


def _regular_size(fh) -> int | None:
    try:
        st = os.fstat(fh.fileno())
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _open(path: str, pipes: bool):
    """The file at `path` ('-': standard input), refused unless it is a regular file (or, with
    `pipes`, a FIFO: --input from a shell's `<(…)`), before it is opened (formats.check_kind)."""
    if path == "-":
        if sys.stdin is None:  # started with it closed (`<&-`)
            raise LstmctlError("stdin: is closed")
        return sys.stdin.buffer
    check_kind(path, "an array file", folders=False, pipes=pipes)
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise LstmctlError(f"{path}: no such file") from None
    except OSError as exc:
        raise LstmctlError(f"{path}: cannot be read ({exc.strerror})") from None


def load_arrays(path: str, pipes: bool = False):
    """An array, or a dict of arrays (from an .npz), from a regular file (`pipes`: or a FIFO), or '-'.

    The format is sniffed from the first bytes before anything else is read, so a stream that
    never ends (a pipe) is refused or read only as far as its .npy header allows."""
    return _load_tagged(path, pipes)[0]


def _sniff_text(data: bytes) -> str:
    """Text on stdin: JSON when its first non-space character opens a list or an object, else CSV."""
    first = data.lstrip(b" \t\r\n\f\v")[:1]
    return "json" if first in (b"[", b"{") else "csv"


def _load_tagged(path: str, pipes: bool = False):
    """(array or dict of arrays, kind), kind one of npy, npz, csv, json: what load_arrays reads."""
    where = "stdin" if path == "-" else path
    fh = _open(path, pipes)
    try:
        try:
            size = _regular_size(fh)
            if size is not None and size > MAX_INPUT_BYTES:
                raise LstmctlError(f"{where}: larger than the {MAX_INPUT_BYTES}-byte input cap")
            head = fh.read(len(MAGIC_NPY))
            while head and len(head) < len(MAGIC_NPY):
                more = fh.read(len(MAGIC_NPY) - len(head))
                if not more:
                    break
                head += more
        except OSError as exc:
            raise LstmctlError(f"{where}: cannot be read ({exc.strerror})") from None
        if not head:
            raise LstmctlError(f"{where}: is empty")
        try:
            if head.startswith(MAGIC_NPY):
                return _npy_from_file(_Stream(head, fh), size, where), "npy"
            if head.startswith(MAGIC_ZIP):
                return load_npz(io.BytesIO(_read_capped(fh, where, MAX_INPUT_BYTES, head)), where), "npz"
            lower = path.lower()
            if path == "-":  # no name to go by: the text itself says JSON or CSV (read under the same cap)
                text = _read_capped(fh, where, MAX_TEXT_BYTES, head)
                if _sniff_text(text) == "json":
                    return _from_json(text, where), "json"
                return _from_csv(text.decode("utf-8", "replace"), where), "csv"
            if lower.endswith(".csv"):
                return _from_csv(_read_capped(fh, where, MAX_TEXT_BYTES, head).decode("utf-8", "replace"), where), "csv"
            if lower.endswith(".json"):
                return _from_json(_read_capped(fh, where, MAX_TEXT_BYTES, head), where), "json"
        except OSError as exc:
            raise LstmctlError(f"{where}: cannot be read ({exc.strerror})") from None
        if lower.endswith((".npy", ".npz")):
            raise LstmctlError(f"{where}: not a valid {lower[-4:]} file (bad magic bytes)")
        raise LstmctlError(f"{where}: unknown input format; use .npy, .npz, .csv or .json")
    finally:
        if path != "-":
            fh.close()


def _one_sample(array, kind: str, rank) -> object:
    """A JSON (time, features) array read as one sample, (1, time, features), as a CSV always is:
    when the input it feeds takes (batch, time, features) (`rank` 3), or feeds a recurrent layer
    directly (`rank` "direct"). Unknown rank (None): left as given."""
    if kind == "json" and isinstance(array, np.ndarray) and array.ndim == 2 and rank in (3, "direct"):
        return array[None]
    return array


def _input_rank(model, name):
    """The rank (with batch) of the model input `name` (None: the only input), or None if unknown."""
    specs = getattr(model, "inputs", None) or []
    if name is None:
        return len(specs[0].shape) + 1 if len(specs) == 1 else None
    for spec in specs:
        if spec.name == name:
            return len(spec.shape) + 1
    return None


def _named(value: str) -> bool:
    """An --input value NAME=PATH (a file whose own name holds '=' is a PATH)."""
    return "=" in value and not os.path.exists(value)


def input_paths(values) -> list:
    """The files `--input` values name: each PATH, or the PATH of NAME=PATH."""
    return [v.partition("=")[2] if _named(v) else v for v in values]


def parse_input_options(values, model=None, direct=False) -> object:
    """`--input` values: one PATH (array or npz by name) or several NAME=PATH.

    With `model` (or `direct`: the input feeds a recurrent layer), a JSON (time, features) array
    for an input that takes (batch, time, features) is one sample, batched as a CSV is."""
    values = list(values)
    if not values:
        return None

    def rank(name):
        return "direct" if direct else (_input_rank(model, name) if model is not None else None)

    named = [v for v in values if _named(v)]
    if named and len(named) != len(values):
        raise LstmctlError("--input: give either one PATH or NAME=PATH for every input")
    if named:
        out = {}
        for item in named:
            name, _, path = item.partition("=")
            array, kind = _load_tagged(path, pipes=True)
            if isinstance(array, dict):
                if len(array) != 1:
                    raise LstmctlError(f"--input {name}={path}: the .npz holds {len(array)} arrays; give a single array")
                array = next(iter(array.values()))
            out[name] = _one_sample(array, kind, rank(name))
        return out
    if len(values) > 1:
        raise LstmctlError("--input: several inputs must be given as NAME=PATH")
    array, kind = _load_tagged(values[0], pipes=True)
    return _one_sample(array, kind, rank(None))
