"""Keras / PyTorch / TF1 / ONNX conventions: export, import, and the numbers Keras itself computed.

Every expectation here is Keras's (the weights `get_weights()` returned, the outputs the layer
produced, stored in sample_models/*.expected.npz) or a published test vector; the frameworks
themselves are checked in test_conventions_verify.py.
"""

import io
import math

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from conftest import MANIFEST, expected, keras_weights, sample
from lstmctl import conventions
from lstmctl.cli import main
from lstmctl.errors import LstmctlError, UsageError

CONVENTIONS = ("keras", "pytorch", "tf1", "onnx")
ONNX_OK = {"tanh", "sigmoid", "relu", "hard_sigmoid", "linear", "elu", "softsign", "softplus", None}
MODELS = [m["file"] for m in MANIFEST]
CASES = [(m["file"], layer) for m in MANIFEST for layer in m["recurrent_layers"]]
INITIAL_STATE = {"decoder": ("encoder/h", "encoder/c")}  # the encoder-decoder samples


def invoke(*args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], **kw)


def _cells(layer):
    return [layer.cell] if layer.kind == "recurrent" else [layer.forward.cell, layer.backward.cell]


def _accepts(layer, to) -> bool:
    """The refusal table of docs/conventions.md, written out independently of lstmctl's code."""
    cell = _cells(layer)[0]
    act, ract = cell.activation_name, cell.recurrent_activation_name
    if layer.kind == "bidirectional" and (layer.forward.flag("go_backwards") or not layer.backward.flag("go_backwards")):
        return False  # no convention's bidirectional layout runs the forward half backwards
    if to == "pytorch":
        if cell.kind == "simple_rnn":
            return act in ("tanh", "relu")
        return act == "tanh" and ract == "sigmoid" and (cell.kind != "gru" or cell.reset_after)
    if to == "tf1":
        return cell.kind == "simple_rnn" or (ract == "sigmoid" and (cell.kind != "gru" or not cell.reset_after))
    if to == "onnx":
        return act in ONNX_OK and ract in ONNX_OK
    return True


def _import_options(model, layer):
    cell = _cells(layer)[0]
    return {
        "activation": cell.activation_name,
        "recurrent_activation": cell.recurrent_activation_name,
        "hard_sigmoid": "keras3" if model.keras_major >= 3 else "keras2",
        "name": layer.name,
    }


def _via(model, layer, to, forget_bias=1.0):
    arrays, notes = conventions.export(model, to, [layer.name], forget_bias=forget_bias)
    data = io.BytesIO()
    np.savez(data, **arrays)  # through a real file format, as a user would pass it on
    data.seek(0)
    with np.load(data) as loaded:
        arrays = dict(loaded)
    return conventions.import_arrays(arrays, to, f"{layer.name}.{to}.npz", forget_bias=forget_bias, **_import_options(model, layer)), notes


# --- round trip: Keras file -> convention -> back, bit for bit ------------------------------------


@pytest.mark.parametrize("name, layer_name", CASES, ids=[f"{f}:{n}" for f, n in CASES])
@pytest.mark.parametrize("to", CONVENTIONS)
def test_round_trip_is_bit_exact_against_keras_get_weights(name, layer_name, to):
    model = lstmctl.load(sample(name))
    layer = model.layer(layer_name)
    if not _accepts(layer, to):
        with pytest.raises(LstmctlError, match="refused"):
            conventions.export(model, to, [layer_name])
        return
    imported, _ = _via(model, layer, to)
    back, _ = conventions.export(imported, "keras")
    want = keras_weights(expected(name), layer_name)
    prefixes = ["forward/", "backward/"] if layer.kind == "bidirectional" else [""]
    per_direction = len(want) // len(prefixes)
    for d, prefix in enumerate(prefixes):
        keras = want[d * per_direction : (d + 1) * per_direction]
        got = [back[f"{prefix}kernel"], back[f"{prefix}recurrent_kernel"]]
        if len(keras) == 3:
            got.append(back[f"{prefix}bias"])
        elif to == "tf1" and f"{prefix}bias" in back:
            # TF1 cells always hold a bias: a bias-free layer comes back with an all-zero one
            assert not np.any(back[f"{prefix}bias"])
        for k, (g, w) in enumerate(zip(got, keras)):
            assert g.dtype == w.dtype and g.shape == w.shape, (prefix, k)
            assert np.array_equal(g, w), f"{prefix}{k}: max diff {np.max(np.abs(g.astype(np.float64) - w))}"


