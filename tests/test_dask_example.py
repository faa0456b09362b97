"""examples/dask_shards.py: shards run as Dask tasks give Keras's outputs."""

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, expected, keras_inputs, sample

dask = pytest.importorskip("dask")
sys.path.insert(0, str(ROOT / "examples"))
import dask_shards  # noqa: E402


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_dask_shards_equal_keras(tmp_path, scheduler):
    exp = expected("k3_lstm_dense.keras")
    x = keras_inputs(exp)["input_layer"]
    shards = []
    for i, part in enumerate(np.array_split(x, 3)):
        shards.append(str(tmp_path / f"shard{i}.npy"))
        np.save(shards[-1], part)
    outs = dask_shards.run_all(sample("k3_lstm_dense.keras"), shards, str(tmp_path), keys=("output", "lstm/c"), scheduler=scheduler)
    got = [np.load(p) for p in outs]
    np.testing.assert_allclose(np.concatenate([g["output"] for g in got]), exp["output"], atol=1e-5)
    np.testing.assert_allclose(np.concatenate([g["lstm/c"] for g in got]), exp["lstm/c"], atol=1e-5)
    assert all(Path(p).parent == tmp_path for p in outs)


def test_each_task_computes_on_one_blas_thread(tmp_path, monkeypatch):
    """Dask runs a task per CPU at once: the example's tasks compute on one BLAS thread each, in
    a worker process's main thread (run_shard) as under the threads scheduler (run_all), even
    where BLAS had more (each scan would otherwise take every core)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from lstmctl import fastpath, threads

    seen = []
    real = fastpath.scan
    monkeypatch.setattr(fastpath, "scan", lambda *a, **k: (seen.append(threads.blas_threads()), real(*a, **k))[1])
    x = np.random.default_rng(0).standard_normal((4, 6, 4)).astype(np.float32)
    shards = []
    for i, part in enumerate(np.array_split(x, 2)):
        shards.append(str(tmp_path / f"shard{i}.npy"))
        np.save(shards[-1], part)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert threads.blas_threads() == 2
        dask_shards.run_shard(sample("k3_lstm_dense.keras"), shards[0], str(tmp_path / "a.npz"))
        dask_shards.run_all(sample("k3_lstm_dense.keras"), shards, str(tmp_path), scheduler="threads")
        assert threads.blas_threads() == 2  # restored after the tasks
    assert seen == [1, 1, 1]
