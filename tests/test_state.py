"""State carried across calls: `run --state-in/--state-out` and `Model.run(x, state=...)`, against
what Keras computed for `stateful=True` models fed a sequence in pieces (sample_models/stateful,
made by generate_stateful.py), and the one-line errors for state files that do not fit."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from conftest import SAMPLES, expected, keras_inputs, sample
from lstmctl.cli import main

STATEFUL = SAMPLES / "stateful"
CASES = [c["file"] for c in json.loads((STATEFUL / "cases.json").read_text())]
ATOL = 1e-5
# One direction's outputs from a piece equal the whole sequence's; a Bidirectional's backward
# direction reads each piece from its own end, so only Keras's stateful stream is its reference.
# So is it with masking: a piece that starts on masked steps returns zeros for them (Keras's
# stateful layer has no earlier output within the piece), while the states carry exactly.
UNIDIRECTIONAL = [c for c in CASES if "bidirectional" not in c and "masked" not in c]


def _case(name):
    with np.load(STATEFUL / f"{name}.expected.npz") as data:
        return dict(data)


def _outputs(result, exp, prefix):
    """(lstmctl's, Keras's) for every model output Keras stored under `prefix`."""
    n = sum(k.startswith(prefix + "/output_") for k in exp)
    return [(result["output"] if n == 1 else result[f"output_{j}"], exp[f"{prefix}/output_{j}"]) for j in range(n)]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("name", CASES)
def test_pieces_match_keras_stateful_predict(name):
    """Each piece's outputs equal what Keras's stateful model returned for that piece."""
    exp = _case(name)
    model = lstmctl.load(STATEFUL / name)
    state = {}
    for i, (a, b) in enumerate(exp["pieces"]):
        result = model.run(exp["x"][:, a:b], state=state)
        for got, want in _outputs(result, exp, f"piece{i}"):
            np.testing.assert_allclose(got, want, rtol=0, atol=ATOL, err_msg=f"{name} piece {i}")
        state = result.state
    assert set(state) == {layer.name for layer in model.recurrent_layers()}


@pytest.mark.parametrize("name", UNIDIRECTIONAL)
def test_two_cli_calls_equal_one_call_on_the_whole_sequence(name, tmp_path):
    """x[:, :k] with --state-out, then x[:, k:] with --state-in: the second call's outputs are the
    second half of Keras's outputs for all of x in one call."""
    exp = _case(name)
    x, k = exp["x"], 5
    np.save(tmp_path / "a.npy", x[:, :k])
    np.save(tmp_path / "b.npy", x[:, k:])
    state = tmp_path / "state.npz"
    first = cli("run", STATEFUL / name, "--input", tmp_path / "a.npy", "--state-out", state, "-o", tmp_path / "a.npz")
    assert first.exit_code == 0, first.output
    second = cli("run", STATEFUL / name, "--input", tmp_path / "b.npy", "--state-in", state, "-o", tmp_path / "b.npz")
    assert second.exit_code == 0, second.output
    with np.load(tmp_path / "b.npz") as got:
        n = sum(key.startswith("full/output_") for key in exp)
        for j in range(n):
            ours = got["output" if n == 1 else f"output_{j}"]
            want = exp[f"full/output_{j}"]
            want = want[:, k:] if ours.ndim == want.ndim and ours.ndim >= 3 and want.shape[1] == x.shape[1] else want
            np.testing.assert_allclose(ours, want, rtol=0, atol=ATOL, err_msg=f"{name} output {j}")


