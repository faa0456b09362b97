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



# --------------------------------------------------------------------------
# C. layers around recurrent layers
# --------------------------------------------------------------------------


def padded_inputs(model, rng, batch=3):
    """Token inputs (int32, 1..19) padded with 0: sample 0 at the end (last 2 steps), sample 1 at the
    start (first 2 steps), sample 2 not at all. Float inputs: normal, with all-zero steps at the end of
    sample 0 (last 2 steps) and at step 2 of sample 1."""
    feed = []
    for t in model.inputs:
        shape = (batch,) + tuple(int(d) for d in t.shape[1:])
        if "int" in str(t.dtype):
            v = rng.integers(1, 20, size=shape).astype(np.int32)
            v[0, -2:] = 0
            v[1, :2] = 0
        else:
            v = rng.standard_normal(shape).astype(np.float32)
            v[0, -2:] = 0.0
            v[1, 2] = 0.0
        feed.append(v)
    return feed


def build_conv1d(K):
    L = K.layers
    x = K.Input((12, 4))
    a = L.Conv1D(4, 3, padding="valid", name="conv_valid")(x)
    b = L.Conv1D(4, 3, padding="causal", dilation_rate=2, name="conv_causal_d2")(a)
    c = L.Conv1D(4, 3, padding="same", groups=2, activation="relu", name="conv_groups2")(b)
    d = L.SeparableConv1D(4, 3, padding="same", depth_multiplier=2, name="sepconv")(c)
    e = L.Conv1D(3, 3, padding="same", strides=2, use_bias=False, name="conv_same_s2")(d)
    f = L.Conv1D(3, 2, padding="valid", strides=2, activation="tanh", name="conv_valid_s2")(d)
    g = L.Conv1D(3, 3, padding="same", dilation_rate=2, name="conv_same_d2")(x)
    g = L.SeparableConv1D(3, 3, strides=2, padding="valid", name="sepconv_s2")(g)
    y = L.Concatenate(name="concat")([e, f, g])
    y = L.LSTM(4)(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="conv1d")


def build_lrcn(K):
    L = K.layers
    x = K.Input((4, 8, 8, 2))
    y = L.TimeDistributed(L.Conv2D(3, 3, activation="relu"), name="td_conv")(x)
    y = L.TimeDistributed(L.MaxPooling2D(2), name="td_pool")(y)
    y = L.TimeDistributed(L.Dropout(0.2), name="td_dropout")(y)
    y = L.TimeDistributed(L.BatchNormalization(), name="td_bn")(y)
    y = L.TimeDistributed(L.Flatten(), name="td_flatten")(y)
    y = L.LSTM(4)(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="lrcn")


def build_pooling1d(K):
    L = K.layers
    x = K.Input((8, 3))
    s = L.LSTM(4, return_sequences=True)(x)
    p1 = L.MaxPooling1D(2, name="max_2")(s)
    p2 = L.AveragePooling1D(3, strides=2, padding="same", name="avg_3_s2_same")(s)
    g = L.GRU(3)(L.Concatenate()([p1, p2]))
    p3 = L.MaxPooling1D(3, strides=1, padding="same", name="max_3_s1_same")(s)
    p4 = L.AveragePooling1D(2, strides=1, padding="valid", name="avg_2_s1")(s)
    p5 = L.MaxPooling1D(3, strides=2, padding="valid", name="max_3_s2")(s)
    gap = L.GlobalAveragePooling1D(name="gap")(p3)
    gmp = L.GlobalMaxPooling1D(name="gmp")(p4)
    gmp5 = L.GlobalMaxPooling1D(name="gmp5")(p5)
    y = L.Concatenate()([g, gap, gmp, gmp5])
    y = L.Dense(2)(y)
    return K.Model(x, y, name="pooling1d")


