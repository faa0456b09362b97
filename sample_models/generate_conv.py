#!/usr/bin/env python
"""Generate the convolution, pooling and ConvLSTM fixtures in sample_models/conv/ that
generate_layers.py (sections B and C) does not cover, with the values Keras computed for them.

Run once, from the repository root, in an environment with TensorFlow:

    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    python sample_models/generate_conv.py              # about two minutes on 2 cores

Same conventions as generate_layers.py (see layers/README.md for the key contract): each model is
built with Keras 3 (``k3_<name>.keras``) and, where tf_keras can compute it on a CPU, with tf_keras
(``k2_<name>.h5``); weights and inputs are seeded from the file's base name; the run deletes its
old outputs first and writes conv/manifest.json. Every model has a recurrent layer (lstmctl's gate
view needs one). TF on a CPU computes no channels_first convolution and, in tf_keras, no
channels_first (non-global) pooling, so those have no fixture here; tf_keras's ConvLSTM and
Keras 3's poolings compute channels_first (see conv/README.md).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import kerasgen as kg  # noqa: E402
from kerasgen import K2, K3, log  # noqa: E402

OUT = Path(__file__).resolve().parent / "conv"
MANIFEST = kg.Manifest()


def normal_inputs(model, rng, batch=3):
    return [rng.standard_normal((batch,) + tuple(int(d) for d in t.shape[1:])).astype(np.float32) for t in model.inputs]


def masked_frames(model, rng):
    """Whole frames zero (sample 0, last 2 steps: the mask Masking gives is False at every position)
    and single zero positions (sample 1 step 2 at (2, 3), sample 2 step 0 at (0, 0) and (5, 5))."""
    (x,) = normal_inputs(model, rng)
    x[0, -2:] = 0.0
    x[1, 2, 2, 3] = 0.0
    x[2, 0, 0, 0] = 0.0
    x[2, 0, 5, 5] = 0.0
    return [x]


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------


def build_conv2d(K):
    L = K.layers
    x = K.Input((7, 7, 4))
    branches = [
        L.Conv2D(4, 3, padding="same", strides=2, activation="relu", name="conv_same_s2")(x),
        L.Conv2D(4, (2, 3), dilation_rate=(2, 1), name="conv_valid_d21")(x),
        L.Conv2D(3, 4, strides=(2, 3), padding="same", name="conv_even_same_s23")(x),
        L.DepthwiseConv2D(2, strides=2, padding="same", use_bias=False, activation="tanh", name="dw_same_s2")(x),
    ]
    g = L.Conv2D(6, 3, padding="same", groups=2, use_bias=False, name="conv_groups2")(x)
    branches += [
        L.SeparableConv2D(3, 3, padding="same", strides=2, depth_multiplier=2, name="sep_same_s2")(g),
        L.DepthwiseConv2D(3, depth_multiplier=2, name="dw_valid_dm2")(g),
        L.SeparableConv2D(2, (2, 3), dilation_rate=2, name="sep_valid_d2")(g),
    ]
    y = L.Concatenate()([L.Flatten()(b) for b in branches])
    y = L.RepeatVector(3)(y)
    y = L.LSTM(3)(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="conv2d")


def build_conv3d(K):
    L = K.layers
    x = K.Input((5, 6, 5, 2))
    a = L.Conv3D(3, 3, padding="same", strides=2, name="conv3d_same_s2")(x)
    b = L.Conv3D(2, (2, 3, 2), dilation_rate=(1, 2, 1), activation="relu", name="conv3d_valid_d121")(x)
    c = L.Conv3D(4, 2, strides=(1, 2, 1), padding="same", use_bias=False, name="conv3d_same_s121")(x)
    branches = [
        L.GlobalMaxPooling3D(keepdims=True, name="gmp3d_keep")(a),
        L.GlobalAveragePooling3D(name="gap3d")(b),
        L.GlobalAveragePooling3D(keepdims=True, name="gap3d_keep")(c),
        L.MaxPooling3D(2, strides=(2, 1, 2), padding="same", name="max3d_same_s212")(c),
        L.AveragePooling3D((1, 2, 3), padding="valid", name="avg3d_123")(c),
    ]
    y = L.Concatenate()([L.Flatten()(t) for t in branches])
    y = L.RepeatVector(2)(y)
    y = L.GRU(3)(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="conv3d")


def build_conv1d_more(K):
    L = K.layers
    x = K.Input((10, 4))
    s = L.LSTM(4, return_sequences=True, name="lstm")(x)
    branches = [
        L.DepthwiseConv1D(3, depth_multiplier=2, padding="same", strides=2, name="dw1d_same_s2")(s),
        L.DepthwiseConv1D(2, dilation_rate=3, use_bias=False, name="dw1d_valid_d3")(s),
        L.Conv1D(3, 4, padding="same", name="conv1d_even_same")(s),
        L.Conv1D(2, 3, padding="causal", strides=2, name="conv1d_causal_s2")(s),
        L.Conv1D(2, 1, activation="sigmoid", name="conv1d_pointwise")(s),
        L.AveragePooling1D(4, strides=3, padding="same", name="avg1d_4_s3_same")(s),
        L.MaxPooling1D(2, strides=1, padding="same", name="max1d_2_s1_same")(s),
        L.AveragePooling1D(3, name="avg1d_3")(s),
    ]
    y = L.Concatenate(axis=1)([L.Reshape((-1, 1))(L.Flatten()(b)) for b in branches])
    y = L.Conv1D(2, 3, strides=3, name="conv1d_s3")(y)
    y = L.GRU(3, return_sequences=True, name="gru")(y)
    gm = L.GlobalMaxPooling1D(keepdims=True, name="gmp1d_keep")(y)
    ga = L.GlobalAveragePooling1D(keepdims=True, name="gap1d_keep")(y)
    y = L.Concatenate()([gm, ga])
    y = L.LSTM(2, name="lstm_out")(y)
    return K.Model(x, y, name="conv1d_more")


def build_channels_first_pooling(K):
    """Keras 3 only: tf_keras has TF's channels_first pooling kernels, which a CPU lacks."""
    L = K.layers
    x = K.Input((3, 6, 8))  # channels_first: 3 channels of 6x8
    branches = [
        L.MaxPooling2D(2, data_format="channels_first", name="max2d_cf")(x),
        L.AveragePooling2D(3, strides=2, padding="same", data_format="channels_first", name="avg2d_same_cf")(x),
        L.GlobalAveragePooling2D(data_format="channels_first", name="gap2d_cf")(x),
        L.GlobalMaxPooling2D(data_format="channels_first", keepdims=True, name="gmp2d_cf_keep")(x),
    ]
    t = L.Reshape((3, 48))(x)  # (channels, steps) for the 1D layers
    branches += [
        L.MaxPooling1D(3, strides=2, padding="same", data_format="channels_first", name="max1d_same_cf")(t),
        L.GlobalAveragePooling1D(data_format="channels_first", name="gap1d_cf")(t),
        L.AveragePooling3D((1, 2, 2), data_format="channels_first", name="avg3d_cf")(L.Reshape((3, 2, 3, 8))(x)),
    ]
    y = L.Concatenate()([L.Flatten()(b) for b in branches])
    y = L.RepeatVector(2)(y)
    y = L.LSTM(3)(y)
    return K.Model(x, y, name="channels_first_pooling")


