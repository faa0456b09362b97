"""Speed tricks behind the plain kernels (kernels.py stays the readable reference).

Measured by benchmarks/bench_forward.py and tested against kernels.reference_scan. The tricks:
- one matrix product projects every time step's input at once, laid out time-major, with the
  bias as one more row of W (the inputs get a column of ones);
- sigmoid(a) = 0.5 + 0.5·tanh(a/2): the sigmoid gates' columns are pre-scaled by 0.5 and
  re-ordered next to each other, so one tanh call covers all of a step's gates;
- every per-step operation writes into preallocated buffers (`out=`), and h_t is written
  straight into the output sequence;
- the LSTM works gate-major, a step's values as (units, batch) columns: each gate is then one
  contiguous block (no strided rows), its recurrent product U^T·h was 27% faster than h·U at
  B32 H256, and c_t = f·c + i·c̃ is two calls (see _lstm). Its elementwise work went from 8.8 ms
  beyond the GEMM bound to about 2.6 ms at B32 H256; B1 went from 10 calls a step to 9;
- at batch 1 the step's product is a matrix-vector product: U^T is kept in Fortran order for it,
  and a small cell's [U^T | W^T | b] multiplies [h_{t-1}, x_t, 1], which takes the input
  projection into the step (8 calls a step; B1 H64 0.44 -> 0.37 ms with the bias row above);
- where OpenBLAS multiplies small products without packing them (threads.unpacked_macs), the
  LSTM's recurrent product is cut into row blocks that small (_in_blocks).
How many threads BLAS uses is lstmctl/threads.py's choice, made around each scan (kernels.scan).
"""

import itertools
import threading

import numpy as np


def supported(cell) -> bool:
    if hasattr(cell, "step"):  # a cell with its own math (ConvLSTM)
        return False
    if cell.kind == "simple_rnn":
        return cell.activation_name in ("tanh", "relu")
    return cell.activation_name == "tanh" and cell.recurrent_activation_name == "sigmoid"


def _lstm_prepared(cell):
    """W with its bias row (_with_bias) and U^T, with gates [g | f, i, o] (c̃ first) and the
    sigmoid gates halved; cached on the cell. W is stored transposed (W.T contiguous): the
    gate-major projection multiplies by W.T, the batch-1 one by W, and BLAS reads either
    without a copy."""
    cached = getattr(cell, "_fast", None)
    if cached is None:
        u = cell.units
        order = np.r_[2 * u : 3 * u, u : 2 * u, 0:u, 3 * u : 4 * u]
        scale = np.full(4 * u, 0.5, cell.W.dtype)
        scale[:u] = 1.0
        b = cell.bias[order] * scale if cell.bias is not None else None
        Wb = np.ascontiguousarray(_with_bias(cell.W[:, order] * scale, b).T).T
        cached = cell._fast = (Wb, np.ascontiguousarray((cell.U[:, order] * scale).T))
    return cached


# A batch-1 product matrix [U^T | W^T | b] up to this size takes the input projection into each
# step's product: 6-11% faster at H32 D16 and H64 D32 (24 and 97 KiB), 6-9% slower at H64 D128
# and H128 D64 (193 and 386 KiB), where the projection's one matrix product for all steps wins
# (2026-12-07, benchmarks/bench_forward.py's B1 case is H64 D32).
FUSED_BYTES = 128 << 10


def _lstm_vector_product(cell):
    """The matrix of a batch of one's step product, in Fortran order (OpenBLAS's matrix-vector
    product read it 7-15% faster than C order, H32 to H256, where the (units, batch) matrix
    product wants C order): U^T, or [U^T | W^T | b] up to FUSED_BYTES, multiplied by
    [h_{t-1}, x_t, 1] (see _lstm's `rows`). Made the first time a batch of one runs."""
    cached = getattr(cell, "_fast_vector", None)
    if cached is None:
        Wb, Ut = _lstm_prepared(cell)
        fused = Ut.itemsize * Ut.shape[0] * (Ut.shape[1] + Wb.shape[0]) <= FUSED_BYTES
        cached = cell._fast_vector = np.asfortranarray(np.hstack([Ut, Wb.T]) if fused else Ut)
    return cached


