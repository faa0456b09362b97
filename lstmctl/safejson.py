"""JSON parsed strictly as data: size and depth caps, no duplicate keys, no NaN or Infinity."""

import json
import math

from .errors import LstmctlError

MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64


def _no_duplicates(where):
    def hook(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                raise LstmctlError(f"{where}: duplicate key {key!r} in JSON")
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
            raise LstmctlError(f"{where}: number {text} overflows")
        return value

    return hook


def _check_depth(text: str, where: str):
    # Brackets inside strings may inflate the count; that only makes the cap stricter.
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise LstmctlError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels")
        elif ch in "]}":
            depth -= 1


def loads(data, where: str):
    """Parse JSON bytes or text from an untrusted file; `where` names it in errors."""
    if isinstance(data, bytes):
        if len(data) > MAX_JSON_BYTES:
            raise LstmctlError(f"{where}: JSON is larger than {MAX_JSON_BYTES} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise LstmctlError(f"{where}: JSON is not valid UTF-8") from None
    if len(data) > MAX_JSON_BYTES:
        raise LstmctlError(f"{where}: JSON is larger than {MAX_JSON_BYTES} bytes")
    _check_depth(data, where)
    try:
        return json.loads(
            data,
            object_pairs_hook=_no_duplicates(where),
            parse_constant=_reject_constant(where),
            parse_float=_finite_float(where),
        )
    except json.JSONDecodeError as exc:
        raise LstmctlError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise LstmctlError(f"{where}: JSON nested too deeply") from None


def positive_int(value, what: str) -> int:
    """A size from a config: a true int (not a bool, not a float), at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LstmctlError(f"{what} must be a positive integer, got {value!r}")
    return value
