#!/usr/bin/env python
"""What real Keras computes for the what-if options (run/trace/diagnose --activation,
--recurrent-activation, --hard-sigmoid, --forget-bias) on two shipped samples.

For each case the sample's own weights are put into a model built with the overridden setting
(Keras 3 for keras3 hard_sigmoid, tf_keras for keras2), on the sample's own input; Keras's output
and the LSTM's sequence are stored in sample_models/whatif/<case>.npz, and cases.json says which
sample and which options. Run from the repository root with TensorFlow (never lstmctl):

    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    python sample_models/whatif/generate_whatif.py
"""

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tf_keras  # noqa: E402

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent
SAMPLE = "k3_lstm_dense.keras"  # Sequential Input(6, 4) -> LSTM(5) -> Dense(3, softmax), Keras 3.15.1

CASES = [
    # name, lstmctl options, how the model is rebuilt
    ("hard_sigmoid_keras3", {"recurrent_activation": "hard_sigmoid", "hard_sigmoid": "keras3"}, {"K": "keras3", "recurrent_activation": "hard_sigmoid"}),
    ("hard_sigmoid_keras2", {"recurrent_activation": "hard_sigmoid", "hard_sigmoid": "keras2"}, {"K": "tf_keras", "recurrent_activation": "hard_sigmoid"}),
    ("relu_activation", {"activation": "relu"}, {"K": "keras3", "activation": "relu"}),
    ("forget_bias_1_5", {"forget_bias": 1.5}, {"K": "keras3", "forget_bias": 1.5}),
]


def build(K, activation, recurrent_activation):
    inp = K.Input((6, 4))
    seq = K.layers.LSTM(5, activation=activation, recurrent_activation=recurrent_activation, return_sequences=True, name="lstm")(inp)
    last = K.layers.Lambda(lambda s: s[:, -1], name="last")(seq)
    out = K.layers.Dense(3, activation="softmax", name="dense")(last)
    return K.Model(inp, [out, seq])


def main():
    original = keras.models.load_model(SAMPLES / SAMPLE, compile=False)
    weights = {layer.name: layer.get_weights() for layer in original.layers if layer.get_weights()}
    x = np.load(SAMPLES / "k3_lstm_dense.input.npy")
    manifest = []
    for name, options, how in CASES:
        K = keras if how["K"] == "keras3" else tf_keras
        model = build(K, how.get("activation", "tanh"), how.get("recurrent_activation", "sigmoid"))
        kernel, recurrent, bias = (w.copy() for w in weights["lstm"])
        bias[5:10] += how.get("forget_bias", 0.0)  # Keras's f block of units 5
        model.get_layer("lstm").set_weights([kernel, recurrent, bias])
        model.get_layer("dense").set_weights(weights["dense"])
        out, seq = (np.asarray(t) for t in model(x))
        if not how.get("forget_bias") and how.get("activation", "tanh") == "tanh" and how.get("recurrent_activation", "sigmoid") == "sigmoid":
            raise AssertionError("a case must change something")
        np.savez_compressed(HERE / f"{name}.npz", input=x, output=out.astype(np.float32), **{"lstm/sequence": seq.astype(np.float32)})
        manifest.append({"case": name, "sample": SAMPLE, "options": options, "computed_by": f"{K.__name__} {K.__version__}"})
        print(name, out[0])
    # the untouched model, as a check that the rebuild is the sample's own model
    plain = build(keras, "tanh", "sigmoid")
    plain.get_layer("lstm").set_weights(weights["lstm"])
    plain.get_layer("dense").set_weights(weights["dense"])
    np.testing.assert_allclose(np.asarray(plain(x)[0]), np.asarray(original(x)), atol=1e-6)
    (HERE / "cases.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
