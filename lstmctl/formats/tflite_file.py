"""TensorFlow Lite files (`.tflite`, a FlatBuffer with the identifier `TFL3`) read with flatbuf.py,
without TensorFlow, the `flatbuffers` package or LiteRT.

`read(path)` parses the file into plain data (`TflFile`: subgraphs of tensors and operators, the
signature's names); `model(path)` turns it into lstmctl's Model (lstmctl/layers/tflite.py): the
main subgraph's operators become layers, UNIDIRECTIONAL_SEQUENCE_LSTM and BIDIRECTIONAL_SEQUENCE_LSTM
recurrent layers in Keras's layout, a WHILE loop whose body is a Keras LSTM, GRU or SimpleRNN step
a recurrent layer too (layers/tflite_while.py finds and checks it), every other operator an op
layer computed as LiteRT computes it (or refused by name when lstmctl does not compute it).

Field numbers, from tensorflow/lite/schema/schema.fbs: Model version 0, operator_codes 1,
subgraphs 2, description 3, buffers 4, signature_defs 7; OperatorCode deprecated_builtin_code 0,
custom_code 1, builtin_code 3; SubGraph tensors 0, inputs 1, outputs 2, operators 3, name 4;
Tensor shape 0, type 1, buffer 2, name 3, quantization 4, is_variable 5, shape_signature 7;
QuantizationParameters scale 2, zero_point 3, quantized_dimension 6; Operator opcode_index 0,
inputs 1, outputs 2, builtin_options_type 3, builtin_options 4; Buffer data 0, offset 1, size 2;
SignatureDef inputs 0, outputs 1, signature_key 2, subgraph_index 4; TensorMap name 0,
tensor_index 1.
"""

import os
from dataclasses import dataclass, field

import numpy as np

from .. import budget
from ..errors import LstmctlError, show
from ..model import LayerNames
from .flatbuf import Buffer, Table
from .ports import PortModel

IDENTIFIER = b"TFL3"
# BuiltinOperator codes 0..161, in order (schema.fbs); later codes (StableHLO) are shown by number
OP_NAMES = """ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED
HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1 RELU6
RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD
UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE
BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG PADV2
GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW
ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE
FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE
RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND
SELECT_V2 DENSIFY SEGMENT_SUM BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG REAL COMPLEX_ABS
HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS
RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX
UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT""".split()
# TensorType -> NumPy dtype (None: a type lstmctl reads no values of: string, resource, variant, int4…)
DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8", 10: "float64", 12: "uint64", 15: "uint32", 16: "uint16"}
TYPE_NAMES = {5: "string", 8: "complex64", 11: "complex128", 13: "resource", 14: "variant", 17: "int4", 18: "bfloat16", 19: "int2", 20: "uint4"}

