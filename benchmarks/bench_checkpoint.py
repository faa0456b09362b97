"""Reading a TF1 checkpoint: lstmctl (every CRC-32C checked) against TensorFlow's own reader.

    python benchmarks/bench_checkpoint.py [--units 1024] [--input 512] [--reps 5]

Needs TensorFlow (to write the checkpoint and as the peer); run it with a Python that has both
TensorFlow and lstmctl. One LSTMCell of --units on --input features is saved with
tf.compat.v1.train.Saver into a temporary folder; then, in this one process, the median of --reps:
  * lstmctl: lstmctl.load(prefix) and gates() — read, CRC-checked, converted to Keras's layout —
    with the crc32c package's CRC when installed (`pip install lstmctl[fast]`), and with NumPy's;
  * tensorflow: tf.train.load_checkpoint(prefix) and get_tensor() of every variable;
  * crc32c: lstmctl.formats.crc32c.value over the data shard alone.
Printed as seconds and as ratios to TensorFlow.
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def median_time(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=1024)
    parser.add_argument("--input", type=int, default=512)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    import lstmctl
    from lstmctl.formats import crc32c

    v1 = tf.compat.v1
    folder = tempfile.mkdtemp(prefix="bench-ckpt-")
    prefix = os.path.join(folder, "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, (1, 3, args.input))
        v1.nn.dynamic_rnn(v1.nn.rnn_cell.LSTMCell(args.units), x, dtype=tf.float32)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, prefix)
    shard = prefix + ".data-00000-of-00001"
    size = os.path.getsize(shard)

    def with_lstmctl():
        return lstmctl.load(prefix).gates()

    def with_tensorflow():
        reader = tf.train.load_checkpoint(prefix)
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}

    data = open(shard, "rb").read()
    ours = median_time(with_lstmctl, args.reps)
    native = crc32c._native()
    crc32c._native = lambda: None
    ours_numpy = median_time(with_lstmctl, args.reps)
    crc_numpy = median_time(lambda: crc32c.value(data), args.reps)
    crc32c._native = lambda: native
    theirs = median_time(with_tensorflow, args.reps)
    crc = median_time(lambda: crc32c.value(data), args.reps)
    kernel = with_tensorflow()["rnn/lstm_cell/kernel"]
    assert np.array_equal(with_lstmctl()["rnn/W_i"], kernel[: args.input, : args.units])
    print(f"TF1 LSTMCell({args.units}) on {args.input} features: data shard {size / 2**20:.1f} MiB, median of {args.reps}")
    print(f"  tensorflow  load_checkpoint + get_tensor                   {theirs:8.3f} s   1.00x")
    how = "crc32c package" if native else "NumPy (no crc32c package)"
    print(f"  lstmctl     load + gates, CRC by {how:26s} {ours:8.3f} s   {ours / theirs:.2f}x")
    print(f"  lstmctl     load + gates, CRC by NumPy                     {ours_numpy:8.3f} s   {ours_numpy / theirs:.2f}x")
    print(f"  lstmctl     CRC-32C of the shard alone, {how:19s} {crc:8.3f} s   {size / 2**20 / crc:.0f} MiB/s")
    print(f"  lstmctl     CRC-32C of the shard alone, NumPy               {crc_numpy:8.3f} s   {size / 2**20 / crc_numpy:.0f} MiB/s")


if __name__ == "__main__":
    main()
