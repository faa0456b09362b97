#!/usr/bin/env python
"""Generate the TensorFlow-format fixtures in sample_models/tf/ and the values TensorFlow computed.

Run once, from the repository root, in an environment with TensorFlow:

    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    python sample_models/tf/generate_tf.py             # about a minute on 2 cores

Part A (tf_keras 2.21): small recurrent models saved as SavedModel folders
(``model.save(path, save_format="tf")``), legacy ``.h5`` of the same model, TF2 object-based
checkpoints (``tf.train.Checkpoint(model=model).write``), ``save_weights`` in TF format and one
model trained with Adam (optimizer slots in the files). Every file gets ``<file>.expected.npz``
with the key contract of layers/README.md (``kerasgen.expected_values``) and an entry in
``manifest.json``.

Part B (tf.compat.v1 graph mode, ``TF_USE_LEGACY_KERAS=1``): ``dynamic_rnn`` /
``bidirectional_dynamic_rnn`` over the TF1 cells, saved with ``tf.compat.v1.train.Saver`` to
``tf1_<name>/model.ckpt`` plus ``model.ckpt.expected.npz`` (keys in tf/README.md) and an entry in
``tf1_manifest.json``.

The run deletes its old outputs first and is deterministic (seeds from ``kerasgen.seed_of``).
lstmctl itself never imports TensorFlow; only the generators do.
"""

import os
import sys

# The TF1 cells (tf.compat.v1.nn.rnn_cell.*) live in tf_keras and are only reachable with legacy
# Keras; it has to be set before tensorflow is imported (kerasgen imports it). Part A uses
# tf_keras directly, so it is unaffected.
os.environ["TF_USE_LEGACY_KERAS"] = "1"

import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

import kerasgen as kg  # noqa: E402
from kerasgen import K2, K3, log, tf  # noqa: E402

OUT = HERE
KEEP = {"README.md", "generate_tf.py"}
MANIFEST = kg.Manifest()
TF1_MANIFEST = []
v1 = tf.compat.v1

#: SavedModels written with their traced functions (realistic but ~0.6 MB each); the others use
#: save_traces=False, which keeps keras_metadata.pb, the object graph and variables/ but no
#: functions (tf_keras reloads them from the config).
FULL_TRACES = {"lstm", "adam"}


def rel(path):
    return Path(path).relative_to(OUT).as_posix()


def list_ckpt(prefix):
    """[(key, shape)] of a checkpoint (TF1 Saver, TF2 object-based or SavedModel variables)."""
    return [(k, list(s)) for k, s in tf.train.list_variables(str(prefix))]


def log_keys(prefix):
    for k, s in list_ckpt(prefix):
        log("    %-90s %s" % (k, s))


# --------------------------------------------------------------------------
# Part A: tf_keras models
# --------------------------------------------------------------------------


def build_lstm(K):
    L = K.layers
    x = K.Input((6, 3))
    y = L.LSTM(5, return_sequences=True)(x)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="lstm_model")


def build_gru(K):
    L = K.layers
    x = K.Input((6, 4))
    y = L.GRU(4, reset_after=True, return_sequences=True, name="gru_after")(x)
    y = L.GRU(3, reset_after=False, name="gru_before")(y)
    return K.Model(x, y, name="gru_model")


def build_bidir(K):
    L = K.layers
    x = K.Input((5, 3))
    y = L.Bidirectional(L.LSTM(4, return_sequences=True))(x)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="bidir_model")


def build_stack(K):
    L = K.layers
    x = K.Input((6, 3))
    y = L.LSTM(5, return_sequences=True)(x)
    y = L.LSTM(3)(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="stack_model")


def build_rnn_cells(K):
    L = K.layers
    x = K.Input((5, 3))
    outs = L.RNN([L.LSTMCell(4), L.LSTMCell(3)], return_sequences=True, return_state=True,
                 name="cells")(x)
    return K.Model(x, kg.flatten(K, outs), name="rnn_cells_model")


