"""trace, run --expect and diagnose.

Gate values are checked against an independent NumPy derivation from Keras's own weights, the
layer input Keras computed and Keras's hidden sequence; every mistaken implementation that
diagnose must name is written out here, not produced by lstmctl.
"""

import io
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from lstmctl.cli import main
from lstmctl.analysis.trace import trace
from conftest import expected, keras_inputs, keras_weights, sample


def invoke(*args, **kw):
    result = CliRunner().invoke(main, [str(a) for a in args], **kw)
    assert "Traceback" not in result.output
    return result


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# --- trace ---------------------------------------------------------------------------------


def keras_lstm_gates(exp, layer, sample_index, go_backwards=False):
    """i, f, c̃, o per step from Keras's weights, Keras's layer input and Keras's h sequence."""
    W, U, b = keras_weights(exp, layer)
    u = U.shape[0]
    x = exp[f"{layer}/input"][sample_index].astype(np.float64)
    seq = exp[f"{layer}/sequence"][sample_index].astype(np.float64)  # in Keras's order
    steps = list(range(x.shape[0]))[::-1] if go_backwards else list(range(x.shape[0]))
    h_prev = np.zeros(u)
    out = {g: [] for g in "ifco"}
    for k, t in enumerate(steps):
        z = x[t] @ W + h_prev @ U + b
        out["i"].append(sigmoid(z[:u]))
        out["f"].append(sigmoid(z[u : 2 * u]))
        out["c"].append(np.tanh(z[2 * u : 3 * u]))
        out["o"].append(sigmoid(z[3 * u :]))
        h_prev = seq[k]
    return {g: np.array(v) for g, v in out.items()}


def test_trace_lstm_gates_and_states_equal_keras_derivation():
    exp = expected("k3_stack3.keras")
    tr = trace(lstmctl.load(sample("k3_stack3.keras")), keras_inputs(exp), "lstm_b", sample=2, pre=True)
    want = keras_lstm_gates(exp, "lstm_b", 2)
    for g in "ifco":
        assert tr.arrays[f"lstm_b/gate_{g}"].shape == (6, 5)
        np.testing.assert_allclose(tr.arrays[f"lstm_b/gate_{g}"], want[g], atol=1e-5, err_msg=g)
    np.testing.assert_allclose(tr.arrays["lstm_b/h"], exp["lstm_b/sequence"][2], atol=1e-5)
    np.testing.assert_allclose(tr.arrays["lstm_b/c"][-1], exp["lstm_b/c"][2], atol=1e-5)
    np.testing.assert_allclose(tr.arrays["lstm_b/pre_f"], np.log(want["f"] / (1 - want["f"])), atol=1e-4)
    # h_t = o_t ⊙ tanh(c_t), with h from Keras
    np.testing.assert_allclose(want["o"] * np.tanh(tr.arrays["lstm_b/c"]), exp["lstm_b/sequence"][2], atol=1e-5)


def test_trace_h_and_c_equal_run_exactly():
    exp = expected("k3_encdec.keras")
    model = lstmctl.load(sample("k3_encdec.keras"))
    result = model.run(keras_inputs(exp))
    tr = trace(model, keras_inputs(exp), "decoder", sample=1)
    np.testing.assert_array_equal(tr.arrays["decoder/h"], result["decoder/sequence"][1])
    np.testing.assert_array_equal(tr.arrays["decoder/c"][-1], result["decoder/c"][1])


def test_trace_go_backwards_rows_follow_keras_order():
    exp = expected("k3_options.keras")
    layer = "lstm"
    tr = trace(lstmctl.load(sample("k3_options.keras")), keras_inputs(exp), layer, sample=0)
    np.testing.assert_allclose(tr.arrays[f"{layer}/h"], exp[f"{layer}/sequence"][0], atol=1e-5)
    assert list(tr.time_index[""]) == [5, 4, 3, 2, 1, 0]


