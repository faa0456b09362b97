"""Writes the TensorFlow Lite fixtures of sample_models/tflite/: small Keras 3 and tf_keras models
converted by TF 2.21's TFLiteConverter, with the values the LiteRT interpreter (ai-edge-litert)
computed for a stored input beside each file (`<file>.expected.npz`), and the Keras model itself
(`<name>.keras`, for `lstmctl compare`) with Keras's outputs.

Run from the repository root in a venv with tensorflow-cpu 2.21, tf-keras 2.21 and ai-edge-litert:

    python sample_models/tflite/generate_tflite.py

Deterministic: weights and inputs come from numpy.random.default_rng(crc32(<name>)), every model is
built after clear_session() with a fixed seed. Weights are drawn from a normal distribution (non-zero
biases, weights that look trained). Each `.expected.npz` holds:
- `input/<tensor name>`: the stored input, under the .tflite's input tensor name;
- `<tensor name>`: LiteRT's value of each output tensor of the .tflite, by its name;
- `keras/output_<i>`: what the Keras model returned for the same input (its outputs in order);
- `builtin/<tensor name>` (quantized files only): LiteRT's outputs computed by its builtin kernels
  without the XNNPACK delegate the interpreter applies by default; XNNPACK quantizes the inputs of
  dynamic-range products in its own way, up to about 1e-4 away from the builtin kernels.
Quantized files (`*_quant`) were converted with Optimize.DEFAULT (dynamic-range: int8 weights for
tensors of at least 1024 values, inputs quantized on the fly by LiteRT).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import json  # noqa: E402
import logging  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")
logging.getLogger("tensorflow").setLevel(logging.ERROR)
logging.getLogger("absl").setLevel(logging.ERROR)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

HERE = Path(__file__).resolve().parent
K3, K2 = keras, tf_keras
MANIFEST = []


def rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def fresh(K, name):
    K.backend.clear_session()
    K.utils.set_random_seed(zlib.crc32(name.encode()) & 0x7FFFFFFF)


def trained(model, r, scale=0.4):
    """Every weight drawn from N(0, scale): non-zero biases, no initializer's zeros or ones."""
    model.set_weights([r.normal(0, scale, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def convert(model, quantize=False, select_tf_ops=False):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if select_tf_ops:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        converter._experimental_lower_tensor_list_ops = False
    return converter.convert()


def litert(content, inputs, builtin=False):
    """LiteRT's outputs, keyed by output tensor name, for inputs given in input-detail order; with
    `builtin`, LiteRT's own kernels without the XNNPACK delegate it applies by default."""
    kind = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin else OpResolverType.AUTO
    interpreter = Interpreter(model_content=content, experimental_op_resolver_type=kind)
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()
    for d, x in zip(details, inputs):
        interpreter.set_tensor(d["index"], x)
    interpreter.invoke()
    names = {d["name"]: x for d, x in zip(details, inputs)}
    return names, {d["name"]: interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()}


def ops_of(content):
    interpreter = Interpreter(model_content=content)
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


def write(name, model, inputs, quantize=False, description="", keras_file=True):
    content = convert(model, quantize)
    (HERE / f"{name}.tflite").write_bytes(content)
    named, outs = litert(content, inputs)
    keras_outs = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    keras_outs = keras_outs if isinstance(keras_outs, (list, tuple)) else [keras_outs]
    arrays = {f"input/{k}": v for k, v in named.items()}
    arrays.update(outs)
    if quantize:  # XNNPACK computes dynamic-range products its own way (up to ~1e-4 apart): keep both
        arrays.update({f"builtin/{k}": v for k, v in litert(content, inputs, builtin=True)[1].items()})
    arrays.update({f"keras/output_{i}": np.asarray(o) for i, o in enumerate(keras_outs)})
    np.savez(HERE / f"{name}.tflite.expected.npz", **arrays)
    if len(inputs) == 1:  # for `lstmctl run/compare --input` (the docs' examples)
        np.save(HERE / f"{name}.input.npy", inputs[0])
    if keras_file:
        model.save(HERE / f"{name}.keras")
    gap = max(min(float(np.max(np.abs(np.asarray(k) - v))) for v in outs.values() if v.shape == np.shape(k)) for k in keras_outs)
    entry = {"file": f"{name}.tflite", "builder": "keras " + keras.__version__ if isinstance(model, keras.Model) else "tf_keras " + tf_keras.__version__,
             "quantized": quantize, "ops": ops_of(content), "bytes": len(content), "keras_vs_litert": gap, "description": description}  # fmt: skip
    MANIFEST.append(entry)
    print(f"{name}: {len(content)} bytes, ops {entry['ops']}, |keras - litert| {gap:.2g}", flush=True)


# --- the cases -------------------------------------------------------------------------------


def seq_model(K, name, layers, shape, batch, r, scale=0.4):
    fresh(K, name)
    model = K.Sequential([K.Input(shape, batch_size=batch), *layers])
    return trained(model, r, scale)


def case(K, name, layers, shape=(7, 4), batch=2, quantize=False, description="", scale=0.4, x=None):
    r = rng(name)
    model = seq_model(K, name, layers(K), shape, batch, r, scale)
    if x is None:
        x = r.normal(size=(batch, *shape)).astype(np.float32)
    write(name, model, [x], quantize, description)


def embedding(name, quantize):
    """Int32 token ids -> Embedding -> LSTM -> Dense softmax (Keras 3)."""
    K = K3
    r = rng(name)
    fresh(K, name)
    vocab, dim = (80, 16) if quantize else (20, 4)
    ids = K.Input((6,), batch_size=2, dtype="int32")
    h = K.layers.Embedding(vocab, dim)(ids)
    h = K.layers.LSTM(16 if quantize else 5)(h)
    out = K.layers.Dense(3, activation="softmax")(h)
    model = trained(K.Model(ids, out), r)
    x = r.integers(0, vocab, size=(2, 6)).astype(np.int32)
    write(name, model, [x], quantize, f"Input(6,) int32 -> Embedding({vocab}, {dim}) -> LSTM -> Dense(3, softmax)")


def return_state(K, name):
    r = rng(name)
    fresh(K, name)
    x_in = K.Input((6, 4), batch_size=2)
    seq, h, c = K.layers.LSTM(5, return_sequences=True, return_state=True)(x_in)
    model = trained(K.Model(x_in, [seq, h, c]), r)
    write(name, model, [r.normal(size=(2, 6, 4)).astype(np.float32)], description="LSTM(5, return_sequences, return_state): outputs seq, h, c")


def cell_clip():
    """A tf_keras LSTM whose cell state climbs past 10 and comes back: the converter's cell_clip=10
    clips it on the way up, so the .tflite departs from Keras on the way down."""
    K, name = K2, "k2_lstm_cellclip"
    r = rng(name)
    fresh(K, name)
    model = K.Sequential([K.Input((26, 2), batch_size=2), K.layers.LSTM(3, return_sequences=True), K.layers.Dense(2)])
    u = 3
    W = r.normal(0, 0.2, (2, 4 * u)).astype(np.float32)
    W[0, 2 * u : 3 * u] = 3.0  # feature 0 drives the candidate c~ to +-1
    U = r.normal(0, 0.1, (u, 4 * u)).astype(np.float32)
    b = r.normal(0, 0.2, 4 * u).astype(np.float32)
    b[:u] += 6.0  # i ~ 1
    b[u : 2 * u] += 6.0  # f ~ 1: c accumulates
    b[3 * u :] += 2.0
    dense = [r.normal(0, 0.5, (u, 2)).astype(np.float32), r.normal(0, 0.2, 2).astype(np.float32)]
    model.set_weights([W, U, b, *dense])
    x = r.normal(0, 0.1, (2, 26, 2)).astype(np.float32)
    x[:, :16, 0] += 1.0  # c climbs to about 16 ...
    x[:, 16:, 0] -= 1.0  # ... then falls by 10: Keras ends near 6, LiteRT (clipped at 10) near 0
    write(name, model, [x], description="tf_keras LSTM(3, rs) whose cell state passes +10 (26 steps): the converter's cell_clip=10 departs from Keras")


def flex():
    """A Keras 3 LSTM with a dynamic batch converted with SELECT_TF_OPS: Flex (TensorList) ops."""
    name = "k3_lstm_flex"
    r = rng(name)
    fresh(K3, name)
    model = trained(K3.Sequential([K3.Input((5, 3)), K3.layers.LSTM(4), K3.layers.Dense(2)]), r)
    content = convert(model, select_tf_ops=True)
    (HERE / f"{name}.tflite").write_bytes(content)
    MANIFEST.append({"file": f"{name}.tflite", "builder": "keras " + keras.__version__, "quantized": False, "ops": ops_of(content), "bytes": len(content),
                     "description": "LSTM(4) with a dynamic batch, SELECT_TF_OPS: Flex ops LiteRT's builtins cannot run (no expected values)"})  # fmt: skip
    print(f"{name}: {len(content)} bytes, ops {ops_of(content)}")


def main():
    for old in HERE.glob("*"):
        if old.name not in ("generate_tflite.py",) and old.suffix in (".tflite", ".npz", ".npy", ".keras", ".json"):
            old.unlink()
    L = lambda K: K.layers  # noqa: E731
    # Keras 3: every recurrent layer becomes a WHILE loop
    case(K3, "k3_lstm", lambda K: [L(K).LSTM(5), L(K).Dense(3, activation="softmax")], description="LSTM(5) -> Dense(3, softmax): the classifier head")
    case(K3, "k3_lstm_seq", lambda K: [L(K).LSTM(5, return_sequences=True), L(K).Dense(2)], description="LSTM(5, return_sequences) -> Dense(2)")
    case(K3, "k3_gru", lambda K: [L(K).GRU(5, return_sequences=True), L(K).GRU(4), L(K).Dense(2)], description="GRU(5, rs) -> GRU(4) -> Dense(2) (reset_after=True)")
    case(K3, "k3_gru_before", lambda K: [L(K).GRU(4, reset_after=False), L(K).Dense(2)], description="GRU(4, reset_after=False) -> Dense(2)")
    case(K3, "k3_simplernn", lambda K: [L(K).SimpleRNN(5, return_sequences=True), L(K).SimpleRNN(3, activation="relu"), L(K).Dense(2)], description="SimpleRNN(5, rs) -> SimpleRNN(3, relu) -> Dense(2)")
    case(K3, "k3_stack", lambda K: [L(K).LSTM(6, return_sequences=True), L(K).LSTM(4), L(K).Dense(2)], description="LSTM(6, rs) -> LSTM(4) -> Dense(2)")
    case(K3, "k3_bidir", lambda K: [L(K).Bidirectional(L(K).LSTM(4, return_sequences=True)), L(K).Dense(2)], batch=1, description="Bidirectional(LSTM(4, rs)) -> Dense(2), batch 1")
    case(K3, "k3_lstm_relu", lambda K: [L(K).LSTM(4, activation="relu"), L(K).Dense(2)], description="LSTM(4, activation=relu) -> Dense(2)")
    return_state(K3, "k3_lstm_state")
    embedding("k3_embed", quantize=False)
    # tf_keras with a fixed batch: LSTM becomes UNIDIRECTIONAL_SEQUENCE_LSTM, GRU and SimpleRNN WHILE loops
    case(K2, "k2_lstm", lambda K: [L(K).LSTM(5), L(K).Dense(3, activation="softmax")], description="LSTM(5) -> Dense(3, softmax): one UNIDIRECTIONAL_SEQUENCE_LSTM")
    case(K2, "k2_stack", lambda K: [L(K).LSTM(6, return_sequences=True), L(K).LSTM(4), L(K).Dense(2)], description="LSTM(6, rs) -> LSTM(4) -> Dense(2)")
    case(K2, "k2_bidir", lambda K: [L(K).Bidirectional(L(K).LSTM(4, return_sequences=True)), L(K).Dense(2)], description="Bidirectional(LSTM(4, rs)): REVERSE_V2 + two USL + CONCATENATION")
    case(K2, "k2_gru", lambda K: [L(K).GRU(5), L(K).Dense(2)], description="GRU(5) -> Dense(2): a WHILE loop")
    case(K2, "k2_simplernn", lambda K: [L(K).SimpleRNN(4), L(K).Dense(2)], description="SimpleRNN(4) -> Dense(2): a WHILE loop")
    return_state(K2, "k2_lstm_state")
    case(K2, "k2_lstm_gru_shared", lambda K: [L(K).LSTM(3, return_sequences=True), L(K).GRU(3, return_sequences=True), L(K).Dense(2)], shape=(5, 2),
         description="tf_keras LSTM(3, rs) -> GRU(3, rs): the converter gives the USL's h state and the GRU's initial h one variable tensor, which the USL leaves holding its final h")  # fmt: skip
    cell_clip()
    # dynamic-range quantized: only tensors of >= 1024 values get int8 weights
    case(K2, "k2_lstm_quant", lambda K: [L(K).LSTM(32), L(K).Dense(40), L(K).Dense(3)], shape=(6, 32), quantize=True, scale=0.15,
         description="LSTM(32) on 32 features (each gate matrix 32x32 = 1024 values: int8) -> Dense(40) (int8) -> Dense(3) (float)")  # fmt: skip
    case(K3, "k3_lstm_quant", lambda K: [L(K).LSTM(16), L(K).Dense(64), L(K).Dense(2)], shape=(6, 16), quantize=True, scale=0.2,
         description="LSTM(16) on 16 features (WHILE body FULLY_CONNECTED [64, 16]: int8) -> Dense(64) (int8) -> Dense(2)")  # fmt: skip
    case(K3, "k3_gru_quant", lambda K: [L(K).GRU(16), L(K).Dense(2)], shape=(6, 24), quantize=True, scale=0.2, description="GRU(16) on 24 features: kernel [48, 24] int8, recurrent [48, 16] float")
    embedding("k3_embed_quant", quantize=True)
    flex()
    (HERE / "tflite_manifest.json").write_text(json.dumps(MANIFEST, indent=1) + "\n")


if __name__ == "__main__":
    main()
