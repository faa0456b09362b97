"""The fast path against the plain reference kernel (which the parity tests tie to Keras)."""

import dataclasses
import numpy as np
import pytest

from lstmctl import fastpath, kernels
from lstmctl.errors import LstmctlError
from lstmctl.gates import make_cell


def cell_and_input(kind, batch, steps, reset_after=True, activation="tanh", dtype=np.float32, seed=0, use_bias=True):
    rng = np.random.default_rng(seed)
    k = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind]
    u, d = 5, 3
    bias = rng.standard_normal((2, k * u) if kind == "gru" and reset_after else (k * u,))
    weights = [rng.standard_normal((d, k * u)), rng.standard_normal((u, k * u)), bias][: 3 if use_bias else 2]
    cell = make_cell(kind, u, [w.astype(dtype) for w in weights], where="t", activation=activation,
                     recurrent_activation="sigmoid", use_bias=use_bias, reset_after=reset_after, keras_major=3)  # fmt: skip
    x = rng.standard_normal((batch, steps, d)).astype(dtype)
    states = tuple(rng.standard_normal((batch, u)).astype(dtype) for _ in cell.state_names)
    return cell, x, states


CASES = [("lstm", True, "tanh"), ("gru", True, "tanh"), ("gru", False, "tanh"), ("simple_rnn", False, "tanh"), ("simple_rnn", False, "relu")]


@pytest.mark.parametrize("kind, reset_after, activation", CASES)
@pytest.mark.parametrize("batch", [1, 3, 70])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("fused", [True, False])  # at batch 1, an LSTM's input projection in each step's product, or not
@pytest.mark.parametrize("unpacked", [0, 1])  # an LSTM's recurrent product in row blocks (16 + 4 rows of U^T), or whole
def test_fast_path_equals_reference(kind, reset_after, activation, batch, go_backwards, use_bias, fused, unpacked, monkeypatch):
    monkeypatch.setattr(fastpath, "BLOCK_BYTES", 256)  # many small time blocks
    if not fused:
        monkeypatch.setattr(fastpath, "FUSED_BYTES", 0)
    cell, x, states = cell_and_input(kind, batch, 9, reset_after, activation, use_bias=use_bias)
    assert fastpath.supported(cell)
    want_seq, want_states = kernels.reference_scan(cell, x, states, go_backwards=go_backwards)
    seq, final = fastpath.scan(cell, x, states, go_backwards=go_backwards, unpacked=unpacked * 16 * batch * cell.units)
    np.testing.assert_allclose(seq, want_seq, atol=2e-6)
    for a, b in zip(final, want_states):
        np.testing.assert_allclose(a, b, atol=2e-6)
    none, final2 = fastpath.scan(cell, x, states, go_backwards=go_backwards, keep_sequence=False)
    assert none is None
    for a, b in zip(final2, want_states):
        np.testing.assert_allclose(a, b, atol=2e-6)
    for s, s0 in zip(states, cell_and_input(kind, batch, 9, reset_after, activation, use_bias=use_bias)[2]):
        np.testing.assert_array_equal(s, s0)  # the caller's initial states are left alone


def test_row_blocks_of_the_recurrent_product():
    A = np.arange(40 * 8, dtype=np.float32).reshape(40, 8)
    v = np.ones((8, 3), np.float32)
    out = np.empty((40, 3), np.float32)
    product = fastpath._in_blocks(A, out, 3, 16 * 3 * 8)  # blocks of 16, 16 and 8 rows
    assert product.__name__ == "product"
    product(v, out)
    np.testing.assert_array_equal(out, A @ v)
    for unpacked in (0, 15 * 3 * 8, 40 * 3 * 8):  # blocks under 16 rows, or the whole already small: A.dot itself
        assert fastpath._in_blocks(A, out, 3, unpacked) == A.dot


def test_a_small_lstm_at_batch_1_multiplies_its_inputs_in_each_step():
    """[U^T | W^T | b] for a cell up to FUSED_BYTES, U^T alone above it (both Fortran order)."""
    small = cell_and_input("lstm", 1, 2)[0]
    fastpath.scan(small, *cell_and_input("lstm", 1, 2)[1:])
    assert small._fast_vector.shape == (20, 5 + 3 + 1) and small._fast_vector.flags.f_contiguous
    rng = np.random.default_rng(1)
    big = make_cell("lstm", 128, [rng.standard_normal(s).astype(np.float32) for s in ((64, 512), (128, 512), (512,))], where="t",
                    activation="tanh", recurrent_activation="sigmoid", use_bias=True, reset_after=False, keras_major=3)  # fmt: skip
    x = rng.standard_normal((1, 4, 64)).astype(np.float32)
    seq, _ = fastpath.scan(big, x, (np.zeros((1, 128), np.float32),) * 2)
    assert big._fast_vector.shape == (512, 128) and big._fast_vector.flags.f_contiguous
    np.testing.assert_allclose(seq, kernels.reference_scan(big, x, (np.zeros((1, 128), np.float32),) * 2)[0], atol=1e-5)


