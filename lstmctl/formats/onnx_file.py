"""ONNX models (`.onnx`, a protobuf ModelProto) read with protowire, without the onnx package.

The graph becomes a Model with one layer per node: LSTM / GRU / RNN nodes become recurrent layers
(their W, R, B read through the onnx layout of weights_builder into Keras's layout), the operators
lstmctl.layers.onnx computes (through lstmctl.oplib) become op layers, and any other node stays
opaque (inspect lists it, run stops at it). Initializers and Constant nodes are the graph's
constants, and a node whose inputs are all constants is computed once, here (torch <= 1.3 exports
compute W, R and B from stored tensors with Slice / Concat / Unsqueeze). What Keras's layers
cannot compute is refused with one line: peepholes (P), clip, input_forget, activations other
than the Keras ones. Graph inputs and outputs keep their own names.

A graph input that only feeds recurrent nodes in ONNX's time-major layout 0 ([time, batch,
features]) is taken as (batch, time, features) like every lstmctl input, and transposed first
(an explicit Transpose layer inspect shows).

Every field is checked for its wire type and range where it is read, the errors naming the node
and the field; counts and sizes are lstmctl.budget's (nodes, tensors, dims, elements).

Field numbers, from onnx.proto: ModelProto ir_version 1, graph 7, opset_import 8; GraphProto node
1, name 2, initializer 5, input 11, output 12; NodeProto input 1, output 2, name 3, op_type 4,
attribute 5, domain 7; AttributeProto name 1, f 2, i 3, s 4, t 5, g 6, floats 7, ints 8, strings 9,
type 20; TensorProto dims 1, data_type 2, float_data 4, int32_data 5, int64_data 7, name 8,
raw_data 9, double_data 10, data_location 14; ValueInfoProto name 1, type 2 → tensor_type 1 →
elem_type 1, shape 2 → dim 1 → dim_value 1, dim_param 2.
"""

import os
import re
import struct
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .. import budget
from ..conventions import ONNX_ACTIVATIONS
from ..errors import LstmctlError, show
from ..layers import REGISTRY
from ..layers.onnx import ELEM_TYPES, ONNX_BIDIRECTIONAL, ONNX_RECURRENT, OPS, check_state, compute
from ..layers.onnx import ONNX_OP as OP_SPEC
from ..model import Call, InputSpec, Layer, Ref
from ..model import LayerNames
from ..runner import merge_probes, probe
from . import collector_paused
from .weights_builder import Keys, onnx_levels, spec_layer
from .ports import PortModel, row_ranges
from .protowire import Message, read_varint

MAX_FILE_BYTES = 2 << 30  # protobuf's own limit for one message (the other limits are lstmctl.budget's)
# TensorProto.DataType -> typed field holding the values when raw_data is absent
VALUE_FIELDS = {1: 4, 2: 5, 3: 5, 4: 5, 5: 5, 6: 5, 7: 7, 9: 5, 10: 5, 11: 10, 12: 11, 13: 11}
DIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,39}")  # a dim_param inspect shows as the dimension's name
# AttributeProto.type -> what an error calls it
ATTRIBUTE_KINDS = {1: "a float", 2: "an int", 3: "a string", 4: "a tensor", 5: "a graph", 6: "floats", 7: "ints", 8: "strings", 11: "a sparse tensor", 13: "type protos"}
# the attributes lstmctl interprets, by name -> the kind each must be (the same for every op that has it)
EXPECTED = {
    **dict.fromkeys(("alpha", "beta", "clip", "min", "max", "value_float"), 1),
    **dict.fromkeys(("axis", "hidden_size", "layout", "input_forget", "linear_before_reset", "allowzero", "transA", "transB", "to", "start", "end", "keepdims",
                     "noop_with_empty_axes", "select_last_index", "value_int"), 2),  # fmt: skip
    "direction": 3,
    "value": 4,
    **dict.fromkeys(("activation_alpha", "activation_beta", "value_floats"), 6),
    **dict.fromkeys(("perm", "axes", "starts", "ends", "split", "value_ints"), 7),
    "activations": 8,
}
RECURRENT_OPS = {"LSTM": "lstm", "GRU": "gru", "RNN": "simple_rnn"}
# ONNX activation -> Keras name, for what the Keras cells can compute (HardSigmoid by its alpha)
KERAS_ACTIVATION = {v: k for k, v in ONNX_ACTIVATIONS.items() if v not in ("HardSigmoid", "Affine", "Elu")}
DEFAULT_ACTIVATIONS = {"lstm": ["Sigmoid", "Tanh", "Tanh"], "gru": ["Sigmoid", "Tanh"], "simple_rnn": ["Tanh"]}