# --- imported layers compute what Keras computed ------------------------------------------------


def _unmasked_rows(exp) -> np.ndarray:
    """Samples whose model input has no padded step (Masking(0.0) or Embedding(mask_zero) zeros)."""
    (x,) = [v for k, v in exp.items() if k.startswith("input/")][:1]
    if x.dtype.kind in "iu":
        return ~np.any(x == 0, axis=1)
    return ~np.any(np.all(x == 0, axis=-1), axis=1)


@pytest.mark.parametrize("name, layer_name", CASES, ids=[f"{f}:{n}" for f, n in CASES])
@pytest.mark.parametrize("to", CONVENTIONS)
def test_imported_layer_reproduces_keras_outputs(name, layer_name, to):
    model = lstmctl.load(sample(name))
    layer = model.layer(layer_name)
    if not _accepts(layer, to):
        pytest.skip(f"{to} refuses this layer (tested above)")
    exp = expected(name)
    imported, _ = _via(model, layer, to)
    x = exp[f"{layer_name}/input"]
    go_backwards = layer.kind == "recurrent" and layer.flag("go_backwards")
    if go_backwards:
        x = x[:, ::-1]  # the weights do not say go_backwards: the user reverses the input, as export notes
    state = INITIAL_STATE.get(layer_name)
    result = imported.run(x, initial_state=[exp[k] for k in state] if state else None, layer=layer_name if state else None)
    rows = _unmasked_rows(exp)
    assert rows.any()
    compared = 0
    for key, want in exp.items():
        if not key.startswith(f"{layer_name}/") or key.endswith("/input"):
            continue
        if key == f"{layer_name}/sequence" and layer.kind == "bidirectional" and layer.config.get("merge_mode") != "concat":
            continue  # the imported layer concatenates, as PyTorch and ONNX do; the directions are compared
        got = result[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        np.testing.assert_allclose(got[rows], want[rows], rtol=0, atol=1e-5, err_msg=key)
        compared += 1
    assert compared >= 2
    if layer.kind == "bidirectional" and layer.config.get("merge_mode") == "concat":
        np.testing.assert_allclose(result["output"][rows], exp[f"{layer_name}/sequence"][rows], rtol=0, atol=1e-5)


def test_conventions_vector_2_from_its_recipe(tmp_path):
    """CONVENTIONS.md vector 2: a TF1 LSTMCell npz made from the published recipe."""
    np.random.seed(0)
    x = np.random.normal(size=(1, 7, 4)).astype(np.float32)
    limit = math.sqrt(6 / (7 + 12))
    kernel = np.random.uniform(-limit, limit, size=(7, 12)).astype(np.float32)
    path = tmp_path / "tf1_cell.npz"
    np.savez(path, **{"rnn/lstm_cell/kernel": kernel, "rnn/lstm_cell/bias": np.zeros(12, np.float32)})
    published = np.array([
        [-0.21386017, -0.08401277, -0.25431477],
        [-0.22243588, -0.25817422, -0.1612211],
        [-0.2282134, -0.14207162, -0.35017249],
        [-0.23286737, -0.17129192, -0.2706512],
        [-0.11768674, -0.20717363, -0.13339118],
        [-0.0599215, -0.17756104, -0.2028935],
        [0.11437953, -0.19484555, 0.05371994],
    ])  # fmt: skip
    result = lstmctl.load(path, convention="tf1").run(x)
    np.testing.assert_allclose(result["lstm/sequence"][0], published, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result["output"][0], published, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result["lstm/h"][0], result["lstm/sequence"][0, -1])
    # Leaving out forget_bias reproduces the first row and then diverges (the classic mistake).
    wrong = lstmctl.load(path, convention="tf1", forget_bias=0.0).run(x)["lstm/sequence"][0]
    np.testing.assert_allclose(wrong[0], published[0], atol=1e-6)
    assert np.abs(wrong[1:] - published[1:]).max() > 1e-2
    # The CLI says the same, bare keys as well as scoped ones.
    bare = tmp_path / "bare.npz"
    np.savez(bare, kernel=kernel, bias=np.zeros(12, np.float32))
    np.save(tmp_path / "x.npy", x)
    out = invoke("run", bare, "--convention", "tf1", "--input", tmp_path / "x.npy", "--key", "lstm/sequence", "--format", "json")
    assert out.exit_code == 0, out.output
    import json

    np.testing.assert_allclose(np.array(json.loads(out.stdout)["lstm/sequence"])[0], published, atol=1e-6)


# --- what each convention writes ------------------------------------------------------------------


def test_layouts_against_keras_weights():
    """The documented layouts, slice by slice, from the Keras kernel, recurrent kernel and bias."""
    model = lstmctl.load(sample("k3_lstm_dense.keras"))
    W, U, b = keras_weights(expected("k3_lstm_dense.keras"), "lstm")
    u = 5
    i, f, c, o = (slice(j * u, (j + 1) * u) for j in range(4))
    torch, _ = conventions.export(model, "pytorch")
    assert sorted(torch) == ["bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"]
    np.testing.assert_array_equal(torch["weight_ih_l0"], W.T)  # i, f, g, o = Keras's order, transposed
    np.testing.assert_array_equal(torch["weight_hh_l0"], U.T)
    np.testing.assert_array_equal(torch["bias_ih_l0"] + torch["bias_hh_l0"], b)
    tf1, notes = conventions.export(model, "tf1")
    kernel, bias = tf1["rnn/lstm_cell/kernel"], tf1["rnn/lstm_cell/bias"]
    assert kernel.shape == (4 + 5, 20) and bias.dtype == np.float64
    for tf_block, keras_block in zip((i, f, c, o), (i, c, f, o)):  # TF1's i, j, f, o
        np.testing.assert_array_equal(kernel[:4, tf_block], W[:, keras_block])
        np.testing.assert_array_equal(kernel[4:, tf_block], U[:, keras_block])
    np.testing.assert_array_equal(bias[i], b[i])
    np.testing.assert_array_equal(bias[c], b[f].astype(np.float64) - 1.0)  # forget_bias taken off
    np.testing.assert_array_equal(bias[f], b[c])
    assert any("forget_bias=1.0" in n and "subtracted" in n for n in notes)
    onnx, _ = conventions.export(model, "onnx")
    assert onnx["W"].shape == (1, 20, 4) and onnx["R"].shape == (1, 20, 5) and onnx["B"].shape == (1, 40)
    for onnx_block, keras_block in zip((i, f, c, o), (i, o, f, c)):  # ONNX's i, o, f, c
        np.testing.assert_array_equal(onnx["W"][0, onnx_block], W[:, keras_block].T)
        np.testing.assert_array_equal(onnx["R"][0, onnx_block], U[:, keras_block].T)
        np.testing.assert_array_equal(onnx["B"][0, onnx_block], b[keras_block])
    assert not onnx["B"][0, 20:].any()
    keras, _ = conventions.export(model, "keras")
    for key, want in zip(("kernel", "recurrent_kernel", "bias"), (W, U, b)):
        np.testing.assert_array_equal(keras[key], want)


def test_gru_layouts_against_keras_weights():
    model = lstmctl.load(sample("k3_gru.keras"))
    W, U, b = keras_weights(expected("k3_gru.keras"), "gru")  # reset_after=True: b (2, 15)
    u = 5
    z, r, h = (slice(j * u, (j + 1) * u) for j in range(3))
    torch, _ = conventions.export(model, "pytorch", ["gru"])
    for torch_block, keras_block in zip((z, r, h), (r, z, h)):  # PyTorch's r, z, n
        np.testing.assert_array_equal(torch["weight_ih_l0"][torch_block], W[:, keras_block].T)
        np.testing.assert_array_equal(torch["weight_hh_l0"][torch_block], U[:, keras_block].T)
        np.testing.assert_array_equal(torch["bias_ih_l0"][torch_block], b[0, keras_block])
        np.testing.assert_array_equal(torch["bias_hh_l0"][torch_block], b[1, keras_block])
    onnx, _ = conventions.export(model, "onnx", ["gru"])
    assert int(onnx["linear_before_reset"]) == 1
    np.testing.assert_array_equal(onnx["B"][0], np.concatenate([b[0], b[1]]))
    W1, U1, b1 = keras_weights(expected("k3_gru.keras"), "gru_1")  # reset_after=False
    tf1, _ = conventions.export(model, "tf1", ["gru_1"])
    u = 4
    z, r, h = (slice(j * u, (j + 1) * u) for j in range(3))
    gates = tf1["rnn/gru_cell/gates/kernel"]  # TF1's r, u (u = Keras's z)
    np.testing.assert_array_equal(gates[:5, :u], W1[:, r])
    np.testing.assert_array_equal(gates[5:, u:], U1[:, z])
    np.testing.assert_array_equal(tf1["rnn/gru_cell/gates/bias"], np.concatenate([b1[r], b1[z]]))
    np.testing.assert_array_equal(tf1["rnn/gru_cell/candidate/kernel"], np.concatenate([W1[:, h], U1[:, h]]))
    np.testing.assert_array_equal(tf1["rnn/gru_cell/candidate/bias"], b1[h])
    onnx1, _ = conventions.export(model, "onnx", ["gru_1"])
    assert int(onnx1["linear_before_reset"]) == 0


def test_tf1_forget_bias_option_and_exactness():
    model = lstmctl.load(sample("k3_lstm_dense.keras"))
    b = keras_weights(expected("k3_lstm_dense.keras"), "lstm")[2]
    for fb in (0.0, 0.5, 1.0, 3.0):
        arrays, _ = conventions.export(model, "tf1", forget_bias=fb)
        np.testing.assert_array_equal(arrays["rnn/lstm_cell/bias"][10:15], b[5:10].astype(np.float64) - fb)
        back = conventions.import_arrays(arrays, "tf1", forget_bias=fb).layer("lstm").cell.bias
        assert back.dtype == np.float32 and np.array_equal(back, b)
    # Importing with another forget_bias than the export's is a different layer, and visibly so.
    arrays, _ = conventions.export(model, "tf1", forget_bias=1.0)
    other = conventions.import_arrays(arrays, "tf1", forget_bias=0.0).layer("lstm").cell.bias
    np.testing.assert_allclose(other[5:10], b[5:10] - 1.0, atol=1e-6)


def test_tf1_float64_bias_loss_is_reported():
    """A float64 model's b − 1.0 is not always exact in float64: export says how much moved."""
    model = lstmctl.load(sample("k3_f64.keras"))
    arrays, notes = conventions.export(model, "tf1", ["lstm"])
    b = keras_weights(expected("k3_f64.keras"), "lstm")[2]
    back = conventions.import_arrays(arrays, "tf1").layer("lstm").cell.bias
    assert back.dtype == np.float64
    moved = back != b
    if moved.any():
        assert any("do not survive" in n for n in notes)
        np.testing.assert_allclose(back, b, rtol=0, atol=1e-15)
    else:
        assert not any("do not survive" in n for n in notes)


def test_bidirectional_and_stack_names():
    model = lstmctl.load(sample("k3_bidir.keras"))
    torch, _ = conventions.export(model, "pytorch", ["bidirectional"])
    assert sorted(torch) == sorted(f"{p}_l0{s}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for s in ("", "_reverse"))
    fw, bw = keras_weights(expected("k3_bidir.keras"), "bidirectional")[:3], keras_weights(expected("k3_bidir.keras"), "bidirectional")[3:]
    np.testing.assert_array_equal(torch["weight_ih_l0_reverse"], bw[0].T)
    np.testing.assert_array_equal(torch["weight_hh_l0"], fw[1].T)
    tf1, _ = conventions.export(model, "tf1", ["bidirectional"])
    assert sorted(tf1) == [f"bidirectional_rnn/{d}/lstm_cell/{v}" for d in ("bw", "fw") for v in ("bias", "kernel")]
    onnx, _ = conventions.export(model, "onnx", ["bidirectional"])
    assert onnx["W"].shape == (2, 16, 4)
    imported = conventions.import_arrays(onnx, "onnx")
    assert [(layer.name, layer.class_name) for layer in imported.layers] == [("input", "InputLayer"), ("lstm", "Bidirectional")]
    stack = lstmctl.load(sample("k3_stack3.keras"))
    tf1, _ = conventions.export(stack, "tf1", ["lstm_a", "lstm_b", "lstm_c"])
    assert sorted(tf1) == [f"rnn/multi_rnn_cell/cell_{k}/lstm_cell/{v}" for k in range(3) for v in ("bias", "kernel")]
    imported = conventions.import_arrays(tf1, "tf1", name="enc")
    assert [layer.name for layer in imported.layers] == ["input", "enc", "enc_1", "enc_2"]
    # the imported stack computes Keras's stack
    exp = expected("k3_stack3.keras")
    result = imported.run(exp["lstm_a/input"])
    for k, keras_name in enumerate(("lstm_a", "lstm_b", "lstm_c")):
        ours = "enc" if k == 0 else f"enc_{k}"
        np.testing.assert_allclose(result[f"{ours}/sequence"], exp[f"{keras_name}/sequence"], atol=1e-5)
        np.testing.assert_allclose(result[f"{ours}/c"], exp[f"{keras_name}/c"], atol=1e-5)


def test_pytorch_stack_of_equal_layers(tmp_path):
    """An nn.LSTM(num_layers=2) state_dict: l0 and l1 become a stack that matches Keras's two layers."""
    model = lstmctl.load(sample("k3_stack3.keras"))
    a = conventions.export(model, "pytorch", ["lstm_a"])[0]
    b = conventions.export(model, "pytorch", ["lstm_b"])[0]
    # lstm_a (6 units) and lstm_b (5) differ in size: that stack is refused for PyTorch
    with pytest.raises(LstmctlError, match="one hidden_size"):
        conventions.export(model, "pytorch", ["lstm_a", "lstm_b"])
    # a state_dict with a module prefix and two stacked layers of different sizes still imports
    state = {f"rnn.{k}": v for k, v in a.items()}
    state.update({f"rnn.{k[:-1]}1": v for k, v in b.items()})
    imported = conventions.import_arrays(state, "pytorch")
    exp = expected("k3_stack3.keras")
    result = imported.run(exp["lstm_a/input"])
    np.testing.assert_allclose(result["lstm_1/sequence"], exp["lstm_b/sequence"], atol=1e-5)
    np.testing.assert_allclose(result["output"], exp["lstm_b/sequence"], atol=1e-5)


# --- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_file, layer, to, message",
    [
        ("k3_gru.keras", "gru_1", "pytorch", "reset_after=False, which torch.nn.GRU cannot compute"),
        ("k3_gru.keras", "gru", "tf1", "reset_after=True, which GRUCell cannot compute"),
        ("k3_options.keras", "lstm", "pytorch", "tanh and hard_sigmoid; refused"),
        ("k3_options.keras", "lstm_1", "pytorch", "elu and sigmoid; refused"),
        ("k3_options.keras", "simple_rnn", "pytorch", "torch.nn.RNN computes tanh or relu, not softsign"),
        ("k3_options.keras", "lstm", "tf1", "always uses sigmoid gates"),
        ("k3_stack3.keras", "lstm_a", "onnx-model", None),
    ],
)
def test_refusals_are_one_line_exit_3(tmp_path, model_file, layer, to, message):
    if message is None:
        pytest.importorskip("onnx", reason="with onnx installed this export succeeds")
    out = tmp_path / "out.npz"
    result = invoke("export", sample(model_file), "--to", to, "--layer", layer, "-o", out)
    if message is None:
        assert result.exit_code == 0
        return
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmctl: error: ") and message in lines[0], lines
    assert not out.exists()


def test_onnx_model_without_onnx_says_how_to_get_it(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_onnx(name, *args, **kw):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    result = invoke("export", sample("k3_lstm_dense.keras"), "--to", "onnx-model", "-o", tmp_path / "m.onnx")
    assert result.exit_code == 3
    assert "pip install 'lstmctl[onnx]'" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_several_layers_need_layer_and_single_layer_conventions_refuse_stacks(tmp_path):
    result = invoke("export", sample("k3_stack3.keras"), "--to", "pytorch", "-o", tmp_path / "x.npz")
    assert result.exit_code == 2 and "choose one with --layer" in result.stderr
    result = invoke("export", sample("k3_stack3.keras"), "--to", "onnx", "--layer", "lstm_a", "--layer", "lstm_b", "-o", tmp_path / "x.npz")
    assert result.exit_code == 3 and "holds one layer" in result.stderr
    result = invoke("export", sample("k3_stack3.keras"), "--to", "tf1", "--layer", "lstm_b", "--layer", "lstm_a", "-o", tmp_path / "x.npz")
    assert result.exit_code == 3 and "give --layer in stack order" in result.stderr
    result = invoke("export", sample("k3_lstm_dense.keras"), "--to", "keras", "--layer", "dense", "-o", tmp_path / "x.npz")
    assert result.exit_code == 3 and "not a recurrent layer" in result.stderr


# --- import errors -------------------------------------------------------------------------------


def _lstm_arrays(to):
    return conventions.export(lstmctl.load(sample("k3_lstm_dense.keras")), to)[0]


@pytest.mark.parametrize(
    "to, edit, message",
    [
        ("keras", lambda a: a.pop("recurrent_kernel"), "no array 'recurrent_kernel'"),
        ("keras", lambda a: a.update(extra=np.zeros(3, np.float32)), "do not belong"),
        ("keras", lambda a: a.update(bias=np.zeros(7, np.float32)), "needs (20,)"),
        ("keras", lambda a: a.update(kernel=np.zeros((4, 15), np.float32)), "disagree"),
        ("pytorch", lambda a: a.pop("bias_hh_l0"), "no array 'bias_hh_l0'"),
        ("pytorch", lambda a: a.update(running_mean=np.zeros(3, np.float32)), "not a torch.nn.LSTM / GRU / RNN state_dict name"),
        ("pytorch", lambda a: a.update(weight_hr_l0=np.zeros((3, 5), np.float32)), "projection"),
        ("pytorch", lambda a: a.update(weight_hh_l0=np.zeros((20, 6), np.float32)), "which is no nn.LSTM"),
        ("tf1", lambda a: a.pop("rnn/lstm_cell/bias"), "no array 'rnn/lstm_cell/bias'"),
        ("tf1", lambda a: a.update({"rnn/lstm_cell/w_f_diag": np.zeros(5, np.float32)}), "peephole"),
        ("tf1", lambda a: a.update({"global_step": np.zeros((), np.float32)}), "not a TF1 cell variable"),
        ("tf1", lambda a: a.update({"rnn/lstm_cell/kernel": np.zeros((9, 18), np.float32)}), "not 4·units"),
        ("onnx", lambda a: a.pop("R"), "no array 'R'"),
        ("onnx", lambda a: a.update(P=np.zeros((1, 15), np.float32)), "peephole"),
        ("onnx", lambda a: a.update(B=np.zeros((1, 20), np.float32)), "needs [1, 40]"),
        ("onnx", lambda a: a.update(W=a["W"].astype(np.int32)), "not floating-point"),
        ("onnx", lambda a: a.update(linear_before_reset=np.array(1)), "belongs to a GRU"),
    ],
)
def test_ambiguous_or_broken_imports_are_refused(tmp_path, to, edit, message):
    arrays = _lstm_arrays(to)
    edit(arrays)
    with pytest.raises(LstmctlError) as info:
        conventions.import_arrays(arrays, to, "w.npz")
    assert message in str(info.value)
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    result = invoke("inspect", path, "--convention", to)
    assert result.exit_code == 3 and len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_onnx_gru_needs_linear_before_reset_and_keras_gru_without_bias_needs_reset_after():
    arrays = conventions.export(lstmctl.load(sample("k3_gru.keras")), "onnx", ["gru"])[0]
    del arrays["linear_before_reset"]
    with pytest.raises(LstmctlError, match="linear_before_reset"):
        conventions.import_arrays(arrays, "onnx")
    keras = conventions.export(lstmctl.load(sample("k3_gru.keras")), "keras", ["gru"])[0]
    del keras["bias"]
    with pytest.raises(LstmctlError, match="reset_after"):
        conventions.import_arrays(keras, "keras")
    keras["reset_after"] = np.array(1)
    assert conventions.import_arrays(keras, "keras").layer("gru").cell.reset_after


def test_npz_without_convention_says_to_pass_it(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **_lstm_arrays("pytorch"))
    for command in ("inspect", "run", "gates", "trace"):
        result = invoke(command, path)
        assert result.exit_code == 2, (command, result.output)
        assert "pass --convention keras|pytorch|tf1|onnx" in result.stderr
    with pytest.raises(UsageError, match="--convention"):
        lstmctl.load(path)
    result = invoke("inspect", sample("k3_lstm_dense.keras"), "--convention", "keras")
    assert result.exit_code == 2 and "is a .keras model" in result.stderr
    result = invoke("inspect", sample("k2_lstm_dense.h5"), "--convention", "keras")
    assert result.exit_code == 2 and "HDF5" in result.stderr
    result = invoke("inspect", sample("k3_lstm_dense.keras"), "--activation", "relu")
    assert result.exit_code == 2 and "--activation: a what-if for run, trace and diagnose, or with --convention" in result.stderr
    result = invoke("inspect", path, "--convention", "pytorch", "--forget-bias", "2")
    assert result.exit_code == 2 and "tf1 only" in result.stderr


# --- the CLI over the library ------------------------------------------------------------------------


def test_cli_export_chain_keras_to_tf1_to_pytorch_to_onnx_to_keras(tmp_path):
    """A Keras layer through every convention, converted npz to npz by the CLI, comes back bit-exact."""
    src = sample("k3_lstm_dense.keras")
    tf1, torch, onnx, keras = (tmp_path / f"{n}.npz" for n in ("tf1", "torch", "onnx", "keras"))
    result = invoke("export", src, "--to", "tf1", "--forget-bias", "0.25", "-o", tf1)
    assert result.exit_code == 0 and result.stdout == ""
    assert "lstmctl: note: TF1 adds forget_bias=0.25" in result.stderr
    assert invoke("export", tf1, "--convention", "tf1", "--forget-bias", "0.25", "--to", "pytorch", "-o", torch).exit_code == 0
    assert invoke("export", torch, "--convention", "pytorch", "--to", "onnx", "-o", onnx).exit_code == 0
    assert invoke("export", onnx, "--convention", "onnx", "--to", "keras", "-o", keras).exit_code == 0
    with np.load(keras) as back:
        for got, want in zip((back["kernel"], back["recurrent_kernel"], back["bias"]), keras_weights(expected("k3_lstm_dense.keras"), "lstm")):
            assert got.dtype == want.dtype and np.array_equal(got, want)


def test_cli_commands_read_imported_layers(tmp_path):
    exp = expected("k3_lstm_dense.keras")
    weights, x = tmp_path / "w.npz", tmp_path / "x.npy"
    assert invoke("export", sample("k3_lstm_dense.keras"), "--to", "pytorch", "-o", weights).exit_code == 0
    np.save(x, exp["lstm/input"])
    result = invoke("run", weights, "--convention", "pytorch", "--name", "enc", "--input", x, "--format", "npz", "-o", tmp_path / "r.npz")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "r.npz") as r:
        assert sorted(r.files) == ["enc/c", "enc/h", "enc/sequence", "output"]
        np.testing.assert_allclose(r["output"], exp["lstm/sequence"], atol=1e-5)
        np.testing.assert_allclose(r["enc/c"], exp["lstm/c"], atol=1e-5)
    result = invoke("trace", weights, "--convention", "pytorch", "--input", x, "--sample", "2", "--format", "npz", "-o", tmp_path / "t.npz")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "t.npz") as t:
        np.testing.assert_allclose(t["lstm/h"], exp["lstm/sequence"][2], atol=1e-5)
    np.save(tmp_path / "mine.npy", exp["lstm/sequence"][0])
    result = invoke("diagnose", weights, "--convention", "pytorch", "--input", x, "--outputs", tmp_path / "mine.npy", "--format", "json")
    assert result.exit_code == 0, result.output
    result = invoke("gates", weights, "--convention", "pytorch", "--gate", "f", "--part", "b", "--format", "json")
    assert result.exit_code == 0
    import json

    np.testing.assert_allclose(json.loads(result.stdout)["lstm/b_f"], keras_weights(exp, "lstm")[2][5:10], atol=0)
    result = invoke("inspect", weights, "--convention", "pytorch", "--format", "json")
    facts = json.loads(result.stdout)
    assert facts["format"] == "npz-pytorch" and facts["keras_version"] is None
    assert [layer["name"] for layer in facts["layers"]] == ["input", "lstm"]
    assert facts["layers"][1]["recurrent"]["return_sequences"] is True


