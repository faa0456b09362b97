"""Whole-process cost: wall time and peak memory of lstmctl commands against Keras load + predict.

    python benchmarks/bench_process.py [--reps 7] [--keras-python PATH] [--before ROOT ...]

Each command runs in a fresh process; peak memory is the child's maximum resident set size
(getrusage), wall time the median over --reps runs. The Keras row needs a Python with TensorFlow
(--keras-python, default: this one); it is skipped when TensorFlow is missing there.
--before ROOT (repeatable) times the same lstmctl commands from other checkouts too (`git archive
REV | tar -x -C ROOT`), each as `python -m lstmctl` run in its own ROOT, this tree likewise, run
by run in turn so that a change in the machine's load reaches all of them alike.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SAMPLE = "sample_models/k3_lstm_dense.keras"
INPUT = "sample_models/k3_lstm_dense.input.npy"
LEGACY = "sample_models/k2_lstm_dense.h5"
KERAS_SCRIPT = f"""
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras
model = keras.models.load_model("{SAMPLE}", compile=False)
print(model.predict(np.load("{INPUT}"), verbose=0))
"""

MEASURE = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.perf_counter() - t0
print(code, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


# Timed with Python's bytecode cache, as after any first run of an installed lstmctl.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(cmd, reps, roots=(ROOT,)):
    """(median wall s, max peak MiB) of cmd run in each tree (its own directory and package), the
    trees taking turns run by run."""
    envs = [ENV if root == ROOT else tree_env(root) for root in roots]
    walls, peaks = [[] for _ in roots], [[] for _ in roots]
    for root, env in zip(roots, envs):
        subprocess.run(cmd, capture_output=True, cwd=root, env=env)  # writes the bytecode cache
    for _ in range(reps):
        for k, (root, env) in enumerate(zip(roots, envs)):
            out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, cwd=root, check=True, env=env)
            code, wall, peak_kib = out.stdout.split()
            if code != "0":
                raise SystemExit(f"{' '.join(cmd)} exited {code}")
            walls[k].append(float(wall))
            peaks[k].append(int(peak_kib) / 1024)
    return [(statistics.median(w), max(p)) for w, p in zip(walls, peaks)]


def tree_env(root):
    return {**ENV, "PYTHONPATH": os.pathsep.join(filter(None, [os.path.abspath(root), ENV.get("PYTHONPATH")]))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--keras-python", default=sys.executable)
    ap.add_argument("--before", action="append", default=[], metavar="ROOT", help="another checkout to time alongside (repeatable)")
    args = ap.parse_args(argv)
    script = None if args.before else shutil.which("lstmctl", path=os.path.dirname(sys.executable))
    if script is None:  # not installed here, or compared: the source tree's package, as `python -m lstmctl`
        ENV.update(tree_env(ROOT))
    lstmctl = [script] if script else [sys.executable, "-m", "lstmctl"]
    roots = [ROOT, *args.before]
    rows = [
        ("lstmctl --help", [*lstmctl, "--help"]),
        ("lstmctl inspect (small sample)", [*lstmctl, "inspect", SAMPLE]),
        ("lstmctl run (small sample)", [*lstmctl, "run", SAMPLE, "--input", INPUT]),
        ("lstmctl run --format npz (all keys)", [*lstmctl, "run", SAMPLE, "--input", INPUT, "--format", "npz", "-o", os.devnull]),
        ("lstmctl run (legacy .h5 sample)", [*lstmctl, "run", LEGACY]),
    ]
    has_tf = subprocess.run([args.keras_python, "-c", "import tensorflow"], capture_output=True).returncode == 0
    if has_tf:
        rows.append(("Keras load_model + predict", [args.keras_python, "-c", KERAS_SCRIPT]))
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, 1-min load {os.getloadavg()[0]:.1f}; median wall of {args.reps} runs, peak RSS")
    print(f"{'command':40s} {'wall s':>8s} {'peak MiB':>9s}" + "".join(f"  {os.path.basename(os.path.normpath(r))[:14]:>14s} s" for r in args.before))
    for name, cmd in rows:
        if "Keras" in name:
            (wall, peak), others = measure(cmd, max(2, args.reps // 3))[0], []
        else:
            (wall, peak), *others = measure(cmd, args.reps, roots)
        print(f"{name:40s} {wall:8.3f} {peak:9.1f}" + "".join(f"  {w:16.3f}" for w, _ in others))
    if not has_tf:
        print("(Keras row skipped: no TensorFlow in --keras-python)")


if __name__ == "__main__":
    main()
