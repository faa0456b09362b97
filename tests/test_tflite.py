"""TensorFlow Lite files: lstmctl's run against what LiteRT computed for the fixtures in
sample_models/tflite/ (written by generate_tflite.py, LiteRT's outputs beside each), the recurrent
layers found (USL ops and WHILE loops matched to Keras layers), inspect, gates, trace, and the
refusals (Flex, full-integer)."""

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
import lstmctl.runner
from lstmctl.cli import main
from lstmctl.errors import LstmctlError, Unsupported
from lstmctl.formats import tflite_file
from conftest import SAMPLES

TFL = SAMPLES / "tflite"
FIXTURES = sorted(p.name[: -len(".tflite")] for p in TFL.glob("*.tflite") if (TFL / f"{p.name}.expected.npz").exists())
# what each fixture's recurrent layers are: (name, class) in graph order
RECURRENT = {
    "k3_lstm": [("lstm_1", "LSTM")], "k3_lstm_seq": [("lstm_1", "LSTM")], "k3_lstm_relu": [("lstm_1", "LSTM")], "k3_lstm_state": [("lstm_1", "LSTM")],
    "k3_gru": [("gru_1", "GRU"), ("gru_1_2", "GRU")], "k3_gru_before": [("gru_1", "GRU")],
    "k3_simplernn": [("simple_rnn_1", "SimpleRNN"), ("simple_rnn_1_2", "SimpleRNN")], "k3_stack": [("lstm_1", "LSTM"), ("lstm_1_2", "LSTM")],
    "k3_bidir": [("backward_lstm_1", "LSTM"), ("forward_lstm_1", "LSTM")], "k3_embed": [("lstm_1", "LSTM")],
    "k2_lstm": [("lstm_0", "LSTM")], "k2_stack": [("lstm_0", "LSTM"), ("lstm_1", "LSTM")], "k2_bidir": [("lstm_0", "LSTM"), ("lstm_1", "LSTM")],
    "k2_gru": [("gru", "GRU")], "k2_lstm_gru_shared": [("lstm_0", "LSTM"), ("gru", "GRU")], "k2_simplernn": [("simple_rnn", "SimpleRNN")], "k2_lstm_state": [("lstm", "LSTM")],
    "k2_lstm_cellclip": [("lstm_0", "LSTM")], "k2_lstm_quant": [("lstm_0", "LSTM")], "k3_lstm_quant": [("lstm_1_1", "LSTM")],
    "k3_gru_quant": [("gru_1", "GRU")], "k3_embed_quant": [("lstm_1", "LSTM")],
}  # fmt: skip


def fixture(name):
    path = str(TFL / f"{name}.tflite")
    with np.load(path + ".expected.npz") as data:
        exp = dict(data)
    inputs = {k[len("input/") :]: v for k, v in exp.items() if k.startswith("input/")}
    return path, exp, inputs


def test_every_fixture_is_listed():
    assert sorted(RECURRENT) == FIXTURES


@pytest.mark.parametrize("name", FIXTURES)
def test_run_equals_litert(name):
    path, exp, inputs = fixture(name)
    model = lstmctl.load(path)
    assert model.format == "tflite"
    assert [(layer.name, layer.class_name) for layer in model.recurrent_layers()] == RECURRENT[name]
    result = model.run(inputs)
    outputs = [k for k in exp if not k.startswith(("input/", "keras/", "builtin/"))]
    assert outputs
    quantized = name.endswith("_quant")
    for key in outputs:
        # keyed by the .tflite's output tensor names; LiteRT's default (XNNPACK) kernels to 1e-4 when quantized
        np.testing.assert_allclose(result[key], exp[key], rtol=0, atol=1e-4 if quantized else 1e-5)
        if quantized:  # LiteRT's builtin hybrid kernels, which lstmctl computes as they do
            np.testing.assert_allclose(result[key], exp[f"builtin/{key}"], rtol=0, atol=1e-5)


def test_outputs_keyed_by_tensor_names_and_order():
    path, exp, inputs = fixture("k3_lstm_state")
    model = lstmctl.load(path)
    result = model.run(inputs)
    names = model.output_names
    assert len(names) == 3 and all(n in exp for n in names)
    for i, n in enumerate(names):
        np.testing.assert_array_equal(result[f"output_{i}"], result[n])


