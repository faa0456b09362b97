"""Verification tier: exported weights loaded into the real frameworks compute what Keras computed.

torch.nn.LSTM / nn.GRU / nn.RNN take the `--to pytorch` state_dict, onnxruntime runs the
`--to onnx-model` file and an ONNX node built here from the `--to onnx` arrays; each output is
compared with the values Keras itself stored for the sample (and with `lstmctl run` of the
imported weights), to 1e-5. Weights made by torch itself are imported and compared with torch.

Runs where torch / onnxruntime and onnx are installed, and is skipped elsewhere:
    python3 -m venv .venv-verify && .venv-verify/bin/pip install -e '.[verify]'
    .venv-verify/bin/python -m pytest -q tests/test_conventions_verify.py
"""

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from conftest import MANIFEST, expected, sample
from lstmctl.cli import main
from test_conventions import INITIAL_STATE, _accepts, _unmasked_rows

CASES = [(m["file"], layer) for m in MANIFEST for layer in m["recurrent_layers"]]
IDS = [f"{f}:{n}" for f, n in CASES]
ATOL = 1e-5


def _export(tmp_path, name, layer, to, suffix="npz"):
    out = tmp_path / f"{layer}.{suffix}"
    result = CliRunner().invoke(main, ["export", sample(name), "--to", to, "--layer", layer, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _case(name, layer_name, to):
    model = lstmctl.load(sample(name))
    layer = model.layer(layer_name)
    if not _accepts(layer, to):
        pytest.skip(f"{to} refuses this layer (test_conventions checks the refusal)")
    exp = expected(name)
    x = exp[f"{layer_name}/input"]
    backwards = layer.kind == "recurrent" and layer.flag("go_backwards")
    if backwards:
        x = np.ascontiguousarray(x[:, ::-1])  # go_backwards: the frameworks read the reversed input
    state = [exp[k] for k in INITIAL_STATE.get(layer_name, ())]
    return model, layer, exp, x, state, _unmasked_rows(exp)


def _check(got: dict, exp: dict, layer, rows):
    """`got`: sequence / h / c, per direction for a Bidirectional, in Keras's result keys."""
    compared = 0
    for key, value in got.items():
        want = exp[key]
        assert value.shape == want.shape, key
        np.testing.assert_allclose(value[rows], want[rows], rtol=0, atol=ATOL, err_msg=key)
        compared += 1
    assert compared >= 2


def _lstmctl_run(tmp_path, npz, convention, model, layer, x, state):
    """`lstmctl run` of the exported weights, as a user would read them back."""
    cell = (layer.forward or layer).cell
    np.save(tmp_path / "x.npy", x)
    args = ["run", str(npz), "--convention", convention, "--name", layer.name, "--input", str(tmp_path / "x.npy"), "--format", "npz", "-o", str(tmp_path / "r.npz")]
    args += ["--activation", cell.activation_name, "--hard-sigmoid", "keras3" if model.keras_major >= 3 else "keras2"]
    if cell.recurrent_activation_name:
        args += ["--recurrent-activation", cell.recurrent_activation_name]
    if state:
        for i, s in enumerate(state):
            np.save(tmp_path / f"s{i}.npy", s)
        args += ["--layer", layer.name] + [a for i in range(len(state)) for a in ("--initial-state", str(tmp_path / f"s{i}.npy"))]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "r.npz") as r:
        return dict(r)


# --- PyTorch ------------------------------------------------------------------------------------


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def _torch_module(torch, arrays: dict, kind: str, layer, model):
    cell = (layer.forward or layer).cell
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simple_rnn": torch.nn.RNN}[kind]
    kw = {"bias": cell.bias is not None, "bidirectional": layer.kind == "bidirectional", "batch_first": True}
    if kind == "simple_rnn":
        kw["nonlinearity"] = cell.activation_name
    module = cls(cell.input_dim, cell.units, num_layers=1, **kw)
    if cell.W.dtype == np.float64:
        module = module.double()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
    return module.eval()


@pytest.mark.parametrize("name, layer_name", CASES, ids=IDS)
def test_torch_runs_the_exported_state_dict_like_keras(tmp_path, name, layer_name):
    torch = _torch()
    model, layer, exp, x, state, rows = _case(name, layer_name, "pytorch")
    npz = _export(tmp_path, name, layer_name, "pytorch")
    with np.load(npz) as loaded:
        arrays = dict(loaded)
    kind = (layer.forward or layer).cell.kind
    module = _torch_module(torch, arrays, kind, layer, model)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        args = [torch.from_numpy(x)]
        if state:
            h0 = torch.from_numpy(state[0])[None]
            args.append((h0, torch.from_numpy(state[1])[None]) if kind == "lstm" else h0)
        y, final = module(*args)
    y = y.numpy()
    h_n, c_n = (final[0].numpy(), final[1].numpy()) if kind == "lstm" else (final.numpy(), None)
    L = layer_name
    if layer.kind == "bidirectional":
        u = layer.forward.cell.units
        got = {f"{L}/forward/sequence": y[..., :u], f"{L}/backward/sequence": y[..., u:], f"{L}/forward/h": h_n[0], f"{L}/backward/h": h_n[1]}
        if c_n is not None:
            got.update({f"{L}/forward/c": c_n[0], f"{L}/backward/c": c_n[1]})
    else:
        got = {f"{L}/sequence": y, f"{L}/h": h_n[0]}
        if c_n is not None:
            got[f"{L}/c"] = c_n[0]
    _check(got, exp, layer, rows)
    ours = _lstmctl_run(tmp_path, npz, "pytorch", model, layer, x, state)
    np.testing.assert_allclose(ours["output"][rows], y[rows], rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    "kind, kwargs",
    [
        ("lstm", {"input_size": 4, "hidden_size": 6, "num_layers": 2, "bidirectional": True}),
        ("lstm", {"input_size": 3, "hidden_size": 5, "bias": False}),
        ("gru", {"input_size": 4, "hidden_size": 5, "num_layers": 2}),
        ("gru", {"input_size": 4, "hidden_size": 3, "bidirectional": True}),
        ("rnn", {"input_size": 4, "hidden_size": 3, "nonlinearity": "relu", "num_layers": 3}),
        ("rnn", {"input_size": 2, "hidden_size": 7}),
    ],
)
def test_torch_made_weights_import_and_run_like_torch(tmp_path, kind, kwargs):
    """A state_dict made by torch itself (bias_hh not zero), saved with numpy under a module prefix."""
    torch = _torch()
    torch.manual_seed(sum(map(ord, repr(kwargs))))
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    module = cls(batch_first=True, **kwargs).eval()
    npz = tmp_path / "state_dict.npz"
    np.savez(npz, **{f"encoder.{k}": v.detach().numpy() for k, v in module.state_dict().items()})
    x = np.random.default_rng(7).standard_normal((3, 9, kwargs["input_size"])).astype(np.float32)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        y, final = module(torch.from_numpy(x))
    activation = kwargs.get("nonlinearity")
    imported = lstmctl.load(npz, convention="pytorch", activation=activation)
    result = imported.run(x)
    np.testing.assert_allclose(result["output"], y.numpy(), rtol=0, atol=ATOL)
    h_n = (final[0] if kind == "lstm" else final).numpy()
    top = [layer for layer in imported.layers if layer.is_recurrent][-1].name
    if kwargs.get("bidirectional"):
        np.testing.assert_allclose(result[f"{top}/forward/h"], h_n[-2], atol=ATOL)
        np.testing.assert_allclose(result[f"{top}/backward/h"], h_n[-1], atol=ATOL)
    else:
        np.testing.assert_allclose(result[f"{top}/h"], h_n[-1], atol=ATOL)
    if kind == "lstm" and not kwargs.get("bidirectional"):
        np.testing.assert_allclose(result[f"{top}/c"], final[1].numpy()[-1], atol=ATOL)
    # and back out: lstmctl's export of the imported stack loads into a fresh module that computes the same
    from lstmctl import conventions

    arrays, _ = conventions.export(imported, "pytorch", [layer.name for layer in imported.layers if layer.is_recurrent])
    again = cls(batch_first=True, **kwargs).eval()
    again.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        y2, _ = again(torch.from_numpy(x))
    np.testing.assert_allclose(y2.numpy(), y.numpy(), rtol=0, atol=ATOL)


# --- ONNX ---------------------------------------------------------------------------------------


def _ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def _ort_run(ort, model_bytes, x, state=()):
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = {"X": np.ascontiguousarray(x.transpose(1, 0, 2))}
    names = [i.name for i in session.get_inputs()]
    if state:
        feeds["initial_h"] = state[0][None]
        if len(state) > 1:
            feeds["initial_c"] = state[1][None]
    feeds = {k: v for k, v in feeds.items() if k in names}
    return session.run(None, feeds)


def _onnx_got(outs, layer):
    """Keras result keys from ONNX's Y [time, dirs, batch, u], Y_h [dirs, batch, u] (and Y_c)."""
    L = layer.name
    Y = outs[0]
    seq = [Y[:, d].transpose(1, 0, 2) for d in range(Y.shape[1])]
    if layer.kind == "bidirectional":
        got = {f"{L}/forward/sequence": seq[0], f"{L}/backward/sequence": seq[1], f"{L}/forward/h": outs[1][0], f"{L}/backward/h": outs[1][1]}
        if len(outs) > 2:
            got.update({f"{L}/forward/c": outs[2][0], f"{L}/backward/c": outs[2][1]})
        return got
    s = seq[0][:, ::-1] if layer.flag("go_backwards") else seq[0]  # ONNX 'reverse' returns time-aligned
    got = {f"{L}/sequence": s, f"{L}/h": outs[1][0]}
    if len(outs) > 2:
        got[f"{L}/c"] = outs[2][0]
    return got


def _float32_only(layer):
    if (layer.forward or layer).cell.W.dtype != np.float32:
        pytest.skip("onnxruntime's LSTM / GRU / RNN kernels run float32 only")


@pytest.mark.parametrize("name, layer_name", CASES, ids=IDS)
def test_onnxruntime_runs_the_exported_onnx_model_like_keras(tmp_path, name, layer_name):
    ort = _ort()
    model, layer, exp, x, state, rows = _case(name, layer_name, "onnx")
    _float32_only(layer)
    if layer.kind == "recurrent" and layer.flag("go_backwards"):
        x = np.ascontiguousarray(x[:, ::-1])  # the model's direction='reverse' reads the input as given
    path = _export(tmp_path, name, layer_name, "onnx-model", "onnx")
    if state:
        pytest.skip("the exported graph has no initial-state inputs")
    outs = _ort_run(ort, path.read_bytes(), x)
    _check(_onnx_got(outs, layer), exp, layer, rows)


@pytest.mark.parametrize("name, layer_name", CASES, ids=IDS)
def test_onnxruntime_runs_an_onnx_node_built_from_the_exported_arrays(tmp_path, name, layer_name):
    """W, R, B (and linear_before_reset) from `--to onnx`, put into an ONNX node built here."""
    ort = _ort()
    from onnx import TensorProto, helper, numpy_helper

    model, layer, exp, x, state, rows = _case(name, layer_name, "onnx")
    _float32_only(layer)
    cell = (layer.forward or layer).cell
    if (cell.activation_name, cell.recurrent_activation_name) not in (("tanh", "sigmoid"), ("tanh", None)):
        pytest.skip("non-default activations: covered through --to onnx-model")
    with np.load(_export(tmp_path, name, layer_name, "onnx")) as loaded:
        arrays = dict(loaded)
    op = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}[cell.kind]
    dirs, u = arrays["R"].shape[0], arrays["R"].shape[2]
    attrs = {"hidden_size": u, "direction": "bidirectional" if dirs == 2 else ("reverse" if layer.flag("go_backwards") else "forward")}
    if "linear_before_reset" in arrays:
        attrs["linear_before_reset"] = int(arrays["linear_before_reset"])
    weights = [k for k in ("W", "R", "B") if k in arrays]
    inputs = ["X", "W", "R", "B" if "B" in arrays else ""]
    extra = []
    if state:
        inputs += ["", "initial_h"] + (["initial_c"] if cell.kind == "lstm" else [])
        extra = [helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [1, "batch", u])]
        if cell.kind == "lstm":
            extra.append(helper.make_tensor_value_info("initial_c", TensorProto.FLOAT, [1, "batch", u]))
    outputs = ["Y", "Y_h"] + (["Y_c"] if cell.kind == "lstm" else [])
    while inputs[-1] == "":
        inputs.pop()
    graph = helper.make_graph(
        [helper.make_node(op, inputs, outputs, **attrs)], "verify",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["t", "batch", cell.input_dim]), *extra],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=[numpy_helper.from_array(arrays[k], k) for k in weights],
    )  # fmt: skip
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    proto.ir_version = 8
    if layer.kind == "recurrent" and layer.flag("go_backwards"):
        x = np.ascontiguousarray(x[:, ::-1])
    outs = _ort_run(ort, proto.SerializeToString(), x, state)
    _check(_onnx_got(outs, layer), exp, layer, rows)


