#!/usr/bin/env python
"""Generate sample_models/stateful/: `stateful=True` models and what Keras computes when a sequence
is fed to them in pieces (predict called once per piece, the layers carrying their states), for
lstmctl's `run --state-in/--state-out` and `Model.run(x, state=...)`.

For each case ``<name>.keras`` (Keras 3.15.1) or ``<name>.h5`` (tf_keras 2.21.0) and
``<file>.expected.npz`` holding:

* ``x``: the whole input (batch 3, 9 steps); ``pieces``: the (start, stop) steps of each piece;
* ``piece<i>/output_<j>``: output j of the model after predict on piece i, states carried from the
  pieces before (zero before piece 0);
* ``full/output_<j>``: output j of one predict on all of x, the model's states zero;

and ``k3_lstm.input.npy``, the x of ``k3_lstm.keras`` (the README's streaming example).

Run from the repository root in the TensorFlow environment (about 30 s):

    python sample_models/generate_stateful.py

Weights look trained (kerasgen.randomise); the generator is deterministic and deletes its old outputs.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import kerasgen as kg  # noqa: E402
from kerasgen import K2, K3, log  # noqa: E402

OUT = Path(__file__).resolve().parent / "stateful"
BATCH, STEPS = 3, 9
PIECES = [(0, 4), (4, 5), (5, 9)]  # a long piece, one step alone (the streaming case), the rest


def inp(K, features, steps=None):
    shape = (BATCH, steps, *features) if isinstance(features, tuple) else (BATCH, steps, features)
    return K.Input(batch_shape=shape) if K is K3 else K.Input(batch_shape=shape)


def lstm(K):
    x = inp(K, 4)
    seq, h, c = K.layers.LSTM(5, stateful=True, return_sequences=True, return_state=True, name="lstm")(x)
    return K.Model(x, [K.layers.Dense(2, name="head")(seq), h, c])


def lstm_fixed_time(K, steps=STEPS):
    """The time axis declared (9 steps): pieces are shorter than it."""
    x = inp(K, 4, steps)
    h = K.layers.LSTM(5, stateful=True, name="lstm")(x)
    return K.Model(x, K.layers.Dense(2, activation="tanh", name="head")(h))


def gru(reset_after):
    def build(K):
        x = inp(K, 4)
        seq, h = K.layers.GRU(5, stateful=True, reset_after=reset_after, return_sequences=True, return_state=True, name="gru")(x)
        return K.Model(x, [seq, h])

    return build


def simple_rnn(K):
    x = inp(K, 4)
    seq, h = K.layers.SimpleRNN(5, stateful=True, return_sequences=True, return_state=True, name="rnn")(x)
    return K.Model(x, [seq, h])


def bidirectional(K):
    x = inp(K, 4)
    y = K.layers.Bidirectional(K.layers.LSTM(4, stateful=True, return_sequences=True), name="bi")(x)
    return K.Model(x, K.layers.Dense(2, name="head")(y))


def stack(K):
    """Two stateful layers, the second a RNN over a stack of cells."""
    x = inp(K, 4)
    y = K.layers.LSTM(5, stateful=True, return_sequences=True, name="first")(x)
    cells = [K.layers.LSTMCell(4), K.layers.GRUCell(3)]
    out = K.layers.RNN(cells, stateful=True, return_sequences=True, return_state=True, name="stack")(y)
    return K.Model(x, list(out))


def masked(K):
    x = inp(K, 4)
    y = K.layers.Masking(0.0, name="mask")(x)
    seq, h, c = K.layers.LSTM(5, stateful=True, return_sequences=True, return_state=True, name="lstm")(y)
    return K.Model(x, [seq, h, c])


def conv_lstm(K):
    x = inp(K, (6, 2))
    seq, h, c = K.layers.ConvLSTM1D(3, 2, padding="same", stateful=True, return_sequences=True, return_state=True, name="conv")(x)
    return K.Model(x, [seq, h, c])


CASES = [
    ("k3_lstm", K3, lstm, "LSTM(5, stateful, return_sequences, return_state) -> Dense(2) on the sequence"),
    ("k2_lstm", K2, lstm, "the same with tf_keras"),
    ("k3_lstm_fixed_time", K3, lstm_fixed_time, "Input declares 9 steps; LSTM(5, stateful) -> Dense(2, tanh); pieces of 4, 1, 4 steps"),
    ("k3_gru", K3, gru(True), "GRU(5, stateful, reset_after=True)"),
    ("k2_gru_before", K2, gru(False), "GRU(5, stateful, reset_after=False), tf_keras"),
    ("k3_simple_rnn", K3, simple_rnn, "SimpleRNN(5, stateful)"),
    ("k3_bidirectional", K3, bidirectional, "Bidirectional(LSTM(4, stateful, return_sequences)) -> Dense(2): each piece's backward pass starts from the previous piece's backward state"),
    ("k2_bidirectional", K2, bidirectional, "the same with tf_keras"),
    ("k3_stack", K3, stack, "LSTM(5, stateful) -> RNN([LSTMCell(4), GRUCell(3)], stateful, return_state)"),
    ("k3_masked", K3, masked, "Masking(0) -> LSTM(5, stateful): sample 1 padded at steps 3-5 (across a piece boundary), sample 2 ends padded"),
    ("k3_conv_lstm", K3, conv_lstm, "ConvLSTM1D(3 filters, kernel 2, same, stateful) over (6, 2) frames"),
]


def inputs(name, model):
    rng = np.random.default_rng(kg.seed_of(name + "/x"))
    x = rng.standard_normal((BATCH, STEPS, *model.inputs[0].shape[2:])).astype(np.float32)
    if "masked" in name:
        x[1, 3:6] = 0.0
        x[2, 7:] = 0.0
    return x


def predict(model, x):
    return [kg.to_np(o) for o in kg.flatten(K3, model.predict(x, batch_size=BATCH, verbose=0))]


def built(name, K, build):
    """A new model with the case's weights, its states zero. (A new model rather than
    reset_states: Keras 3.15's reset fails for a RNN over a stack of cells.)"""
    kg.fresh(K, kg.seed_of(name))
    model = build(K)
    kg.randomise(K, model, kg.seed_of(name))
    return model