def build_encdec(K):
    L = K.layers
    enc_in = K.Input((6, 3), name="encoder_input")
    dec_in = K.Input((5, 4), name="decoder_input")
    _, h, c = L.LSTM(4, return_state=True, name="encoder")(enc_in)
    y = L.LSTM(4, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    y = L.Dense(3)(y)
    return K.Model([enc_in, dec_in], y, name="encdec_model")


def build_norm(K):
    """Layers a weights-only file names: Embedding, BatchNormalization, LayerNormalization, Dense."""
    L = K.layers
    x = K.Input((6,), dtype="int32")
    y = L.Embedding(20, 4)(x)
    y = L.LSTM(5, return_sequences=True)(y)
    y = L.BatchNormalization()(y)
    y = L.LayerNormalization()(y)
    y = L.Dense(2)(y)
    return K.Model(x, y, name="norm_model")


def build_adam(K):
    L = K.layers
    x = K.Input((5, 3))
    y = L.LSTM(4, return_sequences=True)(x)
    y = L.Dense(1)(y)
    return K.Model(x, y, name="adam_model")


CASES_A = [
    # name, builder, description, TF-format weights-only save too
    ("lstm", build_lstm, "Input(6,3) -> LSTM(5, rs) -> Dense(2)", True),
    ("gru", build_gru, "Input(6,4) -> GRU(4, reset_after=True, rs) 'gru_after' -> "
                       "GRU(3, reset_after=False) 'gru_before'", False),
    ("bidir", build_bidir, "Input(5,3) -> Bidirectional(LSTM(4, rs)) concat -> Dense(2)", True),
    ("stack", build_stack, "Input(6,3) -> LSTM(5, rs) -> LSTM(3) -> Dense(2)", False),
    ("rnn_cells", build_rnn_cells,
     "Input(5,3) -> RNN([LSTMCell(4), LSTMCell(3)], rs, return_state) 'cells'; 5 outputs: seq, h0, c0, h1, c1",
     False),
    ("encdec", build_encdec,
     "encoder_input(6,3) -> LSTM(4, return_state) 'encoder'; decoder_input(5,4) -> LSTM(4, rs) 'decoder' with "
     "initial_state [h, c] -> Dense(3)", False),
    ("norm", build_norm, "Input(6, int32) -> Embedding(20, 4) -> LSTM(5, rs) -> BatchNormalization -> LayerNormalization "
                         "-> Dense(2): what a checkpoint's variable names identify beside the recurrent layer", False),
]


def normal_inputs(model, rng, batch=2):
    feed = []
    for t in model.inputs:
        shape = (batch,) + tuple(int(d) for d in t.shape[1:])
        feed.append(rng.integers(1, 20, size=shape).astype(np.int32) if "int" in str(t.dtype) else rng.standard_normal(shape).astype(np.float32))
    return feed


def savedmodel_keras_version(path):
    from tf_keras.protobuf import saved_metadata_pb2

    meta = saved_metadata_pb2.SavedMetadata()
    meta.ParseFromString((Path(path) / "keras_metadata.pb").read_bytes())
    for node in meta.nodes:
        if node.node_path == "root":
            return json.loads(node.metadata).get("keras_version")
    return None


def add_entry(path, fmt, description, classes, rnn_names, notes="", keras_version=None, **extra):
    entry = {
        "file": rel(path),
        "builder": kg.BUILDER[K2],
        "format": fmt,
        "keras_version": keras_version,
        "dtype": "float32",
        "description": description,
        "classes": list(classes),
        "recurrent": list(rnn_names),
        "notes": notes,
    }
    entry.update(extra)
    MANIFEST.entries.append(entry)


def output_keys(store):
    if "output" in store:
        return ["output"]
    return sorted((k for k in store if k.startswith("output_")), key=lambda s: int(s[7:]))


def check_outputs(model, feed, store, what):
    out = kg.run(K2, model, feed)
    keys = output_keys(store)
    if len(keys) != len(out):
        raise AssertionError("%s: %d outputs vs %d" % (what, len(out), len(keys)))
    for k, o in zip(keys, out):
        kg.assert_close(o, store[k], "%s %s" % (what, k), rtol=1e-6)


def save_savedmodel(model, name, feed, store, description, classes, rnn_names, notes=""):
    path = OUT / (name + ".savedmodel")
    traces = name in FULL_TRACES
    model.save(str(path), save_format="tf", save_traces=traces)
    kg.check_reload(K2, path, feed, store)
    kg.save_npz(path, store)
    how = "tf_keras model.save(save_format='tf', save_traces=%s)" % traces
    if model.optimizer is not None:
        how += ", optimizer included"
    add_entry(path, "savedmodel", description, classes, rnn_names,
              (notes + "; " if notes else "") + how, savedmodel_keras_version(path), save_traces=traces)
    pb = (path / "saved_model.pb").stat().st_size
    log("  wrote %s (%d keys; saved_model.pb %d bytes)" % (rel(path), len(store), pb))
    log_keys(path / "variables" / "variables")


def save_tf2_checkpoint(model, name, feed, store, description, classes, rnn_names, with_optimizer=False):
    prefix = OUT / (name + ".ckpt")
    if with_optimizer:
        ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        how = "tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(...)"
    else:
        ckpt = tf.train.Checkpoint(model=model)
        how = "tf.train.Checkpoint(model=model).write(...)"
    ckpt.write(str(prefix))
    # read back into a fresh clone (its own random initial weights)
    clone = K2.models.clone_model(model)
    status = tf.train.Checkpoint(model=clone).read(str(prefix))
    status.expect_partial()
    status.assert_existing_objects_matched()
    check_outputs(clone, feed, store, "%s Checkpoint.read" % rel(prefix))
    kg.save_npz(prefix, store)
    add_entry(prefix, "tf2-checkpoint", description, classes, rnn_names,
              how + "; files <file>.index and <file>.data-00000-of-00001; weights only, no config",
              None, weights_only=True)
    log("  wrote %s (%d keys)" % (rel(prefix), len(store)))
    log_keys(prefix)


def save_tf_weights(model, name, feed, store, description, classes, rnn_names):
    folder = OUT / (name + "_weights")
    prefix = folder / "ckpt"
    model.save_weights(str(prefix))  # no .h5 suffix: TF checkpoint format plus a `checkpoint` file
    kg.check_weights_reload(K2, prefix, model, feed, store)
    kg.save_npz(prefix, store)
    add_entry(prefix, "tf2-checkpoint", description, classes, rnn_names,
              "tf_keras model.save_weights('<M>_weights/ckpt') (TF format: ckpt.index, "
              "ckpt.data-00000-of-00001 and a `checkpoint` state file); keys have no 'model/' prefix",
              None, weights_only=True)
    log("  wrote %s (%d keys)" % (rel(prefix), len(store)))
    log_keys(prefix)


def make_model_case(name, builder, description, weights_too):
    log("tf_" + name)
    seed = kg.seed_of("tf_" + name)
    kg.fresh(K2, seed)
    model = builder(K2)
    kg.randomise(K2, model, seed)
    feed = normal_inputs(model, np.random.default_rng(seed + 1))
    store, rnn_names, classes = kg.expected_values(K2, model, feed)
    kg.save_model(K2, model, OUT / (name + ".h5"), feed, store, MANIFEST, description, classes, rnn_names,
                  "legacy HDF5 of the model the .savedmodel/.ckpt files hold (for cross-checks)")
    save_savedmodel(model, name, feed, store, description, classes, rnn_names)
    save_tf2_checkpoint(model, name, feed, store, description, classes, rnn_names)
    if weights_too:
        save_tf_weights(model, name, feed, store, description, classes, rnn_names)


def make_adam_case():
    name = "adam"
    description = ("Input(5,3) -> LSTM(4, rs) -> Dense(1), compiled with Adam(0.01) and MSE and fit for 3 steps "
                   "(batch 2, 6 random samples, no shuffle) so the optimizer has its iteration count and m/v slots")
    log("tf_" + name)
    seed = kg.seed_of("tf_" + name)
    kg.fresh(K2, seed)
    model = build_adam(K2)
    kg.randomise(K2, model, seed)
    rng = np.random.default_rng(seed + 1)
    feed = normal_inputs(model, rng)
    xs = rng.standard_normal((6, 5, 3)).astype(np.float32)
    ys = rng.standard_normal((6, 5, 1)).astype(np.float32)
    model.compile(optimizer=K2.optimizers.Adam(0.01), loss="mse")
    model.fit(xs, ys, batch_size=2, epochs=1, shuffle=False, verbose=0)
    log("  optimizer %s, iterations %d" % (kg.class_name(model.optimizer), int(model.optimizer.iterations.numpy())))
    store, rnn_names, classes = kg.expected_values(K2, model, feed)
    save_savedmodel(model, name, feed, store, description, classes, rnn_names)
    save_tf2_checkpoint(model, name, feed, store, description, classes, rnn_names, with_optimizer=True)


# --------------------------------------------------------------------------
# Part B: TF1 graphs (tf.compat.v1)
# --------------------------------------------------------------------------

rnn_cell = v1.nn.rnn_cell


def state_tensors(state, prefix):
    """{npz key: tensor} for a dynamic_rnn final state (LSTMStateTuple, tuple of cell states, tensor)."""
    if isinstance(state, rnn_cell.LSTMStateTuple):
        return {prefix + "/c": state.c, prefix + "/h": state.h}
    if isinstance(state, (tuple, list)):
        out = {}
        for k, s in enumerate(state):
            out.update(state_tensors(s, "%s/cell_%d" % (prefix, k)))
        return out
    return {prefix + "/h": state}


def tf1_single(cell_fn):
    def build(x):
        out, st = v1.nn.dynamic_rnn(cell_fn(), x, dtype=tf.float32, time_major=False)
        return out, state_tensors(st, "state"), {}, None
    return build


def tf1_bidirectional(cell_fn):
    def build(x):
        (ofw, obw), (sfw, sbw) = v1.nn.bidirectional_dynamic_rnn(cell_fn(), cell_fn(), x, dtype=tf.float32,
                                                                 time_major=False)
        states = state_tensors(sfw, "state/fw")
        states.update(state_tensors(sbw, "state/bw"))
        return tf.concat([ofw, obw], axis=2), states, {}, None
    return build


def tf1_scoped_adam(x):
    with v1.variable_scope("encoder"):
        out, st = v1.nn.dynamic_rnn(rnn_cell.LSTMCell(4), x, dtype=tf.float32, time_major=False)
    dense = v1.layers.dense(out, 2, name="dense")
    target = v1.placeholder(tf.float32, (2, 6, 2), name="target")
    loss = v1.losses.mean_squared_error(target, dense)
    train_op = v1.train.AdamOptimizer(0.01).minimize(loss, global_step=v1.train.get_or_create_global_step())
    return out, state_tensors(st, "state"), {"dense_output": dense}, (train_op, target)


def tf1_seq2seq(x):
    """Two networks: the encoder's final LSTMStateTuple is the decoder's initial state."""
    with v1.variable_scope("encoder"):
        enc_out, enc_st = v1.nn.dynamic_rnn(rnn_cell.LSTMCell(4), x, dtype=tf.float32, time_major=False)
    dec_in = tf.identity(x[:, ::-1, :] * 0.5, name="decoder_input")
    with v1.variable_scope("decoder"):
        dec_out, dec_st = v1.nn.dynamic_rnn(rnn_cell.LSTMCell(4), dec_in, initial_state=enc_st, time_major=False)
    extra = {"decoder_input": dec_in, "encoder_outputs": enc_out}
    extra.update(state_tensors(enc_st, "encoder_state"))
    return dec_out, state_tensors(dec_st, "state"), extra, None


def multi(*units):
    return lambda: rnn_cell.MultiRNNCell([rnn_cell.LSTMCell(u) for u in units])


CASES_B = [
    # name, build, structure, cells, units, forget_bias, scope, description
    ("lstm_cell", tf1_single(lambda: rnn_cell.LSTMCell(4)), "single", ["LSTMCell"], [4], 1.0, "rnn",
     "dynamic_rnn(LSTMCell(4)) (forget_bias 1.0 added at run time, not stored in the bias)"),
    ("basic_lstm_cell", tf1_single(lambda: rnn_cell.BasicLSTMCell(4)), "single", ["BasicLSTMCell"], [4], 1.0,
     "rnn", "dynamic_rnn(BasicLSTMCell(4)) (forget_bias 1.0)"),
    ("lstm_forget_bias", tf1_single(lambda: rnn_cell.LSTMCell(4, forget_bias=2.5)), "single", ["LSTMCell"], [4],
     2.5, "rnn", "dynamic_rnn(LSTMCell(4, forget_bias=2.5))"),
    ("gru_cell", tf1_single(lambda: rnn_cell.GRUCell(3)), "single", ["GRUCell"], [3], None, "rnn",
     "dynamic_rnn(GRUCell(3)) (gates/ and candidate/ variables)"),
    ("basic_rnn_cell", tf1_single(lambda: rnn_cell.BasicRNNCell(3)), "single", ["BasicRNNCell"], [3], None, "rnn",
     "dynamic_rnn(BasicRNNCell(3)) (tanh)"),
    ("multi_rnn_cell", tf1_single(multi(5, 4, 3)), "multi", ["LSTMCell"] * 3, [5, 4, 3], 1.0, "rnn",
     "dynamic_rnn(MultiRNNCell([LSTMCell(5), LSTMCell(4), LSTMCell(3)]))"),
    ("bidirectional", tf1_bidirectional(lambda: rnn_cell.LSTMCell(4)), "bidirectional", ["LSTMCell"] * 2, [4, 4],
     1.0, "bidirectional_rnn", "bidirectional_dynamic_rnn(LSTMCell(4), LSTMCell(4)); outputs = concat(fw, bw)"),
    ("bidirectional_multi", tf1_bidirectional(multi(4, 3)), "bidirectional_multi", ["LSTMCell"] * 4, [4, 3, 4, 3],
     1.0, "bidirectional_rnn",
     "bidirectional_dynamic_rnn(MultiRNNCell([LSTMCell(4), LSTMCell(3)]) fw and bw); outputs = concat(fw, bw)"),
    ("scoped_adam", tf1_scoped_adam, "single", ["LSTMCell"], [4], 1.0, "encoder/rnn",
     "variable_scope('encoder'): dynamic_rnn(LSTMCell(4)); tf.compat.v1.layers.dense(2) 'dense' on the sequence; "
     "MSE to random targets; AdamOptimizer(0.01).minimize with global_step, run 2 steps before saving "
     "(Adam slots, beta1_power, beta2_power, global_step in the checkpoint)"),
    ("seq2seq", tf1_seq2seq, "seq2seq", ["LSTMCell", "LSTMCell"], [4, 4], 1.0, "decoder/rnn",
     "encoder/rnn: dynamic_rnn(LSTMCell(4)) on input; decoder/rnn: dynamic_rnn(LSTMCell(4)) on decoder_input "
     "(the input reversed in time, times 0.5) from the encoder's final state; outputs and state are the decoder's, "
     "encoder_outputs and encoder_state/c|h the encoder's"),
]


def tf1_value(rng, name, shape):
    short = name.split("/")[-1].split(":")[0]
    if short == "bias":
        return rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)
    if short == "kernel":
        return rng.uniform(-0.6, 0.6, size=shape).astype(np.float32)
    raise AssertionError("unexpected trainable variable %s" % name)


