"""Shared helpers for the fixture generators in sample_models/ (used by generate_layers.py).

Needs TensorFlow (tensorflow-cpu 2.21.0, keras 3.15.1, tf-keras 2.21.0); lstmctl never imports this.

What it does for a generator:

* ``fresh(K, seed)``: ``clear_session()`` and seed everything, so layer names and values do not
  depend on what was built before.
* ``randomise(K, model, seed)``: weights that look trained (see ``_value_for``).
* ``expected_values(K, model, feed)``: every key of the ``.expected.npz`` contract
  (see layers/README.md), with the self-checks (clone == layer, per-cell stack == layer,
  ``predict`` == call).
* ``save_model`` / ``save_weights`` + ``record``: write the file, check the reload with the Keras
  that wrote it, write ``<file>.expected.npz`` and append a manifest entry.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import copy  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
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
try:
    keras.utils.disable_interactive_logging()
except Exception:  # pragma: no cover
    pass

K3 = keras
K2 = tf_keras
BUILDER = {
    K3: "keras %s" % keras.__version__,
    K2: "tf_keras %s" % tf_keras.__version__,
}
ATOL_SELF_CHECK = 1e-6

#: recurrent layers that get L/sequence, L/h (, L/c) keys
RECURRENT_CLASSES = ("LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")

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


def fresh(K, seed):
    K.backend.clear_session()
    K.utils.set_random_seed(seed)


def class_name(obj):
    return obj.__class__.__name__


def flatten(K, x):
    if K is K3:
        return list(keras.tree.flatten(x))
    return list(tf.nest.flatten(x))


def pack_as(K, structure, flat):
    if K is K3:
        return keras.tree.pack_sequence_as(structure, flat)
    return tf.nest.pack_sequence_as(structure, flat)


def to_np(x):
    if isinstance(x, (list, tuple)):
        return [to_np(v) for v in x]
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def tensor(K, x):
    if K is K3:
        return keras.ops.convert_to_tensor(x)
    return tf.convert_to_tensor(x)


def assert_close(a, b, what, atol=ATOL_SELF_CHECK, rtol=0.0):
    """max |a - b| <= atol + rtol * max |b|."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise AssertionError("%s: shape %s != %s" % (what, a.shape, b.shape))
    err = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
    scale = float(np.max(np.abs(b.astype(np.float64)))) if b.size else 0.0
    if not err <= atol + rtol * scale:
        raise AssertionError("%s: max abs diff %g > %g" % (what, err, atol))


def is_model(K, layer):
    return isinstance(layer, K.Model)


def is_layer(K, op):
    return isinstance(op, K.layers.Layer)


def is_input_layer(op):
    return class_name(op) == "InputLayer"


def top_nodes(K, model):
    """The model's own graph nodes in order: layers, and for a Keras 3 Functional also keras.ops
    nodes (Operation objects). InputLayers are left out."""
    if K is K3 and not isinstance(model, keras.Sequential):
        ops = model.operations
    else:
        ops = model.layers
    return [op for op in ops if not is_input_layer(op)]


def leaf_layers(K, model):
    """All non-model layers, inner layers of nested models in place."""
    for layer in model.layers:
        if is_model(K, layer):
            yield from leaf_layers(K, layer)
        elif not is_input_layer(layer):
            yield layer


def input_names(K, model):
    names = []
    for t in model.inputs:
        if K is K3:
            names.append(t._keras_history[0].name)
        else:
            names.append(t._keras_history.layer.name)
    return names


def run(K, model, feed):
    """model(inputs, training=False) -> flat list of numpy arrays."""
    out = model(feed if len(model.inputs) > 1 else feed[0], training=False)
    return [to_np(o) for o in flatten(K, out)]


def sub_model(K, model, outputs):
    return K.Model(model.inputs, outputs)


def first_node(K, op):
    nodes = op._inbound_nodes
    if len(nodes) > 1:
        log("  note: %s has %d inbound nodes; node 0 used" % (op.name, len(nodes)))
    return nodes[0]


def node_outputs(K, op):
    return flatten(K, first_node(K, op).output_tensors)


# --------------------------------------------------------------------------
# recurrent structure
# --------------------------------------------------------------------------


def is_recurrent(layer):
    return class_name(layer) in RECURRENT_CLASSES


