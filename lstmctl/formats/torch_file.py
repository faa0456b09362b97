"""PyTorch `torch.save` files read without torch: the zip form (torch 1.6 and later) and the legacy
pickle form, holding a state_dict (a dict of tensor names to tensors).

    zip:    <root>/data.pkl, <root>/data/<key> (one storage's raw bytes each), <root>/byteorder, <root>/version
    legacy: pickles of the magic number, the protocol (1001) and sys_info, then the state_dict's
            pickle, then the list of storage keys, then each storage as an int64 count and its bytes

A pickle is a program. It is read here as data: the opcodes are prescanned first (their arguments
there, memo slots, nesting depth and objects built within lstmctl's budget), then an unpickler
that knows a few names as data constructors (an OrderedDict, a set, torch's tensor rebuild
functions and its storage types) reads it. Every other name the file gives becomes an inert
`Record` (its class path, the arguments it was called with and the state BUILD gave it): nothing
named by the file is imported, called or instantiated. Names of modules that run things (os,
subprocess, builtins, runpy, …) are refused outright. A whole pickled module (`torch.save(model)`)
is such a tree of records, read into `ModuleNode`s: class path, settings and tensors. Tensors come
back as records (storage, offset, size, stride) that are checked against the storage sizes the
archive holds before any array is made.
"""

import io
import math
import os
import pickle
import re
from collections import namedtuple

import numpy as np

from .. import budget
from ..errors import LstmctlError, show
from .zipsafe import check_names, open_zip, read_member

MAX_PICKLE_BYTES = 8 << 20  # a state_dict's pickle is about 100 bytes per tensor; a whole module's a little more
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


class TensorRef(namedtuple("TensorRef", "storage offset size stride")):
    __slots__ = ()

    def __setstate__(self, state):
        """torch before 1.0 gave a Parameter its (requires_grad, hooks) by BUILD: training state, not weights."""

ModuleNode = namedtuple("ModuleNode", "name cls settings tensors children")  # a torch.nn.Module read from a pickle


class StateDict(dict):
    """collections.OrderedDict as the pickle builds it; what BUILD gives it (torch's `_metadata`)
    is kept aside, never as attributes, so a file cannot replace the dict's own methods."""

    def __setstate__(self, state):
        self.attributes = state


class Record:
    """An object of a class the file names and lstmctl does not know, kept as data: `path` (the
    class path, on the per-path subclass the unpickler makes), `args` (what it was called or
    made with) and `state` (what BUILD gave it). Nothing of the class is imported or run."""

    path = ""

    def __new__(cls, *args, **kwargs):
        record = object.__new__(cls)
        record.args, record.state = args, None
        return record

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state


# Modules whose names in a pickle mean code to run: refused as soon as the file names them.
REFUSED_MODULES = {
    "os", "posix", "nt", "subprocess", "sys", "builtins", "__builtin__", "runpy", "importlib", "shutil", "socket", "ctypes", "pty",
    "code", "codeop", "pickle", "_pickle", "marshal", "webbrowser", "multiprocessing", "io", "_io", "operator", "functools", "types",
    "signal", "tempfile", "pathlib", "asyncio", "threading", "_thread", "platform", "pdb", "timeit", "inspect", "gc", "site", "glob",
    "urllib", "http", "zipimport", "copyreg", "_codecs", "codecs", "torch.hub", "torch.jit", "torch.ops", "torch._ops", "torch.package",
}  # fmt: skip


def _ints(value, what, where, count=None):
    if not isinstance(value, tuple) or not all(type(v) is int for v in value) or (count is not None and len(value) != count):
        raise LstmctlError(f"{where}: a tensor's {what} is not a tuple of integers")
    budget.check("dims", len(value), f"{where}: a tensor's {what}")
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


def _set(items=()):
    return set(items)