def looks_like(head: bytes) -> bool:
    """A ModelProto's first bytes: field 1 (ir_version, a small varint), then a length-delimited field."""
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42)


def _packed(msg: Message, number: int, fmt: str | None, where: str) -> list:
    """A repeated scalar field, packed (one length-delimited run) or not; `fmt` is the struct code
    of fixed-width values, None for varints."""
    out = []
    for value in msg.fields.get(number, []):
        if not isinstance(value, bytes):  # one unpacked value: a varint, or a fixed-width value's bits
            if fmt is not None and value >= 1 << (8 * struct.calcsize(fmt)):
                raise LstmctlError(f"{where}: field {number} holds a varint where {struct.calcsize(fmt)}-byte values belong")
            out.append(value if fmt is None else struct.unpack(f"<{fmt}", value.to_bytes(struct.calcsize(fmt), "little"))[0])
        elif fmt is None:
            pos = 0
            while pos < len(value):
                v, pos = read_varint(value, pos, where)
                out.append(v)
        else:
            size = struct.calcsize(fmt)
            if len(value) % size:
                raise LstmctlError(f"{where}: a packed field {number} of {len(value)} bytes is not whole values")
            out.extend(struct.unpack(f"<{len(value) // size}{fmt}", value))
    return out


def _signed(values):
    return [v - (1 << 64) if v >= 1 << 63 else v for v in values]


