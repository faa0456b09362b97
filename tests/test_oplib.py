"""lstmctl.oplib: the graph operators the ONNX runner (and the TFLite reader) share. Values are
the ONNX specification's own examples where ONNX and NumPy differ (Slice clamps, Gather takes
negative indices, Reshape's 0 and -1, integer Div truncates, old Softmax flattens), and every
op's result is budgeted before it is allocated. The last test runs each case through
onnxruntime where it is installed."""

import numpy as np
import pytest

from lstmctl import budget
from lstmctl.errors import LstmctlError
from lstmctl.layers.onnx import compute
from lstmctl.oplib import elementwise as ew
from lstmctl.oplib import linalg, reduce
from lstmctl.oplib import shape as sh

DATA = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32)


# --- where ONNX and NumPy differ: the specification's examples -------------------------------------


@pytest.mark.parametrize(
    "kwargs, want",
    [
        ({"starts": [1, 0], "ends": [2, 3], "axes": [0, 1], "steps": [1, 2]}, [[5, 7]]),  # onnx Slice example 1
        ({"starts": [0, 1], "ends": [-1, 1000]}, [[2, 3, 4]]),  # example 2: an end past the dimension is clamped
        ({"starts": [-1], "ends": [-(2**63)], "axes": [1], "steps": [-1]}, [[4, 3, 2, 1], [8, 7, 6, 5]]),  # INT64_MIN with a negative step: through index 0
        ({"starts": [2**63 - 1], "ends": [0], "axes": [1], "steps": [-1]}, [[4, 3, 2], [8, 7, 6]]),  # INT64_MAX start clamps to the last index
        ({"starts": [-100], "ends": [2], "axes": [-1]}, [[1, 2], [5, 6]]),
        ({"starts": [3], "ends": [1], "axes": [1]}, np.zeros((2, 0))),  # empty, not an error
    ],
)
def test_slice_clamps_as_onnx(kwargs, want):
    np.testing.assert_array_equal(sh.slice_(DATA, **kwargs), np.array(want, np.float32))


def test_gather_takes_negative_indices_and_refuses_out_of_range():
    np.testing.assert_array_equal(sh.gather(DATA, np.array([-1, 0]), axis=0), [[5, 6, 7, 8], [1, 2, 3, 4]])
    np.testing.assert_array_equal(sh.gather(DATA, np.array([[0, -1]]), axis=1), [[[1, 4]], [[5, 8]]])
    assert sh.gather(DATA, np.array(1), axis=1).tolist() == [2, 6]  # a scalar index drops the axis
    with pytest.raises(LstmctlError, match=r"g: an index in -3..0 is outside \[-2, 1\]"):
        sh.gather(DATA, np.array([-3, 0]), where="g")


@pytest.mark.parametrize(
    "shape, allowzero, want",
    [([0, -1], False, (2, 4)), ([-1, 2], False, (4, 2)), ([2, 0, 2], False, (2, 2, 2))],
)
def test_reshape_zero_copies_and_minus_one_infers(shape, allowzero, want):
    x = DATA if len(shape) < 3 else DATA.reshape(2, 2, 2)
    assert sh.reshape(x, np.array(shape, np.int64), allowzero=allowzero).shape == want


def test_reshape_allowzero_and_bad_shapes():
    assert sh.reshape(np.zeros((0, 3)), np.array([0, 5]), allowzero=True).shape == (0, 5)
    for shape, said in (([-1, -1], "more than one -1"), ([3, -1], "cannot be reshaped"), ([5], "8 elements"), ([0, 0, 0], "copies (0) a dimension")):
        with pytest.raises(LstmctlError, match=said.replace("(", r"\(").replace(")", r"\)")):
            sh.reshape(DATA, np.array(shape))


def test_integer_div_truncates_toward_zero():
    np.testing.assert_array_equal(ew.div(np.array([-7, 7, -7]), np.array([2, -2, -2])), [-3, -3, 3])
    np.testing.assert_allclose(ew.div(np.float32(-7), np.float32(2)), -3.5)
    with pytest.raises(LstmctlError, match="integer division by zero"):
        ew.div(np.array([1]), np.array([0]))


def test_unsqueeze_axes_are_positions_in_the_result():
    assert sh.unsqueeze(DATA, axes=[0, 3]).shape == (1, 2, 4, 1) and sh.unsqueeze(DATA, axes=[-1]).shape == (2, 4, 1)
    assert sh.squeeze(np.zeros((1, 3, 1)), axes=None).shape == (3,)
    with pytest.raises(LstmctlError, match="not all are 1"):
        sh.squeeze(DATA, axes=[0])


def test_expand_is_bidirectional_broadcasting():
    # ONNX Expand example: shape (2, 1, 6) with data (3, 1) gives (2, 3, 6)
    out = sh.expand(np.array([[1], [2], [3]], np.float32), np.array([2, 1, 6]))
    assert out.shape == (2, 3, 6) and out[1, 2].tolist() == [3] * 6
    assert sh.expand(np.zeros((3, 4)), np.array([1])).shape == (3, 4)  # a smaller target keeps the data's shape