class _Unpickler(pickle.Unpickler):
    """A few names are data constructors; modules that run things are refused; every other name
    becomes an inert Record subclass. No name is ever imported."""

    def __init__(self, fh, where, legacy):
        super().__init__(fh)
        self.where, self.legacy = where, legacy
        self.storages = {}
        self.records = {}
        self.allowed = {
            ("collections", "OrderedDict"): StateDict,
            ("builtins", "set"): _set, ("__builtin__", "set"): _set,  # a module's _non_persistent_buffers_set
            ("torch._utils", "_rebuild_tensor_v2"): _tensor(where),
            ("torch._utils", "_rebuild_tensor"): _tensor(where),
            ("torch._utils", "_rebuild_parameter"): _parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _parameter,
            ("torch.nn.parameter", "Parameter"): _parameter,  # torch before 1.0 pickled Parameter(data, requires_grad)
        }  # fmt: skip

    def find_class(self, module, name):
        if module == "torch" and name in STORAGES:
            return StorageType(STORAGES[name])
        found = self.allowed.get((module, name))
        if found is not None:
            return found
        path = f"{module}.{name}"
        if module == "torch" and name.endswith("Storage"):
            raise LstmctlError(f"{self.where}: the pickle calls {show(path)}, a storage type lstmctl does not read ({', '.join(STORAGES)}); refused")
        if module.split(".")[0] in REFUSED_MODULES or any(path.startswith(m + ".") for m in REFUSED_MODULES if "." in m):
            raise LstmctlError(f"{self.where}: the pickle calls {show(path)}, which is not a tensor or dict constructor; refused (lstmctl runs nothing from a model file)")
        if path not in self.records:
            self.records[path] = type("Record", (Record,), {"path": path})
        return self.records[path]

    def persistent_load(self, pid):
        if self.legacy and isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "module":
            # ('module', class, source file, source text): how the legacy form pickles a module's
            # class. The class is already an inert Record; the source text is never run.
            if not (isinstance(pid[1], type) and issubclass(pid[1], Record)):
                raise LstmctlError(f"{self.where}: a module reference in the pickle does not name a class")
            return pid[1]
        size = 6 if self.legacy else 5
        if not isinstance(pid, tuple) or len(pid) != size or pid[0] != "storage" or not isinstance(pid[1], StorageType) or not isinstance(pid[2], str) or type(pid[4]) is not int or pid[4] < 0:
            raise LstmctlError(f"{self.where}: a storage reference in the pickle is not ('storage', type, key, location, size)")
        if self.legacy and pid[5] is not None:
            raise LstmctlError(f"{self.where}: storage '{_shown(pid[2])}' is a view of another storage (torch before 1.0); re-save the file with a current torch")
        storage = Storage(pid[1].code, pid[2], pid[4])
        if self.storages.setdefault(storage.key, storage) != storage:
            raise LstmctlError(f"{self.where}: storage '{_shown(storage.key)}' is declared twice with different types or sizes")
        return storage