def make_tf1_case(name, build, structure, cells, units, forget_bias, scope, description):
    base = "tf1_" + name
    log(base)
    seed = kg.seed_of(base)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    folder = OUT / base
    folder.mkdir()
    prefix = folder / "model.ckpt"
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(seed)
        xt = v1.placeholder(tf.float32, (2, 6, 3), name="input")
        out, states, extra, train = build(xt)
        trainable = v1.trainable_variables()
        saver = v1.train.Saver(save_relative_paths=True)
        fetch = {"outputs": out}
        fetch.update(states)
        fetch.update(extra)
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            for var in trainable:
                var.load(tf1_value(rng, var.name, tuple(var.shape.as_list())), sess)
            if train is not None:
                train_op, target = train
                y = rng.standard_normal(tuple(target.shape.as_list())).astype(np.float32)
                for _ in range(2):
                    sess.run(train_op, {xt: x, target: y})
            saver.save(sess, str(prefix))
            values = sess.run(fetch, {xt: x})
            var_values = {v.name.split(":")[0]: sess.run(v) for v in trainable}
        meta = Path(str(prefix) + ".meta")
        if meta.exists():
            meta.unlink()
        # restore into a new session of the same graph: same outputs
        with v1.Session(graph=g) as sess:
            saver.restore(sess, str(prefix))
            again = sess.run(fetch, {xt: x})
        for k in values:
            kg.assert_close(again[k], values[k], "%s restore %s" % (base, k))

    reader = tf.train.load_checkpoint(str(prefix))
    keys = sorted(k for k, _ in list_ckpt(prefix))
    store = {"input": x}
    store.update(values)
    for vname, val in var_values.items():
        saved = reader.get_tensor(vname)
        kg.assert_close(saved, val, "%s checkpoint %s" % (base, vname), atol=0.0)
        store["variables/" + vname] = saved
    for k in list(store):
        store[k] = np.asarray(store[k])
    kg.save_npz(prefix, store)
    state_file = (folder / "checkpoint").read_text()
    if str(OUT) in state_file:
        raise AssertionError("%s: absolute path in the checkpoint state file" % base)
    TF1_MANIFEST.append({
        "file": rel(prefix),
        "builder": "tensorflow %s (tf.compat.v1)" % tf.__version__,
        "cells": cells,
        "structure": structure,
        "scope": scope,
        "forget_bias": forget_bias,
        "units": units,
        "variables": keys,
        "description": description,
    })
    log("  wrote %s (%d keys)" % (rel(prefix), len(store)))
    log_keys(prefix)


