"""TFLite speed: a converted LSTM run by lstmctl against lstmctl's run of the same model's .keras
file (goal: within 2x), and how long a 10 MB .tflite takes to open (goal: under 0.5 s).

    python benchmarks/bench_tflite.py [--reps 15]

Needs TensorFlow 2.21 and tf_keras to build and convert the models (into a temporary folder);
lstmctl itself runs without them. Each .tflite is checked against the .keras run before timing.
Cases: a Keras 3 LSTM (a WHILE loop matched to the LSTM and run by the recurrent kernels) and a
tf_keras LSTM with a fixed batch (one UNIDIRECTIONAL_SEQUENCE_LSTM), batch 8, 100 steps.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import lstmctl  # noqa: E402


def median_ms(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def build(K, name, batch, steps, features, units, folder):
    import tensorflow as tf

    K.backend.clear_session()
    model = K.Sequential([K.Input((steps, features), batch_size=batch), K.layers.LSTM(units), K.layers.Dense(4)])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32) for w in model.get_weights()])
    keras_path = os.path.join(folder, f"{name}.keras")
    model.save(keras_path)
    tfl_path = os.path.join(folder, f"{name}.tflite")
    with open(tfl_path, "wb") as fh:
        fh.write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return keras_path, tfl_path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    import keras
    import tf_keras

    with tempfile.TemporaryDirectory() as folder:
        print(f"{'case':<36} {'.keras ms':>10} {'.tflite ms':>11} {'ratio':>6}")
        for K, label in ((keras, "Keras 3 LSTM (WHILE)"), (tf_keras, "tf_keras LSTM (USL)")):
            for units in (64, 256):
                keras_path, tfl_path = build(K, f"{label[:2]}{units}", 8, 100, 32, units, folder)
                x = np.random.default_rng(1).standard_normal((8, 100, 32)).astype(np.float32)
                mk, mt = lstmctl.load(keras_path), lstmctl.load(tfl_path)
                assert [layer.class_name for layer in mt.recurrent_layers()] == ["LSTM"]
                np.testing.assert_allclose(mt.run(x)["output"], mk.run(x)["output"], atol=1e-5)
                a = median_ms(lambda: mk.run(x), args.reps)
                b = median_ms(lambda: mt.run(x), args.reps)
                print(f"{label + f' B8 T100 D32 H{units}':<36} {a:>10.2f} {b:>11.2f} {b / a:>6.2f}")
        _, big = build(keras, "big", 1, 20, 512, 600, folder)
        size = os.path.getsize(big)
        open_ms = median_ms(lambda: lstmctl.load(big), 5)
        print(f"open a {size / 1e6:.1f} MB .tflite (Keras 3 LSTM(600) on 512 features): {open_ms:.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