def cells_of(layer):
    """The cells of a recurrent layer: [cell] or the cells of a StackedRNNCells."""
    cell = layer.cell
    if class_name(cell) == "StackedRNNCells":
        return list(cell.cells)
    return [cell]


def cell_is_lstm(cell):
    cn = class_name(cell)
    return "LSTM" in cn and cn.endswith("Cell")  # LSTMCell, ConvLSTMCell


def cell_nstates(cell):
    return 2 if cell_is_lstm(cell) else 1


def state_offsets(layer):
    """[(offset into the flat state list, number of states)] per cell."""
    out, off = [], 0
    for cell in cells_of(layer):
        n = cell_nstates(cell)
        out.append((off, n))
        off += n
    return out


def covered_classes(K, op):
    """Class names an op covers: itself, a wrapper's inner layer, an RNN's cells."""
    if not is_layer(K, op):  # a Keras 3 keras.ops node: "ops.GetItem", "ops.Concatenate", ...
        return ["ops." + class_name(op)]
    names = [class_name(op)]
    cn = class_name(op)
    if cn == "Bidirectional":
        names += covered_classes(K, op.forward_layer)
        if class_name(op.backward_layer) != class_name(op.forward_layer):
            names += covered_classes(K, op.backward_layer)
    elif cn == "TimeDistributed":
        names += covered_classes(K, op.layer)
    elif hasattr(op, "cell") and cn in RECURRENT_CLASSES:
        cell = op.cell
        names.append(class_name(cell))
        if class_name(cell) == "StackedRNNCells":
            names += [class_name(c) for c in cell.cells]
    return names


# --------------------------------------------------------------------------
# weights that look trained
# --------------------------------------------------------------------------


def _short_name(var):
    return var.name.split("/")[-1].split(":")[0]


def _value_for(rng, short, shape, dtype):
    """Per-variable rule. Kernels normal*0.5, biases normal*0.5 (never all zero), BatchNormalization
    gamma 1+0.2N, beta 0.3N, moving_mean 0.5N, moving_variance U(0.5, 1.5), PReLU alpha 0.25+0.1N,
    LayerNormalization gamma/beta as BatchNormalization, attention scales 1+0.3N."""
    n = lambda: rng.standard_normal(shape)  # noqa: E731
    if short == "gamma":
        v = 1.0 + 0.2 * n()
    elif short == "beta":
        v = 0.3 * n()
    elif short == "moving_mean":
        v = 0.5 * n()
    elif short == "moving_variance":
        v = rng.uniform(0.5, 1.5, size=shape)
    elif short == "alpha":
        v = 0.25 + 0.1 * n()
    elif short == "scale":
        v = 1.0 + 0.3 * n()
    else:
        v = 0.5 * n()
    return np.asarray(v).astype(dtype)


def _forget_biases(K, layer):
    """{id(bias variable): units} for every LSTM-type cell in the layer (LSTMCell, ConvLSTMCell)."""
    out = {}
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        if cell_is_lstm(sub) and getattr(sub, "use_bias", False) and getattr(sub, "bias", None) is not None:
            units = getattr(sub, "units", None) or getattr(sub, "filters")
            out[id(sub.bias)] = int(units)
    return out


def randomise(K, model, seed):
    """Seeded trained-looking values for every float variable of every layer (wrapped and nested
    layers and RNN cells included). LSTM-type cells get +1 on the forget-gate bias slice."""
    rng = np.random.default_rng(seed)
    done = set()
    for layer in leaf_layers(K, model):
        forget = _forget_biases(K, layer)
        for var in layer.weights:
            if id(var) in done:
                continue
            done.add(id(var))
            short = _short_name(var)
            old = np.asarray(var.numpy())
            if not np.issubdtype(old.dtype, np.floating) or "seed" in short:
                continue
            new = _value_for(rng, short, old.shape, old.dtype)
            if id(var) in forget:
                u = forget[id(var)]
                new[u : 2 * u] += np.asarray(1.0, new.dtype)
            var.assign(new)


def weight_store(K, model):
    store = {}
    for layer in leaf_layers(K, model):
        for k, w in enumerate(layer.get_weights()):
            store["weights/%s/%d" % (layer.name, k)] = np.asarray(w)
    return store