MAX_MEMO = 1 << 20  # memo slots: Python's unpickler sizes its memo by the largest index it is told
REFUSED_OPCODES = {"INST", "OBJ", "EXT1", "EXT2", "EXT4", "PERSID", "NEXT_BUFFER", "READONLY_BUFFER"}  # torch.save writes none of them
_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}
_CHANGES_BELOW = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}  # add to the object under their arguments
_NO_OBJECT = {"MARK", "STOP", "POP", "POP_MARK", "PROTO", "FRAME", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET", "DUP"} | _CHANGES_BELOW


def _scan(fh, where):
    """Every opcode of the pickle at the stream's position read once, without running any: their
    arguments must be there (a declared length past the end is refused before anything is
    allocated for it), memo indices bounded, no opcode torch.save never writes, and the objects it
    would build within budget: how many, and how deeply nested. Python's unpickler hashes a dict
    key or set member recursively, so a tuple nested 10**6 deep overflows the C stack: the
    nesting is counted here on a model of the unpickler's stack, before any object exists."""
    import pickletools

    start = fh.tell()
    tally = budget.Tally(where)
    cap = budget.limit("depth")
    stack, memo = [], {}  # each entry: the nesting depth of the object there; None for a mark
    try:
        for op, arg, _ in pickletools.genops(fh):
            name = op.name
            if name in REFUSED_OPCODES:
                raise LstmctlError(f"{where}: the pickle holds a {name} opcode, which torch.save never writes; refused")
            if name in _MEMO_OPS and not 0 <= int(arg) < MAX_MEMO:
                raise LstmctlError(f"{where}: the pickle uses memo slot {arg}, over lstmctl's cap of {MAX_MEMO}; refused")
            if name not in _NO_OBJECT:
                tally.add("objects")
            if name == "MARK":
                stack.append(None)
                continue
            if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                memo[len(memo) if name == "MEMOIZE" else int(arg)] = (stack[-1] if stack else 0) or 0
                continue
            if name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(int(arg), 0))
                continue
            if name in ("STOP", "PROTO", "FRAME"):
                continue
            args = []
            before = op.stack_before
            if before and before[0] is pickletools.markobject or (len(before) > 1 and before[-2] is pickletools.markobject):
                while stack and stack[-1] is not None:
                    args.append(stack.pop())
                if stack:
                    stack.pop()  # the mark
                if len(before) > 1 and before[0] is not pickletools.markobject:  # APPENDS, SETITEMS, ADDITEMS: the container under the mark
                    args.append(stack.pop() if stack else 0)
            else:
                for _ in before:
                    args.append(stack.pop() if stack else 0)
            args = [a for a in args if a is not None]
            if name in _CHANGES_BELOW:  # the container (deepest argument) holds the others one level down
                depth = max([args[-1]] + [1 + a for a in args[:-1]]) if args else 1
            else:
                depth = 1 + max(args, default=0)
            if depth > cap:
                raise budget.refuse("depth", depth, where)
            if name == "DUP":
                stack.extend([args[0]] * 2 if args else [0])
            elif name not in ("POP", "POP_MARK"):
                stack.extend([depth] * len(op.stack_after))
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
    if isinstance(obj, Record):
        raise LstmctlError(f"{where}: the pickle calls {show(obj.path)}, which is not a tensor or dict constructor; refused (lstmctl runs nothing from a model file)")
    if not isinstance(obj, dict):
        raise LstmctlError(f"{where}: holds a {type(obj).__name__}, not a state_dict (a dict of tensors)")
    if obj and all(isinstance(v, TensorRef) for v in obj.values()):
        return obj
    inner = [k for k, v in obj.items() if isinstance(v, dict) and v and all(isinstance(t, TensorRef) for t in v.values())]
    if len(inner) != 1:
        kinds = ", ".join(f"'{_shown(k)}' ({type(v).__name__})" for k, v in list(obj.items())[:6]) or "nothing"
        raise LstmctlError(f"{where}: holds no state_dict (a dict of tensors), or several; its entries are {kinds}")
    notes.append(f"the state_dict under the checkpoint's key '{show(inner[0])}' (its other entries are not weights)")
    return obj[inner[0]]


MODULE_FIELDS = ("_parameters", "_buffers", "_modules")
SETTING_TYPES = (bool, int, float, str, type(None))


def _is_module(obj) -> bool:
    return isinstance(obj, Record) and isinstance(obj.state, dict) and all(isinstance(obj.state.get(f), dict) for f in MODULE_FIELDS)


def _module(obj, name: str, where: str, seen: set) -> ModuleNode:
    """A pickled torch.nn.Module (a Record whose state holds _parameters, _buffers, _modules) as a
    ModuleNode: its class path, its settings (the plain values of its state: hidden_size,
    batch_first, nonlinearity, …), its tensors in registration order and its children. The
    prescan bounds how deep this recursion goes, and each module is visited once."""
    at = f"{where}: module '{show(name) or '(top)'}' ({show(obj.path)})"
    if id(obj) in seen:  # through the memo a module can hold itself, or one module sit in many places
        raise LstmctlError(f"{at} appears twice in the module tree (it holds itself, or is shared); refused")
    seen.add(id(obj))
    state = obj.state
    tensors = {}
    hidden = state.get("_non_persistent_buffers_set") or set()
    for field in ("_parameters", "_buffers"):
        for key, value in state[field].items():
            if not isinstance(key, str) or not key or "." in key:
                raise LstmctlError(f"{at}: {field} has a key that is not a tensor name")
            if value is None or (field == "_buffers" and key in hidden):
                continue
            if not isinstance(value, TensorRef):
                raise LstmctlError(f"{at}: {field} '{show(key)}' is a {type(value).__name__}, not a tensor")
            tensors[key] = value
    children = []
    for key, child in state["_modules"].items():
        if not isinstance(key, str) or not key or "." in key:
            raise LstmctlError(f"{at}: _modules has a key that is not a module name")
        if child is None:
            continue
        if not _is_module(child):
            raise LstmctlError(f"{at}: _modules '{show(key)}' is {show(getattr(child, 'path', type(child).__name__))}, not a torch.nn.Module")
        children.append(_module(child, f"{name}.{key}" if name else key, where, seen))
    settings = {k: v for k, v in state.items() if isinstance(k, str) and not k.startswith("_") and k != "training" and isinstance(v, SETTING_TYPES)}
    settings.update({k: v for k, v in state.items() if isinstance(k, str) and not k.startswith("_") and isinstance(v, tuple) and len(v) <= 8 and all(type(i) is int for i in v)})
    return ModuleNode(name, obj.path, settings, tensors, children)


