"""Inputs larger than memory: a .npy read in batch chunks, results streamed to disk.

Rows are read with plain file reads (a memory map would count every page it touched as resident
memory, and die of SIGBUS when another process shrinks the file), and each result key is appended
to its own .npy file beside the output as chunks arrive; at the end they are packed (uncompressed,
zip64) into the .npz, or the one .npy is renamed into place. Resident memory is bounded by the
chunk, not by the input.
"""

import math
import os
import shutil
import sys
import time
import zipfile

import numpy as np

from ..errors import LstmctlError, UsageError
from ..state import check_batch, concatenate
from .inputs import _read_npy_header
from .writers import make_dir, publish, refuse_overwrite, temp_path, writing

STREAM_THRESHOLD = 256 << 20  # .npy inputs above this are read and run in chunks
CHUNK_BYTES = 32 << 20  # input bytes per chunk when --chunk is not given


class NpyRows:
    """A .npy on disk, read a range of rows at a time (after the same header checks as a full load)."""

    def __init__(self, path: str):
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as fh:
                shape, fortran, dtype = _read_npy_header(fh, path)
                self.offset = fh.tell()
        except OSError as exc:
            raise LstmctlError(f"{path}: cannot be read ({exc.strerror})") from None
        declared = math.prod(shape) * dtype.itemsize
        if declared > size - self.offset:
            raise LstmctlError(f"{path}: header declares {declared} bytes of data, the file holds {size - self.offset}")
        if not shape:
            raise LstmctlError(f"{path}: a 0-d array has no samples")
        self.path, self.shape, self.dtype, self.fortran = path, shape, dtype, fortran
        self.ndim = len(shape)
        self.row_items = math.prod(shape[1:])

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(self.shape[0])
        n, size = stop - start, self.dtype.itemsize
        try:
            with open(self.path, "rb") as fh:
                if self.fortran:  # column-major: the rows of each column are contiguous on disk
                    columns = np.empty((self.row_items, n), self.dtype)
                    for j, column in enumerate(columns):
                        self._read(fh, self.offset + (j * self.shape[0] + start) * size, column)
                    part = columns.T.reshape((n, *self.shape[1:]), order="F")
                else:
                    part = np.empty((n, *self.shape[1:]), self.dtype)
                    self._read(fh, self.offset + start * self.row_items * size, part)
        except OSError as exc:
            raise LstmctlError(f"{self.path}: cannot be read ({exc.strerror})") from None
        return part.astype(self.dtype.newbyteorder("="), copy=False)

    def _read(self, fh, offset: int, into: np.ndarray):
        """Fill `into` from `offset`. Through the file object, never np.fromfile: NumPy's check of
        whether it was given a path runs Python code, and a Ctrl-C landing there came out of NumPy
        as a TypeError (issue 23)."""
        fh.seek(offset)
        if fh.readinto(memoryview(into).cast("B")) != into.nbytes:
            raise LstmctlError(f"{self.path}: the file ended before its declared data (it shrank while being read)")


def streamable(values, chunk) -> dict | None:
    """{input name or None: row reader} when every --input is a .npy and streaming is asked for
    (--chunk) or needed (a file over STREAM_THRESHOLD); else None."""
    paths = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or os.path.exists(value):
            name, path = None, value
        paths[name] = path
    if not paths or not all(p != "-" and p.lower().endswith(".npy") and os.path.isfile(p) for p in paths.values()):
        return None
    if chunk is None and all(os.path.getsize(p) <= STREAM_THRESHOLD for p in paths.values()):
        return None
    return {name: NpyRows(path) for name, path in paths.items()}


