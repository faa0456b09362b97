"""Convolutions, pooling and ConvLSTM: config errors refused at load naming the layer, the CLI on a
ConvLSTM fixture (inspect, gates, run, trace) against Keras's values, and the bounds that keep a
window's cost tied to the input. Every value compared comes from Keras (sample_models/conv and
sample_models/layers); tests/test_layers.py checks every fixture value by value."""

import json
import re
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from lstmctl import fastpath
from lstmctl.cli import main
from lstmctl.errors import LstmctlError
from lstmctl.layers.convolution import Window, convolve
from lstmctl.layers.pooling import average_pool, max_pool
from conftest import expected, sample

CONVLSTM = "conv/k3_convlstm_options.keras"  # ConvLSTM2D/1D/3D, Bidirectional, initial_state, go_backwards
CONV2D = "conv/k3_conv2d.keras"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _rewrite(src, dst, layer, **changes):
    """A copy of a .keras file with keys of one layer's config changed (None deletes the key)."""
    with zipfile.ZipFile(sample(src)) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                entry = next(e for e in config["config"]["layers"] if e["config"].get("name") == layer)
                inner = entry["config"].get("layer", {}).get("config") if entry["class_name"] == "Bidirectional" else None
                target = inner if inner is not None else entry["config"]
                for key, value in changes.items():
                    if value is None:
                        target.pop(key, None)
                    else:
                        target[key] = value
                data = json.dumps(config).encode()
            zout.writestr(item, data)
    return dst


@pytest.mark.parametrize(
    "src, layer, changes, message",
    [
        (CONV2D, "conv_same_s2", {"padding": "foo"}, "padding 'foo'"),
        (CONV2D, "conv_same_s2", {"strides": [0, 1]}, "strides"),
        (CONV2D, "conv_same_s2", {"kernel_size": [5, 5]}, "kernel has shape (3, 3, 4, 4)"),
        (CONV2D, "conv_same_s2", {"filters": 5}, "kernel has shape"),
        (CONV2D, "conv_valid_d21", {"strides": [2, 2]}, "both above 1"),
        (CONV2D, "conv_groups2", {"groups": 4}, "filters 6 is not a multiple of groups 4"),
        (CONV2D, "conv_same_s2", {"data_format": "channels_middle"}, "data_format"),
        (CONV2D, "conv_same_s2", {"activation": "my_act"}, "activation 'my_act'"),
        (CONV2D, "dw_valid_dm2", {"depth_multiplier": 3}, "depthwise_kernel has shape"),
        (CONV2D, "sep_same_s2", {"filters": 4}, "pointwise_kernel has shape"),
        (CONV2D, "conv_same_s2", {"use_bias": False}, "should hold 1 weight arrays, found 2"),
        (CONVLSTM, "convlstm_back", {"padding": "causal"}, "padding 'causal'"),
        (CONVLSTM, "convlstm_back", {"filters": 4}, "kernel has shape (3, 3, 2, 12)"),
        (CONVLSTM, "convlstm_back", {"kernel_size": [3, 2]}, "kernel has shape"),
        (CONVLSTM, "convlstm_back", {"strides": 0}, "strides"),
        (CONVLSTM, "convlstm_back", {"data_format": "NCHW"}, "data_format 'nchw'"),
        (CONVLSTM, "convlstm_back", {"filters": None}, "filters"),
        (CONVLSTM, "convlstm_back", {"recurrent_activation": 3}, "recurrent_activation 3"),
        (CONVLSTM, "bidir_sum", {"dilation_rate": [0]}, "dilation_rate"),
    ],
)
def test_config_errors_name_the_layer(tmp_path, src, layer, changes, message):
    bad = _rewrite(src, tmp_path / "bad.keras", layer, **changes)
    with pytest.raises(LstmctlError) as err:
        lstmctl.load(bad)
    assert f"layer '{layer}" in str(err.value) and message in str(err.value), str(err.value)  # a Bidirectional's half: 'L/forward'
    result = invoke("inspect", bad)
    assert result.exit_code == 3 and layer in result.output


@pytest.mark.parametrize(
    "layer, changes, message",
    [
        ("max2d_cf", {"pool_size": [0, 2]}, "pool_size"),
        ("max2d_cf", {"padding": "full"}, "padding 'full'"),
        ("max2d_cf", {"strides": [1, 1, 1]}, "strides"),
        ("max2d_cf", {"border_mode": "same"}, "Keras 1 config (border_mode)"),  # same class name, other keys
        ("gap2d_cf", {"keepdims": "yes"}, "keepdims"),
    ],
)
def test_pooling_config_errors(tmp_path, layer, changes, message):
    bad = _rewrite("conv/k3_channels_first_pooling.keras", tmp_path / "bad.keras", layer, **changes)
    with pytest.raises(LstmctlError, match=f"layer '{layer}'.*{re.escape(message)}"):
        lstmctl.load(bad)