def test_trace_gru_and_simple_rnn_and_bidirectional_keys():
    exp = expected("k3_gru.keras")
    tr = trace(lstmctl.load(sample("k3_gru.keras")), keras_inputs(exp), "gru", sample=0)
    assert {"gru/gate_z", "gru/gate_r", "gru/gate_h", "gru/h"} == set(tr.arrays)
    np.testing.assert_allclose(tr.arrays["gru/h"], exp["gru/sequence"][0], atol=1e-5)
    # h_t = z ⊙ h_{t−1} + (1 − z) ⊙ h̃, with Keras's h
    h = exp["gru/sequence"][0]
    h_prev = np.vstack([np.zeros((1, h.shape[1])), h[:-1]])
    np.testing.assert_allclose(tr.arrays["gru/gate_z"] * h_prev + (1 - tr.arrays["gru/gate_z"]) * tr.arrays["gru/gate_h"], h, atol=1e-5)
    exp = expected("k3_simplernn.keras")
    tr = trace(lstmctl.load(sample("k3_simplernn.keras")), keras_inputs(exp), "simple_rnn", sample=1)
    assert set(tr.arrays) == {"simple_rnn/h"}
    np.testing.assert_allclose(tr.arrays["simple_rnn/h"], exp["simple_rnn/sequence"][1], atol=1e-5)
    exp = expected("k3_bidir.keras")
    tr = trace(lstmctl.load(sample("k3_bidir.keras")), keras_inputs(exp), "bidirectional", sample=0)
    for d in ("forward", "backward"):
        np.testing.assert_allclose(tr.arrays[f"bidirectional/{d}/h"], exp[f"bidirectional/{d}/sequence"][0], atol=1e-5)
        np.testing.assert_allclose(tr.arrays[f"bidirectional/{d}/c"][-1 if d == "forward" else 0], exp[f"bidirectional/{d}/c"][0], atol=1e-5)


def test_trace_summary_half_life():
    exp = expected("k3_lstm_dense.keras")
    tr = trace(lstmctl.load(sample("k3_lstm_dense.keras")), keras_inputs(exp), sample=0)
    f = keras_lstm_gates(exp, "lstm", 0)["f"]
    rows = tr.summary()
    for j, row in enumerate(rows):
        assert row["mean_f"] == pytest.approx(f[:, j].mean(), abs=1e-6)
        assert row["half_life"] == pytest.approx(math.log(0.5) / math.log(f[:, j].mean()), rel=1e-5)
        assert row["saturated_f"] == pytest.approx(np.mean((f[:, j] < 0.1) | (f[:, j] > 0.9)))


