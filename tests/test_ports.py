"""PyTorch, safetensors and ONNX files read without torch or onnx, against the values torch 2.13
and onnxruntime computed for them (sample_models/torch/, written by generate_torch.py), and
lstmctl compare of a Keras model with its port.
"""

import io
import json
import pickletools
import struct
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from conftest import SAMPLES, expected, sample
from lstmctl.cli import main

PORTS = SAMPLES / "torch"
ATOL = 1e-5


def port(name: str) -> str:
    return str(PORTS / name)


def framework(name: str) -> dict:
    """What torch / onnxruntime computed for a fixture."""
    with np.load(PORTS / f"{name}.expected.npz") as data:
        return dict(data)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def close(got, want, atol=ATOL):
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def write_safetensors(path, arrays: dict, header_extra=None):
    """A safetensors file written by hand (the format is a JSON header and the bytes)."""
    codes = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("float16"): "F16", np.dtype("int64"): "I64"}
    header, blobs, at = {}, [], 0
    for k, a in arrays.items():
        raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": codes[a.dtype], "shape": list(a.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    header.update(header_extra or {})
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return path


# --- torch.save and safetensors state_dicts --------------------------------------------------------

TORCH_CASES = {
    # fixture: (module, torch's output keys), checked against torch's own values
    "lstm2_bidir.pt": "encoder.lstm",
    "gru_legacy.pt": "rnn",
    "rnn_relu.safetensors": "decoder",
    "lstm_f16.pt": "rnn",
    "gru_bf16.pt": "rnn",
    "lstm_f64.safetensors": "rnn",
    "lstm_views.pt": "rnn",
}


@pytest.mark.parametrize("name", TORCH_CASES)
def test_state_dict_runs_like_torch(name):
    module = TORCH_CASES[name]
    want = framework(name)
    m = lstmctl.load(port(name), activation="relu" if "relu" in name else None)
    result = m.run(want["input/x"])
    for key in ("output", "h_n", "c_n"):
        if f"{module}/{key}" in want:
            close(result[f"{module}/{key}"], want[f"{module}/{key}"])
    assert result[f"{module}/output"].dtype == (np.float64 if "f64" in name else np.float32)


def test_two_level_bidirectional_lstm_under_a_prefix():
    m = lstmctl.load(port("lstm2_bidir.pt"))
    assert m.format == "pytorch-zip"
    assert [(layer.name, layer.class_name) for layer in m.recurrent_layers()] == [("encoder.lstm.l0", "Bidirectional"), ("encoder.lstm.l1", "Bidirectional")]
    want = framework("lstm2_bidir.pt")
    result = m.run(want["input/x"])
    # lstmctl's own keys hold the same numbers: h_n's rows are layer 0 forward, backward, layer 1 forward, backward
    close(result["encoder.lstm.l1/sequence"], want["encoder.lstm/output"])
    close(result["encoder.lstm.l0/backward/h"], want["encoder.lstm/h_n"][1])
    close(result["encoder.lstm.l1/forward/c"], want["encoder.lstm/c_n"][2])
    assert want["encoder.lstm/h_n"].shape == (4, 2, 4)


def test_legacy_torch_save_and_its_gru_gates():
    m = lstmctl.load(port("gru_legacy.pt"))
    assert m.format == "pytorch-legacy"
    cell = m.layer("rnn").cell
    assert cell.kind == "gru" and cell.reset_after
    gates = m.gates()
    assert sorted(gates) == sorted(f"rnn/{p}_{g}" for p in ("W", "U", "b", "rb") for g in "zrh")


def test_rnn_nonlinearity_is_asked_for_not_guessed():
    want = framework("rnn_relu.safetensors")
    tanh = lstmctl.load(port("rnn_relu.safetensors")).run(want["input/x"])["decoder/output"]
    assert np.abs(tanh - want["decoder/output"]).max() > 0.1  # the default, tanh, is not what torch ran
    with pytest.raises(lstmctl.UsageError, match="tanh or relu"):
        lstmctl.load(port("rnn_relu.safetensors"), activation="sigmoid")
    with pytest.raises(lstmctl.UsageError, match="holds no nn.RNN"):
        lstmctl.load(port("lstm_views.pt"), activation="relu")


def test_lstm_cell_runs_as_a_loop_over_time():
    want = framework("lstm_cell.pt")
    m = lstmctl.load(port("lstm_cell.pt"))
    assert m.layer("cell").class_name == "LSTM" and any("nn.LSTMCell" in n for n in m.layer("cell").notes)
    result = m.run(want["input/x"])
    close(result["cell/sequence"], want["cell/h_t"])
    close(result["cell/h"], want["cell/h"])
    close(result["cell/c"], want["cell/c"])


