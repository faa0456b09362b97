#!/usr/bin/env python
"""Generate the sample model files and the values Keras computed for them.

Run once, from the repository root, in an environment with TensorFlow:

    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    python sample_models/generate.py

Every model is built by real Keras (Keras 3 via ``keras`` and Keras 2 via
``tf_keras``), its weights are set to seeded random values, it is saved, and
the values Keras computes for a seeded input are stored beside the model file
as ``<file>.expected.npz`` (see README.md for the key contract).  The run is
deterministic and overwrites its outputs.  lstmctl itself never imports
TensorFlow; only this generator does.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import copy  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
import zipfile  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")
logging.getLogger("tensorflow").setLevel(logging.ERROR)
logging.getLogger("absl").setLevel(logging.ERROR)

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
import tf_keras  # noqa: E402

tf.get_logger().setLevel(logging.ERROR)
try:  # keras 3 prints "UserWarning"s / absl lines for legacy HDF5; keep quiet
    keras.utils.disable_interactive_logging()
except Exception:  # pragma: no cover
    pass

OUT = Path(__file__).resolve().parent
K3 = keras
K2 = tf_keras
BUILDER = {
    K3: "keras %s" % keras.__version__,
    K2: "tf_keras %s" % tf_keras.__version__,
}
ATOL_SELF_CHECK = 1e-6
RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN")
CUDNN_CLASSES = ("CuDNNLSTM", "CuDNNGRU")

MANIFEST = []
LOG = []


def log(*args):
    msg = " ".join(str(a) for a in args)
    LOG.append(msg)
    print(msg, flush=True)


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------


def seed_of(name):
    return zlib.crc32(name.encode("utf8")) & 0x7FFFFFFF


def is_model(K, layer):
    return isinstance(layer, K.Model)


def class_name(layer):
    return layer.__class__.__name__


def to_np(x):
    if isinstance(x, (list, tuple)):
        return [to_np(v) for v in x]
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def run(model, feed):
    """model(inputs) with the stored inputs; returns numpy (list if many)."""
    out = model(feed if len(model.inputs) > 1 else feed[0], training=False)
    return to_np(out)


def sub_model(K, model, outputs):
    return K.Model(model.inputs, outputs)


def leaf_layers(K, model):
    """All non-model layers, inner layers of nested models in place."""
    for layer in model.layers:
        if is_model(K, layer):
            yield from leaf_layers(K, layer)
        else:
            yield layer


def assert_close(a, b, what, atol=ATOL_SELF_CHECK):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise AssertionError("%s: shape %s != %s" % (what, a.shape, b.shape))
    err = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
    if not err <= atol:
        raise AssertionError("%s: max abs diff %g > %g" % (what, err, atol))


# --------------------------------------------------------------------------
# weights: seeded random values instead of the initialisers
# --------------------------------------------------------------------------


def _random_like(rng, weights, scale=0.5):
    return [(rng.standard_normal(w.shape) * scale).astype(w.dtype) for w in weights]


def _randomise_rnn(rng, layer):
    """layer: a plain recurrent layer (LSTM/GRU/SimpleRNN/CuDNN*)."""
    ws = layer.get_weights()
    if not ws:
        return
    new = _random_like(rng, ws)
    cname = class_name(layer)
    units = layer.units
    if cname == "LSTM" and layer.use_bias:
        # non-trivial forget bias, like unit_forget_bias but not all ones
        new[2][units : 2 * units] += np.asarray(1.0, new[2].dtype)
    if cname == "CuDNNLSTM":
        # CuDNN bias = [input biases i f c o | recurrent biases i f c o]
        new[2][units : 2 * units] += np.asarray(0.5, new[2].dtype)
        new[2][5 * units : 6 * units] += np.asarray(0.5, new[2].dtype)
    layer.set_weights(new)


def randomise(K, model, seed):
    rng = np.random.default_rng(seed)
    for layer in leaf_layers(K, model):
        cname = class_name(layer)
        if cname == "Bidirectional":
            _randomise_rnn(rng, layer.forward_layer)
            _randomise_rnn(rng, layer.backward_layer)
        elif cname in RNN_CLASSES + CUDNN_CLASSES:
            _randomise_rnn(rng, layer)
        else:
            ws = layer.get_weights()
            if ws:
                layer.set_weights(_random_like(rng, ws))


# --------------------------------------------------------------------------
# builders: one per architecture, parameterised by the Keras module
# --------------------------------------------------------------------------


def build_lstm_dense(K):
    L = K.layers
    return K.Sequential(
        [K.Input((6, 4)), L.LSTM(5), L.Dense(3, activation="softmax")]
    )


def build_stack3(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((6, 4)),
            L.LSTM(6, return_sequences=True, name="lstm_a"),
            L.LSTM(5, return_sequences=True, name="lstm_b"),
            L.LSTM(4, name="lstm_c"),
            L.Dense(2),
        ]
    )


def build_gru(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((6, 4)),
            L.GRU(5, reset_after=True, return_sequences=True),
            L.GRU(4, reset_after=False),
            L.Dense(2),
        ]
    )


def build_simplernn(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((6, 4)),
            L.SimpleRNN(5, return_sequences=True),
            L.SimpleRNN(3, activation="relu"),
            L.Dense(2),
        ]
    )


def build_bidir(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((6, 4)),
            L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="concat"),
            L.Bidirectional(L.GRU(3), merge_mode="sum"),
            L.Dense(2),
        ]
    )


def build_bidir_masked(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((7, 4)),
            L.Masking(mask_value=0.0),
            L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="concat"),
            L.Bidirectional(L.GRU(3), merge_mode="ave"),
            L.Dense(2),
        ]
    )


def build_masked_merges(K):
    """Functional with Masking feeding merges: Keras 3 records the masks as keras.ops nodes."""
    L = K.layers
    inp = K.Input((7, 4))
    m = L.Masking(mask_value=0.0)(inp)
    a = L.LSTM(4, return_sequences=True, name="lstm_a")(m)
    b = L.GRU(4, return_sequences=True, name="gru_b")(m)
    c = L.SimpleRNN(3, name="after_concat")(L.Concatenate()([a, b]))
    d = L.LSTM(3, name="after_add")(L.Add()([a, b]))
    e = L.GRU(2, name="after_average")(L.Average()([a, b]))
    return K.Model(inp, [c, d, e])


def build_bidir_backwards_inner(K):
    """A Bidirectional whose wrapped layer itself goes backwards: Keras reverses only the backward half."""
    L = K.layers
    if K is K3:  # Keras 3 refuses two backwards layers: give the backward one explicitly
        layer = L.Bidirectional(L.LSTM(3, return_sequences=True, go_backwards=True),
                                backward_layer=L.LSTM(3, return_sequences=True, go_backwards=False), merge_mode="concat")
    else:
        layer = L.Bidirectional(L.LSTM(3, return_sequences=True, go_backwards=True), merge_mode="concat")
    return K.Sequential([K.Input((6, 4)), layer, L.Dense(2)])


def build_bidir_modes(K):
    L = K.layers
    x = K.Input((6, 4))
    mul = L.Bidirectional(L.LSTM(4), merge_mode="mul", name="bidir_mul")(x)
    ave = L.Bidirectional(L.GRU(3), merge_mode="ave", name="bidir_ave")(x)
    fwd, bwd = L.Bidirectional(
        L.LSTM(3, return_sequences=True), merge_mode=None, name="bidir_none"
    )(x)
    seq, fh, fc, bh, bc = L.Bidirectional(
        L.LSTM(3, return_sequences=True, return_state=True),
        merge_mode="concat",
        name="bidir_state",
    )(x)
    return K.Model(x, [mul, ave, fwd, bwd, seq, fh, fc, bh, bc], name="bidir_modes")


def build_encdec(K):
    L = K.layers
    enc = K.Input((6, 4), name="encoder_input")
    dec = K.Input((5, 3), name="decoder_input")
    encoder = L.LSTM(8, return_state=True, name="encoder")
    _, h, c = encoder(enc)
    y = L.LSTM(8, return_sequences=True, name="decoder")(dec, initial_state=[h, c])
    probs = L.TimeDistributed(L.Dense(3, activation="softmax"))(y)
    return K.Model([enc, dec], [probs, h], name="encdec")


def build_masked(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((7, 4)),
            L.Masking(mask_value=0.0),
            L.LSTM(5, return_sequences=True),
            L.GRU(3),
            L.Dense(2),
        ]
    )


def build_embed(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((8,), dtype="int32"),
            L.Embedding(20, 4, mask_zero=True),
            L.LSTM(6),
            L.Dense(2),
        ]
    )


def build_nested(K):
    L = K.layers
    inner = K.Sequential(
        [
            K.Input((6, 4)),
            L.LSTM(5, return_sequences=True, name="inner_lstm"),
            L.Dense(4, name="inner_dense"),
        ],
        name="inner_model",
    )
    x = K.Input((6, 4))
    y = inner(x)
    y = L.GRU(3, name="outer_gru")(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="outer_model")


def build_options(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((6, 4)),
            L.LSTM(
                4,
                recurrent_activation="hard_sigmoid",
                use_bias=False,
                go_backwards=True,
                return_sequences=True,
            ),
            L.GRU(
                3,
                recurrent_activation="hard_sigmoid",
                activation="relu",
                go_backwards=True,
                return_sequences=True,
            ),
            L.LSTM(3, activation="elu", return_sequences=True),
            L.SimpleRNN(3, use_bias=False, activation="softsign"),
            L.Dense(2),
        ]
    )


def build_f64(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((6, 4), dtype="float64"),
            L.LSTM(4, return_sequences=True, dtype="float64"),
            L.GRU(3, dtype="float64"),
        ]
    )


def build_misc(K):
    L = K.layers
    x = K.Input((6, 4))
    a = L.GaussianNoise(0.1)(x)
    a = L.LSTM(5)(a)
    a = L.RepeatVector(6)(a)
    a = L.LSTM(5, return_sequences=True)(a)
    a = L.SpatialDropout1D(0.2)(a)
    a = L.TimeDistributed(L.Dense(4))(a)
    b = L.Flatten()(x)
    b = L.Dense(24)(b)
    b = L.Reshape((6, 4))(b)
    s = L.Add()([a, b])
    m = L.Multiply()([a, b])
    v = L.Average()([a, b, x])
    y = L.Concatenate(axis=-1)([s, m, v])
    y = L.Activation("tanh")(y)
    y = L.Dropout(0.3)(y)
    y = L.GRU(3)(y)
    y = L.Dense(2, activation="softmax")(y)
    return K.Model(x, y, name="misc")


def build_conv(K):
    L = K.layers
    return K.Sequential(
        [K.Input((8, 3)), L.Conv1D(4, 3), L.LSTM(3), L.Dense(1)]
    )


def build_k1_lstm(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((6, 4), name="input_1"),
            L.LSTM(4, recurrent_activation="hard_sigmoid", name="lstm_1"),
            L.Dense(2, name="dense_1"),
        ]
    )


def build_vector1(K):
    L = K.layers
    return K.Sequential(
        [
            K.Input((3, 2)),
            L.LSTM(
                1,
                kernel_initializer=K.initializers.Constant(0.1),
                recurrent_initializer=K.initializers.Constant(0.1),
                bias_initializer="zeros",
                unit_forget_bias=True,
                recurrent_activation="hard_sigmoid",
                return_sequences=True,
            ),
        ]
    )


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------


def default_inputs(model, rng, batch=3):
    feed = []
    for t in model.inputs:
        shape = (batch,) + tuple(int(d) for d in t.shape[1:])
        dt = np.float64 if "float64" in str(t.dtype) else np.float32
        feed.append(rng.standard_normal(shape).astype(dt))
    return feed


def masked_inputs(model, rng):
    (x,) = default_inputs(model, rng, batch=3)
    x[0, 5:, :] = 0.0  # trailing all-zero steps
    x[1, 3, :] = 0.0  # one all-zero step in the middle
    return [x]  # sample 2: no zero step


def embed_inputs(model, rng):
    tokens = rng.integers(1, 20, size=(3, 8)).astype(np.int32)
    tokens[0, 5:] = 0  # trailing padding
    tokens[1, :3] = 0  # leading padding
    return [tokens]  # sample 2: no padding


def mask_from_masking(feed):
    return np.any(feed[0] != 0, axis=-1)


def mask_from_tokens(feed):
    return feed[0] != 0


# --------------------------------------------------------------------------
# probing every recurrent layer with a faithful clone
# --------------------------------------------------------------------------


def _tensor(K, x):
    if K is K3:
        return keras.ops.convert_to_tensor(x)
    return tf.convert_to_tensor(x)


def _clone_plain(K, layer, ref_layer=None):
    cfg = copy.deepcopy(layer.get_config())
    cfg["return_sequences"] = True
    cfg["return_state"] = True
    clone = type(layer).from_config(cfg)
    # tf_keras keeps zero_output_for_mask out of the config; keep the
    # behaviour Keras uses for the layer in its position.
    zo = getattr(ref_layer or layer, "zero_output_for_mask", None)
    if zo is not None:
        clone.zero_output_for_mask = zo
    return clone


def _call_built(K, clone, x, weights, **kw):
    clone(x, **kw)  # builds
    clone.set_weights(weights)
    return to_np(clone(x, **kw))


def _bidir_clone(K, layer, merge_mode):
    cfg = copy.deepcopy(layer.get_config())
    for key in ("layer", "backward_layer"):
        if key in cfg and cfg[key] is not None:
            cfg[key]["config"]["return_sequences"] = True
            cfg[key]["config"]["return_state"] = True
    cfg["merge_mode"] = merge_mode
    return type(layer).from_config(cfg)


def _merge(mode, a, b):
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    if mode == "sum":
        return a + b
    if mode == "mul":
        return a * b
    if mode == "ave":
        return (a + b) / 2
    raise ValueError(mode)


def call_tensors(K, layer):
    """The sequence tensor and initial_state tensors the layer was called on."""
    if K is K3:
        # keras 3 records args/kwargs (incl. the propagated mask) separately
        args = layer._inbound_nodes[0].arguments
        x_t = args.args[0]
        states = args.kwargs.get("initial_state") or []
        return x_t, list(as_list(states))
    # tf_keras folds initial_state into the layer inputs: [x, *states]
    lin = layer.input
    if isinstance(lin, (list, tuple)):
        return lin[0], list(lin[1:])
    return lin, []


def probe_layer(K, model, layer, feed, mask, store, name_override=None):
    """Store L/sequence, L/h, L/c ... for one recurrent layer of `model`."""
    name = name_override or layer.name
    x_t, state_ts = call_tensors(K, layer)
    vals = as_list(run(sub_model(K, model, [x_t] + state_ts), feed))
    x = vals[0]
    init = vals[1:]
    store["%s/input" % name] = x  # the layer's own input, as Keras computed it (for --direct)
    orig = as_list(run(sub_model(K, model, layer.output), feed))

    kw = {}
    if mask is not None:
        kw["mask"] = _tensor(K, mask)
    if init:
        kw["initial_state"] = [_tensor(K, v) for v in init]
    xt = _tensor(K, x)
    cname = class_name(layer)

    if cname == "Bidirectional":
        inner = layer.forward_layer
        is_lstm = class_name(inner) == "LSTM"
        nstate = 2 if is_lstm else 1
        w = layer.get_weights()
        # (1) merge_mode=None: time-aligned forward / backward sequences
        cb = _bidir_clone(K, layer, None)
        ob = _call_built(K, cb, xt, w, **kw)
        fseq, bseq = ob[0], ob[1]
        st = ob[2:]
        fst, bst = st[:nstate], st[nstate:]
        store["%s/forward/sequence" % name] = fseq
        store["%s/backward/sequence" % name] = bseq
        store["%s/forward/h" % name] = fst[0]
        store["%s/backward/h" % name] = bst[0]
        if is_lstm:
            store["%s/forward/c" % name] = fst[1]
            store["%s/backward/c" % name] = bst[1]
        merged = None
        if layer.merge_mode is not None:
            ca = _bidir_clone(K, layer, layer.merge_mode)
            oa = _call_built(K, ca, xt, w, **kw)
            merged = oa[0]
            store["%s/sequence" % name] = merged
            for i, (p, q) in enumerate(zip(oa[1:], st)):
                assert_close(p, q, "%s merged-clone state %d" % (name, i))
        # self-check against the layer's own output inside the model
        if layer.return_sequences:
            got = [fseq, bseq] if layer.merge_mode is None else [merged]
        else:
            if layer.merge_mode is None:
                got = [fst[0], bst[0]]
            else:
                got = [_merge(layer.merge_mode, fst[0], bst[0])]
        if layer.return_state:
            got = got + list(st)
        if len(got) != len(orig):
            raise AssertionError("%s: %d outputs vs %d" % (name, len(got), len(orig)))
        for i, (g, o) in enumerate(zip(got, orig)):
            assert_close(g, o, "%s self-check output %d" % (name, i))
        return

    clone = _clone_plain(K, layer)
    out = _call_built(K, clone, xt, layer.get_weights(), **kw)
    seq, states = out[0], out[1:]
    store["%s/sequence" % name] = seq
    store["%s/h" % name] = states[0]
    if cname == "LSTM":
        store["%s/c" % name] = states[1]
    got = [seq if layer.return_sequences else states[0]]
    if layer.return_state:
        got += list(states)
    if len(got) != len(orig):
        raise AssertionError("%s: %d outputs vs %d" % (name, len(got), len(orig)))
    for i, (g, o) in enumerate(zip(got, orig)):
        assert_close(g, o, "%s self-check output %d" % (name, i))
    # h is the last step Keras produced (also for go_backwards order)
    if mask is None:
        assert_close(seq[:, -1], states[0], "%s h == sequence[:, -1]" % name)


def probe_all(K, model, feed, mask, store, rnn_names):
    for layer in model.layers:
        if is_model(K, layer):
            # two levels: the nested model's input in the outer model, then
            # the inner layers inside the nested model
            node = layer._inbound_nodes[-1]
            tin = as_list(node.input_tensors)
            tin = tin if len(tin) > 1 else tin[0]
            sub_feed = as_list(run(sub_model(K, model, tin), feed))
            probe_all(K, layer, sub_feed, mask, store, rnn_names)
            # the nested model's own output, as a check of the two levels
            want = run(sub_model(K, model, as_list(node.output_tensors)[0]), feed)
            assert_close(as_list(run(layer, sub_feed))[0], as_list(want)[0],
                         "nested model %s" % layer.name)
        elif class_name(layer) in RNN_CLASSES + ("Bidirectional",):
            probe_layer(K, model, layer, feed, mask, store)
            rnn_names.append(layer.name)


# --------------------------------------------------------------------------
# expected values
# --------------------------------------------------------------------------


def input_names(K, model):
    names = []
    for t in model.inputs:
        if K is K3:
            names.append(t._keras_history[0].name)
        else:
            names.append(t._keras_history.layer.name)
    return names


def weight_store(K, model):
    store = {}
    for layer in leaf_layers(K, model):
        for k, w in enumerate(layer.get_weights()):
            store["weights/%s/%d" % (layer.name, k)] = np.asarray(w)
    return store


def expected_values(K, model, feed, mask=None, probe_model=None):
    """All keys of the .expected.npz contract for `model` and `feed`.

    probe_model: a runnable stand-in with identical layer names and weights
    (used for CuDNN files, whose layers cannot run on CPU)."""
    pm = probe_model or model
    store = weight_store(K, pm)
    for n, v in zip(input_names(K, model), feed):
        store["input/%s" % n] = v
    out = run(pm, feed)
    outs = as_list(out) if len(pm.outputs) > 1 else [out]
    if len(outs) == 1:
        store["output"] = outs[0]
    else:
        for i, o in enumerate(outs):
            store["output_%d" % i] = o
    # model(x) and predict agree
    pred = as_list(pm.predict(feed if len(feed) > 1 else feed[0], verbose=0))
    for a, b in zip(pred, outs):
        assert_close(a, b, "predict vs call")
    rnn_names = []
    probe_all(K, pm, feed, mask, store, rnn_names)
    return store, rnn_names


def save_npz(path, store):
    np.savez(str(path) + ".expected.npz", **{k: store[k] for k in sorted(store)})


def file_keras_version(path):
    path = Path(path)
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("metadata.json"))
        return meta.get("keras_version")
    with h5py.File(path, "r") as f:
        v = f.attrs.get("keras_version")
        if v is None and "model_weights" in f:
            v = f["model_weights"].attrs.get("keras_version")
    if isinstance(v, bytes):
        v = v.decode("utf8")
    return None if v is None else str(v)


def file_format(path):
    p = str(path)
    if p.endswith(".keras"):
        return "keras-zip"
    with h5py.File(p, "r") as f:
        if "model_config" in f.attrs:
            return "hdf5-model"
    return "hdf5-weights"


def record(K, path, model, store, rnn_names, description, notes="", dtype="float32"):
    save_npz(path, store)
    MANIFEST.append(
        {
            "file": Path(path).name,
            "builder": BUILDER[K],
            "format": file_format(path),
            "keras_version": file_keras_version(path),
            "dtype": dtype,
            "description": description,
            "recurrent_layers": list(rnn_names),
            "notes": notes,
        }
    )
    log("  wrote", Path(path).name, "(%d keys)" % len(store))


def check_reload(K, path, feed, store):
    """Load the saved file back with the Keras that wrote it; same outputs."""
    if str(path).endswith(".weights.h5") or str(path).endswith("_weights.h5"):
        return
    m = K.models.load_model(str(path), compile=False)
    out = as_list(run(m, feed)) if len(m.outputs) > 1 else [run(m, feed)]
    keys = ["output"] if "output" in store else sorted(
        (k for k in store if k.startswith("output_")), key=lambda s: int(s[7:])
    )
    for k, o in zip(keys, out):
        assert_close(o, store[k], "%s reload %s" % (Path(path).name, k))


# --------------------------------------------------------------------------
# the samples
# --------------------------------------------------------------------------

SAMPLES = [
    # name, builder, input maker, mask fn, description
    ("lstm_dense", build_lstm_dense, None, None,
     "Sequential Input(6,4) -> LSTM(5) -> Dense(3, softmax)"),
    ("stack3", build_stack3, None, None,
     "Sequential LSTM(6, rs) -> LSTM(5, rs) -> LSTM(4) -> Dense(2); layers lstm_a/lstm_b/lstm_c"),
    ("gru", build_gru, None, None,
     "GRU(5, reset_after=True, rs) -> GRU(4, reset_after=False) -> Dense(2)"),
    ("simplernn", build_simplernn, None, None,
     "SimpleRNN(5, rs) -> SimpleRNN(3, relu) -> Dense(2)"),
    ("bidir", build_bidir, None, None,
     "Bidirectional(LSTM(4, rs), concat) -> Bidirectional(GRU(3), sum) -> Dense(2)"),
    ("bidir_masked", build_bidir_masked, masked_inputs, mask_from_masking,
     "Input(7,4) -> Masking(0.0) -> Bidirectional(LSTM(4, rs), concat) -> Bidirectional(GRU(3), ave) "
     "-> Dense(2); Keras zeroes masked outputs inside a Bidirectional that returns sequences"),
    ("masked_merges", build_masked_merges, masked_inputs, mask_from_masking,
     "Functional: Masking -> LSTM(rs), GRU(rs) -> Concatenate / Add / Average -> SimpleRNN / LSTM / GRU; "
     "Keras 3 writes the mask computation into the graph as keras.ops nodes"),
    ("bidir_backwards_inner", build_bidir_backwards_inner, None, None,
     "Bidirectional(LSTM(3, rs, go_backwards=True)) (Keras 3: explicit forward-running backward_layer) -> Dense(2)"),
    ("bidir_modes", build_bidir_modes, None, None,
     "Functional: one Input(6,4) into Bidirectional mul(LSTM), ave(GRU), None(LSTM rs: 2 outputs), "
     "concat+return_state(LSTM rs: seq, fh, fc, bh, bc); 9 model outputs"),
    ("encdec", build_encdec, None, None,
     "Functional seq2seq: encoder LSTM(8, return_state) -> decoder LSTM(8, rs, initial_state=[h, c]) "
     "-> TimeDistributed(Dense(3, softmax)); outputs [probs, h]"),
    ("masked", build_masked, masked_inputs, mask_from_masking,
     "Input(7,4) -> Masking(0.0) -> LSTM(5, rs) -> GRU(3) -> Dense(2); stored input has all-zero steps "
     "(sample 0 trailing 5..6, sample 1 step 3, sample 2 none)"),
    ("embed", build_embed, embed_inputs, mask_from_tokens,
     "Input(8,) int32 -> Embedding(20, 4, mask_zero) -> LSTM(6) -> Dense(2); tokens zero-padded "
     "(sample 0 trailing, sample 1 leading, sample 2 none)"),
    ("nested", build_nested, None, None,
     "Functional outer model using Sequential 'inner_model' (inner_lstm, inner_dense) as a layer -> "
     "GRU(3, outer_gru) -> Dense(2)"),
    ("options", build_options, None, None,
     "LSTM(4, hard_sigmoid, no bias, go_backwards, rs) -> GRU(3, hard_sigmoid, relu, go_backwards, rs) "
     "-> LSTM(3, elu, rs) -> SimpleRNN(3, no bias, softsign) -> Dense(2)"),
    ("f64", build_f64, None, None,
     "float64 everywhere: LSTM(4, rs) -> GRU(3)"),
    ("misc", build_misc, None, None,
     "Functional: GaussianNoise, LSTM, RepeatVector, LSTM(rs), SpatialDropout1D, TimeDistributed(Dense); "
     "side branch Flatten -> Dense(24) -> Reshape(6,4); Add, Multiply, Average, Concatenate, "
     "Activation(tanh), Dropout, GRU(3), Dense(2, softmax)"),
    ("conv", build_conv, None, None,
     "Conv1D(4, 3) -> LSTM(3) -> Dense(1): a convolution feeding an LSTM"),
]

K2_SAMPLES = {"lstm_dense", "stack3", "gru", "simplernn", "bidir", "bidir_masked", "masked_merges", "bidir_backwards_inner", "encdec", "masked",
              "embed", "nested", "options", "f64"}

HARD_SIGMOID_NOTE = {
    K3: "Keras 3 hard_sigmoid is relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)",
    K2: "tf_keras hard_sigmoid is clip(0.2 * x + 0.5, 0, 1)",
}


def fresh(K, seed):
    K.backend.clear_session()
    if K is K3:
        keras.utils.set_random_seed(seed)
    else:
        tf_keras.utils.set_random_seed(seed)


def make_sample(K, prefix, name, builder, in_maker, mask_fn, description):
    base = "%s_%s" % (prefix, name)
    log(base)
    seed = seed_of(base)
    fresh(K, seed)
    model = builder(K)
    randomise(K, model, seed)
    rng = np.random.default_rng(seed + 1)
    feed = in_maker(model, rng) if in_maker else default_inputs(model, rng)
    mask = mask_fn(feed) if mask_fn else None
    store, rnn_names = expected_values(K, model, feed, mask)
    dtype = "float64" if name == "f64" else "float32"
    notes = []
    if name == "options":
        notes.append(HARD_SIGMOID_NOTE[K])
    if name == "masked":
        notes.append("mask = any(x != 0, axis=-1) propagated to every recurrent layer")
    if name == "embed":
        notes.append("mask = tokens != 0 propagated to the LSTM")

    if K is K3:
        path = OUT / (base + ".keras")
        model.save(str(path))
        check_reload(K, path, feed, store)
        record(K, path, model, store, rnn_names, description, "; ".join(notes), dtype)
        if name == "lstm_dense":
            p = OUT / (base + ".h5")
            model.save(str(p))
            check_reload(K, p, feed, store)
            record(K, p, model, store, rnn_names, description + " (legacy HDF5 via keras 3 model.save)",
                   "; ".join(notes), dtype)
            p = OUT / (base + ".weights.h5")
            model.save_weights(str(p))
            record(K, p, model, store, rnn_names,
                   description + " (keras 3 model.save_weights; names are those of the saved model)",
                   "; ".join(notes), dtype)
    else:
        path = OUT / (base + ".h5")
        model.save(str(path))
        check_reload(K, path, feed, store)
        record(K, path, model, store, rnn_names, description, "; ".join(notes), dtype)
        if name == "lstm_dense":
            p = OUT / (base + ".keras")
            model.save(str(p))
            check_reload(K, p, feed, store)
            record(K, p, model, store, rnn_names, description + " (tf_keras native .keras zip)",
                   "; ".join(notes), dtype)
            p = OUT / (base + "_weights.h5")
            model.save_weights(str(p))
            record(K, p, model, store, rnn_names,
                   description + " (tf_keras model.save_weights, legacy HDF5 weights)",
                   "; ".join(notes), dtype)


def make_vector1():
    K = K2
    base = "k2_vector1"
    log(base)
    fresh(K, seed_of(base))
    model = build_vector1(K)  # weights NOT randomised: the public test vector
    feed = [np.array([0.1, 0.2, 0.3, 0.1, 0.2, 0.3], np.float32).reshape(1, 3, 2)]
    store, rnn_names = expected_values(K, model, feed)
    lname = rnn_names[0]
    want_seq = np.array([0.00767819, 0.01597687, 0.02480672], np.float32)
    assert_close(store["output"].reshape(-1), want_seq, "vector1 sequence", atol=1e-6)
    assert_close(store["%s/sequence" % lname].reshape(-1), want_seq, "vector1 L/sequence", atol=1e-6)
    assert_close(store["%s/h" % lname].reshape(-1), [0.02480672], "vector1 h_T", atol=1e-6)
    assert_close(store["%s/c" % lname].reshape(-1), [0.04864851], "vector1 c_T", atol=1e-6)
    path = OUT / (base + ".h5")
    model.save(str(path))
    check_reload(K, path, feed, store)
    record(K, path, model, store, rnn_names,
           "public test vector: Input(3,2) -> LSTM(1, kernel/recurrent Constant(0.1), zero bias, "
           "unit_forget_bias, hard_sigmoid, rs); input [0.1,0.2,0.3,0.1,0.2,0.3] as (1,3,2)",
           "weights are the initialisers' (not randomised); bias = [0, 1, 0, 0]; "
           "asserted: sequence [0.00767819, 0.01597687, 0.02480672], h_T 0.02480672, c_T 0.04864851; "
           + HARD_SIGMOID_NOTE[K2])


VECTOR2_ROWS = np.array([
    [-0.21386017, -0.08401277, -0.25431477],
    [-0.22243588, -0.25817422, -0.1612211],
    [-0.2282134, -0.14207162, -0.35017249],
    [-0.23286737, -0.17129192, -0.2706512],
    [-0.11768674, -0.20717363, -0.13339118],
    [-0.0599215, -0.17756104, -0.2028935],
    [0.11437953, -0.19484555, 0.05371994],
])


def make_vector2():
    """CONVENTIONS.md vector 2 (a TF1 LSTMCell, forget_bias 1.0) as the equivalent Keras 2 LSTM.

    TF1 applies one kernel (input + units, 4u) to concat([x, h]) in i, j, f, o order and adds
    forget_bias to f at run time. Keras: W = kernel[:4], U = kernel[4:], blocks reordered to
    i, f, c(=j), o, and the forget bias stored in b_f."""
    K = K2
    base = "k2_vector2"
    log(base)
    fresh(K, seed_of(base))
    np.random.seed(0)
    x = np.random.normal(size=(1, 7, 4))
    lim = np.sqrt(6 / (7 + 12))
    kernel = np.random.uniform(-lim, lim, size=(7, 12))
    blocks = np.split(kernel, 4, axis=1)  # i, j, f, o
    fused = np.concatenate([blocks[0], blocks[2], blocks[1], blocks[3]], axis=1)  # i, f, c, o
    bias = np.zeros(12)
    bias[3:6] = 1.0  # forget_bias, which TF1 adds at run time
    model = K.Sequential([K.Input((7, 4)), K.layers.LSTM(3, return_sequences=True, name="lstm")])
    model.layers[0].set_weights([fused[:4].astype(np.float32), fused[4:].astype(np.float32), bias.astype(np.float32)])
    feed = [x.astype(np.float32)]
    store, rnn_names = expected_values(K, model, feed)
    assert_close(store["output"][0], VECTOR2_ROWS, "vector2 hidden outputs", atol=1e-6)
    path = OUT / (base + ".h5")
    model.save(str(path))
    check_reload(K, path, feed, store)
    record(K, path, model, store, rnn_names,
           "public test vector 2: TF1 LSTMCell(3) on 4 inputs, 7 steps, forget_bias 1.0, zero bias, "
           "as the equivalent tf_keras LSTM(3, rs)",
           "kernel from np.random.seed(0) recipe in CONVENTIONS.md; i,j,f,o blocks reordered to i,f,c,o; "
           "b_f = 1.0 holds TF1's forget_bias; asserted: Keras reproduces the 7 published rows to 1e-6")


# --------------------------------------------------------------------------
# legacy layouts
# --------------------------------------------------------------------------


def _cudnn_classes():
    try:
        from tf_keras.src.layers.rnn.cudnn_gru import CuDNNGRU
        from tf_keras.src.layers.rnn.cudnn_lstm import CuDNNLSTM
        return CuDNNLSTM, CuDNNGRU
    except Exception as e:  # pragma: no cover - only if tf_keras drops them
        log("  CuDNN classes unavailable:", e)
        return None, None


def make_cudnn(kind):
    from tf_keras.src.saving.legacy import hdf5_format

    K = K2
    L = K.layers
    base = "k2_cudnn_%s" % kind
    log(base)
    CuDNNLSTM, CuDNNGRU = _cudnn_classes()
    if CuDNNLSTM is None:
        raise SystemExit("CuDNN classes missing in tf_keras: implement the synthesized fallback")
    seed = seed_of(base)
    fresh(K, seed)
    C = CuDNNLSTM if kind == "lstm" else CuDNNGRU
    cmodel = K.Sequential([K.Input((6, 4)), C(5), L.Dense(2)])
    randomise(K, cmodel, seed)
    path = OUT / (base + ".h5")
    cmodel.save(str(path))
    craw = cmodel.layers[0].get_weights()
    units = 5
    assert craw[2].shape == ((8 if kind == "lstm" else 6) * units,), craw[2].shape

    # the equivalent plain layer, same names; weights converted by tf_keras
    in_name = input_names(K, cmodel)[0]
    rnn_name = cmodel.layers[0].name
    dense_name = cmodel.layers[1].name
    if kind == "lstm":
        plain = L.LSTM(5, recurrent_activation="sigmoid", name=rnn_name)
    else:
        plain = L.GRU(5, reset_after=True, recurrent_activation="sigmoid", name=rnn_name)
    pmodel = K.Sequential([K.Input((6, 4), name=in_name), plain, L.Dense(2, name=dense_name)])
    pmodel.load_weights(str(path))  # tf_keras converts CuDNN -> plain by bias shape
    conv = hdf5_format.preprocess_weights_for_loading(pmodel.layers[0], list(craw))
    for a, b in zip(conv, pmodel.layers[0].get_weights()):
        assert_close(a, b, base + " converter vs load_weights", atol=0)
    if kind == "lstm":
        assert_close(pmodel.layers[0].get_weights()[2],
                     craw[2][: 4 * units] + craw[2][4 * units :], base + " bias sum")
    rng = np.random.default_rng(seed + 1)
    feed = default_inputs(pmodel, rng)
    store, rnn_names = expected_values(K, cmodel, feed, probe_model=pmodel)
    cls = "CuDNNLSTM" if kind == "lstm" else "CuDNNGRU"
    eq = ("LSTM(5, recurrent_activation='sigmoid')" if kind == "lstm"
          else "GRU(5, reset_after=True, recurrent_activation='sigmoid')")
    record(K, path, cmodel, store, rnn_names,
           "Sequential Input(6,4) -> %s(5) -> Dense(2), built and saved by tf_keras on CPU" % cls,
           "bias is %du; expected values come from the equivalent plain %s into which tf_keras "
           "load_weights converted this file (weights/* are that layer's converted Keras-2 layout); "
           "the file itself cannot run without a GPU"
           % (8 if kind == "lstm" else 6, eq))


def make_k1():
    from tf_keras.src.saving.legacy import hdf5_format

    K = K2
    base = "k1_lstm"
    log(base)
    seed = seed_of(base)
    fresh(K, seed)
    model = build_k1_lstm(K)
    randomise(K, model, seed)
    rng = np.random.default_rng(seed + 1)
    feed = default_inputs(model, rng)
    store, rnn_names = expected_values(K, model, feed)

    path = OUT / (base + ".h5")
    tmp = Path(tempfile.mkdtemp()) / "k2.h5"
    model.save(str(tmp))
    lstm = model.get_layer("lstm_1")
    dense = model.get_layer("dense_1")
    kernel, rec, bias = lstm.get_weights()
    u = lstm.units
    gate = {"i": 0, "f": 1, "c": 2, "o": 3}  # Keras 2 order i, f, c, o
    k1_arrays = []
    k1_names = []
    for g in ("i", "c", "f", "o"):  # Keras 1 order
        s = slice(gate[g] * u, (gate[g] + 1) * u)
        k1_arrays += [kernel[:, s], rec[:, s], bias[s]]
        k1_names += ["lstm_1_W_%s" % g, "lstm_1_U_%s" % g, "lstm_1_b_%s" % g]
    # tf_keras' own converter must give the Keras 2 weights back
    back = hdf5_format.preprocess_weights_for_loading(
        lstm, [a.copy() for a in k1_arrays], original_keras_version="1"
    )
    for a, b in zip(back, [kernel, rec, bias]):
        assert_close(a, b, "k1 converter", atol=0)

    with h5py.File(tmp, "r") as src:
        cfg = json.loads(src.attrs["model_config"])
    cfg["keras_version"] = "1.2.2"
    if path.exists():
        path.unlink()
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"1.2.2"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(cfg).encode("utf8")
        mw = f.create_group("model_weights")
        # Keras 1 wrote no keras_version / backend on the weights group
        # (that is how tf_keras recognises a Keras 1 file: it then assumes "1")
        # a Sequential lists no InputLayer here (as tf_keras and Keras 1 do)
        mw.attrs["layer_names"] = [b"lstm_1", b"dense_1"]
        g = mw.create_group("lstm_1")
        g.attrs["weight_names"] = [n.encode("utf8") for n in k1_names]
        for n, a in zip(k1_names, k1_arrays):
            g.create_dataset(n, data=a)
        g = mw.create_group("dense_1")
        dn = ["dense_1_W", "dense_1_b"]
        g.attrs["weight_names"] = [n.encode("utf8") for n in dn]
        for n, a in zip(dn, dense.get_weights()):
            g.create_dataset(n, data=a)
    os.unlink(tmp)
    os.rmdir(tmp.parent)
    # tf_keras reads it as a Keras 1 file and converts the 12 arrays
    loaded_ok = "yes"
    try:
        check_reload(K, path, feed, store)
        lm = K.models.load_model(str(path), compile=False)
        for a, b in zip(lm.get_layer("lstm_1").get_weights(), [kernel, rec, bias]):
            assert_close(a, b, "k1 load_model weights", atol=0)
    except Exception as e:  # report, do not hide
        loaded_ok = "no (%s: %s)" % (type(e).__name__, e)
        log("  tf_keras.models.load_model on k1_lstm.h5 failed:", loaded_ok)
    record(K, path, model, store, rnn_names,
           "Keras 1.2.2-style file: Input(6,4) -> LSTM(4, hard_sigmoid) -> Dense(2), 12 LSTM arrays",
           "made from a tf_keras model by rewriting the HDF5: LSTM weights as 12 datasets "
           "lstm_1_{W,U,b}_{i,c,f,o} (Keras 1 gate order i, c, f, o), Dense as dense_1_W/dense_1_b, "
           "root keras_version '1.2.2', no keras_version/backend attrs on model_weights, model_config "
           "kept in Keras 2 form with keras_version '1.2.2'; weights/* are the Keras 2 layout "
           "(kernel, recurrent_kernel, bias); tf_keras preprocess_weights_for_loading(..., '1') "
           "reproduces them exactly; tf_keras.models.load_model reproduces outputs: %s; "
           % loaded_ok + HARD_SIGMOID_NOTE[K2])


# --------------------------------------------------------------------------


def clean_outputs():
    for p in OUT.iterdir():
        if p.suffix in (".keras", ".h5", ".npy") or p.name.endswith(".expected.npz"):
            p.unlink()


def write_readme_inputs():
    """The inputs the README's examples feed to lstmctl: the stored Keras inputs, as .npy files."""
    with np.load(OUT / "k3_lstm_dense.keras.expected.npz") as data:
        np.save(OUT / "k3_lstm_dense.input.npy", data["input/input_layer"])
        # Keras's results under lstmctl's key contract, for `lstmctl run --expect`
        ref = {k: data[k] for k in data.files if not k.startswith(("weights/", "input/")) and not k.endswith("/input")}
        np.savez(OUT / "k3_lstm_dense.reference.npz", **ref)
    with np.load(OUT / "k3_encdec.keras.expected.npz") as data:
        for key in data.files:
            if key.startswith("input/"):
                np.save(OUT / ("k3_encdec.%s.npy" % key.split("/", 1)[1]), data[key])
    with np.load(OUT / "k2_vector2.h5.expected.npz") as data:
        np.save(OUT / "k2_vector2.input.npy", data["input/" + [k for k in data.files if k.startswith("input/")][0].split("/", 1)[1]])
    np.save(OUT / "k2_vector2.tf1_without_forget_bias.npy", tf1_lstm_cell_vector2(forget_bias=0.0))