def test_input_too_small_for_the_window_is_refused():
    with pytest.raises(LstmctlError, match="layer 'c'.*does not fit the input's spatial shape"):
        convolve(np.zeros((1, 2, 3), np.float32), np.zeros((3, 3, 1), np.float32), Window((3,), (1,), (1,), "valid"), where="layer 'c'")


def test_window_cost_is_bounded_by_the_input():
    """A dilation or pool size far beyond the input only meets it at a few offsets: no padding is
    built and the loop walks the offsets that reach the input (here a dilated kernel's centre tap)."""
    x = np.arange(20, dtype=np.float32).reshape(1, 10, 2)
    kernel = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    y = convolve(x, kernel, Window((3,), (1,), (1 << 20,), "same"))
    np.testing.assert_array_equal(y, x @ kernel[1])
    huge = Window((1 << 20, 1 << 20), (1, 1), (1, 1), "same")
    img = np.arange(24, dtype=np.float32).reshape(1, 4, 3, 2)
    np.testing.assert_array_equal(max_pool(img, huge, "pool"), np.broadcast_to(img.max(axis=(1, 2), keepdims=True), img.shape))
    np.testing.assert_allclose(average_pool(img, huge, "pool"), np.broadcast_to(img.mean(axis=(1, 2), keepdims=True), img.shape), rtol=1e-6)


def test_convlstm_cell_has_no_fast_path():
    cell = lstmctl.load(sample(CONVLSTM)).layer("convlstm_state").cell
    assert cell.activation_name == "tanh" and cell.recurrent_activation_name == "sigmoid"
    assert not fastpath.supported(cell)


def _inputs(tmp_path, name):
    exp = expected(name)
    path = tmp_path / "inputs.npz"
    np.savez(path, **{k.split("/", 1)[1]: v for k, v in exp.items() if k.startswith("input/")})
    return exp, path


def test_cli_inspect_shows_convlstm_gates():
    result = invoke("inspect", sample(CONVLSTM), "--format", "json")
    assert result.exit_code == 0, result.output
    layers = {layer["name"]: layer for layer in json.loads(result.output)["layers"]}
    rec = layers["convlstm_state"]["recurrent"]
    assert rec["filters"] == 2 and rec["kernel_size"] == [3, 2] and rec["strides"] == [2, 1] and rec["padding"] == "same"
    assert rec["kernel_shape"] == [3, 2, 3, 8] and rec["recurrent_kernel_shape"] == [3, 2, 2, 8]
    assert [g["gate"] for g in rec["gates"]] == ["i", "f", "c", "o"] and rec["gates"][1]["columns"] == [2, 4]
    assert rec["gates"][0]["W"]["shape"] == [3, 2, 3, 2] and rec["gates"][0]["U"]["shape"] == [3, 2, 2, 2]
    # what a call returns keeps the spatial axes: strides (2, 1) on 6x6 frames give 3x6
    assert [r["shape"] for r in rec["returns"]] == [[None, 3, 6, 2]] * 3
    assert layers["convlstm_back"]["recurrent"]["activation"] == "softsign"
    assert layers["convlstm_from_state"]["recurrent"]["recurrent_activation"] == "hard_sigmoid"
    assert "hard_sigmoid" in layers["convlstm_from_state"]["recurrent"]
    bidir = layers["bidir_sum"]["recurrent"]["directions"]["backward"]
    assert bidir["go_backwards"] is True and bidir["dilation_rate"] == [2]
    table = invoke("inspect", sample(CONVLSTM))
    assert table.exit_code == 0 and "[..., 2:4]" in table.output


def test_cli_gates_json_are_keras_weight_slices():
    result = invoke("gates", sample(CONVLSTM), "--format", "json", "--layer", "convlstm_state")
    assert result.exit_code == 0
    gates = {k: np.asarray(v) for k, v in json.loads(result.output).items()}
    exp = expected(CONVLSTM)
    kernel, recurrent, bias = (exp[f"weights/convlstm_state/{k}"] for k in range(3))
    for j, g in enumerate("ifco"):
        cols = slice(2 * j, 2 * j + 2)
        np.testing.assert_array_equal(gates[f"convlstm_state/W_{g}"], kernel[..., cols])
        np.testing.assert_array_equal(gates[f"convlstm_state/U_{g}"], recurrent[..., cols])
        np.testing.assert_array_equal(gates[f"convlstm_state/b_{g}"], bias[cols])
    assert gates["convlstm_state/W_i"].shape == (3, 2, 3, 2)  # (*kernel_size, in, filters)


