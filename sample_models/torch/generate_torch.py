"""Writes the PyTorch, safetensors and ONNX fixtures of sample_models/torch/ with the values torch
and onnxruntime computed for them beside each file (`<file>.expected.npz`).

Run from the repository root in a venv with the verify extra and safetensors (torch 2.13.0 CPU):

    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install -e '.[verify]' safetensors
    /tmp/torchvenv/bin/python sample_models/torch/generate_torch.py

Weights and inputs come from numpy.random.default_rng(crc32(<file name>)), drawn from a normal
distribution (non-zero biases, weights that look trained). Every expected.npz holds the input
under `input/<name>` and the framework's outputs under its own names (torch: `<module>/output`,
`/h_n`, `/c_n`, batch_first=True; onnxruntime: `output_<i>`, the graph's outputs in order).
torch.onnx.export is used with its default in torch 2.13, the dynamo exporter (`dynamo=True`),
and once with the TorchScript exporter (`dynamo=False`), which writes the Shape / Gather / Expand
nodes older exports hold. lstmctl is used once: its `export` writes the Keras round-trip files.
"""

import shutil
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
warnings.simplefilter("ignore")
torch.set_num_threads(1)


def rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def trained(module, r, scale=0.5):
    """Every parameter drawn from a normal distribution: what training leaves, not torch's init."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.from_numpy(r.normal(0, scale, tuple(p.shape)).astype(np.float32)))
    return module.eval()


def save_expected(name, inputs, outputs):
    arrays = {f"input/{k}": v for k, v in inputs.items()}
    arrays.update({k: (v.detach().numpy() if isinstance(v, torch.Tensor) else v) for k, v in outputs.items()})
    np.savez(HERE / f"{name}.expected.npz", **arrays)


def torch_outputs(module_name, out):
    y, state = out
    h, c = state if isinstance(state, tuple) else (state, None)
    got = {f"{module_name}/output": y, f"{module_name}/h_n": h}
    if c is not None:
        got[f"{module_name}/c_n"] = c
    return got


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)


class Tagger(torch.nn.Module):
    """Embedding -> LSTM -> Linear, the classic sequence tagger."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(12, 3)
        self.lstm = torch.nn.LSTM(3, 5, batch_first=True)
        self.fc = torch.nn.Linear(5, 2)

    def forward(self, tokens):
        return self.fc(self.lstm(self.embedding(tokens))[0])


class Seq2Last(torch.nn.Module):
    """The encoder of lstm2_bidir.pt with a head, exported to ONNX."""

    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.fc = torch.nn.Linear(8, 2)

    def forward(self, x):
        y, (h, c) = self.encoder.lstm(x)
        return self.fc(y), h, c


def lstm2_bidir():
    name = "lstm2_bidir.pt"
    r = rng(name)
    model = torch.nn.Module()
    model.encoder = trained(Encoder(), r)
    x = r.normal(size=(2, 5, 3)).astype(np.float32)
    with torch.no_grad():
        out = model.encoder.lstm(torch.from_numpy(x))
    torch.save(model.state_dict(), HERE / name)
    save_expected(name, {"x": x}, torch_outputs("encoder.lstm", out))


def lstm_proj():
    """proj_size: two bidirectional levels whose h is projected from 5 to 2 features (weight_hr_l<k>)."""
    name = "lstm_proj.pt"
    r = rng(name)
    lstm = trained(torch.nn.LSTM(3, 5, num_layers=2, proj_size=2, bidirectional=True, batch_first=True), r)
    x = r.normal(size=(2, 6, 3)).astype(np.float32)
    with torch.no_grad():
        out = lstm(torch.from_numpy(x))
    torch.save({"rnn." + k: v for k, v in lstm.state_dict().items()}, HERE / name)
    save_expected(name, {"x": x}, torch_outputs("rnn", out))


