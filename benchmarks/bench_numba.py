"""What a compiled kernel would gain, where NumPy's per-call cost dominates (issues 20 and 29).

    pip install numba onnxruntime onnx && python benchmarks/bench_numba.py [--reps 51]

Prototypes, not part of lstmctl: the LSTM step loop written for numba, (1) with the recurrent
product through BLAS and the gates compiled, (2) with the whole step compiled; checked against
lstmctl's output, timed interleaved with lstmctl and onnxruntime in one run.
Measured 2026-12-07 (numba 0.68.1, docs/speed.md): B1 0.51 and 0.52 ms against lstmctl's 0.475 and
onnxruntime's 0.157 (a compiled loop evaluates exp and tanh one value at a time; NumPy's tanh is
vectorised), B32 10x and 5x slower than lstmctl. So not shipped, not proposed.
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


def numba_lstm_compiled():
    """The whole step compiled, the recurrent product too (for each sample, h·U as a loop over
    U's rows, which LLVM vectorises): no BLAS call and no NumPy call per step."""
    import numba

    @numba.njit(cache=False, fastmath=True)
    def steps(xw, U, h0, c0, out):
        T, B, G = xw.shape
        u = G // 4
        h, c = h0.copy(), c0.copy()
        z = np.empty(G, np.float32)
        for t in range(T):
            for b in range(B):
                z[:] = xw[t, b]
                for k in range(u):
                    hk = h[b, k]
                    for j in range(G):
                        z[j] += hk * U[k, j]
                for k in range(u):
                    i = 1.0 / (1.0 + np.exp(-z[k]))
                    f = 1.0 / (1.0 + np.exp(-z[u + k]))
                    g = np.tanh(z[2 * u + k])
                    o = 1.0 / (1.0 + np.exp(-z[3 * u + k]))
                    c[b, k] = f * c[b, k] + i * g
                    out[t, b, k] = o * np.tanh(c[b, k])
                h[b] = out[t, b]
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
    steps, compiled = numba_lstm(), numba_lstm_compiled()
    print(f"{'case':28s} {'lstmctl':>9s} {'numba':>9s} {'compiled':>9s} {'onnxruntime':>12s}   p50 ms; lstmctl/ort  numba/ort  compiled/ort")
    for kind, B, T, D, H in bf.CASES[:2]:
        cell, x = bf.make(kind, B, T, D, H)
        fns = {"lstmctl": bf.lstmctl_forward(cell, x), "numba": numba_forward(cell, x, steps), "compiled": numba_forward(cell, x, compiled), "ort": bf.onnx_forward(cell, x)}
        want = fns["lstmctl"]()
        for name in ("numba", "compiled"):
            err = float(np.abs(fns[name]() - want).max())
            if err > 1e-5:
                raise SystemExit(f"the numba prototype '{name}' disagrees with lstmctl: {err:.3g}")
        t = {name: bf.p50_p95(ms)[0] for name, ms in bf.measure(fns, args.reps * (10 if B == 1 else 1)).items()}
        ratios = "  ".join(f"{t[n] / t['ort']:9.2f}x" for n in ("lstmctl", "numba", "compiled"))
        print(f"{kind} B{B} T{T} D{D} H{H}".ljust(28) + f" {t['lstmctl']:9.3f} {t['numba']:9.3f} {t['compiled']:9.3f} {t['ort']:12.3f}   {ratios}")


if __name__ == "__main__":
    main()