def tf1_lstm_cell_vector2(forget_bias):
    """A user's own TF1-style LSTMCell for vector 2 (concat([x, h]) · kernel, i, j, f, o order)."""
    np.random.seed(0)
    x = np.random.normal(size=(1, 7, 4))
    lim = np.sqrt(6 / (7 + 12))
    kernel = np.random.uniform(-lim, lim, size=(7, 12))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h, c, out = np.zeros(3), np.zeros(3), []
    for t in range(7):
        i, j, f, o = np.split(np.concatenate([x[0, t], h]) @ kernel, 4)
        c = sig(f + forget_bias) * c + sig(i) * np.tanh(j)
        h = sig(o) * np.tanh(c)
        out.append(h)
    out = np.array(out)
    if forget_bias == 1.0:
        assert_close(out, VECTOR2_ROWS, "TF1 recipe reproduces vector 2", atol=1e-7)
    return out


def main():
    clean_outputs()
    for name, builder, in_maker, mask_fn, desc in SAMPLES:
        make_sample(K3, "k3", name, builder, in_maker, mask_fn, desc)
    for name, builder, in_maker, mask_fn, desc in SAMPLES:
        if name in K2_SAMPLES:
            make_sample(K2, "k2", name, builder, in_maker, mask_fn, desc)
    make_vector1()
    make_vector2()
    make_cudnn("lstm")
    make_cudnn("gru")
    make_k1()
    MANIFEST.sort(key=lambda e: e["file"])
    (OUT / "manifest.json").write_text(json.dumps(MANIFEST, indent=2) + "\n")
    write_readme_inputs()
    log("done: %d model files" % len(MANIFEST))


if __name__ == "__main__":
    sys.exit(main())