def test_embedding_lstm_linear_chain():
    want = framework("tagger.pt")
    m = lstmctl.load(port("tagger.pt"))
    assert [(layer.name, layer.class_name) for layer in m.layers] == [("input", "InputLayer"), ("embedding", "Embedding"), ("lstm", "LSTM"), ("fc", "Dense")]
    result = m.run(want["input/tokens"])
    close(result["output"], want["output"])
    close(result["lstm/h_n"], want["lstm/h_n"])


def test_sorted_safetensors_chain_in_the_one_order_their_sizes_fit():
    """safetensors sorts its keys (fc.* before lstm.*); the one order whose sizes fit is lstm -> fc, and a note says so."""
    want = framework("k3_lstm_dense.tutorial.safetensors")
    m = lstmctl.load(port("k3_lstm_dense.tutorial.safetensors"))
    assert list(m.tensors)[0] == "fc.bias"
    assert [(layer.name, [r.layer for c in layer.calls for r in c.inputs]) for layer in m.layers] == [("input", []), ("lstm", ["input"]), ("fc", ["lstm"])]
    assert "a state_dict does not record forward(): modules chained in the one order their sizes fit: lstm → fc (the file lists fc → lstm), an nn.Linear acting on every time step" in m.notes
    result = m.run(want["input/x"])
    close(result["output"], want["output"])
    close(result["output"][:, -1], want["last"])
    close(result["lstm/h_n"], want["lstm/h_n"])
    ran = cli("run", port("k3_lstm_dense.tutorial.safetensors"), "--input", sample("k3_lstm_dense.input.npy"), "-o", "-", "--format", "json")
    assert ran.exit_code == 0, ran.output


def _units(*shapes):
    """A state_dict of nn.Linear modules named m0, m1, … of these (out, in) shapes."""
    r = np.random.default_rng(0)
    return {k: v for i, (o, n) in enumerate(shapes) for k, v in ((f"m{i}.weight", r.normal(size=(o, n)).astype(np.float32)), (f"m{i}.bias", r.normal(size=o).astype(np.float32)))}


@pytest.mark.parametrize(
    "shapes, chain, note",
    [
        (((2, 3), (3, 4)), [("m0", ["m1"]), ("m1", ["input"])], "the one order their sizes fit: m1 → m0 (the file lists m0 → m1)"),
        (((3, 3), (3, 3)), [("m0", ["input"]), ("m1", ["m0"])], "several orders of the modules fit their sizes, so the file's order is kept: m0 → m1"),
        (((2, 3), (5, 4)), [("m0", ["input"]), ("m1", ["input_1"])], "no order chains every module, so they are chained in the file's order (m0 → m1)"),
    ],
)
def test_state_dict_order_one_several_or_none(tmp_path, shapes, chain, note):
    m = lstmctl.load(str(write_safetensors(tmp_path / "m.safetensors", _units(*shapes))))
    assert sorted((layer.name, [r.layer for c in layer.calls for r in c.inputs]) for layer in m.layers if layer.calls) == chain
    assert any(note in n for n in m.notes), m.notes