def _gru_prepared(cell):
    cached = getattr(cell, "_fast", None)
    if cached is None:
        u = cell.units
        scale = np.ones(3 * u, cell.W.dtype)
        scale[: 2 * u] = 0.5  # z, r are sigmoid gates
        b_in = cell.input_bias * scale if cell.input_bias is not None else None
        b_rec = cell.recurrent_bias * scale if cell.recurrent_bias is not None else None
        cached = cell._fast = (_with_bias(cell.W * scale, b_in), np.ascontiguousarray(cell.U * scale), b_rec)
    return cached


def _with_bias(W, b):
    """W with the input bias as one more row: the inputs get a column of ones, so the projection's
    product adds the bias (a separate pass over every step's projections cost 8% of the
    projection at B32 H256)."""
    return W if b is None else np.vstack([W, b[None]])


def _inputs(x, start, stop, backwards, layout, ones):
    """Processing steps start..stop of x in `layout` (an axis order of (batch, time, features)),
    copied into a new array with a last feature of ones when `ones` (for the bias row)."""
    steps = x.shape[1]
    block = x[:, steps - stop : steps - start][:, ::-1] if backwards else x[:, start:stop]
    block = block.transpose(layout)
    shape = list(block.shape)
    axis = layout.index(2)
    shape[axis] += ones
    xt = np.empty(shape, x.dtype)
    xt[(slice(None),) * axis + (slice(0, x.shape[2]),)] = block
    if ones:
        xt[(slice(None),) * axis + (-1,)] = 1
    return xt


def _project(x, Wb, start, stop, backwards, columns=False):
    """Input projections (bias included, see _with_bias) of processing steps start..stop:
    (time, batch, k·units), or with `columns` gate-major (time, k·units, batch), (time, k·units)
    at batch 1."""
    ones = Wb.shape[0] - x.shape[2]
    if columns and x.shape[0] > 1:
        return np.matmul(Wb.T, _inputs(x, start, stop, backwards, (1, 2, 0), ones))
    xt = _inputs(x, start, stop, backwards, (1, 0, 2), ones)
    xw = xt.reshape(-1, xt.shape[2]) @ Wb
    return xw.reshape(xt.shape[0], -1) if columns else xw.reshape(xt.shape[0], xt.shape[1], -1)


def _in_blocks(A, out, batch, unpacked):
    """A.dot(v, out) as products of A's row blocks of at most `unpacked` multiply-adds each,
    when BLAS multiplies those without packing them (threads.unpacked_macs); A.dot itself when
    it is already that small, or would need blocks under 16 rows."""
    rows = unpacked // max(1, batch * A.shape[1]) // 16 * 16
    if rows < 16 or A.size * batch <= unpacked:
        return A.dot
    pieces = [(A[i : i + rows].dot, out[i : i + rows]) for i in range(0, A.shape[0], rows)]

    def product(v, _):
        for dot, piece in pieces:
            dot(v, piece)

    return product


