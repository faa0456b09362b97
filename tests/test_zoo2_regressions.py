"""Regression files for four kinds of real-world file lstmctl mishandled (found by the zoo2 tier),
each made by real Keras in the shape of the zoo2 file (tests/zoo2/make_regressions.py), with
what Keras computed beside it. These run everywhere; no zoo2 files are needed.

At 9f7c0ce every test here that reads a fixture with lstmctl failed (Embedding "dtype": "int32":
"compute dtype int32 is not supported"; a float32 input feeding an Embedding: "Embedding needs
integer token ids, got non-integral floats" in inspect and run's random input; Keras 1
save_weights and Windows .weights.h5: "no recurrent layers"); by e531c08 all but the int32 ids
fed to a float32-declared input pass, which stays xfail(strict=True) with today's error: a fix turns it
into an XPASS failure, and then the mark is removed.
"""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from lstmctl.cli import main
from lstmctl.analysis.describe import inspect_facts
from lstmctl.errors import LstmctlError
from lstmctl.runner import run_layer

HERE = Path(__file__).resolve().parent / "zoo2" / "regressions"
GATES = {"lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h")}


def path(name):
    return str(HERE / name)


def expected(name):
    with np.load(HERE / f"{name}.expected.npz") as data:
        return dict(data)


def keras_gates(exp, layer, kind):
    W, U, b = (exp[f"weights/{layer}/{k}"] for k in range(3))
    units = U.shape[0]
    out = {}
    for j, g in enumerate(GATES[kind]):
        cols = slice(j * units, (j + 1) * units)
        out[f"{layer}/W_{g}"], out[f"{layer}/U_{g}"] = W[:, cols], U[:, cols]
        if b.ndim == 2:
            out[f"{layer}/b_{g}"], out[f"{layer}/rb_{g}"] = b[0, cols], b[1, cols]
        else:
            out[f"{layer}/b_{g}"] = b[cols]
    return out


def assert_gates(model, exp, layers):
    want = {}
    for layer, kind in layers:
        want.update(keras_gates(exp, layer, kind))
    got = model.gates()
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=0, atol=1e-7, err_msg=key)


def assert_matches(result, exp, prefix="rnn/"):
    want = {"output": exp["output"]} if "output" in exp else {}
    want.update({k[len(prefix) :]: v for k, v in exp.items() if k.startswith(prefix)})
    assert len(want) > 1
    for key, value in want.items():
        assert key in result, f"{key} missing; lstmctl gave {sorted(result)}"
        assert result[key].shape == value.shape, key
        np.testing.assert_allclose(result[key], value, rtol=0, atol=1e-5, err_msg=key)


def cli(args):
    return CliRunner().invoke(main, [str(a) for a in args])


# (a) Keras 2.0.x: Embedding "dtype": "int32" (its input's dtype), GRU config without reset_after

K20 = "k20_embedding_int32_gru.h5"


def test_keras20_embedding_int32_gru_runs_as_keras():
    exp = expected(K20)
    model = lstmctl.load(path(K20))
    result = model.run({"embedding_1_input": exp["input/embedding_1_input"]})
    assert_matches(result, exp)


def test_keras20_gru_without_reset_after_gates():
    exp = expected(K20)
    model = lstmctl.load(path(K20))
    assert model.layer("gru_1").cell.reset_after is False
    assert model.inputs[0].dtype.startswith("int")
    assert_gates(model, exp, [("gru_1", "gru")])


def test_keras20_file_is_as_keras_20_wrote_it():
    import json

    import h5py

    with h5py.File(path(K20), "r") as f:
        config = json.loads(f.attrs["model_config"])
        assert f.attrs["keras_version"] in ("2.0.4", b"2.0.4")
    assert isinstance(config["config"], list)  # Keras 2.0 Sequential: a list of layers
    embedding, gru = config["config"][0]["config"], config["config"][1]["config"]
    assert embedding["dtype"] == "int32" and embedding["batch_input_shape"] == [None, 9]
    assert "reset_after" not in gru and gru["recurrent_activation"] == "hard_sigmoid"


# (b) Embedding fed from a float32-declared InputLayer (Keras 2.1's default)

K21 = "k21_embedding_float_input.h5"


def test_keras21_float_token_ids_run_as_keras():
    exp = expected(K21)
    result = lstmctl.load(path(K21)).run(exp["input/embedding_1_input"])
    assert_matches(result, exp)


def test_keras21_int_token_ids_run_as_keras():
    """Keras casts int ids into the float32 input (the generator checked: same output)."""
    exp = expected(K21)
    result = lstmctl.load(path(K21)).run(exp["input_int32/embedding_1_input"])
    assert_matches(result, exp)


def test_keras21_inspect_probes_with_token_ids():
    facts = inspect_facts(lstmctl.load(path(K21)))
    lstm = next(f for f in facts["layers"] if f["name"] == "lstm_1")
    assert lstm["input_shapes"] == [[None, 8, 4]]


def test_keras21_cli_run_random_input():
    result = cli(["run", path(K21), "--format", "json"])
    assert result.exit_code == 0, result.output


# (c) Keras 1.2.2 save_weights: 12 per-gate LSTM arrays, no keras_version attribute

K1 = "k1_lstm_save_weights.h5"


def test_keras1_save_weights_gates():
    model = lstmctl.load(path(K1))
    assert_gates(model, expected(K1), [("lstm_1", "lstm")])


def test_keras1_save_weights_direct_run():
    """Activations are not in the file: the outputs must be Keras's for the one lstmctl assumes."""
    exp = expected(K1)
    model = lstmctl.load(path(K1))
    result = run_layer(model, "lstm_1", exp["input/direct"])
    assumed = model.layer("lstm_1").cell.recurrent_activation_name
    assert assumed in ("sigmoid", "hard_sigmoid")
    want = {k.split("/", 1)[1]: v for k, v in exp.items() if k.startswith(f"rnn_{assumed}/")}
    for key, value in want.items():
        np.testing.assert_allclose(result[key], value, rtol=0, atol=1e-5, err_msg=key)


def test_keras1_save_weights_layout():
    import h5py

    with h5py.File(path(K1), "r") as f:
        assert "keras_version" not in f.attrs and "backend" not in f.attrs
        names = [n.decode() for n in f["lstm_1"].attrs["weight_names"]]
    assert names[:6] == ["lstm_1_W_i:0", "lstm_1_U_i:0", "lstm_1_b_i:0", "lstm_1_W_c:0", "lstm_1_U_c:0", "lstm_1_b_c:0"]


# (d) Keras 3 .weights.h5 written on Windows: 'layers\\lstm\\cell' group names

WIN = "k3_windows.weights.h5"


def test_windows_weights_gates():
    model = lstmctl.load(path(WIN))
    assert_gates(model, expected(WIN), [("lstm", "lstm"), ("lstm_1", "lstm")])


def test_windows_weights_layout():
    import h5py

    with h5py.File(path(WIN), "r") as f:
        top = set(f)
        assert not f.attrs
    assert "layers" not in top
    assert {"layers\\lstm", "layers\\lstm\\cell", "layers\\lstm_1\\cell", "layers\\dense", "metrics\\mean", "optimizer", "vars"} <= top
    assert "Layer 'lstm_cell' expected 3 variables, but received 0 variables" in str(expected(WIN)["keras_error"])