def build_channels_first_global(K):
    L = K.layers
    x = K.Input((5, 4, 3))
    s = L.TimeDistributed(L.Flatten())(x)
    s = L.LSTM(4, return_sequences=True, name="lstm")(s)  # (batch, 5, 4): 5 "channels" of 4 steps
    a = L.GlobalAveragePooling1D(data_format="channels_first", name="gap1d_cf")(s)
    b = L.GlobalMaxPooling1D(data_format="channels_first", keepdims=True, name="gmp1d_cf_keep")(s)
    c = L.GlobalAveragePooling2D(data_format="channels_first", keepdims=True, name="gap2d_cf_keep")(x)
    d = L.GlobalMaxPooling2D(data_format="channels_first", name="gmp2d_cf")(x)
    y = L.Concatenate()([a, L.Flatten()(b), L.Flatten()(c), d])
    y = L.Dense(2)(y)
    return K.Model(x, y, name="channels_first_global")


def build_convlstm_options(K):
    L = K.layers
    x = K.Input((5, 6, 6, 2), name="frames")
    back = L.ConvLSTM2D(3, 3, padding="same", go_backwards=True, use_bias=False, activation="softsign", return_sequences=True,
                        name="convlstm_back")(x)  # fmt: skip
    out, h, c = L.ConvLSTM2D(2, (3, 2), strides=(2, 1), padding="same", return_state=True, name="convlstm_state")(back)
    again = L.ConvLSTM2D(2, (3, 2), strides=(2, 1), padding="same", recurrent_activation="hard_sigmoid", return_sequences=True,
                         name="convlstm_from_state")(back, initial_state=[h, c])  # fmt: skip
    seq = K.Input((4, 7, 3), name="signal")
    one = L.Bidirectional(L.ConvLSTM1D(2, 3, dilation_rate=2, return_sequences=True), merge_mode="sum", name="bidir_sum")(seq)
    two = L.Bidirectional(L.ConvLSTM1D(2, 2, strides=2, padding="same"), merge_mode="ave", name="bidir_last")(one)
    vol = K.Input((3, 5, 5, 5, 1), name="volume")
    three = L.ConvLSTM3D(2, 2, dilation_rate=2, name="convlstm3d_d2")(vol)
    y = L.Concatenate()([L.Flatten()(t) for t in (out, again, two, three)])
    y = L.Dense(2)(y)
    return K.Model([x, seq, vol], y, name="convlstm_options")