# builtin options of the operators lstmctl computes: op -> [(name, field id, struct format, default)]
_ACT = ("fused_activation_function", 0, "b", 0)
OPTIONS = {
    "ADD": [_ACT], "SUB": [_ACT], "MUL": [_ACT], "DIV": [_ACT],
    "FULLY_CONNECTED": [_ACT, ("weights_format", 1, "b", 0), ("keep_num_dims", 2, "?", False), ("asymmetric_quantize_inputs", 3, "?", False)],
    "BATCH_MATMUL": [("adj_x", 0, "?", False), ("adj_y", 1, "?", False), ("asymmetric_quantize_inputs", 2, "?", False)],
    "UNIDIRECTIONAL_SEQUENCE_LSTM": [_ACT, ("cell_clip", 1, "f", 0.0), ("proj_clip", 2, "f", 0.0), ("time_major", 3, "?", False), ("asymmetric_quantize_inputs", 4, "?", False)],
    "BIDIRECTIONAL_SEQUENCE_LSTM": [_ACT, ("cell_clip", 1, "f", 0.0), ("proj_clip", 2, "f", 0.0), ("merge_outputs", 3, "?", False), ("time_major", 4, "?", True), ("asymmetric_quantize_inputs", 5, "?", False)],
    "CONCATENATION": [("axis", 0, "i", 0), ("fused_activation_function", 1, "b", 0)],
    "GATHER": [("axis", 0, "i", 0), ("batch_dims", 1, "i", 0)],
    "SPLIT": [("num_splits", 0, "i", 0)],
    "SPLIT_V": [("num_splits", 0, "i", 0)],
    "STRIDED_SLICE": [("begin_mask", 0, "i", 0), ("end_mask", 1, "i", 0), ("ellipsis_mask", 2, "i", 0), ("new_axis_mask", 3, "i", 0), ("shrink_axis_mask", 4, "i", 0), ("offset", 5, "?", False)],
    "SOFTMAX": [("beta", 0, "f", 1.0)],
    "PACK": [("values_count", 0, "i", 0), ("axis", 1, "i", 0)],
    "UNPACK": [("num", 0, "i", 0), ("axis", 1, "i", 0)],
    "WHILE": [("cond_subgraph_index", 0, "i", 0), ("body_subgraph_index", 1, "i", 0)],
    "CAST": [("in_data_type", 0, "b", 0), ("out_data_type", 1, "b", 0)],
    "LEAKY_RELU": [("alpha", 0, "f", 0.0)],
    **{op: [("keep_dims", 0, "?", False)] for op in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL")},
    "SHAPE": [("out_type", 0, "b", 2)],
}  # fmt: skip
_VECTOR_OPTIONS = {"RESHAPE": ("new_shape", 0), "SQUEEZE": ("squeeze_dims", 0)}


@dataclass
class TflTensor:
    index: int
    name: str
    shape: tuple
    type: int  # TensorType
    data: np.ndarray | None  # a constant's values, shaped; None for a computed tensor or a variable
    scale: np.ndarray | None = None  # quantization scales (one, or one per slice along qdim)
    zero_point: np.ndarray | None = None
    qdim: int = 0
    is_variable: bool = False
    signature: tuple | None = None  # shape_signature: -1 where the converter left a dimension free

    @property
    def dtype(self) -> str | None:
        return DTYPES.get(self.type)

    @property
    def type_name(self) -> str:
        return DTYPES.get(self.type) or TYPE_NAMES.get(self.type, f"type {self.type}")

    @property
    def quantized(self) -> bool:
        return self.scale is not None and self.type in (3, 7, 9)

    def floats(self) -> np.ndarray:
        """A constant's values as float32: dequantized when it is quantized."""
        return self.dequantized() if self.quantized else self.data.astype(np.float32)

    def dequantized(self) -> np.ndarray:
        """The float32 values a quantized constant stands for: (q - zero_point) · scale, per slice along qdim."""
        q = self.data.astype(np.float32)
        shape = [1] * q.ndim
        if self.scale.size > 1:
            shape[self.qdim] = -1
        return (q - self.zero_point.astype(np.float32).reshape(shape)) * self.scale.reshape(shape)


@dataclass
class TflOp:
    index: int
    code: str  # BUILTIN name, or CUSTOM:<custom_code>
    inputs: list  # tensor indices, -1 where an optional input is absent
    outputs: list
    options: dict = field(default_factory=dict)

    @property
    def custom(self) -> bool:
        return self.code.startswith("CUSTOM:")


@dataclass
class Subgraph:
    index: int
    name: str
    tensors: list
    inputs: list
    outputs: list
    ops: list


@dataclass
class TflFile:
    path: str
    version: int
    description: str
    subgraphs: list
    signature: dict  # {"key", "inputs": {name: tensor index}, "outputs": {...}} of the main subgraph, or {}
    metadata: list  # names of the metadata entries (TFLITE_METADATA, min_runtime_version, …)


def looks_like(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] == IDENTIFIER


def _op_code(t: Table) -> str:
    deprecated = t.scalar(0, "b", 0, "deprecated_builtin_code")
    code = max(t.scalar(3, "i", 0, "builtin_code"), deprecated)  # older converters fill only the deprecated byte
    if code == 32:
        return "CUSTOM:" + (t.string(1, "custom_code") or "?")
    return OP_NAMES[code] if 0 <= code < len(OP_NAMES) else f"BUILTIN_{code}"


def _options(op_table: Table, code: str) -> dict:
    out = {}
    if code in _VECTOR_OPTIONS:
        name, i = _VECTOR_OPTIONS[code]
        opts = op_table.table(4, "builtin_options")
        if opts is not None and opts.has(i):
            out[name] = [int(v) for v in opts.array(i, "<i4", name, "dims")]
        return out
    fields = OPTIONS.get(code)
    if not fields:
        return out
    opts = op_table.table(4, "builtin_options")
    for name, i, fmt, default in fields:
        out[name] = default if opts is None else opts.scalar(i, fmt, default, name)
    return out


def _buffers(model: Table, buf: Buffer, path: str) -> list:
    """Each buffer's bytes (a memoryview into the file), from its data vector or (a model over 2 GB)
    its offset and size in the file."""
    out = []
    for k, b in enumerate(model.tables(4, "buffers", "tensors")):
        offset = b.scalar(1, "Q", 0, "offset")
        if offset > 1:
            size = b.scalar(2, "Q", 0, "size")
            buf.span(offset, size, f"buffer {k}")
            out.append(buf.data[offset : offset + size])
        else:
            data = b.array(0, "u1", "data", "bytes")
            out.append(memoryview(data))
    return out


def _tensor(t: Table, k: int, buffers: list, where: str) -> TflTensor:
    name = t.string(3, "name")
    at = f"{where} tensor {k} '{show(name)}'"
    raw_shape = t.array(0, "<i4", "shape", "dims")
    shape = budget.check_shape([int(d) for d in raw_shape], at)
    kind = t.scalar(1, "b", 0, "type")
    index = t.scalar(2, "I", 0, "buffer")
    if index >= len(buffers):
        raise LstmctlError(f"{at}: buffer {index} does not exist (the file has {len(buffers)})")
    data = None
    raw = buffers[index] if index else b""
    if len(raw):
        dtype = DTYPES.get(kind)
        if dtype is None:
            raise LstmctlError(f"{at}: holds data of type {TYPE_NAMES.get(kind, kind)}, which lstmctl does not read")
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if len(raw) != nbytes:
            raise LstmctlError(f"{at}: shape {list(shape)} of {dtype} needs {nbytes} bytes, its buffer holds {len(raw)}")
        data = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).reshape(shape)
    tensor = TflTensor(k, name, shape, kind, data, is_variable=t.scalar(5, "?", False, "is_variable"))
    if t.has(7):
        tensor.signature = tuple(int(d) for d in t.array(7, "<i4", "shape_signature", "dims"))
    q = t.table(4, "quantization")
    if q is not None and q.has(2):
        scale = q.array(2, "<f4", "scale").astype(np.float32)
        zero = q.array(3, "<i8", "zero_point")
        zero = zero if zero.size else np.zeros(scale.size, np.int64)
        qdim = q.scalar(6, "i", 0, "quantized_dimension")
        if scale.size and (zero.size != scale.size or (scale.size > 1 and not (0 <= qdim < len(shape) and shape[qdim] == scale.size)) or not np.isfinite(scale).all()):
            raise LstmctlError(f"{at}: quantization of {scale.size} scales and {zero.size} zero points along axis {qdim} does not fit shape {list(shape)}")
        if scale.size:
            tensor.scale, tensor.zero_point, tensor.qdim = scale, zero, qdim
    return tensor


