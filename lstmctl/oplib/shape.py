"""Ops that move elements without arithmetic: Reshape, Flatten, Transpose, Squeeze, Unsqueeze,
Concat, Stack / Unstack, Split, Slice, Gather, Expand, Tile, Shape, ConstantOfShape, Range."""

import math

import numpy as np

from ..errors import LstmctlError
from .sizes import axes as _axes
from .sizes import axis as _axis
from .sizes import broadcast, ints, produce


def reshape(x, shape, *, allowzero: bool = False, where: str = "op", tally=None):
    """x with `shape`: -1 (at most one) takes what is left; 0 copies x's dimension at that
    position unless `allowzero` (then it is a zero)."""
    x = np.asarray(x)
    shape = ints(shape, where, "shape")
    if not allowzero:
        if any(d == 0 and i >= x.ndim for i, d in enumerate(shape)):
            raise LstmctlError(f"{where}: shape {shape} copies (0) a dimension that x {x.shape} does not have")
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        raise LstmctlError(f"{where}: shape {shape} has more than one -1 or a negative size")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or x.size % known:
            raise LstmctlError(f"{where}: x {x.shape} cannot be reshaped to {shape}")
        shape[shape.index(-1)] = x.size // known
    produce(shape, where, tally)
    if math.prod(shape) != x.size:
        raise LstmctlError(f"{where}: x {x.shape} ({x.size} elements) cannot be reshaped to {tuple(shape)}")
    return x.reshape(shape)


def flatten(x, *, axis: int = 1, where: str = "op", tally=None):
    """x as a matrix: the dimensions before `axis` make the rows, the rest the columns (axis in
    [-rank, rank], a negative one counting from the end)."""
    x = np.asarray(x)
    if not -x.ndim <= int(axis) <= x.ndim:
        raise LstmctlError(f"{where}: axis {axis} is out of range for rank {x.ndim}")
    a = int(axis) % x.ndim if int(axis) < 0 else int(axis)
    shape = (math.prod(x.shape[:a]), math.prod(x.shape[a:]))
    produce(shape, where, tally)
    return x.reshape(shape)


def transpose(x, *, perm=None, where: str = "op", tally=None):
    """x with its axes permuted (reversed when perm is None)."""
    x = np.asarray(x)
    perm = list(range(x.ndim))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(x.ndim)):
        raise LstmctlError(f"{where}: perm {perm} is not a permutation of x's {x.ndim} axes")
    produce(x.shape, where, tally)
    return np.transpose(x, perm)


def squeeze(x, *, axes=None, where: str = "op", tally=None):
    """x without the given size-1 axes (all of them when axes is None)."""
    x = np.asarray(x)
    if axes is None:
        axes = [a for a, d in enumerate(x.shape) if d == 1]
    axes = _axes(axes, x.ndim, where)
    if any(x.shape[a] != 1 for a in axes):
        raise LstmctlError(f"{where}: cannot squeeze axes {axes} of shape {x.shape}: not all are 1")
    produce(x.shape, where, tally)
    return np.squeeze(x, axis=tuple(axes))


def unsqueeze(x, *, axes, where: str = "op", tally=None):
    """x with size-1 axes inserted at `axes` (positions in the result)."""
    x = np.asarray(x)
    rank = x.ndim + len(np.asarray(axes).ravel())
    axes = _axes(axes, rank, where)
    produce(x.shape, where, tally)
    rest = iter(x.shape)
    return x.reshape([1 if a in axes else next(rest) for a in range(rank)])


def concat(arrays, *, axis: int, where: str = "op", tally=None):
    """The arrays joined along `axis`; every other dimension must agree."""
    arrays = [np.asarray(a) for a in arrays]
    if not arrays:
        raise LstmctlError(f"{where}: nothing to concatenate")
    rank = arrays[0].ndim
    a = _axis(axis, rank, where)
    if any(x.ndim != rank or x.shape[:a] + x.shape[a + 1 :] != arrays[0].shape[:a] + arrays[0].shape[a + 1 :] for x in arrays):
        raise LstmctlError(f"{where}: shapes {[x.shape for x in arrays]} do not fit together along axis {a}")
    produce((*arrays[0].shape[:a], sum(x.shape[a] for x in arrays), *arrays[0].shape[a + 1 :]), where, tally)
    return np.concatenate(arrays, axis=a)


def stack(arrays, *, axis: int = 0, where: str = "op", tally=None):
    """The arrays, all of one shape, joined along a new axis `axis` (TFLite's PACK)."""
    arrays = [np.asarray(a) for a in arrays]
    if not arrays or any(a.shape != arrays[0].shape for a in arrays):
        raise LstmctlError(f"{where}: shapes {[a.shape for a in arrays]} are not one shape to stack")
    a = _axis(axis, arrays[0].ndim + 1, where)
    produce((*arrays[0].shape[:a], len(arrays), *arrays[0].shape[a:]), where, tally)
    return np.stack(arrays, axis=a)


def unstack(x, *, axis: int = 0, where: str = "op", tally=None) -> list:
    """x's slices along `axis`, that axis dropped (TFLite's UNPACK)."""
    x = np.asarray(x)
    a = _axis(axis, x.ndim, where)
    produce(x.shape, where, tally)
    return [np.take(x, i, axis=a) for i in range(x.shape[a])]