def build_convlstm_masked(K):
    L = K.layers
    x = K.Input((5, 6, 6, 2))
    m = L.Masking(0.0, name="masking")(x)
    seq = L.ConvLSTM2D(2, 3, padding="same", return_sequences=True, name="masked_seq")(m)
    last = L.ConvLSTM2D(2, 3, padding="same", name="masked_last")(m)
    bidir = L.Bidirectional(L.ConvLSTM2D(2, 3, padding="same"), name="bidir_masked")(m)
    y = L.Concatenate()([L.Flatten()(seq), L.Flatten()(last), L.Flatten()(bidir)])
    y = L.Dense(2)(y)
    return K.Model(x, y, name="convlstm_masked")


def build_convlstm_channels_first(K):
    """tf_keras only: TF on a CPU has no channels_first convolution; tf_keras's ConvLSTM transposes."""
    L = K.layers
    x = K.Input((4, 2, 6, 5), name="frames")  # (time, channels, rows, columns)
    seq = L.ConvLSTM2D(3, (3, 2), strides=(2, 1), padding="same", data_format="channels_first", return_sequences=True,
                       name="convlstm_cf_s21")(x)  # fmt: skip
    out, h, c = L.ConvLSTM2D(2, 2, data_format="channels_first", go_backwards=True, return_state=True, name="convlstm_cf_state")(seq)
    sig = K.Input((5, 3, 7), name="signal")  # (time, channels, steps)
    one = L.ConvLSTM1D(2, 3, padding="same", dilation_rate=2, data_format="channels_first", name="convlstm1d_cf")(sig)
    y = L.Concatenate()([L.Flatten()(t) for t in (out, h, c, one)])
    y = L.Dense(2)(y)
    return K.Model([x, sig], y, name="convlstm_channels_first")


def build_td_conv(K):
    L = K.layers
    x = K.Input((4, 8, 8, 3))
    y = L.TimeDistributed(L.Conv2D(4, 3, padding="same", strides=2, activation="relu"), name="td_conv")(x)
    y = L.TimeDistributed(L.MaxPooling2D(2, padding="same"), name="td_max")(y)
    y = L.TimeDistributed(L.Dropout(0.3), name="td_dropout")(y)
    y = L.TimeDistributed(L.SeparableConv2D(3, 2, padding="same"), name="td_sep")(y)
    y = L.TimeDistributed(L.Flatten(), name="td_flatten")(y)
    y = L.LSTM(3, return_sequences=True, name="lstm")(y)
    z = L.ConvLSTM2D(3, 3, padding="same", return_sequences=True, name="convlstm")(x)
    z = L.TimeDistributed(L.AveragePooling2D(3, strides=2), name="td_avg")(z)
    z = L.TimeDistributed(L.GlobalAveragePooling2D(), name="td_gap")(z)
    y = L.Concatenate()([y, z])
    y = L.GRU(2, name="gru")(y)
    return K.Model(x, y, name="td_conv")


