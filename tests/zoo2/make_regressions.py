#!/usr/bin/env python
"""Small regression files for four kinds of real-world file lstmctl mishandled (found in zoo2),
each built from a file of the same kind made by real Keras, never from the zoo2 files themselves.

Run from the repository root with TensorFlow (never lstmctl):

    TF_CPP_MIN_LOG_LEVEL=3 python tests/zoo2/make_regressions.py

Writes tests/zoo2/regressions/<name> and <name>.expected.npz beside it (same keys as
tests/zoo2/expected: input/<name>, output, rnn/<L>/..., weights/<L>/<k>):

  k20_embedding_int32_gru.h5   tf_keras Sequential Embedding -> GRU(reset_after=False,
                               hard_sigmoid) -> Dense, saved, then its model_config rewritten as
                               Keras 2.0.x wrote it (as in zoo2's cse5393_gru, functure_dga_lstm):
                               a list of layers without an InputLayer, the Embedding carrying
                               batch_input_shape and "dtype": "int32", the GRU no reset_after;
                               keras_version 2.0.4. Expected = the unedited tf_keras model's values
                               (and tf_keras reads the edited file, with the zoo2 README's two
                               patches, to the same numbers).
  k21_embedding_float_input.h5 tf_keras Embedding -> LSTM -> Dense whose InputLayer is float32
                               (Keras 2.1's default; zoo2's kevinlin_rnn_model). Expected for token
                               ids given as float32, and the same values for int32 ids (Keras casts).
  k1_lstm_save_weights.h5      Keras 1.2.2 save_weights layout (zoo2's dl4j_simple_lstm_k1_weights):
                               root layer_names, no keras_version/backend attributes, the LSTM as 12
                               per-gate arrays in Keras 1 order (W_i U_i b_i W_c U_c b_c W_f U_f b_f
                               W_o U_o b_o) named lstm_1_W_i:0 ..., and a Dense. Written from a
                               tf_keras LSTM's weights; tf_keras's own load_weights reads it back
                               to them. Expected: the weights, and the LSTM run on a direct input
                               by tf_keras with recurrent_activation sigmoid (rnn_sigmoid/...) and
                               hard_sigmoid (rnn_hard_sigmoid/...): a weights-only file does not say
                               which (Keras 1's default was hard_sigmoid).
  k3_windows.weights.h5        Keras 3 .weights.h5 laid out as Keras 3 wrote it on Windows (zoo2's
                               kshruti_weights_windows): every entry a root-level group whose name
                               joins the path with backslashes ('layers\\lstm\\cell') holding 'vars',
                               no 'layers' group, no attributes, and a 'metrics\\mean' entry. Made
                               from a keras 3.15.1 save_weights on Linux of LSTM -> Dropout -> LSTM
                               -> Dropout -> Dense (trained one step, so the optimizer is saved).
                               Expected: the Keras weights. Keras 3 on Linux cannot load it (its
                               error is printed and recorded in the .npz as keras_error).
The run is deterministic (seeded, fixed zip timestamps); unchanged files are not rewritten.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import copy  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")
logging.getLogger("tensorflow").setLevel(logging.ERROR)

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
import tf_keras  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import check_close, max_diff, probe_recurrent, to_np, write_npz  # noqa: E402

OUT = Path(__file__).resolve().parent / "regressions"


def log(*a):
    print(*a, flush=True)


def randomise(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        new = [(rng.standard_normal(w.shape) * 0.5).astype(w.dtype) for w in ws]
        if type(layer).__name__ == "LSTM":
            u = layer.units
            new[2][u : 2 * u] += 1.0
        layer.set_weights(new)


def finish_h5(tmp: Path, dst: Path):
    """Copy a file HDF5 wrote into place only when its arrays or attributes changed (HDF5 files
    carry no timestamps unless asked; h5py's default does not track times)."""
    data = tmp.read_bytes()
    if not dst.exists() or dst.read_bytes() != data:
        dst.write_bytes(data)


def h5_new(path: Path):
    return h5py.File(path, "w", track_order=False, libver="earliest")


def store_model(K, model, feed, names):
    store = {}
    for n, x in zip(names, feed):
        store[f"input/{n}"] = x
    store["output"] = to_np(model(feed[0], training=False))
    for layer in model.layers:
        if type(layer).__name__ in ("LSTM", "GRU", "SimpleRNN"):
            own = [to_np(K.Model(model.inputs, layer.output)(feed[0], training=False))]
            store.update(probe_recurrent(K, model, layer, feed, own))
            for k, w in enumerate(layer.get_weights()):
                store[f"weights/{layer.name}/{k}"] = np.asarray(w)
    return store


# --------------------------------------------------------------------------------------------


def make_k20(tmpdir: Path):
    name = "k20_embedding_int32_gru.h5"
    tf_keras.utils.set_random_seed(20)
    K = tf_keras
    model = K.Sequential(
        [
            K.Input((9,), dtype="int32", name="embedding_1_input"),
            K.layers.Embedding(30, 4, name="embedding_1"),
            K.layers.GRU(5, reset_after=False, recurrent_activation="hard_sigmoid", name="gru_1"),
            K.layers.Dense(2, activation="softmax", name="dense_1"),
        ]
    )
    randomise(model, 20)
    rng = np.random.default_rng(20)
    x = rng.integers(0, 30, size=(3, 9)).astype(np.int32)
    x[0, -3:] = 0
    store = store_model(K, model, [x], ["embedding_1_input"])
    raw = tmpdir / "k20_raw.h5"
    model.save(str(raw))
    with h5py.File(raw, "r") as f:
        config = json.loads(f.attrs["model_config"])
    layers = [copy.deepcopy(e) for e in config["config"]["layers"] if e["class_name"] != "InputLayer"]
    for e in layers:
        e.pop("module", None)
        e.pop("registered_name", None)
        e.pop("build_config", None)
        c = e["config"]
        if e["class_name"] == "Embedding":
            c["batch_input_shape"] = [None, 9]
            c["input_length"] = 9
            c["dtype"] = "int32"
        if e["class_name"] == "GRU":
            assert c.pop("reset_after") is False
            c.pop("time_major", None)
            c.pop("zero_output_for_mask", None)
    k20 = {"class_name": "Sequential", "config": layers}
    out = tmpdir / name
    shutil.copyfile(raw, out)
    with h5py.File(out, "r+") as f:
        f.attrs["model_config"] = json.dumps(k20).encode("utf8")
        f.attrs["keras_version"] = b"2.0.4"
        f.attrs["backend"] = b"tensorflow"
        f["model_weights"].attrs["keras_version"] = b"2.0.4"
        f["model_weights"].attrs["backend"] = b"tensorflow"
        if "training_config" in f.attrs:
            del f.attrs["training_config"]
    # tf_keras, with the zoo2 README's patches (Embedding dtype float32, reset_after false),
    # reads the edited file to the same numbers
    patched = tmpdir / "k20_patched.h5"
    shutil.copyfile(out, patched)
    cfg = copy.deepcopy(k20)
    for e in cfg["config"]:
        if e["class_name"] == "Embedding":
            e["config"]["dtype"] = "float32"
        if e["class_name"] == "GRU":
            e["config"]["reset_after"] = False
    with h5py.File(patched, "r+") as f:
        f.attrs["model_config"] = json.dumps(cfg).encode("utf8")
    back = tf_keras.models.load_model(str(patched), compile=False)
    check_close(to_np(back(x.astype(np.float32), training=False)), store["output"], "k20 reread", atol=1e-6)
    # and without the patches tf_keras cannot read it (as the zoo2 files)
    try:
        tf_keras.models.load_model(str(out), compile=False)
        unpatched = "loaded"
    except Exception as exc:
        unpatched = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    log(f"{name}: tf_keras on the unpatched file: {unpatched}")
    finish_h5(out, OUT / name)
    write_npz(OUT / f"{name}.expected.npz", store)
    log(f"{name}: {len(store)} keys")


def make_k21(tmpdir: Path):
    name = "k21_embedding_float_input.h5"
    tf_keras.utils.set_random_seed(21)
    K = tf_keras
    model = K.Sequential(
        [
            K.Input((8,), dtype="float32", name="embedding_1_input"),
            K.layers.Embedding(20, 4, name="embedding_1"),
            K.layers.LSTM(5, name="lstm_1"),
            K.layers.Dense(2, name="dense_1"),
        ]
    )
    randomise(model, 21)
    rng = np.random.default_rng(21)
    ids = rng.integers(0, 20, size=(3, 8))
    ids[1, :2] = 0
    x = ids.astype(np.float32)
    store = store_model(K, model, [x], ["embedding_1_input"])
    store["input_int32/embedding_1_input"] = ids.astype(np.int32)
    check_close(to_np(model(ids.astype(np.int32), training=False)), store["output"], "k21 int ids", atol=0)
    out = tmpdir / name
    model.save(str(out))
    with h5py.File(out, "r+") as f:
        if "training_config" in f.attrs:
            del f.attrs["training_config"]
        cfg = json.loads(f.attrs["model_config"])
    assert cfg["config"]["layers"][0]["config"]["dtype"] == "float32"
    back = tf_keras.models.load_model(str(out), compile=False)
    check_close(to_np(back(x, training=False)), store["output"], "k21 reread", atol=0)
    finish_h5(out, OUT / name)
    write_npz(OUT / f"{name}.expected.npz", store)
    log(f"{name}: {len(store)} keys")


def make_k1(tmpdir: Path):
    name = "k1_lstm_save_weights.h5"
    tf_keras.utils.set_random_seed(1)
    K = tf_keras
    lstm = K.layers.LSTM(6, name="lstm_1")
    dense = K.layers.Dense(1, name="dense_1")
    model = K.Sequential([K.Input((None, 3)), lstm, dense])
    randomise(model, 1)
    kernel, rec, bias = lstm.get_weights()
    u = lstm.units
    gate = {"i": 0, "f": 1, "c": 2, "o": 3}  # Keras 2 order
    arrays, names = [], []
    for g in ("i", "c", "f", "o"):  # Keras 1 order
        s = slice(gate[g] * u, (gate[g] + 1) * u)
        arrays += [kernel[:, s], rec[:, s], bias[s]]
        names += [f"lstm_1_W_{g}:0", f"lstm_1_U_{g}:0", f"lstm_1_b_{g}:0"]
    out = tmpdir / name
    with h5_new(out) as f:
        f.attrs["layer_names"] = np.array([b"lstm_1", b"dense_1"])
        g = f.create_group("lstm_1")
        g.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
        for n, a in zip(names, arrays):
            g.create_dataset(n, data=a)
        g = f.create_group("dense_1")
        dn = ["dense_1_W:0", "dense_1_b:0"]
        g.attrs["weight_names"] = np.array([n.encode("utf8") for n in dn])
        for n, a in zip(dn, dense.get_weights()):
            g.create_dataset(n, data=a)
    # tf_keras's own loading code reads it back to the LSTM's weights
    fresh_lstm = K.layers.LSTM(6, name="lstm_1")
    fresh = K.Sequential([K.Input((None, 3)), fresh_lstm, K.layers.Dense(1, name="dense_1")])
    fresh.load_weights(str(out))
    for a, b in zip(fresh_lstm.get_weights(), [kernel, rec, bias]):
        check_close(a, b, "k1 reread", atol=0)
    store = {f"weights/lstm_1/{k}": w for k, w in enumerate([kernel, rec, bias])}
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    store["input/direct"] = x
    for act in ("sigmoid", "hard_sigmoid"):
        cell = K.layers.LSTM(6, recurrent_activation=act, return_sequences=True, return_state=True)
        cell(x)
        cell.set_weights([kernel, rec, bias])
        seq, h, c = to_np(cell(x))
        store[f"rnn_{act}/lstm_1/sequence"] = seq
        store[f"rnn_{act}/lstm_1/h"] = h
        store[f"rnn_{act}/lstm_1/c"] = c
    finish_h5(out, OUT / name)
    write_npz(OUT / f"{name}.expected.npz", store)
    log(f"{name}: {len(store)} keys")


def make_windows(tmpdir: Path):
    name = "k3_windows.weights.h5"
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.LSTM(5, return_sequences=True),
            keras.layers.Dropout(0.2),
            keras.layers.LSTM(4),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(1),
        ]
    )
    randomise(model, 3)
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(3)
    model.fit(rng.standard_normal((4, 6, 3)).astype(np.float32), np.zeros((4, 1), np.float32), epochs=1, verbose=0, shuffle=False)
    linux = tmpdir / "linux.weights.h5"
    model.save_weights(str(linux))
    out = tmpdir / name
    with h5py.File(linux, "r") as src, h5_new(out) as dst:
        entries = []  # Keras's entry paths: every group holding a 'vars' group ("" for the root)
        src.visit(lambda n: entries.append(n[: -len("vars")].rstrip("/")) if n == "vars" or n.endswith("/vars") else None)
        for entry in sorted(entries):
            path = f"{entry}/vars" if entry else "vars"
            group = dst.create_group(entry.replace("/", "\\")).create_group("vars") if entry else dst.create_group("vars")
            for k in src[path]:
                group.create_dataset(k, data=src[path][k][()])
        # the Windows file also holds the compiled loss tracker's state (older Keras 3 saves it)
        mean = dst.create_group("metrics\\mean").create_group("vars")
        mean.create_dataset("0", data=np.float32(0.25))
        mean.create_dataset("1", data=np.float32(4.0))
    store = {}
    for layer in model.layers:
        if type(layer).__name__ == "LSTM":
            path = "layers/lstm" if not store else "layers/lstm_1"
            key = path.rsplit("/", 1)[1]
            for k, w in enumerate(layer.get_weights()):
                store[f"weights/{key}/{k}"] = np.asarray(w)
    # Keras 3 on Linux cannot load it
    probe = keras.models.clone_model(model)
    try:
        probe.load_weights(str(out))
        error = "loaded"
    except Exception as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        error = f"{type(exc).__name__}: {' '.join(lines[:2])}"
    log(f"{name}: keras {keras.__version__} load_weights: {error}")
    store["keras_error"] = np.array(error)
    finish_h5(out, OUT / name)
    write_npz(OUT / f"{name}.expected.npz", store)
    log(f"{name}: {len(store)} keys")


def main():
    OUT.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="zoo2-regressions-"))
    try:
        make_k20(tmp)
        make_k21(tmp)
        make_k1(tmp)
        make_windows(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