def test_trace_cli_npz_and_selection(tmp_path):
    exp = expected("k3_stack3.keras")
    np.save(tmp_path / "x.npy", keras_inputs(exp)["input_layer"])
    out = tmp_path / "t.npz"
    r = invoke("trace", sample("k3_stack3.keras"), "--input", tmp_path / "x.npy", "--layer", "lstm_a", "--units", "1,3", "--steps", "2:", "--format", "npz", "-o", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as got:
        assert set(got.files) == {f"lstm_a/gate_{g}" for g in "ifco"} | {"lstm_a/c", "lstm_a/h"}
        np.testing.assert_allclose(got["lstm_a/h"], exp["lstm_a/sequence"][0][2:][:, [1, 3]], atol=1e-5)
    bad = invoke("trace", sample("k3_stack3.keras"), "--input", tmp_path / "x.npy", "--layer", "lstm_a", "--units", "9")
    assert bad.exit_code == 2 and "out of range" in bad.stderr
    several = invoke("trace", sample("k3_stack3.keras"), "--input", tmp_path / "x.npy")
    assert several.exit_code == 2 and "lstm_a, lstm_b, lstm_c" in several.stderr


def test_heatmap_downsamples_long_sequences_and_says_so(tmp_path):
    x = np.random.default_rng(1).standard_normal((1, 300, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = invoke("trace", sample("k3_lstm_dense.keras"), "--layer", "lstm", "--direct", "--input", tmp_path / "x.npy", "--view", "heatmap")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("lstm f (forget gate)"))
    rows = lines[start + 1 : start + 6]
    assert [row.split()[0] for row in rows] == ["u0", "u1", "u2", "u3", "u4"]
    assert all(len(row.split()[1]) == 96 for row in rows)  # 300 steps binned into 96 columns
    assert "300 steps shown as 96 columns" in r.output


def test_svg_holds_the_heatmaps(tmp_path):
    exp = expected("k3_lstm_dense.keras")
    np.save(tmp_path / "x.npy", keras_inputs(exp)["input_layer"])
    svg = tmp_path / "t.svg"
    r = invoke("trace", sample("k3_lstm_dense.keras"), "--input", tmp_path / "x.npy", "--svg", svg, "--view", "summary")
    assert r.exit_code == 0
    text = svg.read_text()
    ET.fromstring(text)  # well-formed
    flat = text.replace("&#160;", " ")
    for title in ("lstm&#160;i&#160;(input&#160;gate)", "forget&#160;gate", "h_t&#160;(hidden&#160;state)"):
        assert title.replace("&#160;", " ") in flat
    # the legends' end colours: viridis 0 and 1, coolwarm −1 and 1
    for hex_colour in ("#440154", "#fde725", "#3b4cc0", "#b40426"):
        assert hex_colour in text
    assert len(set(__import__("re").findall(r"fill: (#[0-9a-f]{6})", text))) > 30  # a real colour map, not one colour


# --- run --expect ----------------------------------------------------------------------------


def test_expect_passes_against_keras_and_fails_where_it_diverges(tmp_path):
    exp = expected("k3_lstm_dense.keras")
    np.save(tmp_path / "x.npy", keras_inputs(exp)["input_layer"])
    ref = {k: exp[k] for k in ("output", "lstm/sequence", "lstm/h", "lstm/c")}
    np.savez(tmp_path / "ref.npz", **ref)
    ok = invoke("run", sample("k3_lstm_dense.keras"), "--input", tmp_path / "x.npy", "--expect", tmp_path / "ref.npz")
    assert ok.exit_code == 0, ok.output
    assert "4 of 4 keys within tolerance" in ok.output
    bad = dict(ref)
    seq = bad["lstm/sequence"].copy()
    seq[:, 3:] += np.array([1e-3, 2e-3, 4e-3])[None, :, None]
    bad["lstm/sequence"] = seq
    np.savez(tmp_path / "bad.npz", **bad)
    r = invoke("run", sample("k3_lstm_dense.keras"), "--input", tmp_path / "x.npy", "--expect", tmp_path / "bad.npz", "--format", "json")
    assert r.exit_code == 1
    report = {k["key"]: k for k in json.loads(r.stdout)["keys"]}
    assert report["lstm/sequence"]["ok"] is False and report["lstm/h"]["ok"] is True
    assert report["lstm/sequence"]["first_divergent_step"] == 3
    np.testing.assert_allclose(report["lstm/sequence"]["growth"], [1e-3, 2e-3, 4e-3], rtol=1e-2)
    assert "check failed" in r.stderr
    relaxed = invoke("run", sample("k3_lstm_dense.keras"), "--input", tmp_path / "x.npy", "--expect", tmp_path / "bad.npz", "--atol", "lstm/sequence=0.01")
    assert relaxed.exit_code == 0
    np.save(tmp_path / "out.npy", exp["output"])
    assert invoke("run", sample("k3_lstm_dense.keras"), "--input", tmp_path / "x.npy", "--expect", tmp_path / "out.npy").exit_code == 0


# --- diagnose --------------------------------------------------------------------------------


def my_lstm(x, W, U, b, *, ract=sigmoid, forget_extra=0.0, order="ifco", carry=True, output="h", concat_hx=False, bias_times=1, h0=None, c0=None):
    """A user's own LSTM over one sample (time, features), with the knobs of the usual mistakes."""
    u = U.shape[0]
    h = np.zeros(u) if h0 is None else h0
    c = np.zeros(u) if c0 is None else c0
    stacked = np.vstack([W, U])
    out = []
    for t in range(x.shape[0]):
        if not carry:
            h, c = np.zeros(u), np.zeros(u)
        if concat_hx:
            z = np.concatenate([h, x[t]]) @ stacked + b * bias_times
        else:
            z = x[t] @ W + h @ U + b * bias_times
        blocks = dict(zip(order, np.split(z, 4)))
        i, f, o = ract(blocks["i"]), ract(blocks["f"] + forget_extra), ract(blocks["o"])
        c = f * c + i * np.tanh(blocks["c"])
        h = o * np.tanh(c)
        out.append(c if output == "c" else h)
    return np.array(out)


def diagnose_json(model, x, theirs, tmp_path, *extra):
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "theirs.npy", theirs)
    r = invoke("diagnose", sample(model), "--input", tmp_path / "x.npy", "--outputs", tmp_path / "theirs.npy", "--format", "json", *extra)
    assert r.exit_code in (0, 1), r.output
    doc = json.loads(r.stdout)
    assert set(doc) >= {"match", "first_divergent_step", "explanations"}
    errors = [e["max_abs_error"] for e in doc["explanations"]]
    assert errors == sorted(errors) or doc["explanations"][0]["matches"]
    return r.exit_code, doc


def test_diagnose_vector2_without_forget_bias(tmp_path):
    """CONVENTIONS vector 2: a TF1 LSTMCell computed without forget_bias matches step 0, then drifts."""
    np.random.seed(0)
    x = np.random.normal(size=(1, 7, 4))
    lim = np.sqrt(6 / (7 + 12))
    kernel = np.random.uniform(-lim, lim, size=(7, 12))
    h, c, out = np.zeros(3), np.zeros(3), []
    for t in range(7):
        i, j, f, o = np.split(np.concatenate([x[0, t], h]) @ kernel, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(j)  # forget_bias left out
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    code, doc = diagnose_json("k2_vector2.h5", x.astype(np.float32), np.array(out), tmp_path)
    assert code == 1 and doc["match"] is False
    assert doc["explanations"][0] == {"id": "forget_bias_missing", "max_abs_error": pytest.approx(0, abs=1e-6), "matches": True}
    assert doc["first_divergent_step"] == 1


@pytest.mark.parametrize(
    "knobs, hypothesis",
    [
        ({}, "reference"),
        ({"forget_extra": 1.0}, "forget_bias_added"),
        ({"order": "icfo"}, "gate_order_ijfo"),
        ({"order": "iofc"}, "gate_order_iofc"),
        ({"concat_hx": True}, "concat_h_x"),
        ({"carry": False}, "state_not_carried"),
        ({"output": "c"}, "cell_state_as_output"),
        ({"bias_times": 2}, "bias_twice"),
        ({"ract": lambda v: np.clip(0.2 * v + 0.5, 0, 1)}, "hard_sigmoid_keras2"),
        ({"ract": lambda v: np.clip(v / 6 + 0.5, 0, 1)}, "hard_sigmoid_keras3"),
    ],
)
def test_diagnose_names_each_mistake(tmp_path, knobs, hypothesis):
    exp = expected("k3_lstm_dense.keras")
    W, U, b = (a.astype(np.float64) for a in keras_weights(exp, "lstm"))
    x = keras_inputs(exp)["input_layer"]
    theirs = my_lstm(x[1].astype(np.float64), W, U, b, **knobs)
    code, doc = diagnose_json("k3_lstm_dense.keras", x, theirs, tmp_path, "--sample", "1")
    assert doc["explanations"][0]["id"] == hypothesis and doc["explanations"][0]["matches"]
    assert code == (0 if hypothesis == "reference" else 1)
    assert doc["match"] is (hypothesis == "reference")


def test_diagnose_sigmoid_for_keras2_hard_sigmoid(tmp_path):
    exp = expected("k2_vector1.h5")
    W, U, b = (a.astype(np.float64) for a in keras_weights(exp, "lstm"))
    x = keras_inputs(exp)["lstm_input"] if "input/lstm_input" in exp else next(iter(keras_inputs(exp).values()))
    theirs = my_lstm(x[0].astype(np.float64), W, U, b, ract=sigmoid)
    _, doc = diagnose_json("k2_vector1.h5", x, theirs, tmp_path)
    assert doc["explanations"][0]["id"] == "sigmoid_for_hard_sigmoid"


def test_diagnose_initial_state_swapped_in_decoder(tmp_path):
    exp = expected("k3_encdec.keras")
    W, U, b = (a.astype(np.float64) for a in keras_weights(exp, "decoder"))
    x_dec = exp["decoder/input"][0].astype(np.float64)
    h0, c0 = exp["encoder/h"][0].astype(np.float64), exp["encoder/c"][0].astype(np.float64)
    theirs = my_lstm(x_dec, W, U, b, h0=c0, c0=h0)  # (c, h) where [h, c] was meant
    xs = keras_inputs(exp)
    for name, a in xs.items():
        np.save(tmp_path / f"{name}.npy", a)
    np.save(tmp_path / "theirs.npy", theirs)
    args = [a for n in xs for a in ("--input", f"{n}={tmp_path / n}.npy")]
    r = invoke("diagnose", sample("k3_encdec.keras"), *args, "--layer", "decoder", "--outputs", tmp_path / "theirs.npy", "--format", "json")
    assert json.loads(r.stdout)["explanations"][0]["id"] == "initial_state_swapped"


def my_gru(x, W, U, b, *, z_first=True, invert_z=False, reset_after=True, order="zrh"):
    u = U.shape[0]
    h, out = np.zeros(u), []
    b_in, b_rec = (b[0], b[1]) if b.ndim == 2 else (b, np.zeros_like(b))
    for t in range(x.shape[0]):
        xs = dict(zip(order, np.split(x[t] @ W + b_in, 3)))
        Us = dict(zip(order, np.split(U, 3, axis=1)))
        rbs = dict(zip(order, np.split(b_rec, 3)))
        z = sigmoid(xs["z"] + h @ Us["z"] + rbs["z"])
        r = sigmoid(xs["r"] + h @ Us["r"] + rbs["r"])
        hh = np.tanh(xs["h"] + r * (h @ Us["h"] + rbs["h"])) if reset_after else np.tanh(xs["h"] + (r * h) @ Us["h"] + rbs["h"])
        h = (1 - z) * h + z * hh if invert_z else z * h + (1 - z) * hh
        out.append(h)
    return np.array(out)


@pytest.mark.parametrize(
    "knobs, hypothesis",
    [({}, "reference"), ({"invert_z": True}, "z_inverted"), ({"order": "rzh"}, "gate_order_rzn"), ({"reset_after": False}, "reset_after_flipped")],
)
def test_diagnose_gru_mistakes(tmp_path, knobs, hypothesis):
    exp = expected("k3_gru.keras")
    W, U, b = (a.astype(np.float64) for a in keras_weights(exp, "gru"))
    x = keras_inputs(exp)["input_layer"]
    theirs = my_gru(x[0].astype(np.float64), W, U, b, **knobs)
    _, doc = diagnose_json("k3_gru.keras", x, theirs, tmp_path, "--layer", "gru")
    assert doc["explanations"][0]["id"] == hypothesis and doc["explanations"][0]["matches"]


def test_diagnose_bidirectional_direction_and_final_h(tmp_path):
    exp = expected("k3_bidir.keras")
    x = keras_inputs(exp)["input_layer"]
    code, doc = diagnose_json("k3_bidir.keras", x, exp["bidirectional/backward/h"], tmp_path, "--layer", "bidirectional/backward")
    assert code == 0 and doc["match"] and doc["first_divergent_step"] is None
    r = invoke("diagnose", sample("k3_bidir.keras"), "--input", tmp_path / "x.npy", "--outputs", tmp_path / "theirs.npy", "--layer", "bidirectional")
    assert r.exit_code == 2 and "bidirectional/forward" in r.stderr


def test_diagnose_no_match_reports_divergence(tmp_path):
    exp = expected("k3_lstm_dense.keras")
    x = keras_inputs(exp)["input_layer"]
    theirs = exp["lstm/sequence"][0].copy()
    theirs[2:] += 0.3
    code, doc = diagnose_json("k3_lstm_dense.keras", x, theirs, tmp_path)
    assert code == 1 and not any(e["matches"] for e in doc["explanations"])
    assert doc["first_divergent_step"] == 2


def test_diagnose_help_lists_every_hypothesis_id():
    """Every id diagnose can report (for an LSTM with initial state, a GRU, a hard_sigmoid cell and
    a TF1 checkpoint's cell) is explained in `diagnose --help`."""
    from lstmctl.analysis.diagnose import hypotheses

    help_text = CliRunner().invoke(main, ["diagnose", "--help"]).output
    ids = set()
    for name, layer, tf1 in [("k3_lstm_dense.keras", "lstm", None), ("k2_gru.h5", None, None), ("k2_options.h5", None, None), ("tf/tf1_lstm_cell", None, 1.0)]:
        model = lstmctl.load(sample(name))
        for rec in ([model.layer(layer)] if layer else model.recurrent_layers()):
            cell = (rec.forward or rec).cell or (rec.forward or rec).cells[0].cell
            for file_major in (2, 3):
                ids.update(h.id for h in hypotheses(cell, True, file_major, tf1))
    assert {"tf1_forget_bias_missing", "gate_order_rzn", "initial_state_swapped", "sigmoid_for_hard_sigmoid"} <= ids
    missing = sorted(i for i in ids if f"  {i} " not in help_text)
    assert not missing, missing