# --------------------------------------------------------------------------
# the cases
# --------------------------------------------------------------------------

CONVLSTM_NOTE = {
    K3: "Keras 3 ConvLSTM default recurrent_activation is 'sigmoid'",
    K2: "tf_keras ConvLSTM default recurrent_activation is 'hard_sigmoid' = clip(0.2x + 0.5, 0, 1)",
}

BOTH = (K3, K2)
CASES = [
    # name, builder, description, inputs, the Keras versions that build it, notes
    ("conv2d", build_conv2d,
     "Input(7,7,4) -> Conv2D(4,3,same,strides 2,relu), Conv2D(4,(2,3),dilation (2,1)), Conv2D(3,4,strides (2,3),same), "
     "DepthwiseConv2D(2,strides 2,same,no bias,tanh); Conv2D(6,3,same,groups 2,no bias) -> SeparableConv2D(3,3,same,"
     "strides 2,depth_multiplier 2), DepthwiseConv2D(3,depth_multiplier 2), SeparableConv2D(2,(2,3),dilation 2); "
     "Flatten, Concatenate -> RepeatVector(3) -> LSTM(3) -> Dense(2)", normal_inputs, BOTH, {}),
    ("conv3d", build_conv3d,
     "Input(5,6,5,2) -> Conv3D(3,3,same,strides 2) -> GlobalMaxPooling3D(keepdims); Conv3D(2,(2,3,2),dilation (1,2,1),"
     "relu) -> GlobalAveragePooling3D; Conv3D(4,2,strides (1,2,1),same,no bias) -> GlobalAveragePooling3D(keepdims), "
     "MaxPooling3D(2,strides (2,1,2),same), AveragePooling3D((1,2,3)); Flatten, Concatenate -> RepeatVector(2) -> "
     "GRU(3) -> Dense(2)", normal_inputs, BOTH, {}),
    ("conv1d_more", build_conv1d_more,
     "Input(10,4) -> LSTM(4, rs) -> DepthwiseConv1D(3,dm 2,same,strides 2), DepthwiseConv1D(2,dilation 3,no bias), "
     "Conv1D(3,4,same), Conv1D(2,3,causal,strides 2), Conv1D(2,1,sigmoid), AveragePooling1D(4,strides 3,same), "
     "MaxPooling1D(2,strides 1,same), AveragePooling1D(3); each Flatten -> Reshape(-1,1), Concatenate(axis 1) -> "
     "Conv1D(2,3,strides 3) -> GRU(3, rs) -> GlobalMaxPooling1D(keepdims), GlobalAveragePooling1D(keepdims) -> "
     "Concatenate -> LSTM(2)", normal_inputs, BOTH, {}),
    ("channels_first_pooling", build_channels_first_pooling,
     "Keras 3 only: Input(3,6,8) channels_first -> MaxPooling2D(2), AveragePooling2D(3,strides 2,same), "
     "GlobalAveragePooling2D, GlobalMaxPooling2D(keepdims); Reshape(3,48) -> MaxPooling1D(3,strides 2,same), "
     "GlobalAveragePooling1D; Reshape(3,2,3,8) -> AveragePooling3D((1,2,2)); all data_format channels_first; "
     "Flatten, Concatenate -> RepeatVector(2) -> LSTM(3)", normal_inputs, (K3,), {}),
    ("channels_first_global", build_channels_first_global,
     "Input(5,4,3) -> TimeDistributed(Flatten) -> LSTM(4, rs) -> GlobalAveragePooling1D(channels_first), "
     "GlobalMaxPooling1D(channels_first, keepdims); Input -> GlobalAveragePooling2D(channels_first, keepdims), "
     "GlobalMaxPooling2D(channels_first); Flatten, Concatenate -> Dense(2)", normal_inputs, BOTH, {}),
    ("convlstm_options", build_convlstm_options,
     "frames(5,6,6,2) -> ConvLSTM2D(3,3,same,go_backwards,no bias,softsign,rs) 'convlstm_back' -> ConvLSTM2D(2,(3,2),"
     "strides (2,1),same,return_state) 'convlstm_state' [out, h, c]; ConvLSTM2D(2,(3,2),strides (2,1),same,"
     "hard_sigmoid,rs) 'convlstm_from_state' on convlstm_back with initial_state [h, c]; signal(4,7,3) -> "
     "Bidirectional(ConvLSTM1D(2,3,dilation 2,rs), sum) -> Bidirectional(ConvLSTM1D(2,2,strides 2,same), ave); "
     "volume(3,5,5,5,1) -> ConvLSTM3D(2,2,dilation 2); Flatten, Concatenate -> Dense(2)", normal_inputs, BOTH,
     CONVLSTM_NOTE),
    ("convlstm_masked", build_convlstm_masked,
     "Input(5,6,6,2) -> Masking(0.0) (mask (batch, time, 6, 6): per position) -> ConvLSTM2D(2,3,same,rs) "
     "'masked_seq', ConvLSTM2D(2,3,same) 'masked_last', Bidirectional(ConvLSTM2D(2,3,same)) 'bidir_masked'; Flatten, "
     "Concatenate -> Dense(2). Input zero: sample 0 whole frames at steps 3-4, sample 1 step 2 at (2,3), sample 2 "
     "step 0 at (0,0) and (5,5). Keras masks ConvLSTM states per position", masked_frames, BOTH, CONVLSTM_NOTE),
    ("convlstm_channels_first", build_convlstm_channels_first,
     "tf_keras only: frames(4,2,6,5) channels_first -> ConvLSTM2D(3,(3,2),strides (2,1),same,rs) 'convlstm_cf_s21' -> "
     "ConvLSTM2D(2,2,go_backwards,return_state) 'convlstm_cf_state' [out, h, c]; signal(5,3,7) channels_first -> "
     "ConvLSTM1D(2,3,same,dilation 2) 'convlstm1d_cf'; Flatten, Concatenate -> Dense(2). All data_format "
     "channels_first: inputs (time, channels, *spatial), states (filters, *spatial)", normal_inputs, (K2,), CONVLSTM_NOTE),
    ("td_conv", build_td_conv,
     "Input(4,8,8,3) -> TimeDistributed(Conv2D(4,3,same,strides 2,relu)) -> TimeDistributed(MaxPooling2D(2,same)) -> "
     "TimeDistributed(Dropout(0.3)) -> TimeDistributed(SeparableConv2D(3,2,same)) -> TimeDistributed(Flatten) -> "
     "LSTM(3, rs); Input -> ConvLSTM2D(3,3,same,rs) -> TimeDistributed(AveragePooling2D(3,strides 2)) -> "
     "TimeDistributed(GlobalAveragePooling2D); Concatenate -> GRU(2)", normal_inputs, BOTH, CONVLSTM_NOTE),
]


