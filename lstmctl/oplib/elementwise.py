"""Elementwise ops: arithmetic and comparisons with broadcasting, activations, Cast, Where, Clip."""

import numpy as np

from .. import kernels
from ..errors import LstmctlError
from .sizes import broadcast, produce


def _binary(fn):
    def op(a, b, *, where: str = "op", tally=None):
        a, b = np.asarray(a), np.asarray(b)
        produce(broadcast([a.shape, b.shape], where), where, tally)
        return fn(a, b)

    op.__doc__ = f"{fn.__name__}(a, b) with broadcasting."
    return op


def _truncating_div(a, b):
    """ONNX's Div: integer division truncates toward zero (NumPy's // floors)."""
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if np.any(b == 0):
            raise ZeroDivisionError("integer division by zero")
        q = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -q, q).astype(np.result_type(a, b))
    return np.divide(a, b)


add = _binary(np.add)
sub = _binary(np.subtract)
mul = _binary(np.multiply)
power = _binary(np.power)
maximum = _binary(np.maximum)
minimum = _binary(np.minimum)
equal = _binary(np.equal)
less = _binary(np.less)
greater = _binary(np.greater)


def div(a, b, *, where: str = "op", tally=None):
    """a / b with broadcasting; integers truncate toward zero, and dividing one by zero is refused."""
    a, b = np.asarray(a), np.asarray(b)
    produce(broadcast([a.shape, b.shape], where), where, tally)
    try:
        return _truncating_div(a, b)
    except ZeroDivisionError:
        raise LstmctlError(f"{where}: integer division by zero") from None


def _unary(fn, name):
    def op(x, *, where: str = "op", tally=None):
        x = np.asarray(x)
        produce(x.shape, where, tally)
        return fn(x)

    op.__name__ = op.__qualname__ = name
    return op


identity = _unary(lambda x: x, "identity")
neg = _unary(np.negative, "neg")
absolute = _unary(np.abs, "absolute")
exp = _unary(np.exp, "exp")
log = _unary(np.log, "log")
sqrt = _unary(np.sqrt, "sqrt")
reciprocal = _unary(np.reciprocal, "reciprocal")
relu = _unary(kernels.activation("relu", 3), "relu")
sigmoid = _unary(kernels.sigmoid, "sigmoid")
tanh = _unary(np.tanh, "tanh")
softplus = _unary(kernels.activation("softplus", 3), "softplus")
softsign = _unary(kernels.activation("softsign", 3), "softsign")
logical_not = _unary(np.logical_not, "logical_not")


def leaky_relu(x, *, alpha: float = 0.01, where: str = "op", tally=None):
    x = np.asarray(x)
    produce(x.shape, where, tally)
    return np.where(x >= 0, x, x * np.asarray(alpha, x.dtype))


def elu(x, *, alpha: float = 1.0, where: str = "op", tally=None):
    x = np.asarray(x)
    produce(x.shape, where, tally)
    return np.where(x > 0, x, np.asarray(alpha, x.dtype) * np.expm1(np.minimum(x, 0)))


def hard_sigmoid(x, *, alpha: float = 0.2, beta: float = 0.5, where: str = "op", tally=None):
    """max(0, min(1, alpha·x + beta)) (ONNX's defaults are Keras 2's 0.2 and 0.5)."""
    x = np.asarray(x)
    produce(x.shape, where, tally)
    return np.clip(np.asarray(alpha, x.dtype) * x + np.asarray(beta, x.dtype), 0, 1).astype(x.dtype, copy=False)


def clip(x, *, low=None, high=None, where: str = "op", tally=None):
    """x limited to [low, high] (either may be None: unbounded)."""
    x = np.asarray(x)
    produce(x.shape, where, tally)
    if low is not None:
        x = np.maximum(x, np.asarray(low, x.dtype))
    if high is not None:
        x = np.minimum(x, np.asarray(high, x.dtype))
    return x


def cast(x, *, dtype, where: str = "op", tally=None):
    """x as `dtype` (a NumPy dtype): floats to integers truncate toward zero, as ONNX and TFLite do."""
    x = np.asarray(x)
    produce(x.shape, where, tally)
    dtype = np.dtype(dtype)
    if dtype.kind in "iub" and x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise LstmctlError(f"{where}: NaN or infinity cast to {dtype}")
    return x.astype(dtype)


def select(condition, a, b, *, where: str = "op", tally=None):
    """a where condition holds, else b, with broadcasting (ONNX's Where, TFLite's SELECT)."""
    condition, a, b = np.asarray(condition), np.asarray(a), np.asarray(b)
    produce(broadcast([condition.shape, a.shape, b.shape], where), where, tally)
    return np.where(condition.astype(bool), a, b)