def test_recurrent_sequences_and_states_match_keras_layers():
    """The WHILE loop's recorded h, c are the Keras layer's final states (the outputs of return_state)."""
    path, exp, inputs = fixture("k3_lstm_state")
    result = lstmctl.load(path).run(inputs)
    keras_seq, keras_h, keras_c = exp["keras/output_0"], exp["keras/output_1"], exp["keras/output_2"]
    np.testing.assert_allclose(result["lstm_1/sequence"], keras_seq, atol=1e-5)
    np.testing.assert_allclose(result["lstm_1/h"], keras_h, atol=1e-5)
    np.testing.assert_allclose(result["lstm_1/c"], keras_c, atol=1e-5)


def test_chosen_by_bytes_not_by_name(tmp_path):
    path, exp, inputs = fixture("k2_lstm")
    for name in ("model.keras", "model.onnx", "model"):
        copy = tmp_path / name
        shutil.copy(path, copy)
        model = lstmctl.load(str(copy))
        assert model.format == "tflite"
        np.testing.assert_allclose(model.run(inputs)["StatefulPartitionedCall:0"], exp["StatefulPartitionedCall:0"], atol=1e-5)


def test_usl_gates_in_keras_layout():
    """W_i is the transpose of the USL's input-to-input weights (slot 1), U_o of slot 8, b_f slot 13."""
    path, _, _ = fixture("k2_lstm")
    model = lstmctl.load(path)
    graph = tflite_file.read(path).subgraphs[0]
    usl = next(op for op in graph.ops if op.code == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    gates = model.gates("lstm_0")
    np.testing.assert_array_equal(gates["lstm_0/W_i"], graph.tensors[usl.inputs[1]].data.T)
    np.testing.assert_array_equal(gates["lstm_0/U_o"], graph.tensors[usl.inputs[8]].data.T)
    np.testing.assert_array_equal(gates["lstm_0/b_f"], graph.tensors[usl.inputs[13]].data)
    assert usl.options["cell_clip"] == 10.0
    assert model.layer("lstm_0").cell.cell_clip == 10.0


def test_cell_clip_departs_from_keras():
    """The converter's cell_clip=10: LiteRT (and lstmctl) clip c_t, Keras does not; without the clip
    lstmctl's run would be Keras's."""
    path, exp, inputs = fixture("k2_lstm_cellclip")
    model = lstmctl.load(path)
    result = model.run(inputs)
    key = model.output_names[0]
    np.testing.assert_allclose(result[key], exp[key], atol=1e-5)
    assert np.abs(result[key] - exp["keras/output_0"]).max() > 0.5
    assert np.abs(result["lstm_0/c"]).max() <= 10.0 + 1e-6
    model.layer("lstm_0").cell.cell_clip = 0.0
    np.testing.assert_allclose(model.run(inputs)[key], exp["keras/output_0"], atol=1e-4)


def test_quantized_usl_gates_dequantized():
    path, _, _ = fixture("k2_lstm_quant")
    model = lstmctl.load(path)
    graph = tflite_file.read(path).subgraphs[0]
    usl = next(op for op in graph.ops if op.code == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    t = graph.tensors[usl.inputs[2]]
    assert t.data.dtype == np.int8 and t.scale.size == 1
    np.testing.assert_allclose(model.gates("lstm_0")["lstm_0/W_f"], t.data.T.astype(np.float32) * t.scale[0], rtol=1e-6)
    assert any("dynamic-range quantized" in n for n in model.layer("lstm_0").notes)


def test_while_body_gates_are_the_fully_connected_weights():
    path, _, _ = fixture("k3_gru")
    model = lstmctl.load(path)
    layer = model.layer("gru_1")
    assert layer.cell.kind == "gru" and layer.cell.reset_after
    tfile = tflite_file.read(path)
    body = tfile.subgraphs[layer.params["op"].options["body_subgraph_index"]]
    kernels = [body.tensors[op.inputs[1]].data for op in body.ops if op.code == "FULLY_CONNECTED"]
    assert any(k.shape == layer.cell.W.T.shape and np.array_equal(k, layer.cell.W.T) for k in kernels)


def test_trace_on_a_while_layer_equals_run():
    path, _, inputs = fixture("k3_lstm")
    model = lstmctl.load(path)
    result = lstmctl.runner.run(model, inputs, watch=("lstm_1",))
    seen = result.seen["lstm_1"]
    steps = seen["traces"][""]
    assert len(steps) == 7
    np.testing.assert_allclose(steps[-1][1][0], result["lstm_1/h"], atol=1e-6)


def test_flex_refused_with_one_line():
    path = str(TFL / "k3_lstm_flex.tflite")
    model = lstmctl.load(path)  # inspect still opens it
    with pytest.raises(Unsupported, match=r"FlexTensorListReserve is a Flex \(TensorFlow\) operator.*fixed batch size"):
        model.run()
    res = CliRunner().invoke(main, ["run", path])
    assert res.exit_code == 3
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "FlexTensorListReserve" in lines[0] and "SELECT_TF_OPS" in lines[0]


@pytest.mark.parametrize("name", ["k3_lstm", "k2_lstm_cellclip", "k3_gru_quant", "k3_lstm_flex"])
def test_inspect_cli(name):
    res = CliRunner().invoke(main, ["inspect", str(TFL / f"{name}.tflite")])
    assert res.exit_code == 0, res.output
    assert "TensorFlow Lite" in res.output
    if name == "k2_lstm_cellclip":
        assert "cell_clip=10" in res.output
    if name == "k3_gru_quant":
        assert "dynamic-range quantized" in res.output
    if name == "k3_lstm_flex":
        assert "FlexTensorListReserve" in res.output


def test_run_cli_writes_tensor_names(tmp_path):
    path, exp, inputs = fixture("k3_lstm")
    x = tmp_path / "x.npy"
    np.save(x, next(iter(inputs.values())))
    out = tmp_path / "out.npz"
    res = CliRunner().invoke(main, ["run", path, "--input", str(x), "-o", str(out)])
    assert res.exit_code == 0, res.output
    with np.load(out) as got:
        np.testing.assert_allclose(got["StatefulPartitionedCall_1:0"], exp["StatefulPartitionedCall_1:0"], atol=1e-5)
        assert "lstm_1/h" in got and "lstm_1/c" in got


def test_gates_cli_on_usl():
    res = CliRunner().invoke(main, ["gates", str(TFL / "k2_lstm.tflite"), "--layer", "lstm_0"])
    assert res.exit_code == 0, res.output
    assert "W_i" in res.output or "input gate" in res.output


def test_while_loop_that_is_no_recurrent_layer_runs_op_by_op(monkeypatch):
    """With matching switched off, the WHILE runs op by op through its subgraphs: the same values."""
    from lstmctl.layers import tflite_while

    path, exp, inputs = fixture("k3_gru")
    monkeypatch.setattr(tflite_while, "match", lambda rt, main, op: None)
    model = tflite_file.model(path)
    assert model.recurrent_layers() == []
    key = model.output_names[0]
    np.testing.assert_allclose(model.run(inputs)[key], exp[key], atol=1e-5)


def test_integer_model_refused():
    """A full-integer model: a USL on int8 activations is shown by inspect and refused by run."""
    path, _, _ = fixture("k2_lstm")
    model = lstmctl.load(path)
    layer = model.layer("lstm_0")
    layer.params["integer"] = True
    with pytest.raises(LstmctlError, match="full-integer quantized model"):
        model.run()


# --- compare model.keras model.tflite --------------------------------------------------------------


def _compare(tmp_path, name, x=None):
    path, exp, inputs = fixture(name)
    xpath = tmp_path / "x.npy"
    np.save(xpath, next(iter(inputs.values())) if x is None else x)
    return CliRunner().invoke(main, ["compare", str(TFL / f"{name}.keras"), path, "--input", str(xpath)])


def test_compare_names_an_active_cell_clip(tmp_path):
    res = _compare(tmp_path, "k2_lstm_cellclip")
    assert res.exit_code == 1
    last = res.output.strip().splitlines()[-1]
    assert "cell_clip=10 is active" in last and "passes 10 at 11 step(s) 10–20 in unit(s) 0–2" in last
    assert "sequence from step 20" in last


def test_compare_quantized_weights_in_scale_steps(tmp_path):
    from lstmctl.analysis.compare_tflite import compare_with_tflite

    path, _, inputs = fixture("k3_gru_quant")
    c = compare_with_tflite(lstmctl.load(str(TFL / "k3_gru_quant.keras")), lstmctl.load(path), next(iter(inputs.values())))
    (layer,) = c.layers
    (finding,) = layer.findings
    assert "W_z, W_r, W_h are int8" in finding and "rounding only" in finding
    worst = float(finding.split("up to ")[1].split(" of a")[0])
    assert 0.4 < worst <= 0.5
    assert not layer.ok  # the int8 weights do differ from Keras's
    res = _compare(tmp_path, "k2_lstm_quant")
    assert res.exit_code == 1 and "quantization: W_i, W_f, W_c, W_o, U_i, U_f, U_c, U_o are int8" in res.output.replace("\n", " ")
    assert "cell_clip=10 (written by the converter) is inactive" in res.output.replace("\n", " ")


def test_compare_agrees_on_a_float_conversion(tmp_path):
    res = _compare(tmp_path, "k3_lstm")
    assert res.exit_code == 0, res.output
    assert "1 of 1 recurrent layers of the port agree with the reference, 1 of 1 model outputs" in res.output
    assert "the batch is fixed at conversion" in res.output.replace("\n", " ")


def test_compare_refuses_another_batch(tmp_path):
    res = _compare(tmp_path, "k3_lstm", x=np.zeros((3, 7, 4), np.float32))
    assert res.exit_code == 3
    assert "a batch fixed at conversion: input 'serving_default_keras_tensor:0' takes batch 2, the input holds 3" in res.output


def test_a_state_tensor_shared_between_layers(tmp_path):
    """The converter gave the USL's h state and the GRU loop's initial h one variable tensor: LiteRT's
    USL leaves its final h there, the GRU starts from it; lstmctl runs it so and compare names it."""
    path, exp, inputs = fixture("k2_lstm_gru_shared")
    model = lstmctl.load(path)
    assert any(n.startswith("starts from the final h of layer 'lstm_0'") for n in model.layer("gru").notes)
    result = model.run(inputs)
    key = model.output_names[0]
    np.testing.assert_allclose(result[key], exp[key], atol=1e-5)
    assert np.abs(result[key] - exp["keras/output_0"]).max() > 1e-3  # Keras starts the GRU from zeros
    res = _compare(tmp_path, "k2_lstm_gru_shared")
    assert res.exit_code == 1
    last = res.output.strip().splitlines()[-1]
    assert "layer gru ↔ gru, sequence from step 0" in last and "starts from the final h of layer 'lstm_0'" in last


TRAPS = {"k2_lstm_cellclip": "cell_clip=10 is active", "k2_lstm_gru_shared": "starts from the final h", "k2_lstm_quant": "are int8",
         "k3_lstm_quant": "are int8", "k3_gru_quant": "are int8", "k3_embed_quant": "are int8"}  # fmt: skip


@pytest.mark.parametrize("name", FIXTURES)
def test_compare_every_fixture_with_its_keras_model(name):
    """Float conversions agree with Keras layer by layer (Bidirectional halves paired back); the
    others differ, and compare names why."""
    from lstmctl.analysis.compare_tflite import compare_with_tflite

    path, _, inputs = fixture(name)
    c = compare_with_tflite(lstmctl.load(str(TFL / f"{name}.keras")), lstmctl.load(path), next(iter(inputs.values())), atol=["1e-5"])
    findings = [f for layer in c.layers for f in layer.findings]
    if name in TRAPS:
        assert not c.ok and any(TRAPS[name] in f for f in findings), findings
    else:
        assert c.ok and not findings, (findings, [r.as_dict() for layer in c.layers for r in layer.outputs if not r.ok])


def test_trace_cli_on_a_loop_and_refused_on_an_int8_loop(tmp_path):
    res = CliRunner().invoke(main, ["trace", str(TFL / "k3_gru.tflite"), "--layer", "gru_1", "--input", str(TFL / "k3_gru.input.npy")])
    assert res.exit_code == 0, res.output
    assert "z: update gate" in res.output
    res = CliRunner().invoke(main, ["trace", str(TFL / "k3_gru_quant.tflite"), "--layer", "gru_1", "--input", str(TFL / "k3_gru_quant.input.npy")])
    assert res.exit_code == 3 and "gives no per-step gates to trace" in res.output
