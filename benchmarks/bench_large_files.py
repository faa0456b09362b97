"""`lstmctl inspect` of files holding 10^5 tensors or nodes, timed as a whole process (issue 27:
"inspect of a file with 100k tensors or nodes answers within 2 s").

    python benchmarks/bench_large_files.py [--reps 3] [--only safetensors-100k ...] [--before ROOT]

The files are built on the fly, in a temporary folder, without torch or onnx: each holds one small
nn.LSTM (or ONNX LSTM node), so it is a model lstmctl reads, and then one-element tensors or
Identity nodes up to the count. Each `inspect` runs in a fresh process (`python -m lstmctl`, with
this checkout first on the path); printed: a markdown table of the median wall seconds of --reps
runs, the exit code, and the machine's load average (os.getloadavg) before and after. --before
ROOT also times another checkout of lstmctl (say `git archive main | tar -x -C ROOT`) on the
same files, run for run, so that both see the same load.
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from portwire import node, onnx_model, onnx_tensor, state_dict_pickle, tensor_pickle, torch_zip, value_info  # noqa: E402


def _lstm(units=3, features=2) -> dict:
    """One nn.LSTM level's tensors, random weights."""
    r = np.random.default_rng(0)
    shapes = {"weight_ih_l0": (4 * units, features), "weight_hh_l0": (4 * units, units), "bias_ih_l0": (4 * units,), "bias_hh_l0": (4 * units,)}
    return {f"rnn.{k}": r.normal(size=s).astype("<f4") for k, s in shapes.items()}


def _tensors(n: int) -> dict:
    """`n` tensors in all: the nn.LSTM's four, then one-element modules m0.weight, m1.weight, …"""
    tensors = _lstm()
    tensors.update({f"m{i}.weight": np.full(1, i, "<f4") for i in range(n - len(tensors))})
    return tensors


def _linears(n: int) -> dict:
    """`n` tensors in all: the nn.LSTM's four, then nn.Linear(3, 3) modules (weight and bias) that chain after it."""
    tensors = _lstm()
    for i in range((n - len(tensors)) // 2):
        tensors.update({f"fc{i}.weight": np.full((3, 3), 0.1, "<f4"), f"fc{i}.bias": np.full(3, i, "<f4")})
    return tensors


def safetensors(path, n, make=_tensors):
    header, at = {}, 0
    tensors = make(n)
    for name, a in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [at, at + a.nbytes]}
        at += a.nbytes
    text = json.dumps(header).encode()
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text + b"".join(a.tobytes() for a in tensors.values()))


def torch_shared(path, n):
    """A torch.save zip whose `n` tensors are views of one storage (as a flattened parameter buffer
    saves): the zip holds one data member however many tensors."""
    tensors = _tensors(n)
    entries, at, numel = {}, 0, sum(t.size for t in tensors.values())
    for name, a in tensors.items():
        stride = tuple(int(np.prod(a.shape[j + 1 :])) for j in range(a.ndim))
        entries[name] = tensor_pickle("0", numel, at, a.shape, stride)
        at += a.size
    torch_zip(path, state_dict_pickle(entries), {"0": b"".join(a.tobytes() for a in tensors.values())})


def torch_storages(path, n):
    """A torch.save zip with one storage (one zip member) per tensor, as torch.save writes a state_dict."""
    tensors = _tensors(n)
    entries = {name: tensor_pickle(str(i), a.size, 0, a.shape, (1,) * a.ndim if a.ndim == 1 else (a.shape[1], 1)) for i, (name, a) in enumerate(tensors.items())}
    torch_zip(path, state_dict_pickle(entries), {str(i): a.tobytes() for i, a in enumerate(tensors.values())})


def onnx_identities(path, n):
    """An ONNX LSTM node, then a chain of Identity nodes: `n` nodes in all."""
    r = np.random.default_rng(0)
    inits = [onnx_tensor("W", r.normal(size=(1, 12, 2)).astype(np.float32)), onnx_tensor("R", r.normal(size=(1, 12, 3)).astype(np.float32))]
    nodes = [node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], name="lstm", hidden_size=3)]
    nodes += [node("Identity", [f"i{k - 1}" if k else "Y_h"], [f"i{k}"], name=f"id{k}") for k in range(n - 1)]
    with open(path, "wb") as fh:
        fh.write(onnx_model(nodes, [value_info("X", ["t", "b", 2])], [value_info(f"i{n - 2}", [])], inits))


CASES = {
    "safetensors-100k": ("safetensors, 100k tensors", safetensors, 100_000, "m.safetensors"),
    "safetensors-150k": ("safetensors, 150k tensors", safetensors, 150_000, "m.safetensors"),
    "safetensors-linear-100k": ("safetensors, 50k nn.Linear (100k tensors)", lambda path, n: safetensors(path, n, _linears), 100_000, "m.safetensors"),
    "torch-50k": ("torch.save zip, 50k tensors of one storage", torch_shared, 50_000, "m.pt"),
    "torch-100k": ("torch.save zip, 100k tensors of one storage", torch_shared, 100_000, "m.pt"),
    "torch-storages-100k": ("torch.save zip, 100k tensors, one storage each", torch_storages, 100_000, "m.pt"),
    "onnx-100k": ("ONNX, LSTM + 100k Identity nodes", onnx_identities, 100_000, "m.onnx"),
}


def inspect(root, path):
    """(wall seconds, exit code, the last line it printed) of `lstmctl inspect path` run from `root`."""
    env = dict(os.environ, PYTHONPATH=root, COLUMNS="120")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lstmctl", "inspect", path], env=env, cwd=root, capture_output=True, text=True)  # -m puts cwd first
    wall = time.perf_counter() - t0
    last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
    return wall, done.returncode, last[0] if last else ""


def cell(runs) -> str:
    """'1.23' (median seconds), with the exit code and what it said when it was not 0."""
    wall = statistics.median(r[0] for r in runs)
    _, code, last = runs[-1]
    return f"{wall:.2f}" if code == 0 else f"{wall:.2f} (exit {code}: {last.split(': ', 3)[-1][:60]}…)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=list(CASES), help="the cases to run (default: all)")
    ap.add_argument("--before", metavar="ROOT", help="another checkout of lstmctl to time on the same files")
    args = ap.parse_args(argv)
    roots = [args.before, ROOT] if args.before else [ROOT]
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.only or CASES:
            title, build, n, name = CASES[key]
            path = os.path.join(tmp, key + "-" + name)
            build(path, n)
            runs = [[] for _ in roots]
            for _ in range(args.reps):  # the checkouts alternate, so that both see the same load
                for root, done in zip(roots, runs):
                    done.append(inspect(root, path))
            rows.append(f"| {title} | {os.path.getsize(path) / 2**20:.1f} | " + " | ".join(cell(done) for done in runs) + " |")
            os.remove(path)
    print(f"`lstmctl inspect FILE`, whole process, median of {args.reps} runs; load average (1 min) {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} cores\n")
    print("| file | MiB | " + ("before s | after s |" if args.before else "seconds |"))
    print("|---|---:|" + "---:|" * len(roots))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
