#!/usr/bin/env python
"""Generate the layer fixtures in sample_models/layers/ and the values Keras computed for them.

Run once, from the repository root, in an environment with TensorFlow:

    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    python sample_models/generate_layers.py            # a few minutes on 2 cores

Sections: A = the RNN wrapper over cells (LSTMCell, GRUCell, SimpleRNNCell, lists of cells,
StackedRNNCells); B = ConvLSTM1D/2D/3D (plain and in Bidirectional); C = the layers real models put
around recurrent layers (convolutions, pooling, normalisation, attention, merges, reshaping,
activations, and in Keras 3 keras.ops nodes). Each model is built with Keras 3 (``k3_<name>.keras``)
and, where tf_keras has the layer, with tf_keras (``k2_<name>.h5``). The key contract of the
``<file>.expected.npz`` files is in layers/README.md. The run deletes its old outputs first and is
deterministic. lstmctl itself never imports TensorFlow; only the generators do.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import kerasgen as kg  # noqa: E402
from kerasgen import K2, K3, keras, log  # noqa: E402

OUT = Path(__file__).resolve().parent / "layers"
MANIFEST = kg.Manifest()


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------


def normal_inputs(model, rng, batch=3):
    feed = []
    for t in model.inputs:
        shape = (batch,) + tuple(int(d) for d in t.shape[1:])
        feed.append(rng.standard_normal(shape).astype(np.float32))
    return feed


def batch2(model, rng):
    return normal_inputs(model, rng, batch=2)


def masked_inputs(model, rng):
    """All-zero steps: sample 0 trailing (5..), sample 1 in the middle (step 3), sample 2 none."""
    (x,) = normal_inputs(model, rng)
    x[0, 5:, :] = 0.0
    x[1, 3, :] = 0.0
    return [x]


# --------------------------------------------------------------------------
# A. the RNN wrapper and cells
# --------------------------------------------------------------------------


def build_rnn_lstmcell(K):
    L = K.layers
    x = K.Input((5, 3))
    y = L.RNN(L.LSTMCell(4))(x)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="rnn_lstmcell")


def build_rnn_stack3(K):
    L = K.layers
    x = K.Input((5, 3))
    outs = L.RNN(
        [L.LSTMCell(4), L.LSTMCell(3), L.LSTMCell(2)],
        return_sequences=True,
        return_state=True,
        name="stack",
    )(x)
    return K.Model(x, kg.flatten(K, outs), name="rnn_stack3")


def build_rnn_stacked_cells(K):
    L = K.layers
    x = K.Input((6, 3))
    y = L.RNN(L.StackedRNNCells([L.GRUCell(3), L.SimpleRNNCell(2)]))(x)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="rnn_stacked_cells")


def build_rnn_gru_cells(K):
    L = K.layers
    x = K.Input((6, 3))
    a = L.RNN(L.GRUCell(3, reset_after=True), return_sequences=True, name="gru_after")(x)
    a = L.RNN(L.GRUCell(2, reset_after=False), name="gru_before")(a)
    b = L.RNN(L.SimpleRNNCell(3, activation="relu"), name="simple_relu")(x)
    y = L.Concatenate()([a, b])
    y = L.Dense(2)(y)
    return K.Model(x, y, name="rnn_gru_cells")


def build_rnn_options(K):
    L = K.layers
    x = K.Input((6, 3))
    y = L.RNN(
        L.LSTMCell(3, recurrent_activation="hard_sigmoid", use_bias=False, activation="elu"),
        go_backwards=True,
        return_sequences=True,
        name="lstmcell_backwards",
    )(x)
    y = L.RNN(
        [L.SimpleRNNCell(3, activation="softsign"), L.GRUCell(2, recurrent_activation="hard_sigmoid")],
        go_backwards=True,
        return_sequences=True,
        name="stack_backwards",
    )(y)
    y = L.RNN(L.GRUCell(3), return_sequences=True, trainable=False, name="rnn_frozen")(y)
    y = L.LSTM(2, trainable=False, name="lstm_frozen")(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="rnn_options")


def build_rnn_masked(K):
    L = K.layers
    x = K.Input((7, 4))
    m = L.Masking(0.0)(x)
    y = L.RNN([L.LSTMCell(3), L.GRUCell(2)], return_sequences=True, name="stack")(m)
    y = L.RNN(L.SimpleRNNCell(2), name="simple")(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="rnn_masked")


def build_rnn_encdec(K):
    L = K.layers
    enc_in = K.Input((6, 3), name="encoder_input")
    dec_in = K.Input((5, 3), name="decoder_input")
    enc = L.RNN([L.LSTMCell(4), L.LSTMCell(4)], return_state=True, name="encoder")(enc_in)
    enc_states = enc[1:]  # [[h0, c0], [h1, c1]]
    y = L.RNN([L.LSTMCell(4), L.LSTMCell(4)], return_sequences=True, name="decoder")(
        dec_in, initial_state=enc_states
    )
    y = L.Dense(3, activation="softmax")(y)
    return K.Model([enc_in, dec_in], y, name="rnn_encdec")


def build_rnn_bidir(K):
    L = K.layers
    x = K.Input((6, 3))
    y = L.Bidirectional(L.RNN(L.LSTMCell(3), return_sequences=True))(x)
    y = L.Bidirectional(L.RNN([L.GRUCell(2), L.GRUCell(2)]), merge_mode="sum")(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="rnn_bidir")


# --------------------------------------------------------------------------
# B. ConvLSTM
# --------------------------------------------------------------------------


def build_convlstm1d(K):
    L = K.layers
    x = K.Input((4, 8, 2))
    y = L.ConvLSTM1D(3, 3, padding="valid", strides=1, return_sequences=True, name="convlstm1d_valid")(x)
    y, h, c = L.ConvLSTM1D(2, 2, padding="same", strides=2, return_state=True, name="convlstm1d_same_s2")(y)
    y = L.Flatten()(y)
    y = L.Dense(2)(y)
    return K.Model(x, [y, h, c], name="convlstm1d")


def build_convlstm2d(K):
    L = K.layers
    x = K.Input((4, 6, 6, 2))
    y = L.ConvLSTM2D(3, (3, 3), padding="same", dilation_rate=2, return_sequences=True,
                     name="convlstm2d_dilated")(x)
    y = L.ConvLSTM2D(2, (2, 2), strides=2, padding="valid", name="convlstm2d_s2")(y)
    y = L.Flatten()(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="convlstm2d")


def build_convlstm3d(K):
    L = K.layers
    x = K.Input((3, 4, 4, 4, 1))
    y = L.ConvLSTM3D(2, 2, padding="same")(x)
    y = L.Flatten()(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="convlstm3d")


def build_bidir_convlstm2d(K):
    L = K.layers
    x = K.Input((4, 6, 6, 2))
    y = L.Bidirectional(L.ConvLSTM2D(2, 3, padding="same", return_sequences=True))(x)
    y = L.GlobalAveragePooling3D()(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="bidir_convlstm2d")


CONVLSTM_NOTE = {
    K3: "Keras 3 ConvLSTM default recurrent_activation is 'sigmoid'",
    K2: "tf_keras ConvLSTM default recurrent_activation is 'hard_sigmoid' = clip(0.2x + 0.5, 0, 1)",
}
HARD_SIGMOID_NOTE = {
    K3: "Keras 3 hard_sigmoid is clip(x / 6 + 0.5, 0, 1)",
    K2: "tf_keras hard_sigmoid is clip(0.2 * x + 0.5, 0, 1)",
}


# --------------------------------------------------------------------------
# the cases
# --------------------------------------------------------------------------


class Case:
    def __init__(self, name, builder, description, inputs=None, k2=True, k3=True, notes=None,
                 weights_only=False):
        self.name = name
        self.builder = builder
        self.description = description
        self.inputs = inputs or normal_inputs
        self.k2 = k2
        self.k3 = k3
        self.notes = notes or {}
        self.weights_only = weights_only


CASES_AB = [
    Case("rnn_lstmcell", build_rnn_lstmcell, "Input(5,3) -> RNN(LSTMCell(4)) -> Dense(2)"),
    Case("rnn_stack3", build_rnn_stack3,
         "Input(5,3) -> RNN([LSTMCell(4), LSTMCell(3), LSTMCell(2)], rs, return_state) named 'stack'; "
         "7 model outputs: seq, h0, c0, h1, c1, h2, c2 (Keras returns the states nested per cell)",
         weights_only=True),
    Case("rnn_stacked_cells", build_rnn_stacked_cells,
         "Input(6,3) -> RNN(StackedRNNCells([GRUCell(3), SimpleRNNCell(2)])) -> Dense(2)"),
    Case("rnn_gru_cells", build_rnn_gru_cells,
         "Input(6,3) -> RNN(GRUCell(3, reset_after=True), rs) 'gru_after' -> RNN(GRUCell(2, reset_after=False)) "
         "'gru_before'; Input -> RNN(SimpleRNNCell(3, relu)) 'simple_relu'; Concatenate -> Dense(2)"),
    Case("rnn_options", build_rnn_options,
         "Input(6,3) -> RNN(LSTMCell(3, hard_sigmoid, elu, no bias), go_backwards, rs) 'lstmcell_backwards' "
         "-> RNN([SimpleRNNCell(3, softsign), GRUCell(2, hard_sigmoid)], go_backwards, rs) 'stack_backwards' "
         "-> RNN(GRUCell(3), rs, trainable=False) 'rnn_frozen' -> LSTM(2, trainable=False) 'lstm_frozen' -> Dense(2)",
         notes=HARD_SIGMOID_NOTE),
    Case("rnn_masked", build_rnn_masked,
         "Input(7,4) -> Masking(0.0) -> RNN([LSTMCell(3), GRUCell(2)], rs) 'stack' -> RNN(SimpleRNNCell(2)) "
         "'simple' -> Dense(2); stored input all-zero at sample 0 steps 5-6 and sample 1 step 3",
         inputs=masked_inputs),
    Case("rnn_encdec", build_rnn_encdec,
         "encoder_input(6,3) -> RNN([LSTMCell(4), LSTMCell(4)], return_state) 'encoder'; decoder_input(5,3) -> "
         "RNN([LSTMCell(4), LSTMCell(4)], rs) 'decoder' with initial_state=[[h0, c0], [h1, c1]] of the encoder "
         "-> Dense(3, softmax)"),
    Case("rnn_bidir", build_rnn_bidir,
         "Input(6,3) -> Bidirectional(RNN(LSTMCell(3), rs)) concat -> Bidirectional(RNN([GRUCell(2), GRUCell(2)]), "
         "merge_mode='sum') -> Dense(2)"),
    Case("convlstm1d", build_convlstm1d,
         "Input(4,8,2) -> ConvLSTM1D(3, 3, valid, rs) -> ConvLSTM1D(2, 2, same, strides 2, return_state) -> "
         "Flatten -> Dense(2); outputs [dense, h, c]", notes=CONVLSTM_NOTE),
    Case("convlstm2d", build_convlstm2d,
         "Input(4,6,6,2) -> ConvLSTM2D(3, 3x3, same, dilation_rate 2, rs) -> ConvLSTM2D(2, 2x2, strides 2, valid) "
         "-> Flatten -> Dense(2)", notes=CONVLSTM_NOTE),
    Case("convlstm3d", build_convlstm3d,
         "Input(3,4,4,4,1) -> ConvLSTM3D(2, 2, same) -> Flatten -> Dense(2); batch 2", inputs=batch2,
         notes=CONVLSTM_NOTE),
    Case("bidir_convlstm2d", build_bidir_convlstm2d,
         "Input(4,6,6,2) -> Bidirectional(ConvLSTM2D(2, 3, same, rs)) concat -> GlobalAveragePooling3D -> Dense(2)",
         notes=CONVLSTM_NOTE),
]


def make_case(K, prefix, case):
    base = "%s_%s" % (prefix, case.name)
    log(base)
    seed = kg.seed_of(base)
    kg.fresh(K, seed)
    model = case.builder(K)
    kg.randomise(K, model, seed)
    rng = np.random.default_rng(seed + 1)
    feed = case.inputs(model, rng)
    store, rnn_names, classes = kg.expected_values(K, model, feed)
    notes = case.notes.get(K, "")
    if K is K3:
        path = OUT / (base + ".keras")
    else:
        path = OUT / (base + ".h5")
    kg.save_model(K, model, path, feed, store, MANIFEST, case.description, classes, rnn_names, notes)
    if case.weights_only:
        if K is K3:
            p = OUT / (base + ".weights.h5")
            how = "keras 3 model.save_weights"
        else:
            p = OUT / (base + "_weights.h5")
            how = "tf_keras model.save_weights (legacy HDF5 weights)"
        kg.save_weights(K, model, p, feed, store, MANIFEST, case.description + " (%s)" % how,
                        classes, rnn_names, notes)


def clean_outputs():
    OUT.mkdir(exist_ok=True)
    for p in OUT.iterdir():
        if p.suffix in (".keras", ".h5", ".npz", ".npy") or p.name == "manifest.json":
            p.unlink()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    only = set(argv)  # optional case names, for debugging; a full run takes none
    OUT.mkdir(exist_ok=True)
    cases = CASES_AB + CASES_C
    if only:
        cases = [c for c in cases if c.name in only]
    else:
        clean_outputs()
    for case in cases:
        if case.k3:
            make_case(K3, "k3", case)
    for case in cases:
        if case.k2:
            make_case(K2, "k2", case)
    if not only:
        MANIFEST.write(OUT / "manifest.json")
    log("done: %d files" % len(MANIFEST.entries))


CASES_C = []

if __name__ == "__main__":
    sys.exit(main())