def chunk_rows(arrays: dict, chunk: int | None) -> int:
    if chunk is not None:
        return chunk
    per_row = sum(a.row_items * a.dtype.itemsize for a in arrays.values()) or 1
    return max(1, CHUNK_BYTES // per_row)


class ResultWriter:
    """Result arrays appended chunk by chunk to .npy files, then packed into `output` (npz) or
    renamed into place (npy). Chunks must arrive in row order. Used as a context manager: however
    the run ends (an error, Ctrl-C), the temporary folder goes with it."""

    def __init__(self, output: str, fmt: str, rows: int, outdir: str | None = None, reads=None):
        """`outdir` (run --outdir): each key's .npy is renamed into that folder instead, none over
        a file of `reads` (the files the run read, as writers.refuse_overwrite takes them)."""
        self.outdir, self.reads = outdir, reads or {}
        if outdir is not None:
            make_dir(outdir)
            output, fmt = os.path.join(outdir, "result.npy"), "npy"
        elif fmt not in ("npz", "npy") or output in (None, "-"):
            raise UsageError("a streamed run writes --format npz or npy to a file: give --output PATH")
        self.output, self.fmt, self.rows = output, fmt, rows
        self.tmp = temp_path(output, folder=True)
        self.files = {}  # key -> (path, open file)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.abort()

    def append(self, result: dict, start: int, stop: int):
        with writing(self.output):
            for key, value in result.items():
                if key not in self.files:
                    self._start(key, value)
                # the file object writes, never ndarray.tofile: see NpyRows._read
                self.files[key][1].write(memoryview(np.ascontiguousarray(value)).cast("B"))

    def _start(self, key: str, value: np.ndarray):
        if self.fmt == "npy" and self.files and self.outdir is None:
            raise UsageError(f"--format npy holds one array, the run gives {', '.join([*self.files, key])}; choose one with --key")
        path = os.path.join(self.tmp, f"{len(self.files)}.npy")
        self.files[key] = (path, open(path, "wb"))
        header = {"descr": np.lib.format.dtype_to_descr(value.dtype), "fortran_order": False, "shape": (self.rows, *value.shape[1:])}
        np.lib.format.write_array_header_2_0(self.files[key][1], header)

    def finish(self):
        with writing(self.output):
            for _, fh in self.files.values():
                fh.close()
        if self.outdir is not None:
            from .writers import npy_file_name

            names = {}
            for key in self.files:
                name = npy_file_name(key)
                if name in names:
                    raise LstmctlError(f"result keys {names[name]!r} and {key!r} would both be written to {name}")
                names[name] = key
            refuse_overwrite({"--outdir": [os.path.join(self.outdir, name) for name in names]}, self.reads)
            for name, key in names.items():  # every file complete before the first is put in place
                publish(self.files[key][0], os.path.join(self.outdir, name))
        elif self.fmt == "npy":
            ((path, _),) = self.files.values()
            publish(path, self.output)
        else:
            packed = os.path.join(self.tmp, "result.npz")
            with writing(self.output), zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for key, (path, _) in self.files.items():
                    with open(path, "rb") as src, zf.open(f"{key}.npy", "w", force_zip64=True) as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            publish(packed, self.output)

    def abort(self):
        for _, fh in self.files.values():
            fh.close()
        self.files.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Progress:
    """A rich progress bar on stderr, shown only on a terminal, not with --quiet, and only once the
    run has taken more than `delay` seconds."""

    def __init__(self, total: int, what: str, quiet=False, delay=1.0):
        self.total, self.what, self.delay = total, what, delay
        self.enabled = not quiet and sys.stderr.isatty()
        self.start, self.done, self.bar = time.monotonic(), 0, None

    def advance(self, n: int):
        self.done += n
        if not self.enabled:
            return
        if self.bar is None and time.monotonic() - self.start > self.delay:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self.bar = Bar("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                           console=Console(stderr=True, emoji=False), transient=True)  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=self.total, completed=self.done)
        elif self.bar is not None:
            self.bar.update(self.task, completed=self.done)

    def close(self):
        if self.bar is not None:
            self.bar.stop()


def run_streamed(model, arrays: dict, writer: ResultWriter, chunk: int, keys=(), sequences=True, dtype=None, progress: Progress | None = None, strict=False, state=None):
    """Run `model` over the rows of `arrays` (name or None -> array-like) `chunk` at a time into
    `writer` (entered by the caller, whose `with` removes its temporary files however this ends),
    each chunk's samples starting from their rows of `state` (a carried State, or None).
    Returns the warnings (non-finite weights or inputs, row numbers counted from the file's start),
    the notes (each once) and the final State of every row."""
    inputs_named = None not in arrays
    rows = {a.shape[0] for a in arrays.values()}
    if len(rows) != 1:
        raise LstmctlError(f"inputs disagree on batch size: {sorted(rows)}")
    (total,) = rows
    if total == 0:
        raise LstmctlError("the input holds no samples (its first dimension is 0)")
    if state:
        check_batch(state, total)
    warnings, notes, states = [], [], []
    try:
        for start in range(0, total, chunk):
            stop = min(total, start + chunk)
            part = {k: np.asarray(a[start:stop]) for k, a in arrays.items()}
            piece = None if state is None else state.rows(start, stop) if state else {}
            result = model.run(part if inputs_named else part[None], dtype=dtype, sequences=sequences, strict=strict, state=piece)
            states.append(result.state)
            notes.extend(n for n in result.notes if n not in notes)
            new = [w for w in result.warnings if w not in warnings]
            warnings.extend(new if start == 0 else [f"{w} (index within the chunk of rows {start}..{stop - 1})" for w in new if w not in model.warnings])
            if keys:
                missing = [k for k in keys if k not in result]
                if missing:
                    raise LstmctlError(f"no result key {missing[0]!r}; keys are: {', '.join(result)}")
                result = {k: result[k] for k in keys}
            writer.append(result, start, stop)
            if progress is not None:
                progress.advance(stop - start)
        writer.finish()
        return warnings, notes, concatenate(states)
    finally:
        if progress is not None:
            progress.close()
