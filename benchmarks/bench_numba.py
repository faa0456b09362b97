"""What a compiled kernel would gain at batch 1, where NumPy's per-call cost dominates (issue 20).

    pip install numba scipy onnxruntime onnx && python benchmarks/bench_numba.py [--reps 51]

A prototype, not part of lstmctl: the LSTM step loop of lstmctl/fastpath.py written for numba
(one compiled loop over the steps: the recurrent product through BLAS, the gates compiled), checked
against lstmctl's output, timed beside lstmctl and onnxruntime in one run on the benchmark cases.
Measured 2026-12-04 (docs/speed.md): B1 0.45 ms against lstmctl's 0.49, so not shipped.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_forward as bf  # noqa: E402


def numba_lstm():
    import numba

    @numba.njit(cache=False, fastmath=True)
    def steps(xw, U, h0, c0, out):
        """xw (time, batch, 4u) projected inputs with the bias; gates i, f, c, o as Keras orders them.
        The recurrent product through BLAS (numba's np.dot), the gates in one compiled loop."""
        T, B, G = xw.shape
        u = G // 4
        h, c = h0.copy(), c0.copy()
        for t in range(T):
            z = np.dot(h, U) + xw[t]
            for b in range(B):
                for k in range(u):
                    i = 1.0 / (1.0 + np.exp(-z[b, k]))
                    f = 1.0 / (1.0 + np.exp(-z[b, u + k]))
                    g = np.tanh(z[b, 2 * u + k])
                    o = 1.0 / (1.0 + np.exp(-z[b, 3 * u + k]))
                    c[b, k] = f * c[b, k] + i * g
                    h[b, k] = o * np.tanh(c[b, k])
                    out[t, b, k] = h[b, k]
        return h, c

    return steps


def numba_forward(cell, x, steps):
    U = np.ascontiguousarray(cell.U)
    B, T, _ = x.shape
    u = cell.units
    h0, c0 = np.zeros((B, u), np.float32), np.zeros((B, u), np.float32)
    out = np.empty((T, B, u), np.float32)

    def run():
        xw = np.ascontiguousarray((x @ cell.W + cell.bias).transpose(1, 0, 2))
        steps(xw, U, h0, c0, out)
        return out.transpose(1, 0, 2)

    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=51)
    args = ap.parse_args(argv)
    steps = numba_lstm()
    print(f"{'case':28s} {'lstmctl':>9s} {'numba':>9s} {'onnxruntime':>12s}   lstmctl/ort  numba/ort")
    for kind, B, T, D, H in bf.CASES[:2]:
        cell, x = bf.make(kind, B, T, D, H)
        ours, ort, nb = bf.lstmctl_forward(cell, x), bf.onnx_forward(cell, x), numba_forward(cell, x, steps)
        want = ours()
        err = float(np.abs(nb() - want).max())
        if err > 1e-5:
            raise SystemExit(f"the numba prototype disagrees with lstmctl: {err:.3g}")
        t = {name: bf.p50_p95(ms)[0] for name, ms in bf.measure({"lstmctl": ours, "numba": nb, "ort": ort}, args.reps).items()}
        print(f"{kind} B{B} T{T} D{D} H{H}".ljust(28) + f" {t['lstmctl']:9.3f} {t['numba']:9.3f} {t['ort']:12.3f}   {t['lstmctl'] / t['ort']:10.2f}x {t['numba'] / t['ort']:9.2f}x")


if __name__ == "__main__":
    main()
