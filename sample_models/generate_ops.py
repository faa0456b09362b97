#!/usr/bin/env python
"""Generate the keras.ops fixtures in sample_models/ops/ that generate_layers.py (section C,
`k3_ops`) does not cover, with the values Keras computed for them.

Run once, from the repository root, in an environment with TensorFlow:

    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    python sample_models/generate_ops.py               # about a minute on 2 cores

Same conventions as generate_layers.py (see layers/README.md for the key contract; every ops
node's value is stored as `layer/<node name>`): weights and inputs are seeded from the file's base
name, the run deletes its old outputs first and writes ops/manifest.json. keras.ops nodes exist in
Keras 3 Functional models only, so every model is built by Keras 3; `k3_ops_legacy.h5` is the same
kind of model saved as legacy HDF5, whose config drops the ops nodes' `module`. Every model ends in
a recurrent layer (lstmctl's gate view needs one).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import kerasgen as kg  # noqa: E402
from kerasgen import K3, keras, log  # noqa: E402

OUT = Path(__file__).resolve().parent / "ops"
MANIFEST = kg.Manifest()
ops = keras.ops
L = keras.layers


def normal_inputs(model, rng, batch=3):
    """Floats N(0, 1); int inputs are token ids 0..9 (with zeros, for the masks)."""
    feed = []
    for t in model.inputs:
        shape = (batch,) + tuple(int(d) for d in t.shape[1:])
        if "int" in str(t.dtype):
            feed.append(rng.integers(0, 10, size=shape).astype(np.int32))
        else:
            feed.append(rng.standard_normal(shape).astype(np.float32))
    return feed


def masked_inputs(model, rng):
    """All-zero steps: sample 0 the last two, sample 1 step 2."""
    (x,) = normal_inputs(model, rng)
    x[0, -2:] = 0.0
    x[1, 2] = 0.0
    return [x]


def _two_sequences():
    x = keras.Input((6, 4))
    s = L.LSTM(5, return_sequences=True, name="lstm_a")(x)
    s2 = L.LSTM(5, return_sequences=True, name="lstm_b")(x)
    return x, s, s2


def _head(name, parts):
    """Everything the ops made, each flattened per sample and cast to float32, into a Dense."""
    flat = [ops.cast(ops.reshape(p, (-1, int(np.prod(p.shape[1:])))), "float32") for p in parts]
    return L.Dense(2, name="dense_" + name)(ops.concatenate(flat, axis=-1))


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------


def build_math():
    """Elementwise math, comparisons, where and the keras.ops.nn activations, on LSTM outputs in (-1, 1)."""
    x, s, s2 = _two_sequences()
    pos = ops.abs(s) + 0.5  # positive, for logs, roots and fractional powers
    parts = [
        ops.expm1(s), ops.log(pos), ops.log1p(ops.abs(s)), ops.log2(pos), ops.log10(pos), ops.sqrt(pos),
        ops.sin(s), ops.cos(s), ops.tan(s), ops.arctan(s), ops.sinh(s), ops.cosh(s),
        ops.floor(s * 3.0), ops.ceil(s * 3.0), ops.round(s * 4.0), ops.round(s, 1), ops.rsqrt(pos),
        ops.reciprocal(pos), ops.sign(s), ops.absolute(s), ops.square(s), ops.clip(s, -0.2, 0.3),
        ops.power(pos, s2), s**2, ops.maximum(s, s2), ops.minimum(s, 0.1), ops.floor_divide(s, 0.3),
        ops.mod(s, 0.3), ops.divide(s, pos), 2 - s, s + np.arange(5, dtype="float32"),
        s * np.array([1, -2, 3, -4, 5]),  # an int64 constant: Keras keeps float32
        ops.where(s > s2, s, 0.5), ops.where(ops.logical_and(s > 0, s2 < 0), -1.0, s2),
        ops.where(ops.logical_or(s <= -0.1, ops.logical_not(s2 >= 0.2)), s, s2),
        ops.where(ops.logical_xor(ops.equal(ops.sign(s), 1.0), ops.not_equal(ops.sign(s2), 1.0)), s, 0.0),
        ops.where(ops.isfinite(s), s, 0.0), ops.cast(ops.isnan(s), "float32"), ops.cast(ops.isinf(s), "float32"),
        ops.relu(s), ops.relu6(s * 8.0), ops.sigmoid(s), ops.softplus(s), ops.softsign(s), ops.silu(s),
        ops.log_sigmoid(s), ops.selu(s), ops.hard_sigmoid(s * 4.0), ops.hard_silu(s * 4.0), ops.hard_tanh(s * 2.0),
        ops.leaky_relu(s, negative_slope=0.3), ops.elu(s, alpha=0.5), ops.celu(s, alpha=0.7),
        ops.gelu(s), ops.gelu(s, approximate=False), ops.tanh_shrink(s), ops.soft_shrink(s, 0.2),
        ops.hard_shrink(s, 0.2), ops.softmax(s, axis=1), ops.softmax(s, axis=None), ops.log_softmax(s),
        ops.glu(ops.concatenate([s, s2], axis=-1)), ops.stop_gradient(s),
    ]  # fmt: skip
    y = L.LSTM(3, name="lstm_math")(ops.concatenate(parts, axis=-1))  # every part is (batch, 6, 5)
    return keras.Model(x, L.Dense(2, name="dense_math")(y), name="ops_math")


def build_reduce():
    """Reductions with axis / keepdims / initial, argmax and scans; bool and int results are outputs."""
    x, s, s2 = _two_sequences()
    parts = [
        ops.var(s, axis=1), ops.std(s, axis=1), ops.max(s, axis=1, initial=0.1), ops.min(s, axis=1),
        ops.amax(s, axis=1), ops.amin(s2, axis=1), ops.prod(s, axis=1), ops.logsumexp(s, axis=1),
        ops.mean(s, axis=(1,)), ops.cumsum(s, axis=1), ops.cumprod(s, axis=-1),
        ops.sum(s, axis=(1, 2), keepdims=True), ops.mean(s, axis=-1, keepdims=True),
        ops.max(ops.min(s, axis=2), axis=1, keepdims=True), ops.logsumexp(s2, axis=(1, 2)),
    ]  # fmt: skip
    argmax = ops.argmax(s, axis=-1)
    argmin = ops.argmin(s, axis=1, keepdims=True)
    any_ = ops.any(s > 0.5, axis=1)
    all_ = ops.all(s > -0.9, axis=(1, 2))
    count = ops.count_nonzero(s > 0, axis=1)
    parts += [argmax, argmin, any_, count]
    whole = [ops.sum(s2), ops.cumsum(s2)]  # axis None: over the batch too
    return keras.Model(x, [_head("reduce", parts), argmax, argmin, any_, all_, count, *whole], name="ops_reduce")


def build_shapes():
    """Indexing with every key kind, reshapes, axis moves, tiling, take, casts and the *_like ops."""
    x, s, s2 = _two_sequences()
    parts = [
        s[:, 1:5:2, ::-2], s2[:, -2:, :], s[:, None, 2], s[..., None][..., -1, 0], s[:, -1],
        ops.swapaxes(ops.moveaxis(ops.transpose(s, (0, 2, 1)), 1, -1), 1, 2),
        ops.flip(s, axis=1), ops.flip(s, axis=(1, 2)), ops.repeat(s[:, :3], 2, axis=1),
        ops.repeat(s[:, :2], [2, 4], axis=1), ops.tile(s[:, :3], (1, 2, 1)), ops.tile(s[:, ::3], 3),
        ops.squeeze(ops.expand_dims(s, [1, -1]), axis=(1, 4)), ops.reshape(s2, (-1, 3, 10)),
        ops.take(s, [0, -1, 2], axis=2), ops.take(s, ops.argmax(s2[0], axis=-1), axis=2),
        ops.zeros_like(s), ops.ones_like(s, dtype="float16"), ops.full_like(s, 0.25), ops.cast(s * 10.0, "int32"),
        ops.stack([s[:, :, 0], s2[:, :, 1]], axis=-1), ops.broadcast_to(s[:, :1, :1], (3, 6, 2)),
    ]  # fmt: skip
    first_sample = s[0]  # the batch axis indexed: no batch axis left
    reversed_axes = ops.transpose(s2)
    flat = ops.ravel(s)
    taken = ops.take(s, [5, 0])  # axis None: the flattened tensor
    return keras.Model(x, [_head("shapes", parts), first_sample, reversed_axes, flat, taken], name="ops_shapes")


def build_dtypes():
    """Keras's dtype promotion: int32 tokens through arithmetic, a float64 branch, casts."""
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    frames = keras.Input((6, 4), name="frames")
    e = L.Embedding(10, 4, mask_zero=True, name="embed")(tokens)
    s = L.LSTM(5, return_sequences=True, name="lstm_tok")(e)
    t = ops.expand_dims(tokens, -1)
    parts = [
        t * 2, t / 2, t // 3, t % 4, t - 1, ops.maximum(t, 3), ops.power(t, 2), ops.square(t), ops.abs(t - 5),
        ops.negative(t), ops.clip(t, 2, 7), ops.round(t, -1), ops.sqrt(t), ops.exp(ops.cast(t, "float16") * 0.1),
        ops.floor_divide(t, 2.0), ops.where(t > 4, t, 0), ops.cast(t > 2, "int32") + t, t + True,
        s, ops.cast(ops.tanh(ops.cast(frames, "float64") * 0.5 + 1.0) / 3.0, "float32"),
    ]  # fmt: skip
    lengths = ops.sum(ops.cast(ops.not_equal(tokens, 0), "int32"), axis=1, keepdims=True)
    mean_id = ops.mean(tokens, axis=1, keepdims=True)
    y = L.LSTM(3, name="lstm_dtypes")(ops.concatenate([ops.cast(p, "float32") for p in parts], axis=-1))
    return keras.Model([tokens, frames], [L.Dense(2, name="dense_dtypes")(y), lengths, mean_id], name="ops_dtypes")