def _lstm(cell, xw, out, states, cell_clip=None, rows=None, unpacked=0):
    """Steps over gate-major projected inputs xw (time, 4u, batch), or (time, 4u) at batch 1,
    writing h_t into out[t] (u, batch) or (u,); states (h, c) in the same layout; returns them.
    With `rows` instead of xw (batch 1, a small cell): each step's product multiplies rows[t] =
    [h_{t-1}, x_t, 1] by [U^T | W^T | b] (_lstm_vector_product), so the input projection is in
    it, and out[t] must be rows[t + 1, :u], where the next step reads h_t. `unpacked`: see
    _in_blocks.

    One buffer z holds c above the gates, rows [c | g | f, i, o]: each gate is a contiguous
    block, and [c, g] times [f, i] is one call, so c_t = f·c + i·g takes two. The sigmoid gates
    are 0.5 + 0.5·tanh of their halved pre-activations (see _lstm_prepared). Nine NumPy calls a
    step, eight with `rows`; every operand is bound before the loop (a slice or a lambda per step
    cost 12% at batch 1)."""
    u = cell.units
    h, c0 = states
    if rows is None:
        A = _lstm_vector_product(cell) if out.ndim == 2 else _lstm_prepared(cell)[1]
        rows = itertools.chain((h,), out)  # step t multiplies h_{t-1}
    else:
        A, xw = _lstm_vector_product(cell), itertools.repeat(None)
    z = np.empty((5 * u, *out.shape[2:]), out.dtype)
    c, gates, cg, fi, sig, o = z[:u], z[u:], z[: 2 * u], z[2 * u : 4 * u], z[2 * u :], z[4 * u :]
    c[...] = c0
    fc_ig = np.empty_like(cg)
    fc, ig = fc_ig[:u], fc_ig[u:]
    half = np.array(0.5, out.dtype)
    add, multiply, tanh = np.add, np.multiply, np.tanh
    dot = A.dot if out.ndim == 2 else _in_blocks(A, gates, out.shape[2], unpacked)  # the method: np.dot's dispatch cost 0.2 µs a step
    for v, xw_t, h_t in zip(rows, xw, out):
        dot(v, gates)
        if xw_t is not None:
            add(gates, xw_t, gates)
        tanh(gates, gates)
        multiply(sig, half, sig)
        add(sig, half, sig)
        multiply(cg, fi, fc_ig)
        add(fc, ig, c)
        if cell_clip is not None:  # the clipped cell state feeds h_t and the next step
            np.minimum(c, cell_clip, out=c)
            np.maximum(c, -cell_clip, out=c)
        tanh(c, h_t)
        multiply(h_t, o, h_t)
    return h_t, c.copy()


def _gru(cell, xw, out, states):
    _, U, b_rec = _gru_prepared(cell)
    u = cell.units
    batch = xw.shape[1]
    (h,) = states
    rec = np.empty((batch, 3 * u), xw.dtype)
    tmp = np.empty((batch, u), xw.dtype)
    zr, z, r = rec[:, : 2 * u], rec[:, :u], rec[:, u : 2 * u]
    if cell.reset_after:
        cand = rec[:, 2 * u :]
        for k in range(xw.shape[0]):
            h.dot(U, rec)
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
            np.matmul(h, U_zr, out=zr)  # zr is a strided view, which .dot cannot write
            zr += xw[k, :, : 2 * u]
            np.tanh(zr, out=zr)
            zr *= 0.5
            zr += 0.5
            np.multiply(r, h, out=tmp)
            tmp.dot(U_h, cand)
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
        h.dot(cell.U, nxt)
        nxt += xw[k]
        if relu:
            np.maximum(nxt, 0, out=nxt)
        else:
            np.tanh(nxt, out=nxt)
        h = nxt
    return (h,)


KERNELS = {"lstm": _lstm, "gru": _gru, "simple_rnn": _simple_rnn}


def _simple_rnn_prepared(cell):
    cached = getattr(cell, "_fast", None)
    if cached is None:
        cached = cell._fast = (_with_bias(cell.W, cell.input_bias),)
    return cached


PREPARED = {"lstm": _lstm_prepared, "gru": _gru_prepared, "simple_rnn": _simple_rnn_prepared}  # [0]: W with its bias row
COLUMNS = {"lstm"}  # kernels that work gate-major: a step's states are (units, batch), or (units,) at batch 1
BLOCK_BYTES = 32 << 20  # input projections computed this many bytes of steps at a time


def _to_columns(a):
    return a[0].copy() if a.shape[0] == 1 else np.ascontiguousarray(a.T)


def _from_columns(a, batch):
    return a[None].copy() if batch == 1 else np.ascontiguousarray(a.T)


