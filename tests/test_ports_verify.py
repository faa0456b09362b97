"""Verification tier for ports: files torch and torch.onnx write now, read by lstmctl, against what
torch and onnxruntime compute for them (float32 atol 1e-5), beyond the committed fixtures.

Runs where torch, onnxruntime and onnx are installed (the verify extra), skipped elsewhere:
    .venv-verify/bin/python -m pytest -q tests/test_ports_verify.py
"""

import pickle
import types
import warnings

import numpy as np
import pytest

import lstmctl
from conftest import MANIFEST
from test_ports import PORTS, _big_endian_copy, write_safetensors

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
torch.set_num_threads(1)
ATOL = 1e-5

MODULES = [
    ("LSTM", {"input_size": 3, "hidden_size": 4, "num_layers": 3, "bidirectional": True}),
    ("LSTM", {"input_size": 2, "hidden_size": 5, "bias": False}),
    ("GRU", {"input_size": 4, "hidden_size": 3, "num_layers": 2, "bidirectional": True}),
    ("RNN", {"input_size": 3, "hidden_size": 6, "nonlinearity": "relu", "num_layers": 2}),
    ("RNN", {"input_size": 3, "hidden_size": 2, "bidirectional": True}),
]


def _trained(module, seed):
    r = np.random.default_rng(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.from_numpy(r.normal(0, 0.5, tuple(p.shape)).astype(np.float32)))
    return module.eval()


@pytest.mark.parametrize("form", ["zip", "legacy", "safetensors"])
@pytest.mark.parametrize("cls, kwargs", MODULES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(MODULES)])
def test_state_dicts_torch_writes_run_like_torch(tmp_path, cls, kwargs, form):
    module = _trained(getattr(torch.nn, cls)(batch_first=True, **kwargs), len(repr(kwargs)))
    state = {f"model.rnn.{k}": v for k, v in module.state_dict().items()}
    path = tmp_path / ("m.safetensors" if form == "safetensors" else "m.pt")
    if form == "safetensors":
        write_safetensors(path, {k: v.numpy() for k, v in state.items()})
    else:
        torch.save(state, path, _use_new_zipfile_serialization=form == "zip")
    x = np.random.default_rng(5).standard_normal((3, 7, kwargs["input_size"])).astype(np.float32)
    with torch.no_grad():
        y, final = module(torch.from_numpy(x))
    result = lstmctl.load(path, activation=kwargs.get("nonlinearity")).run(x)
    np.testing.assert_allclose(result["model.rnn/output"], y.numpy(), rtol=0, atol=ATOL)
    h_n = final[0] if cls == "LSTM" else final
    np.testing.assert_allclose(result["model.rnn/h_n"], h_n.numpy(), rtol=0, atol=ATOL)
    if cls == "LSTM":
        np.testing.assert_allclose(result["model.rnn/c_n"], final[1].numpy(), rtol=0, atol=ATOL)


class _UserClass(torch.nn.Module):
    """What a user class pickled under __main__ becomes here: an nn.Module whose forward() is not needed."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return _UserClass if module == "__main__" else super().find_class(module, name)


def torch_state(path):
    """torch's own reading of a file: a state_dict (weights_only=True), or a whole pickled module's
    state_dict, its user classes (defined in a script's __main__) stood in for by plain modules."""
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.serialization.SourceChangeWarning)  # the legacy form records each class's source
            module = torch.load(path, weights_only=False, map_location="cpu", pickle_module=types.SimpleNamespace(Unpickler=_Unpickler, load=pickle.load, __name__="pickle"))
        return module.state_dict()


@pytest.mark.parametrize("name", sorted(p.name for p in PORTS.glob("*.pt")))
def test_every_tensor_reads_as_torch_load_reads_it(name):
    """torch.load(weights_only=True) and lstmctl's unpickler agree on every tensor, bit for bit
    (after widening bfloat16, as lstmctl does); for the big-endian copy too."""
    theirs = torch_state(PORTS / name)
    ours = lstmctl.load(PORTS / name).tensors
    assert list(ours) == list(theirs)
    for key, tensor in theirs.items():
        want = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
        assert ours[key].dtype == want.dtype and np.array_equal(ours[key], want), key