def build_pooling2d3d(K):
    L = K.layers
    x = K.Input((3, 4, 4, 2))
    seq = L.ConvLSTM2D(3, 3, padding="same", return_sequences=True, name="convlstm_seq")(x)
    last = L.ConvLSTM2D(2, 3, padding="same", name="convlstm_last")(seq)
    a = L.MaxPooling2D(2, name="max2d_2")(last)
    b = L.AveragePooling2D(3, strides=2, padding="same", name="avg2d_3_s2_same")(last)
    c = L.MaxPooling2D(3, strides=2, padding="same", name="max2d_3_s2_same")(last)
    d = L.AveragePooling2D((2, 3), strides=(1, 2), padding="valid", name="avg2d_2x3_s1x2")(last)
    e = L.GlobalMaxPooling2D(name="gmp2d")(last)
    f = L.GlobalAveragePooling2D(name="gap2d")(last)
    g = L.MaxPooling3D((1, 2, 2), name="max3d_1x2x2")(seq)
    h = L.AveragePooling3D(2, strides=(1, 2, 2), padding="same", name="avg3d_2_s122_same")(seq)
    i = L.AveragePooling3D(2, name="avg3d_2")(seq)
    j = L.MaxPooling3D(2, strides=1, padding="same", name="max3d_2_s1_same")(seq)
    flat = [L.Flatten()(t) for t in (a, b, c, d, g, h, i, j)]
    y = L.Concatenate()(flat + [e, f])
    y = L.Dense(2)(y)
    return K.Model(x, y, name="pooling2d3d")


def build_masked_pooling(K):
    L = K.layers
    tok = K.Input((7,), dtype="int32", name="tokens")
    seq = K.Input((7, 3), name="frames")
    e = L.Embedding(20, 4, mask_zero=True, name="embed")(tok)
    gap_e = L.GlobalAveragePooling1D(name="gap_embed")(e)
    s = L.LSTM(4, return_sequences=True, name="lstm_tokens")(e)
    gap_s = L.GlobalAveragePooling1D(name="gap_lstm")(s)
    gmp_s = L.GlobalMaxPooling1D(name="gmp_lstm")(s)
    m = L.Masking(0.0, name="masking")(seq)
    gap_m = L.GlobalAveragePooling1D(name="gap_masking")(m)
    r = L.GRU(3, return_sequences=True, name="gru_frames")(m)
    gap_r = L.GlobalAveragePooling1D(name="gap_gru")(r)
    y = L.Concatenate()([gap_e, gap_s, gmp_s, gap_m, gap_r])
    y = L.Dense(2)(y)
    return K.Model([tok, seq], y, name="masked_pooling")


def build_norms(K):
    L = K.layers
    x = K.Input((6, 4))
    y = L.LSTM(5, return_sequences=True)(x)
    y = L.BatchNormalization(name="bn_last")(y)
    y = L.LayerNormalization(name="ln")(y)
    y = L.BatchNormalization(axis=1, name="bn_time")(y)
    y = L.LayerNormalization(center=False, scale=False, name="ln_plain")(y)
    y = L.BatchNormalization(center=False, scale=False, epsilon=0.01, name="bn_plain")(y)
    y = L.LayerNormalization(axis=-1, epsilon=0.1, name="ln_eps")(y)
    y = L.UnitNormalization(name="unitnorm")(y)
    y = L.GRU(3)(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="norms")


def build_attention(K):
    L = K.layers
    q_in = K.Input((5, 3), name="query_input")
    v_in = K.Input((6, 3), name="value_input")
    q = L.LSTM(4, return_sequences=True, name="q_lstm")(q_in)
    v = L.LSTM(4, return_sequences=True, name="v_lstm")(v_in)
    k = L.Dense(4, name="key_dense")(v)
    a1 = L.Attention(use_scale=True, name="att_dot_scaled")([q, v])
    a2 = L.Attention(score_mode="concat", name="att_concat")([q, v, k])
    a3 = L.Attention(use_scale=True, score_mode="concat", name="att_concat_scaled")([q, v])
    a4 = L.Attention(name="att_causal")([q, q], use_causal_mask=True)
    a5 = L.AdditiveAttention(name="additive")([q, v])
    a6 = L.AdditiveAttention(use_scale=False, name="additive_noscale")([q, v, k])
    a7, scores = L.Attention(name="att_scores")([q, v], return_attention_scores=True)
    y = L.Concatenate()([a1, a2, a3, a4, a5, a6, a7])
    y = L.LSTM(3)(y)
    y = L.Dense(2)(y)
    return K.Model([q_in, v_in], [y, scores], name="attention")


