"""Live TFLite tier: random small Keras 3 and tf_keras recurrent models converted by TF's
TFLiteConverter, each .tflite run by lstmctl against the LiteRT interpreter (ai-edge-litert) on a
random input: float and float16-weight conversions to 1e-5 against LiteRT's default kernels,
dynamic-range quantized ones to 1e-5 against LiteRT's builtin kernels (and 1e-4 against the
default, XNNPACK); some with a Masking layer (a loop lstmctl runs op by op).

Each case is drawn from an RNG seeded by its id, so `tfl-0007` is the same model on every run; a
failure prints its configuration. LSTMCTL_LIVE_TFLITE_CASES (default 14) sets how many. About a
second per case (the conversion).
"""

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    tf = pytest.importorskip("tensorflow")
    litert = pytest.importorskip("ai_edge_litert.interpreter")

import lstmctl  # noqa: E402

pytestmark = pytest.mark.live
N_CASES = int(os.environ.get("LSTMCTL_LIVE_TFLITE_CASES", "14"))


def config(case: int) -> dict:
    rng = np.random.default_rng(case)
    mode = str(rng.choice(["float", "float", "dynamic", "float16"]))
    quantize = mode == "dynamic"
    small = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    return {
        "flavour": str(rng.choice(["keras", "tf_keras"])),
        "layers": [str(rng.choice(["LSTM", "GRU", "SimpleRNN"])) for _ in range(small(1, 2))],
        "units": small(16, 20) if quantize else small(2, 9),
        "features": small(64, 70) if quantize else small(1, 6),
        "steps": small(1, 9),
        "batch": small(1, 3),
        "return_sequences": bool(rng.random() < 0.5),
        "bidirectional": bool(rng.random() < 0.2),
        "activation": str(rng.choice(["tanh", "tanh", "relu"])),
        "quantize": quantize,
        "float16": mode == "float16",
        "masking": bool(rng.random() < 0.2),
        "seed": case,
    }


def build(c):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if c["flavour"] == "keras":
            import keras as K
        else:
            import tf_keras as K
    K.backend.clear_session()
    layers = []
    for k, name in enumerate(c["layers"]):
        last = k == len(c["layers"]) - 1
        layer = getattr(K.layers, name)(c["units"], activation=c["activation"], return_sequences=c["return_sequences"] or not last)
        layers.append(K.layers.Bidirectional(layer) if c["bidirectional"] else layer)
    masking = [K.layers.Masking(0.0)] if c["masking"] else []
    model = K.Sequential([K.Input((c["steps"], c["features"]), batch_size=c["batch"]), *masking, *layers, K.layers.Dense(3)])
    rng = np.random.default_rng(c["seed"] + 1000)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def litert_outputs(content, x, builtin):
    kind = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin else litert.OpResolverType.AUTO
    interpreter = litert.Interpreter(model_content=content, experimental_op_resolver_type=kind)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


@pytest.mark.parametrize("case", range(N_CASES), ids=lambda k: f"tfl-{k:04d}")
def test_live_tflite(case, tmp_path):
    c = config(case)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        model = build(c)
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if c["quantize"] or c["float16"]:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if c["float16"]:
            converter.target_spec.supported_types = [tf.float16]
        content = converter.convert()
        x = np.random.default_rng(case).standard_normal((c["batch"], c["steps"], c["features"])).astype(np.float32)
        if c["masking"]:
            x[0, -1:] = 0.0  # the last step of sample 0 masked
        default, builtin = litert_outputs(content, x, False), litert_outputs(content, x, True)
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    m = lstmctl.load(str(path))
    n_layers = len(c["layers"]) * (2 if c["bidirectional"] else 1)
    if not c["masking"]:  # a masked loop's body selects by the mask: it runs op by op, no recurrent layer is matched
        assert len(m.recurrent_layers()) == n_layers, (c, [layer.name for layer in m.recurrent_layers()])
    got = m.run(x)
    for key in default:
        np.testing.assert_allclose(got[key], builtin[key], rtol=0, atol=1e-5, err_msg=str(c))
        np.testing.assert_allclose(got[key], default[key], rtol=0, atol=1e-4 if c["quantize"] else 1e-5, err_msg=str(c))