def test_documented_pytorch_hand_off_runs(tmp_path, monkeypatch):
    """The hand-off of docs/conventions.md: its export command, then its Python block, as written."""
    import shlex
    from pathlib import Path

    from test_conventions import _docs_block

    _torch()
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "sample_models").symlink_to(root / "sample_models")
    monkeypatch.chdir(tmp_path)
    command = _docs_block("text", "$ lstmctl export").splitlines()[0]
    assert CliRunner().invoke(main, shlex.split(command[2:])[1:]).exit_code == 0
    code = _docs_block("python", "import numpy as np")
    assert "lstm.load_state_dict" in code and "lstm_torch.npz" in code
    exec(compile(code, "docs/conventions.md", "exec"), {})  # under the suite's strict warnings and np.errstate


@pytest.mark.parametrize("name", ["layers/k3_rnn_encdec.keras", "layers/k2_rnn_encdec.h5"])
def test_a_stack_of_cells_runs_in_torch_as_num_layers(tmp_path, name):
    """The encoder, RNN([LSTMCell(4), LSTMCell(4)]), exported as torch.nn.LSTM(num_layers=2): torch's
    output is Keras's top-cell sequence and its h_n / c_n are each cell's final states."""
    torch = pytest.importorskip("torch")
    out = _export(tmp_path, name, "encoder", "pytorch")
    exp = expected(name)
    lstm = torch.nn.LSTM(input_size=3, hidden_size=4, num_layers=2, batch_first=True)
    with np.load(out) as sd:
        lstm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    with torch.no_grad():
        seq, (h, c) = lstm(torch.from_numpy(exp["encoder/input"]))
    np.testing.assert_allclose(seq.numpy(), exp["encoder/sequence"], atol=ATOL)
    for k in range(2):
        np.testing.assert_allclose(h[k].numpy(), exp[f"encoder/cell_{k}/h"], atol=ATOL)
        np.testing.assert_allclose(c[k].numpy(), exp[f"encoder/cell_{k}/c"], atol=ATOL)