def test_gemm_matmul_and_old_softmax():
    a, b, c = np.arange(6, dtype=np.float32).reshape(3, 2), np.arange(8, dtype=np.float32).reshape(4, 2), np.float32([1, 2, 3, 4])
    np.testing.assert_allclose(linalg.gemm(a, b, c, alpha=2.0, beta=0.5, trans_b=True), 2 * a @ b.T + 0.5 * c)
    assert linalg.matmul(np.ones(3, np.float32), np.ones((5, 3, 2), np.float32)).shape == (5, 2)  # a 1-D operand is promoted, then dropped
    with pytest.raises(LstmctlError, match=r"shapes \(3, 2\) and \(3, 2\) do not chain"):
        linalg.matmul(a, a)
    # Softmax before opset 13 normalises over everything after `axis`, flattened
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    old = compute("Softmax", [x], {"axis": 1}, 11, 1, "s", None)[0]
    np.testing.assert_allclose(old.reshape(2, 6).sum(axis=1), [1, 1], rtol=1e-6)
    new = compute("Softmax", [x], {"axis": 1}, 13, 1, "s", None)[0]
    np.testing.assert_allclose(new.sum(axis=1), np.ones((2, 2)), rtol=1e-6)
    assert not np.allclose(old, new)


def test_cast_truncates_and_refuses_nan_to_int():
    assert ew.cast(np.float32([-1.7, 2.9]), dtype=np.int64).tolist() == [-1, 2]
    with pytest.raises(LstmctlError, match="NaN or infinity cast to int32"):
        ew.cast(np.float32([np.nan]), dtype=np.int32)


def test_split_and_shape_and_constant_of_shape():
    parts = compute("Split", [np.arange(5.0)], {}, 13, 3, "s", None)
    assert [p.tolist() for p in parts] == [[0, 1], [2, 3], [4]]
    assert sh.shape(np.zeros((2, 3, 4)), start=-2).tolist() == [3, 4]
    filled = sh.constant_of_shape(np.array([2, 3]), value=np.array([7], np.int32))
    assert filled.dtype == np.int32 and filled.tolist() == [[7] * 3] * 2


# --- the budget ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: ew.add(np.zeros((1 << 14, 1), np.float32), np.zeros((1, 1 << 14), np.float32), where="n"),  # a broadcast of 2**28
        lambda: sh.expand(np.float32(1), np.array([1 << 20, 1 << 20]), where="n"),
        lambda: sh.tile(np.zeros((4, 4)), np.array([1 << 12, 1 << 12]), where="n"),
        lambda: sh.concat([np.zeros((1 << 13, 1 << 12))] * 3, axis=0, where="n"),
        lambda: sh.gather(np.zeros((1 << 10, 1 << 10)), np.zeros((1 << 10, 1 << 7), np.int64), axis=0, where="n"),
        lambda: sh.constant_of_shape(np.array([1 << 20, 1 << 20]), where="n"),
        lambda: ew.select(np.zeros((1 << 14, 1), bool), np.zeros((1, 1 << 14)), np.float32(0), where="n"),
    ],
)
def test_each_op_checks_its_result_before_allocating(call):
    with pytest.raises(LstmctlError, match=r"^n: .* elements one operator computes is over lstmctl's budget of 2\*\*26$"):
        call()


def test_a_matmul_counts_its_multiply_adds():
    """A (4096, 4096) @ (4096, 4096) product has 2**24 elements but computes 2**36 multiply-adds."""
    a = np.zeros((1, 1), np.float32)
    a = np.broadcast_to(a, (1 << 12, 1 << 12))  # a view: the test allocates nothing large
    with pytest.raises(LstmctlError, match=r"^n: 2\*\*36 elements all operators of one run compute is over lstmctl's budget of 2\*\*30$"):
        linalg.matmul(a, a, where="n")


def test_a_chain_of_ops_is_bounded_by_the_run_tally():
    tally = budget.Tally("m.onnx")
    x = np.zeros(1 << 24, np.float32)  # 2**24 elements: each op is within its own budget
    with pytest.raises(LstmctlError, match=r"^m.onnx: node 'add_64': 1090519040 elements all operators of one run compute is over lstmctl's budget of 2\*\*30$"):
        for k in range(100):
            x = ew.add(x, np.float32(1), where=f"m.onnx: node 'add_{k}'", tally=tally)
    assert tally.spent["graph_elements"] == 65 << 24  # 64 ops of 2**24 reach 2**30, the 65th is refused