def test_one_step_at_a_time_in_a_python_loop():
    """The streaming case: a loop feeding one step per call gives Keras's whole sequence."""
    exp = _case("k3_lstm.keras")
    model = lstmctl.load(STATEFUL / "k3_lstm.keras")
    state, steps = {}, []
    for t in range(exp["x"].shape[1]):
        result = model.run(exp["x"][:, t : t + 1], state=state)
        steps.append(result["output_0"])  # the Dense head on this step's h_t
        state = result.state
    np.testing.assert_allclose(np.concatenate(steps, axis=1), exp["full/output_0"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(result["output_1"], exp["full/output_1"], rtol=0, atol=ATOL)  # h_T
    np.testing.assert_allclose(result["output_2"], exp["full/output_2"], rtol=0, atol=ATOL)  # c_T


def test_a_fixed_time_axis_takes_pieces_with_a_note(tmp_path):
    exp = _case("k3_lstm_fixed_time.keras")
    np.save(tmp_path / "a.npy", exp["x"][:, :4])
    out = cli("run", STATEFUL / "k3_lstm_fixed_time.keras", "--input", tmp_path / "a.npy", "--state-out", tmp_path / "s.npz", "--format", "json")
    assert out.exit_code == 0, out.output
    assert "lstmctl: note: input 'input_layer': 4 time steps where the model declares 9: run as a piece of the sequence, with the state carried" in out.stderr
    np.testing.assert_allclose(json.loads(out.stdout)["output"], exp["piece0/output_0"], rtol=0, atol=ATOL)
    plain = cli("run", STATEFUL / "k3_lstm_fixed_time.keras", "--input", tmp_path / "a.npy")
    assert plain.exit_code == 3 and "expected shape (batch, 9, 4), got (3, 4, 4)" in plain.stderr


def test_state_file_holds_named_states_and_the_fingerprint(tmp_path):
    exp = _case("k3_stack.keras")
    np.save(tmp_path / "a.npy", exp["x"][:, :4])
    assert cli("run", STATEFUL / "k3_stack.keras", "--input", tmp_path / "a.npy", "--state-out", tmp_path / "s.npz", "--key", "output_0", "--format", "npy", "-o", tmp_path / "o.npy").exit_code == 0
    with np.load(tmp_path / "s.npz") as s:
        assert sorted(s) == ["__model__", "first/c", "first/h", "stack/cell_0/c", "stack/cell_0/h", "stack/cell_1/h"]
        assert s["stack/cell_1/h"].shape == (3, 3) and s["__model__"].shape == (32,)
        # The stack returns [sequence, h_0, c_0, h_1]: its carried states are the last three outputs.
        np.testing.assert_allclose(s["stack/cell_1/h"], exp["piece0/output_3"], rtol=0, atol=ATOL)
        np.testing.assert_allclose(s["stack/cell_0/c"], exp["piece0/output_2"], rtol=0, atol=ATOL)


def test_bidirectional_state_names_each_direction(tmp_path):
    exp = _case("k3_bidirectional.keras")
    model = lstmctl.load(STATEFUL / "k3_bidirectional.keras")
    state = model.run(exp["x"][:, :4], state={}).state
    assert sorted(state.arrays()) == ["__model__", "bi/backward/c", "bi/backward/h", "bi/forward/c", "bi/forward/h"]


def test_chunked_samples_compose_with_carried_state(tmp_path):
    """--chunk splits the samples; each chunk starts from its own rows of --state-in, and the
    --state-out of all chunks is the state of every sample."""
    exp = _case("k3_gru.keras")
    x = exp["x"]
    for i, (a, b) in enumerate(exp["pieces"]):
        np.save(tmp_path / f"p{i}.npy", x[:, a:b])
    state = tmp_path / "state.npz"
    for i in range(len(exp["pieces"])):
        args = ["run", STATEFUL / "k3_gru.keras", "--input", tmp_path / f"p{i}.npy", "--chunk", 1 + i % 2, "--state-out", state, "-o", tmp_path / f"o{i}.npz", "-q"]
        out = cli(*args, *(["--state-in", state] if i else []))
        assert out.exit_code == 0, out.output
        with np.load(tmp_path / f"o{i}.npz") as got:
            for j in range(2):
                np.testing.assert_allclose(got[f"output_{j}"], exp[f"piece{i}/output_{j}"], rtol=0, atol=ATOL)


def test_direct_layer_carries_its_own_state(tmp_path):
    exp = _case("k3_simple_rnn.keras")
    np.save(tmp_path / "a.npy", exp["x"][:, :5])
    np.save(tmp_path / "b.npy", exp["x"][:, 5:])
    s = tmp_path / "s.npz"
    assert cli("run", STATEFUL / "k3_simple_rnn.keras", "--layer", "rnn", "--direct", "--input", tmp_path / "a.npy", "--state-out", s, "-o", tmp_path / "a.npz").exit_code == 0
    out = cli("run", STATEFUL / "k3_simple_rnn.keras", "--layer", "rnn", "--direct", "--input", tmp_path / "b.npy", "--state-in", s, "-o", tmp_path / "b.npz")
    assert out.exit_code == 0, out.output
    with np.load(tmp_path / "b.npz") as got:
        np.testing.assert_allclose(got["rnn/sequence"], exp["full/output_0"][:, 5:], rtol=0, atol=ATOL)


# --- state files that do not fit -------------------------------------------------------------


@pytest.fixture
def lstm_state(tmp_path):
    exp = _case("k3_lstm.keras")
    np.save(tmp_path / "x.npy", exp["x"])
    assert cli("run", STATEFUL / "k3_lstm.keras", "--input", tmp_path / "x.npy", "--state-out", tmp_path / "s.npz", "-o", tmp_path / "o.npz").exit_code == 0
    with np.load(tmp_path / "s.npz") as s:
        return dict(s)


def _fails(tmp_path, arrays, code, message, model="k3_lstm.keras", rows=3):
    np.savez(tmp_path / "bad.npz", **arrays)
    np.save(tmp_path / "in.npy", _case("k3_lstm.keras")["x"][:rows, :2])
    out = cli("run", STATEFUL / model, "--input", tmp_path / "in.npy", "--state-in", tmp_path / "bad.npz", "-o", tmp_path / "never.npz")
    assert out.exit_code == code, out.output
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert "Traceback" not in out.output and not (tmp_path / "never.npz").exists()
    return lines[0]


def test_state_of_another_model_is_refused(tmp_path, lstm_state):
    _fails(tmp_path, lstm_state, 3, "holds the state of another model", model="k2_lstm.h5")


def test_state_with_a_layer_missing_is_refused(tmp_path, lstm_state):
    del lstm_state["lstm/c"]
    _fails(tmp_path, lstm_state, 3, "no state 'lstm/c' for layer 'lstm'")


def test_state_with_an_unknown_layer_is_refused(tmp_path, lstm_state):
    lstm_state["decoder/h"] = lstm_state["lstm/h"]
    _fails(tmp_path, lstm_state, 3, "state 'decoder/h' belongs to no recurrent layer")


def test_state_with_nan_is_refused_naming_where(tmp_path, lstm_state):
    lstm_state["lstm/h"][1, 2] = np.nan
    _fails(tmp_path, lstm_state, 3, "state 'lstm/h' is not finite: nan at index (1, 2) is not (1 such value(s))")


def test_state_of_another_batch_size_is_refused(tmp_path, lstm_state):
    line = _fails(tmp_path, lstm_state, 2, "the carried state holds 3 samples and the input 2", rows=2)
    assert "same samples, in the same order" in line


def test_npz_without_a_fingerprint_is_no_state_file(tmp_path, lstm_state):
    del lstm_state["__model__"]
    _fails(tmp_path, lstm_state, 3, "not a state file written by `lstmctl run --state-out`")


def test_state_in_and_initial_state_are_one_or_the_other(tmp_path, lstm_state):
    out = cli("run", STATEFUL / "k3_lstm.keras", "--state-in", "s.npz", "--initial-state", "h.npz", "--layer", "lstm")
    assert out.exit_code == 2 and "give one" in out.output


def test_state_out_never_half_written_when_the_run_fails(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((3, 2, 7), np.float32))
    out = cli("run", STATEFUL / "k3_lstm.keras", "--input", tmp_path / "bad.npy", "--state-out", tmp_path / "s.npz")
    assert out.exit_code == 3 and not (tmp_path / "s.npz").exists()


# --- float token ids (issue 19's regression) ------------------------------------------------


def test_whole_number_float_ids_run_as_keras_casts_them(tmp_path):
    exp = expected("k3_embed.keras")
    (name, tokens), = keras_inputs(exp).items()
    np.save(tmp_path / "t.npy", tokens.astype(np.float32))
    note = f"lstmctl: note: input '{name}': float32 values read as int32 token ids, as Keras casts them"
    out = cli("run", sample("k3_embed.keras"), "--input", tmp_path / "t.npy", "--format", "json")
    assert out.exit_code == 0, out.output
    assert out.stderr.count(note) == 1
    np.testing.assert_allclose(json.loads(out.stdout)["output"], exp["output"], rtol=0, atol=ATOL)
    streamed = cli("run", sample("k3_embed.keras"), "--input", tmp_path / "t.npy", "--chunk", 1, "-q", "-o", tmp_path / "o.npz")
    assert streamed.exit_code == 0 and streamed.stderr.count(note) == 1  # once, not once per chunk
    with np.load(tmp_path / "o.npz") as got:
        np.testing.assert_allclose(got["output"], exp["output"], rtol=0, atol=ATOL)


@pytest.mark.parametrize("bad, message", [
    (0.5, "0.5 at index (1, 2) is not a whole number in its range (1 such value(s))"),
    (np.nan, "nan at index (1, 2) is not a whole number in its range"),
    (3e9, "3000000000.0 at index (1, 2) is not a whole number in its range"),
])  # fmt: skip
def test_float_ids_that_are_no_ids_name_the_first_position(tmp_path, bad, message):
    tokens = next(iter(keras_inputs(expected("k3_embed.keras")).values())).astype(np.float32)
    tokens[1, 2] = bad
    np.save(tmp_path / "t.npy", tokens)
    out = cli("run", sample("k3_embed.keras"), "--input", tmp_path / "t.npy")
    assert out.exit_code == 3 and "the model expects integer token ids (int32)" in out.stderr and message in out.stderr


def test_out_of_vocabulary_ids_name_the_first_position(tmp_path):
    model = lstmctl.load(sample("k3_embed.keras"))
    vocabulary = next(layer for layer in model.walk() if layer.class_name == "Embedding").weights[0].shape[0]
    tokens = next(iter(keras_inputs(expected("k3_embed.keras")).values())).copy()
    tokens[2, 1] = vocabulary
    with pytest.raises(lstmctl.LstmctlError, match=rf"token ids must lie in \[0, {vocabulary}\): {vocabulary} at index \(2, 1\) does not \(1 such value"):
        model.run(tokens)


def test_readme_streaming_example_runs_as_shown(tmp_path):
    """The README's bash loop, run by a fresh bash with the environment activated as the README's
    Quick start says: the last window's h is Keras's h after all the steps."""
    import re

    from conftest import ROOT
    from test_readme import _activated_shell

    shell = _activated_shell()
    if shell is None:
        pytest.skip("no .venv with lstmctl installed in the clone (the README's Quick start makes it)")
    script = re.search(r"## A sequence in pieces.*?```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    out = shell(f"export TMPDIR={tmp_path}; set -eo pipefail\n" + script)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3 * 4 and lines[0] == ",".join(f"output_1[{j}]" for j in range(5))  # per window: a header, 3 samples
    last = np.array([[float(v) for v in row.split(",")] for row in lines[-3:]])
    np.testing.assert_allclose(last, _case("k3_lstm.keras")["full/output_1"], rtol=0, atol=1e-5)
    assert out.stderr == ""
