"""Inputs larger than memory: peak resident memory of `lstmctl run` on a huge .npy.

    python benchmarks/bench_scale.py [--gib 10] [--dir /tmp]

Writes a random (N, 6, 4) float32 .npy of about --gib GiB for sample_models/k3_lstm_dense.keras
(in pieces, never whole in memory), runs `lstmctl run … --key output --format npy -o out.npy` in a
child process, and reports wall time, peak RSS and a check of the first rows against an in-memory
run. Both files are deleted afterwards.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
SAMPLE = os.path.join(ROOT, "sample_models", "k3_lstm_dense.keras")
MEASURE = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.call(sys.argv[1:])
print(code, time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=10.0)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args(argv)
    lstmctl = shutil.which("lstmctl", path=os.path.dirname(sys.executable)) or shutil.which("lstmctl")
    work = tempfile.mkdtemp(dir=args.dir, prefix="lstmctl-scale-")
    try:
        rows = int(args.gib * (1 << 30) // (6 * 4 * 4))
        x_path, out_path = os.path.join(work, "x.npy"), os.path.join(work, "out.npy")
        x = np.lib.format.open_memmap(x_path, mode="w+", dtype=np.float32, shape=(rows, 6, 4))
        rng = np.random.default_rng(0)
        piece = 1 << 20
        for start in range(0, rows, piece):
            stop = min(rows, start + piece)
            x[start:stop] = rng.standard_normal((stop - start, 6, 4), dtype=np.float32)
        x.flush()
        head = np.array(x[:1000])
        del x
        # Measured from a small wrapper: a child forked from this process would count this
        # process's memory in its own high-water mark.
        cmd = [lstmctl, "run", SAMPLE, "--input", x_path, "--key", "output", "--format", "npy", "-o", out_path, "--quiet"]
        report = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, check=True).stdout.split()
        code, wall, peak = int(report[0]), float(report[1]), int(report[2]) / 1024
        if code:
            raise SystemExit(f"lstmctl exited {code}")
        import lstmctl as lib

        out = np.load(out_path, mmap_mode="r")
        want = lib.load(SAMPLE).run(head)["output"]
        err = float(np.abs(np.asarray(out[:1000]) - want).max())
        size = os.path.getsize(x_path) / (1 << 30)
        print(f"# {time.strftime('%Y-%m-%d')}: input {size:.2f} GiB ({rows:,} samples of 6x4 float32)")
        print(f"lstmctl run: {wall:.1f} s wall, peak RSS {peak:.0f} MiB, output {out.shape}, first 1000 rows max |diff| vs in-memory run {err:.1e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
