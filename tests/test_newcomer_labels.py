"""What a newcomer reads in run and trace output: each model output named in Keras's words, the
states a decoder starts from, and the equations inspect prints."""

import numpy as np
from click.testing import CliRunner

import lstmctl
from conftest import SAMPLES, sample
from lstmctl.cli import main
from lstmctl.analysis.describe import run_selection
from lstmctl.analysis.trace import trace


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _encdec():
    exp = dict(np.load(sample("k3_encdec.keras.expected.npz")))
    return lstmctl.load(sample("k3_encdec.keras")), exp, {k.split("/", 1)[1]: v for k, v in exp.items() if k.startswith("input/")}


def test_run_labels_each_model_output():
    model, exp, x = _encdec()
    result = model.run(x)
    labels = dict(run_selection(model, result))
    assert labels == {"output_0": "model output: time_distributed[0]", "output_1": "model output: encoder[1] = final_memory_state (h_T)"}
    np.testing.assert_allclose(result["output_1"], exp["encoder/h"], atol=1e-5, rtol=0)  # what the label says it is
    stack = lstmctl.load(SAMPLES / "tf" / "rnn_cells.h5")
    labels = [label for _, label in run_selection(stack, stack.run())]
    assert labels[1:3] == ["model output: cells[1] = cell_0 final_memory_state (h_T)", "model output: cells[2] = cell_0 final_carry_state (c_T)"]


def test_trace_shows_the_states_a_decoder_starts_from(tmp_path):
    model, exp, x = _encdec()
    tr = trace(model, x, "decoder", sample=1)
    np.testing.assert_allclose(tr.initial["decoder/h0"], exp["encoder/h"][1], atol=1e-5, rtol=0)
    np.testing.assert_allclose(tr.initial["decoder/c0"], exp["encoder/c"][1], atol=1e-5, rtol=0)
    assert trace(model, x, "encoder").initial == {}  # nothing given: zeros, not shown
    for name, value in x.items():
        np.save(tmp_path / f"{name}.npy", value)
    args = [a for n in x for a in ("--input", f"{n}={tmp_path / n}.npy")]
    shown = invoke("trace", sample("k3_encdec.keras"), *args, "--layer", "decoder", "--view", "summary")
    first = " ".join(f"{v:+.4f}" for v in exp["encoder/h"][0][:4])
    assert f"initial state decoder/h0: {first} …" in shown.stdout
    saved = invoke("trace", sample("k3_encdec.keras"), *args, "--layer", "decoder", "-o", tmp_path / "t.npz")
    assert saved.exit_code == 0
    with np.load(tmp_path / "t.npz") as got:
        np.testing.assert_allclose(got["decoder/c0"], exp["encoder/c"][0], atol=1e-5, rtol=0)


def test_inspect_prints_the_step_equations():
    shown = invoke("inspect", sample("k3_lstm_dense.keras"))
    text = shown.stdout
    assert "one step, carrying h (5 values) and c (5 values)" in text
    assert "f_t = sigmoid(x_t · W_f + h_{t−1} · U_f + b_f)" in text
    assert "h_t = o_t ⊙ tanh(c_t)" in text
    assert "it is [U_f; W_f]ᵀ here" in " ".join(line.strip("│ ") for line in text.splitlines())