def build_masked():
    """Ops drop masks: Masking -> LSTM(rs) -> ops -> recurrent layers run every step."""
    x = keras.Input((6, 4))
    m = L.Masking(0.0)(x)
    s = L.LSTM(5, return_sequences=True, name="lstm_masked")(m)
    scaled = L.GRU(3, name="gru_after_ops")(ops.tanh(s * 2.0))
    head = L.SimpleRNN(2, name="rnn_after_getitem")(s[:, :4])
    doubled = L.LSTM(2, name="lstm_on_masking_times_2")(m * 2.0)
    return keras.Model(x, [scaled, head, doubled], name="ops_masked")


def build_legacy():
    """Ops whose class names are also layers (Add, Subtract, Multiply, Maximum, Minimum, Softmax,
    Concatenate, Reshape) next to such layers, for the legacy HDF5 config without `module`."""
    x, s, s2 = _two_sequences()
    as_ops = [s + s2, s - s2, s * s2, ops.maximum(s, s2), ops.minimum(s, s2), ops.softmax(s), s[:, ::-1]]
    as_layers = [L.Add(name="add_layer")([s, s2]), L.Multiply(name="multiply_layer")([s, s2]),
                 L.Average(name="average_layer")([s, s2])]  # fmt: skip
    merged = L.Concatenate(name="concat_layer")([ops.concatenate(as_ops, axis=-1), *as_layers])  # (batch, 6, 50)
    shaped = L.Reshape((6, 5, 10), name="reshape_layer")(merged)
    y = L.LSTM(3, name="lstm_legacy")(ops.reshape(shaped, (-1, 6, 50)))
    return keras.Model(x, L.Dense(2, name="dense_legacy")(y), name="ops_legacy")