def test_big_endian_copy_reads_as_torch_reads_it(tmp_path):
    path = _big_endian_copy(PORTS / "lstm_views.pt", tmp_path / "big.pt")
    theirs = torch.load(path, weights_only=True)
    ours = lstmctl.load(path).tensors
    for key, tensor in theirs.items():
        assert np.array_equal(ours[key], tensor.numpy()), key


class _Tagger(torch.nn.Module):
    def __init__(self, cls, **kwargs):
        super().__init__()
        self.rnn = getattr(torch.nn, cls)(batch_first=True, **kwargs)
        hidden = kwargs["hidden_size"] * (2 if kwargs.get("bidirectional") else 1)
        self.head = torch.nn.Linear(hidden, 2)

    def forward(self, x):
        y, state = self.rnn(x)
        return self.head(y), state[0] if isinstance(state, tuple) else state


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("cls, kwargs", MODULES[:4], ids=[f"{c}-{i}" for i, (c, _) in enumerate(MODULES[:4])])
def test_torch_onnx_exports_run_like_onnxruntime(tmp_path, cls, kwargs, dynamo):
    model = _trained(_Tagger(cls, **{k: v for k, v in kwargs.items() if k != "nonlinearity"}), 3)
    x = np.random.default_rng(9).standard_normal((2, 6, kwargs["input_size"])).astype(np.float32)
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=dynamo, input_names=["x"], verbose=False)
    if cls == "RNN" and dynamo:  # the dynamo exporter unrolls nn.RNN into MatMul / Add / Tanh per step: no RNN node
        with pytest.raises(lstmctl.LstmctlError, match="no LSTM, GRU or RNN node .*export with dynamo=False"):
            lstmctl.load(path)
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x})
    result = lstmctl.load(path).run(x)
    for i, w in enumerate(want):
        np.testing.assert_allclose(result[f"output_{i}"], w, rtol=0, atol=ATOL)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_onnx_nodes_with_sequence_lens_and_states_run_like_onnxruntime(tmp_path, op, direction):
    from onnx import TensorProto, helper, numpy_helper

    r = np.random.default_rng(len(op) + len(direction))
    u, n, k, dirs, batch, steps = 3, 2, {"LSTM": 4, "GRU": 3, "RNN": 1}[op], 2 if direction == "bidirectional" else 1, 4, 6
    inits = [numpy_helper.from_array(r.normal(0, 0.6, s).astype(np.float32), name) for name, s in (("W", (dirs, k * u, n)), ("R", (dirs, k * u, u)), ("B", (dirs, 2 * k * u)))]
    inputs = ["X", "W", "R", "B", "lens", "h0"] + (["c0"] if op == "LSTM" else [])
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    attrs = {"hidden_size": u, "direction": direction}
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    graph = helper.make_graph(
        [helper.make_node(op, inputs, outputs, name="node", **attrs)], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["t", "b", n]), helper.make_tensor_value_info("lens", TensorProto.INT32, ["b"])]
        + [helper.make_tensor_value_info(s, TensorProto.FLOAT, [dirs, "b", u]) for s in inputs[5:]],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], initializer=inits,
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    proto.ir_version = 8
    path = tmp_path / "node.onnx"
    path.write_bytes(proto.SerializeToString())
    feeds = {"X": r.normal(size=(steps, batch, n)).astype(np.float32), "lens": np.array([6, 1, 3, 5], np.int32)}
    feeds.update({s: r.normal(0, 0.5, (dirs, batch, u)).astype(np.float32) for s in inputs[5:]})
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    ours = dict(feeds, X=feeds["X"].transpose(1, 0, 2))  # lstmctl takes the time-major X batch-major
    result = lstmctl.load(path).run(ours)
    for i, w in enumerate(want):
        np.testing.assert_allclose(result[f"output_{i}" if len(want) > 1 else "output"], w, rtol=0, atol=ATOL, err_msg=outputs[i])


CASES = [(m["file"], layer) for m in MANIFEST for layer in m["recurrent_layers"]]