def _run(cell, x, states, backwards, keep_sequence, progress, stop=None, **options):
    """Time blocks of projected inputs, the recurrence through them. Returns the sequence as the
    kernel wrote it (time first) and the final states (batch, units). A set `stop` event ends
    it at the next block (the other slices of an interrupted scan)."""
    Wb = PREPARED[cell.kind](cell)[0]
    (batch, steps), u = x.shape[:2], cell.units
    columns = cell.kind in COLUMNS
    fused = columns and batch == 1 and _lstm_vector_product(cell).shape[1] > u  # see _lstm's rows
    width = Wb.shape[1]
    block = max(1, min(steps, BLOCK_BYTES // max(1, batch * width * x.dtype.itemsize)))
    each = ((u,) if batch == 1 else (u, batch)) if columns else (batch, u)
    out = np.empty((steps if keep_sequence else min(block, steps) or 1, *each), x.dtype)
    states = tuple(_to_columns(s) if columns else s.copy() for s in states)  # the kernels update c in place
    for start in range(0, steps, block):
        if stop is not None and stop.is_set():
            break
        end = min(steps, start + block)
        target = out[start:end] if keep_sequence else out[: end - start]
        if fused:  # rows [h_{t-1}, x_t, 1], h_t written into the next row
            rows = np.empty((end - start + 1, u + Wb.shape[0]), x.dtype)
            rows[0, :u], rows[:-1, u:] = states[0], _inputs(x, start, end, backwards, (1, 0, 2), Wb.shape[0] - x.shape[2])[:, 0]
            states = _lstm(cell, None, rows[1:, :u], states, rows=rows[:-1], **options)
            target[...] = rows[1:, :u]
        else:
            xw = _project(x, Wb, start, end, backwards, columns)
            states = KERNELS[cell.kind](cell, xw, target, states, **options)
        states = tuple(s.copy() if s.base is out else s for s in states)  # h must outlive `out` reuse
        if progress is not None:
            progress(end - start)
    if columns:
        states = tuple(_from_columns(s, batch) for s in states)
        if keep_sequence:  # (time, units, batch) seen as (batch, time, units)
            out = out[:, None] if batch == 1 else out.transpose(0, 2, 1)
    return (out if keep_sequence else None), states


def scan(cell, x, states, go_backwards=False, keep_sequence=True, progress=None, parts=1, unpacked=0):
    """The same result as kernels.reference_scan without mask or trace: (batch, time, units)
    outputs in the order produced (None when keep_sequence is False), and the final states.
    An LSTM cell's cell_clip (TFLite's): c is clipped to ±cell_clip after each step.
    `parts` > 1: the batch is cut into that many slices, each run on a thread of its own (BLAS
    should then run one thread each): no thread waits for another at each step, which is what
    makes BLAS's own threads slow on a busy machine (lstmctl/threads.py chooses). `unpacked`:
    threads.unpacked_macs(), the size of the row blocks an LSTM's recurrent product is cut into
    (0: none)."""
    options = {"cell_clip": np.array(cell.cell_clip, x.dtype)} if cell.cell_clip else {}
    if cell.kind == "lstm":
        options["unpacked"] = unpacked
    parts = max(1, min(parts, x.shape[0]))
    if parts == 1:
        out, final = _run(cell, x, states, go_backwards, keep_sequence, progress, **options)
        return (out.transpose(1, 0, 2) if out is not None else None), final
    from concurrent.futures import ThreadPoolExecutor  # here: 4 ms of start-up that small runs do not need

    cuts = np.linspace(0, x.shape[0], parts + 1).astype(int)
    stop = threading.Event()

    def part(k, progress=None):
        rows = slice(cuts[k], cuts[k + 1])
        return _run(cell, x[rows], tuple(s[rows] for s in states), go_backwards, keep_sequence, progress, stop, **options)

    with ThreadPoolExecutor(parts - 1) as pool:
        others = [pool.submit(part, k) for k in range(1, parts)]
        try:
            results = [part(0, progress), *(f.result() for f in others)]  # part 0 reports the steps
        except BaseException:  # Ctrl-C, SIGTERM, out of memory: the other slices stop at their next time block
            stop.set()
            raise
    final = tuple(np.concatenate(s) for s in zip(*(r[1] for r in results)))
    if not keep_sequence:
        return None, final
    return np.concatenate([r[0] for r in results], axis=1).transpose(1, 0, 2), final
