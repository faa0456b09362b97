"""The RNN wrapper over one cell or a stack of cells (Keras's form of TF1's MultiRNNCell), against
what Keras 3 and tf_keras computed for the fixtures in sample_models/layers: inspect's view of the
cells, per-cell keys in gates and run, trace and diagnose on one cell, export of a stack."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from conftest import SAMPLES
from lstmctl import conventions
from lstmctl.cli import main
from lstmctl.analysis.describe import inspect_facts, run_selection
from lstmctl.analysis.diagnose import diagnose
from lstmctl.errors import UsageError
from lstmctl.analysis.trace import trace

LAYERS = SAMPLES / "layers"
BOTH = ["k3_{}.keras", "k2_{}.h5"]


def _load(name):
    with np.load(LAYERS / f"{name}.expected.npz") as data:
        exp = dict(data)
    return lstmctl.load(LAYERS / name), exp


def _inputs(exp):
    return {k.split("/", 1)[1]: v for k, v in exp.items() if k.startswith("input/")}


@pytest.mark.parametrize("pattern", BOTH)
def test_inspect_lists_each_cell_what_it_feeds_and_every_state_keras_returns(pattern):
    model, _ = _load(pattern.format("rnn_stack3"))
    (stack,) = [f for f in inspect_facts(model)["layers"] if f["name"] == "stack"]
    cells = stack["recurrent"]["cells"]
    assert [(c["name"], c["class_name"], c["units"], c["input_dim"]) for c in cells] == [
        ("stack/cell_0", "LSTMCell", 4, 3), ("stack/cell_1", "LSTMCell", 3, 4), ("stack/cell_2", "LSTMCell", 2, 3)]  # fmt: skip
    assert [c["feeds"] for c in cells] == ["stack/cell_1", "stack/cell_2", "the layer's output"]
    assert [g["gate"] for g in cells[1]["gates"]] == ["i", "f", "c", "o"]
    returns = [(r["keras"], r["shape"][-1]) for r in stack["recurrent"]["returns"]]
    assert returns == [
        ("whole_seq_output", 2),
        ("cell_0 final_memory_state", 4), ("cell_0 final_carry_state", 4),
        ("cell_1 final_memory_state", 3), ("cell_1 final_carry_state", 3),
        ("cell_2 final_memory_state", 2), ("cell_2 final_carry_state", 2),
    ]  # fmt: skip
    assert len(stack["output_shapes"]) == 7


@pytest.mark.parametrize("pattern", BOTH)
def test_trainable_is_read_from_the_config(pattern):
    model, _ = _load(pattern.format("rnn_options"))
    facts = {f["name"]: f for f in inspect_facts(model)["layers"]}
    assert facts["rnn_frozen"]["trainable"] is False and facts["lstm_frozen"]["trainable"] is False
    assert facts["stack_backwards"]["trainable"] is True
    result = CliRunner().invoke(main, ["inspect", str(LAYERS / pattern.format("rnn_options"))])
    assert result.exit_code == 0, result.output
    assert "RNN (frozen)" in result.output and "LSTM (frozen)" in result.output
    assert "frozen: trainable=False" in result.output


@pytest.mark.parametrize("pattern", BOTH)
def test_gates_are_keyed_per_cell(pattern):
    model, exp = _load(pattern.format("rnn_stack3"))
    gates = model.gates("stack")
    assert sorted({k.rsplit("/", 1)[0] for k in gates}) == ["stack/cell_0", "stack/cell_1", "stack/cell_2"]
    # cell 1's kernel is Keras's 4th array (cells in order, kernel/recurrent_kernel/bias each); f is columns 3:6
    np.testing.assert_array_equal(gates["stack/cell_1/W_f"], exp["weights/stack/3"][:, 3:6])
    np.testing.assert_array_equal(gates["stack/cell_2/b_o"], exp["weights/stack/8"][6:8])
    result = CliRunner().invoke(main, ["gates", str(LAYERS / pattern.format("rnn_stack3")), "--layer", "stack", "--gate", "f", "--part", "U", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output)) == ["stack/cell_0/U_f", "stack/cell_1/U_f", "stack/cell_2/U_f"]


@pytest.mark.parametrize("pattern", BOTH)
def test_run_shows_every_cells_states_in_kerass_order(pattern, tmp_path):
    name = pattern.format("rnn_stack3")
    model, exp = _load(name)
    (x,) = _inputs(exp).values()
    result = model.run(x)
    shown = [key for key, _ in run_selection(model, result, layer="stack", return_state=True)]
    assert shown == ["stack/cell_0/h", "stack/cell_0/c", "stack/cell_1/h", "stack/cell_1/c", "stack/cell_2/h", "stack/cell_2/c"]
    # Keras's return_state list: output_1.. are h0, c0, h1, c1, h2, c2
    for i, key in enumerate(shown, start=1):
        np.testing.assert_allclose(result[key], exp[f"output_{i}"], atol=1e-5, err_msg=key)
    np.save(tmp_path / "x.npy", x)
    out = CliRunner().invoke(main, ["run", str(LAYERS / name), "--input", str(tmp_path / "x.npy"), "--return-state", "--layer", "stack"])
    assert out.exit_code == 0, out.output
    titles = [line.split("─ ", 1)[1].split()[0] for line in out.output.splitlines() if line.startswith("╭─ ")]
    assert titles == shown


@pytest.mark.parametrize("pattern", BOTH)
@pytest.mark.parametrize("cell", [0, 1])
def test_trace_of_one_cell_is_that_cells_keras_sequence(pattern, cell):
    model, exp = _load(pattern.format("rnn_masked"))
    t = trace(model, _inputs(exp), layer=f"stack/cell_{cell}", sample=1)
    np.testing.assert_allclose(t.arrays[f"stack/cell_{cell}/h"], exp[f"stack/cell_{cell}/sequence"][1], atol=1e-5)
    if cell == 0:  # an LSTMCell: the cell state after the last step is Keras's final c
        np.testing.assert_allclose(t.arrays["stack/cell_0/c"][-1], exp["stack/cell_0/c"][1], atol=1e-5)
    with pytest.raises(UsageError, match="stack of 2 cells"):
        trace(model, _inputs(exp), layer="stack")


@pytest.mark.parametrize("pattern", BOTH)
def test_diagnose_one_cell_of_a_stack(pattern):
    model, exp = _load(pattern.format("rnn_stack3"))
    inputs = _inputs(exp)
    theirs = exp["stack/cell_1/sequence"][0]
    assert diagnose(model, inputs, theirs, layer="stack/cell_1").match
    # a re-implementation that added 1 to the forget bias of cell 1 (trained biases)
    cell = model.layer("stack/cell_1").cell
    wrong = lstmctl.load(LAYERS / pattern.format("rnn_stack3"))
    bias = wrong.layer("stack/cell_1").cell.bias.copy()
    bias[cell.units : 2 * cell.units] += 1.0
    wrong.layer("stack/cell_1").cell.bias = bias
    d = diagnose(model, inputs, wrong.run(inputs)["stack/cell_1/sequence"][0], layer="stack/cell_1")
    assert not d.match and d.results[0]["id"] == "forget_bias_added" and d.results[0]["matches"]


@pytest.mark.parametrize("to", ["pytorch", "tf1"])
@pytest.mark.parametrize("pattern", BOTH)
def test_export_of_a_stack_runs_as_the_stack(pattern, to):
    """The encoder, RNN([LSTMCell(4), LSTMCell(4)]), as torch.nn.LSTM(num_layers=2) / a TF1
    MultiRNNCell, imported back: the top cell's sequence is Keras's."""
    model, exp = _load(pattern.format("rnn_encdec"))
    arrays, notes = conventions.export(model, to, ["encoder"])
    if to == "pytorch":
        assert any("num_layers=2" in n for n in notes)
        assert sorted(arrays) == sorted(f"{w}_l{k}" for k in (0, 1) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    else:
        assert sorted(arrays) == sorted(f"rnn/multi_rnn_cell/cell_{k}/lstm_cell/{w}" for k in (0, 1) for w in ("kernel", "bias"))
    imported = conventions.import_arrays(arrays, to)
    np.testing.assert_allclose(imported.run(exp["encoder/input"])["output"], exp["encoder/sequence"], atol=1e-5)


def test_pytorch_refuses_a_stack_of_different_sizes():
    model, _ = _load("k3_rnn_stack3.keras")
    with pytest.raises(lstmctl.LstmctlError, match="one hidden_size, but the layers have units 4, 3, 2"):
        conventions.export(model, "pytorch", ["stack"])
    arrays, _ = conventions.export(model, "tf1", ["stack"])  # TF1's MultiRNNCell takes any sizes
    assert arrays["rnn/multi_rnn_cell/cell_2/lstm_cell/kernel"].shape == (3 + 2, 4 * 2)


def test_model_and_result_reprs_are_short():
    model, exp = _load("k3_rnn_stack3.keras")
    assert repr(model) == f"<lstmctl Model 'rnn_stack3' from '{LAYERS / 'k3_rnn_stack3.keras'}': 2 layers, recurrent: stack (RNN)>"
    text = repr(model.run(_inputs(exp)))
    assert text.startswith("<lstmctl Result {'output_0': float32(3, 5, 2), ") and len(text) < 700
