"""inspect's step equations, sizes and the Colah mapping, checked by computing with them."""

import numpy as np

import lstmctl
from conftest import SAMPLES, sample
from lstmctl.analysis import describe


def _recurrent(facts, name):
    return next(layer for layer in facts["layers"] if layer["name"] == name)["recurrent"]


def test_lstm_equations_with_the_layers_sizes():
    model = lstmctl.load(sample("k3_lstm_dense.keras"))
    eq = _recurrent(describe.inspect_facts(model), "lstm")["equations"]
    assert eq["step"][1] == "f_t = sigmoid(x_t · W_f + h_{t−1} · U_f + b_f)"
    assert eq["step"][-2:] == ["c_t = f_t ⊙ c_{t−1} + i_t ⊙ c̃_t", "h_t = o_t ⊙ tanh(c_t)"]
    assert eq["sizes"] == "x_t (4,), h_t (5,), c_t (5,); W_<g> (4, 5), U_<g> (5, 5), b_<g> (5,)"
    assert eq["state_sizes"] == {"h": 5, "c": 5}
    assert "(5 × 9) matrix on [h, x]: it is [U_f; W_f]ᵀ here" in eq["colah"]


def test_the_colah_matrix_is_what_the_layer_computes():
    """[U_f; W_f]ᵀ · [h, x] + b_f equals the layer's own forget pre-activation x·W_f + h·U_f + b_f."""
    model = lstmctl.load(sample("k3_lstm_dense.keras"))
    g = model.gates("lstm")
    W, U, b = g["lstm/W_f"], g["lstm/U_f"], g["lstm/b_f"]
    colah = np.concatenate([U, W], axis=0).T
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal(4), rng.standard_normal(5)
    np.testing.assert_allclose(colah @ np.concatenate([h, x]) + b, x @ W + h @ U + b, rtol=1e-6)
    assert colah.shape == (5, 9)


def test_gru_equations_follow_reset_after():
    model = lstmctl.load(SAMPLES / "k2_gru.h5")
    facts = describe.inspect_facts(model)
    eqs = [layer["recurrent"]["equations"] for layer in facts["layers"] if layer.get("recurrent")]
    assert eqs
    for layer, eq in zip([lay for lay in facts["layers"] if lay.get("recurrent")], eqs):
        reset_after = layer["recurrent"]["reset_after"]
        assert ("r_t ⊙ (h_{t−1} · U_h + rb_h)" in eq["step"][2]) is reset_after
        assert eq["step"][3] == "h_t = z_t ⊙ h_{t−1} + (1 − z_t) ⊙ h̃_t"
        assert eq["state_sizes"] == {"h": layer["recurrent"]["units"]}
        assert layer["recurrent"]["trainable"] is True


def test_forget_bias_left_at_one_by_unit_forget_bias(tmp_path):
    rng = np.random.default_rng(1)
    bias = rng.uniform(-0.3, 0.3, 12).astype(np.float32)
    bias[3:6] = 1.0  # Keras's i, f, c, o blocks of 3: b_f exactly 1, as unit_forget_bias leaves it
    path = tmp_path / "w.npz"
    np.savez(path, kernel=rng.standard_normal((2, 12)).astype(np.float32), recurrent_kernel=rng.standard_normal((3, 12)).astype(np.float32), bias=bias)
    facts = describe.inspect_facts(lstmctl.load(path, convention="keras"))
    note = _recurrent(facts, "lstm")["forget_bias"]["note"]
    assert note.startswith("every b_f is exactly 1.0: unit_forget_bias=True set them to 1")
    bias[4] = 0.9
    np.savez(path, kernel=rng.standard_normal((2, 12)).astype(np.float32), recurrent_kernel=rng.standard_normal((3, 12)).astype(np.float32), bias=bias)
    note = _recurrent(describe.inspect_facts(lstmctl.load(path, convention="keras")), "lstm")["forget_bias"]["note"]
    assert note.startswith("the saved forget bias already includes training")