def _flatten(node: ModuleNode, into: dict) -> dict:
    """A module tree's tensors by their state_dict names (`encoder.lstm.weight_ih_l0`), in state_dict order."""
    for key, ref in node.tensors.items():
        into[f"{node.name}.{key}" if node.name else key] = ref
    for child in node.children:
        _flatten(child, into)
    return into


def _content(obj, where, notes) -> tuple:
    """(state_dict, module tree or None) of the object a torch.save pickle holds."""
    if isinstance(obj, dict) and not _is_module(obj):  # a training checkpoint holding the whole model: {'model': model, 'epoch': 3}
        held = [k for k, v in obj.items() if _is_module(v)]
        if len(held) == 1:
            notes.append(f"the module under the checkpoint's key '{_shown(held[0])}' (its other entries are not weights)")
            obj = obj[held[0]]
    if _is_module(obj):
        tree = _module(obj, "", where, set())
        state = _flatten(tree, {})
        if not state:
            raise LstmctlError(f"{where}: the pickled module {show(tree.cls)} holds no tensors")
        return state, tree
    return _state_dict(obj, where, notes), None


def _shown(value) -> str:
    """A value read from a pickle, for a one-line message: a string escaped and cut, an integer by
    its size when huge (str() refuses past 4300 digits), anything else by its type."""
    if isinstance(value, str):
        return show(value[:60])
    if type(value) is int:
        return budget.number(value)
    return type(value).__name__


def _check_names(state, where):
    for key in state:
        if not isinstance(key, str) or not key or len(key) > 1000:
            raise LstmctlError(f"{where}: state_dict key {_shown(key)} is not a tensor name")


def _array(ref: TensorRef, data: np.ndarray, name: str, where: str) -> np.ndarray:
    """The tensor `ref` describes, cut out of its storage's elements `data` (bounds checked first);
    a tensor that is its whole storage, in order, is that storage's array itself (no copy)."""
    at = f"{where}: tensor '{show(name)}'"
    if any(s < 0 for s in ref.size):
        raise LstmctlError(f"{at} has a negative offset, size or stride")
    size = budget.check_shape(ref.size, at)
    if ref.offset < 0 or any(s < 0 for s in ref.stride):
        raise LstmctlError(f"{at} has a negative offset, size or stride")
    count = math.prod(size)  # check_shape gave Python ints, so the product is exact
    if count and ref.offset + sum((n - 1) * s for n, s in zip(size, ref.stride)) >= ref.storage.numel:
        shown = ", ".join(budget.number(s) for s in ref.stride)
        raise LstmctlError(f"{at} {size} (offset {budget.number(ref.offset)}, strides ({shown})) reaches past its storage of {budget.number(ref.storage.numel)} elements")
    if not count:
        out = np.zeros(size, data.dtype.newbyteorder("="))
    elif ref.offset == 0 and count == data.size and ref.stride == contiguous_strides(size):
        out = data.reshape(size).astype(data.dtype.newbyteorder("="), copy=False)
    else:
        view = np.lib.stride_tricks.as_strided(data[ref.offset :], shape=size, strides=[s * data.itemsize for s in ref.stride], writeable=False)
        out = np.array(view, dtype=data.dtype.newbyteorder("="))
    if ref.storage.code == "bf16":  # bfloat16 is float32's upper half: widening it is exact
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def contiguous_strides(size) -> tuple:
    """The strides, in elements, of a C-ordered tensor of this size (torch's default layout)."""
    strides, step = [], 1
    for n in reversed(size):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _element(code: str, big: bool) -> np.dtype:
    return np.dtype("u2" if code == "bf16" else code).newbyteorder(">" if big else "<")


