"""Hostile and broken .tflite files, built on the fly (tests/tflbuild.py) or cut from a fixture:
each refused with one line naming the file and what is wrong, exit code 3, in bounded time and
memory (lstmctl.budget), nothing executed."""

import struct

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from lstmctl import budget
from lstmctl.cli import main
from lstmctl.errors import LstmctlError
from lstmctl.formats import flatbuf, tflite_file
from conftest import SAMPLES
from tflbuild import model, operator, subgraph, tensor

FIXTURE = SAMPLES / "tflite" / "k3_lstm.tflite"
f32 = lambda *v: np.array(v, np.float32).tobytes()  # noqa: E731
i32 = lambda *v: np.array(v, np.int32).tobytes()  # noqa: E731


def refused(tmp_path, blob, match, command=("inspect",), name="model.tflite"):
    path = tmp_path / name
    path.write_bytes(blob)
    res = CliRunner().invoke(main, [*command, str(path)])
    assert res.exit_code == 3, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0], res.output
    assert match in lines[0], lines[0]
    assert "Traceback" not in res.output and "unexpected" not in lines[0]
    return lines[0]


def add_model(shape=(1, 3), **changes):
    """x + c: one ADD (the smallest float model), with `changes` to its parts."""
    tensors = [tensor("x", shape), tensor("c", changes.get("c_shape", (3,)), buffer=1), tensor("y", shape)]
    ops = [operator(changes.get("opcode_index", 0), changes.get("inputs", [0, 1]), [2])]
    return model(["ADD"], [subgraph("main", tensors, [0], [2], ops)], [changes.get("c_bytes", f32(1, 2, 3))])


def test_builder_makes_a_model_that_runs(tmp_path):
    path = tmp_path / "add.tflite"
    path.write_bytes(add_model())
    m = lstmctl.load(str(path))
    np.testing.assert_allclose(m.run(np.ones((1, 3), np.float32))["y"], [[2, 3, 4]])


def test_root_offset_outside_the_file(tmp_path):
    blob = bytearray(FIXTURE.read_bytes())
    struct.pack_into("<I", blob, 0, len(blob) + 100)
    refused(tmp_path, bytes(blob), "run past the end of the file")


@pytest.mark.parametrize("size", [8, 12, 64, 1000, 5000])
def test_truncated(tmp_path, size):
    refused(tmp_path, FIXTURE.read_bytes()[:size], "past the end of the file")


def test_vtable_offset_outside(tmp_path):
    blob = bytearray(FIXTURE.read_bytes())
    root = struct.unpack_from("<I", blob, 0)[0]
    struct.pack_into("<i", blob, root, -(1 << 30))
    refused(tmp_path, bytes(blob), "vtable")


def test_huge_vector_count(tmp_path):
    """The subgraphs vector claims 2**32 - 1 entries."""
    blob = bytearray(FIXTURE.read_bytes())
    root = flatbuf.Buffer(bytes(blob), "x").root()
    at = root._indirect(2, "subgraphs")
    struct.pack_into("<I", blob, at, 0xFFFFFFFF)
    refused(tmp_path, bytes(blob), "over lstmctl's budget")


def test_huge_shape(tmp_path):
    refused(tmp_path, add_model(shape=(1 << 20, 1 << 20)), "over lstmctl's budget")


def test_negative_dimension(tmp_path):
    refused(tmp_path, add_model(shape=(1, -3)), "is negative")


def test_bad_opcode_index(tmp_path):
    refused(tmp_path, add_model(opcode_index=7), "opcode index 7 is past the file's 1 operator codes")


def test_tensor_index_outside(tmp_path):
    refused(tmp_path, add_model(inputs=[0, 99]), "names tensor 99")


def test_buffer_too_small_for_its_shape(tmp_path):
    refused(tmp_path, add_model(c_bytes=f32(1)), "needs 12 bytes, its buffer holds 4")


def test_not_a_tflite_identifier(tmp_path):
    blob = bytearray(add_model())
    blob[4:8] = b"TFL2"
    refused(tmp_path, bytes(blob), "not a Keras model file")


def _loop_model(body_ops, body_tensors, cond_index=1, body_index=2, extra=()):
    """main: WHILE(counter, x) over cond `counter < 10` and the given body."""
    main = subgraph("main", [tensor("i0", (), 2, 1), tensor("x", (1, 3)), tensor("i", (), 2), tensor("y", (1, 3))], [1], [3], [operator(1, [0, 1], [2, 3], (cond_index, body_index))])
    cond = subgraph("cond", [tensor("i", (), 2), tensor("x", (1, 3)), tensor("ten", (), 2, 2), tensor("go", (), 6)], [0, 1], [3], [operator(2, [0, 2], [3])])
    body = subgraph("body", body_tensors, [0, 1], [2, 3], body_ops)
    return model(["ADD", "WHILE", "LESS", "TANH"], [main, cond, body, *extra], [i32(0), i32(10), i32(0), i32(1)])


