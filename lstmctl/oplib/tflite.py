"""Ops TFLite's converter writes that the ONNX runner does not use: STRIDED_SLICE with its five
masks, SPLIT into equal parts, FILL, REVERSE_V2, LOGICAL_AND / LOGICAL_OR, NOT_EQUAL and the other comparisons ONNX lacks, and the
fused activation TFLite applies after ADD, MUL, FULLY_CONNECTED, CONCATENATION…
Same contract as the rest of lstmctl.oplib: arrays and keyword parameters, `where` and `tally`,
the result's size checked before it is made."""

import numpy as np

from .. import kernels
from ..errors import LstmctlError
from .elementwise import _binary
from .sizes import axes as _axes
from .sizes import axis as _axis
from .sizes import broadcast, ints, produce

logical_and = _binary(np.logical_and)
logical_or = _binary(np.logical_or)
not_equal = _binary(np.not_equal)
less_equal = _binary(np.less_equal)
greater_equal = _binary(np.greater_equal)

FUSED = {
    None: None,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "relu_n1_to_1": lambda x: np.clip(x, -1, 1),
    "tanh": np.tanh,
}


def fused_activation(x, *, name, where: str = "op", tally=None):
    """TFLite's fused_activation_function applied to an op's result (None: as it is)."""
    if name not in FUSED:
        raise LstmctlError(f"{where}: fused activation {name} is not one lstmctl computes")
    return x if name is None else FUSED[name](x)


def strided_slice(x, begin, end, strides, *, begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0, offset=False, where: str = "op", tally=None):
    """x[begin:end:strides] as TensorFlow's StridedSlice reads it: bit i of begin_mask / end_mask
    ignores begin[i] / end[i], of ellipsis_mask stands for every axis not named, of new_axis_mask
    inserts an axis, of shrink_axis_mask takes the single index begin[i] and drops the axis;
    `offset`: end is relative to begin."""
    x = np.asarray(x)
    begin, end, strides = ints(begin, where, "begin"), ints(end, where, "end"), ints(strides, where, "strides")
    n = len(begin)
    if not len(end) == len(strides) == n or 0 in strides:
        raise LstmctlError(f"{where}: begin {begin}, end {end} and strides {strides} differ in length or hold a stride of 0")
    if offset:
        end = [b + e for b, e in zip(begin, end)]
    index, dim = [], 0
    for i in range(n):
        if ellipsis_mask >> i & 1:
            later = sum(1 for j in range(i + 1, n) if not new_axis_mask >> j & 1)
            count = max(x.ndim - dim - later, 0)
            index += [slice(None)] * count
            dim += count
            continue
        if new_axis_mask >> i & 1:
            index.append(None)
            continue
        if dim >= x.ndim:
            raise LstmctlError(f"{where}: {n} slice entries for x of rank {x.ndim}")
        size = x.shape[dim]
        if shrink_axis_mask >> i & 1:
            b = begin[i] + size if begin[i] < 0 else begin[i]
            if not 0 <= b < size:
                raise LstmctlError(f"{where}: index {begin[i]} is outside axis {dim} of shape {x.shape}")
            index.append(b)
        else:
            index.append(slice(None if begin_mask >> i & 1 else begin[i], None if end_mask >> i & 1 else end[i], strides[i]))
        dim += 1
    out = x[tuple(index)]
    produce(out.shape, where, tally)  # a view: nothing is allocated before this check
    return out


def split_equal(x, *, parts: int, axis: int, where: str = "op", tally=None) -> list:
    """x cut into `parts` equal pieces along `axis` (TFLite's SPLIT)."""
    x = np.asarray(x)
    a = _axis(axis, x.ndim, where)
    if parts < 1 or x.shape[a] % parts:
        raise LstmctlError(f"{where}: axis {a} of shape {x.shape} does not split into {parts} equal parts")
    produce(x.shape, where, tally)
    return np.split(x, parts, axis=a)


def fill(dims, value, *, where: str = "op", tally=None):
    """An array of shape `dims` holding the one value `value` (in value's dtype)."""
    value = np.asarray(value)
    if value.size != 1:
        raise LstmctlError(f"{where}: FILL's value holds {value.size} elements, expected one")
    shape = produce(ints(dims, where, "dims"), where, tally)
    return np.full(shape, value.ravel()[0], value.dtype)


def reverse(x, axes, *, where: str = "op", tally=None):
    """x with the order of its entries reversed along each of `axes`."""
    x = np.asarray(x)
    produce(x.shape, where, tally)
    return np.flip(x, axis=tuple(_axes(axes, x.ndim, where)))


def hard_swish(x, *, where: str = "op", tally=None):
    x = np.asarray(x)
    produce(x.shape, where, tally)
    return x * kernels.hard_sigmoid_keras3(x)


def squared_difference(a, b, *, where: str = "op", tally=None):
    a, b = np.asarray(a), np.asarray(b)
    produce(broadcast([a.shape, b.shape], where), where, tally)
    return np.square(a - b)
