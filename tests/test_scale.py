"""Inputs larger than memory (memory-mapped, chunked, streamed) and very long sequences."""

import os
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from lstmctl import fastpath
from lstmctl.arrays import stream
from lstmctl.cli import main
from lstmctl.gates import make_cell
from conftest import expected, keras_inputs, keras_results, sample


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("name", ["k3_lstm_dense.keras", "k3_bidir.keras", "k3_masked.keras"])
def test_chunked_streamed_run_equals_keras(tmp_path, name):
    exp = expected(name)
    (x,) = keras_inputs(exp).values()
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "r.npz"
    r = invoke("run", sample(name), "--input", tmp_path / "x.npy", "--chunk", 2, "--format", "npz", "-o", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as got:
        for key, value in keras_results(exp).items():
            np.testing.assert_allclose(got[key], value, atol=1e-5, err_msg=key)
    assert sorted(os.listdir(tmp_path)) == ["r.npz", "x.npy"]  # no temporary files left


def test_streamed_single_key_npy_and_named_inputs(tmp_path):
    exp = expected("k3_encdec.keras")
    args = []
    for name, array in keras_inputs(exp).items():
        np.save(tmp_path / f"{name}.npy", array)
        args += ["--input", f"{name}={tmp_path / name}.npy"]
    out = tmp_path / "h.npy"
    r = invoke("run", sample("k3_encdec.keras"), *args, "--chunk", 1, "--key", "encoder/h", "--format", "npy", "-o", out)
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(np.load(out), exp["encoder/h"], atol=1e-5)


def test_streamed_run_needs_a_file_and_cleans_up_on_error(tmp_path):
    x = keras_inputs(expected("k3_lstm_dense.keras"))["input_layer"]
    np.save(tmp_path / "x.npy", x)
    r = invoke("run", sample("k3_lstm_dense.keras"), "--input", tmp_path / "x.npy", "--chunk", 2, "--format", "npz")
    assert r.exit_code == 2 and "--output" in r.stderr
    bad = x.copy()
    bad[2, 1, 0] = np.nan  # in the second chunk: the first chunk was already written
    np.save(tmp_path / "bad.npy", bad)
    r = invoke("run", sample("k3_lstm_dense.keras"), "--input", tmp_path / "bad.npy", "--chunk", 2, "--format", "npz", "--strict", "-o", tmp_path / "r.npz")
    assert r.exit_code == 3 and "non-finite" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.npy", "x.npy"]


def test_row_reader_checks_the_header_and_reads_any_layout(tmp_path):
    p = tmp_path / "x.npy"
    a = np.arange(4 * 6 * 4, dtype=">f4").reshape(4, 6, 4)
    np.save(p, np.asfortranarray(a))
    np.testing.assert_array_equal(stream.NpyRows(str(p))[1:3], a[1:3])
    np.save(p, a)
    np.testing.assert_array_equal(stream.NpyRows(str(p))[2:4], a[2:4])
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 16])
    with pytest.raises(lstmctl.LstmctlError, match="declares"):
        stream.NpyRows(str(p))


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_long_sequence_without_sequences_uses_memory_independent_of_length(monkeypatch):
    monkeypatch.setattr(fastpath, "BLOCK_BYTES", 64 << 10)
    rng = np.random.default_rng(0)
    cell = make_cell("lstm", 8, [rng.standard_normal((4, 32)).astype(np.float32), rng.standard_normal((8, 32)).astype(np.float32) * 0.3,
                                 np.zeros(32, np.float32)], where="t", activation="tanh", recurrent_activation="sigmoid",
                     use_bias=True, reset_after=False, keras_major=3)  # fmt: skip
    states = (np.zeros((1, 8), np.float32), np.zeros((1, 8), np.float32))
    short = rng.standard_normal((1, 2_000, 4)).astype(np.float32)
    long = rng.standard_normal((1, 40_000, 4)).astype(np.float32)
    peak_short = _peak_bytes(lambda: fastpath.scan(cell, short, states, keep_sequence=False))
    peak_long = _peak_bytes(lambda: fastpath.scan(cell, long, states, keep_sequence=False))
    kept = _peak_bytes(lambda: fastpath.scan(cell, long, states, keep_sequence=True))
    assert peak_long < 2 * peak_short + (64 << 10)  # not 20x: bounded by the time block
    assert kept > 40_000 * 8 * 4  # keeping the sequence costs what it must


def test_run_without_sequences_leaves_them_out_but_matches_keras():
    exp = expected("k3_stack3.keras")
    result = lstmctl.load(sample("k3_stack3.keras")).run(keras_inputs(exp), sequences=False)
    assert "lstm_c/sequence" not in result and "lstm_a/sequence" in result  # lstm_a returns sequences
    for key in ("output", "lstm_c/h", "lstm_c/c"):
        np.testing.assert_allclose(result[key], exp[key], atol=1e-5)