def _external(msg: Message, base: str | None, nbytes: int, at: str) -> bytes:
    """The bytes of a tensor kept in a file beside the model (torch.onnx.export's `<model>.onnx.data`):
    a relative name inside the model's folder, and a range the file holds."""
    entries = {e.text(1): e.text(2) for e in msg.repeated(13, at)}
    location = entries.get("location", "")
    parts = location.replace("\\", "/").split("/")
    if base is None or not location or os.path.isabs(location) or ".." in parts or "\0" in location:
        raise LstmctlError(f"{at} keeps its data in '{show(location)}', which is not a file name inside the model's folder; refused")
    target = os.path.join(base, location)
    if not os.path.realpath(target).startswith(os.path.realpath(base) + os.sep) or not os.path.isfile(target):
        raise LstmctlError(f"{at} keeps its data in '{show(location)}', which is not a file inside the model's folder")
    try:
        offset, length = int(entries.get("offset", "0")), int(entries.get("length", str(nbytes)))
    except ValueError:
        raise LstmctlError(f"{at}: external data offset or length is not a number") from None
    size = os.path.getsize(target)
    if length != nbytes or offset < 0 or offset + length > size:
        raise LstmctlError(f"{at} needs {nbytes} bytes at offset {offset} of '{show(location)}' ({size} bytes; the entry says length {length})")
    with open(target, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def tensor(msg: Message, where: str, base: str | None = None) -> tuple:
    """(name, array) of a TensorProto, its size checked before any array is made; `base`: the
    model's folder, where external data may be (None: refused)."""
    name = msg.text(8)
    at = f"{where}: tensor '{show(name)}'"
    dims = budget.check_shape(_signed(_packed(msg, 1, None, at)), at)
    kind = msg.uint(2)
    if kind not in ELEM_TYPES:
        raise LstmctlError(f"{at} has data type {kind}, which lstmctl does not read (float, double, float16, integers, bool)")
    dtype, field = np.dtype(ELEM_TYPES[kind]), VALUE_FIELDS[kind]
    count = int(np.prod(dims, dtype=object))
    if msg.uint(14) == 1 or msg.has(9):
        raw = _external(msg, base, count * dtype.itemsize, at) if msg.uint(14) == 1 else msg.raw(9)
        if len(raw) != count * dtype.itemsize:
            raise LstmctlError(f"{at} {tuple(dims)} needs {count * dtype.itemsize} bytes of raw_data, holds {len(raw)}")
        array = np.frombuffer(raw, dtype)
    else:
        fmt = {4: "f", 10: "d"}.get(field)
        values = _packed(msg, field, fmt, at)
        if field in (5, 7):
            values = _signed(values) if field == 7 else [v - (1 << 32) if v >= 1 << 31 and kind in (3, 5, 6) else v for v in values]
        if len(values) != count:
            raise LstmctlError(f"{at} {tuple(dims)} holds {len(values)} values, not {count}")
        bits = np.dtype(np.uint16) if kind == 10 else dtype  # float16 values travel as their bit patterns in int32_data
        if bits.kind in "iub" and values:
            low, high = (0, 1) if bits.kind == "b" else (np.iinfo(bits).min, np.iinfo(bits).max)
            bad = next((v for v in values if not low <= v <= high), None)
            if bad is not None:
                raise LstmctlError(f"{at}: value {bad} is out of range for {'float16 bits' if kind == 10 else dtype.name} ({low}..{high})")
        array = np.array(values, bits).view(np.float16) if kind == 10 else np.array(values, dtype)
    return name, array.reshape(dims).astype(dtype.newbyteorder("="))


def _strings(msg: Message, number: int, where: str, what: str) -> list:
    """A repeated string field (node inputs, outputs, STRINGS attributes), each checked to be UTF-8 bytes."""
    out = []
    for value in msg.fields.get(number, []):
        if not isinstance(value, bytes):
            raise LstmctlError(f"{where}: {what} is a number on the wire, expected a string")
        try:
            out.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise LstmctlError(f"{where}: {what} is not UTF-8 text") from None
    return out


def _attribute_kind(a: Message) -> int:
    """AttributeProto.type, or for files that predate it (IR < 2) the one value field present."""
    kind = a.uint(20)
    if kind == 0:
        present = [k for k, number in ((1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9)) if a.has(number)]
        kind = present[0] if len(present) == 1 else 0
    return kind


def _attributes(node: Message, where: str) -> dict:
    """name -> value of a node's attributes, each of the kind lstmctl expects for its name
    (EXPECTED) or refused naming the node and the attribute."""
    out = {}
    for a in node.repeated(5, where):
        name = a.text(1)
        at = f"{where}: attribute '{show(name)}'"
        kind = _attribute_kind(a)
        want = EXPECTED.get(name)
        if want is not None and kind != want:
            raise LstmctlError(f"{at} is {ATTRIBUTE_KINDS.get(kind, f'of type {kind}')}, expected {ATTRIBUTE_KINDS[want].split(' ', 1)[-1]}")
        if kind == 1:
            bits = a.uint(2)
            if bits >= 1 << 32:
                raise LstmctlError(f"{at}: a float field holds a varint")
            out[name] = struct.unpack("<f", bits.to_bytes(4, "little"))[0]
        elif kind == 2:
            out[name] = a.signed(3)
        elif kind == 3:
            out[name] = _strings(a, 4, at, "its value")[-1] if a.has(4) else ""
        elif kind == 4:
            out[name] = tensor(a.msg(5), at)[1]
        elif kind == 6:
            out[name] = list(_packed(a, 7, "f", at))
        elif kind == 7:
            out[name] = _signed(_packed(a, 8, None, at))
        elif kind == 8:
            out[name] = _strings(a, 9, at, "a value")
        else:
            out[name] = f"<attribute type {kind}>"  # graphs and the like: shown, never interpreted
    return out


def _value_info(msg: Message, where: str) -> tuple:
    """(name, element type, dims with None where symbolic, each dimension's name or None) of a ValueInfoProto."""
    name = msg.text(1)
    at = f"{where}: '{show(name)}'"
    tensor_type = msg.msg(2).msg(1)
    entries = tensor_type.msg(2).repeated(1, at)
    budget.check("dims", len(entries), at)
    dims, names = [], []
    for d in entries:
        dims.append(d.signed(1) if d.has(1) else None)
        names.append(d.text(2) if d.has(2) and DIM_NAME.fullmatch(d.text(2)) else None)  # others shown as None
    for d in dims:
        if d is not None and d < 0:
            raise LstmctlError(f"{at} has dimension {d}; a size is not negative")
        if d is not None:
            budget.check("dimension", d, at)
    return name, tensor_type.uint(1), dims, names


def _read(path: str) -> Message:
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise LstmctlError(f"{path}: {size} bytes, over the {MAX_FILE_BYTES}-byte cap for an ONNX model")
    with open(path, "rb") as fh:
        return Message(fh.read(), f"{path}: ONNX ModelProto")


def _activations(attrs, kind, dirs, where) -> tuple:
    """(activation, recurrent_activation, hard_sigmoid form) the node's activations attribute
    says, in Keras's names; refused where a Keras cell cannot compute them."""
    names = attrs.get("activations")
    if names is None:
        return "tanh", (None if kind == "simple_rnn" else "sigmoid"), 2
    per = len(DEFAULT_ACTIVATIONS[kind])
    if len(names) != per * dirs:
        raise LstmctlError(f"{where}: activations {names} should name {per} functions per direction")
    alphas, betas = list(attrs.get("activation_alpha", [])), list(attrs.get("activation_beta", []))
    keras, form = [], 2
    for name in names:
        if name == "HardSigmoid":
            alpha, beta = (alphas.pop(0) if alphas else 0.2), (betas.pop(0) if betas else 0.5)
            if abs(beta - 0.5) > 1e-7 or min(abs(alpha - 0.2), abs(alpha - 1 / 6)) > 1e-7:
                raise LstmctlError(f"{where}: HardSigmoid(alpha={alpha}, beta={beta}) is neither Keras 2's (0.2, 0.5) nor Keras 3's (1/6, 0.5)")
            form = 2 if abs(alpha - 0.2) <= 1e-7 else 3
            keras.append("hard_sigmoid")
        elif name == "Affine" and (alphas[:1] or [1.0])[0] == 1.0 and (betas[:1] or [0.0])[0] == 0.0:
            alphas[:1], betas[:1] = [], []
            keras.append("linear")
        elif name == "Elu" and (alphas[:1] or [1.0])[0] == 1.0:
            alphas[:1] = []
            keras.append("elu")
        elif name in KERAS_ACTIVATION:
            keras.append(KERAS_ACTIVATION[name])
        else:
            raise LstmctlError(f"{where}: activation {show(name)} (with its alpha/beta) is not one a Keras cell computes")
    if keras[:per] != keras[per:] and dirs == 2:
        raise LstmctlError(f"{where}: the two directions use different activations {names}; lstmctl's Bidirectional runs one cell type")
    if kind == "lstm" and keras[1] != keras[2]:
        raise LstmctlError(f"{where}: activations g={names[1]} and h={names[2]} differ; a Keras LSTM uses one activation for both")
    if kind == "simple_rnn":
        return keras[0], None, form
    return keras[1], keras[0], form


def _recurrent_layer(node_name, op, attrs, slots, where) -> Layer:
    kind = RECURRENT_OPS[op]
    if not slots or slots[0] is None:
        raise LstmctlError(f"{where}: input X is missing")
    if isinstance(slots[0], np.ndarray):
        raise LstmctlError(f"{where}: input X is a constant of the graph; lstmctl runs a recurrent node on what the graph's inputs feed it")
    if len(slots) > 7 and slots[7] is not None:
        raise LstmctlError(f"{where}: input P holds LSTM peephole weights, which Keras's LSTM does not have; refused")
    if "clip" in attrs:
        raise LstmctlError(f"{where}: clip={attrs['clip']} clips the gates' pre-activations, which Keras's cells do not; refused")
    if attrs.get("input_forget", 0):
        raise LstmctlError(f"{where}: input_forget=1 couples the input and forget gates, which Keras's LSTM does not; refused")
    layout = attrs.get("layout", 0)
    direction = attrs.get("direction", "forward")
    if layout not in (0, 1) or direction not in ("forward", "reverse", "bidirectional"):
        raise LstmctlError(f"{where}: layout {layout} / direction {show(direction)} is not one ONNX defines")
    weights = {}
    for slot, key in ((1, "W"), (2, "R"), (3, "B")):
        value = slots[slot] if len(slots) > slot else None
        if isinstance(value, int):
            raise LstmctlError(f"{where}: {key} is computed by the graph, not stored; lstmctl reads recurrent weights from initializers")
        if value is not None:
            weights[key] = value
    if "W" not in weights or "R" not in weights:
        raise LstmctlError(f"{where}: has no W or R initializer")
    if kind == "gru":
        weights["linear_before_reset"] = np.array(attrs.get("linear_before_reset", 0))
    (specs,) = onnx_levels(Keys(weights, where, "onnx"))
    dirs = 2 if direction == "bidirectional" else 1
    if len(specs) != dirs:
        raise LstmctlError(f"{where}: direction {direction} needs {dirs} direction(s) of weights, W holds {len(specs)}")
    u = specs[0].units
    if attrs.get("hidden_size", u) != u:
        raise LstmctlError(f"{where}: hidden_size {attrs['hidden_size']} contradicts R's {u}")
    act, ract, form = _activations(attrs, kind, dirs, where)
    dtype = specs[0].W.dtype
    if dtype not in (np.float32, np.float64):
        raise LstmctlError(f"{where}: weights of {dtype}; ONNX's {op} takes float or double")
    note = "b_f is ONNX's Wb_f + Rb_f (B's two halves): ONNX adds the two"
    if dirs == 1:
        layer = spec_layer(specs[0], node_name, act, ract, dtype, form, go_backwards=direction == "reverse", bias_note=note)
        layer.spec = ONNX_RECURRENT
    else:
        fwd = spec_layer(specs[0], f"{node_name}/forward", act, ract, dtype, form, bias_note=note)
        bwd = spec_layer(specs[1], f"{node_name}/backward", act, ract, dtype, form, go_backwards=True, bias_note=note)
        layer = Layer(node_name, "Bidirectional", {"name": node_name, "merge_mode": "concat", "return_sequences": True, "return_state": False, "go_backwards": False, "stateful": False, "dtype": dtype.name},
                      fwd.weights + bwd.weights, spec=ONNX_BIDIRECTIONAL, forward=fwd, backward=bwd)  # fmt: skip
    layer.config["zero_output_for_mask"] = True  # ONNX's Y is zero past a sample's sequence_lens
    layer.params.update(inputs=slots, layout=layout)
    n = specs[0].W.shape[0]
    shapes = f"X [time, batch, {n}], Y [time, directions, batch, {u}], Y_h [directions, batch, {u}]" if layout == 0 else f"X [batch, time, {n}], Y [batch, time, directions, {u}], Y_h [batch, directions, {u}]"
    layer.notes.append(f"ONNX {op} node, direction {direction}, layout {layout}: {shapes}; run records them as {node_name}/Y, /Y_h" + (", /Y_c" if kind == "lstm" else ""))
    if kind == "lstm":
        layer.notes.append(f"ONNX W [{dirs}, {4 * u}, {n}], R [{dirs}, {4 * u}, {u}]: rows {row_ranges('iofc', u)}, transposed and reordered into Keras's i, f, c, o; b_<g> shown = Wb + Rb (B's two halves)")
    elif kind == "gru":
        lbr = int(weights["linear_before_reset"])
        bias = "b_<g> shown = Wb, rb_<g> = Rb (linear_before_reset=1 is Keras's reset_after=True)" if lbr else "b_<g> shown = Wb + Rb (linear_before_reset=0 is Keras's reset_after=False)"
        layer.notes.append(f"ONNX W [{dirs}, {3 * u}, {n}], R [{dirs}, {3 * u}, {u}]: rows {row_ranges('zrh', u)}, Keras's own order, transposed; {bias}")
    else:
        layer.notes.append(f"ONNX W [{dirs}, {u}, {n}], R [{dirs}, {u}, {u}]: transposed into W and U; b shown = Wb + Rb")
    for slot, what in ((5, "initial_h"), (6, "initial_c"), (4, "sequence_lens")):
        if len(slots) > slot and isinstance(slots[slot], np.ndarray):
            if slot != 4:
                check_state(slots[slot], what, dirs, u, layout, None, where)
            layer.notes.append(f"{what} is a constant of the graph, shape {tuple(slots[slot].shape)}")
    return layer


def _constant(attrs: dict, where: str) -> np.ndarray:
    """The tensor a Constant node holds: `value`, or a scalar or list in value_float(s) / value_int(s)."""
    found = [(k, attrs[k]) for k in ("value", "value_float", "value_floats", "value_int", "value_ints") if k in attrs]
    if len(found) != 1:
        raise LstmctlError(f"{where}: holds {'no tensor' if not found else 'several values'} (one of value, value_float(s), value_int(s) is needed)")
    key, value = found[0]
    return value if key == "value" else np.array(value, np.float32 if "float" in key else np.int64)


@dataclass
class _Node:
    name: str
    op: str
    standard: bool  # of the default domain
    domain: str
    inputs: list
    outputs: list
    attrs: dict
    where: str


@dataclass(repr=False)
class OnnxModel(PortModel):
    """A Model of an ONNX graph: `run` also returns each graph output under its own name;
    `dims` keeps each graph input's dimension names (dim_param) for inspect's shapes."""

    output_names: list = field(default_factory=list)
    dims: dict = field(default_factory=dict)

    @collector_paused()
    def probe_shapes(self, until: set | None = None) -> dict:
        """Shapes as ONNX shape inference gives them: the sizes the file fixes, and each named
        dimension (dim_param) by its name wherever it reaches; found by running the graph at two
        sizes for each symbolic dimension. Where that run fails (inputs whose symbolic dimensions
        must agree in ways the names do not say), the usual probe's shapes."""
        symbols = {}  # (input, axis) -> a symbol: its dim_param name, or the position when unnamed
        for spec in self.inputs:
            for axis, (size, name) in enumerate(zip([spec.batch, *spec.shape], self.dims.get(spec.name, []))):
                if size is None:
                    symbols[(spec.name, axis)] = name or (spec.name, axis)
        order = list(dict.fromkeys(symbols.values()))
        sizes = [{s: 3 + j for j, s in enumerate(order)}, {s: 5 + 2 * j for j, s in enumerate(order)}]  # distinct pairs per symbol
        rng = np.random.default_rng(0)
        try:
            logs = []
            for run in sizes[: 2 if order else 1]:
                arrays = {}
                for spec in self.inputs:
                    shape = [run[symbols[(spec.name, axis)]] if size is None else size for axis, size in enumerate([spec.batch, *spec.shape])]
                    arrays[spec.name] = rng.standard_normal(shape).astype(spec.dtype) if spec.dtype.startswith("float") else np.ones(shape, spec.dtype)
                logs.append(probe(self, arrays, until))
        except LstmctlError:
            return super().probe_shapes(until)
        by_pair = {(sizes[0][s], sizes[1][s]): (s if isinstance(s, str) else None) for s in order}

        def merge(a, b):
            return tuple(x if x == y else by_pair.get((x, y)) for x, y in zip(a, b))

        out = merge_probes(logs, merge)
        for spec in self.inputs:
            names = self.dims.get(spec.name, [])
            out[(spec.name, 0)] = ([], [tuple(names[i] if size is None and i < len(names) else size for i, size in enumerate([spec.batch, *spec.shape]))], False)
        return out

    @collector_paused()
    def run(self, *args, **kwargs):
        result = super().run(*args, **kwargs)
        keys = ["output"] if len(self.outputs) == 1 else [f"output_{i}" for i in range(len(self.outputs))]
        for name, key in zip(self.output_names, keys):
            if key in result:
                result.setdefault(name, result[key])
        return result


def _nodes(path: str, graph: Message, names: LayerNames) -> list:
    """The graph's nodes with their fields read and checked, named as layers."""
    nodes = graph.repeated(1, f"{path}: graph")
    budget.check("nodes", len(nodes), path)
    out = []
    for k, node in enumerate(nodes):
        op, domain = node.text(4), node.text(7)
        name = names(node.text(3), f"{op if op.isidentifier() else 'node'}_{k}")
        at = f"{path}: node '{show(name)}' ({show(op)})"
        inputs, outputs = _strings(node, 1, at, "an input name"), _strings(node, 2, at, "an output name")
        out.append(_Node(name, op, domain in ("", "ai.onnx"), domain, inputs, outputs, _attributes(node, at), at))
    return out


def model(path: str) -> PortModel:
    """The Model of an ONNX file."""
    proto = _read(path)
    where = path
    opsets = {m.text(1): m.signed(2) for m in proto.repeated(8, where)}
    opset = opsets.get("", opsets.get("ai.onnx", 1))  # no opset_import: the first
    if not proto.has(7):
        raise LstmctlError(f"{path}: ONNX ModelProto without a graph")
    graph = proto.msg(7, f"{path}: graph")
    initializers = graph.repeated(5, where)
    budget.check("tensors", len(initializers), path)
    base = os.path.dirname(os.path.abspath(path))
    stored = dict(tensor(t, f"{path}: initializer", base) for t in initializers)
    constants = dict(stored)  # tensor name -> its value, where it is known without an input
    names = LayerNames()
    graph_inputs = [_value_info(v, f"{path}: graph input") for v in graph.repeated(11, where)]
    feeds = [(name, elem, dims, dim_names, names(name, f"input_{k}")) for k, (name, elem, dims, dim_names) in enumerate(graph_inputs) if name not in constants]  # IR < 4 listed initializers as inputs too
    nodes = _nodes(path, graph, names)
    graph_outputs = [_value_info(v, f"{path}: graph output") for v in graph.repeated(12, where)]
    kept = {name for name, *_ in graph_outputs}
    uses = Counter(i for n in nodes for i in n.inputs)

    # Constants first: Constant nodes, and nodes that compute from constants alone (torch <= 1.3
    # slices, concatenates and unsqueezes W, R and B out of stored tensors) are computed once, here.
    fold = budget.Tally(path)
    folded, runtime = Counter(), []
    for n in nodes:
        if n.standard and n.op == "Constant":
            if len(n.outputs) != 1:
                raise LstmctlError(f"{n.where}: has {len(n.outputs)} outputs, a Constant has one")
            constants[n.outputs[0]] = stored[n.outputs[0]] = _constant(n.attrs, n.where)
        elif n.standard and n.op in OPS and all(i == "" or i in constants for i in n.inputs):
            values = compute(n.op, [constants[i] if i else None for i in n.inputs], n.attrs, opset, len(n.outputs), n.where, fold)
            for o, v in zip(n.outputs, values):
                if o:
                    constants[o] = v
            folded[n.op] += 1
            for i in n.inputs:
                uses[i] -= 1
                if i and not uses[i] and i not in stored and i not in kept:
                    del constants[i]  # an intermediate only other folded nodes read
        else:
            runtime.append(n)

    consumers = {}
    for n in runtime:
        for slot, name in enumerate(n.inputs):
            consumers.setdefault(name, []).append((n.op, slot, n.attrs.get("layout", 0)))
    layers, inputs, notes, dims_by_input = [], [], [], {}
    producers = {}  # tensor name -> Ref
    for name, elem, dims, dim_names, lname in feeds:
        at = f"{path}: graph input '{show(name)}'"
        if not dims:
            raise LstmctlError(f"{at} is a scalar or has no shape; lstmctl feeds arrays with a batch axis")
        if elem not in ELEM_TYPES:
            raise LstmctlError(f"{at} has data type {elem}, which lstmctl does not feed")
        dtype = np.dtype(ELEM_TYPES[elem]).name
        uses_of = consumers.get(name, [])
        time_major = len(dims) == 3 and uses_of and all(op in RECURRENT_OPS and slot == 0 and layout == 0 for op, slot, layout in uses_of)
        if time_major:
            dims, dim_names = [dims[1], dims[0], dims[2]], [dim_names[1], dim_names[0], dim_names[2]]
        dims_by_input[lname] = dim_names
        layers.append(Layer(lname, "InputLayer", {"batch_shape": dims, "dtype": dtype}, spec=REGISTRY["InputLayer"]))
        inputs.append(InputSpec(lname, tuple(dims[1:]), dtype, batch=dims[0]))
        producers[name] = Ref(lname, 0, 0)
        if time_major:
            tname = names(f"{lname}.time_major", "time_major")
            layers.append(Layer(tname, "Transpose", {"name": tname}, spec=OP_SPEC, calls=[Call([Ref(lname, 0, 0)], [])], params={"inputs": [0], "attrs": {"perm": [1, 0, 2]}, "opset": opset, "n_outputs": 1},
                                notes=[f"graph input '{show(name)}' is time-major [time, batch, features] (ONNX layout 0): lstmctl takes (batch, time, features) and transposes it"]))  # fmt: skip
            producers[name] = Ref(tname, 0, 0)
    if not inputs:
        raise LstmctlError(f"{path}: the graph has no inputs to feed")
    kinds = set()
    for n in runtime:
        refs, slots = [], []
        for tensor_name in n.inputs:
            if not tensor_name:
                slots.append(None)
            elif tensor_name in constants:
                slots.append(constants[tensor_name])
            elif tensor_name in producers:
                slots.append(len(refs))
                refs.append(producers[tensor_name])
            else:
                raise LstmctlError(f"{n.where}: reads tensor '{show(tensor_name)}', which no node before it produces")
        if n.standard and n.op in RECURRENT_OPS:
            layer = _recurrent_layer(n.name, n.op, n.attrs, slots, n.where)
            computed = [key for slot, key in ((1, "W"), (2, "R"), (3, "B")) if slot < len(n.inputs) and n.inputs[slot] in constants and n.inputs[slot] not in stored]
            if computed:
                layer.notes.append(f"{', '.join(computed)} computed by the graph from stored tensors (folded when read)")
            kinds.add(RECURRENT_OPS[n.op])
        elif n.standard and n.op in OPS:
            layer = Layer(n.name, n.op, {"name": n.name}, [s for s in slots if isinstance(s, np.ndarray) and s.dtype.kind == "f"], spec=OP_SPEC, params={"inputs": slots, "attrs": n.attrs, "opset": opset, "n_outputs": len(n.outputs)})
        else:
            op = n.op if n.standard else f"{n.domain}.{n.op}"
            layer = Layer(n.name, op, {"name": n.name}, notes=[f"ONNX operator {show(n.op)}{'' if n.standard else ' of domain ' + show(n.domain)} is not one lstmctl computes; run stops at it"])
        layer.calls = [Call(refs, [])]
        layers.append(layer)
        for i, out in enumerate(n.outputs):
            if out:
                producers[out] = Ref(n.name, 0, i)
    if not kinds:
        ops = Counter(n.op for n in nodes).most_common(6)
        raise LstmctlError(f"{path}: the ONNX graph has no LSTM, GRU or RNN node (its nodes: {', '.join(f'{show(op)} {k}' for op, k in ops) or 'none'}); "
                           "an exporter that unrolled the recurrence into per-step MatMul nodes leaves no recurrent layer to show (torch.onnx's dynamo exporter does so for nn.RNN: export with dynamo=False)")  # fmt: skip
    outputs = []
    for name, *_ in graph_outputs:
        if name not in producers:
            raise LstmctlError(f"{path}: graph output '{show(name)}' is not computed by any node" + (" (it is a constant of the graph)" if name in constants else ""))
        outputs.append(producers[name])
    notes.append(f"ONNX IR version {proto.uint(1)}, opset {opset}")
    if folded:
        notes.append(f"{sum(folded.values())} nodes ({', '.join(f'{op} {k}' for op, k in folded.most_common())}) compute constants from stored tensors: computed once when read")
    notes.append("the model's outputs are the graph's outputs, in ONNX's shapes, also under the graph's own names; each recurrent node's L/sequence, L/h, L/c are batch-major as everywhere in lstmctl")
    producer = f"{show(proto.text(2))} {show(proto.text(3))}".strip() or None
    return OnnxModel(path, "onnx", None, producer, "Functional", graph.text(2) or "onnx", layers, inputs, [Ref(i.name, 0, 0) for i in inputs], outputs,
                     notes=notes, convention="onnx", hard_sigmoid_form=2, tensors=stored, output_names=[name if name.isprintable() and 0 < len(name) <= 200 else f'output_{i}' for i, (name, *_) in enumerate(graph_outputs)], dims=dims_by_input)  # fmt: skip
