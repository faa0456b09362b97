"""Writing results: npz / npy / json / csv, atomically, so a failure leaves no partial file."""

import contextlib
import io
import json
import os
import shutil
import stat
import sys
import tempfile

import numpy as np

from ..errors import LstmctlError, UsageError, show, show_lines


def to_bytes(arrays: dict, fmt: str, choose: str = "--key", header: bool = True, output: str | None = None) -> bytes:
    """Serialise `arrays` (name -> ndarray) as one of npz, npy, json, csv; `choose` names the
    option that selects one array (for the message when several are selected for npy or csv).
    A CSV starts with a header row naming its columns unless `header` is False.

    Packing happens in memory before `output` (None: standard output) is touched, so a failure
    here (most often a MemoryError, which np.savez's zipfile may turn into "I/O operation on
    closed file" as it unwinds) is one line naming the output, and nothing is written."""
    try:
        return _pack(arrays, fmt, choose, header)
    except LstmctlError:
        raise
    except Exception as exc:
        where = "standard output" if output in (None, "-") else show(output)
        size = sum(np.asarray(a).nbytes for a in arrays.values())
        if _out_of_memory(exc):
            raise LstmctlError(f"{where}: not written: packing {size} bytes of results as {fmt} needs more memory than this process may use") from None
        raise LstmctlError(f"{where}: not written: packing the results as {fmt} failed ({type(exc).__name__}: {show(exc)})") from None


def _out_of_memory(exc) -> bool:
    """A MemoryError, or an error raised while one unwound (its context)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MemoryError):
            return True
        seen.add(id(exc))
        exc = exc.__context__ or exc.__cause__
    return False


def _pack(arrays: dict, fmt: str, choose: str, header: bool) -> bytes:
    if fmt == "npz":
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()
    if fmt == "json":
        return (json.dumps({k: np.asarray(v).tolist() for k, v in arrays.items()}, allow_nan=True) + "\n").encode()
    if len(arrays) != 1:
        raise UsageError(f"--format {fmt} holds one array, {len(arrays)} were selected ({', '.join(arrays)}); choose one with {choose} or use npz/json")
    (array,) = arrays.values()
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        return buf.getvalue()
    if fmt == "csv":
        key, a = next(iter(arrays)), np.asarray(array)
        if a.ndim > 2:
            return _csv_sequence(key, a, header)
        # A row per sample (one row for a 0-d or 1-d array), a column per value: `key[j]`.
        a = a.reshape(1, 1) if a.ndim == 0 else a.reshape(1, -1) if a.ndim == 1 else a
        buf = io.StringIO()
        if header:
            buf.write(",".join([key] if np.ndim(array) == 0 else [f"{key}[{j}]" for j in range(a.shape[1])]) + "\n")
        np.savetxt(buf, a, delimiter=",", fmt="%.9g")
        return buf.getvalue().encode()
    raise UsageError(f"unknown format {fmt!r}")


def _csv_sequence(key: str, a: np.ndarray, header: bool = True) -> bytes:
    """A (batch, time, …) array as CSV: a header `sample,time,<key>[0],<key>[1],…` (trailing axes
    flattened in C order, `<key>[i,j]` beyond three dimensions), then one row per (sample, time)."""
    batch, steps = a.shape[:2]
    rest = a.shape[2:]
    columns = [f"{key}[{j}]" if len(rest) == 1 else f"{key}[{','.join(map(str, idx))}]" for j, idx in enumerate(np.ndindex(*rest))]
    buf = io.StringIO()
    if header:
        buf.write(",".join(["sample", "time", *columns]) + "\n")
    index = np.indices((batch, steps)).reshape(2, -1).T
    if a.size:
        np.savetxt(buf, np.column_stack([index, a.reshape(batch * steps, -1)]), delimiter=",", fmt=["%d", "%d"] + ["%.9g"] * len(columns))
    return buf.getvalue().encode()


def npy_file_name(key: str) -> str:
    """The file `run --outdir` writes for a result key: '/' becomes '__' (lstm/sequence -> lstm__sequence.npy)."""
    name = key.replace("/", "__") + ".npy"
    if "\0" in name or os.sep in name or (os.altsep and os.altsep in name) or len(name.encode()) > 255:
        raise LstmctlError(f"result key {key!r} cannot be a file name")
    return name


@contextlib.contextmanager
def writing(output: str):
    """An OSError while writing `output` (a full disk, a folder not writable) becomes one error
    naming it. A closed pipe stays a BrokenPipeError: the reader's choice, ended quietly by the CLI."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise LstmctlError(f"{output}: cannot be written ({exc.strerror})") from None