def test_cli_run_json_matches_keras(tmp_path):
    exp, inputs = _inputs(tmp_path, CONVLSTM)
    result = invoke("run", sample(CONVLSTM), "--input", inputs, "--format", "json", "--layer", "convlstm_state", "--return-sequences", "--return-state")
    assert result.exit_code == 0, result.output
    got = {k: np.asarray(v) for k, v in json.loads(result.output).items()}
    for key in ("convlstm_state/sequence", "convlstm_state/h", "convlstm_state/c"):
        assert got[key].shape == exp[key].shape
        np.testing.assert_allclose(got[key], exp[key], atol=1e-5, err_msg=key)
    assert got["convlstm_state/h"].shape == (3, 3, 6, 2)  # (batch, *spatial, filters)


def test_cli_trace_convlstm_averages_positions(tmp_path):
    exp, inputs = _inputs(tmp_path, CONVLSTM)
    out = tmp_path / "trace.json"
    result = invoke("trace", sample(CONVLSTM), "--input", inputs, "--layer", "convlstm_back", "--sample", "1", "--format", "json", "-o", out)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    seq = exp["convlstm_back/sequence"][1]  # (time, 6, 6, filters), reversed time: go_backwards
    np.testing.assert_allclose(doc["convlstm_back/h"], seq.mean(axis=(1, 2)), atol=1e-6)
    assert doc["time_index"]["convlstm_back"] == [4, 3, 2, 1, 0]
    for g in "ifco":
        assert np.asarray(doc[f"convlstm_back/gate_{g}"]).shape == (5, 3)
    assert 0 < np.min(doc["convlstm_back/gate_f"]) and np.max(doc["convlstm_back/gate_f"]) < 1
    table = invoke("trace", sample(CONVLSTM), "--input", inputs, "--layer", "bidir_sum")
    text = " ".join(table.output.split())  # as printed, wrapped
    assert table.exit_code == 0 and "ConvLSTM1D: units are filters" in text and "mean over the 3 spatial positions" in text


def test_cli_direct_run_of_a_convlstm(tmp_path):
    exp = expected(CONVLSTM)
    np.save(tmp_path / "x.npy", exp["convlstm_state/input"])
    result = invoke("run", sample(CONVLSTM), "--layer", "convlstm_state", "--direct", "--input", tmp_path / "x.npy", "--format", "json")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(json.loads(result.output)["convlstm_state/h"], exp["convlstm_state/h"], atol=1e-5)


@pytest.mark.parametrize("command", [["export", "--to", "onnx", "-o", "x.npz"], ["export", "--to", "keras", "-o", "x.npz"]])
def test_conventions_refuse_a_convlstm(tmp_path, command):
    result = invoke(command[0], sample(CONVLSTM), "--layer", "convlstm_back", *command[1:-1], tmp_path / command[-1])
    assert result.exit_code == 3 and "convolves" in result.output


def test_initial_state_shape_is_the_spatial_state(tmp_path):
    exp = expected(CONVLSTM)
    model = lstmctl.load(sample(CONVLSTM))
    inputs = {k.split("/", 1)[1]: v for k, v in exp.items() if k.startswith("input/")}
    h, c = exp["convlstm_from_state/initial_state/0"], exp["convlstm_from_state/initial_state/1"]
    same = model.run(inputs, initial_state=[h, c], layer="convlstm_from_state")
    np.testing.assert_allclose(same["convlstm_from_state/sequence"], exp["convlstm_from_state/sequence"], atol=1e-5)
    with pytest.raises(LstmctlError, match=r"initial state h must have shape \(3, 3, 6, 2\)"):
        model.run(inputs, initial_state=[h[:, :2], c], layer="convlstm_from_state")


def test_inspect_panel_shows_the_convolution_of_a_convlstm():
    from click.testing import CliRunner

    from lstmctl.cli import main

    result = CliRunner().invoke(main, ["inspect", sample("layers/k3_convlstm2d.keras"), "--layer", "convlstm2d_s2"])
    assert result.exit_code == 0, result.output
    assert "filters 2, kernel_size (2, 2), strides (2, 2), padding valid, dilation_rate (1, 1), channels_last" in result.output
    assert "recurrent convolution: padding same, stride 1" in result.output