def _indices(t: Table, i: int, name: str, count: int, at: str, optional: bool = False) -> list:
    out = [int(v) for v in t.array(i, "<i4", name, "tensors")]
    for v in out:
        if not (0 <= v < count or (optional and v == -1)):
            raise LstmctlError(f"{at}: {name} names tensor {v}, but the subgraph has {count} tensors")
    return out


def _fold_dequantize(graph: Subgraph, path: str) -> None:
    """A DEQUANTIZE of a constant (float16 weights, int8 tables) is a constant: its output tensor
    gets the float32 values, so the recurrent weights behind it read as constants (the operator
    still computes the same values when run)."""
    for op in graph.ops:
        if op.code != "DEQUANTIZE" or len(op.inputs) != 1 or len(op.outputs) != 1 or op.inputs[0] < 0:
            continue
        src, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if src.data is None or out.data is not None or tuple(src.shape) != tuple(out.shape) or out.type != 0:
            continue
        if src.data.dtype == np.float16 or src.quantized:
            out.data = src.floats()


def read(path: str) -> TflFile:
    size = os.path.getsize(path)
    budget.check("bytes", size, path)
    with open(path, "rb") as fh:
        data = fh.read()
    if not looks_like(data):
        raise LstmctlError(f"{path}: not a TensorFlow Lite file (no TFL3 identifier)")
    buf = Buffer(data, path)
    root = buf.root("model")
    buffers = _buffers(root, buf, path)
    codes = [_op_code(t) for t in root.tables(1, "operator_codes")]
    subgraphs, ops_seen, tensors_seen = [], 0, 0
    for s, g in enumerate(root.tables(2, "subgraphs")):
        where = f"{path}: subgraph {s}"
        tables = g.tables(0, "tensors", "tensors")
        tensors_seen += len(tables)
        budget.check("tensors", tensors_seen, path)
        tensors = [_tensor(t, k, buffers, where) for k, t in enumerate(tables)]
        ops = []
        op_tables = g.tables(3, "operators")
        ops_seen += len(op_tables)
        budget.check("nodes", ops_seen, path)
        for k, t in enumerate(op_tables):
            at = f"{where} operator {k}"
            index = t.scalar(0, "I", 0, "opcode_index")
            if index >= len(codes):
                raise LstmctlError(f"{at}: opcode index {index} is past the file's {len(codes)} operator codes")
            code = codes[index]
            ops.append(TflOp(k, code, _indices(t, 1, "inputs", len(tensors), at, optional=True), _indices(t, 2, "outputs", len(tensors), at), _options(t, code)))
        subgraphs.append(Subgraph(s, g.string(4, "name"), tensors, _indices(g, 1, "inputs", len(tensors), where), _indices(g, 2, "outputs", len(tensors), where), ops))
    if not subgraphs:
        raise LstmctlError(f"{path}: the TensorFlow Lite file has no subgraphs")
    for g in subgraphs:
        _fold_dequantize(g, path)
    signature = {}
    for sig in root.tables(7, "signature_defs"):
        if sig.scalar(4, "I", 0, "subgraph_index") == 0:
            signature = {
                "key": sig.string(2, "signature_key"),
                "inputs": {m.string(0, "name"): m.scalar(1, "I", 0, "tensor_index") for m in sig.tables(0, "inputs", "tensors")},
                "outputs": {m.string(0, "name"): m.scalar(1, "I", 0, "tensor_index") for m in sig.tables(1, "outputs", "tensors")},
            }
            break
    metadata = [m.string(0, "name") for m in root.tables(6, "metadata", "tensors")]
    return TflFile(path, root.scalar(0, "I", 0, "version"), root.string(3, "description"), subgraphs, signature, metadata)