def build_attention_masked(K):
    L = K.layers
    q_in = K.Input((5,), dtype="int32", name="query_tokens")
    v_in = K.Input((6,), dtype="int32", name="value_tokens")
    q_emb = L.Embedding(20, 3, mask_zero=True, name="q_embed")(q_in)
    v_emb = L.Embedding(20, 3, mask_zero=True, name="v_embed")(v_in)
    q = L.LSTM(4, return_sequences=True, name="q_lstm")(q_emb)
    v = L.LSTM(4, return_sequences=True, name="v_lstm")(v_emb)
    a1 = L.Attention(use_scale=True, name="att_masked")([q, v])
    a2 = L.AdditiveAttention(name="additive_masked")([q, v])
    # Keras 3's MultiHeadAttention deletes the masks of the tensors it is called on, so another
    # layer reading the same tensors would see masks or not by Keras's node order: its own LSTMs.
    q_m = L.LSTM(4, return_sequences=True, name="q_lstm_mha")(q_emb)
    v_m = L.LSTM(4, return_sequences=True, name="v_lstm_mha")(v_emb)
    a3 = L.MultiHeadAttention(2, 3, name="mha_masked")(q_m, v_m)
    y = L.Concatenate()([a1, a2, a3])
    y = L.GlobalAveragePooling1D(name="gap")(y)
    y = L.Dense(2)(y)
    return K.Model([q_in, v_in], y, name="attention_masked")


def build_mha(K):
    L = K.layers
    x = K.Input((6, 4), name="x")
    x2 = K.Input((6, 4), name="x_masked")
    s = L.LSTM(6, return_sequences=True, name="lstm")(x)
    m1 = L.MultiHeadAttention(num_heads=2, key_dim=3, name="mha_self")(s, s)
    m2 = L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=2, name="mha_causal")(s, s, use_causal_mask=True)
    k = L.Dense(5, name="key_dense")(s)
    m3, scores = L.MultiHeadAttention(num_heads=2, key_dim=2, use_bias=False, name="mha_key_scores")(
        s, s, key=k, return_attention_scores=True)
    s2 = L.LSTM(6, return_sequences=True, name="lstm_masked")(L.Masking(0.0, name="masking")(x2))
    m4 = L.MultiHeadAttention(num_heads=2, key_dim=3, name="mha_propagated_mask")(s2, s2)
    y = L.Concatenate()([m1, m2, m3])
    y = L.GRU(3, name="gru")(y)
    z = L.GRU(3, name="gru_masked")(m4)
    y = L.Concatenate()([y, z])
    y = L.Dense(2)(y)
    return K.Model([x, x2], [y, scores], name="mha")