# --------------------------------------------------------------------------
# probing recurrent layers with faithful clones
# --------------------------------------------------------------------------


def call_tensors(K, layer):
    """(sequence tensor, initial_state structure or None) the layer was called on."""
    node = first_node(K, layer)
    if K is K3:
        args = node.arguments
        x_t = args.args[0]
        states = args.kwargs.get("initial_state")
        if states is None and len(args.args) > 1:
            states = args.args[1]
        return x_t, states
    lin = node.input_tensors
    if isinstance(lin, (list, tuple)):
        return lin[0], (list(lin[1:]) or None)
    return lin, None


def propagated_mask(K, model, feed, x_t):
    """The mask Keras propagates with tensor x_t (None if none): read from the eager output of a
    sub-model, where both Keras versions attach it as `_keras_mask`."""
    if any(x_t is t for t in model.inputs):
        return None
    out = sub_model(K, model, x_t)(feed if len(feed) > 1 else feed[0], training=False)
    m = getattr(out, "_keras_mask", None)
    return None if m is None else np.asarray(to_np(m)).astype(bool)


def _clone_rnn(K, layer):
    cfg = copy.deepcopy(layer.get_config())
    cfg["return_sequences"] = True
    cfg["return_state"] = True
    clone = type(layer).from_config(cfg)
    zo = getattr(layer, "zero_output_for_mask", None)
    if zo is not None:
        clone.zero_output_for_mask = zo
    return clone


def _bidir_clone(K, layer, merge_mode):
    cfg = copy.deepcopy(layer.get_config())
    for key in ("layer", "backward_layer"):
        if key in cfg and cfg[key] is not None:
            cfg[key]["config"]["return_sequences"] = True
            cfg[key]["config"]["return_state"] = True
    cfg["merge_mode"] = merge_mode
    return type(layer).from_config(cfg)


def _call_built(K, clone, x, weights, **kw):
    clone(x, **kw)  # builds
    clone.set_weights(weights)
    return [to_np(o) for o in flatten(K, clone(x, **kw))]


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


def _last_cell_states(layer, states):
    off, n = state_offsets(layer)[-1]
    return states[off : off + n]


def _probe_cells(K, layer, name, x, mask, init_flat, seq, states, store):
    """Per-cell values of an RNN over a StackedRNNCells: RNN(cell_k clone) on the previous cell's
    sequence (cell_0 on the layer input), same weights, initial-state slice and mask."""
    cells = cells_of(layer)
    offs = state_offsets(layer)
    cur = x
    all_states = []
    back = bool(getattr(layer, "go_backwards", False))
    for k, (cell, (off, n)) in enumerate(zip(cells, offs)):
        cclone = type(cell).from_config(copy.deepcopy(cell.get_config()))
        wrapper = K.layers.RNN(
            cclone,
            return_sequences=True,
            return_state=True,
            go_backwards=back and k == 0,  # later cells see cell_0's output in processing order
        )
        zo = getattr(layer, "zero_output_for_mask", None)
        if zo is not None:
            wrapper.zero_output_for_mask = zo
        kw = {}
        if mask is not None:
            m = mask[:, ::-1] if (back and k > 0) else mask
            kw["mask"] = tensor(K, np.ascontiguousarray(m))
        if init_flat:
            kw["initial_state"] = [tensor(K, v) for v in init_flat[off : off + n]]
        out = _call_built(K, wrapper, tensor(K, cur), cell.get_weights(), **kw)
        cseq, cst = out[0], out[1:]
        store["%s/cell_%d/sequence" % (name, k)] = cseq
        store["%s/cell_%d/h" % (name, k)] = cst[0]
        if cell_is_lstm(cell):
            store["%s/cell_%d/c" % (name, k)] = cst[1]
        all_states += cst
        cur = cseq
    assert_close(cur, seq, "%s: last cell's sequence == layer sequence" % name)
    if len(all_states) != len(states):
        raise AssertionError("%s: %d per-cell states vs %d" % (name, len(all_states), len(states)))
    for i, (a, b) in enumerate(zip(all_states, states)):
        assert_close(a, b, "%s: per-cell state %d == return_state[%d]" % (name, i, i))