def gru_legacy():
    name = "gru_legacy.pt"
    r = rng(name)
    gru = trained(torch.nn.GRU(4, 3, batch_first=True), r)
    x = r.normal(size=(2, 6, 4)).astype(np.float32)
    with torch.no_grad():
        out = gru(torch.from_numpy(x))
    torch.save({"rnn." + k: v for k, v in gru.state_dict().items()}, HERE / name, _use_new_zipfile_serialization=False)
    save_expected(name, {"x": x}, torch_outputs("rnn", out))


def rnn_relu():
    name = "rnn_relu.safetensors"
    r = rng(name)
    rnn = trained(torch.nn.RNN(3, 4, num_layers=2, nonlinearity="relu", batch_first=True), r, scale=0.4)
    x = r.normal(size=(3, 5, 3)).astype(np.float32)
    with torch.no_grad():
        out = rnn(torch.from_numpy(x))
    save_file({f"decoder.{k}": v.numpy() for k, v in rnn.state_dict().items()}, str(HERE / name), metadata={"format": "pt", "nonlinearity": "relu"})
    save_expected(name, {"x": x}, torch_outputs("decoder", out))


def lstm_cell():
    name = "lstm_cell.pt"
    r = rng(name)
    cell = trained(torch.nn.LSTMCell(3, 4), r)
    x = r.normal(size=(2, 5, 3)).astype(np.float32)
    h = c = torch.zeros(2, 4)
    seq = []
    with torch.no_grad():
        for t in range(x.shape[1]):  # a cell is one step: the loop a user writes around it
            h, c = cell(torch.from_numpy(x[:, t]), (h, c))
            seq.append(h)
    torch.save({"cell." + k: v for k, v in cell.state_dict().items()}, HERE / name)
    save_expected(name, {"x": x}, {"cell/h_t": torch.stack(seq, 1), "cell/h": h, "cell/c": c})


def tagger():
    name = "tagger.pt"
    r = rng(name)
    model = trained(Tagger(), r)
    tokens = r.integers(0, 12, size=(2, 7)).astype(np.int64)
    with torch.no_grad():
        y = model(torch.from_numpy(tokens))
        lstm_out = model.lstm(model.embedding(torch.from_numpy(tokens)))
    torch.save(model.state_dict(), HERE / name)
    save_expected(name, {"tokens": tokens}, {"output": y, **torch_outputs("lstm", lstm_out)})


def dtypes():
    """One module per dtype: lstmctl widens float16 / bfloat16 as module.float() does, keeps float64."""
    for name, dtype, fmt in (("lstm_f16.pt", torch.float16, "pt"), ("gru_bf16.pt", torch.bfloat16, "pt"), ("lstm_f64.safetensors", torch.float64, "st")):
        r = rng(name)
        cls = torch.nn.GRU if name.startswith("gru") else torch.nn.LSTM
        module = trained(cls(3, 4, batch_first=True), r).to(dtype)
        x = r.normal(size=(2, 5, 3))
        run = module.double() if dtype == torch.float64 else module.float()  # what the stored values compute
        with torch.no_grad():
            out = run(torch.from_numpy(x.astype(np.float64 if dtype == torch.float64 else np.float32)))
        state = {"rnn." + k: v.to(dtype) for k, v in run.state_dict().items()}
        if fmt == "pt":
            torch.save(state, HERE / name)
        else:
            save_file({k: v.numpy() for k, v in state.items()}, str(HERE / name))
        save_expected(name, {"x": x.astype(np.float64 if dtype == torch.float64 else np.float32)}, torch_outputs("rnn", out))


def views():
    """Tensors that are views: a transposed weight (strides (1, rows)) and two biases sliced from one storage."""
    name = "lstm_views.pt"
    r = rng(name)
    lstm = trained(torch.nn.LSTM(3, 4, batch_first=True), r)
    x = r.normal(size=(2, 5, 3)).astype(np.float32)
    with torch.no_grad():
        out = lstm(torch.from_numpy(x))
    sd = lstm.state_dict()
    both = torch.stack([sd["bias_ih_l0"], sd["bias_hh_l0"]])
    state = {
        "rnn.weight_ih_l0": sd["weight_ih_l0"].t().contiguous().t(),
        "rnn.weight_hh_l0": sd["weight_hh_l0"],
        "rnn.bias_ih_l0": both[0],
        "rnn.bias_hh_l0": both[1],
    }
    assert not state["rnn.weight_ih_l0"].is_contiguous() and state["rnn.bias_hh_l0"].storage_offset() == 16
    torch.save(state, HERE / name)
    save_expected(name, {"x": x}, torch_outputs("rnn", out))


