"""Hostile ONNX files (issue 27), built on the fly: every field is type- and range-checked where it
is read, every op's result and every run's work is budgeted (lstmctl.budget) before anything is
allocated, and a graph of 150k nodes is read and built in linear time. Each refusal is one line
naming the file, the node and the field, with exit 3; nothing reaches the user as "unexpected"."""

import struct

import numpy as np
import pytest

import lstmctl
from portwire import field, node, onnx_model, onnx_tensor, value_info, varint
from test_hostile import cli, fails

R = np.random.default_rng(0)
W = onnx_tensor("W", R.normal(size=(1, 12, 2)).astype(np.float32))
RR = onnx_tensor("R", R.normal(size=(1, 12, 3)).astype(np.float32))
LSTM = node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], name="lstm", hidden_size=3)
X = value_info("X", ["t", "b", 2])


def ints(name: str, values) -> bytes:
    """An INTS attribute, packed as onnx writes it."""
    return field(1, name) + field(8, b"".join(varint(v) for v in values)) + field(20, 7)


def raw_node(op: str, inputs, outputs, name: str, *attributes: bytes) -> bytes:
    return b"".join(field(1, i) for i in inputs) + b"".join(field(2, o) for o in outputs) + field(3, name) + field(4, op) + b"".join(field(5, a) for a in attributes)


def typed_tensor(name: str, dims, kind: int, number: int, values) -> bytes:
    """A TensorProto whose values sit in a typed field (int32_data 5, uint64_data 11), unpacked."""
    return b"".join(field(1, d) for d in dims) + field(2, kind) + field(8, name) + b"".join(field(number, v) for v in values)


def write(tmp_path, nodes, inits=(), inputs=(X,), outputs=(value_info("Z", []),), opset=14):
    path = tmp_path / "m.onnx"
    path.write_bytes(onnx_model(nodes, list(inputs), list(outputs), [W, RR, *inits], opset))
    return path


def x_npy(tmp_path, shape=(1, 3, 2)):
    path = tmp_path / "x.npy"
    np.save(path, np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape))
    return path


# --- the budget: each op's result before it is allocated, and a run's work --------------------------


def test_a_matmul_chain_after_an_expand_is_refused_when_read(tmp_path):
    """The 2 KB graph that took 53 s in inspect: an Expand within its budget (2**24 elements), then
    MatMuls of 2**36 multiply-adds each. Both are constants: they are folded, and refused, when read."""
    one = onnx_tensor("one", np.ones((1, 1), np.float32))
    shape = onnx_tensor("shape", np.array([1 << 12, 1 << 12], np.int64))
    nodes = [LSTM, node("Expand", ["one", "shape"], ["E"], name="expand")] + [node("MatMul", ["E" if k == 0 else f"M{k - 1}", "E"], [f"M{k}"], name=f"matmul_{k}") for k in range(20)]
    nodes.append(node("Add", ["Y_h", "M19"], ["Z"], name="add"))
    path = write(tmp_path, nodes, [one, shape])
    fails("inspect", path, contains=[f"{path}: node 'matmul_0' (MatMul): 2**36 elements all operators of one run compute is over lstmctl's budget of 2**30"])


def test_a_matmul_chain_on_what_the_graph_computes_is_refused_when_run(tmp_path):
    """The same work on a tensor the graph computes from its input (21 s in run): refused by the op budget."""
    shape = onnx_tensor("shape", np.array([1 << 12, 1 << 12, 1, 3], np.int64))
    wide = onnx_tensor("wide", np.ones((3, 1 << 12), np.float32))
    nodes = [LSTM, node("Expand", ["Y_h", "shape"], ["E"], name="expand"), node("MatMul", ["E", "wide"], ["Z"], name="matmul")]
    path = write(tmp_path, nodes, [shape, wide])
    fails("run", path, "--input", x_npy(tmp_path), contains=[f"{path}: node 'matmul' (MatMul): 2**36 elements one operator computes is over lstmctl's budget of 2**26"])


