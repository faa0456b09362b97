"""Zip archives opened with caps: a bounded central directory, known compression methods, safe
member names, and members read in pieces with a size cap and an expansion-ratio check (zip bombs).
Used for .keras files and .npz inputs.
"""

import io
import stat
import struct
import zipfile

from ..errors import LstmctlError, show

MAX_ZIP_RATIO = 200  # uncompressed / compressed, for members over 1 MiB
_CHUNK = 1 << 20


def check_method(info: zipfile.ZipInfo, where: str):
    """Only stored and deflated members: Python inflates those in bounded steps, while one bzip2 or
    LZMA step can expand a few hundred bytes to gigabytes before any cap is checked."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise LstmctlError(f"{where} is compressed with method {info.compress_type}; only stored and deflate members are read")


def read_member(zf: zipfile.ZipFile, name: str, cap: int, where: str, sink=None):
    """A member's bytes (or written into `sink`), read in bounded chunks with a running cap.

    Refused before reading: a declared size over `cap`, or an expansion ratio of a zip bomb.
    Refused while reading: more data than declared, or a real expansion over the ratio."""
    info = zf.getinfo(name)
    shown = show(name)
    check_method(info, f"{where}: member '{shown}'")
    if info.file_size > cap:
        raise LstmctlError(f"{where}: member '{shown}' declares {info.file_size} bytes, over the {cap}-byte cap")
    compressed = max(info.compress_size, 1)
    if info.file_size > _CHUNK and info.file_size > MAX_ZIP_RATIO * compressed:
        raise LstmctlError(f"{where}: member '{shown}' expands {info.file_size // compressed}x; refused as a zip bomb")
    out = sink if sink is not None else io.BytesIO()
    total = 0
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > info.file_size or total > cap:
                    raise LstmctlError(f"{where}: member '{shown}' holds more data than its header declares; refused")
                if total > _CHUNK and total > MAX_ZIP_RATIO * compressed:
                    raise LstmctlError(f"{where}: member '{shown}' expands over {MAX_ZIP_RATIO}x; refused as a zip bomb")
                out.write(chunk)
    except LstmctlError:
        raise
    except Exception as exc:
        raise LstmctlError(f"{where}: member '{shown}' is corrupt or truncated ({type(exc).__name__}: {show(exc)[:100]})") from None
    if total != info.file_size:
        raise LstmctlError(f"{where}: member '{shown}' holds {total} bytes, its header declares {info.file_size}")
    if sink is not None:
        return sink
    return out.getvalue()


def check_names(zf: zipfile.ZipFile, where: str):
    """Member names that stay inside the archive, each once, none a symbolic link: nothing is
    extracted, but Keras's own extraction would follow a link or a '..' out of its folder."""
    seen = set()
    for info in zf.infolist():
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":") or "\0" in name:
            raise LstmctlError(f"{where}: zip member name '{show(name)}' escapes the archive; refused")
        if name in seen:
            raise LstmctlError(f"{where}: zip member '{show(name)}' appears twice; refused")
        if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
            raise LstmctlError(f"{where}: zip member '{show(name)}' is a symbolic link; refused")
        seen.add(name)


_EOCD, _EOCD64, _LOCATOR64 = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"
MAX_CENTRAL_DIRECTORY = 1 << 20  # bytes of zip directory (about 20000 members; a .keras has 3)


def _directory_size(fh) -> int:
    """The central directory size a zip's end records declare (the largest reading, zip64 too)."""
    end = fh.seek(0, 2)
    fh.seek(max(0, end - (22 + 0xFFFF + 20)))  # end record, its comment, the zip64 locator
    tail = fh.read()
    at = len(tail) - 22  # as zipfile looks: an end record without a comment first, then the last one
    if at < 0 or tail[at : at + 4] != _EOCD or tail[-2:] != b"\0\0":
        at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        return 0  # not a zip: zipfile says so
    sizes = [struct.unpack_from("<I", tail, at + 12)[0]]
    if at >= 20 and tail[at - 20 : at - 16] == _LOCATOR64:
        # Python reads the zip64 record just before the locator (3.11) or where it points (later)
        for offset in (end - len(tail) + at - 20 - 56, struct.unpack_from("<Q", tail, at - 12)[0]):
            fh.seek(max(0, offset))
            record = fh.read(56)
            if len(record) == 56 and record[:4] == _EOCD64:
                sizes.append(struct.unpack_from("<Q", record, 40)[0])
    return max(sizes)


def open_zip(source, where: str) -> zipfile.ZipFile:
    """A zip archive (path or file object), its directory size checked first: Python's zipfile
    reads every directory entry into memory before anything else can be looked at."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                size = _directory_size(fh)
        else:
            size = _directory_size(source)
            source.seek(0)
    except OSError as exc:
        raise LstmctlError(f"{where}: cannot be read ({exc.strerror})") from None
    if size > MAX_CENTRAL_DIRECTORY:
        raise LstmctlError(f"{where}: zip central directory of {size} bytes is over the {MAX_CENTRAL_DIRECTORY}-byte cap; refused")
    try:
        return zipfile.ZipFile(source)
    except Exception:
        raise LstmctlError(f"{where}: not a readable zip archive (truncated or corrupt)") from None
