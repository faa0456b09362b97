"""Files of 10^5 tensors (issue 27: a safetensors file of 150k tensors took over a minute): inspect
reads them in one pass over the header, checks the small tensors for NaN and infinity together,
probes the shapes of the listed layers only and summarises the rest, and still refuses what it
refused one tensor at a time. Speed itself is measured by benchmarks/bench_large_files.py, not here.
"""

import gc
import json
import struct

import numpy as np
import pytest

import lstmctl
from lstmctl import budget
from lstmctl.analysis.describe import inspect_facts
from lstmctl.runner import probe_shapes
from test_hostile import cli, fails


def _lstm() -> dict:
    r = np.random.default_rng(0)
    shapes = {"weight_ih_l0": (12, 2), "weight_hh_l0": (12, 3), "bias_ih_l0": (12,), "bias_hh_l0": (12,)}
    return {f"rnn.{k}": r.normal(size=s).astype("<f4") for k, s in shapes.items()}


def safetensors(path, tensors: dict):
    """A safetensors file of float32 tensors, written in one go (json.dumps of 10^5 entries)."""
    header, at = {}, 0
    for name, a in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [at, at + a.nbytes]}
        at += a.nbytes
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(a.astype("<f4").tobytes() for a in tensors.values()))
    return path


def many(path, n: int, **special):
    """An nn.LSTM, then one-element modules m0.weight … up to `n` tensors in all; `special`
    replaces some of them (m<i>=array)."""
    tensors = _lstm()
    tensors.update({f"m{i}.weight": special.get(f"m{i}", np.full(1, i, np.float32)) for i in range(n - len(tensors))})
    return safetensors(path, tensors)


def test_inspect_of_100k_tensors_lists_100_and_counts_the_rest(tmp_path):
    path = many(tmp_path / "big.safetensors", 100_000)
    result = cli("inspect", path, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    modules = 100_000 - 4  # the nn.LSTM's four tensors are one module
    layers = 1 + 1 + modules  # the input, the LSTM, one opaque layer per module
    assert f"the first 100 of {layers:,} layers are listed; {layers - 100:,} more ({layers - 100:,} torch module): --all lists every one" in result.stdout
    assert f"{72 + modules:,} parameters" in result.stdout  # 12·2 + 12·3 + 12 (the two biases summed) + one per module
    # the chain note names the first 12 modules and counts them all, rather than naming 10^5
    assert "modules chained in the file's order (rnn → m0 → m1 → m2 → m3 → m4 → m5 → m6 → m7 → m8 → m9 → m10 → … (99,997 modules in all))" in result.stdout
    assert "m97: tensors weight (1,): not a module lstmctl computes; run stops at it" in result.stdout
    assert "m98:" not in result.stdout  # the 101st layer on: counted, not drawn


@pytest.mark.parametrize("bad", [np.array([np.nan], np.float32), np.full((300, 300), np.inf, np.float32)], ids=["small", "large"])
def test_a_nonfinite_tensor_among_many_is_still_named(tmp_path, bad):
    """The small tensors are checked joined in one buffer, the large ones (over
    JOINED_CHECK_ELEMENTS, as 300 × 300 is) alone: either way, the tensor that holds a NaN or an
    infinity is the one named."""
    path = many(tmp_path / "nan.safetensors", 2000, m1234=bad)
    fails("inspect", path, contains=[f"{path}: 'm1234.weight' holds non-finite values"])


def test_finite_tensors_of_every_size_pass(tmp_path):
    path = many(tmp_path / "ok.safetensors", 300, m7=np.ones((300, 300), np.float32), m8=np.zeros((0, 4), np.float32))
    m = lstmctl.load(path)
    assert [layer.name for layer in m.layers[:5]] == ["input", "rnn", "m0", "m1", "m2"]
    assert m.layer("m7").weights[0].shape == (300, 300)


def test_shapes_are_probed_for_the_listed_layers_only(tmp_path):
    """A chain of 300 nn.Linear(3, 3) after an nn.LSTM: inspect's first 100 rows have their shapes,
    and the probe ran no further than they need."""
    tensors = _lstm()
    for i in range(300):
        tensors.update({f"fc{i}.weight": np.eye(3, dtype=np.float32), f"fc{i}.bias": np.full(3, 0.5, np.float32)})
    m = lstmctl.load(safetensors(tmp_path / "chain.safetensors", tensors))
    facts = inspect_facts(m, limit=100)
    listed = facts["layers"]
    assert [f["name"] for f in listed[:3]] == ["input", "rnn", "fc0"] and listed[-1]["name"] == "fc97"
    assert listed[-1]["input_shapes"] == [[None, None, 3]] and listed[-1]["output_shapes"] == [[None, None, 3]]
    assert listed[-1]["inbound"] == ["fc96"]
    assert facts["unlisted"] == {"layers": 202, "recurrent": 0, "classes": {"Dense": 202}}
    probed = {name for name, _ in probe_shapes(m, {f["name"] for f in listed})}
    assert probed == {f["name"] for f in listed} - {"input"}


@pytest.mark.parametrize("enabled", [True, False])
def test_reading_a_port_leaves_the_cycle_collector_as_it_was(tmp_path, enabled):
    path = many(tmp_path / "m.safetensors", 10)
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        lstmctl.load(path)
        assert gc.isenabled() == enabled
    finally:
        gc.enable() if was else gc.disable()


def test_shapes_at_the_dimension_cap():
    """check_shape's one-pass path for plain ints keeps the budget's edges."""
    cap = budget.limit("dimension")
    assert budget.check_shape([cap, 0], "f") == (cap, 0)
    with pytest.raises(lstmctl.LstmctlError, match="elements along one dimension is over"):
        budget.check_shape([cap + 1, 0], "f")
    assert budget.check_shape(np.array([2, 3]), "f") == (2, 3)  # NumPy integers: the checked path
    assert all(type(d) is int for d in budget.check_shape(np.array([2, 3]), "f"))
