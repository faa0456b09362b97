"""PyTorch `torch.save` files read without torch: the zip form (torch 1.6 and later) and the legacy
pickle form, holding a state_dict (a dict of tensor names to tensors).

    zip:    <root>/data.pkl, <root>/data/<key> (one storage's raw bytes each), <root>/byteorder, <root>/version
    legacy: pickles of the magic number, the protocol (1001) and sys_info, then the state_dict's
            pickle, then the list of storage keys, then each storage as an int64 count and its bytes

A pickle is a program. It is read here by an allow-list unpickler that knows a few names as data
constructors (an OrderedDict, torch's tensor rebuild functions and its storage types) and refuses
every other global, as torch.load(weights_only=True) does; nothing named by the file is imported or
called. Tensors come back as records (storage, offset, size, stride) that are checked against the
storage sizes the archive holds before any array is made.
"""

import io
import os
import pickle
import re
from collections import namedtuple

import numpy as np

from ..errors import LstmctlError, show
from .zipsafe import check_names, open_zip, read_member

MAX_PICKLE_BYTES = 8 << 20  # a state_dict's pickle is about 100 bytes per tensor
MAX_TENSOR_BYTES = 1 << 30
MAX_TOTAL_BYTES = 4 << 30
MAX_DIMS = 32
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_HEAD = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")  # pickle protocol 2 of the magic number
LEGACY_PROTOCOL = 1001

# torch.<Name>Storage -> NumPy type code ('bf16': bfloat16, widened to float32 once read)
STORAGES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "b1",
}  # fmt: skip
TORCH_DTYPE = {"f4": "float32", "f8": "float64", "f2": "float16", "bf16": "bfloat16", "i8": "int64", "i4": "int32", "i2": "int16", "i1": "int8", "u1": "uint8", "b1": "bool"}

StorageType = namedtuple("StorageType", "code")
Storage = namedtuple("Storage", "code key numel")
TensorRef = namedtuple("TensorRef", "storage offset size stride")


class StateDict(dict):
    """collections.OrderedDict as the pickle builds it (its `_metadata` attribute is kept and unused)."""


def _ints(value, what, where, count=None):
    if not isinstance(value, tuple) or not all(type(v) is int for v in value) or (count is not None and len(value) != count) or len(value) > MAX_DIMS:
        raise LstmctlError(f"{where}: a tensor's {what} is not a tuple of at most {MAX_DIMS} integers")
    return value


def _tensor(where):
    def rebuild(storage, offset, size, stride, *rest):
        if not isinstance(storage, Storage) or type(offset) is not int:
            raise LstmctlError(f"{where}: a tensor is rebuilt from something other than a storage and an offset")
        _ints(size, "size", where)
        return TensorRef(storage, offset, size, _ints(stride, "stride", where, len(size)))

    return rebuild


def _parameter(data, *rest):
    return data


class _Unpickler(pickle.Unpickler):
    """The allow-list: a name not listed here is refused, and no name is ever imported."""

    def __init__(self, fh, where, legacy):
        super().__init__(fh)
        self.where, self.legacy = where, legacy
        self.storages = {}
        self.allowed = {
            ("collections", "OrderedDict"): StateDict,
            ("torch._utils", "_rebuild_tensor_v2"): _tensor(where),
            ("torch._utils", "_rebuild_tensor"): _tensor(where),
            ("torch._utils", "_rebuild_parameter"): _parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
        }

    def find_class(self, module, name):
        if module == "torch" and name in STORAGES:
            return StorageType(STORAGES[name])
        found = self.allowed.get((module, name))
        if found is not None:
            return found
        what = f"{show(module)}.{show(name)}"
        if module.startswith("torch.nn") or module == "__main__":
            raise LstmctlError(f"{self.where}: holds a pickled Python class ({what}), a whole model that only its code can rebuild; refused (lstmctl runs nothing from a model file): save model.state_dict() instead")
        raise LstmctlError(f"{self.where}: the pickle calls {what}, which is not a tensor or dict constructor; refused (lstmctl runs nothing from a model file)")

    def persistent_load(self, pid):
        size = 6 if self.legacy else 5
        if not isinstance(pid, tuple) or len(pid) != size or pid[0] != "storage" or not isinstance(pid[1], StorageType) or not isinstance(pid[2], str) or type(pid[4]) is not int or pid[4] < 0:
            raise LstmctlError(f"{self.where}: a storage reference in the pickle is not ('storage', type, key, location, size)")
        if self.legacy and pid[5] is not None:
            raise LstmctlError(f"{self.where}: storage '{show(pid[2])}' is a view of another storage (torch before 1.0); re-save the file with a current torch")
        storage = Storage(pid[1].code, pid[2], pid[4])
        if self.storages.setdefault(storage.key, storage) != storage:
            raise LstmctlError(f"{self.where}: storage '{show(storage.key)}' is declared twice with different types or sizes")
        return storage