def _arrays(state, storages, read, where, big) -> tuple:
    """(name -> array, name -> torch dtype); `read(storage, nbytes)` gives a storage's bytes, its size checked first."""
    tally = budget.Tally(where)
    for s in storages.values():
        tally.add("bytes", s.numel * _element(s.code, big).itemsize)
    budget.check("tensors", len(state), where)
    data = {}
    out = {}
    for name, ref in state.items():
        storage = ref.storage
        if storage.key not in data:
            dtype = _element(storage.code, big)
            data[storage.key] = np.frombuffer(read(storage, storage.numel * dtype.itemsize), dtype)
        out[name] = _array(ref, data[storage.key], name, where)
    return out, {name: TORCH_DTYPE[ref.storage.code] for name, ref in state.items()}


class _Into:
    """A sink for zipsafe.read_member that fills one preallocated buffer: a storage is read once."""

    def __init__(self, nbytes):
        self.buffer = bytearray(nbytes)
        self.at = 0

    def write(self, chunk):
        self.buffer[self.at : self.at + len(chunk)] = chunk
        self.at += len(chunk)


def is_torch_zip(names) -> bool:
    return any(re.fullmatch(r"[^/]+/data\.pkl", n) for n in names)


def read_zip(path: str) -> tuple:
    """(name -> array, name -> torch dtype, notes, module tree or None) of a torch.save zip."""
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
        state, tree = _content(obj, path, notes)
        _check_names(state, path)

        def read(storage, nbytes):
            member = f"{root}/data/{storage.key}"
            if member not in names:
                raise LstmctlError(f"{path}: storage '{_shown(storage.key)}' has no member '{show(member)}' in the archive")
            size = zf.getinfo(member).file_size
            if size != nbytes:
                raise LstmctlError(f"{path}: storage '{_shown(storage.key)}' declares {nbytes} bytes; its member holds {size}")
            sink = _Into(nbytes)
            read_member(zf, member, nbytes, path, sink)
            return sink.buffer

        return (*_arrays(state, storages, read, path, big), notes, tree)


def read_legacy(path: str) -> tuple:
    """(name -> array, name -> torch dtype, notes, module tree or None) of a torch.save file in the legacy (before torch 1.6) format."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(0)
        head = io.BytesIO(fh.read(MAX_PICKLE_BYTES))
        where = f"{path} (legacy torch.save)"
        magic, _ = _unpickle(head, where, legacy=True)
        protocol, _ = _unpickle(head, where, legacy=True)
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise LstmctlError(f"{where}: protocol {_shown(protocol)}, not torch's {LEGACY_PROTOCOL}")
        info, _ = _unpickle(head, where, legacy=True)
        if not isinstance(info, dict) or not isinstance(info.get("little_endian"), bool):
            raise LstmctlError(f"{where}: its sys_info does not say the byte order")
        obj, storages = _unpickle(head, where, legacy=True)
        notes = []
        state, tree = _content(obj, path, notes)
        _check_names(state, path)
        keys, _ = _unpickle(head, where, legacy=True)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or sorted(keys) != sorted(storages):
            raise LstmctlError(f"{where}: its list of storage keys does not match the storages the tensors use")
        big = not info["little_endian"]
        offsets = {}
        at = head.tell()
        for key in keys:  # each storage: its element count (int64), then its bytes, in the order listed
            storage = storages[key]
            nbytes = storage.numel * _element(storage.code, big).itemsize
            if at + 8 + nbytes > size:
                raise LstmctlError(f"{where}: storage '{_shown(key)}' of {budget.number(nbytes)} bytes reaches past the end of the file")
            fh.seek(at)
            count = int.from_bytes(fh.read(8), "big" if big else "little", signed=True)
            if count != storage.numel:
                raise LstmctlError(f"{where}: storage '{_shown(key)}' holds {count} elements; the pickle declares {storage.numel}")
            offsets[key] = at + 8
            at += 8 + nbytes

        def read(storage, nbytes):
            fh.seek(offsets[storage.key])
            return fh.read(nbytes)

        return (*_arrays(state, storages, read, where, big), notes, tree)