def temp_path(output: str, folder=False) -> str:
    """A new empty temporary file (or folder) to build the result for `output` in (see temp_dir)."""
    with writing(output):
        if folder:
            return tempfile.mkdtemp(prefix=".lstmctl-", dir=temp_dir(output))
        fd, path = tempfile.mkstemp(prefix=".lstmctl-", dir=temp_dir(output))
        os.close(fd)
        return path


def make_dir(directory: str):
    """A folder to write into: made if missing (with its parents), refused if something else is there."""
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise LstmctlError(f"{directory}: exists and is not a directory")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise LstmctlError(f"{directory}: cannot be created ({exc.strerror})") from None


def write_many(files: dict, directory: str):
    """Write {file name: bytes} into `directory` (made if missing; refused if it is not a folder):
    every file is first written in full to a temporary file there, and only then are all renamed
    into place, so a failure (a full disk, an interrupt) leaves none of them, partial or new."""
    make_dir(directory)
    temps = {}
    try:
        for name, data in files.items():
            output = os.path.join(directory, name)
            temps[name] = temp_path(output)
            with writing(output), open(temps[name], "wb") as fh:
                fh.write(data)
        for name, tmp in temps.items():
            publish(tmp, os.path.join(directory, name))
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)


def _identity(path: str):
    """(st_dev, st_ino) of the file `path` names, through symbolic links; None if there is none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _stdin_identity():
    """The file standard input reads (`--input -` redirected from a file), if it is one."""
    try:
        return _identity(f"/dev/fd/{sys.stdin.fileno()}") if sys.stdin is not None else None
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None  # no descriptor (a test's runner): nothing on disk to overwrite


def _model_files(path: str) -> list:
    """The files reading MODEL opens besides MODEL itself: a TensorFlow checkpoint's `.index`, data
    shards and `checkpoint` file when MODEL names its prefix or one of them (a folder MODEL is
    covered whole, see refuse_overwrite)."""
    if os.path.isdir(path) or (os.path.exists(path) and not path.endswith(".index") and ".data-" not in os.path.basename(path)):
        return []  # a file read alone (and tensorbundle not imported for it)
    from ..formats.tensorbundle import resolve

    prefix = resolve(path)
    if prefix is None:
        return []
    folder, stem = os.path.split(prefix)
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if n.startswith(stem + ".") or n == "checkpoint"]


MAX_FOLDER_FILES = 1 << 16  # files of a MODEL folder looked at for a hard link to an output


def _in_folder(output: str, ident, folder: str) -> bool:
    """Whether `output` is a file inside `folder`: below it by its real path, or a hard link to a
    file below it (looked for only when the output has other links, among at most MAX_FOLDER_FILES)."""
    real, top = os.path.realpath(output), os.path.realpath(folder)
    if os.path.commonpath([real, top]) == top:
        return True
    if os.stat(output).st_nlink < 2:
        return False
    seen = 0
    for root, _, files in os.walk(top):
        for name in files:
            seen += 1
            if seen > MAX_FOLDER_FILES:
                return False
            if _identity(os.path.join(root, name)) == ident:
                return True
    return False


def refuse_overwrite(outputs: dict, reads: dict, allowed=()):
    """Refuse (UsageError, exit 2), before anything is written, an output that names a file the
    command reads, or another output. `outputs` and `reads` map an option ('-o', 'MODEL',
    '--input') to a path, a list of paths, or None (not given); `allowed` holds (output option,
    read option) pairs that may be one file (`run --state-in s.npz --state-out s.npz`: the state
    is read whole before the run). Files are compared by identity (st_dev, st_ino), so a symbolic
    or a hard link to an input is caught; MODEL as a folder (a SavedModel's, a checkpoint's)
    covers every file inside it; MODEL as a checkpoint prefix, the files of that checkpoint;
    `--input -` the file standard input reads, if any. A path that does not exist yet (a new
    output) can overwrite nothing."""

    def paths(value):
        return [] if value is None else [value] if isinstance(value, str) else [p for p in value if p is not None]

    if not any(paths(value) for value in outputs.values()):
        return
    files, folders = [], []  # (option, path, identity), (option, path)
    for option, value in reads.items():
        for path in map(os.fspath, paths(value)):
            if path == "-":
                files.append((option, "standard input", _stdin_identity()))
                continue
            if option == "MODEL":
                if os.path.isdir(path):
                    folders.append((option, path))
                    continue
                files.extend((option, f"{path}, through {p}", _identity(p)) for p in _model_files(path))
            files.append((option, path, _identity(path)))
    written = {}
    for option, value in outputs.items():
        for output in map(os.fspath, paths(value)):
            if output == "-":
                continue
            ident = _identity(output)
            if ident is not None:
                for read, path, other in files:
                    if other == ident and (option, read) not in allowed:
                        raise UsageError(f"{option} {show(output)}: is the {read} file this command reads ({show(path)}); write the result elsewhere")
                for read, folder in folders:
                    if _in_folder(output, ident, folder):
                        raise UsageError(f"{option} {show(output)}: is a file inside the {read} folder this command reads ({show(folder)}); write the result elsewhere")
            key = ident or os.path.realpath(output)  # two new outputs may name one path too
            if written.setdefault(key, option) != option:
                raise UsageError(f"{option} {show(output)}: is also where {written[key]} writes; give each its own file")


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
        with writing(output):
            if atomic:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
                os.replace(tmp, target)
            else:
                with open(tmp, "rb") as src, open(output, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write(data: bytes, output: str | None, binary: bool):
    """Write to a file atomically (temp file + rename), through to a device or FIFO, or to stdout
    (`-`), where text (CSV headers hold layer names) has its control characters escaped as every
    other output there (errors.show_lines); a file gets the data as it is."""
    if output is None or output == "-":
        out = stdout_bytes()
        if binary and out.isatty():
            raise UsageError("refusing to write binary data to a terminal; use --output FILE or a pipe")
        if not binary:
            data = show_lines(data.decode("utf-8", "replace")).encode()
        out.write(data)
        out.flush()
        return
    tmp = temp_path(output)
    try:
        with writing(output), open(tmp, "wb") as fh:
            fh.write(data)
        publish(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class Guarded:
    """Standard output, whose write failures (a full disk, an encoding without a character) become
    one clear error naming it. A closed pipe stays a BrokenPipeError, for the CLI to end quietly."""

    def __init__(self, stream, name: str):
        self._stream, self._name = stream, name

    def _guard(self, method, *args):
        try:
            return method(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise LstmctlError(f"cannot write {self._name}: {exc.strerror or exc}") from None
        except UnicodeEncodeError as exc:
            bad = show(exc.object[exc.start : exc.start + 1])
            raise LstmctlError(f"cannot write {self._name}: its encoding, {exc.encoding}, has no '{bad}' (use a UTF-8 locale, or PYTHONIOENCODING=utf-8)") from None

    def write(self, data):
        return self._guard(self._stream.write, data)

    def flush(self):
        return self._guard(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _stdout():
    if sys.stdout is None:  # started with it closed (`>&-`)
        raise LstmctlError("cannot write standard output: it is closed")
    return sys.stdout


def stdout_bytes():
    return Guarded(_stdout().buffer, "standard output")


def stdout_text():
    return Guarded(_stdout(), "standard output")


def echo(text: str, nl=True):
    """Text on standard output (JSON, a diagram), through the same guard as every other output,
    any control character in it escaped (errors.show_lines: names in a DOT or Mermaid label)."""
    out = stdout_text()
    text = show_lines(text)
    out.write(text + "\n" if nl else text)
    out.flush()
