"""Writers of ONNX protobufs and torch.save pickles by hand, for tests that build odd or hostile
files without onnx or torch (field numbers from onnx.proto; pickle opcodes as torch.save writes them).
"""

import struct
import zipfile

import numpy as np

from lstmctl.export.torch_save import op_global as _global
from lstmctl.export.torch_save import op_int as _int
from lstmctl.export.torch_save import op_text as _text
from lstmctl.export.torch_save import op_tuple as _tuple

# --- protobuf ---------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64s as protobuf writes them
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value) -> bytes:
    """A varint field for an int, a length-delimited one for bytes or str, a fixed32 for a float."""
    if isinstance(value, float):
        return varint(number << 3 | 5) + struct.pack("<f", value)
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def onnx_tensor(name: str, array: np.ndarray) -> bytes:
    kind = {np.dtype("float32"): 1, np.dtype("int32"): 6, np.dtype("int64"): 7, np.dtype("float64"): 11}[array.dtype]
    return b"".join(field(1, d) for d in array.shape) + field(2, kind) + field(8, name) + field(9, np.ascontiguousarray(array).tobytes())


def attribute(name: str, value) -> bytes:
    if isinstance(value, float):
        return field(1, name) + field(2, value) + field(20, 1)
    if isinstance(value, int):
        return field(1, name) + field(3, value) + field(20, 2)
    if isinstance(value, str):
        return field(1, name) + field(4, value) + field(20, 3)
    if all(isinstance(v, float) for v in value):
        return field(1, name) + b"".join(field(7, v) for v in value) + field(20, 6)  # floats, one fixed32 field each (unpacked)
    return field(1, name) + b"".join(field(9, v) for v in value) + field(20, 8)  # a list of strings


def node(op: str, inputs, outputs, name="", **attrs) -> bytes:
    return b"".join(field(1, i) for i in inputs) + b"".join(field(2, o) for o in outputs) + field(3, name) + field(4, op) + b"".join(field(5, attribute(k, v)) for k, v in attrs.items())


def value_info(name: str, dims, elem=1) -> bytes:
    shape = b"".join(field(1, field(2, d) if isinstance(d, str) else field(1, d)) for d in dims)
    return field(1, name) + field(2, field(1, field(1, elem) + field(2, shape)))


def onnx_model(nodes, inputs, outputs, initializers=(), opset=14) -> bytes:
    graph = b"".join(field(1, n) for n in nodes) + field(2, "g") + b"".join(field(5, t) for t in initializers)
    graph += b"".join(field(11, v) for v in inputs) + b"".join(field(12, v) for v in outputs)
    return field(1, 8) + field(2, "portwire") + field(7, graph) + field(8, field(2, opset))


def lstm_graph(units=3, features=2, **attrs) -> bytes:
    """One forward ONNX LSTM node over X [time, batch, features], with random weights."""
    r = np.random.default_rng(1)
    inits = [onnx_tensor("W", r.normal(size=(1, 4 * units, features)).astype(np.float32)), onnx_tensor("R", r.normal(size=(1, 4 * units, units)).astype(np.float32))]
    return onnx_model([node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], name="lstm", hidden_size=units, **attrs)], [value_info("X", ["time", "batch", features])], [value_info("Y", [])], inits)


# --- torch.save ---------------------------------------------------------------------------------


def tensor_pickle(key: str, numel: int, offset: int, size, stride, storage="FloatStorage") -> bytes:
    """The opcodes torch.save writes for one tensor: _rebuild_tensor_v2 of a persistent storage."""
    pid = _tuple([_text("storage"), _global("torch", storage), _text(key), _text("cpu"), _int(numel)]) + b"Q"
    hooks = _global("collections", "OrderedDict") + b")R"
    return _global("torch._utils", "_rebuild_tensor_v2") + _tuple([pid, _int(offset), _tuple(map(_int, size)), _tuple(map(_int, stride)), b"\x89", hooks]) + b"R"


def state_dict_pickle(entries: dict) -> bytes:
    """A protocol-2 pickle of an OrderedDict name -> opcodes of a value (tensor_pickle's, or any)."""
    body = b"".join(_text(k) + v for k, v in entries.items())
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + body + b"u."


def torch_zip(path, pickle_bytes: bytes, storages: dict, root="archive", byteorder=b"little"):
    """A torch.save zip: <root>/data.pkl, <root>/data/<key> for each storage, <root>/byteorder."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{root}/data.pkl", pickle_bytes)
        z.writestr(f"{root}/byteorder", byteorder)
        for key, data in storages.items():
            z.writestr(f"{root}/data/{key}", data)
        z.writestr(f"{root}/version", b"3\n")
    return path


def _lstm_tensors(units, features):
    """One nn.LSTM level's tensors (random weights): (name -> tensor opcodes, storage key -> bytes)."""
    r = np.random.default_rng(2)
    shapes = {"weight_ih_l0": (4 * units, features), "weight_hh_l0": (4 * units, units), "bias_ih_l0": (4 * units,), "bias_hh_l0": (4 * units,)}
    tensors, storages = {}, {}
    for i, (name, shape) in enumerate(shapes.items()):
        a = r.normal(size=shape).astype("<f4")
        stride = tuple(int(np.prod(shape[j + 1 :])) for j in range(len(shape)))
        tensors[name] = tensor_pickle(str(i), a.size, 0, shape, stride)
        storages[str(i)] = a.tobytes()
    return tensors, storages


def lstm_state_dict(path, units=3, features=2, prefix="rnn."):
    """A valid torch.save zip of one nn.LSTM layer (random weights), built without torch."""
    tensors, storages = _lstm_tensors(units, features)
    return torch_zip(path, state_dict_pickle({prefix + k: v for k, v in tensors.items()}), storages)


def evil_reduce(module: str, name: str, arg: str) -> bytes:
    """A pickle whose loading calls module.name(arg): what an unrestricted unpickler would run."""
    return b"\x80\x02" + _global(module, name) + _text(arg) + b"\x85R."


def module_pickle(cls: tuple, tensors: dict = (), children: dict = (), extra: dict = ()) -> bytes:
    """The opcodes torch.save(model) writes for one nn.Module (without the protocol header or STOP):
    its class by NEWOBJ, then BUILD with a state holding _parameters, _buffers, _modules and
    `extra` (name -> opcodes of a value: a setting, or a payload hidden in the tree)."""

    def ordered(items):
        return _global("collections", "OrderedDict") + b")R(" + b"".join(_text(k) + v for k, v in dict(items).items()) + b"u"

    state = {"training": b"\x89", "_parameters": ordered(tensors), "_buffers": ordered({}), "_modules": ordered(children), **dict(extra)}
    return _global(*cls) + b")\x81}(" + b"".join(_text(k) + v for k, v in state.items()) + b"ub"


def lstm_module_zip(path, payload: bytes = b"\x88", units=3, features=2):
    """A whole pickled user module holding an nn.LSTM (random weights), built without torch;
    `payload`: opcodes of a value hidden in the LSTM's _forward_hooks."""
    tensors, storages = _lstm_tensors(units, features)
    settings = {"mode": _text("LSTM"), "input_size": _int(features), "hidden_size": _int(units), "num_layers": _int(1), "batch_first": b"\x88", "_forward_hooks": _global("collections", "OrderedDict") + b")R(" + _int(0) + payload + b"u"}
    lstm = module_pickle(("torch.nn.modules.rnn", "LSTM"), tensors, extra=settings)
    top = module_pickle(("__main__", "Net"), children={"lstm": lstm})
    return torch_zip(path, b"\x80\x02" + top + b".", storages)
