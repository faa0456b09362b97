"""Reading a whole pickled module (`torch.save(model)`) of about 100 MB: time and memory.

    python benchmarks/bench_whole_module.py [--hidden 1400] [--form zip|legacy] [--reps 3]

Needs torch (the bench extra) to write the file. A user class holding an embedding, a 2-level
nn.LSTM of --hidden units and a Linear head is saved with torch.save(model); then each read runs
in a fresh child process (so its peak memory is its own): `lstmctl.load(path)`, which unpickles the
module tree as data, reads each storage once and builds the layers. Printed: the file's size, the
median seconds of --reps loads, and the child's peak resident memory above what it held after
importing lstmctl, as a multiple of the file's size (issue 26: under 1 s, at most 2x the file).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = """
import json, sys, time
import lstmctl, lstmctl.formats.ports, lstmctl.formats.torch_file, lstmctl.layers.recurrent, lstmctl.layers.core, numpy

def status(field):  # kB; VmHWM is this process's own high-water mark (ru_maxrss keeps the parent's across exec)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field + ":"))

before = status("VmRSS")
t0 = time.perf_counter()
m = lstmctl.load(sys.argv[1])
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "peak_kib": status("VmHWM") - before, "layers": len(m.layers)}))
"""


def write_model(path, hidden, form):
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(2000, 256)
            self.lstm = torch.nn.LSTM(256, hidden, num_layers=2, batch_first=True)
            self.fc = torch.nn.Linear(hidden, 2000)

    Net.__module__, Net.__qualname__ = "__main__", "Net"  # pickled by its class path, as a script's model is
    sys.modules["__main__"].Net = Net
    torch.save(Net(), path, _use_new_zipfile_serialization=form == "zip")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=1400)
    ap.add_argument("--form", choices=["zip", "legacy"], default="zip")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.pt")
        write_model(path, args.hidden, args.form)
        size = os.path.getsize(path)
        runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True, check=True).stdout) for _ in range(args.reps)]
    seconds = statistics.median(r["seconds"] for r in runs)
    peak = max(r["peak_kib"] for r in runs) * 1024
    print(f"whole module ({args.form}), {size / 1e6:.1f} MB, {runs[0]['layers']} layers: load {seconds:.3f} s (median of {args.reps}), peak memory +{peak / 1e6:.1f} MB = {peak / size:.2f}x the file")


if __name__ == "__main__":
    main()