# --- the Model ------------------------------------------------------------------------------------


def check_calls(tfile: TflFile) -> None:
    """Every WHILE names existing subgraphs other than the main one, and no subgraph calls itself,
    directly or through others (a file whose loops call each other would never end)."""
    n = len(tfile.subgraphs)
    calls = {}
    for g in tfile.subgraphs:
        for op in g.ops:
            if op.code == "WHILE":
                at = f"{tfile.path}: subgraph {g.index} operator {op.index} (WHILE)"
                targets = (op.options["cond_subgraph_index"], op.options["body_subgraph_index"])
                for t in targets:
                    if not 0 < t < n:
                        raise LstmctlError(f"{at}: names subgraph {t}, but the file has subgraphs 1..{n - 1} besides the main one")
                cond, body = (tfile.subgraphs[t] for t in targets)
                if len(cond.inputs) != len(op.inputs) or len(body.inputs) != len(op.inputs) or len(body.outputs) != len(op.inputs) or len(op.outputs) != len(op.inputs):
                    raise LstmctlError(f"{at}: its {len(op.inputs)} loop values do not match its cond ({len(cond.inputs)} inputs) and body ({len(body.inputs)} inputs, {len(body.outputs)} outputs)")
                calls.setdefault(g.index, set()).update(targets)
    state = {}

    def visit(s, path):
        budget.check("depth", len(path), f"{tfile.path}: subgraph calls")
        state[s] = 1
        for t in sorted(calls.get(s, ())):
            if state.get(t) == 1:
                walk = (*path, s)
                chain = " → ".join(str(i) for i in (*walk[walk.index(t) :], t))
                raise LstmctlError(f"{tfile.path}: subgraphs call each other in a cycle ({chain}); a WHILE there would never end")
            if t not in state:
                visit(t, (*path, s))
        state[s] = 2

    for s in sorted(calls):
        if s not in state:
            visit(s, ())


