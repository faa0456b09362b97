"""`lstmctl run` through the CLI: input formats, selections, output formats."""

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from lstmctl.cli import main
from conftest import expected, keras_inputs, sample

LSTM = "k3_lstm_dense.keras"


def invoke(*args, **kw):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kw)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def lstm_input(tmp_path):
    x = keras_inputs(expected(LSTM))["input_layer"]
    path = tmp_path / "x.npy"
    np.save(path, x)
    return path, x


def _npz(result_bytes):
    with np.load(io.BytesIO(result_bytes)) as data:
        return dict(data)


def test_run_npz_contract_to_stdout(lstm_input):
    path, _ = lstm_input
    result = CliRunner().invoke(main, ["run", sample(LSTM), "--input", str(path), "--format", "npz"])
    assert result.exit_code == 0, result.output
    got = _npz(result.stdout_bytes)
    exp = expected(LSTM)
    assert set(got) == {"output", "lstm/sequence", "lstm/h", "lstm/c"}
    for key in got:
        np.testing.assert_allclose(got[key], exp[key], atol=1e-5)


def test_run_return_state_table_labels(lstm_input):
    path, _ = lstm_input
    result = invoke("run", sample(LSTM), "--input", path, "--return-sequences", "--return-state")
    assert result.exit_code == 0
    out = result.output
    assert out.index("whole_seq_output (h_1..h_T)") < out.index("final_memory_state (h_T)") < out.index("final_carry_state (c_T)")
    exp = expected(LSTM)
    assert f"{exp['lstm/c'][0, 0]:.6f}"[:7] in out


def test_model_from_environment_variable(lstm_input, monkeypatch):
    path, _ = lstm_input
    monkeypatch.setenv("LSTMCTL_MODEL", sample(LSTM))
    result = invoke("run", "--input", path, "--return-state", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    np.testing.assert_allclose(data["lstm/h"], expected(LSTM)["lstm/h"], atol=1e-5)


def test_named_inputs_and_npz_input(tmp_path):
    exp = expected("k3_encdec.keras")
    xs = keras_inputs(exp)
    for name, array in xs.items():
        np.save(tmp_path / f"{name}.npy", array)
    args = [f"{n}={tmp_path / n}.npy" for n in xs]
    out = tmp_path / "r.npz"
    assert invoke("run", sample("k3_encdec.keras"), *sum((["--input", a] for a in args), []), "--format", "npz", "-o", out).exit_code == 0
    with np.load(out) as got:
        np.testing.assert_allclose(got["decoder/sequence"], exp["decoder/sequence"], atol=1e-5)
        np.testing.assert_allclose(got["output_1"], exp["output_1"], atol=1e-5)
    np.savez(tmp_path / "both.npz", **xs)
    result = invoke("run", sample("k3_encdec.keras"), "--input", tmp_path / "both.npz", "--key", "encoder/c", "--format", "npy", "-o", tmp_path / "c.npy")
    assert result.exit_code == 0
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), exp["encoder/c"], atol=1e-5)


def test_csv_json_and_stdin_inputs(tmp_path):
    exp = expected(LSTM)
    x = keras_inputs(exp)["input_layer"][:1]
    csv_path = tmp_path / "x.csv"
    csv_path.write_text("a,b,c,d\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in x[0]) + "\n")
    json_path = tmp_path / "x.json"
    json_path.write_text(json.dumps(x.tolist()))
    for source, kw in ((csv_path, {}), (json_path, {}), ("-", {"input": json.dumps(x.tolist())})):
        result = invoke("run", sample(LSTM), "--input", source, "--key", "lstm/h", "--format", "json", **kw)
        assert result.exit_code == 0, result.output
        np.testing.assert_allclose(json.loads(result.output)["lstm/h"], exp["lstm/h"][:1], atol=1e-5)
    buf = io.BytesIO()
    np.save(buf, x)
    result = CliRunner().invoke(main, ["run", sample(LSTM), "--input", "-", "--key", "output", "--format", "json"], input=buf.getvalue())
    np.testing.assert_allclose(json.loads(result.output)["output"], exp["output"][:1], atol=1e-5)


def test_random_input_is_deterministic_and_announced():
    a = invoke("run", sample(LSTM), "--seed", "3", "--batch", "2", "--format", "json")
    b = invoke("run", sample(LSTM), "--seed", "3", "--batch", "2", "--format", "json")
    assert a.exit_code == 0 and a.stdout == b.stdout
    assert "random standard-normal input (seed 3)" in a.stderr
    assert np.asarray(json.loads(a.stdout)["output"]).shape == (2, 3)


def test_csv_output_of_one_key(lstm_input, tmp_path):
    path, _ = lstm_input
    out = tmp_path / "h.csv"
    assert invoke("run", sample(LSTM), "--input", path, "--key", "lstm/h", "--format", "csv", "-o", out).exit_code == 0
    np.testing.assert_allclose(np.loadtxt(out, delimiter=",", skiprows=1), expected(LSTM)["lstm/h"], atol=1e-5)


def test_initial_state_npz_for_layer(lstm_input, tmp_path):
    path, x = lstm_input
    exp = expected(LSTM)
    np.savez(tmp_path / "s.npz", h=np.zeros((x.shape[0], 5), np.float32), c=np.zeros((x.shape[0], 5), np.float32))
    result = invoke("run", sample(LSTM), "--input", path, "--layer", "lstm", "--initial-state", tmp_path / "s.npz", "--key", "lstm/c", "--format", "json")
    np.testing.assert_allclose(json.loads(result.output)["lstm/c"], exp["lstm/c"], atol=1e-5)


def test_large_tables_are_summarised_unless_full(tmp_path):
    x = np.random.default_rng(0).standard_normal((4, 6, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    short = invoke("run", sample("k3_stack3.keras"), "--input", tmp_path / "x.npy", "--return-sequences", "--layer", "lstm_a")
    full = invoke("run", sample("k3_stack3.keras"), "--input", tmp_path / "x.npy", "--return-sequences", "--layer", "lstm_a", "--full")
    assert "..." in short.output and "..." not in full.output
    assert "\x1b[" not in short.output  # no colour codes when not a terminal
