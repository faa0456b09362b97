"""JSON parsed strictly as data: size and depth caps, no duplicate keys, no NaN or Infinity."""

import json
import math

import numpy as np

from ..errors import LstmctlError, excerpt

MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
MAX_INT_DIGITS = 40  # larger integers are no size, index or token id


def _no_duplicates(where):
    def hook(pairs):
        out = dict(pairs)  # one C call per object (a header may hold 10^5); a key given twice makes it shorter
        if len(out) != len(pairs):
            seen = set()
            for key, _ in pairs:
                if key in seen:
                    raise LstmctlError(f"{where}: duplicate key {excerpt(key)} in JSON")
                seen.add(key)
        return out

    return hook


def _reject_constant(where):
    def hook(name):
        raise LstmctlError(f"{where}: {name} is not allowed in JSON")

    return hook


def _finite_float(where):
    def hook(text):
        value = float(text)
        if not math.isfinite(value):
            raise LstmctlError(f"{where}: number {excerpt(text)} overflows")
        return value

    return hook


def _int(where):
    def hook(text):
        if len(text) > MAX_INT_DIGITS:
            raise LstmctlError(f"{where}: number {excerpt(text)} is too large")
        return int(text)

    return hook


MAX_CONTAINERS = 1 << 20  # objects and arrays in one document: what parsing it allocates
# Values (and keys) in one document: each becomes a Python object of 30 to 60 bytes, so 64 MiB of
# one-character values would parse into gigabytes; 2^22 values stay within a few hundred MiB.
MAX_VALUES = 1 << 22
_CHUNK = 1 << 20
_QUOTE, _BACKSLASH, _OPENING, _CLOSING, _SEPARATORS = 34, 92, (91, 123), (93, 125), (44, 58)


def _any_of(codes, pair):
    """codes equal to either of two bytes (np.isin sorts: 60 times slower on a MiB)."""
    return (codes == pair[0]) | (codes == pair[1])


def _check_structure(data: bytes, where: str):
    """Depth, container and value counts from the brackets, commas and colons outside strings,
    before anything is parsed.

    Linear time and bounded memory: NumPy scans 1 MiB at a time, carrying the string state, the
    run of backslashes and the depth from one block to the next (regular expressions either
    backtracked or made a match per string: 4 s for 60 MiB of short strings). Quotes, backslashes,
    brackets, commas and colons are ASCII, so the UTF-8 bytes are read as they are."""
    depth = containers = values = 0
    inside = 0  # 1 within a string
    run = 0  # backslashes just before the block
    for start in range(0, len(data), _CHUNK):
        codes = np.frombuffer(data, np.uint8, min(_CHUNK, len(data) - start), start)
        slashes = codes == _BACKSLASH
        quotes = np.flatnonzero(codes == _QUOTE)
        plain = np.flatnonzero(~slashes) if run or slashes.any() else None
        if plain is not None and quotes.size:  # a quote after an odd run of backslashes is escaped
            before = np.searchsorted(plain, quotes) - 1
            last = np.where(before >= 0, plain[np.maximum(before, 0)], -1 - run)
            quotes = quotes[(quotes - 1 - last) % 2 == 0]
        if plain is None or not slashes[-1]:
            run = 0
        else:
            run = len(codes) - 1 - int(plain[-1]) if plain.size else run + len(codes)
        flips = np.zeros(len(codes), np.int32)
        flips[quotes] = 1
        outside = ((np.cumsum(flips, dtype=np.int32) + inside) & 1) == 0  # int32 and & 1: a tenth of the time of int64 and % 2
        inside = (inside + len(quotes)) % 2
        opening = _any_of(codes, _OPENING) & outside
        closing = _any_of(codes, _CLOSING) & outside
        containers += int(np.count_nonzero(opening))
        values += int(np.count_nonzero(_any_of(codes, _SEPARATORS) & outside)) + int(np.count_nonzero(opening))
        if containers > MAX_CONTAINERS:
            raise LstmctlError(f"{where}: JSON holds more than {MAX_CONTAINERS} objects and arrays")
        if values >= MAX_VALUES:  # every value but a container's first follows a comma; every key precedes a colon
            raise LstmctlError(f"{where}: JSON holds more than {MAX_VALUES} values")
        steps = np.cumsum(opening.astype(np.int32) - closing, dtype=np.int32) + depth
        if int(steps.max()) > MAX_DEPTH:
            raise LstmctlError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels")
        depth = int(steps[-1])


def loads(data, where: str):
    """Parse JSON bytes or text from an untrusted file; `where` names it in errors."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, (bytes, str)):
        raise LstmctlError(f"{where}: expected JSON text, found {type(data).__name__}")
    if len(data) > MAX_JSON_BYTES:  # characters: at most the UTF-8 bytes
        raise LstmctlError(f"{where}: JSON is larger than {MAX_JSON_BYTES} bytes")
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_JSON_BYTES:
        raise LstmctlError(f"{where}: JSON is larger than {MAX_JSON_BYTES} bytes")
    _check_structure(raw, where)
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise LstmctlError(f"{where}: JSON is not valid UTF-8") from None
    try:
        return json.loads(
            data,
            object_pairs_hook=_no_duplicates(where),
            parse_constant=_reject_constant(where),
            parse_float=_finite_float(where),
            parse_int=_int(where),
        )
    except json.JSONDecodeError as exc:
        raise LstmctlError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise LstmctlError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal over Python's digit limit
        raise LstmctlError(f"{where}: not valid JSON ({exc})") from None
    except MemoryError:
        raise LstmctlError(f"{where}: JSON too large to parse in the memory available") from None
