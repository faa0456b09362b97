"""Speed tricks behind the plain kernels (kernels.py stays the readable reference).

Measured by benchmarks/bench_forward.py and tested against kernels.reference_scan. The tricks:
- one matrix product projects every time step's input at once, laid out time-major;
- sigmoid(a) = 0.5 + 0.5·tanh(a/2): the sigmoid gates' columns are pre-scaled by 0.5 and
  re-ordered next to each other, so one tanh call covers all of a step's gates;
- every per-step operation writes into preallocated buffers (`out=`), and h_t is written
  straight into the output sequence.
Cores are BLAS's to use: splitting the batch across threads ourselves, with BLAS single-threaded,
was slower on every case measured on 2 cores (B32 H256 31 ms against 21 ms with OpenBLAS's own two
threads, B256 H512 610 against 360; benchmarks/bench_forward.py, 2026-12-04).
"""

import numpy as np


def supported(cell) -> bool:
    if hasattr(cell, "step"):  # a cell with its own math (ConvLSTM)
        return False
    if cell.kind == "simple_rnn":
        return cell.activation_name in ("tanh", "relu")
    return cell.activation_name == "tanh" and cell.recurrent_activation_name == "sigmoid"


def _lstm_prepared(cell):
    """W, U, b with columns [i, f, o | c] and the sigmoid columns halved; cached on the cell."""
    cached = getattr(cell, "_fast", None)
    if cached is None:
        u = cell.units
        order = np.r_[0:u, u : 2 * u, 3 * u : 4 * u, 2 * u : 3 * u]
        scale = np.ones(4 * u, cell.W.dtype)
        scale[: 3 * u] = 0.5
        b = cell.bias[order] * scale if cell.bias is not None else None
        cached = cell._fast = (cell.W[:, order] * scale, np.ascontiguousarray(cell.U[:, order] * scale), b)
    return cached


def _gru_prepared(cell):
    cached = getattr(cell, "_fast", None)
    if cached is None:
        u = cell.units
        scale = np.ones(3 * u, cell.W.dtype)
        scale[: 2 * u] = 0.5  # z, r are sigmoid gates
        b_in = cell.input_bias * scale if cell.input_bias is not None else None
        b_rec = cell.recurrent_bias * scale if cell.recurrent_bias is not None else None
        cached = cell._fast = (cell.W * scale, np.ascontiguousarray(cell.U * scale), b_in, b_rec)
    return cached


def _project(x, W, b, start, stop, backwards):
    """(time, batch, k·units) input projections of processing steps start..stop."""
    steps = x.shape[1]
    block = x[:, steps - stop : steps - start][:, ::-1] if backwards else x[:, start:stop]
    xt = np.ascontiguousarray(block.transpose(1, 0, 2))
    xw = xt.reshape(-1, xt.shape[2]) @ W
    if b is not None:
        xw += b
    return xw.reshape(xt.shape[0], xt.shape[1], -1)


def _lstm(cell, xw, out, states):
    """Steps over projected inputs xw (time, batch, 4u), writing h_t into out[t]; returns states."""
    _, U, _ = _lstm_prepared(cell)
    u = cell.units
    batch = xw.shape[1]
    h, c = states
    z = np.empty((batch, 4 * u), xw.dtype)
    tmp = np.empty((batch, u), xw.dtype)
    i, f, o, c_tilde, sig = z[:, :u], z[:, u : 2 * u], z[:, 2 * u : 3 * u], z[:, 3 * u :], z[:, : 3 * u]
    clip = cell.cell_clip
    for k in range(xw.shape[0]):
        np.matmul(h, U, out=z)
        z += xw[k]
        np.tanh(z, out=z)
        sig *= 0.5
        sig += 0.5
        c *= f
        np.multiply(i, c_tilde, out=tmp)
        c += tmp
        if clip:
            np.clip(c, -clip, clip, out=c)
        h = out[k]
        np.tanh(c, out=h)
        h *= o
    return h, c