def test_while_that_never_ends(tmp_path, monkeypatch):
    """The body adds 0 to the counter: the cond never turns false. Refused at the loop-steps budget
    (lowered here so the test is quick; the default bounds it the same way)."""
    monkeypatch.setitem(budget.LIMITS, "loop_steps", (500, budget.LIMITS["loop_steps"][1]))
    body_tensors = [tensor("i", (), 2), tensor("x", (1, 3)), tensor("i2", (), 2), tensor("x2", (1, 3)), tensor("zero", (), 2, 3)]
    blob = _loop_model([operator(0, [0, 4], [2]), operator(3, [1], [3])], body_tensors)
    line = refused(tmp_path, blob, "iterations of one loop is over lstmctl's budget of 500", command=("run",))
    assert "WHILE" in line


def test_while_that_ends_runs(tmp_path):
    body_tensors = [tensor("i", (), 2), tensor("x", (1, 3)), tensor("i2", (), 2), tensor("x2", (1, 3)), tensor("one", (), 2, 4)]
    path = tmp_path / "loop.tflite"
    path.write_bytes(_loop_model([operator(0, [0, 4], [2]), operator(3, [1], [3])], body_tensors))
    x = np.array([[0.1, -0.2, 0.3]], np.float32)
    want = x
    for _ in range(10):
        want = np.tanh(want)
    np.testing.assert_allclose(lstmctl.load(str(path)).run(x)["y"], want, atol=1e-6)


def test_subgraphs_calling_each_other(tmp_path):
    """The body holds a WHILE whose body is itself: refused when read."""
    body_tensors = [tensor("i", (), 2), tensor("x", (1, 3)), tensor("i2", (), 2), tensor("x2", (1, 3))]
    blob = _loop_model([operator(1, [0, 1], [2, 3], (1, 2))], body_tensors)
    refused(tmp_path, blob, "call each other in a cycle (2 → 2)")


def test_while_naming_the_main_subgraph(tmp_path):
    body_tensors = [tensor("i", (), 2), tensor("x", (1, 3)), tensor("i2", (), 2), tensor("x2", (1, 3))]
    refused(tmp_path, _loop_model([operator(3, [1], [3])], body_tensors, body_index=0), "names subgraph 0")


def test_op_result_over_budget(tmp_path):
    """FILL asked for 2**30 elements by a few bytes of file: refused before allocating."""
    tensors = [tensor("x", (1, 3)), tensor("dims", (2,), 2, 1), tensor("v", (), 0, 2), tensor("y", (1 << 15, 1 << 15))]
    blob = model(["FILL"], [subgraph("main", tensors, [0], [3], [operator(0, [1, 2], [3])])], [i32(1 << 15, 1 << 15), f32(1.0)])
    refused(tmp_path, blob, "over lstmctl's budget", command=("run",))


def test_custom_op_refused_by_run_shown_by_inspect(tmp_path):
    tensors = [tensor("x", (1, 3)), tensor("y", (1, 3))]
    blob = model(["CUSTOM"], [subgraph("main", tensors, [0], [1], [operator(0, [0], [1])])], [], custom="\x1b[2JMyOp")
    path = tmp_path / "custom.tflite"
    path.write_bytes(blob)
    assert CliRunner().invoke(main, ["inspect", str(path)]).exit_code == 0
    line = refused(tmp_path, blob, "custom operator", command=("run",), name="custom.tflite")
    assert "\x1b" not in line and "\\x1b[2JMyOp" in line


def test_deep_subgraph_calls(tmp_path, monkeypatch):
    """A chain of WHILE bodies, each calling the next: refused at the depth budget."""
    monkeypatch.setitem(budget.LIMITS, "depth", (20, budget.LIMITS["depth"][1]))
    n = 30
    graphs = [subgraph("main", [tensor("i0", (), 2, 1), tensor("x", (1, 3)), tensor("i", (), 2), tensor("y", (1, 3))], [1], [3], [operator(1, [0, 1], [2, 3], (1, 2))]),
              subgraph("cond", [tensor("i", (), 2), tensor("x", (1, 3)), tensor("ten", (), 2, 2), tensor("go", (), 6)], [0, 1], [3], [operator(2, [0, 2], [3])])]  # fmt: skip
    for k in range(n):
        nxt = 2 + k + 1
        ops = [operator(1, [0, 1], [2, 3], (1, nxt))] if k < n - 1 else [operator(3, [1], [3])]
        graphs.append(subgraph(f"body{k}", [tensor("i", (), 2), tensor("x", (1, 3)), tensor("i2", (), 2), tensor("x2", (1, 3))], [0, 1], [2, 3], ops))
    blob = model(["ADD", "WHILE", "LESS", "TANH"], graphs, [i32(0), i32(10)])
    refused(tmp_path, blob, "levels of nesting is over lstmctl's budget of 20")


def test_reader_errors_name_the_field(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(add_model(shape=(1, -3)))
    with pytest.raises(LstmctlError, match=r"m.tflite: subgraph 0 tensor 0 'x': dimension -3 is negative"):
        tflite_file.read(str(path))
