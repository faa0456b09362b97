#!/usr/bin/env python
"""What real Keras computes for the real-world model files in ../shared/zoo2 (the zoo2 tier).

Run from the repository root, in an environment with TensorFlow (never lstmctl):

    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0     # keras 3.15.1 comes with it
    TF_CPP_MIN_LOG_LEVEL=3 python tests/zoo2/generate.py [--zoo PATH] [FOLDER ...]

The zoo2 files are other people's: they are read here and never copied into the repository.
Only what Keras computes for them (and the inputs fed to it) is written, to
tests/zoo2/expected/<folder>.npz, plus tests/zoo2/manifest.json.

Loaders (as ../shared/zoo2/README.md says): files saved by Keras 3 are read with `keras`
3.15.1; files saved by Keras 1 or 2 (and tf.keras) with `tf_keras` 2.21.0, whose legacy HDF5
loader knows the saving version's layouts (Keras 1 per-gate arrays, Keras 2 hard_sigmoid, CuDNN
layouts). Where a file needs help to load, the help is applied to a temporary copy, and named in
the manifest under "patches":

  * Keras 1.2.2 configs use Keras 1 argument names (output_dim, inner_activation, ...): they are
    renamed to the Keras 2 names in the model_config attribute of a temporary copy (initialiser
    and regulariser arguments, which do not change what the model computes, are dropped).
  * Keras 2.0.x wrote an Embedding's "dtype": "int32" (the dtype of its input placeholder);
    tf_keras would make the embedding matrix int32, so it is set to float32.
  * A Keras 2.0 GRU config has no reset_after (that GRU had none: it computed reset_after=False);
    tf_keras's default is True, so reset_after: false is written.
  * An HDF5 full model named .keras is loaded through a temporary .h5 name (tf_keras chooses the
    format by the extension).
  * A Keras 3 .weights.h5 written on Windows, whose group names contain backslashes, is
    rewritten into nested groups before Keras loads it (Keras cannot load the file as it is; the
    manifest records Keras's error).

Keys of expected/<folder>.npz:
  input/<name>               the input fed to Keras (float16 only where it is large: see manifest)
  output, output_<i>         model(x, training=False)
  layer/<name>[/<i>]         each top-level layer's output (where it fits the size budget)
  rnn/<L>/sequence, /h, /c   each recurrent layer run by Keras with return_sequences and
                             return_state (a clone with the layer's weights, fed the layer's own
                             input, mask and initial state; checked against the layer's output);
                             Bidirectional also rnn/<L>/forward/..., rnn/<L>/backward/...
  weights/<L>/<k>            get_weights() of each recurrent layer, in Keras's order
  wdigest/<L>/<k>/colsum     for weights too large to store: column sums (float64) and the
  wdigest/<L>/<k>/row0       first row of the (2-D) array: enough to check how it is split
  recorded/...               dl4j's Keras 1.2.2 inputs_and_outputs.h5: input, output
                             (predictions), activations/<layer>; and keras_output: what tf_keras
                             computes on the recorded input
The run is deterministic; an .npz whose content is unchanged is not rewritten.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import argparse  # noqa: E402
import copy  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_ZOO = ROOT.parent / "shared" / "zoo2"
EXPECTED = HERE / "expected"
MANIFEST = HERE / "manifest.json"

SKIP = {}
RECURRENT = ("LSTM", "GRU", "SimpleRNN", "CuDNNLSTM", "CuDNNGRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
TIMESTEPS = 7  # for variable time dimensions
BATCH = 2
BIG_SAMPLE = 10_000  # elements per sample above which the batch is 1
BIG_INPUT = 100_000  # elements above which the input is stored as float16 (its values are exactly those)
BUDGET = 1_000_000  # bytes of arrays per .npz
SELF_CHECK = 1e-5


def log(*args):
    print(*args, flush=True)


def seed_of(name):
    return zlib.crc32(name.encode("utf8")) & 0x7FFFFFFF


def to_np(x):
    if isinstance(x, (list, tuple)):
        return [to_np(v) for v in x]
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def max_diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape {a.shape} != {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def check_close(a, b, what, atol=SELF_CHECK):
    d = max_diff(a, b)
    if not d <= atol:
        raise AssertionError(f"{what}: max abs diff {d:g} > {atol:g}")


# --------------------------------------------------------------------------------------------
# the file: which one, what version, which loader


def model_file(folder: Path):
    items = sorted(p for p in folder.iterdir() if "_inputs_and_outputs" not in p.name)
    if len(items) != 1:
        raise RuntimeError(f"{folder}: expected one model file, found {[p.name for p in items]}")
    return items[0]


def _text(v):
    if isinstance(v, bytes):
        return v.decode("utf8")
    return None if v is None else str(v)


def file_facts(path: Path) -> dict:
    """format, saving Keras version, model_config (JSON or None)."""
    if path.is_dir():
        if (path / "keras_metadata.pb").exists():  # a tf.keras SavedModel: the version is in the root's metadata
            from tf_keras.protobuf import saved_metadata_pb2

            meta = saved_metadata_pb2.SavedMetadata.FromString((path / "keras_metadata.pb").read_bytes())
            root = json.loads(next(n.metadata for n in meta.nodes if n.node_path == "root"))
            return {"format": "savedmodel", "keras_version": root.get("keras_version"), "config": root.get("model_config")}
        return {"format": "directory", "keras_version": None, "config": None}
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK"):
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("metadata.json"))
            config = json.loads(z.read("config.json"))
        return {"format": "keras-zip", "keras_version": meta.get("keras_version"), "config": config}
    with h5py.File(path, "r") as f:
        version = _text(f.attrs.get("keras_version"))
        if "model_config" in f.attrs:
            if version is None and "model_weights" in f:
                version = _text(f["model_weights"].attrs.get("keras_version"))
            return {"format": "hdf5-model", "keras_version": version, "config": json.loads(_text(f.attrs["model_config"]))}
        if "layer_names" in f.attrs:
            return {"format": "hdf5-weights", "keras_version": version, "config": None}
        return {"format": "keras-weights", "keras_version": version, "config": None}


def loader_of(facts) -> str:
    v = facts["keras_version"]
    if facts["format"] in ("keras-zip", "keras-weights") or (v and v.startswith("3")):
        return "keras"
    return "tf_keras"


# --------------------------------------------------------------------------------------------
# config patches (applied to a temporary copy; never to the zoo)

K1_RENAME = {
    "output_dim": "units",
    "inner_activation": "recurrent_activation",
    "dropout_W": "dropout",
    "dropout_U": "recurrent_dropout",
    "bias": "use_bias",
}
K1_DROP = {
    "init", "inner_init", "forget_bias_init", "W_regularizer", "U_regularizer", "b_regularizer",
    "W_constraint", "U_constraint", "b_constraint", "consume_less", "input_dtype", "activity_regularizer",
}  # fmt: skip


def k1_layer(entry):
    cls = entry["class_name"]
    cfg = dict(entry["config"])
    out = {}
    for key, value in cfg.items():
        if key in K1_DROP:
            continue
        if cls == "Embedding" and key in ("output_dim", "dropout"):
            if key == "output_dim":
                out[key] = value
            continue
        if cls in RECURRENT + ("Dense",) and key in ("input_dim", "input_length"):
            continue
        out[K1_RENAME.get(key, key)] = value
    if cls == "Embedding":
        out["dtype"] = "float32"
    if cls in ("Bidirectional", "TimeDistributed"):
        out["layer"] = k1_layer(cfg["layer"])
    return {"class_name": cls, "config": out}


def patch_config(config, version, cls_path=()):
    """The config tf_keras can read, and the list of patches applied."""
    patches = []
    config = copy.deepcopy(config)
    if version and version.startswith("1"):
        layers = config["config"] if isinstance(config.get("config"), list) else config["config"]["layers"]
        config = {"class_name": config["class_name"], "config": {"name": "sequential", "layers": [k1_layer(e) for e in layers]}}
        patches.append("Keras 1 argument names renamed to Keras 2 (output_dim->units, inner_activation->recurrent_activation, dropout_W/U->dropout/recurrent_dropout, bias->use_bias; initialisers and regularisers dropped; input_dtype dropped, Embedding dtype float32)")

    def visit(entry):
        cls = entry.get("class_name")
        cfg = entry.get("config")
        if not isinstance(cfg, dict):
            return
        if cls == "Embedding" and str(cfg.get("dtype", "")).startswith("int"):
            patches.append(f"Embedding '{cfg.get('name')}': dtype {cfg['dtype']} -> float32 (Keras 2.0.x wrote its input's dtype there)")
            cfg["dtype"] = "float32"
        if cls == "GRU" and "reset_after" not in cfg:
            patches.append(f"GRU '{cfg.get('name')}': reset_after: false written (a Keras 2.0 GRU config has none; that GRU computed reset_after=False)")
            cfg["reset_after"] = False
        for key in ("layer", "backward_layer"):
            if isinstance(cfg.get(key), dict):
                visit(cfg[key])
        layers = cfg.get("layers")
        if isinstance(layers, list):
            for e in layers:
                visit(e)

    if isinstance(config.get("config"), list):
        for e in config["config"]:
            visit(e)
    else:
        visit(config)
    return config, patches


def declared_input_dtypes(config, version):
    """The dtype each input had in the saving Keras (an Embedding's int32 input in Keras 1/2.0)."""
    if config is None:
        return {}
    body = config.get("config")
    layers = body if isinstance(body, list) else body.get("layers", [])
    out = {}
    if layers and layers[0].get("class_name") != "InputLayer":
        first = layers[0].get("config", {})
        dt = first.get("input_dtype") or first.get("dtype")
        out[None] = dt if isinstance(dt, str) else None
    for e in layers:
        if e.get("class_name") == "InputLayer":
            dt = e["config"].get("dtype")
            out[e["config"].get("name")] = dt if isinstance(dt, str) else None
    return out


# --------------------------------------------------------------------------------------------
# loading


def windows_to_nested(src: Path, dst: Path):
    """Copy a .weights.h5 whose top-level names hold backslash paths into nested groups."""
    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        for k, v in a.attrs.items():
            b.attrs[k] = v
        for name in sorted(a.keys()):
            target = name.replace("\\", "/")
            parent, _, leaf = target.rpartition("/")
            group = b.require_group(parent) if parent else b
            if leaf in group:  # created as the parent of an earlier copy: merge the members
                for member in a[name]:
                    a.copy(a[name][member], group[leaf], name=member)
            else:
                a.copy(a[name], group, name=leaf)


def load(folder: str, path: Path, facts, loader, tmp: Path):
    """(model, patches, note) -- model is a Keras model (full) or a dict of recurrent weights."""
    patches = []
    K = keras if loader == "keras" else tf_keras
    fmt = facts["format"]
    if fmt in ("hdf5-model",) and loader == "tf_keras":
        config, patches = patch_config(facts["config"], facts["keras_version"])
        target = tmp / (path.stem + ".h5")
        shutil.copyfile(path, target)
        os.chmod(target, 0o644)
        if path.suffix not in (".h5", ".hdf5"):
            patches.append(f"loaded through a temporary .h5 name (the file is HDF5, named {path.suffix})")
        if config != facts["config"]:
            with h5py.File(target, "r+") as f:
                f.attrs["model_config"] = json.dumps(config).encode("utf8")
        model = K.models.load_model(str(target), compile=False)
        return model, patches
    if fmt in ("hdf5-model", "keras-zip", "savedmodel"):
        return K.models.load_model(str(path), compile=False), patches
    raise RuntimeError("weights-only files are loaded by load_weights_only")


def _h5_shapes(path, group):
    with h5py.File(path, "r") as f:
        g = f[group]
        names = [_text(n) for n in g.attrs["weight_names"]]
        return [g[n].shape for n in names]


def load_weights_only(folder: str, path: Path, facts, tmp: Path):
    """Recurrent weights as Keras's own loading code reads them: a model of the layers the file
    holds is built and `load_weights` fills it (Keras converts Keras 1 / CuDNN layouts itself).
    Returns ({layer name as the file names it: [arrays]}, patches, notes, unpatched_error)."""
    patches, notes, error = [], [], None
    if facts["format"] == "hdf5-weights":
        K = tf_keras
        with h5py.File(path, "r") as f:
            layer_names = [_text(n) for n in f.attrs["layer_names"]]
            groups = {n: [_text(w) for w in f[n].attrs["weight_names"]] for n in layer_names}
            shapes = {n: [f[n][w].shape for w in groups[n]] for n in layer_names}
        layers, rnn = [], []
        for n in layer_names:
            s = shapes[n]
            if len(s) == 12:  # Keras 1 LSTM: W_i U_i b_i W_c ...
                units = s[1][0]
                layers.append(("LSTM", n, s[0][0], units))
            elif len(s) == 3 and len(s[1]) == 2 and s[1][1] % s[1][0] == 0 and s[1][1] // s[1][0] in (1, 3, 4):
                k = s[1][1] // s[1][0]
                cls = {4: "LSTM", 3: "GRU", 1: "SimpleRNN"}[k]
                layers.append((cls, n, s[0][0], s[1][0]))
            else:
                continue
            rnn.append(n)
        out = {}
        for cls, n, input_dim, units in layers:
            extra = {"recurrent_activation": "sigmoid"} if cls in ("LSTM", "GRU") else {}
            if cls == "GRU":
                extra["reset_after"] = len(shapes[n][2]) == 2
            layer = getattr(K.layers, cls)(units, name=n, **extra)
            m = K.Sequential([K.Input((None, input_dim)), layer])
            before = [np.asarray(w) for w in layer.get_weights()]
            m.load_weights(str(path), by_name=True)
            out[n] = [np.asarray(w) for w in layer.get_weights()]
            # by_name skips a layer silently when nothing matched: the values must have changed,
            # and where the file keeps Keras 2's own layout they must be the file's arrays
            if any(np.array_equal(a, b) for a, b in zip(before, out[n])):
                raise RuntimeError(f"{n}: load_weights left the layer unset")
            if len(shapes[n]) == len(out[n]) and all(s == w.shape for s, w in zip(shapes[n], out[n])):
                with h5py.File(path, "r") as f:
                    for w_name, w in zip(groups[n], out[n]):
                        if not np.array_equal(np.asarray(f[n][w_name]), w):
                            raise AssertionError(f"{n}/{w_name}: tf_keras does not hold the file's array")
        notes.append("weights-only: each recurrent layer built alone (its class and sizes from the file's shapes) and filled by tf_keras's load_weights(by_name=True), which converts Keras 1 per-gate and CuDNN layouts")
        return out, patches, notes, error
    # Keras 3 .weights.h5
    K = keras
    with h5py.File(path, "r") as f:
        top = sorted(f.keys())
    windows = any("\\" in k for k in top)
    src = path
    if windows:
        nested = tmp / "nested.weights.h5"
        windows_to_nested(path, nested)
        src = nested
    with h5py.File(src, "r") as f:
        lay = f["layers"]
        names = list(lay.keys())
        spec = []
        for n in names:
            g = lay[n]
            if "cell" in g:
                vs = g["cell"]["vars"]
                s = [vs[str(i)].shape for i in range(len(vs))]
                spec.append(("rnn", n, s))
            elif "vars" in g and len(g["vars"]) == 2 and len(g["vars"]["0"].shape) == 2:
                spec.append(("dense", n, [g["vars"]["0"].shape]))
            elif n.startswith("dropout"):
                spec.append(("dropout", n, []))
            else:
                raise RuntimeError(f"{path}: layer group {n} not understood")

    # Keras 3 names a layer's group by its class and position: build the layers in the order
    # their names number them (lstm, lstm_1, ...; dense; dropout, dropout_1) and in the order the
    # recurrent inputs chain (input_dim of the next = units of the previous).
    def order_key(item):
        kind, n, _ = item
        base, _, num = n.rpartition("_")
        return (n if not num.isdigit() else base, int(num) if num.isdigit() else -1)

    rnns = sorted([s for s in spec if s[0] == "rnn"], key=order_key)
    dense = [s for s in spec if s[0] == "dense"]
    drops = sorted([s for s in spec if s[0] == "dropout"], key=order_key)
    seq = [K.Input((None, rnns[0][2][0][0]))]
    built = []
    for i, (_, n, s) in enumerate(rnns):
        units = s[1][0]
        k = s[1][1] // units
        cls = {4: "LSTM", 3: "GRU", 1: "SimpleRNN"}[k]
        layer = getattr(K.layers, cls)(units, return_sequences=i < len(rnns) - 1)
        seq.append(layer)
        built.append((n, layer))
        if i < len(drops):
            seq.append(K.layers.Dropout(0.2))
    for _, n, s in dense:
        seq.append(K.layers.Dense(s[0][1]))
    model = K.Sequential(seq)
    if windows:
        try:
            model.load_weights(str(path))
            error = None
        except Exception as exc:  # what Keras on Linux does with the file as it is
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            error = f"{type(exc).__name__}: {' '.join(lines[:2])[:400]}"
        else:
            # loaded without an error: then it must have loaded the right numbers, or say it did not
            with h5py.File(path, "r") as f:
                want = np.asarray(f["layers\\" + built[0][0] + "\\cell"]["vars"]["0"])
            got = built[0][1].get_weights()[0]
            if not np.array_equal(want, got):
                error = "load_weights raised nothing but left the weights unset (initialiser values)"
        patches.append("group names with backslashes ('layers\\\\lstm\\\\cell') rewritten into nested groups (layers/lstm/cell) in a temporary copy")
    model.load_weights(str(src))
    out = {n: [np.asarray(w) for w in layer.get_weights()] for n, layer in built}
    # Keras's values must be the file's arrays
    with h5py.File(src, "r") as f:
        for n, ws in out.items():
            vs = f["layers"][n]["cell"]["vars"]
            for i, w in enumerate(ws):
                if not np.array_equal(np.asarray(vs[str(i)]), w):
                    raise AssertionError(f"{n}/{i}: keras load_weights does not hold the file's array")
    notes.append("weights-only: a Sequential of the layers the file's groups name (shapes from the file) filled by keras load_weights")
    return out, patches, notes, error


# --------------------------------------------------------------------------------------------
# inputs


def input_layers(K, model):
    out = []
    for t in model.inputs:
        if K is keras:
            out.append(t._keras_history[0].name)
        else:
            out.append(t._keras_history.layer.name)
    return out


def embedding_size(model, K, input_name):
    """input_dim of an Embedding fed by this input (directly), or None."""
    for layer in model.layers:
        if type(layer).__name__ != "Embedding":
            continue
        try:
            src = [t._keras_history[0].name if K is keras else t._keras_history.layer.name for t in as_list(layer.input)]
        except Exception:
            continue
        if input_name in src:
            return layer.input_dim
    return None


def masking_value(model):
    for layer in model.layers:
        if type(layer).__name__ == "Masking":
            return float(layer.mask_value)
    return None


def make_inputs(folder, model, K, declared):
    rng = np.random.default_rng(seed_of(folder))
    names = input_layers(K, model)
    feed, store_dtypes, notes = [], [], []
    shapes = []
    for t in model.inputs:
        dims = [d if d is not None else TIMESTEPS for d in tuple(t.shape)[1:]]
        shapes.append(dims)
    per_sample = max(int(np.prod(s)) for s in shapes)
    batch = 1 if per_sample > BIG_SAMPLE else BATCH
    mask_value = masking_value(model)
    for name, t, dims in zip(names, model.inputs, shapes):
        shape = (batch, *dims)
        vocab = embedding_size(model, K, name)
        kdtype = str(t.dtype.name if hasattr(t.dtype, "name") else t.dtype)
        want = declared.get(name, declared.get(None)) if declared else None
        if vocab is not None:
            x = rng.integers(0, vocab, size=shape)
            # some padding (id 0) for the mask_zero case and for realism
            x[0, -2:] = 0
            dt = "int32" if (want or kdtype).startswith("int") else "float32"
            x = x.astype(dt)
            notes.append(f"{name}: token ids in [0, {vocab}) ({dt}), the last two of sample 0 are 0")
        else:
            x = rng.standard_normal(shape).astype(np.float32)
            if mask_value is not None and len(shape) >= 3:
                x[0, -2:] = mask_value
                if shape[1] > 3:
                    x[-1, 1] = mask_value
                notes.append(f"{name}: standard normal; steps set to the Masking value {mask_value}: sample 0's last two, sample {shape[0] - 1}'s step 1")
            else:
                notes.append(f"{name}: standard normal float32")
            if x.size > BIG_INPUT:
                x = x.astype(np.float16).astype(np.float32)  # exactly representable in float16
                notes.append(f"{name}: values rounded to float16 and stored as float16 (feed as float32; Keras got exactly these values)")
        feed.append(x)
    return names, feed, notes


def traced(fn):
    """fn() run as one tf.function: an eager RNN loops step by step in Python, and a
    Bidirectional GRU over 1000 steps then takes minutes."""
    return tf.function(fn, autograph=False)()


def call(model, feed):
    """model(x, training=False), traced."""
    x = [tf.constant(a) for a in feed]
    return traced(lambda: model(x if len(x) > 1 else x[0], training=False))


def call_with_masks(model, feed):
    """model(x, training=False) and the Keras mask carried by each output (or None)."""
    x = [tf.constant(a) for a in feed]

    def fn():
        outs = as_list(model(x if len(x) > 1 else x[0], training=False))
        return outs, [_mask_of(o) for o in outs]

    outs, masks = traced(fn)
    return [to_np(o) for o in outs], [None if m is None else to_np(m) for m in masks]


# --------------------------------------------------------------------------------------------
# probing recurrent layers


def _mask_of(t):
    m = getattr(t, "_keras_mask", None)
    if m is None:
        try:
            from keras.src.backend import get_keras_mask

            m = get_keras_mask(t)
        except Exception:
            m = None
    return m


def layer_call_tensors(K, layer):
    """(sequence tensor, [initial state tensors]) the layer was called with in the graph."""
    if K is keras:
        node = layer._inbound_nodes[0]
        args = node.arguments
        x = args.args[0]
        states = args.kwargs.get("initial_state") or []
        return x, list(as_list(states))
    lin = layer.input
    if isinstance(lin, (list, tuple)):
        return lin[0], list(lin[1:])
    return lin, []


def _clone(layer, merge_mode="keep"):
    cfg = copy.deepcopy(layer.get_config())
    if type(layer).__name__ == "Bidirectional":
        for key in ("layer", "backward_layer"):
            if cfg.get(key):
                cfg[key]["config"]["return_sequences"] = True
                cfg[key]["config"]["return_state"] = True
        if merge_mode != "keep":
            cfg["merge_mode"] = merge_mode
    else:
        cfg["return_sequences"] = True
        cfg["return_state"] = True
    clone = type(layer).from_config(cfg)
    zo = getattr(layer, "zero_output_for_mask", None)
    if zo is not None and type(layer).__name__ != "Bidirectional":
        clone.zero_output_for_mask = zo
    return clone


def _run_clone(clone, x, weights, kw):
    clone(x[:, :1])  # builds the weights (eagerly, on one step)
    clone.set_weights(weights)
    return [np.asarray(v) for v in to_np(traced(lambda: clone(x, **kw)))]


def _merge(mode, a, b):
    return {"concat": lambda: np.concatenate([a, b], -1), "sum": lambda: a + b, "mul": lambda: a * b, "ave": lambda: (a + b) / 2}[mode]()


def probe_recurrent(K, model, layer, feed, out_of_layer):
    """rnn/<L>/... keys: the layer's sequence and states as Keras computes them."""
    name = layer.name
    x_t, state_ts = layer_call_tensors(K, layer)
    sub = K.Model(model.inputs, [x_t] + state_ts)
    vals, masks = call_with_masks(sub, feed)
    x, mask = vals[0], masks[0]
    init = [tf.constant(v) for v in vals[1:]]
    kw = {}
    if mask is not None:
        kw["mask"] = tf.constant(mask)
    if init:
        kw["initial_state"] = init
    xt = tf.constant(x)
    store = {}
    cls = type(layer).__name__
    if cls == "Bidirectional":
        inner = layer.forward_layer
        n = 2 if "LSTM" in type(inner).__name__ else 1
        w = layer.get_weights()
        ob = _run_clone(_clone(layer, None), xt, w, kw)
        fseq, bseq, st = ob[0], ob[1], ob[2:]
        fst, bst = st[:n], st[n:]
        store[f"rnn/{name}/forward/sequence"] = fseq
        store[f"rnn/{name}/backward/sequence"] = bseq
        for direction, s in (("forward", fst), ("backward", bst)):
            store[f"rnn/{name}/{direction}/h"] = s[0]
            if n == 2:
                store[f"rnn/{name}/{direction}/c"] = s[1]
        store[f"rnn/{name}/h"] = np.concatenate([fst[0], bst[0]], -1)
        if n == 2:
            store[f"rnn/{name}/c"] = np.concatenate([fst[1], bst[1]], -1)
        if layer.merge_mode is not None:
            oa = _run_clone(_clone(layer), xt, w, kw)
            store[f"rnn/{name}/sequence"] = oa[0]
            for i, (p, q) in enumerate(zip(oa[1:], st)):
                check_close(p, q, f"{name} merged clone state {i}")
        if layer.return_sequences:
            got = [fseq, bseq] if layer.merge_mode is None else [store[f"rnn/{name}/sequence"]]
        else:
            got = [fst[0], bst[0]] if layer.merge_mode is None else [_merge(layer.merge_mode, fst[0], bst[0])]
            if mask is not None:
                got = None  # the last unmasked output; the self-check below uses the layer's own
        if got is not None:
            if layer.return_state:
                got = got + list(st)
            for i, (g, o) in enumerate(zip(got, out_of_layer)):
                check_close(g, o, f"{name} self-check {i}")
        return store
    out = _run_clone(_clone(layer), xt, layer.get_weights(), kw)
    seq, states = out[0], out[1:]
    store[f"rnn/{name}/sequence"] = seq
    store[f"rnn/{name}/h"] = states[0]
    if len(states) > 1:
        store[f"rnn/{name}/c"] = states[1]
    got = [seq if layer.return_sequences else states[0]]
    if layer.return_state:
        got += list(states)
    if len(got) != len(out_of_layer):
        raise AssertionError(f"{name}: {len(got)} outputs vs {len(out_of_layer)}")
    for i, (g, o) in enumerate(zip(got, out_of_layer)):
        check_close(g, o, f"{name} self-check {i}")
    return store


def recurrent_layers(model):
    out = []
    for layer in model.layers:
        cls = type(layer).__name__
        if cls in RECURRENT or cls == "Bidirectional":
            out.append(layer)
    return out


def describe_layer(layer):
    cls = type(layer).__name__
    d = {"name": layer.name, "class_name": cls}
    inner = getattr(layer, "forward_layer", None)
    if cls == "Bidirectional" and inner is not None:
        d["inner"] = type(inner).__name__
        d["merge_mode"] = layer.merge_mode
    for key in ("return_sequences", "return_state", "go_backwards"):
        if hasattr(layer, key):
            d[key] = bool(getattr(layer, key))
    cell = getattr(layer, "cell", None) or getattr(inner, "cell", None)
    if cell is not None:
        for key in ("activation", "recurrent_activation"):
            f = getattr(cell, key, None)
            if f is not None:
                d[key] = getattr(f, "__name__", str(f))
        if hasattr(cell, "reset_after"):
            d["reset_after"] = bool(cell.reset_after)
    return d


# --------------------------------------------------------------------------------------------
# storing


class Store:
    """Arrays in priority order under a byte budget; what does not fit is named in `left_out`."""

    def __init__(self, budget=BUDGET):
        self.arrays = {}
        self.left_out = []
        self.budget = budget
        self.used = 0

    def put(self, key, value, required=False):
        value = np.asarray(value)
        if not required and self.used + value.nbytes > self.budget:
            self.left_out.append(key)
            return False
        self.arrays[key] = value
        self.used += value.nbytes
        return True


def write_npz(path: Path, arrays: dict) -> bool:
    """A deterministic .npz (fixed zip timestamps, sorted keys); False if unchanged."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            z.writestr(info, data.getvalue())
    blob = buf.getvalue()
    if path.exists() and path.read_bytes() == blob:
        return False
    path.write_bytes(blob)
    return True


def put_weights(store: Store, layer_name: str, weights: list, entry: dict):
    """weights/<L>/<k> in full where they fit; otherwise a digest (column sums and first row)."""
    digested = []
    for k, w in enumerate(weights):
        w = np.asarray(w)
        if store.put(f"weights/{layer_name}/{k}", w):
            continue
        store.left_out.remove(f"weights/{layer_name}/{k}")
        flat = w.reshape(-1, w.shape[-1])
        store.put(f"wdigest/{layer_name}/{k}/colsum", flat.astype(np.float64).sum(axis=0), required=True)
        store.put(f"wdigest/{layer_name}/{k}/row0", flat[0], required=True)
        digested.append(f"{layer_name}/{k} {tuple(w.shape)}")
    if digested:
        entry.setdefault("weights_digested", []).extend(digested)


# --------------------------------------------------------------------------------------------
# one folder


def recorded_io(folder: Path):
    files = sorted(folder.glob("*_inputs_and_outputs.h5"))
    if not files:
        return None
    with h5py.File(files[0], "r") as f:
        rec = {"file": files[0].name}
        (iname,) = list(f["inputs"].keys())
        (pname,) = list(f["predictions"].keys())
        rec["input"] = np.asarray(f["inputs"][iname])
        rec["output"] = np.asarray(f["predictions"][pname])
        rec["activations"] = {k: np.asarray(v) for k, v in f["activations"].items()}
        rec["names"] = {"input": iname, "prediction": pname}
    return rec


def do_folder(zoo: Path, name: str) -> dict:
    folder = zoo / name
    path = model_file(folder) if not (folder / "saved_model.pb").exists() else folder
    entry = {"folder": name, "file": path.name if path != folder else None}
    if name in SKIP:
        items = sorted(p.name for p in folder.iterdir())
        entry.update({"file": items[0] if len(items) == 1 else None, "loader": None, "keras_version": None, "patches": [], "status": f"skipped: {SKIP[name]}", "inputs": [], "outputs": [], "recurrent_layers": []})
        return entry
    facts = file_facts(path)
    loader = loader_of(facts)
    K = keras if loader == "keras" else tf_keras
    entry.update({"format": facts["format"], "loader": f"{loader} {K.__version__}", "keras_version": facts["keras_version"]})
    store = Store()
    t0 = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="zoo2-"))
    try:
        if facts["format"] in ("hdf5-weights", "keras-weights"):
            weights, patches, notes, error = load_weights_only(name, path, facts, tmp)
            entry.update({"patches": patches, "status": "ok", "inputs": [], "outputs": [], "notes": notes})
            if error:
                entry["keras_unpatched"] = f"keras cannot load the file as it is: {error}"
            entry["recurrent_layers"] = [{"name": n, "class_name": {4: "LSTM", 3: "GRU", 1: "SimpleRNN"}[w[1].shape[1] // w[1].shape[0]]} for n, w in weights.items()]
            for n, ws in weights.items():
                put_weights(store, n, ws, entry)
        else:
            try:
                model, patches = load(name, path, facts, loader, tmp)
            except Exception as exc:
                entry.update({"patches": [], "status": f"keras cannot load: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", "inputs": [], "outputs": [], "recurrent_layers": []})
                return entry
            entry["patches"] = patches
            entry["status"] = "ok"
            declared = declared_input_dtypes(facts["config"], facts["keras_version"])
            names, feed, input_notes = make_inputs(name, model, K, declared)
            entry["inputs"] = [{"name": n, "shape": list(x.shape), "dtype": str(x.dtype)} for n, x in zip(names, feed)]
            entry["input_notes"] = input_notes
            out = as_list(to_np(call(model, feed)))
            for n, x in zip(names, feed):
                stored = x.astype(np.float16) if x.dtype == np.float32 and x.size > BIG_INPUT else x
                store.put(f"input/{n}", stored, required=True)
            keys = ["output"] if len(out) == 1 else [f"output_{i}" for i in range(len(out))]
            for k, o in zip(keys, out):
                store.put(k, o, required=True)
            entry["outputs"] = keys
            # predict agrees with model(x)
            pred = as_list(model.predict(feed if len(feed) > 1 else feed[0], verbose=0))
            for k, a, b in zip(keys, pred, out):
                check_close(a, b, f"predict vs call {k}")
            # every top-level layer's output, one sub-model
            tops, top_names = [], []
            for layer in model.layers:
                if type(layer).__name__ == "InputLayer":
                    continue
                try:
                    o = layer.output
                except Exception:
                    continue
                tops.append(o)
                top_names.append((layer.name, isinstance(o, (list, tuple)), len(as_list(o))))
            layer_values = {}
            if tops:
                flat = [t for o in tops for t in as_list(o)]
                vals = as_list(to_np(call(K.Model(model.inputs, flat), feed)))
                pos = 0
                for lname, multi, n in top_names:
                    layer_values[lname] = vals[pos : pos + n]
                    pos += n
            rnn = recurrent_layers(model)
            entry["recurrent_layers"] = [describe_layer(layer) for layer in rnn]
            probed = {}
            for layer in rnn:
                probed.update(probe_recurrent(K, model, layer, feed, layer_values.get(layer.name, [])))
            # priority: states, weights, sequences, other layer outputs
            for k in sorted(probed):
                if not k.endswith("sequence"):
                    store.put(k, probed[k])
            for layer in rnn:
                put_weights(store, layer.name, layer.get_weights(), entry)
            for k in sorted(probed):
                if k.endswith("sequence"):
                    store.put(k, probed[k])
            for lname, multi, n in top_names:
                for i, v in enumerate(layer_values[lname]):
                    store.put(f"layer/{lname}/{i}" if multi else f"layer/{lname}", v)
            rec = recorded_io(folder)
            if rec is not None:
                x = rec["input"]
                kout = to_np(call(model, [x]))
                store.put("recorded/input", x, required=True)
                store.put("recorded/output", rec["output"], required=True)
                store.put("recorded/keras_output", kout, required=True)
                for lname, v in rec["activations"].items():
                    store.put(f"recorded/activations/{lname}", v, required=True)
                entry["recorded"] = {
                    "file": rec["file"],
                    "samples": int(x.shape[0]),
                    "keras1_vs_tf_keras_max_abs_diff": max_diff(rec["output"], kout),
                    "keras1_prediction_range": [float(rec["output"].min()), float(rec["output"].max())],
                }
                # the recorded activations of the recurrent layer against tf_keras's
                for lname, v in rec["activations"].items():
                    try:
                        lay = model.get_layer(lname)
                        got = to_np(K.Model(model.inputs, lay.output)(x, training=False))
                        entry["recorded"][f"activations/{lname}_vs_tf_keras_max_abs_diff"] = max_diff(v, got)
                    except Exception as exc:  # pragma: no cover
                        entry["recorded"][f"activations/{lname}"] = f"not compared: {exc}"
        if store.left_out:
            entry["left_out_for_size"] = store.left_out
        write_npz(EXPECTED / f"{name}.npz", store.arrays)
        entry["npz_bytes"] = (EXPECTED / f"{name}.npz").stat().st_size
        entry["keys"] = len(store.arrays)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        tf_keras.backend.clear_session()
        keras.backend.clear_session()
    log(f"{name}: {entry['status']} ({len(store.arrays)} keys, {time.time() - t0:.1f}s){' patches: ' + '; '.join(entry['patches']) if entry['patches'] else ''}")
    return entry


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", default=str(DEFAULT_ZOO))
    ap.add_argument("folders", nargs="*")
    args = ap.parse_args()
    zoo = Path(args.zoo)
    EXPECTED.mkdir(parents=True, exist_ok=True)
    all_folders = sorted(p.name for p in zoo.iterdir() if p.is_dir())
    chosen = args.folders or all_folders
    old = {e["folder"]: e for e in json.loads(MANIFEST.read_text())} if MANIFEST.exists() else {}
    for name in chosen:
        tf.keras.utils.set_random_seed(0)
        old[name] = do_folder(zoo, name)
    manifest = [old[n] for n in all_folders if n in old]
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    bad = [e["folder"] for e in manifest if e["status"] != "ok" and not e["status"].startswith("skipped")]
    log(f"{len(manifest)} folders; not loadable by Keras: {bad or 'none'}")


if __name__ == "__main__":
    sys.exit(main())