def make(name, K, build, description):
    model = built(name, K, build)
    x = inputs(name, model)
    store = {"x": x, "pieces": np.array(PIECES, np.int64)}
    for j, o in enumerate(predict(model, x)):
        store[f"full/output_{j}"] = o
    model = built(name, K, build)
    if model.inputs[0].shape[1] is not None:
        # Keras refuses pieces of a declared time axis: its twin with a free time axis and the
        # same weights streams them.
        twin = built(name, K, lambda K: build(K, None))
        twin.set_weights(model.get_weights())
    else:
        twin = model
    for i, (a, b) in enumerate(PIECES):
        for j, o in enumerate(predict(twin, x[:, a:b])):
            store[f"piece{i}/output_{j}"] = o
    path = OUT / (name + (".keras" if K is K3 else ".h5"))
    model.save(str(path))
    # The saved file, reloaded by the Keras that wrote it, computes the same.
    again = K.models.load_model(str(path), compile=False)
    fixed = again.inputs[0].shape[1] is not None
    for i, (a, b) in enumerate([(0, STEPS)] if fixed else PIECES):
        for j, o in enumerate(predict(again, x[:, a:b])):
            kg.assert_close(o, store[f"full/output_{j}" if fixed else f"piece{i}/output_{j}"], f"{name} reload piece {i} output {j}")
    np.savez_compressed(str(path) + ".expected.npz", **store)
    if name == "k3_lstm":  # the README's streaming example reads it
        np.save(OUT / "k3_lstm.input.npy", x)
    log("  wrote", path.name)
    return {"file": path.name, "builder": kg.BUILDER[K], "description": description}


def main():
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*"):
        if old.name != "README.md":
            old.unlink()
    cases = [make(*case) for case in CASES]
    (OUT / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")


if __name__ == "__main__":
    main()