def build_luong(K):
    L = K.layers
    enc_in = K.Input((6, 3), name="encoder_input")
    dec_in = K.Input((5, 3), name="decoder_input")
    enc_seq, h, c = L.LSTM(4, return_sequences=True, return_state=True, name="encoder")(enc_in)
    dec_seq = L.LSTM(4, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    scores = L.Dot(axes=[2, 2], name="scores")([dec_seq, enc_seq])
    attn = L.Activation("softmax", name="attention")(scores)
    context = L.Dot(axes=[2, 1], name="context")([attn, enc_seq])
    y = L.Concatenate(name="concat")([context, dec_seq])
    y = L.TimeDistributed(L.Dense(4, activation="tanh"), name="td_dense")(y)
    y = L.Dense(3, activation="softmax", name="probs")(y)
    cos = L.Dot(axes=1, normalize=True, name="cosine")([h, c])
    return K.Model([enc_in, dec_in], [y, cos], name="luong")


def build_merges_shapes(K):
    L = K.layers
    x = K.Input((6, 4))
    a = L.LSTM(4, return_sequences=True, name="lstm")(x)
    b = L.GRU(4, return_sequences=True, name="gru")(x)
    sub = L.Subtract(name="subtract")([a, b])
    mx = L.Maximum(name="maximum")([a, b])
    mn = L.Minimum(name="minimum")([a, b, x])
    per = L.Permute((2, 1), name="permute")(sub)
    crop = L.Cropping1D((1, 2), name="crop")(mx)
    pad = L.ZeroPadding1D((2, 1), name="pad")(crop)
    up = L.UpSampling1D(2, name="upsample")(mn)
    z = L.Concatenate(name="concat_pad_sub")([pad, sub])
    z = L.LSTM(3, return_sequences=True, name="lstm_after_merges")(z)
    fl = L.Flatten(name="flatten_lstm")(z)
    u = L.GRU(2, name="gru_upsampled")(up)
    p = L.SimpleRNN(2, name="rnn_permuted")(per)
    y = L.Concatenate()([fl, u, p])
    y = L.Dense(2)(y)
    return K.Model(x, y, name="merges_shapes")


def build_activations(K):
    L = K.layers
    x = K.Input((6, 4))
    s = L.LSTM(5, return_sequences=True, name="lstm")(x)
    if K is K3:
        leaky = L.LeakyReLU(negative_slope=0.2, name="leaky")
    else:
        leaky = L.LeakyReLU(alpha=0.2, name="leaky")
    branches = [
        leaky(s),
        L.PReLU(name="prelu")(s),
        L.PReLU(shared_axes=[1], name="prelu_shared")(s),
        L.ELU(alpha=0.7, name="elu")(s),
        L.ReLU(max_value=0.6, negative_slope=0.1, threshold=0.05, name="relu_options")(s),
        L.ReLU(name="relu")(s),
        L.Softmax(axis=1, name="softmax_time")(s),
        L.Softmax(name="softmax")(s),
        L.Rescaling(scale=0.5, offset=0.1, name="rescaling")(s),
    ]
    for act in ("selu", "gelu", "swish", "softplus", "softsign", "hard_sigmoid", "exponential", "relu6"):
        branches.append(L.Activation(act, name="act_" + act)(s))
    if K is K2:
        branches.append(L.ThresholdedReLU(theta=0.1, name="thresholded")(s))
    y = L.Concatenate()(branches)
    y = L.GRU(3)(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="activations")


def build_ops(K):
    """Keras 3 only: keras.ops on LSTM outputs inside a Functional model."""
    ops = keras.ops
    L = K.layers
    x = K.Input((6, 4))
    s = L.LSTM(5, return_sequences=True, name="lstm_a")(x)
    s2 = L.LSTM(5, return_sequences=True, name="lstm_b")(x)
    last = s[:, -1, :]
    every2 = s[:, ::2]
    rev = s[:, ::-1, :]
    head = s[..., :2]
    mean = ops.mean(s, axis=1)
    total = ops.sum(s, axis=-1)
    mx = ops.max(s, axis=1)
    sq = ops.squeeze(s[:, -1:, :], axis=1)
    flat = ops.reshape(s, (-1, 30))
    tr = ops.transpose(s, (0, 2, 1))
    cat = ops.concatenate([last, mean], axis=-1)
    st = ops.stack([last, mx], axis=1)
    seqs = ops.concatenate(
        [s + s2, s * 2.0, s - s2, s / 3.0, -s, ops.tanh(s), ops.sigmoid(s), ops.exp(s), ops.matmul(s, tr), rev],
        axis=-1,
    )
    ed = ops.expand_dims(last, 1)
    y1 = L.Dense(2, name="dense_vec")(ops.concatenate([cat, mx, sq], axis=-1))
    y2 = L.LSTM(3, name="lstm_ops")(seqs)
    y3 = L.GRU(2, name="gru_every2")(every2)
    y4 = L.SimpleRNN(2, name="rnn_head")(head)
    return K.Model(x, [y1, y2, y3, y4, total, flat, st, ed], name="ops")


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


CASES_C = [
    Case("conv1d", build_conv1d,
         "Input(12,4) -> Conv1D(4,3,valid) 'conv_valid' -> Conv1D(4,3,causal,dilation 2) 'conv_causal_d2' -> "
         "Conv1D(4,3,same,groups 2,relu) 'conv_groups2' -> SeparableConv1D(4,3,same,depth_multiplier 2) 'sepconv' -> "
         "{Conv1D(3,3,same,strides 2,no bias) 'conv_same_s2', Conv1D(3,2,valid,strides 2,tanh) 'conv_valid_s2'}; "
         "Input -> Conv1D(3,3,same,dilation 2) 'conv_same_d2' -> SeparableConv1D(3,3,strides 2,valid) 'sepconv_s2'; "
         "Concatenate -> LSTM(4) -> Dense(2)"),
    Case("lrcn", build_lrcn,
         "Input(4,8,8,2) -> TimeDistributed(Conv2D(3,3,relu)) -> TimeDistributed(MaxPooling2D(2)) -> "
         "TimeDistributed(Dropout(0.2)) -> TimeDistributed(BatchNormalization()) -> TimeDistributed(Flatten()) -> "
         "LSTM(4) -> Dense(2)"),
    Case("pooling1d", build_pooling1d,
         "Input(8,3) -> LSTM(4, rs) -> MaxPooling1D(2), AveragePooling1D(3, strides 2, same) -> Concatenate -> GRU(3); "
         "MaxPooling1D(3, strides 1, same) -> GlobalAveragePooling1D; AveragePooling1D(2, strides 1) -> "
         "GlobalMaxPooling1D; MaxPooling1D(3, strides 2) -> GlobalMaxPooling1D; Concatenate -> Dense(2)"),
    Case("pooling2d3d", build_pooling2d3d,
         "Input(3,4,4,2), batch 2 -> ConvLSTM2D(3,3,same,rs) 'convlstm_seq' -> ConvLSTM2D(2,3,same) 'convlstm_last'; "
         "on the 4D state: MaxPooling2D(2), AveragePooling2D(3, strides 2, same), MaxPooling2D(3, strides 2, same), "
         "AveragePooling2D((2,3), strides (1,2)), GlobalMaxPooling2D, GlobalAveragePooling2D; on the 5D sequence: "
         "MaxPooling3D((1,2,2)), AveragePooling3D(2, strides (1,2,2), same), AveragePooling3D(2), "
         "MaxPooling3D(2, strides 1, same); Flatten, Concatenate -> Dense(2)", inputs=batch2),
    Case("masked_pooling", build_masked_pooling,
         "tokens(7,) int32 -> Embedding(20,4,mask_zero) -> GlobalAveragePooling1D 'gap_embed' and -> LSTM(4, rs) -> "
         "GlobalAveragePooling1D 'gap_lstm' / GlobalMaxPooling1D 'gmp_lstm'; frames(7,3) -> Masking(0.0) -> "
         "GlobalAveragePooling1D 'gap_masking' and -> GRU(3, rs) -> GlobalAveragePooling1D 'gap_gru'; Concatenate -> "
         "Dense(2). Tokens padded (sample 0 last 2, sample 1 first 2); frames all-zero at sample 0 last 2 steps and "
         "sample 1 step 2", inputs=padded_inputs),
    Case("norms", build_norms,
         "Input(6,4) -> LSTM(5, rs) -> BatchNormalization 'bn_last' -> LayerNormalization 'ln' -> "
         "BatchNormalization(axis=1) 'bn_time' -> LayerNormalization(center=False, scale=False) 'ln_plain' -> "
         "BatchNormalization(center=False, scale=False, epsilon=0.01) 'bn_plain' -> LayerNormalization(epsilon=0.1) "
         "'ln_eps' -> UnitNormalization -> GRU(3) -> Dense(2); inference mode (moving statistics)"),
    Case("attention", build_attention,
         "query_input(5,3) -> LSTM(4, rs) 'q_lstm'; value_input(6,3) -> LSTM(4, rs) 'v_lstm' -> Dense(4) 'key_dense'; "
         "Attention(use_scale) 'att_dot_scaled' [q, v]; Attention(score_mode concat) 'att_concat' [q, v, key]; "
         "Attention(use_scale, concat) 'att_concat_scaled' [q, v]; Attention 'att_causal' [q, q] use_causal_mask; "
         "AdditiveAttention 'additive' [q, v]; AdditiveAttention(use_scale=False) 'additive_noscale' [q, v, key]; "
         "Attention 'att_scores' [q, v] return_attention_scores; Concatenate -> LSTM(3) -> Dense(2); outputs "
         "[dense, scores]"),
    Case("attention_masked", build_attention_masked,
         "query_tokens(5,) / value_tokens(6,) int32 -> Embedding(20,3,mask_zero) -> LSTM(4, rs) each (masks "
         "propagate); Attention(use_scale) 'att_masked', AdditiveAttention 'additive_masked' on [q, v], "
         "MultiHeadAttention(2 heads, key_dim 3) 'mha_masked' on LSTMs of its own, with the propagated masks; Concatenate -> "
         "GlobalAveragePooling1D (masked) -> Dense(2). Tokens padded (sample 0 last 2, sample 1 first 2)",
         inputs=padded_inputs),
    Case("mha", build_mha,
         "x(6,4) -> LSTM(6, rs) 'lstm' s; MultiHeadAttention(2, key_dim 3) 'mha_self'(s, s); MHA(2, 3, value_dim 2) "
         "'mha_causal'(s, s, use_causal_mask); MHA(2, key_dim 2, use_bias=False) 'mha_key_scores'(s, s, "
         "key=Dense(5)(s), return_attention_scores); x_masked(6,4) -> Masking -> LSTM(6, rs) -> MHA(2, 3) "
         "'mha_propagated_mask' (self, mask propagated) -> GRU(3) 'gru_masked'; Concatenate -> GRU(3) 'gru'; "
         "Concatenate -> Dense(2); outputs [dense, scores]. x_masked has all-zero steps (sample 0 last 2, "
         "sample 1 step 2)", inputs=padded_inputs),
    Case("luong", build_luong,
         "Luong attention: encoder_input(6,3) -> LSTM(4, rs, return_state) 'encoder'; decoder_input(5,3) -> LSTM(4, rs) "
         "'decoder' with initial_state [h, c]; Dot(axes=[2,2]) 'scores' [dec, enc] -> Activation(softmax) "
         "'attention' -> Dot(axes=[2,1]) 'context' [attn, enc] -> Concatenate [context, dec] -> "
         "TimeDistributed(Dense(4, tanh)) -> Dense(3, softmax) 'probs'; Dot(axes=1, normalize=True) 'cosine' [h, c]; "
         "outputs [probs, cosine]"),
    Case("merges_shapes", build_merges_shapes,
         "Input(6,4) -> LSTM(4, rs), GRU(4, rs); Subtract, Maximum, Minimum (3 inputs, with the Input); "
         "Permute((2,1)); Cropping1D((1,2)) -> ZeroPadding1D((2,1)); UpSampling1D(2); Concatenate -> LSTM(3, rs) "
         "-> Flatten; GRU(2) on the upsampled; SimpleRNN(2) on the permuted; Concatenate -> Dense(2)"),
    Case("activations", build_activations,
         "Input(6,4) -> LSTM(5, rs) -> each of LeakyReLU(0.2), PReLU, PReLU(shared_axes=[1]), ELU(0.7), "
         "ReLU(max_value 0.6, negative_slope 0.1, threshold 0.05), ReLU, Softmax(axis=1), Softmax, "
         "Rescaling(0.5, offset 0.1), Activation(selu|gelu|swish|softplus|softsign|hard_sigmoid|exponential|relu6), "
         "and in tf_keras ThresholdedReLU(0.1) -> Concatenate -> GRU(3) -> Dense(2)",
         notes=HARD_SIGMOID_NOTE),
    Case("ops", build_ops,
         "Keras 3 only: Input(6,4) -> LSTM(5, rs) 'lstm_a' s, LSTM(5, rs) 'lstm_b' s2; keras.ops nodes: s[:, -1, :], "
         "s[:, ::2], s[:, ::-1, :], s[..., :2], mean(s, 1), sum(s, -1), max(s, 1), squeeze(s[:, -1:, :], 1), "
         "reshape(s, (-1, 30)), transpose(s, (0,2,1)), concatenate, stack, s + s2, s * 2.0, s - s2, s / 3.0, -s, "
         "tanh, sigmoid, exp, matmul(s, transpose), expand_dims; -> Dense(2) 'dense_vec', LSTM(3) 'lstm_ops', "
         "GRU(2) 'gru_every2', SimpleRNN(2) 'rnn_head'; 8 outputs [dense_vec, lstm_ops, gru_every2, rnn_head, sum, "
         "reshape, stack, expand_dims]", k2=False),
]

if __name__ == "__main__":
    sys.exit(main())