def make_case(K, prefix, name, builder, description, inputs, notes):
    base = "%s_%s" % (prefix, name)
    log(base)
    seed = kg.seed_of(base)
    kg.fresh(K, seed)
    model = builder(K)
    kg.randomise(K, model, seed)
    feed = inputs(model, np.random.default_rng(seed + 1))
    store, rnn_names, classes = kg.expected_values(K, model, feed)
    path = OUT / (base + (".keras" if K is K3 else ".h5"))
    kg.save_model(K, model, path, feed, store, MANIFEST, description, classes, rnn_names, notes.get(K, ""))


def main(argv=None):
    only = set(sys.argv[1:] if argv is None else argv)  # case names, for debugging; a full run takes none
    OUT.mkdir(exist_ok=True)
    if not only:
        for p in OUT.iterdir():
            if p.suffix in (".keras", ".h5", ".npz") or p.name == "manifest.json":
                p.unlink()
    cases = [c for c in CASES if not only or c[0] in only]
    for K, prefix in ((K3, "k3"), (K2, "k2")):
        for name, builder, description, inputs, versions, notes in cases:
            if K in versions:
                make_case(K, prefix, name, builder, description, inputs, notes)
    if not only:
        MANIFEST.write(OUT / "manifest.json")
    log("done: %d files" % len(MANIFEST.entries))


if __name__ == "__main__":
    sys.exit(main())
