"""What-if options on any model (run, trace, diagnose): against what Keras computes for the same
weights with the setting changed (sample_models/whatif, made by Keras 3 and tf_keras)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from conftest import SAMPLES, sample
from lstmctl.cli import main
from lstmctl.errors import UsageError
from lstmctl.analysis.whatif import override

CASES = json.loads((SAMPLES / "whatif" / "cases.json").read_text())


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _flags(options):
    return [a for k, v in options.items() for a in (f"--{k.replace('_', '-')}", str(v))]


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_what_if_matches_keras(case, tmp_path):
    exp = dict(np.load(SAMPLES / "whatif" / f"{case['case']}.npz"))
    np.save(tmp_path / "x.npy", exp["input"])
    result = invoke("run", sample(case["sample"]), "--input", tmp_path / "x.npy", *_flags(case["options"]), "-o", tmp_path / "r.npz")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("lstmctl: what-if: ") and "not the numbers of the file as saved" in result.stderr
    with np.load(tmp_path / "r.npz") as got:
        np.testing.assert_allclose(got["output"], exp["output"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(got["lstm/sequence"], exp["lstm/sequence"], atol=1e-5, rtol=0)
    model = lstmctl.load(sample(case["sample"]))
    changed = override(model, **case["options"])
    np.testing.assert_allclose(changed.run(exp["input"])["output"], exp["output"], atol=1e-5, rtol=0)
    original = dict(np.load(sample(f"{case['sample']}.expected.npz")))
    np.testing.assert_allclose(model.run(exp["input"])["output"], original["output"], atol=1e-5, rtol=0)  # the file's model is untouched


def test_what_if_on_one_layer_of_an_encoder_decoder():
    model = lstmctl.load(sample("k3_encdec.keras"))
    x = {k.split("/", 1)[1]: v for k, v in np.load(sample("k3_encdec.keras.expected.npz")).items() if k.startswith("input/")}
    plain = model.run(x)
    changed = override(model, forget_bias=2.0, layer="decoder").run(x)
    np.testing.assert_array_equal(changed["encoder/h"], plain["encoder/h"])
    assert np.abs(changed["decoder/h"] - plain["decoder/h"]).max() > 1e-3
    assert override(model, forget_bias=2.0, layer="decoder").notes[0] == "what-if: forget_bias 2.0 added to every LSTM's b_f on layer 'decoder'; these are not the numbers of the file as saved"


def test_what_if_refusals():
    model = lstmctl.load(sample("k3_lstm_dense.keras"))
    with pytest.raises(UsageError, match="not a Keras activation"):
        override(model, activation="swishy")
    with pytest.raises(UsageError, match="layer 'dense' is not recurrent"):
        override(model, activation="relu", layer="dense")
    with pytest.raises(UsageError, match="changes an LSTM's forget gate"):
        override(lstmctl.load(SAMPLES / "k2_gru.h5"), forget_bias=1.0)
    result = invoke("gates", sample("k3_lstm_dense.keras"), "--activation", "relu")
    assert result.exit_code == 2 and "a what-if for run, trace and diagnose" in result.stderr


def test_diagnose_and_trace_take_the_what_if(tmp_path):
    """Outputs computed with Keras 2's hard_sigmoid: the what-if model is the reference diagnose matches."""
    exp = dict(np.load(SAMPLES / "whatif" / "hard_sigmoid_keras2.npz"))
    np.save(tmp_path / "x.npy", exp["input"])
    np.save(tmp_path / "theirs.npy", exp["lstm/sequence"][0])
    args = ["--input", tmp_path / "x.npy", "--outputs", tmp_path / "theirs.npy", "--format", "json"]
    plain = json.loads(invoke("diagnose", sample("k3_lstm_dense.keras"), *args).stdout)
    assert not plain["match"]
    ran = invoke("diagnose", sample("k3_lstm_dense.keras"), *args, "--recurrent-activation", "hard_sigmoid", "--hard-sigmoid", "keras2")
    assert ran.exit_code == 0 and json.loads(ran.stdout)["match"]
    traced = invoke("trace", sample("k3_lstm_dense.keras"), "--input", tmp_path / "x.npy", "--forget-bias", "1.5", "-o", tmp_path / "t.npz")
    assert traced.exit_code == 0, traced.output
    keras = np.load(SAMPLES / "whatif" / "forget_bias_1_5.npz")["lstm/sequence"][0]
    with np.load(tmp_path / "t.npz") as got:
        np.testing.assert_allclose(got["lstm/h"], keras, atol=1e-5, rtol=0)