CASES = [
    ("ops_math", ".keras", build_math, normal_inputs,
     "Input(6,4) -> LSTM(5, rs) 'lstm_a' s, LSTM(5, rs) 'lstm_b' s2; keras.ops: expm1, log, log1p, log2, log10, sqrt, "
     "sin, cos, tan, arctan, sinh, cosh, floor, ceil, round (and decimals=1), rsqrt, reciprocal, sign, absolute, "
     "square, clip, power (tensor and **2), maximum, minimum, floor_divide, mod, divide, 2 - s, + float32 and * int64 "
     "__numpy__ constants, comparisons, logical and/or/xor/not, where (tensor and constant branches), isfinite, isnan, "
     "isinf, cast; nn: relu, relu6, sigmoid, softplus, softsign, silu, log_sigmoid, selu, hard_sigmoid, hard_silu, "
     "hard_tanh, leaky_relu(0.3), elu(0.5), celu(0.7), gelu (approximate and exact), tanh_shrink, soft_shrink, "
     "hard_shrink, softmax (axis 1 and None), log_softmax, glu, stop_gradient; concatenate -> LSTM(3) -> Dense(2)"),
    ("ops_reduce", ".keras", build_reduce, normal_inputs,
     "Input(6,4) -> LSTM(5, rs) x2; var, std, max(initial), min, amax, amin, prod, logsumexp (one axis and two), "
     "mean, sum (over (1, 2) keepdims, and over everything), cumsum, cumprod (one axis and flattened), argmax, "
     "argmin keepdims, any, count_nonzero, each flattened per sample -> concatenate -> Dense(2); outputs also "
     "argmax, argmin (int32), any, all over (1, 2) (bool), count_nonzero (int32), sum and cumsum with axis None"),
    ("ops_shapes", ".keras", build_shapes, normal_inputs,
     "Input(6,4) -> LSTM(5, rs) x2; GetItem with steps, negative steps, None, ..., an int; transpose, moveaxis, "
     "swapaxes, flip, repeat (int and list), tile (tuple and int), squeeze / expand_dims with axis lists, reshape "
     "with -1, take (constant, negative and tensor indices), zeros_like, ones_like(float16), full_like, cast to "
     "int32, stack, broadcast_to (batch 3: it names the batch), each flattened per sample -> concatenate -> "
     "Dense(2); outputs also s[0] (the batch axis indexed), transpose with no axes, ravel, take with axis None"),
    ("ops_dtypes", ".keras", build_dtypes, normal_inputs,
     "tokens(6,) int32 -> Embedding(10,4,mask_zero) -> LSTM(5, rs); int32 tokens through *, /, //, %, -, maximum, "
     "power, square, abs, negative, clip, round(-1), sqrt, exp of float16, floor_divide by a float, where, + True; "
     "frames(6,4) cast to float64, tanh(x*0.5+1)/3, cast back; concatenate -> LSTM(3) -> Dense(2); outputs also "
     "the count of non-zero tokens (int32) and the mean token (float32)"),
    ("ops_masked", ".keras", build_masked, masked_inputs,
     "Input(6,4) -> Masking -> LSTM(5, rs); tanh(s * 2) -> GRU(3); s[:, :4] -> SimpleRNN(2); Masking * 2 -> LSTM(2): "
     "keras.ops drop the mask. Input zero at sample 0 steps 4-5 and sample 1 step 2"),
    ("ops_legacy", ".h5", build_legacy, normal_inputs,
     "Keras 3 legacy HDF5 (no `module` in the config): Input(6,4) -> LSTM(5, rs) x2; ops Add, Subtract, Multiply, "
     "Maximum, Minimum, Softmax, GetItem, Concatenate and Reshape next to the layers Add, Multiply, Average, "
     "Concatenate and Reshape -> LSTM(3) -> Dense(2)"),
]