def probe_recurrent(K, model, layer, feed, store):
    """Store L/input, L/sequence, L/h, L/c (+ per-cell and forward/backward keys) for one layer."""
    name = layer.name
    x_t, init_struct = call_tensors(K, layer)
    init_ts = flatten(K, init_struct) if init_struct is not None else []
    vals = run(K, sub_model(K, model, [x_t] + init_ts), feed)
    x, init_flat = vals[0], vals[1:]
    store["%s/input" % name] = x
    for i, v in enumerate(init_flat):
        store["%s/initial_state/%d" % (name, i)] = v
    mask = propagated_mask(K, model, feed, x_t)
    orig = run(K, sub_model(K, model, node_outputs(K, layer)), feed)

    kw = {}
    if mask is not None:
        kw["mask"] = tensor(K, mask)
    if init_flat:
        kw["initial_state"] = pack_as(K, init_struct, [tensor(K, v) for v in init_flat])
    xt = tensor(K, x)
    cname = class_name(layer)

    if cname == "Bidirectional":
        inner = layer.forward_layer
        nstate = sum(n for _, n in state_offsets(inner))
        w = layer.get_weights()
        cb = _bidir_clone(K, layer, None)
        ob = _call_built(K, cb, xt, w, **kw)
        fseq, bseq = ob[0], ob[1]
        st = ob[2:]
        fst, bst = st[:nstate], st[nstate:]
        flast = _last_cell_states(inner, fst)
        blast = _last_cell_states(layer.backward_layer, bst)
        store["%s/forward/sequence" % name] = fseq
        store["%s/backward/sequence" % name] = bseq
        store["%s/forward/h" % name] = flast[0]
        store["%s/backward/h" % name] = blast[0]
        if len(flast) == 2:
            store["%s/forward/c" % name] = flast[1]
            store["%s/backward/c" % name] = blast[1]
        merged = None
        if layer.merge_mode is not None:
            ca = _bidir_clone(K, layer, layer.merge_mode)
            oa = _call_built(K, ca, xt, w, **kw)
            merged = oa[0]
            store["%s/sequence" % name] = merged
            for i, (p, q) in enumerate(zip(oa[1:], st)):
                assert_close(p, q, "%s merged-clone state %d" % (name, i))
            assert_close(merged, _merge(layer.merge_mode, fseq, bseq), "%s merge of halves" % name)
        if layer.return_sequences:
            got = [fseq, bseq] if layer.merge_mode is None else [merged]
        else:
            if layer.merge_mode is None:
                got = [flast[0], blast[0]]
            else:
                got = [_merge(layer.merge_mode, flast[0], blast[0])]
        if layer.return_state:
            got = got + list(st)
        if len(got) != len(orig):
            raise AssertionError("%s: %d outputs vs %d" % (name, len(got), len(orig)))
        for i, (g, o) in enumerate(zip(got, orig)):
            assert_close(g, o, "%s self-check output %d" % (name, i))
        return

    clone = _clone_rnn(K, layer)
    out = _call_built(K, clone, xt, layer.get_weights(), **kw)
    seq, states = out[0], out[1:]
    last = _last_cell_states(layer, states)
    store["%s/sequence" % name] = seq
    store["%s/h" % name] = last[0]
    if len(last) == 2:
        store["%s/c" % name] = last[1]
    got = [seq if layer.return_sequences else last[0]]
    if layer.return_state:
        got += list(states)
    if len(got) != len(orig):
        raise AssertionError("%s: %d outputs vs %d" % (name, len(got), len(orig)))
    for i, (g, o) in enumerate(zip(got, orig)):
        assert_close(g, o, "%s self-check output %d" % (name, i))
    if mask is None:
        assert_close(seq[:, -1], last[0], "%s h == sequence[:, -1]" % name)
    if len(cells_of(layer)) > 1:
        _probe_cells(K, layer, name, x, mask, init_flat, seq, states, store)


# --------------------------------------------------------------------------
# expected values
# --------------------------------------------------------------------------


