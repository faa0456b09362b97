"""Reductions over axes, Softmax and LogSoftmax along one axis, ArgMax / ArgMin."""

import numpy as np

from .sizes import axes as _axes
from .sizes import axis as _axis
from .sizes import produce


def _reduction(fn, name):
    def op(x, *, axes=None, keepdims: bool = True, where: str = "op", tally=None):
        """Reduced over `axes` (every axis when None); `keepdims` keeps them as size 1."""
        x = np.asarray(x)
        axes = tuple(range(x.ndim)) if axes is None else tuple(_axes(axes, x.ndim, where))
        produce(x.shape, where, tally)  # the work: each input element is read once
        return fn(x, axis=axes, keepdims=bool(keepdims))

    op.__name__ = op.__qualname__ = name
    return op


reduce_sum = _reduction(np.sum, "reduce_sum")
reduce_mean = _reduction(np.mean, "reduce_mean")
reduce_max = _reduction(np.max, "reduce_max")
reduce_min = _reduction(np.min, "reduce_min")
reduce_prod = _reduction(np.prod, "reduce_prod")


def softmax(x, *, axis: int = -1, where: str = "op", tally=None):
    """exp(x - max) / sum along `axis`."""
    x = np.asarray(x)
    a = _axis(axis, x.ndim, where)
    produce(x.shape, where, tally)
    e = np.exp(x - np.max(x, axis=a, keepdims=True))
    return e / np.sum(e, axis=a, keepdims=True)


def log_softmax(x, *, axis: int = -1, where: str = "op", tally=None):
    """x - max - log(sum(exp(x - max))) along `axis`."""
    x = np.asarray(x)
    a = _axis(axis, x.ndim, where)
    produce(x.shape, where, tally)
    shifted = x - np.max(x, axis=a, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=a, keepdims=True))


def _arg(fn, x, axis, keepdims, last, where, tally):
    x = np.asarray(x)
    a = _axis(axis, x.ndim, where)
    produce(x.shape, where, tally)
    i = x.shape[a] - 1 - fn(np.flip(x, axis=a), axis=a, keepdims=True) if last else fn(x, axis=a, keepdims=True)
    return (i if keepdims else np.squeeze(i, axis=a)).astype(np.int64)


def argmax(x, *, axis: int = 0, keepdims: bool = True, last: bool = False, where: str = "op", tally=None):
    """The int64 index of the largest entry along `axis` (the last such index when `last`)."""
    return _arg(np.argmax, x, axis, keepdims, last, where, tally)


def argmin(x, *, axis: int = 0, keepdims: bool = True, last: bool = False, where: str = "op", tally=None):
    """The int64 index of the smallest entry along `axis` (the last such index when `last`)."""
    return _arg(np.argmin, x, axis, keepdims, last, where, tally)
