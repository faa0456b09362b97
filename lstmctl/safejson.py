"""JSON parsed strictly as data: size and depth caps, no duplicate keys, no NaN or Infinity."""

import json
import math
import re

import numpy as np

from .errors import LstmctlError

MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
MAX_INT_DIGITS = 40  # larger integers are no size, index or token id


def _no_duplicates(where):
    def hook(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                raise LstmctlError(f"{where}: duplicate key {_short(repr(key))} in JSON")
            out[key] = value
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
            raise LstmctlError(f"{where}: number {_short(text)} overflows")
        return value

    return hook


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def _int(where):
    def hook(text):
        if len(text) > MAX_INT_DIGITS:
            raise LstmctlError(f"{where}: number {_short(text)} is too large")
        return int(text)

    return hook


MAX_CONTAINERS = 1 << 20  # objects and arrays in one document: what parsing it allocates
_ESCAPE = re.compile(r"\\.", re.S)  # left to right, as JSON reads escapes: \\\" is a backslash, then a quote
_NOT_STRUCTURE = re.compile(r'[^"\[\]{}]+')
_STRING = re.compile(r'"[^"]*"')  # no escapes are left, so only a last, unterminated quote can fail (once)
_CHUNK = 1 << 20


def _check_structure(text: str, where: str):
    """Depth and container count from the brackets outside strings, before anything is parsed.

    Linear time: every pattern here is a single character class or a fixed-length pair, so no
    input makes the regular expressions backtrack (an earlier pattern with nested repetition did)."""
    if "[" not in text and "{" not in text:
        return
    skeleton = _STRING.sub("", _NOT_STRUCTURE.sub("", _ESCAPE.sub("", text)))
    codes = np.frombuffer(skeleton.encode("ascii", "replace"), np.uint8)
    opening = (codes == ord("[")) | (codes == ord("{"))
    closing = (codes == ord("]")) | (codes == ord("}"))
    if int(np.count_nonzero(opening)) > MAX_CONTAINERS:
        raise LstmctlError(f"{where}: JSON holds more than {MAX_CONTAINERS} objects and arrays")
    depth = 0
    for start in range(0, len(codes), _CHUNK):
        part = opening[start : start + _CHUNK].astype(np.int32) - closing[start : start + _CHUNK]
        steps = np.cumsum(part, dtype=np.int32) + depth
        if steps.size and int(steps.max()) > MAX_DEPTH:
            raise LstmctlError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels")
        depth = int(steps[-1]) if steps.size else depth


def loads(data, where: str):
    """Parse JSON bytes or text from an untrusted file; `where` names it in errors."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, (bytes, str)):
        raise LstmctlError(f"{where}: expected JSON text, found {type(data).__name__}")
    if isinstance(data, bytes):
        if len(data) > MAX_JSON_BYTES:
            raise LstmctlError(f"{where}: JSON is larger than {MAX_JSON_BYTES} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise LstmctlError(f"{where}: JSON is not valid UTF-8") from None
    if len(data) > MAX_JSON_BYTES:
        raise LstmctlError(f"{where}: JSON is larger than {MAX_JSON_BYTES} bytes")
    _check_structure(data, where)
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


def positive_int(value, what: str, cap: int | None = None) -> int:
    """A size from a config: a true int (not a bool, not a float), at least 1 (and at most `cap`)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LstmctlError(f"{what} must be a positive integer, got {_short(repr(value))}")
    if cap is not None and value > cap:
        raise LstmctlError(f"{what} is {value}, over lstmctl's cap of {cap}")
    return value
