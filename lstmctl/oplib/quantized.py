"""Dynamic-range ("hybrid") quantization as LiteRT computes it: int8 weights with their scales,
float inputs quantized on the fly one row at a time, the products summed in integers and scaled
back (tensorflow/lite/kernels/internal/reference/portable_tensor_utils.cc,
fully_connected.cc's EvalHybrid). DEQUANTIZE turns an int8/int16/float16 constant into float32.

The rounding is C's std::round (half away from zero), not NumPy's (half to even): a row's values
that land on .5 would otherwise quantize one step apart from LiteRT's."""

import numpy as np

from ..errors import LstmctlError
from .sizes import produce


def round_away(x):
    """Half away from zero, as TfLiteRound (std::round)."""
    return np.sign(x) * np.floor(np.abs(x) + np.asarray(0.5, x.dtype))


def quantize_rows(x, *, asymmetric: bool, where: str = "op", tally=None) -> tuple:
    """(int8 values, float32 scale per row, int32 zero point per row) of a float32 matrix, each row
    on its own range: symmetric (zero point 0, ±127) or asymmetric (−128…127 around a nudged zero
    point), as LiteRT's SymmetricQuantizeFloats / AsymmetricQuantizeFloats."""
    x = np.asarray(x, np.float32)
    produce(x.shape, where, tally)
    if x.ndim != 2 or not x.shape[1]:
        raise LstmctlError(f"{where}: rows to quantize have shape {x.shape}, expected (rows, values)")
    lo, hi = x.min(axis=1), x.max(axis=1)
    if not asymmetric:
        span = np.maximum(np.abs(lo), np.abs(hi)).astype(np.float32)
        zero = span == 0
        safe = np.where(zero, np.float32(1), span)
        scale = np.where(zero, np.float32(1), safe / np.float32(127)).astype(np.float32)
        inv = (np.float32(127) / safe).astype(np.float32)
        q = np.clip(round_away(x * inv[:, None]), -127, 127)
        q[zero] = 0
        return q.astype(np.int8), scale, np.zeros(len(x), np.int32)
    rmin, rmax = np.minimum(lo, 0).astype(np.float64), np.maximum(hi, 0).astype(np.float64)
    same = rmin == rmax
    scale64 = np.where(same, 1.0, (rmax - rmin) / 255.0)
    from_min, from_max = -128.0 - rmin / scale64, 127.0 - rmax / scale64
    zero64 = np.where(128.0 + np.abs(rmin / scale64) < 127.0 + np.abs(rmax / scale64), from_min, from_max)
    zero = np.where(zero64 <= -128, -128, np.where(zero64 >= 127, 127, round_away(zero64))).astype(np.int32)
    zero[same] = 0
    scale = scale64.astype(np.float32)
    inv = (np.float32(1) / scale).astype(np.float32)
    q = np.clip(round_away(zero[:, None].astype(np.float32) + x * inv[:, None]), -128, 127)
    q[same] = 0
    return q.astype(np.int8), scale, zero


def dequantize(q, *, scale, zero_point, axis: int = 0, where: str = "op", tally=None):
    """float32 (q − zero_point) · scale, one scale per slice along `axis` or one for all; a
    float16 array is widened to float32."""
    q = np.asarray(q)
    produce(q.shape, where, tally)
    if q.dtype == np.float16:
        return q.astype(np.float32)
    scale, zero = np.asarray(scale, np.float32).ravel(), np.asarray(zero_point).ravel()
    shape = [1] * q.ndim
    if scale.size > 1:
        if not (0 <= axis < q.ndim and q.shape[axis] == scale.size):
            raise LstmctlError(f"{where}: {scale.size} scales do not fit axis {axis} of shape {q.shape}")
        shape[axis] = -1
    return ((q.astype(np.float32) - zero.astype(np.float32).reshape(shape)) * scale.reshape(shape)).astype(np.float32)


def hybrid_matmul(x, w, w_scale, *, asymmetric: bool, where: str = "op", tally=None):
    """x (rows, k) float32 times int8 weights w (out, k)ᵀ with `w_scale` (one, or one per output
    row): x quantized per row, the int8 products summed exactly, each sum scaled by the row's
    scale times the weight's (its zero point's share, zero point × the weight row's sum, taken
    off first)."""
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise LstmctlError(f"{where}: input {x.shape} does not fit int8 weights {w.shape}")
    produce((x.shape[0], w.shape[0]), where, tally, work=x.shape[0] * w.shape[0] * max(w.shape[1], 1))
    q, scale, zero = quantize_rows(x, asymmetric=asymmetric, where=where)
    wi = w.astype(np.int32)
    # exact in float64: |sum| < 2**31 for k below 2**17 columns (127·128·k), far within float64's 2**53
    dot = q.astype(np.float64) @ wi.T.astype(np.float64)
    if asymmetric:
        dot -= zero[:, None].astype(np.float64) * wi.sum(axis=1)[None, :].astype(np.float64)
    factors = (scale[:, None] * np.asarray(w_scale, np.float32).reshape(1, -1)).astype(np.float32)
    return (dot.astype(np.float32) * factors).astype(np.float32)


def fully_connected(x, w, bias=None, *, w_scale=None, asymmetric: bool = False, keep_num_dims: bool = False, where: str = "op", tally=None):
    """TFLite's FULLY_CONNECTED: x's last axis times wᵀ (w is [out, in]) plus bias; float weights,
    or int8 weights with `w_scale` computed as LiteRT's hybrid kernel does. The result is
    [rows, out], or x's leading shape with `out` last when keep_num_dims."""
    x, w = np.asarray(x), np.asarray(w)
    if w.ndim != 2 or not x.ndim or not w.shape[1] or x.size % w.shape[1] or (keep_num_dims and x.shape[-1] != w.shape[1]):
        raise LstmctlError(f"{where}: input {x.shape} does not fit weights {w.shape} ([out, in])")
    rows = x.reshape(-1, w.shape[1])
    if w_scale is not None:
        y = hybrid_matmul(rows, w, w_scale, asymmetric=asymmetric, where=where, tally=tally)
    else:
        produce((rows.shape[0], w.shape[0]), where, tally, work=rows.shape[0] * w.shape[0] * max(w.shape[1], 1))
        y = rows @ w.T
    if bias is not None:
        y = y + bias
    return y.reshape(*x.shape[:-1], w.shape[0]) if keep_num_dims else y