MAX_MEMO = 1 << 20  # memo slots: Python's unpickler sizes its memo by the largest index it is told
REFUSED_OPCODES = {"INST", "OBJ", "EXT1", "EXT2", "EXT4", "PERSID", "NEXT_BUFFER", "READONLY_BUFFER"}  # torch.save writes none of them


def _scan(fh, where):
    """Every opcode of the pickle at the stream's position read once, without running any: their
    arguments must be there (a declared length past the end is refused before anything is
    allocated for it), memo indices bounded, and no opcode torch.save never writes."""
    import pickletools

    start = fh.tell()
    try:
        for op, arg, _ in pickletools.genops(fh):
            if op.name in REFUSED_OPCODES:
                raise LstmctlError(f"{where}: the pickle holds a {op.name} opcode, which torch.save never writes; refused")
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET") and not 0 <= int(arg) < MAX_MEMO:
                raise LstmctlError(f"{where}: the pickle uses memo slot {arg}, over lstmctl's cap of {MAX_MEMO}; refused")
    except LstmctlError:
        raise
    except Exception as exc:  # pickletools says what is malformed: a truncated argument, an unknown opcode
        raise LstmctlError(f"{where}: not a readable pickle ({show(exc)[:80]})") from None
    fh.seek(start)


def _unpickle(fh, where, legacy=False):
    _scan(fh, where)
    unpickler = _Unpickler(fh, where, legacy)
    try:
        return unpickler.load(), unpickler.storages
    except LstmctlError:
        raise
    except RecursionError:
        raise LstmctlError(f"{where}: the pickle nests too deeply") from None
    except MemoryError:
        raise LstmctlError(f"{where}: the pickle needs more memory than this process may use") from None
    except Exception as exc:
        raise LstmctlError(f"{where}: not a readable pickle ({type(exc).__name__}: {show(exc)[:80]})") from None


def _state_dict(obj, where, notes):
    """The dict of tensors the file holds: the top-level dict, or the one dict of tensors inside it
    (a training checkpoint's {'model': state_dict, 'epoch': …})."""
    if not isinstance(obj, dict):
        raise LstmctlError(f"{where}: holds a {type(obj).__name__}, not a state_dict (a dict of tensors)")
    if obj and all(isinstance(v, TensorRef) for v in obj.values()):
        return obj
    inner = [k for k, v in obj.items() if isinstance(v, dict) and v and all(isinstance(t, TensorRef) for t in v.values())]
    if len(inner) != 1:
        kinds = ", ".join(f"'{show(k)}' ({type(v).__name__})" for k, v in list(obj.items())[:6]) or "nothing"
        raise LstmctlError(f"{where}: holds no state_dict (a dict of tensors), or several; its entries are {kinds}")
    notes.append(f"the state_dict under the checkpoint's key '{show(inner[0])}' (its other entries are not weights)")
    return obj[inner[0]]


def _check_names(state, where):
    for key in state:
        if not isinstance(key, str) or not key or len(key) > 1000:
            raise LstmctlError(f"{where}: state_dict key {show(repr(key))[:60]} is not a tensor name")


def _array(ref: TensorRef, data: np.ndarray, name: str, where: str) -> np.ndarray:
    """The tensor `ref` describes, cut out of its storage's elements `data` (bounds checked first)."""
    if ref.offset < 0 or any(s < 0 for s in ref.size) or any(s < 0 for s in ref.stride):
        raise LstmctlError(f"{where}: tensor '{show(name)}' has a negative offset, size or stride")
    count = int(np.prod(ref.size, dtype=object))
    if count and ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride)) >= ref.storage.numel:
        raise LstmctlError(f"{where}: tensor '{show(name)}' {tuple(ref.size)} (offset {ref.offset}, strides {tuple(ref.stride)}) reaches past its storage of {ref.storage.numel} elements")
    if count * data.itemsize > MAX_TENSOR_BYTES:
        raise LstmctlError(f"{where}: tensor '{show(name)}' {tuple(ref.size)} is over the {MAX_TENSOR_BYTES}-byte cap")
    if not count:
        out = np.zeros(ref.size, data.dtype)
    else:
        view = np.lib.stride_tricks.as_strided(data[ref.offset :], shape=ref.size, strides=[s * data.itemsize for s in ref.stride], writeable=False)
        out = np.array(view, dtype=data.dtype.newbyteorder("="))
    if ref.storage.code == "bf16":  # bfloat16 is float32's upper half: widening it is exact
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _element(code: str, big: bool) -> np.dtype:
    return np.dtype("u2" if code == "bf16" else code).newbyteorder(">" if big else "<")