@pytest.mark.parametrize("op", ["Add", "Mul", "MatMul"])
def test_broadcasts_of_constants_are_budgeted_when_read(tmp_path, op):
    """The 132 KB graph that peaked at 1.1 GB: two 64 KB constants, (2**14, 1) and (1, 2**14), whose
    broadcast (or outer product) is 2**28 elements."""
    inits = [onnx_tensor("a", np.ones((1 << 14, 1), np.float32)), onnx_tensor("b", np.ones((1, 1 << 14), np.float32))]
    nodes = [LSTM, node(op, ["a", "b"], ["S"], name="big"), node("Add", ["Y_h", "S"], ["Z"], name="add")]
    path = write(tmp_path, nodes, inits)
    fails("inspect", path, contains=[f"{path}: node 'big' ({op}): 2**28 elements one operator computes is over lstmctl's budget of 2**26"])


def test_a_gather_of_many_indices_is_budgeted_when_run(tmp_path):
    """Indices made by ConstantOfShape (2**24 zeros, within budget) gather Y's rows: 12 elements each."""
    inits = [onnx_tensor("n", np.array([1 << 12, 1 << 12], np.int64))]
    zero = field(1, "value") + field(5, onnx_tensor("", np.zeros(1, np.int64))) + field(20, 4)
    nodes = [LSTM, raw_node("ConstantOfShape", ["n"], ["idx"], "zeros", zero), node("Gather", ["Y", "idx"], ["Z"], name="big", axis=0)]
    path = write(tmp_path, nodes, inits)
    fails("run", path, "--input", x_npy(tmp_path, (4, 3, 2)), contains=[f"{path}: node 'big' (Gather): 201326592 elements one operator computes is over lstmctl's budget of 2**26"])


def test_a_chain_of_ops_is_stopped_by_the_run_tally(tmp_path):
    """Each Add is within the op budget (3 * 2**22 elements); with the LSTM (9) and the Expand, 85 of them pass the run's 2**30,
    and only the live tensors are kept meanwhile."""
    inits = [onnx_tensor("shape", np.array([1, 1 << 22, 1], np.int64))]
    nodes = [LSTM, node("Expand", ["Y_h", "shape"], ["E"], name="expand")]
    nodes += [node("Add", ["E" if k == 0 else f"A{k - 1}", "E"], [f"A{k}" if k < 99 else "Z"], name=f"add_{k}") for k in range(100)]
    path = write(tmp_path, nodes, inits)
    fails("run", path, "--input", x_npy(tmp_path), contains=[f"{path}: node 'add_84' (Add): 1082130447 elements all operators of one run compute is over lstmctl's budget of 2**30"])


# --- a graph of many nodes: read and built in linear time ---------------------------------------


def test_150k_identity_nodes_with_one_name_are_read_and_run(tmp_path):
    """150k nodes (37 s before, then refused over a 65536-node cap) all named 'id': each gets a unique
    layer name in linear time, and the whole chain runs."""
    n = 150_000
    nodes = [LSTM] + [node("Identity", ["Y_h" if k == 0 else f"i{k - 1}"], [f"i{k}" if k < n - 1 else "Z"], name="id") for k in range(n)]
    path = write(tmp_path, nodes)
    m = lstmctl.load(path)
    assert [layer.name for layer in m.layers[-3:]] == ["id_149997", "id_149998", "id_149999"]
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 3, 2)
    result = m.run(x)
    np.testing.assert_array_equal(result["Z"], result["lstm/Y_h"])


# --- every field type- and range-checked where it is read ----------------------------------------

