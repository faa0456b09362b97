"""`lstmctl inspect` and `lstmctl gates`, against the arrays Keras's get_weights() returned."""

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from lstmctl.cli import main
from conftest import MANIFEST, expected, keras_weights, sample


def invoke(*args, **kw):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kw)
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("name", [m["file"] for m in MANIFEST])
def test_inspect_every_sample(name):
    result = invoke("inspect", sample(name))
    assert result.exit_code == 0, result.output
    assert "lstmctl inspect" in result.output


def test_inspect_json_lstm_gates_are_keras_slices():
    result = invoke("inspect", sample("k3_lstm_dense.keras"), "--format", "json")
    assert result.exit_code == 0
    facts = json.loads(result.output)
    assert facts["format"] == "keras-zip"
    assert facts["keras_version"] == "3.15.1"
    (lstm,) = [layer for layer in facts["layers"] if layer["name"] == "lstm"]
    assert lstm["class_name"] == "LSTM"
    rec = lstm["recurrent"]
    assert rec["units"] == 5 and rec["input_dim"] == 4
    kernel, recurrent, bias = keras_weights(expected("k3_lstm_dense.keras"), "lstm")
    gates = {row["gate"]: row for row in rec["gates"]}
    assert list(gates) == ["i", "f", "c", "o"]
    for j, g in enumerate("ifco"):
        cols = slice(5 * j, 5 * (j + 1))
        assert gates[g]["columns"] == [5 * j, 5 * (j + 1)]
        assert gates[g]["W"]["shape"] == [4, 5] and gates[g]["U"]["shape"] == [5, 5] and gates[g]["b"]["shape"] == [5]
        assert gates[g]["W"]["mean"] == pytest.approx(float(kernel[:, cols].astype(np.float64).mean()), abs=1e-9)
        assert gates[g]["U"]["max"] == pytest.approx(float(recurrent[:, cols].max()), abs=1e-9)
        assert gates[g]["b"]["norm"] == pytest.approx(float(np.linalg.norm(bias[cols].astype(np.float64))), abs=1e-6)
    assert rec["forget_bias"]["mean"] == pytest.approx(float(bias[5:10].astype(np.float64).mean()), abs=1e-9)
    assert lstm["params"] == kernel.size + recurrent.size + bias.size
    assert lstm["input_shapes"] == [[None, 6, 4]] and lstm["output_shapes"] == [[None, 5]]
    assert [r["keras"] for r in rec["returns"]] == ["output"]


def test_inspect_encoder_decoder_wiring_and_returns():
    facts = json.loads(invoke("inspect", sample("k3_encdec.keras"), "--format", "json").output)
    layers = {layer["name"]: layer for layer in facts["layers"]}
    assert layers["decoder"]["inbound"] == ["decoder_input"]
    assert layers["decoder"]["initial_state_from"] == ["encoder[1]", "encoder[2]"]
    returns = layers["encoder"]["recurrent"]["returns"]
    assert [(r["keras"], r["math"].split(" ")[0]) for r in returns] == [
        ("output", "h_T"), ("final_memory_state", "h_T"), ("final_carry_state", "c_T")
    ]
    assert [m["name"] for m in facts["model"]["inputs"]] == ["encoder_input", "decoder_input"]


def test_inspect_keras2_legacy_h5_hard_sigmoid_form():
    facts = json.loads(invoke("inspect", sample("k2_vector1.h5"), "--format", "json").output)
    assert facts["format"] == "hdf5-model" and facts["keras_version"] == "2.21.0"
    (lstm,) = [layer for layer in facts["layers"] if layer["class_name"] == "LSTM"]
    assert lstm["recurrent"]["recurrent_activation"] == "hard_sigmoid"
    assert "0.2" in lstm["recurrent"]["hard_sigmoid"]
    assert lstm["recurrent"]["forget_bias"]["mean"] == pytest.approx(1.0)