def test_multi_level_module_runs_whole_and_level_by_level(tmp_path):
    """--layer encoder.lstm names the whole nn.LSTM (torch's h_0 / c_0 as its initial state), encoder.lstm.l1 one level."""
    want = framework("lstm2_bidir.pt")
    m = lstmctl.load(port("lstm2_bidir.pt"))
    x = want["input/x"]
    whole = lstmctl.runner.run_layer(m, "encoder.lstm", x)
    close(whole["output"], want["encoder.lstm/output"])
    close(whole["encoder.lstm/h_n"], want["encoder.lstm/h_n"])
    close(whole["encoder.lstm/c_n"], want["encoder.lstm/c_n"])
    level = lstmctl.runner.run_layer(m, "encoder.lstm.l0", x)
    close(level["output"], whole["encoder.lstm.l0/sequence"])
    h0 = np.random.default_rng(1).normal(size=(4, 2, 4)).astype(np.float32)
    started = m.run(x, initial_state=[h0, -h0], layer="encoder.lstm")
    assert not np.allclose(started["encoder.lstm/h_n"], want["encoder.lstm/h_n"])
    np.testing.assert_array_equal(started["encoder.lstm/h_n"], lstmctl.runner.run_layer(m, "encoder.lstm", x, initial_state=[h0, -h0])["encoder.lstm/h_n"])
    np.save(tmp_path / "x.npy", x)
    result = cli("run", port("lstm2_bidir.pt"), "--layer", "encoder.lstm", "--direct", "--input", tmp_path / "x.npy", "-o", "-", "--format", "json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert {"output", "encoder.lstm/output", "encoder.lstm/h_n", "encoder.lstm/c_n", "encoder.lstm.l1/h"} <= set(got)
    close(np.array(got["encoder.lstm/h_n"], np.float32), want["encoder.lstm/h_n"])
    facts = json.loads(cli("inspect", port("lstm2_bidir.pt"), "--layer", "encoder.lstm", "--format", "json").stdout)
    assert [layer["name"] for layer in facts["layers"]] == ["encoder.lstm.l0", "encoder.lstm.l1"]
    bad = cli("run", port("lstm2_bidir.pt"), "--layer", "encoder.lstm", "--direct", "--input", tmp_path / "x.npy", "--initial-state", tmp_path / "x.npy")
    assert bad.exit_code == 3 and "module 'encoder.lstm': an initial state has shape (2, 5, 3); it takes (num_layers·directions = 4, batch, hidden)" in bad.stderr


# --- whole pickled modules (torch.save(model)) --------------------------------------------------


@pytest.mark.parametrize("name, keys", [("tagger_whole.pt", ["output", "lstm/output", "lstm/h_n", "lstm/c_n"]), ("nested_whole_legacy.pt", ["output", "encoder.lstm/output", "encoder.lstm/h_n", "encoder.lstm/c_n"])])
def test_whole_module_runs_as_torch(name, keys):
    """User classes read as data: the torch.nn modules inside run as torch ran the model's forward()."""
    want = framework(name)
    m = lstmctl.load(port(name))
    result = m.run(next(v for k, v in want.items() if k.startswith("input/")))
    for key in keys:
        close(result[key], want[key])


def test_whole_module_chain_and_notes():
    m = lstmctl.load(port("nested_whole_legacy.pt"))
    assert m.name == "__main__.Nested"
    chain = [(layer.name, layer.class_name, [r.layer for c in layer.calls for r in c.inputs]) for layer in m.layers]
    assert chain == [
        ("input", "InputLayer", []), ("encoder.lstm.l0", "Bidirectional", ["input"]), ("encoder.lstm.l1", "Bidirectional", ["encoder.lstm.l0"]),
        ("head.net.0", "Dense", ["encoder.lstm.l1"]), ("head.net.1", "Activation", ["head.net.0"]), ("head.net.2", "Dropout", ["head.net.1"]),
        ("head.net.3", "Dense", ["head.net.2"]), ("head.net.4", "Activation", ["head.net.3"]),
    ]  # fmt: skip
    assert m.notes[0] == (
        "a whole pickled module: __main__.Nested.forward() is code, which the file does not hold (nothing of it was imported or run); "
        "modules chained in the one order their sizes fit: encoder.lstm → head.net, an nn.Linear acting on every time step"
    )
    assert m.layer("head.net.4").params["activation"] == "sigmoid"


def test_whole_module_settings_are_used():
    """A bare nn.RNN pickled whole: its recorded nonlinearity='relu' is computed, batch_first=False said."""
    want = framework("rnn_relu_whole.pt")
    m = lstmctl.load(port("rnn_relu_whole.pt"))
    assert "nn.RNN nonlinearity relu, as the pickled module records it" in m.notes
    assert "batch_first=False: the torch module takes (time, batch, features); run takes (batch, time, features), or --time-major" in m.layer("simple_rnn.l0").notes
    result = m.run(want["input/x"].transpose(1, 0, 2))
    close(result["output"].transpose(1, 0, 2), want["output"])
    close(result["simple_rnn/h_n"], want["h_n"])


def test_inspect_shows_the_module_tree():
    result = cli("inspect", port("nested_whole_legacy.pt"))
    assert result.exit_code == 0, result.output
    assert "Module tree (pickled classes, read as data)" in result.output
    assert "torch.nn.modules.container.Sequential" in result.output and "p=0.2, inplace=False" in result.output
    facts = json.loads(cli("inspect", port("tagger_whole.pt"), "--format", "json").stdout)
    assert facts["module_tree"][:2] == [
        {"depth": 0, "name": "(top)", "class": "__main__.Tagger", "settings": ""},
        {"depth": 1, "name": "embedding", "class": "torch.nn.modules.sparse.Embedding", "settings": "num_embeddings=12, embedding_dim=3, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False"},
    ]


def test_narrow_dtypes_are_widened_and_said():
    m = lstmctl.load(port("gru_bf16.pt"))
    assert m.layer("rnn").cell.W.dtype == np.float32
    assert any("bfloat16 tensors widened to float32" in n for n in m.notes)
    assert lstmctl.load(port("lstm_f64.safetensors")).layer("rnn").cell.W.dtype == np.float64


def test_proj_size_is_computed_as_torch_does(tmp_path):
    """nn.LSTM(proj_size=2), two bidirectional levels: h = (o ⊙ tanh(c))·W_hrᵀ has 2 features, c 5."""
    want = framework("lstm_proj.pt")
    m = lstmctl.load(port("lstm_proj.pt"))
    x = want["input/x"]
    result = m.run(x)
    for key in ("rnn/output", "rnn/h_n", "rnn/c_n"):
        close(result[key], want[key])
    assert result["rnn/h_n"].shape == (4, 2, 2) and result["rnn/c_n"].shape == (4, 2, 5)
    whole = lstmctl.runner.run_layer(m, "rnn", x, initial_state=[want["rnn/h_n"], want["rnn/c_n"]])
    assert whole["rnn/h_n"].shape == (4, 2, 2)
    gates = m.gates("rnn.l0")
    np.testing.assert_array_equal(gates["rnn.l0/forward/P"], m.tensors["rnn.weight_hr_l0"].T)
    facts = json.loads(cli("inspect", port("lstm_proj.pt"), "--layer", "rnn.l1", "--format", "json").stdout)
    forward = facts["layers"][0]["recurrent"]["directions"]["forward"]
    assert forward["proj_size"] == 2 and forward["units"] == 5 and forward["recurrent_kernel_shape"] == [2, 20]
    assert forward["equations"]["step"][-1] == "h_t = (o_t ⊙ tanh(c_t)) · P"
    assert any("nn.LSTM proj_size=2: h = (o ⊙ tanh(c))·W_hrᵀ" in n for n in facts["layers"][0]["notes"])


def test_proj_size_shapes_are_checked(tmp_path):
    state = {k: v for k, v in lstmctl.load(port("lstm_proj.pt")).tensors.items() if k.endswith("_l0")}
    state["rnn.weight_hr_l0"] = np.ones((5, 5), np.float32)
    path = write_safetensors(tmp_path / "p.safetensors", state)
    result = cli("inspect", path)
    assert result.exit_code == 3
    assert "'rnn.weight_hr_l0' (5, 5) and 'rnn.weight_hh_l0' (20, 2) are no nn.LSTM projection" in result.stderr


def _big_endian_copy(src, dst):
    """torch writes its byte order in `<root>/byteorder`; a big-endian machine's file, made here."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
            zout.writestr(info.filename, data)
    return dst


def test_big_endian_archive(tmp_path):
    want = framework("lstm_views.pt")
    result = lstmctl.load(_big_endian_copy(port("lstm_views.pt"), tmp_path / "big.pt")).run(want["input/x"])
    close(result["rnn/output"], want["rnn/output"])


def test_big_endian_legacy_file(tmp_path):
    """sys_info's little_endian False, every storage's count and elements swapped."""
    data = (PORTS / "gru_legacy.pt").read_bytes()
    ends, at = [], 0
    for _ in range(5):  # magic, protocol, sys_info, the state_dict, the storage keys
        stream = io.BytesIO(data[at:])
        for op, _, pos in pickletools.genops(stream):
            if op.name == "STOP":
                at += pos + 1
                break
        ends.append(at)
    head = data[: ends[-1]].replace(b"little_endianq\x02\x88", b"little_endianq\x02\x89")
    assert head != data[: ends[-1]]
    out, pos = bytearray(head), ends[-1]
    while pos < len(data):
        count = struct.unpack_from("<q", data, pos)[0]
        out += struct.pack(">q", count) + np.frombuffer(data, "<f4", count, pos + 8).astype(">f4").tobytes()
        pos += 8 + 4 * count
    (tmp_path / "big.pt").write_bytes(bytes(out))
    want = framework("gru_legacy.pt")
    close(lstmctl.load(tmp_path / "big.pt").run(want["input/x"])["rnn/h_n"], want["rnn/h_n"])


def test_safetensors_written_by_hand(tmp_path):
    """The same tensors as lstm_views.pt, in a safetensors file this test writes: torch's values again."""
    arrays = lstmctl.load(port("lstm_views.pt")).tensors
    assert len(arrays) == 4
    safetensors = write_safetensors(tmp_path / "sd.safetensors", arrays, {"__metadata__": {"format": "pt"}})
    want = framework("lstm_views.pt")
    close(lstmctl.load(safetensors).run(want["input/x"])["rnn/h_n"], want["rnn/h_n"])


# --- ONNX ----------------------------------------------------------------------------------------

ONNX_CASES = ["lstm2_bidir.onnx", "gru_torchscript.onnx", "rnn_reverse.onnx", "rnn_reverse_layout1.onnx", "lstm_bidir_lens.onnx"]


@pytest.mark.parametrize("name", ONNX_CASES)
def test_onnx_graph_runs_like_onnxruntime(name):
    want = framework(name)
    feeds = {k.split("/", 1)[1]: v for k, v in want.items() if k.startswith("input/")}
    m = lstmctl.load(port(name))
    assert m.format == "onnx"
    assert cli("inspect", port(name)).exit_code == 0
    layers = {layer.name for layer in m.layers}
    # a [time, batch, features] graph input read by a recurrent node is fed batch-major, as every lstmctl input
    feeds = {k: (v.transpose(1, 0, 2) if f"{k}.time_major" in layers else v) for k, v in feeds.items()}
    result = m.run(feeds if len(feeds) > 1 else next(iter(feeds.values())))
    outputs = sorted(k for k in want if k.startswith("output_"))
    assert len(outputs) >= 2
    for key in outputs:
        close(result[key], want[key])


def test_onnx_node_keys_and_gates():
    m = lstmctl.load(port("lstm_bidir_lens.onnx"))
    want = framework("lstm_bidir_lens.onnx")
    result = m.run({"X": want["input/X"].transpose(1, 0, 2), "lens": want["input/lens"]})
    close(result["lstm/Y"], want["output_0"])
    close(result["lstm/Y_c"], want["output_2"])
    # the second sample is 3 steps long: its states are those after step 3, its sequence zero beyond
    assert np.all(result["lstm/forward/sequence"][1, 3:] == 0)
    assert sorted(m.gates()) == sorted(f"lstm/{d}/{p}_{g}" for d in ("forward", "backward") for p in "WUb" for g in "ifco")


@pytest.mark.parametrize(
    "attrs, inputs, message",
    [
        ({"clip": 3.0}, None, "clip=3.0 clips the gates' pre-activations, which Keras's cells do not; refused"),
        ({"input_forget": 1}, None, "input_forget=1 couples the input and forget gates, which Keras's LSTM does not; refused"),
        ({}, ["X", "W", "R", "", "", "", "", "P"], "input P holds LSTM peephole weights, which Keras's LSTM does not have; refused"),
        ({"activations": ["Sigmoid", "Tanh", "Relu"]}, None, "activations g=Tanh and h=Relu differ; a Keras LSTM uses one activation for both"),
        ({"activations": ["Sigmoid", "LeakyRelu", "LeakyRelu"]}, None, "activation LeakyRelu (with its alpha/beta) is not one a Keras cell computes"),
    ],
)
def test_onnx_refusals(tmp_path, attrs, inputs, message):
    """What Keras's cells cannot compute is refused with one line naming the node."""
    from portwire import lstm_graph, node, onnx_model, onnx_tensor, value_info

    if inputs is None:
        data = lstm_graph(**attrs)
    else:
        r = np.random.default_rng(0)
        inits = [onnx_tensor(k, r.normal(size=s).astype(np.float32)) for k, s in (("W", (1, 12, 2)), ("R", (1, 12, 3)), ("P", (1, 9)))]
        data = onnx_model([node("LSTM", inputs, ["Y"], name="lstm", hidden_size=3)], [value_info("X", ["time", "batch", 2])], [value_info("Y", [])], inits)
    path = tmp_path / "node.onnx"
    path.write_bytes(data)
    result = cli("inspect", path)
    assert result.exit_code == 3
    assert result.stderr == f"lstmctl: error: {path}: node 'lstm' (LSTM): {message}\n"


@pytest.mark.parametrize("alpha, form", [(0.2, 2), (1 / 6, 3)])
def test_onnx_hard_sigmoid_by_its_alpha(tmp_path, alpha, form):
    """HardSigmoid's alpha (a FLOATS attribute) says which Keras hard_sigmoid the node computes."""
    from portwire import lstm_graph

    path = tmp_path / "hs.onnx"
    path.write_bytes(lstm_graph(activations=["HardSigmoid", "Tanh", "Tanh"], activation_alpha=[alpha], activation_beta=[0.5]))
    cell = lstmctl.load(path).layer("lstm").cell
    assert (cell.recurrent_activation_name, cell.activation_name, cell.keras_major) == ("hard_sigmoid", "tanh", form)


def test_hand_built_onnx_lstm_runs():
    """The tests' protobuf writer makes files lstmctl reads as onnx writes them (control for the cases above)."""
    from portwire import lstm_graph

    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/ok.onnx"
        with open(path, "wb") as fh:
            fh.write(lstm_graph())
        m = lstmctl.load(path)
        x = np.random.default_rng(3).normal(size=(2, 4, 2)).astype(np.float32)
        result = m.run(x)
    assert result["output"].shape == (4, 1, 2, 3)  # Y [time, directions, batch, hidden] from a batch-major input
    close(result["output"][:, 0].transpose(1, 0, 2), result["lstm/sequence"], atol=0)


# --- round trips: lstmctl's exports of Keras samples, read back ----------------------------------


def test_keras_gru_exported_as_onnx_model_reads_back_as_keras_computed():
    exp = expected("k3_gru.keras")
    m = lstmctl.load(port("k3_gru.gru.onnx"))
    result = m.run(exp["gru/input"])
    close(result["gru/sequence"], exp["gru/sequence"])
    close(result["gru/h"], exp["gru/h"])


def test_keras_lstm_exported_for_torch_and_torch_saved_reads_back_as_keras_computed():
    exp = expected("k3_lstm_dense.keras")
    result = lstmctl.load(port("k3_lstm_dense.lstm.pt")).run(exp["lstm/input"])
    for key in ("sequence", "h", "c"):
        close(result[f"lstm/{key}"], exp[f"lstm/{key}"])


# --- the command line ------------------------------------------------------------------------------


def test_inspect_names_torch_tensors_and_the_mapping():
    result = cli("inspect", port("gru_legacy.pt"), "--format", "json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["format"] == "pytorch-legacy"
    (layer,) = [f for f in facts["layers"] if f["name"] == "rnn"]
    assert layer["notes"][1] == ("torch rnn.weight_ih_l0, weight_hh_l0: rows r 0:3, z 3:6, n 6:9, transposed and reordered into Keras's z, r, h (n = h); "
                                 "b_<g> shown = bias_ih_l0, rb_<g> = bias_hh_l0 (torch's GRU is Keras's reset_after=True)")  # fmt: skip
    assert [g["gate"] for g in layer["recurrent"]["gates"]] == ["z", "r", "h"]


def test_inspect_onnx_says_what_the_node_returns():
    result = cli("inspect", port("lstm2_bidir.onnx"), "--format", "json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    nodes = [f for f in facts["layers"] if f["kind"] == "bidirectional"]
    assert len(nodes) == 2
    assert [r["keras"] for r in nodes[0]["recurrent"]["returns"]] == ["Y", "Y_h", "Y_c"]
    assert nodes[0]["notes"][1].startswith("ONNX W [2, 16, 3], R [2, 16, 4]: rows i 0:4, o 4:8, f 8:12, c 12:16")
    assert facts["model"]["inputs"] == [{"name": "x", "shape": [2, 5, 3], "dtype": "float32"}]


def test_run_cli_torch_keys_and_time_major(tmp_path):
    want = framework("gru_legacy.pt")
    np.save(tmp_path / "x.npy", want["input/x"].transpose(1, 0, 2))
    result = cli("run", port("gru_legacy.pt"), "--input", tmp_path / "x.npy", "--time-major", "-o", tmp_path / "r.npz")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "r.npz") as r:
        close(r["rnn/output"], want["rnn/output"])
        close(r["rnn/h_n"], want["rnn/h_n"])


def test_run_cli_relu_from_the_activation_option(tmp_path):
    want = framework("rnn_relu.safetensors")
    np.save(tmp_path / "x.npy", want["input/x"])
    result = cli("run", port("rnn_relu.safetensors"), "--input", tmp_path / "x.npy", "--activation", "relu", "--key", "decoder/h_n", "--format", "npy", "-o", tmp_path / "h.npy")
    assert result.exit_code == 0, result.output
    close(np.load(tmp_path / "h.npy"), want["decoder/h_n"])


def test_compare_keras_model_with_its_torch_port(tmp_path):
    exp = expected("k3_lstm_dense.keras")
    np.save(tmp_path / "x.npy", exp["lstm/input"])
    result = cli("compare", sample("k3_lstm_dense.keras"), port("k3_lstm_dense.lstm.pt"), "--input", tmp_path / "x.npy", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["match"] and [lay["port"] for lay in report["layers"]] == ["lstm"]
    assert {r["key"] for r in report["layers"][0]["outputs"]} == {"sequence", "h", "c"}


def test_compare_a_port_made_the_wrong_way_torch_saved(tmp_path):
    """The bias copied into bias_ih and bias_hh, saved by torch: lstmctl computes what torch did, and compare says why it is not Keras."""
    want = framework("k3_lstm_dense.bias_twice.pt")
    close(lstmctl.load(port("k3_lstm_dense.bias_twice.pt")).run(want["input/x"])["lstm/output"], want["lstm/output"])
    exp = expected("k3_lstm_dense.keras")
    assert np.abs(want["lstm/output"] - exp["lstm/sequence"]).max() > 1e-2  # torch's own numbers differ from Keras's
    result = cli("compare", sample("k3_lstm_dense.keras"), port("k3_lstm_dense.bias_twice.pt"), "--input", sample("k3_lstm_dense.input.npy"))
    assert result.exit_code == 1
    assert "the port's bias is twice the reference's" in result.stdout and "layer lstm ↔ lstm, sequence from step 0 by up to 0.339" in result.stderr


def _torch_arrays_of(keras_sample, layer, tmp_path):
    out = tmp_path / "sd.npz"
    assert cli("export", sample(keras_sample), "--to", "pytorch", "--layer", layer, "-o", out).exit_code == 0
    with np.load(out) as sd:
        return dict(sd)


def test_compare_names_a_bias_counted_twice(tmp_path):
    sd = _torch_arrays_of("k3_lstm_dense.keras", "lstm", tmp_path)
    sd["bias_hh_l0"] = sd["bias_ih_l0"].copy()  # the Keras bias copied into both: torch adds them
    bad = write_safetensors(tmp_path / "bad.safetensors", sd)
    np.save(tmp_path / "x.npy", expected("k3_lstm_dense.keras")["lstm/input"])
    result = cli("compare", sample("k3_lstm_dense.keras"), bad, "--input", tmp_path / "x.npy")
    assert result.exit_code == 1
    assert "trap: lstm: the port's bias is twice the reference's" in result.stdout
    line = result.stderr.strip()
    assert line.startswith(f"lstmctl: check failed: {bad} differs from {sample('k3_lstm_dense.keras')}: layer lstm ↔ lstm, ")
    assert "torch adds bias_ih and bias_hh" in line


@pytest.mark.parametrize("suffix", ["pt", "safetensors", "npz"])
def test_export_to_pytorch_writes_what_the_suffix_says(tmp_path, suffix):
    """-o x.pt: a torch.save zip; -o x.safetensors: safetensors; -o x.npz: an npz. Read back, each runs as Keras computed."""
    out = tmp_path / f"lstm.{suffix}"
    result = cli("export", sample("k3_lstm_dense.keras"), "--to", "pytorch", "-o", out)
    assert result.exit_code == 0, result.output
    head = out.read_bytes()[:8]
    assert head.startswith(b"PK") == (suffix in ("pt", "npz"))
    if suffix == "npz":
        with np.load(out) as data:
            assert sorted(data) == ["bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"]
        return
    loaded = "torch.load" if suffix == "pt" else "safetensors.torch.load_file"
    assert f"m.load_state_dict({loaded}('{out}'" in result.stderr
    m = lstmctl.load(str(out))
    want = expected("k3_lstm_dense.keras")
    close(m.run(want["lstm/input"])["lstm/h_n"][0], want["lstm/h"])


def test_export_pt_suffix_needs_pytorch(tmp_path):
    result = cli("export", sample("k3_lstm_dense.keras"), "--to", "keras", "-o", tmp_path / "x.pt")
    assert result.exit_code == 2 and "a .pt file holds a PyTorch state_dict; use --to pytorch, or an .npz for keras weights" in result.stderr
    assert not (tmp_path / "x.pt").exists()


def test_compare_names_a_reshape_used_for_a_transpose(tmp_path):
    """weight_ih = kernel.reshape(4u, n) where kernel.T belongs: the same values, another order, named."""
    keras = lstmctl.load(sample("k3_lstm_dense.keras"))
    sd = dict(lstmctl.load(port("k3_lstm_dense.lstm.pt")).tensors)
    kernel = keras.layer("lstm").cell.W
    sd["weight_ih_l0"] = kernel.reshape(kernel.shape[::-1])
    bad = write_safetensors(tmp_path / "lstm.safetensors", sd)
    result = cli("compare", sample("k3_lstm_dense.keras"), bad, "--input", sample("k3_lstm_dense.input.npy"), "--format", "json")
    assert result.exit_code == 1
    (layer,) = json.loads(result.stdout)["layers"]
    assert "lstm: the port's W hold the reference's values in reshaped order: a reshape was used where a transpose belongs (Keras's kernel is (in, gates·units), torch's weight_ih (gates·units, in) is its transpose, not its reshape)" in layer["findings"]


def test_compare_says_the_head_activation_a_state_dict_does_not_record():
    result = cli("compare", sample("k3_lstm_dense.keras"), port("k3_lstm_dense.tutorial.safetensors"), "--input", sample("k3_lstm_dense.input.npy"), "--format", "json")
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert notes[0] == "head 'dense' applies softmax, the port's 'fc' linear: the heads are compared without the activation a state_dict does not record (its forward() applies it), so their outputs differ by it"


def test_compare_names_gates_in_keras_order_and_reset_after(tmp_path):
    sd = _torch_arrays_of("k3_gru.keras", "gru", tmp_path)
    for key in ("weight_ih_l0", "weight_hh_l0"):  # copied in Keras's z, r, h order, not torch's r, z, n
        r, z, n = np.split(sd[key], 3)
        sd[key] = np.concatenate([z, r, n])
    bad = write_safetensors(tmp_path / "gru.safetensors", sd)
    x = expected("k3_gru.keras")["gru/input"]
    np.save(tmp_path / "x.npy", x)
    result = cli("compare", sample("k3_gru.keras"), bad, "--input", tmp_path / "x.npy", "--format", "json")
    assert result.exit_code == 1
    (layer,) = json.loads(result.stdout)["layers"]
    assert any("another order (z←r, r←z)" in f for f in layer["findings"]), layer["findings"]
    seq = next(r for r in layer["outputs"] if r["key"] == "sequence")
    assert seq["first_divergent_step"] == 0 and seq["max_abs"] > 1e-3
    # Keras's second GRU is reset_after=False: torch's nn.GRU cannot compute it, and compare says so
    from lstmctl.analysis.compare import _traps

    keras = lstmctl.load(sample("k3_gru.keras"))
    torch_like = lstmctl.load(bad).layer("gru").cell
    (finding,) = [t for t in _traps(keras.layer("gru_1").cell, torch_like, "gru_1") if "reset_after" in t]
    assert "reset_after=False in the reference, True in the port" in finding


def test_compare_names_swapped_gru_biases(tmp_path):
    sd = _torch_arrays_of("k3_gru.keras", "gru", tmp_path)
    sd["bias_ih_l0"], sd["bias_hh_l0"] = sd["bias_hh_l0"], sd["bias_ih_l0"]
    bad = write_safetensors(tmp_path / "swapped.safetensors", sd)
    np.save(tmp_path / "x.npy", expected("k3_gru.keras")["gru/input"])
    result = cli("compare", sample("k3_gru.keras"), bad, "--input", tmp_path / "x.npy", "--format", "json")
    assert result.exit_code == 1
    (layer,) = json.loads(result.stdout)["layers"]
    assert layer["findings"] == ["gru: the port's input and recurrent biases are swapped (Keras's bias[0] is torch's bias_ih, bias[1] its bias_hh)"]


def test_a_torch_file_with_a_convention_says_to_drop_it():
    result = cli("inspect", port("lstm_views.pt"), "--convention", "pytorch")
    assert result.exit_code == 2
    assert "is a torch.save file; --convention is for an .npz of weights (drop it" in result.stderr


def test_compare_result_files_still_works(tmp_path):
    a = tmp_path / "a.npz"
    np.savez(a, output=np.ones((2, 3), np.float32))
    assert cli("compare", a, a).exit_code == 0
    result = cli("compare", a, a, "--time-major")
    assert result.exit_code == 2 and "--time-major applies to --input" in result.output


def test_ports_page_examples_are_real(monkeypatch):
    """docs/ports.md's `$ lstmctl …` blocks print exactly what the commands print (as the README's do)."""
    from conftest import ROOT
    from test_readme import BLOCK, run_example

    monkeypatch.chdir(ROOT)
    blocks = BLOCK.findall((ROOT / "docs" / "ports.md").read_text())
    assert len(blocks) == 10  # the ONNX section shows two, the TFLite one one
    for command, shown in blocks:
        assert run_example(command) == shown, command