WRONG_KINDS = [
    (raw_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], "lstm", field(1, "hidden_size") + field(3, 3) + field(20, 2), field(1, "activations") + field(3, 7) + field(20, 2)),
     "node 'lstm' (LSTM): attribute 'activations' is an int, expected strings"),
    (raw_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], "lstm", field(1, "hidden_size") + field(2, 3.0) + field(20, 1)),
     "node 'lstm' (LSTM): attribute 'hidden_size' is a float, expected int"),
    (raw_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], "lstm", field(1, "direction") + field(8, varint(1)) + field(20, 7)),
     "node 'lstm' (LSTM): attribute 'direction' is ints, expected string"),
    (raw_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], "lstm", field(1, "activation_alpha") + field(2, 1 << 40) + field(20, 1)),
     "node 'lstm' (LSTM): attribute 'activation_alpha' is a float, expected floats"),
    (raw_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], "lstm", field(1, "clip") + field(2, 1 << 40) + field(20, 1)),
     "node 'lstm' (LSTM): attribute 'clip': a float field holds a varint"),
    (raw_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], "lstm", field(1, "activations") + field(9, 5) + field(20, 8)),
     "node 'lstm' (LSTM): attribute 'activations': a value is a number on the wire, expected a string"),
    (raw_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], "lstm", field(1, "activations") + field(9, b"\xff\xfe") + field(20, 8)),
     "node 'lstm' (LSTM): attribute 'activations': a value is not UTF-8 text"),
    (field(1, 5) + field(2, "Y") + field(3, "lstm") + field(4, "LSTM"), "node 'lstm' (LSTM): an input name is a number on the wire, expected a string"),
    (field(1, "X") + field(2, 9) + field(3, "lstm") + field(4, "LSTM"), "node 'lstm' (LSTM): an output name is a number on the wire, expected a string"),
]


@pytest.mark.parametrize("lstm, said", WRONG_KINDS, ids=[f"kind-{i}" for i in range(len(WRONG_KINDS))])
def test_attributes_and_names_of_the_wrong_kind_are_named(tmp_path, lstm, said):
    path = write(tmp_path, [lstm, node("Identity", ["Y_h"], ["Z"], name="out")])
    fails("inspect", path, contains=[f"{path}: {said}"])


def test_op_attributes_of_the_wrong_kind_are_named(tmp_path):
    for op, attribute, said in (("Transpose", field(1, "perm") + field(2, 1.0) + field(20, 1), "attribute 'perm' is a float, expected ints"),
                                ("Concat", field(1, "axis") + field(4, "0") + field(20, 3), "attribute 'axis' is a string, expected int")):  # fmt: skip
        path = write(tmp_path, [LSTM, raw_node(op, ["Y_h"], ["Z"], "op", attribute)])
        fails("inspect", path, contains=[f"{path}: node 'op' ({op}): {said}"])


@pytest.mark.parametrize(
    "tensor, said",
    [
        (typed_tensor("q", [2], 3, 5, [1, 300]), "tensor 'q': value 300 is out of range for int8 (-128..127)"),
        (typed_tensor("q", [1], 2, 5, [(1 << 32) - 1]), "tensor 'q': value 4294967295 is out of range for uint8 (0..255)"),
        (typed_tensor("q", [1], 10, 5, [70000]), "tensor 'q': value 70000 is out of range for float16 bits (0..65535)"),
        (typed_tensor("q", [1], 12, 11, [1 << 40]), "tensor 'q': value 1099511627776 is out of range for uint32 (0..4294967295)"),
        (typed_tensor("q", [1], 9, 5, [2]), "tensor 'q': value 2 is out of range for bool (0..1)"),
        (typed_tensor("q", [3], 1, 4, [1 << 40]), "tensor 'q': field 4 holds a varint where 4-byte values belong"),
        (b"".join(field(1, d) for d in (1 << 63, 2)) + field(2, 1) + field(8, "q"), "tensor 'q': dimension an integer of 64 bits is negative"),
    ],
    ids=["int8", "uint8", "float16", "uint32", "bool", "float-as-varint", "negative-dim"],
)
def test_tensor_values_out_of_their_types_range_are_refused(tmp_path, tensor, said):
    path = write(tmp_path, [LSTM, node("Identity", ["Y_h"], ["Z"], name="out")], [tensor])
    fails("inspect", path, contains=[f"{path}: initializer: {said}"])