def test_inspect_gru_reset_after_has_recurrent_bias():
    facts = json.loads(invoke("inspect", sample("k3_gru.keras"), "--format", "json").output)
    rec = {layer["name"]: layer["recurrent"] for layer in facts["layers"] if "recurrent" in layer}
    first, second = rec.values()
    assert first["reset_after"] is True and [g["gate"] for g in first["gates"]] == ["z", "r", "h"]
    assert "rb" in first["gates"][0] and first["bias_shape"] == [2, 15]
    assert second["reset_after"] is False and "rb" not in second["gates"][0]


def test_inspect_opaque_layer_listed_not_decoded(tmp_path):
    from test_errors import custom_conv

    facts = json.loads(invoke("inspect", custom_conv(sample("k3_conv.keras"), tmp_path / "custom.keras"), "--format", "json").output)
    conv = [layer for layer in facts["layers"] if layer["class_name"] == "Conv1D"][0]
    assert conv["kind"] == "opaque" and conv["params"] > 0
    assert "recurrent" in [layer for layer in facts["layers"] if layer["class_name"] == "LSTM"][0]


def test_inspect_weights_only_says_what_was_inferred():
    result = invoke("inspect", sample("k3_lstm_dense.weights.h5"))
    assert result.exit_code == 0
    assert "weights-only" in result.output and "inferred LSTM(5)" in result.output


def test_inspect_layer_and_gate_print_full_matrix():
    result = invoke("inspect", sample("k3_lstm_dense.keras"), "--layer", "lstm", "--gate", "f", "--format", "json")
    facts = json.loads(result.output)
    assert [layer["name"] for layer in facts["layers"]] == ["lstm"]
    kernel, recurrent, bias = keras_weights(expected("k3_lstm_dense.keras"), "lstm")
    np.testing.assert_allclose(facts["gate_arrays"]["lstm/W_f"], kernel[:, 5:10], atol=1e-7)
    np.testing.assert_allclose(facts["gate_arrays"]["lstm/b_f"], bias[5:10], atol=1e-7)
    table = invoke("inspect", sample("k3_lstm_dense.keras"), "--layer", "lstm", "--gate", "f")
    assert "lstm/U_f (5, 5)" in table.output


def test_gates_npz_contract_every_kind(tmp_path):
    out = tmp_path / "g.npz"
    assert invoke("gates", sample("k3_bidir.keras"), "--output", out).exit_code == 0
    with np.load(out) as data:
        keys = set(data.files)
        exp = expected("k3_bidir.keras")
        fwd = keras_weights(exp, "bidirectional")[:3]
        np.testing.assert_array_equal(data["bidirectional/forward/W_f"], fwd[0][:, 4:8])
        np.testing.assert_array_equal(data["bidirectional/forward/U_o"], fwd[1][:, 12:16])
    assert {"bidirectional/backward/b_c", "bidirectional_1/forward/rb_z"} <= keys
    simple = lstmctl.load(sample("k3_simplernn.keras")).gates()
    assert {"simple_rnn/W", "simple_rnn/U", "simple_rnn/b"} <= set(simple)


def test_gates_stream_one_matrix_as_npy():
    result = CliRunner().invoke(main, ["gates", sample("k2_lstm_dense.h5"), "--layer", "lstm", "--gate", "f", "--part", "U", "--format", "npy"])
    assert result.exit_code == 0
    array = np.load(io.BytesIO(result.stdout_bytes), allow_pickle=False)
    recurrent = keras_weights(expected("k2_lstm_dense.h5"), "lstm")[1]
    np.testing.assert_array_equal(array, recurrent[:, 5:10])


def test_nested_model_layers_are_reachable():
    model = lstmctl.load(sample("k2_nested.h5"))
    assert model.layer("inner_lstm").cell.units == 5
    assert [layer.name for layer in model.recurrent_layers()] == ["inner_lstm", "outer_gru"]