def _loop_name(body_name: str, kind: str) -> str:
    """A Keras-like name from a WHILE body's: 'sequential_1/lstm_1/while_body' -> 'lstm_1'."""
    parts = [p for p in body_name.split(";")[-1].split("/") if p and not p.startswith(("while_body", "while_cond", "StatefulPartitionedCall"))]
    return parts[-1] if parts else kind


def model(path: str):
    """The Model of a .tflite file (see the module docstring)."""
    from ..layers import REGISTRY
    from ..layers.tflite import SEQUENCE_LSTM, TFL_OP, INTEGER_TYPES, Runtime, usl_cell
    from ..layers.tflite_while import CLASS, LOOP_RECURRENT, match
    from ..model import Call, InputSpec, Layer, Ref

    tfile = read(path)
    check_calls(tfile)
    rt = Runtime(tfile)
    main = tfile.subgraphs[0]
    layers, inputs, producers, names = [], [], {}, LayerNames(reserved={"input"})  # no layer is named "input", as before
    for k in main.inputs:
        t = main.tensors[k]
        if t.dtype is None or not t.shape:
            raise LstmctlError(f"{path}: input tensor '{show(t.name)}' is {t.type_name} of shape {list(t.shape)}; lstmctl feeds numeric arrays with a batch axis")
        name = names(t.name, f"input_{len(inputs)}")
        layers.append(Layer(name, "InputLayer", {"batch_shape": list(t.shape), "dtype": t.dtype}, spec=REGISTRY["InputLayer"]))
        inputs.append(InputSpec(name, tuple(t.shape[1:]), t.dtype, batch=t.shape[0]))
        producers[k] = Ref(name, 0, 0)
    if not inputs:
        raise LstmctlError(f"{path}: the main subgraph has no inputs to feed")
    kinds, written = [], {}  # variable tensor -> (layer, state) that last wrote it
    for op in main.ops:
        at = f"{path}: operator {op.index} ({op.code})"
        refs, slots = [], []
        for k in op.inputs:
            if k < 0:
                slots.append(None)
            elif k in producers:
                slots.append(len(refs))
                refs.append(producers[k])
            elif main.tensors[k].data is not None:
                slots.append(main.tensors[k].data)
            elif main.tensors[k].is_variable:  # a state the interpreter starts at zero
                t = main.tensors[k]
                slots.append(np.zeros(budget.check_shape(t.shape, f"{at}: tensor '{show(t.name)}'"), t.dtype or "float32"))
            else:
                raise LstmctlError(f"{at}: reads tensor {k} '{show(main.tensors[k].name)}', which no operator before it computes")
        params = {"op": op, "inputs": slots, "graph": main, "file": tfile, "dtype": "float32"}
        loop = match(rt, main, op) if op.code == "WHILE" else None
        if op.code == "UNIDIRECTIONAL_SEQUENCE_LSTM":
            cell, notes = usl_cell(main, op, at)
            for slot, state in ((18, "h"), (19, "c")):
                k = op.inputs[slot]
                if k in written:
                    notes.append(f"starts from {state} = the final {written[k][1]} of layer '{written[k][0]}': the converter made both use one variable tensor '{show(main.tensors[k].name)}', "
                                 "which LiteRT's UNIDIRECTIONAL_SEQUENCE_LSTM overwrites with its final state (Keras starts every layer from zeros)")  # fmt: skip
            name = names(f"lstm_{len(kinds)}", "lstm")
            x = main.tensors[op.inputs[0]]
            params.update(time_major=op.options.get("time_major", False), integer=x.type in INTEGER_TYPES)
            params["scales"] = getattr(cell, "scales", None)
            layer = Layer(name, "LSTM", _config(name, cell), spec=SEQUENCE_LSTM, cell=cell, params=params, notes=notes)
            layer.weights = [cell.W, cell.U, cell.bias]
            kinds.append("lstm")
        elif loop is not None:
            body = tfile.subgraphs[op.options["body_subgraph_index"]]
            shared = [f"starts from the final {written[k][1]} of layer '{written[k][0]}': the converter made both use one variable tensor '{show(main.tensors[k].name)}', "
                      "which LiteRT's UNIDIRECTIONAL_SEQUENCE_LSTM overwrites with its final state (Keras starts every layer from zeros)" for k in op.inputs if k in written]  # fmt: skip
            name = names(_loop_name(body.name, loop.cell.kind), f"while_{op.index}")
            layer = Layer(name, CLASS[loop.cell.kind], _config(name, loop.cell), spec=LOOP_RECURRENT, cell=loop.cell, params={**params, "loop": loop, "scales": loop.scales}, notes=list(loop.notes) + shared)
            layer.weights = [w for w in (loop.cell.W, loop.cell.U, loop.cell.bias) if w is not None]
            kinds.append(loop.cell.kind)
        else:
            out_name = main.tensors[op.outputs[0]].name if op.outputs else ""
            name = names(f"{op.code.lower()}_{op.index}", f"op_{op.index}")
            layer = Layer(name, op.code, {"name": name}, [s for s in slots if isinstance(s, np.ndarray) and s.dtype.kind == "f" and s.size > 1], spec=TFL_OP, params=params,
                          notes=[f"TFLite operator {op.index} {op.code}, output '{show(out_name)}'"])  # fmt: skip
        layer.calls = [Call(refs, [])]
        layers.append(layer)
        for i, k in enumerate(op.outputs):
            producers[k] = Ref(layer.name, 0, i)
        if op.code == "UNIDIRECTIONAL_SEQUENCE_LSTM":  # LiteRT leaves the final h and c in the state tensors, for whoever reads them next
            for i, (slot, state) in enumerate(((18, "h"), (19, "c")), start=1):
                producers[op.inputs[slot]] = Ref(layer.name, 0, i)
                written[op.inputs[slot]] = (layer.name, state)
    outputs, names = [], []
    order = list(tfile.signature.get("outputs", {}).values())
    if sorted(order) != sorted(main.outputs):  # the signature lists the outputs in Keras's order; the subgraph need not
        order = main.outputs
    for k in order:
        if k not in producers:
            raise LstmctlError(f"{path}: output tensor {k} '{show(main.tensors[k].name)}' is not computed by any operator")
        outputs.append(producers[k])
        names.append(main.tensors[k].name)
    notes = [f"TensorFlow Lite schema version {tfile.version}" + (f", written by {show(tfile.description)}" if tfile.description else "")]
    notes.append(f"{len(tfile.subgraphs)} subgraph(s); run keys the outputs by the .tflite's output tensor names ({', '.join(show(n) for n in names)}) as well as output/output_<i>")
    fixed = [s for s in inputs if s.batch is not None]
    if fixed:
        notes.append(f"the batch is fixed at conversion: {', '.join(f'{s.name} takes batch {s.batch}' for s in fixed)}")
    customs = sorted({op.code.split(':', 1)[1] for g in tfile.subgraphs for op in g.ops if op.custom})
    if customs:
        notes.append(f"custom operators {', '.join(show(c) for c in customs)}: run refuses them (Flex ops come from SELECT_TF_OPS: convert with a fixed batch size to avoid them)")
    return TfliteModel(path, "tflite", None, f"schema version {tfile.version}", "Functional", main.name or "main", layers, inputs, [Ref(i.name, 0, 0) for i in inputs], outputs,
                       notes=notes, convention="tflite", hard_sigmoid_form=3, output_names=names, file=tfile)  # fmt: skip


def _config(name, cell) -> dict:
    config = {"name": name, "units": cell.units, "activation": cell.activation_name, "use_bias": cell.bias is not None,
              "return_sequences": True, "return_state": False, "go_backwards": False, "stateful": False, "dtype": "float32"}  # fmt: skip
    if cell.recurrent_activation_name is not None:
        config["recurrent_activation"] = cell.recurrent_activation_name
    if cell.kind == "gru":
        config["reset_after"] = cell.reset_after
    if cell.kind == "lstm":
        config["forget_bias_note"] = "as Keras saved it: the converter copies b_f, TFLite adds nothing at run time"
    if cell.cell_clip:
        config["cell_clip"] = cell.cell_clip
    return config



@dataclass(repr=False)
class TfliteModel(PortModel):
    """A Model read from a .tflite file: run also keys each output by its tensor's name."""

    output_names: list = field(default_factory=list)
    file: object = None

    def run(self, *args, **kwargs):
        result = super().run(*args, **kwargs)
        keys = ["output"] if len(self.output_names) == 1 else [f"output_{i}" for i in range(len(self.output_names))]
        for name, key in zip(self.output_names, keys):
            if key in result:
                result[name] = result[key]
        return result
