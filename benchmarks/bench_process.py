"""Whole-process cost: wall time and peak memory of lstmctl commands against Keras load + predict.

    python benchmarks/bench_process.py [--reps 7] [--keras-python PATH]

Each command runs in a fresh process; peak memory is the child's maximum resident set size
(getrusage), wall time the median over --reps runs. The Keras row needs a Python with TensorFlow
(--keras-python, default: this one); it is skipped when TensorFlow is missing there.
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


def measure(cmd, reps):
    walls, peaks = [], []
    subprocess.run(cmd, capture_output=True, cwd=ROOT, env=ENV)  # writes the bytecode cache
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, cwd=ROOT, check=True, env=ENV)
        code, wall, peak_kib = out.stdout.split()
        if code != "0":
            raise SystemExit(f"{' '.join(cmd)} exited {code}")
        walls.append(float(wall))
        peaks.append(int(peak_kib) / 1024)
    return statistics.median(walls), max(peaks)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--keras-python", default=sys.executable)
    args = ap.parse_args(argv)
    script = shutil.which("lstmctl", path=os.path.dirname(sys.executable))
    if script is None:  # not installed here: the source tree's package, as `python -m lstmctl`
        ENV["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(ROOT), ENV.get("PYTHONPATH")]))
    lstmctl = [script] if script else [sys.executable, "-m", "lstmctl"]
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
    print(f"{'command':40s} {'wall s':>8s} {'peak MiB':>9s}")
    for name, cmd in rows:
        wall, peak = measure(cmd, args.reps if "Keras" not in name else max(2, args.reps // 3))
        print(f"{name:40s} {wall:8.3f} {peak:9.1f}")
    if not has_tf:
        print("(Keras row skipped: no TensorFlow in --keras-python)")


if __name__ == "__main__":
    main()