def make_case(name, suffix, builder, inputs, description):
    base = "k3_" + name
    log(base)
    seed = kg.seed_of(base)
    kg.fresh(K3, seed)
    model = builder()
    kg.randomise(K3, model, seed)
    feed = inputs(model, np.random.default_rng(seed + 1))
    store, rnn_names, classes = kg.expected_values(K3, model, feed)
    path = OUT / (base + suffix)
    if suffix == ".keras":
        kg.save_model(K3, model, path, feed, store, MANIFEST, description, classes, rnn_names)
        return
    # Keras 3 cannot load its own legacy HDF5 file back when ops nodes are in it (its legacy loader
    # knows layers only: "Unknown layer: 'GetItem'"), so there is no reload check; the values are
    # those of the model that was saved.
    model.save(str(path))
    kg.save_npz(path, store)
    MANIFEST.add(K3, path, description, classes, rnn_names, LEGACY_NOTE)
    log("  wrote", path.name, "(%d keys)" % len(store))


LEGACY_NOTE = "Keras 3.15.1 cannot load this file back (its legacy HDF5 loader knows no GetItem or Reshape op)"


def main(argv=None):
    only = set(sys.argv[1:] if argv is None else argv)  # case names, for debugging; a full run takes none
    OUT.mkdir(exist_ok=True)
    if not only:
        for p in OUT.iterdir():
            if p.suffix in (".keras", ".h5", ".npz") or p.name == "manifest.json":
                p.unlink()
    for case in CASES:
        if not only or case[0] in only:
            make_case(*case)
    if not only:
        MANIFEST.write(OUT / "manifest.json")
    log("done: %d files" % len(MANIFEST.entries))


if __name__ == "__main__":
    sys.exit(main())
