"""Forward-pass speed: lstmctl against onnxruntime, PyTorch and Keras, same weights, one process.

    python benchmarks/bench_forward.py [--reps 15] [--only lstm|gru|simple_rnn]

Peers are optional (pip install -e '.[bench]' plus tensorflow-cpu for Keras): each one missing is
reported and skipped. Every peer's output is checked against lstmctl's before it is timed.
Prints the median milliseconds per forward pass and the ratio to onnxruntime, and "GEMM bound":
the matrix products any implementation of the layer computes, timed alone with NumPy's BLAS in the
same run (the input projection of all steps at once, then one recurrent product per step), which
is as fast as lstmctl's NumPy forward pass could be.
"""

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lstmctl import kernels  # noqa: E402
from lstmctl.gates import make_cell  # noqa: E402

CASES = [
    ("lstm", 1, 100, 32, 64),
    ("lstm", 32, 100, 128, 256),
    ("lstm", 256, 100, 128, 512),
    ("gru", 32, 100, 128, 256),
    ("simple_rnn", 32, 100, 128, 256),
]
K = {"lstm": 4, "gru": 3, "simple_rnn": 1}


def make(kind, B, T, D, H, seed=0):
    rng = np.random.default_rng(seed)
    k = K[kind]
    W = (rng.standard_normal((D, k * H)) / np.sqrt(D)).astype(np.float32)
    U = (rng.standard_normal((H, k * H)) / np.sqrt(H)).astype(np.float32)
    b = (rng.standard_normal((2, k * H) if kind == "gru" else (k * H,)) * 0.1).astype(np.float32)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    cell = make_cell(kind, H, [W, U, b], where="bench", activation="tanh", recurrent_activation="sigmoid",
                     use_bias=True, reset_after=kind == "gru", keras_major=3)  # fmt: skip
    return cell, x


def lstmctl_forward(cell, x):
    states = tuple(np.zeros((x.shape[0], cell.units), np.float32) for _ in cell.state_names)
    return lambda: kernels.scan(cell, x, states)[0]


def gemm_bound(cell, x):
    B, T, D = x.shape
    W, U = cell.W, np.ascontiguousarray(cell.U)
    h = np.zeros((B, cell.units), np.float32)
    z = np.empty((B, U.shape[1]), np.float32)

    def run():
        np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * B, D) @ W
        for _ in range(T):
            np.matmul(h, U, out=z)

    return run


def reference_forward(cell, x):
    states = tuple(np.zeros((x.shape[0], cell.units), np.float32) for _ in cell.state_names)
    return lambda: kernels.reference_scan(cell, x, states)[0]


def torch_forward(cell, x):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    H, D = cell.units, cell.input_dim
    W, U = cell.W, cell.U
    if cell.kind == "lstm":
        mod = torch.nn.LSTM(D, H, batch_first=True)
        order = [0, 1, 2, 3]  # i, f, g, o = Keras i, f, c, o
        b_ih, b_hh = cell.bias, np.zeros_like(cell.bias)
    elif cell.kind == "gru":
        mod = torch.nn.GRU(D, H, batch_first=True)
        order = [1, 0, 2]  # torch r, z, n from Keras z, r, h
        b_ih, b_hh = cell.bias[0], cell.bias[1]
    else:
        mod = torch.nn.RNN(D, H, batch_first=True)
        order = [0]
        b_ih, b_hh = cell.bias, np.zeros_like(cell.bias)

    def perm(a):
        return np.concatenate([a[..., j * H : (j + 1) * H] for j in order], axis=-1)

    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.from_numpy(perm(W).T.copy()))
        mod.weight_hh_l0.copy_(torch.from_numpy(perm(U).T.copy()))
        mod.bias_ih_l0.copy_(torch.from_numpy(perm(b_ih)))
        mod.bias_hh_l0.copy_(torch.from_numpy(perm(b_hh)))
    xt = torch.from_numpy(x)

    def run():
        with torch.no_grad():
            return mod(xt)[0].numpy()

    return run


def onnx_forward(cell, x):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    H, D = cell.units, cell.input_dim
    op = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}[cell.kind]
    order = {"lstm": [0, 3, 1, 2], "gru": [0, 1, 2], "simple_rnn": [0]}[cell.kind]  # ONNX i,o,f,c / z,r,h

    def perm(a):
        return np.concatenate([a[..., j * H : (j + 1) * H] for j in order], axis=-1)

    Wb, Rb = (cell.bias[0], cell.bias[1]) if cell.kind == "gru" else (cell.bias, np.zeros_like(cell.bias))
    inits = [
        helper.make_tensor("W", TensorProto.FLOAT, (1, *perm(cell.W).T.shape), perm(cell.W).T.flatten()),
        helper.make_tensor("R", TensorProto.FLOAT, (1, *perm(cell.U).T.shape), perm(cell.U).T.flatten()),
        helper.make_tensor("B", TensorProto.FLOAT, (1, 2 * Wb.size), np.concatenate([perm(Wb), perm(Rb)])),
    ]
    attrs = {"hidden_size": H}
    if cell.kind == "gru":
        attrs["linear_before_reset"] = 1
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y"], **attrs)
    graph = helper.make_graph(
        [node], "bench", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, None, D])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))  # ONNX layout: [seq, batch, input]
    return lambda: sess.run(None, {"X": xt})[0][:, 0].transpose(1, 0, 2)


def keras_forward(cell, x):
    import keras

    H = cell.units
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple_rnn": keras.layers.SimpleRNN}[cell.kind](H, return_sequences=True)
    layer.build(x.shape)
    layer.set_weights([cell.W, cell.U, cell.bias])
    return lambda: np.asarray(layer(x))


PEERS = {"onnxruntime": onnx_forward, "torch": torch_forward, "keras": keras_forward}


def median_ms(fn, reps):
    fn()  # warm up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--only", choices=sorted(K))
    args = ap.parse_args(argv)
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, Python {platform.python_version()}")
    print(f"{'case':32s} {'lstmctl':>9s} {'reference':>10s} {'GEMM bound':>11s} " + " ".join(f"{p:>12s}" for p in PEERS) + "   lstmctl / onnxruntime")
    for kind, B, T, D, H in CASES:
        if args.only and kind != args.only:
            continue
        cell, x = make(kind, B, T, D, H)
        ours = lstmctl_forward(cell, x)
        want = ours()
        np.testing.assert_allclose(reference_forward(cell, x)(), want, atol=1e-5)
        row = {"lstmctl": median_ms(ours, args.reps), "reference": median_ms(reference_forward(cell, x), max(3, args.reps // 3)), "bound": median_ms(gemm_bound(cell, x), args.reps)}
        for name, factory in PEERS.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fn = factory(cell, x)
                    got = fn()
            except ImportError as exc:
                row[name] = None
                print(f"  ({name} not installed: {exc.name})", file=sys.stderr)
                continue
            err = float(np.abs(got - want).max())
            if err > 1e-4:
                raise SystemExit(f"{name} disagrees with lstmctl on {kind} B{B}: max |diff| {err:.3g}")
            row[name] = median_ms(fn, args.reps)
        ratio = f"{row['lstmctl'] / row['onnxruntime']:.2f}x" if row.get("onnxruntime") else "-"
        cells = " ".join(f"{row[p]:12.2f}" if row.get(p) is not None else f"{'-':>12s}" for p in PEERS)
        print(f"{kind} B{B} T{T} D{D} H{H}".ljust(32) + f" {row['lstmctl']:9.2f} {row['reference']:10.2f} {row['bound']:11.2f} {cells}   {ratio}")


if __name__ == "__main__":
    main()
