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