def _gru(cell, xw, out, states):
    _, U, _, b_rec = _gru_prepared(cell)
    u = cell.units
    batch = xw.shape[1]
    (h,) = states
    rec = np.empty((batch, 3 * u), xw.dtype)
    tmp = np.empty((batch, u), xw.dtype)
    zr, z, r = rec[:, : 2 * u], rec[:, :u], rec[:, u : 2 * u]
    if cell.reset_after:
        cand = rec[:, 2 * u :]
        for k in range(xw.shape[0]):
            np.matmul(h, U, out=rec)
            if b_rec is not None:
                rec += b_rec
            zr += xw[k, :, : 2 * u]
            np.tanh(zr, out=zr)
            zr *= 0.5
            zr += 0.5
            cand *= r  # r ⊙ (h·U_h + rb_h)
            cand += xw[k, :, 2 * u :]
            np.tanh(cand, out=cand)
            np.subtract(h, cand, out=tmp)  # h_t = h̃ + z ⊙ (h_{t−1} − h̃)
            tmp *= z
            h = out[k]
            np.add(cand, tmp, out=h)
    else:
        U_zr, U_h = np.ascontiguousarray(U[:, : 2 * u]), np.ascontiguousarray(U[:, 2 * u :])
        cand = np.empty((batch, u), xw.dtype)
        for k in range(xw.shape[0]):
            np.matmul(h, U_zr, out=zr)
            zr += xw[k, :, : 2 * u]
            np.tanh(zr, out=zr)
            zr *= 0.5
            zr += 0.5
            np.multiply(r, h, out=tmp)
            np.matmul(tmp, U_h, out=cand)
            cand += xw[k, :, 2 * u :]
            np.tanh(cand, out=cand)
            np.subtract(h, cand, out=tmp)
            tmp *= z
            h = out[k]
            np.add(cand, tmp, out=h)
    return (h,)


def _simple_rnn(cell, xw, out, states):
    (h,) = states
    relu = cell.activation_name == "relu"
    for k in range(xw.shape[0]):
        nxt = out[k]
        np.matmul(h, cell.U, out=nxt)
        nxt += xw[k]
        if relu:
            np.maximum(nxt, 0, out=nxt)
        else:
            np.tanh(nxt, out=nxt)
        h = nxt
    return (h,)


KERNELS = {"lstm": _lstm, "gru": _gru, "simple_rnn": _simple_rnn}
PREPARED = {  # (W, input bias) as the kernel wants them, computed once per cell
    "lstm": lambda cell: _lstm_prepared(cell)[0::2],
    "gru": lambda cell: _gru_prepared(cell)[0::2],
    "simple_rnn": lambda cell: (cell.W, cell.input_bias),
}
BLOCK_BYTES = 32 << 20  # input projections computed this many bytes of steps at a time


def _run(cell, x, states, backwards, keep_sequence, progress):
    """One batch slice: time blocks of projected inputs, the recurrence through them."""
    W, b = PREPARED[cell.kind](cell)
    (batch, steps), u = x.shape[:2], cell.units
    width = W.shape[1]
    block = max(1, min(steps, BLOCK_BYTES // max(1, batch * width * x.dtype.itemsize)))
    out = np.empty((steps if keep_sequence else min(block, steps) or 1, batch, u), x.dtype)
    states = tuple(s.copy() for s in states)  # the kernels update c in place
    for start in range(0, steps, block):
        stop = min(steps, start + block)
        xw = _project(x, W, b, start, stop, backwards)
        target = out[start:stop] if keep_sequence else out[: stop - start]
        states = KERNELS[cell.kind](cell, xw, target, states)
        states = tuple(s.copy() if s.base is out else s for s in states)  # h must outlive `out` reuse
        if progress is not None:
            progress(stop - start)
    return (out if keep_sequence else None), states


def scan(cell, x, states, go_backwards=False, keep_sequence=True, progress=None):
    """The same result as kernels.reference_scan without mask or trace: (batch, time, units)
    outputs in the order produced (None when keep_sequence is False), and the final states."""
    out, final = _run(cell, x, states, go_backwards, keep_sequence, progress)
    return (out.transpose(1, 0, 2) if out is not None else None), final