def test_activation_options_and_hard_sigmoid_form(tmp_path):
    """k2_options' LSTM (hard_sigmoid gates, no bias, go_backwards) through ONNX, both hard_sigmoid forms."""
    for name, form in (("k2_options.h5", "keras2"), ("k3_options.keras", "keras3")):
        model = lstmctl.load(sample(name))
        arrays, notes = conventions.export(model, "onnx", ["lstm"])
        assert any(f"--recurrent-activation hard_sigmoid --hard-sigmoid {form}" in n for n in notes)
        assert any("go_backwards=True" in n for n in notes)
        exp = expected(name)
        x = exp["lstm/input"][:, ::-1]
        right = conventions.import_arrays(arrays, "onnx", recurrent_activation="hard_sigmoid", hard_sigmoid=form).run(x)
        np.testing.assert_allclose(right["output"], exp["lstm/sequence"], atol=1e-5)
        other = "keras3" if form == "keras2" else "keras2"
        wrong = conventions.import_arrays(arrays, "onnx", recurrent_activation="hard_sigmoid", hard_sigmoid=other).run(x)
        assert np.abs(wrong["output"] - exp["lstm/sequence"]).max() > 1e-3
    with pytest.raises(UsageError, match="not a Keras activation"):
        conventions.import_arrays(arrays, "onnx", activation="frobnicate")
    with pytest.raises(UsageError, match="other than 'input'"):
        conventions.import_arrays(arrays, "onnx", name="input")
    with pytest.raises(UsageError, match="no recurrent activation"):
        conventions.import_arrays(conventions.export(lstmctl.load(sample("k3_simplernn.keras")), "onnx", ["simple_rnn"])[0], "onnx", recurrent_activation="sigmoid")


# --- the conventions page (docs/conventions.md) ---------------------------------------------------


def _docs_block(lang: str, first_line_contains: str) -> str:
    """The first ```lang block of docs/conventions.md whose first line contains the text."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "conventions.md").read_text()
    for block in re.findall(rf"```{lang}\n(.*?)```", text, re.S):
        if first_line_contains in block.splitlines()[0]:
            return block
    raise AssertionError(f"no ```{lang} block starting with {first_line_contains!r} in docs/conventions.md")


def test_documented_export_notes_are_what_export_prints(tmp_path, monkeypatch):
    import shlex
    from pathlib import Path

    block = _docs_block("text", "$ lstmctl export")
    command, *shown = block.splitlines()
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "sample_models").symlink_to(root / "sample_models")
    monkeypatch.chdir(tmp_path)
    result = invoke(*shlex.split(command[2:])[1:])
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.splitlines() == shown
    assert (tmp_path / "lstm_torch.npz").exists()
