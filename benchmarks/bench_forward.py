"""Forward-pass speed: lstmctl against onnxruntime (and PyTorch, Keras), same weights, one process.

    python benchmarks/bench_forward.py [--quick] [--reps 30] [--only lstm|gru|simple_rnn] [--no-busy] [--no-processes]

Every figure is a ratio against peers timed in the same run, interleaved call by call (a change in
the machine's load reaches all of them alike), as p50 and p95 of one forward pass. "GEMM bound" is
the matrix products any implementation of the layer computes (the input projection of all steps,
then one recurrent product per step), timed alone with NumPy's BLAS on the threads lstmctl's policy
plans: as fast as lstmctl's NumPy forward pass could be. Each case runs on the machine as found and
busy (as many spinning processes as CPUs beside it), with the 1-minute load average before and
after; then 4 `lstmctl run` processes side by side against the same 4 one after another. The
tables print as markdown, ready for docs/speed.md. `--quick` (under 2 minutes): the two LSTM cases
against onnxruntime only. Peers that are missing are reported and skipped; each peer's output is
checked against lstmctl's before it is timed.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lstmctl import fastpath, kernels, threads  # noqa: E402
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
    """The products alone, on the threads lstmctl's policy plans for the scan (BLAS threads, or
    batch slices on threads of their own): the input projection of all steps, then per step the
    recurrent product in the faster of the two layouts (gate-major, U^T·h^T, as lstmctl's LSTM
    loop computes it), in the row blocks lstmctl cuts it into where BLAS multiplies those unpacked
    (fastpath._in_blocks)."""
    B, T, D = x.shape
    W, Ut = cell.W, np.ascontiguousarray(cell.U.T)

    def products(rows):
        b = rows.stop - rows.start
        h = np.zeros((cell.units, b), np.float32)
        z = np.empty((Ut.shape[0], b), np.float32)
        product = fastpath._in_blocks(Ut, z, b, threads.unpacked_macs())
        np.ascontiguousarray(x[rows].transpose(1, 0, 2)).reshape(T * b, D) @ W
        for _ in range(T):
            product(h, z)

    def run():
        with threads.limited(B * cell.U.size, B) as parts:
            if parts == 1:
                return products(slice(0, B))
            cuts = np.linspace(0, B, parts + 1).astype(int)
            with ThreadPoolExecutor(parts) as pool:
                list(pool.map(products, [slice(cuts[k], cuts[k + 1]) for k in range(parts)]))

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
    # Pool threads that spin after a run take the CPU from whatever is timed next (lstmctl ran 2x
    # slower right after onnxruntime than alone); a user's process does not interleave the two.
    opts.add_session_config_entry("session.intra_op.allow_spinning", os.environ.get("BENCH_ORT_SPIN", "0"))
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
QUICK_PEERS = ("onnxruntime",)


def measure(fns, reps):
    """{name: [ms, …]}: the functions timed in turn, one call each per round (the order rotating),
    so a change in the machine's load reaches all of them alike."""
    names = list(fns)
    for fn in fns.values():
        fn()  # warm up
    times = {name: [] for name in names}
    for r in range(reps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append((time.perf_counter() - t0) * 1000)
    return times


def p50_p95(values):
    q = statistics.quantiles(values, n=20, method="inclusive")
    return statistics.median(values), q[18]


class Spinners:
    """As many CPU-bound processes as CPUs this process may use: the busy machine."""

    def __init__(self, n):
        self.n, self.procs = n, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        time.sleep(1.0)  # let them take their cores (and the load average see them)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def forward_rows(args, busy):
    """One row per case: p50/p95 of lstmctl, its peers and the GEMM bound, timed interleaved."""
    rows = []
    for kind, B, T, D, H in CASES if not args.quick else CASES[:2]:
        if args.only and kind != args.only:
            continue
        cell, x = make(kind, B, T, D, H)
        fns = {"lstmctl": lstmctl_forward(cell, x), "GEMM bound": gemm_bound(cell, x)}
        want = fns["lstmctl"]()
        np.testing.assert_allclose(reference_forward(cell, x)(), want, atol=1e-5)
        if not args.quick:
            fns["reference"] = reference_forward(cell, x)
        for name, factory in PEERS.items():
            if args.quick and name not in QUICK_PEERS:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fn = factory(cell, x)
                    got = fn()
            except ImportError as exc:
                print(f"  ({name} not installed: {exc.name})", file=sys.stderr)
                continue
            err = float(np.abs(got - want).max())
            if err > 1e-4:
                raise SystemExit(f"{name} disagrees with lstmctl on {kind} B{B}: max |diff| {err:.3g}")
            fns[name] = fn
        before = os.getloadavg()[0]
        times = measure(fns, args.reps * (10 if B * H < 4096 else 1))
        rows.append({"case": f"{CASES_NAME[kind]} B{B} T{T} D{D} H{H}", "busy": busy, "load": (before, os.getloadavg()[0]), "times": times})
        print(f"  {rows[-1]['case']} {'busy' if busy else 'as is'}: " + ", ".join(f"{n} {p50_p95(t)[0]:.2f}" for n, t in times.items()), file=sys.stderr)
    return rows


CASES_NAME = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}


