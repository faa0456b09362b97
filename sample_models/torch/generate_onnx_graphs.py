"""Writes the ONNX graphs of sample_models/torch/ that hold what exporters put around recurrent
nodes, with the values onnxruntime computed for them beside each file (`<file>.expected.npz`:
the inputs under `input/<name>`, the graph's outputs under `output_<i>`, in the graph's order; the input also as `<stem>.input.npy`).

- `lstm_torch13_folded.onnx`, `gru2_bidir_torch13_folded.onnx`: torch.onnx.export's TorchScript
  exporter (torch 2.13, `dynamo=False`) with `do_constant_folding=False`, opsets 9 and 11. Like
  torch <= 1.3's exports (zoo5's coli_lstm_pt03 and knet_rnn_tanh) they compute W, R and B from the
  stored state_dict tensors with Slice / Concat / Unsqueeze nodes, and the zero initial states with
  Shape / Gather / Unsqueeze / Concat / Expand; inputs and outputs named `input`, `y`, `h`, `c`.
- `lstm2_tf2onnx.onnx`: a Keras 3.15 model (LSTM, LSTM, Dense softmax) converted by tf2onnx 1.17.0
  (opset 13): Transpose, then the zero state made by Shape -> Cast -> Slice -> Concat -> Cast ->
  Expand -> Unsqueeze, LSTM nodes, Squeeze, Slice, MatMul, Softmax, as zoo5's mcklrrn_tf2onnx_lstm.
  tf2onnx is not a dependency of any extra; it runs with TF 2.21 when installed beside it, e.g.
  `pip install --target /tmp/tf2onnx --no-deps tf2onnx==1.17.0` and `PYTHONPATH=/tmp/tf2onnx`.
- `lstm2_keras2onnx_style.onnx`: keras2onnx (last release 1.7.0, 2020) does not run with
  TensorFlow 2.21, so this graph is built with onnx.helper, node for node as keras2onnx 1.6 wrote
  zoo5's lishengxie_keras2onnx_lstm (opset 9): Transpose, LSTM with HardSigmoid(0.2, 0.5) gates,
  Transpose [2, 0, 1, 3], Reshape, Transpose, LSTM, Reshape of Y_h, MatMul, Add, MatMul, Add,
  Softmax(axis=-1).

Run from the repository root in a venv with the verify extra and TensorFlow 2.21 (and tf2onnx as above):

    PYTHONPATH=/tmp/tf2onnx TF_CPP_MIN_LOG_LEVEL=3 python sample_models/torch/generate_onnx_graphs.py

Weights and inputs come from numpy.random.default_rng(crc32(<file name>)), drawn from a normal
distribution (non-zero biases, weights that look trained).
"""

import os
import warnings
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
FILES = ["lstm_torch13_folded.onnx", "gru2_bidir_torch13_folded.onnx", "lstm2_tf2onnx.onnx", "lstm2_keras2onnx_style.onnx"]
warnings.simplefilter("ignore")


def rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def save_expected(name, feeds):
    """onnxruntime's outputs beside the file, and the input as `<stem>.input.npy` (docs/ports.md runs it)."""
    session = ort.InferenceSession(str(HERE / name), providers=["CPUExecutionProvider"])
    outs = session.run(None, feeds)
    np.savez(HERE / f"{name}.expected.npz", **{f"input/{k}": v for k, v in feeds.items()}, **{f"output_{i}": o for i, o in enumerate(outs)})
    (x,) = feeds.values()
    np.save(HERE / f"{Path(name).stem}.input.npy", x)


def torch13_folded():
    import torch

    class Tagger(torch.nn.Module):
        def __init__(self, cls, features, hidden, out, **kwargs):
            super().__init__()
            self.rnn = cls(features, hidden, **kwargs)
            self.fc = torch.nn.Linear(hidden * (2 if kwargs.get("bidirectional") else 1), out)

        def forward(self, x):
            y, state = self.rnn(x)
            return (self.fc(y), *(state if isinstance(state, tuple) else (state,)))

    for name, cls, kwargs, opset, outputs in (
        ("lstm_torch13_folded.onnx", torch.nn.LSTM, {}, 9, ["y", "h", "c"]),
        ("gru2_bidir_torch13_folded.onnx", torch.nn.GRU, {"num_layers": 2, "bidirectional": True}, 11, ["y", "h"]),
    ):
        r = rng(name)
        model = Tagger(cls, 3, 4, 2, **kwargs).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.from_numpy(r.normal(0, 0.5, tuple(p.shape)).astype(np.float32)))
        x = r.normal(size=(5, 2, 3)).astype(np.float32)  # time-major, as nn.LSTM takes it by default
        torch.onnx.export(model, (torch.from_numpy(x),), HERE / name, dynamo=False, do_constant_folding=False, opset_version=opset, input_names=["input"], output_names=outputs)
        save_expected(name, {"input": x})