@pytest.mark.parametrize(
    "nodes, inits, said",
    [
        ([raw_node("Constant", [], ["W2"], "c"), node("LSTM", ["X", "W2", "R"], ["Y", "Y_h"], name="lstm", hidden_size=3)], [],
         "node 'c' (Constant): holds no tensor (one of value, value_float(s), value_int(s) is needed)"),
        ([raw_node("Constant", [], ["W2"], "c", field(1, "value") + field(2, 1.0) + field(20, 1)), node("LSTM", ["X", "W2", "R"], ["Y", "Y_h"], name="lstm", hidden_size=3)], [],
         "node 'c' (Constant): attribute 'value' is a float, expected tensor"),
        ([node("LSTM", ["", "W", "R"], ["Y", "Y_h"], name="lstm", hidden_size=3)], [], "node 'lstm' (LSTM): input X is missing"),
        ([node("LSTM", [], ["Y", "Y_h"], name="lstm", hidden_size=3)], [], "node 'lstm' (LSTM): input X is missing"),
        ([node("LSTM", ["x0", "W", "R"], ["Y", "Y_h"], name="lstm", hidden_size=3)], [onnx_tensor("x0", np.ones((3, 1, 2), np.float32))],
         "node 'lstm' (LSTM): input X is a constant of the graph; lstmctl runs a recurrent node on what the graph's inputs feed it"),
        ([node("LSTM", ["X", "W", "R", "", "", "h0"], ["Y", "Y_h"], name="lstm", hidden_size=3)], [onnx_tensor("h0", np.float32(0.5).reshape(()))],
         "node 'lstm' (LSTM): initial_h has shape (), expected [directions, batch, hidden] = (1, 'batch', 3)"),
        ([node("Relu", [], ["r"], name="relu"), LSTM], [], "node 'relu' (Relu): needs 1 inputs, has 0"),
    ],
    ids=["constant-without-tensor", "constant-value-a-float", "x-empty-name", "no-inputs", "x-constant", "scalar-initial-h", "op-without-inputs"],
)
def test_nodes_that_cannot_be_what_they_claim_are_refused(tmp_path, nodes, inits, said):
    path = write(tmp_path, [*nodes, node("Identity", ["Y_h"], ["Z"], name="out")], inits)
    fails("inspect", path, contains=[f"{path}: {said}"])


def test_an_initial_state_the_graph_computes_is_checked_when_run(tmp_path):
    """initial_h made by the graph (a ReduceSum of X to a scalar): its shape is checked before it is
    indexed. (X, read by a ReduceSum too, is fed as the file lays it out: [time 1, batch 3, 2].)"""
    nodes = [raw_node("ReduceSum", ["X"], ["h0"], "sum", ints("axes", [0, 1, 2]), field(1, "keepdims") + field(3, 0) + field(20, 2)),
             node("LSTM", ["X", "W", "R", "", "", "h0"], ["Y", "Y_h"], name="lstm", hidden_size=3), node("Identity", ["Y_h"], ["Z"], name="out")]  # fmt: skip
    path = write(tmp_path, nodes)
    fails("run", path, "--input", x_npy(tmp_path), contains=[f"{path}: node 'lstm': initial_h has shape (), expected [directions, batch, hidden] = (1, 3, 3)"])


@pytest.mark.parametrize("dims, said", [([-5, 1, 2], "has dimension -5; a size is not negative"), ([3, 1 << 40, 2], "2**40 elements along one dimension is over lstmctl's budget of 2**31")])
def test_graph_input_dims_are_checked(tmp_path, dims, said):
    path = write(tmp_path, [LSTM, node("Identity", ["Y_h"], ["Z"], name="out")], inputs=[value_info("X", dims)])
    fails("inspect", path, contains=[f"{path}: graph input: 'X' {said}" if "negative" in said else f"{path}: graph input: 'X': {said}"])


