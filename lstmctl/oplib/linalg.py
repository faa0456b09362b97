"""Matrix products: MatMul (NumPy's matmul semantics, which ONNX and TFLite's BATCH_MATMUL share)
and Gemm (alpha·A'·B' + beta·C)."""

import math

import numpy as np

from ..errors import LstmctlError
from .sizes import broadcast, produce


def _product_shape(a: tuple, b: tuple, where: str) -> tuple:
    """(result shape, inner size k) of a @ b, with 1-D operands promoted as np.matmul does."""
    if not a or not b:
        raise LstmctlError(f"{where}: matmul of a scalar (shapes {a} and {b})")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise LstmctlError(f"{where}: shapes {a} and {b} do not chain (inner sizes {a2[-1]} and {b2[-2]})")
    out = (*broadcast([a2[:-2], b2[:-2]], where), a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out, a2[-1]


def matmul(a, b, *, where: str = "op", tally=None):
    """a @ b; the multiply-adds (result size times the inner size) count as the elements computed."""
    a, b = np.asarray(a), np.asarray(b)
    out, k = _product_shape(a.shape, b.shape, where)
    produce(out, where, tally, work=math.prod(out) * max(k, 1))
    return np.matmul(a, b)


def gemm(a, b, c=None, *, alpha: float = 1.0, beta: float = 1.0, trans_a: bool = False, trans_b: bool = False, where: str = "op", tally=None):
    """alpha · A' · B' + beta · C, A' = A or Aᵀ (trans_a), B' likewise; C broadcasts to the result."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2:
        raise LstmctlError(f"{where}: Gemm takes matrices, got shapes {a.shape} and {b.shape}")
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    out, k = _product_shape(a.shape, b.shape, where)
    if c is not None:
        c = np.asarray(c)
        if broadcast([c.shape, out], where) != out:
            raise LstmctlError(f"{where}: C {c.shape} does not broadcast to the product's {out}")
    produce(out, where, tally, work=math.prod(out) * max(k, 1))
    y = np.asarray(alpha, a.dtype) * (a @ b) if alpha != 1.0 else a @ b
    if c is not None:
        y = y + (np.asarray(beta, a.dtype) * c if beta != 1.0 else c)
    return y.astype(a.dtype, copy=False)