def _arrays(state, storages, read, where, big) -> tuple:
    """(name -> array, name -> torch dtype); `read(storage, nbytes)` gives a storage's bytes, its size checked first."""
    total = sum(s.numel * _element(s.code, big).itemsize for s in storages.values())
    if total > MAX_TOTAL_BYTES:
        raise LstmctlError(f"{where}: storages declare {total} bytes, over the {MAX_TOTAL_BYTES}-byte cap")
    data = {}
    out = {}
    for name, ref in state.items():
        storage = ref.storage
        if storage.key not in data:
            dtype = _element(storage.code, big)
            data[storage.key] = np.frombuffer(read(storage, storage.numel * dtype.itemsize), dtype)
        out[name] = _array(ref, data[storage.key], name, where)
    return out, {name: TORCH_DTYPE[ref.storage.code] for name, ref in state.items()}


def is_torch_zip(names) -> bool:
    return any(re.fullmatch(r"[^/]+/data\.pkl", n) for n in names)


def read_zip(path: str) -> tuple:
    """(name -> array, name -> torch dtype, notes) of a torch.save zip."""
    with open_zip(path, path) as zf:
        check_names(zf, path)
        names = set(zf.namelist())
        roots = [n[: -len("/data.pkl")] for n in names if re.fullmatch(r"[^/]+/data\.pkl", n)]
        if len(roots) != 1:
            raise LstmctlError(f"{path}: a torch.save zip holds one <folder>/data.pkl; this one holds {len(roots)}")
        root = roots[0]
        big = False
        if f"{root}/byteorder" in names:
            order = read_member(zf, f"{root}/byteorder", 16, path)
            if order not in (b"little", b"big"):
                raise LstmctlError(f"{path}: '{show(root)}/byteorder' says {show(order[:16])}, not little or big")
            big = order == b"big"
        notes = []
        blob = read_member(zf, f"{root}/data.pkl", MAX_PICKLE_BYTES, path)
        obj, storages = _unpickle(io.BytesIO(blob), f"{path}: {show(root)}/data.pkl")
        state = _state_dict(obj, path, notes)
        _check_names(state, path)

        def read(storage, nbytes):
            member = f"{root}/data/{storage.key}"
            if member not in names:
                raise LstmctlError(f"{path}: storage '{show(storage.key)}' has no member '{show(member)}' in the archive")
            size = zf.getinfo(member).file_size
            if size != nbytes:
                raise LstmctlError(f"{path}: storage '{show(storage.key)}' declares {nbytes} bytes; its member holds {size}")
            return read_member(zf, member, nbytes, path)

        return (*_arrays(state, storages, read, path, big), notes)


def read_legacy(path: str) -> tuple:
    """(name -> array, name -> torch dtype, notes) of a torch.save file in the legacy (before torch 1.6) format."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(0)
        head = io.BytesIO(fh.read(MAX_PICKLE_BYTES))
        where = f"{path} (legacy torch.save)"
        magic, _ = _unpickle(head, where, legacy=True)
        protocol, _ = _unpickle(head, where, legacy=True)
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise LstmctlError(f"{where}: protocol {show(protocol)}, not torch's {LEGACY_PROTOCOL}")
        info, _ = _unpickle(head, where, legacy=True)
        if not isinstance(info, dict) or not isinstance(info.get("little_endian"), bool):
            raise LstmctlError(f"{where}: its sys_info does not say the byte order")
        obj, storages = _unpickle(head, where, legacy=True)
        notes = []
        state = _state_dict(obj, path, notes)
        _check_names(state, path)
        keys, _ = _unpickle(head, where, legacy=True)
        if not isinstance(keys, list) or sorted(keys, key=str) != sorted(storages, key=str):
            raise LstmctlError(f"{where}: its list of storage keys does not match the storages the tensors use")
        big = not info["little_endian"]
        offsets = {}
        at = head.tell()
        for key in keys:  # each storage: its element count (int64), then its bytes, in the order listed
            storage = storages[key]
            nbytes = storage.numel * _element(storage.code, big).itemsize
            if at + 8 + nbytes > size:
                raise LstmctlError(f"{where}: storage '{show(key)}' of {nbytes} bytes reaches past the end of the file")
            fh.seek(at)
            count = int.from_bytes(fh.read(8), "big" if big else "little", signed=True)
            if count != storage.numel:
                raise LstmctlError(f"{where}: storage '{show(key)}' holds {count} elements; the pickle declares {storage.numel}")
            offsets[key] = at + 8
            at += 8 + nbytes

        def read(storage, nbytes):
            fh.seek(offsets[storage.key])
            return fh.read(nbytes)

        return (*_arrays(state, storages, read, where, big), notes)