def test_a_float_attribute_is_read_as_its_bits(tmp_path):
    """The control for the cases above: a well-formed HardSigmoid alpha, written as fixed32, is read."""
    alpha = field(1, "activation_alpha") + field(7, struct.pack("<f", 0.2)) + field(20, 6)
    acts = field(1, "activations") + b"".join(field(9, a) for a in ("HardSigmoid", "Tanh", "Tanh")) + field(20, 8)
    lstm = raw_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], "lstm", field(1, "hidden_size") + field(3, 3) + field(20, 2), acts, alpha)
    path = write(tmp_path, [lstm, node("Identity", ["Y_h"], ["Z"], name="out")])
    assert lstmctl.load(path).layer("lstm").cell.recurrent_activation_name == "hard_sigmoid"
    assert cli("run", path, "--input", x_npy(tmp_path)).exit_code == 0


@pytest.mark.parametrize("shape, units, said", [([1 << 21, 1, 3], 16, "2**21 iterations of one loop is over lstmctl's budget of 2**20"),
                                                ([1 << 16, 1 << 8, 3], 64, "elements all operators of one run compute is over lstmctl's budget of 2**30")])  # fmt: skip
def test_a_recurrent_node_on_an_expanded_sequence_is_budgeted(tmp_path, shape, units, said):
    """A second LSTM whose X is Y_h expanded to 2**21 steps (or 2**16 steps of 256 samples, whose Y
    of 64 units would be 2**30 elements): its steps and its Y count against the run's budget before
    the first step."""
    inits = [onnx_tensor("shape", np.array(shape, np.int64)), onnx_tensor("W2", R.normal(size=(1, 4 * units, 3)).astype(np.float32)), onnx_tensor("R2", R.normal(size=(1, 4 * units, units)).astype(np.float32))]
    nodes = [LSTM, node("Expand", ["Y_h", "shape"], ["E"], name="expand"), node("LSTM", ["E", "W2", "R2"], ["Z"], name="lstm2", hidden_size=units)]
    path = write(tmp_path, nodes, inits)
    fails("run", path, "--input", x_npy(tmp_path), contains=[f"{path}: node 'lstm2': ", said])


def test_graph_names_that_are_no_text_do_not_become_keys(tmp_path):
    """An output named with an escape sequence is returned as output_0, an input so named as input_0:
    a name from the file reaches the terminal only as printable text."""
    nodes = [node("LSTM", ["\x1b]0;x\x07", "W", "R"], ["Y", "\x1b[2J"], name="lstm", hidden_size=3)]
    path = write(tmp_path, nodes, inputs=[value_info("\x1b]0;x\x07", ["t", "b", 2])], outputs=[value_info("\x1b[2J", [])])
    m = lstmctl.load(path)
    assert [s.name for s in m.inputs] == ["input_0"] and m.output_names == ["output_0"]
    result = m.run(np.zeros((1, 3, 2), np.float32))
    assert all(k.isprintable() for k in result)
    out = cli("run", path)
    assert out.exit_code == 0 and "\x1b" not in out.output


def test_op_and_domain_strings_reach_the_terminal_escaped(tmp_path):
    """An unnamed node of op type ESC[2J in domain ESC]0;x BEL: its layer name is node_1, its class escaped."""
    odd = field(1, "Y_h") + field(2, "Z") + field(4, "\x1b[2J") + field(7, "\x1b]0;x\x07")
    path = write(tmp_path, [LSTM, odd])
    layer = lstmctl.load(path).layers[-1]
    assert (layer.name, layer.class_name) == ("node_1", "\\x1b]0;x\\x07.\\x1b[2J")
    out = cli("inspect", path)
    assert out.exit_code == 0 and "\x1b" not in out.output