def tf2onnx_lstm():
    import keras
    import tensorflow as tf
    import tf2onnx

    name = "lstm2_tf2onnx.onnx"
    r = rng(name)
    inp = keras.Input((6, 3), name="input")
    x = keras.layers.LSTM(5, return_sequences=True)(inp)
    x = keras.layers.LSTM(4)(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
    model.set_weights([r.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    spec = (tf.TensorSpec((None, 6, 3), tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda x: model(x), input_signature=spec), input_signature=spec, opset=13)
    onnx.save(proto, HERE / name)
    save_expected(name, {"input": r.normal(size=(2, 6, 3)).astype(np.float32)})


def keras2onnx_style():
    name = "lstm2_keras2onnx_style.onnx"
    r = rng(name)
    steps, features, units, dense = 7, 4, 5, 6

    def normal(*shape):
        return r.normal(0, 0.5, shape).astype(np.float32)

    inits = [numpy_helper.from_array(a, n) for n, a in (
        ("W1", normal(1, 4 * units, features)), ("R1", normal(1, 4 * units, units)), ("B1", normal(1, 8 * units)),
        ("W", normal(1, 4 * units, units)), ("R", normal(1, 4 * units, units)), ("B", normal(1, 8 * units)),
        ("shape_tensor1", np.array([-1, steps, units], np.int64)), ("shape_tensor", np.array([-1, units], np.int64)),
        ("dense_1/kernel:0", normal(units, dense)), ("dense_1/bias:0", normal(dense)), ("dense_2/kernel:0", normal(dense, 3)), ("dense_2/bias:0", normal(3)),
    )]  # fmt: skip
    gates = {"activations": ["HardSigmoid", "Tanh", "Tanh"], "activation_alpha": [0.2], "activation_beta": [0.5], "direction": "forward", "hidden_size": units}
    nodes = [
        helper.make_node("Transpose", ["lstm_1_input"], ["lstm_x1"], "Transpose1", perm=[1, 0, 2]),
        helper.make_node("LSTM", ["lstm_x1", "W1", "R1", "B1", "", "", "", ""], ["lstm_y1", "lstm_h1", "lstm_c1"], "lstm_1", **gates),
        helper.make_node("Transpose", ["lstm_y1"], ["lstm_y_transposed"], "Transpose2", perm=[2, 0, 1, 3]),
        helper.make_node("Reshape", ["lstm_y_transposed", "shape_tensor1"], ["lstm_1/transpose_1:0"], "Reshape1"),
        helper.make_node("Transpose", ["lstm_1/transpose_1:0"], ["lstm_x"], "Transpose", perm=[1, 0, 2]),
        helper.make_node("LSTM", ["lstm_x", "W", "R", "B", "", "", "", ""], ["lstm_y", "lstm_h", "lstm_c"], "lstm_2", **gates),
        helper.make_node("Reshape", ["lstm_h", "shape_tensor"], ["lstm_2/TensorArrayReadV3:0"], "Reshape"),
        helper.make_node("MatMul", ["lstm_2/TensorArrayReadV3:0", "dense_1/kernel:0"], ["transformed_tensor1"], "dense_1"),
        helper.make_node("Add", ["transformed_tensor1", "dense_1/bias:0"], ["biased_tensor_name1"], "Add1"),
        helper.make_node("MatMul", ["biased_tensor_name1", "dense_2/kernel:0"], ["transformed_tensor"], "dense_2"),
        helper.make_node("Add", ["transformed_tensor", "dense_2/bias:0"], ["biased_tensor_name"], "Add"),
        helper.make_node("Softmax", ["biased_tensor_name"], ["dense_2"], "Softmax", axis=-1),
    ]
    graph = helper.make_graph(nodes, "mnist_lstm", [helper.make_tensor_value_info("lstm_1_input", TensorProto.FLOAT, ["N", steps, features])],
                              [helper.make_tensor_value_info("dense_2", TensorProto.FLOAT, ["N", 3])], inits)  # fmt: skip
    proto = helper.make_model(graph, producer_name="keras2onnx", producer_version="1.6.0", opset_imports=[helper.make_opsetid("", 9)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    onnx.save(proto, HERE / name)
    save_expected(name, {"lstm_1_input": r.normal(size=(3, steps, features)).astype(np.float32)})


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in FILES:  # only this script's files: generate_torch.py writes the others here
        for old in (HERE / name, HERE / f"{name}.expected.npz", HERE / f"{Path(name).stem}.input.npy"):
            old.unlink(missing_ok=True)
    for make in (torch13_folded, tf2onnx_lstm, keras2onnx_style):
        make()
    print(f"wrote {', '.join(FILES)}")


if __name__ == "__main__":
    main()