def make_k3_export_case():
    """Keras 3's model.export(): a SavedModel without keras_metadata.pb, read as weights only."""
    name = "k3_export"
    log("tf_" + name)
    seed = kg.seed_of("tf_" + name)
    kg.fresh(K3, seed)
    inp = K3.Input((5, 3), name="x")
    out = K3.layers.Dense(2, name="head")(K3.layers.LSTM(4, return_sequences=True, name="enc")(inp))
    model = K3.Model(inp, out)
    kg.randomise(K3, model, seed)
    feed = normal_inputs(model, np.random.default_rng(seed + 1))
    store, rnn_names, classes = kg.expected_values(K3, model, feed)
    path = OUT / (name + ".savedmodel")
    model.export(str(path), verbose=False)
    loaded = tf.saved_model.load(str(path))  # kept alive: the function refers to its variables
    served = loaded.serve(feed[0]).numpy()
    kg.assert_close(served, store["output"], "%s serve" % rel(path))
    kg.save_npz(path, store)
    add_entry(path, "savedmodel", "Input(5,3) -> LSTM(4, rs) 'enc' -> Dense(2) 'head', exported by Keras 3",
              classes, rnn_names, "keras %s model.export(): no keras_metadata.pb, so weights only" % K3.__version__,
              None, weights_only=True, builder=kg.BUILDER[K3])
    log("  wrote %s (%d keys)" % (rel(path), len(store)))
    log_keys(path / "variables" / "variables")


# --------------------------------------------------------------------------


def clean_outputs():
    OUT.mkdir(exist_ok=True)
    for p in OUT.iterdir():
        if p.name in KEEP:
            continue
        if p.is_dir() and p.name != "__pycache__":
            shutil.rmtree(p)
        elif p.is_file():
            p.unlink()


def main():
    clean_outputs()
    for name, builder, description, weights_too in CASES_A:
        make_model_case(name, builder, description, weights_too)
    make_adam_case()
    make_k3_export_case()
    MANIFEST.write(OUT / "manifest.json")
    for case in CASES_B:
        make_tf1_case(*case)
    entries = sorted(TF1_MANIFEST, key=lambda e: e["file"])
    (OUT / "tf1_manifest.json").write_text(json.dumps(entries, indent=2) + "\n")
    log("done: %d tf_keras entries, %d TF1 checkpoints" % (len(MANIFEST.entries), len(TF1_MANIFEST)))


if __name__ == "__main__":
    sys.exit(main())