def split(x, *, sizes, axis: int = 0, where: str = "op", tally=None) -> list:
    """x cut along `axis` into pieces of `sizes` (which must add up to that dimension)."""
    x = np.asarray(x)
    a = _axis(axis, x.ndim, where)
    sizes = [int(s) for s in sizes]
    if any(s < 0 for s in sizes) or sum(sizes) != x.shape[a]:
        raise LstmctlError(f"{where}: split sizes {sizes} do not add up to dimension {a} of shape {x.shape}")
    produce(x.shape, where, tally)
    return np.split(x, np.cumsum(sizes)[:-1], axis=a)


def _bounds(start: int, end: int, step: int, n: int) -> slice:
    """ONNX's Slice bounds on one axis: negative values count from the end, then starts and ends
    are clamped to [0, n] ([0, n-1] and [-1, n-1] for a negative step, -1 meaning 'through 0')."""
    start = start + n if start < 0 else start
    end = end + n if end < 0 else end
    if step > 0:
        return slice(min(max(start, 0), n), min(max(end, 0), n), step)
    start, end = min(max(start, 0), n - 1), min(max(end, -1), n - 1)
    return slice(start, None if end < 0 else end, step)


def slice_(x, *, starts, ends, axes=None, steps=None, where: str = "op", tally=None):
    """x[starts:ends:steps] along `axes` (all leading axes when None), with ONNX's clamping."""
    x = np.asarray(x)
    starts, ends = ints(starts, where, "starts"), ints(ends, where, "ends")
    axes = list(range(len(starts))) if axes is None else _axes(axes, x.ndim, where)
    steps = [1] * len(starts) if steps is None else ints(steps, where, "steps")
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise LstmctlError(f"{where}: starts, ends, axes and steps have different lengths ({len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})")
    if 0 in steps:
        raise LstmctlError(f"{where}: a step of 0")
    if any(a >= x.ndim for a in axes):
        raise LstmctlError(f"{where}: {len(starts)} axes sliced on x of rank {x.ndim}")
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        index[a] = _bounds(s, e, st, x.shape[a])
    out = x[tuple(index)]
    produce(out.shape, where, tally)  # a view: nothing is allocated before this check
    return out


def gather(x, indices, *, axis: int = 0, where: str = "op", tally=None):
    """x's entries at `indices` along `axis`; an index may be negative (from the end)."""
    x, indices = np.asarray(x), np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise LstmctlError(f"{where}: indices of {indices.dtype}, expected integers")
    a = _axis(axis, x.ndim, where)
    n = x.shape[a]
    if indices.size and (indices.min() < -n or indices.max() >= n):
        raise LstmctlError(f"{where}: an index in {indices.min()}..{indices.max()} is outside [-{n}, {n - 1}] (axis {a} of shape {x.shape})")
    produce((*x.shape[:a], *indices.shape, *x.shape[a + 1 :]), where, tally)
    return np.take(x, indices.astype(np.int64), axis=a)


def expand(x, shape, *, where: str = "op", tally=None):
    """x broadcast with `shape` (ONNX's Expand: the result has the broadcast of both shapes)."""
    x = np.asarray(x)
    target = ints(shape, where, "shape")
    if any(d < 0 for d in target):
        raise LstmctlError(f"{where}: shape {target} has a negative size")
    out = produce(broadcast([x.shape, target], where), where, tally)
    return np.array(np.broadcast_to(x, out))


def tile(x, repeats, *, where: str = "op", tally=None):
    """x repeated `repeats[i]` times along each axis i."""
    x = np.asarray(x)
    repeats = ints(repeats, where, "repeats")
    if len(repeats) != x.ndim or any(r < 0 for r in repeats):
        raise LstmctlError(f"{where}: repeats {repeats} do not give one non-negative count per axis of shape {x.shape}")
    produce([d * r for d, r in zip(x.shape, repeats)], where, tally)
    return np.tile(x, repeats)


def shape(x, *, start: int = 0, end: int | None = None, where: str = "op", tally=None):
    """x's shape as int64, dimensions start..end (clamped as ONNX's Shape-15 clamps them)."""
    dims = np.asarray(x).shape
    produce((len(dims),), where, tally)
    return np.array(dims[slice(start, end)], np.int64)


def constant_of_shape(shape, *, value=None, where: str = "op", tally=None):
    """An array of `shape` filled with `value` (a one-element array: its dtype is the result's;
    float32 zero when None)."""
    dims = ints(shape, where, "shape")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    if value.size != 1:
        raise LstmctlError(f"{where}: value holds {value.size} elements, expected one")
    return np.full(produce(dims, where, tally), value.ravel()[0], value.dtype)


def range_(start, limit, delta, *, where: str = "op", tally=None):
    """start, start + delta, … up to (not including) limit, in start's dtype."""
    start, limit, delta = (np.asarray(v) for v in (start, limit, delta))
    if delta == 0:
        raise LstmctlError(f"{where}: a delta of 0")
    count = np.ceil((limit - start) / delta)
    if not np.isfinite(count):
        raise LstmctlError(f"{where}: start {start}, limit {limit} and delta {delta} give no finite count")
    count = max(int(count), 0)
    produce((count,), where, tally)
    return (start + np.arange(count) * delta).astype(start.dtype)