def ort_outputs(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return {f"output_{i}": o for i, o in enumerate(session.run(None, feeds))}


def onnx_dynamo():
    name = "lstm2_bidir.onnx"
    r = rng(name)
    model = trained(Seq2Last(), r)
    x = r.normal(size=(2, 5, 3)).astype(np.float32)
    torch.onnx.export(model, (torch.from_numpy(x),), HERE / name, dynamo=True, external_data=False, input_names=["x"], output_names=["y", "h_n", "c_n"])
    save_expected(name, {"x": x}, ort_outputs(HERE / name, {"x": x}))


def onnx_torchscript():
    name = "gru_torchscript.onnx"
    r = rng(name)
    model = trained(torch.nn.GRU(4, 3, num_layers=2), r)  # batch_first=False: the graph takes [time, batch, features]
    x = r.normal(size=(6, 2, 4)).astype(np.float32)
    torch.onnx.export(model, (torch.from_numpy(x),), HERE / name, dynamo=False, input_names=["x"], output_names=["y", "h_n"], dynamic_axes={"x": {0: "time", 1: "batch"}})
    save_expected(name, {"x": x}, ort_outputs(HERE / name, {"x": x}))


def onnx_by_hand():
    """Nodes torch does not write: RNN relu in reverse with sequence_lens and initial_h as graph
    inputs; the same node with layout=1 (batch-major), whose values are onnxruntime's for the
    layout-0 node with inputs and outputs transposed as the ONNX spec defines layout (onnxruntime
    refuses layout=1); a bidirectional LSTM with sequence_lens and non-zero initial states as
    initializers."""
    r = rng("rnn_reverse.onnx")
    u, n = 4, 3
    inits = [numpy_helper.from_array(r.normal(0, 0.4, shape).astype(np.float32), k) for k, shape in (("W", (1, u, n)), ("R", (1, u, u)), ("B", (1, 2 * u)))]
    feeds = {"X": r.normal(size=(6, 3, n)).astype(np.float32), "lens": np.array([6, 4, 1], np.int32), "h0": r.normal(0, 0.5, (1, 3, u)).astype(np.float32)}
    outs = None
    for name, layout in (("rnn_reverse.onnx", 0), ("rnn_reverse_layout1.onnx", 1)):
        x_shape, h_shape, y_shape = (["time", "batch", n], [1, "batch", u], ["time", 1, "batch", u]) if layout == 0 else (["batch", "time", n], ["batch", 1, u], ["batch", "time", 1, u])
        node = helper.make_node("RNN", ["X", "W", "R", "B", "lens", "h0"], ["Y", "Y_h"], name="rnn", hidden_size=u, direction="reverse", layout=layout, activations=["Relu"])
        graph = helper.make_graph(
            [node], "rnn_reverse",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape), helper.make_tensor_value_info("lens", TensorProto.INT32, ["batch"]), helper.make_tensor_value_info("h0", TensorProto.FLOAT, h_shape)],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, y_shape), helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, h_shape)], initializer=inits,
        )  # fmt: skip
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="generate_torch.py")
        proto.ir_version = 8
        onnx.checker.check_model(proto)
        onnx.save(proto, HERE / name)
        if layout == 0:
            outs = ort_outputs(HERE / name, feeds)
            save_expected(name, feeds, outs)
        else:
            moved = {"X": feeds["X"].transpose(1, 0, 2), "lens": feeds["lens"], "h0": feeds["h0"].transpose(1, 0, 2)}
            save_expected(name, moved, {"output_0": outs["output_0"].transpose(2, 0, 1, 3), "output_1": outs["output_1"].transpose(1, 0, 2)})

    name = "lstm_bidir_lens.onnx"
    r = rng(name)
    u, n = 3, 2
    inits = [numpy_helper.from_array(a.astype(np.float32), k) for k, a in (("W", r.normal(0, 0.5, (2, 4 * u, n))), ("R", r.normal(0, 0.5, (2, 4 * u, u))), ("B", r.normal(0, 0.5, (2, 8 * u))),
                                                                        ("h0", r.normal(0, 0.5, (2, 2, u))), ("c0", r.normal(0, 0.5, (2, 2, u))))]  # fmt: skip
    node = helper.make_node("LSTM", ["X", "W", "R", "B", "lens", "h0", "c0"], ["Y", "Y_h", "Y_c"], name="lstm", hidden_size=u, direction="bidirectional")
    graph = helper.make_graph(
        [node], "lstm_lens",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["time", 2, n]), helper.make_tensor_value_info("lens", TensorProto.INT32, [2])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape) for o, shape in (("Y", ["time", 2, 2, u]), ("Y_h", [2, 2, u]), ("Y_c", [2, 2, u]))], initializer=inits,
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="generate_torch.py")
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    onnx.save(proto, HERE / name)
    feeds = {"X": r.normal(size=(5, 2, n)).astype(np.float32), "lens": np.array([5, 3], np.int32)}
    save_expected(name, feeds, ort_outputs(HERE / name, feeds))


