"""Run lstmctl over shards of a large input with Dask, one task per shard.

    python examples/dask_shards.py MODEL OUT_DIR SHARD.npy [SHARD.npy ...]

Each task loads the model itself (a few milliseconds, no TensorFlow) and writes its shard's
results to OUT_DIR/<i>.npz. With `dask.distributed`, the same tasks run on a cluster: start a
`Client("scheduler-address:8786")` first, install lstmctl on the workers, and put the model and
shards where every worker can read them.
"""

import os
import sys

import dask
import numpy as np
from threadpoolctl import threadpool_limits

import lstmctl
import lstmctl.threads


def run_shard(model_path: str, shard_path: str, out_path: str, keys=("output",), threads=1) -> str:
    """One task. Dask runs a task per CPU at once, so each computes on one thread (`threads`):
    more would fight the other tasks for the cores (docs/speed.md)."""
    model = lstmctl.load(model_path)
    x = np.load(shard_path, allow_pickle=False)
    with lstmctl.threads.use(threads):
        result = model.run(x, sequences=any(k.endswith("/sequence") for k in keys))
    np.savez(out_path, **{k: result[k] for k in keys})
    return out_path


def run_all(model_path, shard_paths, out_dir, keys=("output",), scheduler="processes", threads=1):
    tasks = [dask.delayed(run_shard)(model_path, p, os.path.join(out_dir, f"{i}.npz"), keys, threads) for i, p in enumerate(shard_paths)]
    # The threads scheduler's tasks share this process's BLAS, whose number of threads only
    # this (the main) thread sets: `threads` for each of them.
    with threadpool_limits(limits=threads, user_api="blas"):
        return list(dask.compute(*tasks, scheduler=scheduler))


if __name__ == "__main__":
    model, out_dir, *shards = sys.argv[1:]
    os.makedirs(out_dir, exist_ok=True)
    for path in run_all(model, shards, out_dir):
        print(path)
