"""lstmctl against what Keras itself computed for every shipped sample (atol 1e-5)."""

import numpy as np
import pytest

import lstmctl
from conftest import MANIFEST, expected, keras_inputs, keras_results, keras_weights, sample

FULL_MODELS = [m["file"] for m in MANIFEST if m["format"] != "hdf5-weights"]
WEIGHTS_ONLY = ["k3_lstm_dense.weights.h5", "k2_lstm_dense_weights.h5"]


def _keras_order(layer):
    """A layer's arrays in Keras's get_weights() order, as lstmctl holds them (converted layouts included)."""
    cells = [layer.cell] if layer.kind == "recurrent" else [layer.forward.cell, layer.backward.cell] if layer.kind == "bidirectional" else []
    if not cells:
        return layer.weights
    return [a for c in cells for a in (c.W, c.U, c.bias) if a is not None]


@pytest.mark.parametrize("name", FULL_MODELS)
def test_forward_pass_matches_keras(name):
    exp = expected(name)
    result = lstmctl.load(sample(name)).run(keras_inputs(exp))
    want = keras_results(exp)
    assert want, "the sample stores Keras outputs"
    for key, value in want.items():
        assert key in result, key
        got = result[key]
        assert got.shape == value.shape, key
        assert got.dtype == value.dtype, key
        np.testing.assert_allclose(got, value, rtol=0, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("name", [m["file"] for m in MANIFEST])
def test_weights_equal_keras_get_weights(name):
    exp = expected(name)
    model = lstmctl.load(sample(name))
    layers = sorted({k.split("/")[1] for k in exp if k.startswith("weights/")})
    assert layers
    for layer_name in layers:
        want = keras_weights(exp, layer_name)
        got = _keras_order(model.layer(layer_name))
        assert len(got) == len(want), layer_name
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-6, err_msg=layer_name)


def test_public_vector_1_keras2_hard_sigmoid():
    """CONVENTIONS.md vector 1, saved by real tf_keras."""
    model = lstmctl.load(sample("k2_vector1.h5"))
    x = np.array([0.1, 0.2, 0.3, 0.1, 0.2, 0.3], dtype=np.float32).reshape(1, 3, 2)
    result = model.run(x)
    np.testing.assert_allclose(result["output"][0, :, 0], [0.00767819, 0.01597687, 0.02480672], atol=1e-7)
    np.testing.assert_allclose(result["lstm/h"][0, 0], 0.02480672, atol=1e-7)
    np.testing.assert_allclose(result["lstm/c"][0, 0], 0.04864851, atol=1e-7)


def test_last_row_of_sequence_is_h_and_states_match_keras_names():
    exp = expected("k3_encdec.keras")
    result = lstmctl.load(sample("k3_encdec.keras")).run(keras_inputs(exp))
    np.testing.assert_array_equal(result["encoder/sequence"][:, -1], result["encoder/h"])
    # the model's second output is the encoder's final memory state h_T, which seeds the decoder
    np.testing.assert_allclose(result["output_1"], exp["encoder/h"], atol=1e-6)


@pytest.mark.parametrize("name", WEIGHTS_ONLY)
def test_weights_only_layer_runs_directly(name):
    """No config: the LSTM is inferred from shapes and run on the model input fed to it directly."""
    exp = expected(name)
    model = lstmctl.load(sample(name))
    layer = model.layer("lstm")
    assert layer.class_name == "LSTM" and layer.cell.units == 5
    assert any("inferred" in n for n in layer.notes)
    (x,) = keras_inputs(exp).values()
    result = lstmctl.runner.run_layer(model, "lstm", x)
    for key in ("lstm/sequence", "lstm/h", "lstm/c"):
        np.testing.assert_allclose(result[key], exp[key], atol=1e-5, err_msg=key)


def test_float64_model_computes_in_float64():
    exp = expected("k3_f64.keras")
    result = lstmctl.load(sample("k3_f64.keras")).run(keras_inputs(exp))
    assert result["output"].dtype == np.float64
    np.testing.assert_allclose(result["output"], exp["output"], atol=1e-12)


def test_dtype_override_float64_stays_close_to_keras_float32():
    exp = expected("k3_stack3.keras")
    result = lstmctl.load(sample("k3_stack3.keras")).run(keras_inputs(exp), dtype="float64")
    assert result["output"].dtype == np.float64
    np.testing.assert_allclose(result["output"], exp["output"], atol=1e-5)


def test_initial_state_override_changes_only_that_layer():
    exp = expected("k3_lstm_dense.keras")
    model = lstmctl.load(sample("k3_lstm_dense.keras"))
    x = keras_inputs(exp)
    zeros = [np.zeros((x["input_layer"].shape[0], 5), np.float32)] * 2
    same = model.run(x, initial_state=zeros, layer="lstm")
    np.testing.assert_allclose(same["lstm/h"], exp["lstm/h"], atol=1e-6)
    ones = [np.ones_like(zeros[0]), np.ones_like(zeros[0])]
    moved = model.run(x, initial_state=ones, layer="lstm")
    assert np.abs(moved["lstm/h"] - exp["lstm/h"]).max() > 1e-3


def test_direct_layer_run_past_an_unsupported_layer(tmp_path):
    """k3_conv: the LSTM fed its input (as Keras computed it) directly, past the Conv1D."""
    from click.testing import CliRunner

    from lstmctl.cli import main

    exp = expected("k3_conv.keras")
    np.save(tmp_path / "x.npy", exp["lstm/input"])
    out = tmp_path / "r.npz"
    result = CliRunner().invoke(main, ["run", sample("k3_conv.keras"), "--layer", "lstm", "--direct", "--input", str(tmp_path / "x.npy"), "--format", "npz", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as got:
        for key in ("lstm/sequence", "lstm/h", "lstm/c"):
            np.testing.assert_allclose(got[key], exp[key], atol=1e-5, err_msg=key)
        np.testing.assert_allclose(got["output"], exp["lstm/h"], atol=1e-5)  # LSTM(3) returns h_T


def test_masked_bidirectional_zeroes_masked_outputs():
    """Keras forces zero outputs at masked steps inside a Bidirectional that returns sequences."""
    exp = expected("k3_bidir_masked.keras")
    x = keras_inputs(exp)["input_layer"]
    result = lstmctl.load(sample("k3_bidir_masked.keras")).run(x)
    masked = ~np.any(x != 0, axis=-1)
    assert masked.any()
    assert np.all(exp["bidirectional/sequence"][masked] == 0)
    np.testing.assert_allclose(result["bidirectional/sequence"], exp["bidirectional/sequence"], atol=1e-5)