def keras_round_trip():
    """lstmctl's own exports of Keras samples, read back by the tests against Keras's stored values:
    --to onnx-model as written, --to pytorch loaded into torch and saved with torch.save; and the
    same LSTM ported wrongly (docs/ports.md's compare example)."""
    out = HERE / "k3_gru.gru.onnx"
    subprocess.run([sys.executable, "-m", "lstmctl", "export", str(ROOT / "sample_models/k3_gru.keras"), "--to", "onnx-model", "--layer", "gru", "-o", str(out)], check=True)
    npz = HERE / "lstm_torch.npz"
    subprocess.run([sys.executable, "-m", "lstmctl", "export", str(ROOT / "sample_models/k3_lstm_dense.keras"), "--to", "pytorch", "--layer", "lstm", "-o", str(npz)], check=True)
    lstm = torch.nn.LSTM(4, 5, batch_first=True)
    with np.load(npz) as sd:
        lstm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    npz.unlink()
    torch.save(lstm.state_dict(), HERE / "k3_lstm_dense.lstm.pt")
    # a port made the classic wrong way: Keras's one bias copied into both of torch's, which torch adds
    state = lstm.state_dict()
    state["bias_hh_l0"] = state["bias_ih_l0"].clone()
    lstm.load_state_dict(state)
    torch.save(state, HERE / "k3_lstm_dense.bias_twice.pt")
    x = np.load(ROOT / "sample_models/k3_lstm_dense.input.npy")
    with torch.no_grad():
        save_expected("k3_lstm_dense.bias_twice.pt", {"x": x}, torch_outputs("lstm", lstm.eval()(torch.from_numpy(x))))


class Tutorial(torch.nn.Module):
    """The many-to-one classifier of every LSTM tutorial: the last step's h through a Linear head."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(4, 5, batch_first=True)
        self.fc = torch.nn.Linear(5, 3)

    def forward(self, x):
        return self.fc(self.lstm(x)[0][:, -1])


def tutorial_safetensors():
    """k3_lstm_dense.keras ported as a tutorial writes it (nn.LSTM + nn.Linear, no softmax: the
    loss holds it) and saved with safetensors, which sorts the keys: fc.* before lstm.*."""
    from safetensors.torch import save_file as save_torch

    import lstmctl

    name = "k3_lstm_dense.tutorial.safetensors"
    keras = lstmctl.load(str(ROOT / "sample_models/k3_lstm_dense.keras"))
    model = Tutorial().eval()
    lstm = torch.load(HERE / "k3_lstm_dense.lstm.pt", weights_only=True)
    kernel, bias = keras.layer("dense").weights
    model.lstm.load_state_dict(lstm)
    model.fc.load_state_dict({"weight": torch.from_numpy(kernel.T.copy()), "bias": torch.from_numpy(bias)})
    save_torch(model.state_dict(), str(HERE / name))
    assert next(iter(safetensors_keys(HERE / name))).startswith("fc.")
    x = np.load(ROOT / "sample_models/k3_lstm_dense.input.npy")
    with torch.no_grad():
        out = model.lstm(torch.from_numpy(x))
        save_expected(name, {"x": x}, {"output": model.fc(out[0]), "last": model(torch.from_numpy(x)), **torch_outputs("lstm", out)})


def safetensors_keys(path):
    import json

    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        return [k for k in json.loads(fh.read(n)) if k != "__metadata__"]


class Head(torch.nn.Module):
    """A user class inside a user class: torch.save(model) pickles both by their class path."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.Tanh(), torch.nn.Dropout(0.2), torch.nn.Linear(6, 2), torch.nn.Sigmoid())


