"""One loaded model used from many threads gives each thread the numbers one thread gets (the
fast path's prepared weights are an immutable tuple cached on the cell: computed twice at worst,
never seen half-made), and 20 command-line runs at once on this small machine all succeed."""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import lstmctl
from conftest import ROOT, expected, keras_inputs, sample

MODELS = ["k3_stack3.keras", "k2_gru.h5", "k3_bidir.keras", "k3_encdec.keras"]


@pytest.mark.parametrize("name", MODELS)
def test_eight_threads_get_the_numbers_of_one(name):
    inputs = keras_inputs(expected(name))
    rng = np.random.default_rng(0)
    feeds = [{k: (v + rng.standard_normal(v.shape).astype(v.dtype) * 0.1) for k, v in inputs.items()} for _ in range(16)]
    alone = [lstmctl.load(sample(name)).run(f) for f in feeds]  # a fresh model each time: nothing cached
    shared = lstmctl.load(sample(name))  # one model, its caches filled by whichever thread comes first
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(shared.run, feeds))
    for a, b in zip(alone, together):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_allclose(shared.run(inputs)["output" if "output" in alone[0] else "output_0"], expected(name)["output" if "output" in alone[0] else "output_0"], atol=1e-5)


def test_twenty_command_line_runs_at_once():
    name = "k3_lstm_dense.keras"
    args = [sys.executable, "-m", "lstmctl", "run", sample(name), "--input", sample("k3_lstm_dense.input.npy"), "--format", "json", "--key", "output"]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(20)]
    want = expected(name)["output"]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        np.testing.assert_allclose(np.array(json.loads(out)["output"], np.float32), want, atol=1e-5)