@pytest.mark.parametrize("kind, reset_after, activation", CASES)
@pytest.mark.parametrize("parts", [2, 3, 8])
def test_batch_slices_on_threads_equal_reference(kind, reset_after, activation, parts, monkeypatch):
    monkeypatch.setattr(fastpath, "BLOCK_BYTES", 256)
    cell, x, states = cell_and_input(kind, 7, 9, reset_after, activation)
    want_seq, want_states = kernels.reference_scan(cell, x, states, go_backwards=True)
    seq, final = fastpath.scan(cell, x, states, go_backwards=True, parts=parts)
    np.testing.assert_allclose(seq, want_seq, atol=2e-6)
    for a, b in zip(final, want_states):
        np.testing.assert_allclose(a, b, atol=2e-6)
    steps = []
    none, final2 = fastpath.scan(cell, x, states, go_backwards=True, keep_sequence=False, progress=steps.append, parts=parts)
    assert none is None and sum(steps) == 9  # the steps reported once, not once a slice
    for a, b in zip(final2, want_states):
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_float64_stays_float64():
    cell, x, states = cell_and_input("lstm", 2, 4, dtype=np.float64)
    seq, _ = fastpath.scan(cell, x, states)
    assert seq.dtype == np.float64
    np.testing.assert_allclose(seq, kernels.reference_scan(cell, x, states)[0], atol=1e-12)


def test_unsupported_activations_use_the_reference():
    cell, x, states = cell_and_input("lstm", 2, 4)
    hard = make_cell("lstm", 5, [cell.W, cell.U, cell.bias], where="t", activation="tanh", recurrent_activation="hard_sigmoid",
                     use_bias=True, reset_after=False, keras_major=3)  # fmt: skip
    assert not fastpath.supported(hard)


def test_zero_steps():
    cell, x, states = cell_and_input("lstm", 2, 0)
    seq, final = fastpath.scan(cell, x, states)
    assert seq.shape == (2, 0, 5)
    np.testing.assert_array_equal(final[0], states[0])


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_cell_clip_equals_the_clipped_reference(batch, go_backwards):
    cell, x, states = cell_and_input("lstm", batch, 12, seed=3)
    x = x * 4  # drives c past the clip
    clip = 0.8
    clipped = dataclasses.replace(cell, cell_clip=clip)
    want_seq, want_states = kernels.reference_scan(clipped, x, states, go_backwards=go_backwards)
    for parts in (1, 2):  # one thread, or batch slices on threads of their own
        seq, final = fastpath.scan(clipped, x, states, go_backwards=go_backwards, parts=parts)
        np.testing.assert_allclose(seq, want_seq, atol=2e-6)
        for a, b in zip(final, want_states):
            np.testing.assert_allclose(a, b, atol=2e-6)
    assert np.abs(final[1]).max() == pytest.approx(clip)  # the clip was reached
    unclipped = kernels.reference_scan(cell, x, states, go_backwards=go_backwards)
    assert np.abs(unclipped[1][1]).max() > clip + 0.1


def test_cell_clip_reference_clips_each_step():
    """The reference's clip against the update written out by hand: c_t = clip(f·c + i·g)."""
    cell, x, states = cell_and_input("lstm", 2, 6, seed=4)
    x = x * 4
    clip = 0.5
    h, c = states
    sig = kernels.sigmoid
    for t in range(x.shape[1]):
        z = x[:, t] @ cell.W + cell.bias + h @ cell.U
        i, f, g, o = np.split(z, 4, axis=-1)
        c = np.clip(sig(f) * c + sig(i) * np.tanh(g), -clip, clip)
        h = sig(o) * np.tanh(c)
    _, (h_ref, c_ref) = kernels.reference_scan(dataclasses.replace(cell, cell_clip=clip), x, states)
    np.testing.assert_allclose(h_ref, h, atol=1e-6)
    np.testing.assert_allclose(c_ref, c, atol=1e-6)


def test_cell_clip_is_for_lstm_only():
    cell, x, states = cell_and_input("gru", 2, 3)
    with pytest.raises(LstmctlError, match="cell_clip"):
        kernels.scan(dataclasses.replace(cell, cell_clip=1.0), x, states)


def test_an_interrupted_scan_stops_its_other_slices(monkeypatch):
    """Ctrl-C reaches the main thread's slice: the other slices stop at their next time block
    instead of running to the end of the input."""
    import threading

    monkeypatch.setattr(fastpath, "BLOCK_BYTES", 64)  # one step a block
    cell, x, states = cell_and_input("lstm", 2, 2000)
    interrupted, running = threading.Event(), threading.Event()
    worker_blocks = []

    def progress(n):  # the main thread's slice, after its first block, once the other one runs
        assert running.wait(10)
        interrupted.set()
        raise KeyboardInterrupt

    real = fastpath._inputs  # each time block's inputs, read by either batch-1 path

    def inputs(*a):
        if threading.current_thread() is not threading.main_thread():
            worker_blocks.append(a[1])  # start
            if len(worker_blocks) == 3:  # hold the other slice until the main one is interrupted
                running.set()
                assert interrupted.wait(10)
        return real(*a)

    monkeypatch.setattr(fastpath, "_inputs", inputs)
    with pytest.raises(KeyboardInterrupt):
        fastpath.scan(cell, x, states, progress=progress, parts=2)
    assert 3 <= len(worker_blocks) < 50  # of 2000 had it run to the end