@pytest.mark.parametrize("name, layer_name", CASES, ids=[f"{f}:{n}" for f, n in CASES])
def test_keras_layers_exported_as_onnx_models_read_back_as_keras_computed(tmp_path, name, layer_name):
    """The round trip on every sample layer onnx-model takes: lstmctl export, then lstmctl reads its
    own .onnx back and computes Keras's stored final states (for the samples without a mask)."""
    from test_conventions_verify import _case, _export, _float32_only

    model, layer, exp, x, state, rows = _case(name, layer_name, "onnx")
    _float32_only(layer)
    if state:
        pytest.skip("the exported graph has no initial-state inputs")
    if layer.kind == "recurrent" and layer.flag("go_backwards"):
        x = np.ascontiguousarray(x[:, ::-1])  # _case reversed it for frameworks without go_backwards; the node's 'reverse' reads it as given
    got = lstmctl.load(_export(tmp_path, name, layer_name, "onnx-model", "onnx")).run(x)
    halves = ["forward/", "backward/"] if layer.kind == "bidirectional" else [""]
    keys = [f"{layer_name}/{half}{part}" for half in halves for part in ("h", "c") if f"{layer_name}/{half}{part}" in exp]
    assert keys
    for key in keys:
        np.testing.assert_allclose(got[key][rows], exp[key][rows], rtol=0, atol=ATOL, err_msg=key)


# --- issue 26: what tutorials save, and what lstmctl writes for torch ------------------------------


class Net(torch.nn.Module):
    """A user class around torch.nn modules: torch.save(model) pickles it by its class path."""

    def __init__(self, proj=0):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 6, num_layers=2, batch_first=True, proj_size=proj)
        self.head = torch.nn.Sequential(torch.nn.Linear(proj or 6, 4), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.lstm(x)[0])


@pytest.mark.parametrize("form", ["zip", "legacy"])
@pytest.mark.parametrize("proj", [0, 2])
def test_whole_modules_torch_saves_run_like_torch(tmp_path, form, proj):
    """torch.save(model) now, zip and legacy, with and without proj_size: read as data, run as forward() ran."""
    model = _trained(Net(proj), 11 + proj)
    path = tmp_path / "net.pt"
    torch.save(model, path, _use_new_zipfile_serialization=form == "zip")
    x = np.random.default_rng(3).standard_normal((2, 5, 3)).astype(np.float32)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "LSTM with projections is not supported with oneDNN")
        y = model(torch.from_numpy(x))
        seq, (h, c) = model.lstm(torch.from_numpy(x))
    m = lstmctl.load(str(path))
    assert m.name.endswith("Net")
    result = m.run(x)
    for key, want in (("output", y), ("lstm/output", seq), ("lstm/h_n", h), ("lstm/c_n", c)):
        np.testing.assert_allclose(result[key], want.numpy(), rtol=0, atol=ATOL)


def test_safetensors_sorted_keys_run_like_torch(tmp_path):
    """safetensors.torch.save_file sorts the keys (fc.* before lstm.*): the one order that fits is used."""
    from safetensors.torch import save_file

    class Tutorial(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 7, batch_first=True)
            self.fc = torch.nn.Linear(7, 3)

    model = _trained(Tutorial(), 21)
    path = tmp_path / "t.safetensors"
    save_file(model.state_dict(), str(path))
    x = np.random.default_rng(4).standard_normal((2, 6, 4)).astype(np.float32)
    with torch.no_grad():
        y = model.fc(model.lstm(torch.from_numpy(x))[0])
    np.testing.assert_allclose(lstmctl.load(str(path)).run(x)["output"], y.numpy(), rtol=0, atol=ATOL)


@pytest.mark.parametrize("suffix", ["pt", "safetensors"])
def test_exports_open_in_torch_with_the_same_values(tmp_path, suffix):
    """export --to pytorch -o x.pt (written without torch): torch.load(weights_only=True) opens it; -o x.safetensors: safetensors opens it."""
    from click.testing import CliRunner
    from safetensors.torch import load_file

    from conftest import sample
    from lstmctl.cli import main

    out = tmp_path / f"bidir.{suffix}"
    npz = tmp_path / "bidir.npz"
    for target in (out, npz):
        result = CliRunner().invoke(main, ["export", sample("k3_bidir.keras"), "--to", "pytorch", "--layer", "bidirectional", "-o", str(target)])
        assert result.exit_code == 0, result.output
    state = torch.load(out, weights_only=True) if suffix == "pt" else load_file(str(out))
    with np.load(npz) as want:
        assert sorted(state) == sorted(want)
        for key in want:
            np.testing.assert_array_equal(state[key].numpy(), want[key])
    lstm = torch.nn.LSTM(state["weight_ih_l0"].shape[1], state["weight_hh_l0"].shape[1], batch_first=True, bidirectional=True)
    lstm.load_state_dict(state)