def markdown(rows):
    names = [n for n in ("lstmctl", "GEMM bound", "onnxruntime", "torch", "keras", "reference") if any(n in r["times"] for r in rows)]
    head = "| case | machine (1-min load before → after) | " + " | ".join(f"{n} p50 / p95 ms" for n in names) + " | lstmctl / onnxruntime p50 (p95) | lstmctl / GEMM bound p50 |"
    lines = [head, "|---|---|" + "---:|" * (len(names) + 2)]
    for r in rows:
        t = r["times"]
        cells = [f"{p50_p95(t[n])[0]:.2f} / {p50_p95(t[n])[1]:.2f}" if n in t else "-" for n in names]
        ours = p50_p95(t["lstmctl"])
        ort = f"{ours[0] / p50_p95(t['onnxruntime'])[0]:.2f}× ({ours[1] / p50_p95(t['onnxruntime'])[1]:.2f}×)" if "onnxruntime" in t else "-"
        bound = f"{ours[0] / p50_p95(t['GEMM bound'])[0]:.2f}×"
        machine = f"{'busy' if r['busy'] else 'as found'} ({r['load'][0]:.1f} → {r['load'][1]:.1f})"
        lines.append(f"| {r['case']} | {machine} | " + " | ".join(cells) + f" | {ort} | {bound} |")
    return "\n".join(lines)


def concurrent_runs(n, reps, tmp):
    """`lstmctl run` on the B32 model (an .npz read with --convention keras) and 128 sequences:
    n processes side by side against the same n one after another, wall seconds (median of reps)."""
    cell, _ = make("lstm", 1, 1, 128, 256)
    model, x = os.path.join(tmp, "lstm_d128_h256.npz"), os.path.join(tmp, "x128.npy")
    np.savez(model, kernel=cell.W, recurrent_kernel=cell.U, bias=cell.bias)
    np.save(x, np.random.default_rng(1).standard_normal((128, 100, 128)).astype(np.float32))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # with the bytecode cache, as an installed lstmctl runs
    cmd = [sys.executable, "-m", "lstmctl", "run", model, "--convention", "keras", "--input", x, "--quiet", "--key", "output", "-o", os.path.join(tmp, "{}.npy")]

    def start(i):
        return subprocess.Popen([c.format(i) for c in cmd], env=env, stdout=subprocess.DEVNULL)

    def one_after_another():
        for i in range(n):
            if start(i).wait():
                raise SystemExit("lstmctl run failed")

    def side_by_side():
        procs = [start(i) for i in range(n)]
        if any(p.wait() for p in procs):
            raise SystemExit("lstmctl run failed")

    start(0).wait()  # writes the bytecode cache
    times = {"one after another": [], "side by side": []}
    for _ in range(reps):
        for name, fn in (("one after another", one_after_another), ("side by side", side_by_side)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, help="timed rounds per case (×10 for small cases; default 30, 20 with --quick)")
    ap.add_argument("--only", choices=sorted(K))
    ap.add_argument("--quick", action="store_true", help="the two LSTM cases against onnxruntime only, fewer rounds (under 2 minutes)")
    ap.add_argument("--no-busy", action="store_true", help="skip the busy column")
    ap.add_argument("--no-processes", action="store_true", help="skip the 4 concurrent `lstmctl run` processes")
    args = ap.parse_args(argv)
    if args.reps is None:
        args.reps = 20 if args.quick else 30
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, {cpus} CPUs, numpy {np.__version__}, Python {platform.python_version()}, lstmctl threads: {os.environ.get('LSTMCTL_THREADS', 'policy')}")
    rows = forward_rows(args, busy=False)
    if not args.no_busy:
        with Spinners(cpus):
            rows += forward_rows(args, busy=True)
    print("\n" + markdown(rows))
    if not args.no_processes:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            before = os.getloadavg()[0]
            walls = concurrent_runs(4, 3 if args.quick else 5, tmp)
            print(f"\n4 × `lstmctl run` (LSTM D128 H256, 128 sequences of 100 steps each), median wall s; 1-min load {before:.1f} → {os.getloadavg()[0]:.1f}\n")
            print("| 4 runs | wall s |\n|---|---:|")
            for name, wall in walls.items():
                print(f"| {name} | {wall:.2f} |")


if __name__ == "__main__":
    main()
