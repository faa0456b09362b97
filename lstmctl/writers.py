"""Writing results: npz / npy / json / csv, atomically, so a failure leaves no partial file."""

import io
import json
import os
import sys
import tempfile

import numpy as np

from .errors import LstmctlError, UsageError


def to_bytes(arrays: dict, fmt: str) -> bytes:
    """Serialise `arrays` (name -> ndarray) as one of npz, npy, json, csv."""
    if fmt == "npz":
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()
    if fmt == "json":
        return (json.dumps({k: np.asarray(v).tolist() for k, v in arrays.items()}, allow_nan=True) + "\n").encode()
    if len(arrays) != 1:
        raise UsageError(f"--format {fmt} holds one array, {len(arrays)} were selected ({', '.join(arrays)}); choose one with --key or use npz/json")
    (array,) = arrays.values()
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        return buf.getvalue()
    if fmt == "csv":
        a = np.asarray(array)
        if a.ndim == 0:
            a = a.reshape(1, 1)
        elif a.ndim == 1:
            a = a.reshape(1, -1)
        elif a.ndim > 2:
            a = a.reshape(-1, a.shape[-1])  # rows: every leading index in C order
        buf = io.StringIO()
        np.savetxt(buf, a, delimiter=",", fmt="%.9g")
        return buf.getvalue().encode()
    raise UsageError(f"unknown format {fmt!r}")


def publish(tmp: str, output: str):
    """Rename a finished temporary file into place, with an ordinary file's permissions
    (mkstemp makes 0600), so a reader never sees a partial result."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, output)


def write(data: bytes, output: str | None, binary: bool):
    """Write to a file atomically (temp file + rename), or to stdout."""
    if output is None or output == "-":
        if binary and sys.stdout.isatty():
            raise UsageError("refusing to write binary data to a terminal; use --output FILE or a pipe")
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise LstmctlError(f"{output}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".lstmctl-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        publish(tmp, output)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise LstmctlError(f"{output}: cannot be written ({exc.strerror})") from None
