#!/usr/bin/env python
"""Generate sample_models/extra_layers/: what section C of generate_layers.py leaves out for the
normalization, attention, activation, merge, reshaping and Rescaling layers — masks reaching
them, the options each Keras version adds, and the 2D/3D forms.

Same contract, helpers and manifest format as generate_layers.py (see layers/README.md): each
case is built by Keras 3 (``k3_<name>.keras``) and, where tf_keras has it, by tf_keras
(``k2_<name>.h5``), with the values Keras computed in ``<file>.expected.npz``. Run from the
repository root in the TensorFlow environment:

    python sample_models/generate_extra_layers.py        # about a minute on 2 cores

It deletes its old outputs first and is deterministic.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import generate_layers as gl  # noqa: E402
import kerasgen as kg  # noqa: E402
from kerasgen import K2, K3, log  # noqa: E402

# generate_layers.make_case writes into its module's OUT and MANIFEST: point them here.
gl.OUT = Path(__file__).resolve().parent / "extra_layers"
gl.MANIFEST = kg.Manifest()


def padded_tokens(model, rng, batch=4):
    """Token inputs as generate_layers.padded_inputs, plus a fourth sample that is all padding
    (every position masked); float inputs as there."""
    feed = gl.padded_inputs(model, rng, batch)
    for v in feed:
        v[3] = 0
    return feed


def masks_inputs(model, rng):
    """Token inputs padded as padded_tokens; the int32 (6, 6) `attention_mask` 0/1 with a 1 at the
    start of every row; float inputs normal."""
    feed = []
    for t in model.inputs:
        shape = (4,) + tuple(int(d) for d in t.shape[1:])
        if "int" not in str(t.dtype):
            v = rng.standard_normal(shape).astype(np.float32)
        elif len(shape) == 3:
            v = (rng.uniform(size=shape) < 0.6).astype(np.int32)
            v[..., 0] = 1
        else:
            v = rng.integers(1, 20, size=shape).astype(np.int32)
            v[0, -2:] = 0
            v[1, :2] = 0
            v[3] = 0
        feed.append(v)
    return feed


# --------------------------------------------------------------------------
# the models
# --------------------------------------------------------------------------


def build_norms_more(K):
    L = K.layers
    x = K.Input((6, 4))
    m = L.Masking(0.0, name="masking")(x)
    s = L.LSTM(5, return_sequences=True, name="lstm")(m)
    y = L.BatchNormalization(center=False, name="bn_no_center")(s)
    y = L.BatchNormalization(scale=False, epsilon=0.1, name="bn_no_scale")(y)
    y = L.LayerNormalization(axis=[1, 2], name="ln_two_axes")(y)
    y = L.LayerNormalization(axis=[-1, 1], name="ln_mixed_signs")(y)
    y = L.LayerNormalization(scale=False, name="ln_no_scale")(y)
    y = L.UnitNormalization(axis=[1, 2], name="unit_two_axes")(y)
    if K is K3:
        y = L.LayerNormalization(rms_scaling=True, name="ln_rms")(y)
        y = L.BatchNormalization(axis=1, renorm=True, name="bn_renorm")(y)
    else:
        y = L.BatchNormalization(axis=[1, 2], name="bn_two_axes")(y)
        y = L.BatchNormalization(axis=1, renorm=True, name="bn_renorm")(y)
    y = L.LSTM(3, name="lstm_masked")(y)  # sees the Masking mask through every normalization
    return K.Model(x, L.Dense(2)(y), name="norms_more")


def build_attention_more(K):
    L = K.layers
    q_in = K.Input((5,), dtype="int32", name="query_tokens")
    v_in = K.Input((6,), dtype="int32", name="value_tokens")
    q = L.LSTM(4, return_sequences=True, name="q_lstm")(L.Embedding(20, 4, mask_zero=True, name="q_embed")(q_in))
    v = L.LSTM(4, return_sequences=True, name="v_lstm")(L.Embedding(20, 4, mask_zero=True, name="v_embed")(v_in))
    k = L.Dense(4, name="key_dense")(v)
    a1, s1 = L.Attention(name="att_causal_scores")([q, q], use_causal_mask=True, return_attention_scores=True)
    a2 = L.Attention(score_mode="concat", name="att_concat_key")([q, v, k])
    a3, s3 = L.AdditiveAttention(name="additive_scores")([q, v], return_attention_scores=True)
    y = L.Concatenate(name="concat")([a1, a2, a3])
    y = L.LSTM(3, name="lstm_after")(y)
    return K.Model([q_in, v_in], [L.Dense(2)(y), s1, s3], name="attention_more")


def build_mha_more(K):
    L = K.layers
    tok = K.Input((6,), dtype="int32", name="tokens")
    am = K.Input((6, 6), dtype="int32", name="attention_mask")
    grid = K.Input((3, 4, 5), name="grid")
    e = L.Embedding(20, 4, mask_zero=True, name="embed")(tok)
    # One LSTM per attention layer: Keras 3's MultiHeadAttention deletes the masks of the tensors it
    # is called on, so a second reader of the same tensor would see a mask or not by call order.
    s1, s2, s3, s4, s5, s6 = (L.LSTM(6, return_sequences=True, name="lstm_%d" % i)(e) for i in range(1, 7))
    m1, sc1 = L.MultiHeadAttention(2, 3, name="mha_masked_scores")(s1, s1, return_attention_scores=True)
    m2 = L.MultiHeadAttention(2, 3, output_shape=5, name="mha_attention_mask")(s2, s2, attention_mask=am)
    m3 = L.MultiHeadAttention(3, 2, value_dim=4, name="mha_causal_masked")(s3, s3, use_causal_mask=True)
    k = L.Dense(5, name="key_dense")(s4)
    m4 = L.MultiHeadAttention(2, 2, name="mha_key")(s4, s4, key=k)
    kw = {"sliding_window": 2, "use_gate": True} if K is K3 else {"softmax_robust_masking": True}
    m5, sc5 = L.MultiHeadAttention(2, 3, name="mha_version_option", **kw)(s5, s5, return_attention_scores=True)
    # Called after the attention (it reads its output), the merge sees s6 without a mask in Keras 3.
    m6 = L.MultiHeadAttention(2, 3, name="mha_then_merge")(s6, s6)
    gated = L.Multiply(name="multiply_after_mha")([s6, m6])
    g1 = L.MultiHeadAttention(2, 2, name="mha_grid")(grid, grid)
    g2 = L.MultiHeadAttention(2, 2, attention_axes=(2,), output_shape=(3,), name="mha_grid_axis2")(grid, grid)
    y = L.Concatenate(name="concat")([m1, m2, m3, m4, m5])
    y = L.LSTM(3, name="lstm_after")(y)
    g = L.Flatten(name="flatten")(L.Concatenate(name="concat_grid")([g1, g2]))
    g = L.Concatenate(name="concat_flat")([g, L.Flatten(name="flatten_gated")(gated)])
    return K.Model([tok, am, grid], [L.Dense(2)(L.Concatenate()([y, g])), sc1, sc5], name="mha_more")


def build_dot_more(K):
    L = K.layers
    a_in = K.Input((5, 3), name="a")
    b_in = K.Input((5, 4), name="b")
    a = L.LSTM(4, return_sequences=True, name="a_lstm")(a_in)
    b = L.GRU(4, return_sequences=True, name="b_gru")(b_in)
    last = L.LSTM(4, name="a_last")(a_in)
    d1 = L.Dot(axes=-1, name="dot_last")([a, b])
    d2 = L.Dot(axes=[1, 1], name="dot_time")([a, b])
    d3 = L.Dot(axes=[2, 2], normalize=True, name="dot_cosine")([a, b])
    d4 = L.Dot(axes=[1, 2], name="dot_vector_sequence")([last, b])
    d5 = L.Dot(axes=-1, normalize=True, name="dot_vectors")([last, last])
    y = L.Concatenate(name="concat")([L.Flatten()(d) for d in (d1, d2, d3)] + [d4, d5])
    return K.Model([a_in, b_in], L.Dense(2)(y), name="dot_more")


def build_activations_more(K):
    L = K.layers
    x = K.Input((3, 3), name="x")
    m = L.Masking(0.0, name="masking")(x)
    s = L.LSTM(3, return_sequences=True, name="lstm")(m)
    # A (batch, 3) mask broadcasts onto (batch, 3, 3) from the right (batch 3): Keras applies it so.
    branches = [
        L.Softmax(name="softmax_masked")(s),
        L.Softmax(axis=[1, 2], name="softmax_two_axes")(s),
        L.LeakyReLU(name="leaky_default")(s),
        L.ReLU(max_value=6.0, name="relu6")(s),
        L.ReLU(negative_slope=0.2, name="relu_leaky")(s),
        L.ReLU(threshold=0.1, name="relu_threshold")(s),
        L.ELU(name="elu_default")(s),
    ]
    if K is K3:
        branches.append(L.Rescaling(scale=[0.5, 2.0, -1.0], offset=[0.1, 0.0, 0.2], name="rescaling_lists")(s))
    else:
        branches.append(L.ThresholdedReLU(name="thresholded_default")(s))
    y = L.Concatenate(name="concat")(branches)
    y = L.LSTM(3, name="lstm_masked")(y)
    grid = K.Input((4, 4, 2), name="grid")
    p = L.PReLU(shared_axes=[1, 2], name="prelu_grid")(grid)
    return K.Model([x, grid], [L.Dense(2)(y), p], name="activations_more")


def softmax_inputs(model, rng):
    """Batch 3 (the mask broadcast needs it): x with all-zero steps, grid normal."""
    x, grid = gl.normal_inputs(model, rng)
    x[0, 2] = 0.0
    x[1, 0] = 0.0
    return [x, grid]


def build_merges_more(K):
    L = K.layers
    tok = K.Input((6,), dtype="int32", name="tokens")
    raw = K.Input((6, 4), name="raw")
    e = L.Embedding(20, 4, mask_zero=True, name="embed")(tok)
    a = L.LSTM(4, return_sequences=True, name="a")(e)
    b = L.GRU(4, return_sequences=True, name="b")(e)
    c = L.Dense(4, name="c")(raw)  # unmasked
    vec = L.LSTM(4, name="vec")(raw)
    outs = [
        L.Subtract(name="subtract_masked")([a, b]),
        L.Maximum(name="maximum_masked")([a, b]),
        L.Minimum(name="minimum_partly_masked")([a, c, b]),
        L.Maximum(name="maximum_unmasked_first")([c, a]),
        L.Multiply(name="multiply_masked")([a, b]),
        L.Multiply(name="multiply_partly_masked")([a, c]),
        L.Add(name="add_ranks")([c, vec]),
        L.Minimum(name="minimum_ranks")([vec, c]),
    ]
    y = L.Concatenate(name="concat")(outs)
    y = L.LSTM(3, name="lstm_after")(y)
    return K.Model([tok, raw], L.Dense(2)(y), name="merges_more")


def build_reshaping_more(K):
    L = K.layers
    x = K.Input((4, 5, 6, 2), name="frames")
    seq = L.ConvLSTM2D(2, 3, padding="same", return_sequences=True, name="convlstm")(x)
    last = L.ConvLSTM2D(3, 3, padding="same", name="convlstm_last")(seq)
    maps = [
        L.Cropping2D(((1, 0), (2, 1)), name="crop2d")(last),
        L.ZeroPadding2D(((0, 1), (2, 0)), name="pad2d")(last),
        L.UpSampling2D((2, 1), name="up2d")(last),
        L.Cropping2D(1, data_format="channels_first", name="crop2d_first")(last),
        L.ZeroPadding2D(1, data_format="channels_first", name="pad2d_first")(last),
        L.UpSampling2D(2, data_format="channels_first", name="up2d_first")(last),
        L.Cropping3D(((1, 1), (0, 2), (1, 0)), name="crop3d")(seq),
        L.ZeroPadding3D((1, 0, 2), name="pad3d")(seq),
        L.UpSampling3D((1, 2, 1), name="up3d")(seq),
        L.Permute((3, 1, 2), name="permute3")(last),
    ]
    flat = L.Concatenate(name="concat")([L.Flatten()(t) for t in maps])
    s = L.Reshape((4, 60), name="to_sequence")(seq)
    if K is K3:
        s = L.ZeroPadding1D(2, data_format="channels_first", name="pad1d_first")(s)
    s = L.Cropping1D(1, name="crop1d")(L.UpSampling1D(3, name="up1d")(s))
    y = L.LSTM(3, name="lstm")(s)
    return K.Model(x, L.Dense(2)(L.Concatenate()([y, flat])), name="reshaping_more")


CASES = [
    gl.Case("norms_more", build_norms_more,
            "Input(6,4) -> Masking -> LSTM(5, rs) -> BatchNormalization(center=False), (scale=False, epsilon 0.1) -> "
            "LayerNormalization(axis=[1,2]), (axis=[-1,1]), (scale=False) -> UnitNormalization(axis=[1,2]) -> "
            "Keras 3: LayerNormalization(rms_scaling=True), tf_keras: BatchNormalization(axis=[1,2]); "
            "BatchNormalization(axis=1, renorm=True) -> LSTM(3) (masked) -> Dense(2)",
            inputs=gl.masked_inputs),
    gl.Case("attention_more", build_attention_more,
            "query_tokens(5,) / value_tokens(6,) int32 -> Embedding(mask_zero) -> LSTM(4, rs) q, v; Dense(4) key; "
            "Attention([q, q], use_causal_mask, return_attention_scores) 'att_causal_scores'; "
            "Attention(concat)([q, v, key]) 'att_concat_key'; AdditiveAttention([q, v], return_attention_scores) "
            "'additive_scores'; Concatenate -> LSTM(3) -> Dense(2); outputs [dense, scores, scores]. Batch 4: tokens "
            "padded (sample 0 last 2, sample 1 first 2, sample 3 all padding)",
            inputs=padded_tokens),
    gl.Case("mha_more", build_mha_more,
            "tokens(6,) -> Embedding(mask_zero) -> LSTM(6, rs) s (one per attention layer, 'lstm_1'..'lstm_6'); "
            "MultiHeadAttention(s, s) with return_attention_scores "
            "'mha_masked_scores'; MHA(output_shape=5)(s, s, attention_mask=<input attention_mask (6,6) int32>); "
            "MHA(3 heads, key_dim 2, value_dim 4)(s, s, use_causal_mask); MHA(s, s, key=Dense(5)(s)); "
            "Keras 3 MHA(sliding_window=2, use_gate=True), tf_keras MHA(softmax_robust_masking=True), with scores; "
            "Multiply([s, MHA(s, s)]) -> Flatten (Keras 3's attention has deleted s's mask by then); grid(3,4,5) -> "
            "MHA(grid, grid) (attention axes 1, 2) and MHA(attention_axes=(2,), output_shape=(3,)); Concatenate -> "
            "LSTM(3), Flatten -> Dense(2); outputs [dense, scores, scores]. Batch 4, tokens padded as attention_more",
            inputs=masks_inputs),
    gl.Case("dot_more", build_dot_more,
            "a(5,3) -> LSTM(4, rs), b(5,4) -> GRU(4, rs), a -> LSTM(4) 'a_last'; Dot(axes=-1), Dot(axes=[1,1]), "
            "Dot(axes=[2,2], normalize), Dot(axes=[1,2]) [vector, sequence], Dot(axes=-1, normalize) [vector, vector] "
            "-> Flatten, Concatenate -> Dense(2)"),
    gl.Case("activations_more", build_activations_more,
            "x(3,3) -> Masking -> LSTM(3, rs) s (mask (batch, 3) broadcast onto (batch, 3, 3) from the right: batch 3); "
            "Softmax (masked), Softmax(axis=[1,2]), LeakyReLU(), ReLU(max_value=6), ReLU(negative_slope=0.2), "
            "ReLU(threshold=0.1), ELU(); Keras 3 Rescaling(scale=[0.5,2,-1], offset=[0.1,0,0.2]), tf_keras "
            "ThresholdedReLU(); Concatenate -> LSTM(3) (masked) -> Dense(2); grid(4,4,2) -> PReLU(shared_axes=[1,2]); "
            "outputs [dense, prelu]. x all-zero at sample 0 step 2 and sample 1 step 0",
            inputs=softmax_inputs),
    gl.Case("merges_more", build_merges_more,
            "tokens(6,) -> Embedding(mask_zero) -> LSTM(4, rs) a, GRU(4, rs) b (masked); raw(6,4) -> Dense(4) c "
            "(unmasked), LSTM(4) vec; Subtract[a,b], Maximum[a,b], Minimum[a,c,b], Maximum[c,a], Multiply[a,b], "
            "Multiply[a,c], Add[c, vec] and Minimum[vec, c] (ranks 3 and 2); Concatenate -> LSTM(3) -> Dense(2). "
            "Batch 4, tokens padded as attention_more",
            inputs=padded_tokens),
    gl.Case("reshaping_more", build_reshaping_more,
            "frames(4,5,6,2) -> ConvLSTM2D(2, rs) seq -> ConvLSTM2D(3) last; Cropping2D, ZeroPadding2D, UpSampling2D "
            "(channels_last and channels_first) on last; Cropping3D, ZeroPadding3D, UpSampling3D on seq; "
            "Permute((3,1,2)); seq -> Reshape(4,60) -> Keras 3 ZeroPadding1D(2, channels_first) -> UpSampling1D(3) -> "
            "Cropping1D(1) -> LSTM(3); Flatten, Concatenate -> Dense(2)"),
]


def main(argv=None):
    only = set(sys.argv[1:] if argv is None else argv)  # optional case names, for debugging
    cases = [c for c in CASES if not only or c.name in only]
    gl.OUT.mkdir(exist_ok=True)
    if not only:
        for p in gl.OUT.iterdir():
            if p.suffix in (".keras", ".h5", ".npz") or p.name == "manifest.json":
                p.unlink()
    for K, prefix in ((K3, "k3"), (K2, "k2")):
        for case in cases:
            if case.k3 if K is K3 else case.k2:
                gl.make_case(K, prefix, case)
    if not only:
        gl.MANIFEST.write(gl.OUT / "manifest.json")
    log("done: %d files" % len(gl.MANIFEST.entries))


if __name__ == "__main__":
    sys.exit(main())