def test_errors_name_the_node_not_numpy():
    for call, said in (
        (lambda: ew.add(np.zeros(3), np.zeros(4), where="w"), r"w: shapes \(3,\), \(4,\) do not broadcast"),
        (lambda: sh.transpose(DATA, perm=[0, 0], where="w"), r"w: perm \[0, 0\] is not a permutation"),
        (lambda: sh.concat([DATA, DATA.T], axis=0, where="w"), "w: shapes .* do not fit together along axis 0"),
        (lambda: sh.slice_(DATA, starts=[0], ends=[1], steps=[0], where="w"), "w: a step of 0"),
        (lambda: reduce.softmax(DATA, axis=2, where="w"), "w: axis 2 is out of range for rank 2"),
        (lambda: compute("Gather", [DATA], {}, 13, 1, "w", None), "w: needs 2 inputs, has 1"),
    ):
        with pytest.raises(LstmctlError, match=f"^{said}"):
            call()


# --- against onnxruntime, where it is installed -------------------------------------------------

CASES = [
    ("Slice", [DATA, np.array([-1]), np.array([-(2**63)]), np.array([1]), np.array([-1])], {}),
    ("Slice", [DATA, np.array([0, 1]), np.array([-1, 1000])], {}),
    ("Gather", [DATA, np.array([[-1, 0]])], {"axis": 1}),
    ("Reshape", [DATA.reshape(2, 2, 2), np.array([0, -1])], {}),
    ("Expand", [np.float32([[1], [2], [3]]), np.array([2, 1, 6])], {}),
    ("Div", [np.array([-7, 7], np.int64), np.array([2, -2], np.int64)], {}),
    ("Softmax", [np.arange(12, dtype=np.float32).reshape(2, 3, 2) / 5], {"axis": 1}),
    ("Gemm", [DATA, DATA, np.float32([1, 2])], {"alpha": 0.5, "beta": 2.0, "transB": 1}),
    ("MatMul", [np.ones((2, 1, 3, 4), np.float32), np.ones((5, 4, 2), np.float32)], {}),
    ("ReduceMean", [DATA], {"axes": [1], "keepdims": 0}),
    ("HardSigmoid", [DATA - 4], {"alpha": 0.3}),
    ("Unsqueeze", [DATA, np.array([0, -1])], {}),
    ("Tile", [DATA, np.array([2, 1])], {}),
    ("Flatten", [np.zeros((2, 3, 4), np.float32)], {"axis": -1}),
    ("Cast", [np.float32([-1.7, 2.9])], {"to": 7}),
]


@pytest.mark.parametrize("op, inputs, attrs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_ops_compute_what_onnxruntime_computes(op, inputs, attrs):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    (got,) = compute(op, inputs, attrs, 13, 1, "t", None)
    names = [f"i{k}" for k in range(len(inputs))]
    out = helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(got.dtype), None)  # onnxruntime refuses a wrong one
    graph = helper.make_graph([helper.make_node(op, names, ["y"], **attrs)], "g", [], [out], [numpy_helper.from_array(np.asarray(v), n) for v, n in zip(inputs, names)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    want = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {})[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_flatten_counts_a_negative_axis_from_the_end():
    x = np.zeros((2, 3, 4))
    assert [sh.flatten(x, axis=a).shape for a in (0, 1, 3, -1, -3)] == [(1, 24), (2, 12), (24, 1), (6, 4), (1, 24)]
    with pytest.raises(LstmctlError, match="axis 4 is out of range for rank 3"):
        sh.flatten(x, axis=4)
    # Softmax-1 on the last axis of a matrix (keras2onnx's) is the row-wise softmax
    np.testing.assert_allclose(compute("Softmax", [DATA], {"axis": -1}, 9, 1, "s", None)[0].sum(axis=1), [1, 1], rtol=1e-6)


def test_stack_and_unstack_are_each_others_inverse():
    a, b = np.float32([1, 2]), np.float32([3, 4])
    assert sh.stack([a, b], axis=1).tolist() == [[1, 3], [2, 4]] and sh.stack([a, b], axis=-1).shape == (2, 2)
    assert [p.tolist() for p in sh.unstack(np.float32([[1, 3], [2, 4]]), axis=1)] == [[1, 2], [3, 4]]
    with pytest.raises(LstmctlError, match=r"are not one shape to stack"):
        sh.stack([a, np.zeros(3)])
    with pytest.raises(LstmctlError, match=r"2\*\*28 elements one operator computes"):
        sh.stack([np.broadcast_to(np.float32(0), (1 << 14, 1 << 13))] * 2, where="n")


def test_reductions_over_no_axes():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert compute("ReduceSum", [x, np.zeros(0, np.int64)], {"keepdims": 0}, 13, 1, "r", None)[0].tolist() == 15  # empty axes: every axis
    assert compute("ReduceSum", [x, np.zeros(0, np.int64)], {"noop_with_empty_axes": 1}, 13, 1, "r", None)[0].tolist() == x.tolist()
    assert compute("ReduceMax", [x], {"axes": [-1]}, 13, 1, "r", None)[0].tolist() == [[2], [5]]
