"""ONNX graphs as exporters write them (issue 26), read without onnx and run WHOLE, against what
onnxruntime computed for them (sample_models/torch/, written by generate_onnx_graphs.py): torch's
TorchScript exporter without constant folding (W, R, B computed by Slice / Concat / Unsqueeze, as
torch <= 1.3 wrote them), tf2onnx 1.17 (zero states by Shape -> Cast -> Slice -> Concat -> Expand,
Softmax at the end) and a keras2onnx-style graph (HardSigmoid gates, Reshape, MatMul, Softmax)."""

import json

import numpy as np
import pytest

import lstmctl
from test_ports import cli, close, framework, port

GRAPHS = ["lstm_torch13_folded.onnx", "gru2_bidir_torch13_folded.onnx", "lstm2_tf2onnx.onnx", "lstm2_keras2onnx_style.onnx"]


def feeds_for(m, name) -> dict:
    """The stored inputs by graph input name; a time-major input read only by recurrent nodes batch-major, as lstmctl takes it."""
    layers = {layer.name for layer in m.layers}
    return {k.split("/", 1)[1]: (v.transpose(1, 0, 2) if f"{k.split('/', 1)[1]}.time_major" in layers else v) for k, v in framework(name).items() if k.startswith("input/")}


@pytest.mark.parametrize("name", GRAPHS)
def test_the_whole_graph_runs_as_onnxruntime_computed(name):
    m = lstmctl.load(port(name))
    want = framework(name)
    result = m.run(feeds_for(m, name))
    outputs = sorted(k for k in want if k.startswith("output_"))
    assert len(outputs) == len(m.output_names)
    for key, graph_name in zip(outputs, m.output_names):
        close(result[graph_name], want[key])  # under the graph's own output name
        close(result[key if len(outputs) > 1 else "output"], want[key])


@pytest.mark.parametrize("name, nodes", [("lstm_torch13_folded.onnx", "23 nodes (Slice 12, Concat 5, Unsqueeze 5, Transpose 1)"), ("gru2_bidir_torch13_folded.onnx", "91 nodes (Slice 50, Concat 26, Unsqueeze 14, Transpose 1)")])
def test_weights_the_graph_computes_from_stored_tensors_are_folded(name, nodes):
    m = lstmctl.load(port(name))
    assert f"{nodes} compute constants from stored tensors: computed once when read" in m.notes
    recurrent = m.recurrent_layers()
    assert all("W, R, B computed by the graph from stored tensors (folded when read)" in layer.notes for layer in recurrent)
    # the folded weights are torch's, reordered: the first LSTM's W rows i, o, f, c come from weight_ih_l0's i, f, g, o
    if name.startswith("lstm"):
        w_ih = m.tensors["rnn.weight_ih_l0"]
        gates = m.gates()
        close(gates["rnn.LSTM/W_i"], w_ih[0:4].T, atol=0)
        close(gates["rnn.LSTM/W_f"], w_ih[4:8].T, atol=0)
        close(gates["rnn.LSTM/W_c"], w_ih[8:12].T, atol=0)
        close(gates["rnn.LSTM/W_o"], w_ih[12:16].T, atol=0)


def test_graph_input_and_output_names_are_the_keys(tmp_path):
    """torch.onnx.export's `input` is fed as `--input input=x.npy`, and -o holds y, h and c."""
    want = framework("lstm_torch13_folded.onnx")
    np.save(tmp_path / "x.npy", want["input/input"])
    out = tmp_path / "out.npz"
    result = cli("run", port("lstm_torch13_folded.onnx"), "--input", f"input={tmp_path / 'x.npy'}", "-o", out)
    assert result.exit_code == 0, result.output
    with np.load(out) as got:
        for i, key in enumerate(("y", "h", "c")):
            close(got[key], want[f"output_{i}"])


def test_inspect_lists_the_graphs_ops_as_layers_it_runs():
    result = cli("inspect", port("lstm2_tf2onnx.onnx"), "--format", "json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    kinds = {f["class_name"]: f["kind"] for f in facts["layers"]}
    assert kinds["Softmax"] == kinds["Expand"] == kinds["Cast"] == "layer"  # computed, not opaque
    assert "opaque" not in kinds.values()
    (given,) = facts["model"]["inputs"]
    assert given["name"] == "input" and given["shape"][1:] == [6, 3] and given["shape"][0].startswith("unk__")  # tf2onnx names the batch dimension


def test_inspect_shapes_are_onnx_shape_inferences():
    """Fixed sizes as the file fixes them, a named dimension (dim_param 'N') by its name; the values
    onnx.shape_inference gives these nodes (tests/test_zoo5_onnx.py compares them live)."""
    facts = json.loads(cli("inspect", port("lstm2_keras2onnx_style.onnx"), "--format", "json").stdout)
    shapes = {f["name"]: f["output_shapes"] for f in facts["layers"]}
    assert shapes["lstm_1_input"] == [["N", 7, 4]]
    assert shapes["lstm_1"] == [[7, 1, "N", 5], [1, "N", 5], [1, "N", 5]]
    assert shapes["Reshape1"] == [["N", 7, 5]] and shapes["Softmax"] == [["N", 3]]
    facts = json.loads(cli("inspect", port("lstm_torch13_folded.onnx"), "--format", "json").stdout)
    shapes = {f["name"]: f["output_shapes"] for f in facts["layers"]}
    assert shapes["rnn.LSTM"] == [[5, 1, 2, 4], [1, 2, 4], [1, 2, 4]]  # was (None, 1, 2, 4): the time axis taken for a batch
    assert shapes["rnn.Expand"] == [[1, 2, 4]] and shapes["rnn.Shape"] == [[3]]


@pytest.mark.parametrize("name, line", [("lstm_torch13_folded.onnx", None), ("lstm2_tf2onnx.onnx", None), ("lstm2_keras2onnx_style.onnx", "hard_sigmoid    clip(0.2·x + 0.5, 0, 1) (Keras 1/2 form)")])
def test_the_hard_sigmoid_line_only_for_a_graph_that_uses_it(name, line):
    out = cli("inspect", port(name)).stdout
    assert (line in out) if line else ("hard_sigmoid" not in out)