class Nested(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = Head()

    def forward(self, x):
        return self.head.net(self.encoder.lstm(x)[0])


def whole_modules():
    """torch.save(model), what tutorials write: a user class holding torch.nn modules, pickled
    whole. tagger_whole.pt (zip): Tagger; nested_whole_legacy.pt (legacy pickle): user classes
    nested, an nn.Sequential head with Tanh, Dropout and Sigmoid; rnn_relu_whole.pt: a bare nn.RNN
    whose nonlinearity='relu' and batch_first=False the pickle records."""
    name = "tagger_whole.pt"
    r = rng(name)
    model = trained(Tagger(), r)
    tokens = r.integers(0, 12, size=(2, 7)).astype(np.int64)
    with torch.no_grad():
        out = model.lstm(model.embedding(torch.from_numpy(tokens)))
        save_expected(name, {"tokens": tokens}, {"output": model(torch.from_numpy(tokens)), **torch_outputs("lstm", out)})
    torch.save(model, HERE / name)

    name = "nested_whole_legacy.pt"
    r = rng(name)
    model = trained(Nested(), r)
    x = r.normal(size=(2, 5, 3)).astype(np.float32)
    with torch.no_grad():
        save_expected(name, {"x": x}, {"output": model(torch.from_numpy(x)), **torch_outputs("encoder.lstm", model.encoder.lstm(torch.from_numpy(x)))})
    torch.save(model, HERE / name, _use_new_zipfile_serialization=False)

    name = "rnn_relu_whole.pt"
    r = rng(name)
    rnn = trained(torch.nn.RNN(3, 4, num_layers=2, nonlinearity="relu"), r, scale=0.4)
    x = r.normal(size=(5, 2, 3)).astype(np.float32)  # (time, batch, features): batch_first=False
    with torch.no_grad():
        y, h = rnn(torch.from_numpy(x))
    save_expected(name, {"x": x}, {"output": y, "h_n": h})
    torch.save(rnn, HERE / name)


MAKERS = (lstm2_bidir, lstm_proj, gru_legacy, rnn_relu, lstm_cell, tagger, dtypes, views, onnx_dynamo, onnx_torchscript, onnx_by_hand, keras_round_trip, tutorial_safetensors, whole_modules)


def main(names=()):
    """Every fixture, the folder emptied first; or only the makers named (`generate_torch.py whole_modules`)."""
    if names:
        for make in MAKERS:
            if make.__name__ in names:
                make()
        return
    from generate_onnx_graphs import FILES as ONNX_GRAPHS  # that script's files stay: it needs TensorFlow and tf2onnx to remake them

    kept = [Path(name).stem for name in ONNX_GRAPHS]
    for old in HERE.iterdir():
        if old.suffix != ".py" and not old.name.startswith(tuple(kept)):
            old.unlink() if old.is_file() else shutil.rmtree(old)
    for make in MAKERS:
        make()
    written = [p for p in HERE.iterdir() if p.suffix != ".py" and not p.name.startswith(tuple(kept))]
    print(f"wrote {len(written)} files, {sum(p.stat().st_size for p in written)} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
