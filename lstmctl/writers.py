"""Writing results: npz / npy / json / csv, atomically, so a failure leaves no partial file."""

import io
import json
import os
import shutil
import stat
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


def destination(output: str) -> tuple[str, bool]:
    """Where `output` writes, and whether atomically.

    A regular file or a new path is replaced atomically (temp file + rename); through a symlink,
    the file the link names. Anything else (a device such as /dev/null, a FIFO, a socket,
    /dev/stdout, /dev/fd/N) is opened and written through, never replaced."""
    if output.startswith(("/dev/", "/proc/")):
        return output, False
    target = os.path.realpath(output)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target, True
    except OSError as exc:
        raise LstmctlError(f"{output}: cannot be written ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise LstmctlError(f"{output}: is a directory")
    return (target, True) if stat.S_ISREG(st.st_mode) else (output, False)


def temp_dir(output: str) -> str:
    """Where a result for `output` is built: beside the file it replaces, else the system's temp folder."""
    target, atomic = destination(output)
    directory = os.path.dirname(target) if atomic else tempfile.gettempdir()
    if not os.path.isdir(directory):
        raise LstmctlError(f"{output}: directory {directory} does not exist")
    return directory


def publish(tmp: str, output: str):
    """Put a finished temporary file in place: renamed over a regular file, with an ordinary
    file's permissions (mkstemp makes 0600), so a reader never sees a partial result; copied
    into anything else (a device, a FIFO), which is never replaced."""
    target, atomic = destination(output)
    try:
        if atomic:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, target)
        else:
            with open(tmp, "rb") as src, open(output, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except OSError as exc:
        raise LstmctlError(f"{output}: cannot be written ({exc.strerror})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write(data: bytes, output: str | None, binary: bool):
    """Write to a file atomically (temp file + rename), through to a device or FIFO, or to stdout (`-`)."""
    if output is None or output == "-":
        if binary and sys.stdout.isatty():
            raise UsageError("refusing to write binary data to a terminal; use --output FILE or a pipe")
        stdout_bytes().write(data)
        stdout_bytes().flush()
        return
    fd, tmp = tempfile.mkstemp(prefix=".lstmctl-", dir=temp_dir(output))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        os.unlink(tmp)
        raise LstmctlError(f"{output}: cannot be written ({exc.strerror})") from None
    publish(tmp, output)


class Guarded:
    """A stream whose write failures (a full disk…) become one clear error naming the stream."""

    def __init__(self, stream, name: str):
        self._stream, self._name = stream, name

    def _guard(self, method, *args):
        try:
            return method(*args)
        except BrokenPipeError:
            raise  # the reader has gone: handled quietly by the CLI
        except OSError as exc:
            raise LstmctlError(f"cannot write {self._name}: {exc.strerror or exc}") from None

    def write(self, data):
        return self._guard(self._stream.write, data)

    def flush(self):
        return self._guard(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def stdout_bytes():
    return Guarded(sys.stdout.buffer, "standard output")


def stdout_text():
    return Guarded(sys.stdout, "standard output")