def expected_values(K, model, feed):
    """All keys of the .expected.npz contract for `model` and `feed` (a list, model input order).

    Returns (store, recurrent layer names, covered class names)."""
    store = weight_store(K, model)
    for n, v in zip(input_names(K, model), feed):
        store["input/%s" % n] = v
    outs = run(K, model, feed)
    if len(outs) == 1:
        store["output"] = outs[0]
    else:
        for i, o in enumerate(outs):
            store["output_%d" % i] = o
    pred = [to_np(p) for p in flatten(K, model.predict(feed if len(feed) > 1 else feed[0], verbose=0))]
    if len(pred) != len(outs):
        raise AssertionError("predict gave %d outputs, call %d" % (len(pred), len(outs)))
    for a, b in zip(pred, outs):
        assert_close(a, b, "predict vs call", rtol=1e-6)  # graph vs eager rounding

    # every top-level layer / ops node: one sub-model with all their outputs
    nodes = top_nodes(K, model)
    tensors, slots = [], []
    for op in nodes:
        ts = node_outputs(K, op)
        slots.append((op.name, len(tensors), len(ts)))
        tensors += ts
    vals = run(K, sub_model(K, model, tensors), feed)
    for name, start, n in slots:
        if n == 1:
            store["layer/%s" % name] = vals[start]
        else:
            for i in range(n):
                store["layer/%s/%d" % (name, i)] = vals[start + i]

    rnn_names = []
    classes = []
    for op in nodes:
        for c in covered_classes(K, op):
            if c not in classes:
                classes.append(c)
        if is_layer(K, op) and (is_recurrent(op) or class_name(op) == "Bidirectional"):
            probe_recurrent(K, model, op, feed, store)
            rnn_names.append(op.name)
    return store, rnn_names, classes


# --------------------------------------------------------------------------
# files, reload check, manifest
# --------------------------------------------------------------------------


def save_npz(path, store):
    np.savez_compressed(str(path) + ".expected.npz", **{k: store[k] for k in sorted(store)})


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


def check_reload(K, path, feed, store):
    """Load the saved model back with the Keras that wrote it; same outputs."""
    m = K.models.load_model(str(path), compile=False)
    out = run(K, m, feed)
    keys = ["output"] if "output" in store else sorted(
        (k for k in store if k.startswith("output_")), key=lambda s: int(s[7:])
    )
    if len(keys) != len(out):
        raise AssertionError("%s reload: %d outputs vs %d" % (Path(path).name, len(out), len(keys)))
    for k, o in zip(keys, out):
        assert_close(o, store[k], "%s reload %s" % (Path(path).name, k), rtol=1e-6)


def check_weights_reload(K, path, model, feed, store):
    """Load a weights-only file into a fresh clone of the model; same outputs."""
    clone = K.models.clone_model(model)
    clone.load_weights(str(path))
    out = run(K, clone, feed)
    keys = ["output"] if "output" in store else sorted(
        (k for k in store if k.startswith("output_")), key=lambda s: int(s[7:])
    )
    for k, o in zip(keys, out):
        assert_close(o, store[k], "%s weights reload %s" % (Path(path).name, k), rtol=1e-6)


class Manifest:
    def __init__(self):
        self.entries = []

    def add(self, K, path, description, classes, rnn_names, notes="", dtype="float32"):
        self.entries.append(
            {
                "file": Path(path).name,
                "builder": BUILDER[K],
                "format": file_format(path),
                "keras_version": file_keras_version(path),
                "dtype": dtype,
                "description": description,
                "classes": list(classes),
                "recurrent": list(rnn_names),
                "notes": notes,
            }
        )

    def write(self, path):
        entries = sorted(self.entries, key=lambda e: e["file"])
        Path(path).write_text(json.dumps(entries, indent=2) + "\n")


def save_model(K, model, path, feed, store, manifest, description, classes, rnn_names, notes=""):
    """model.save(path) with the Keras that built it, reload check, npz, manifest entry."""
    path = Path(path)
    model.save(str(path))
    check_reload(K, path, feed, store)
    save_npz(path, store)
    manifest.add(K, path, description, classes, rnn_names, notes)
    log("  wrote", path.name, "(%d keys)" % len(store))


def save_weights(K, model, path, feed, store, manifest, description, classes, rnn_names, notes=""):
    path = Path(path)
    model.save_weights(str(path))
    check_weights_reload(K, path, model, feed, store)
    save_npz(path, store)
    manifest.add(K, path, description, classes, rnn_names, notes)
    log("  wrote", path.name, "(%d keys)" % len(store))
