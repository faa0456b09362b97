"""The budget check every op makes before it allocates its result (see lstmctl.oplib)."""

import math

import numpy as np

from .. import budget
from ..errors import LstmctlError


def produce(shape, where: str, tally=None, work: int | None = None) -> tuple:
    """`shape`, checked against op_elements; `work` (elements computed, the result's size when
    None) added to the run's graph_elements tally and never over that budget alone."""
    shape = budget.check_shape(shape, where, "op_elements")
    work = math.prod(shape) if work is None else work
    budget.check("graph_elements", work, where)
    if tally is not None:
        tally.add("graph_elements", work, where)
    return shape


def axis(a, rank: int, where: str, what: str = "axis") -> int:
    """An axis in [-rank, rank - 1], as a non-negative int."""
    a = int(a)
    if not -rank <= a < rank:
        raise LstmctlError(f"{where}: {what} {a} is out of range for rank {rank}")
    return a % rank


def axes(values, rank: int, where: str) -> list:
    """Distinct axes, each in range, as non-negative ints in the order given."""
    out = [axis(a, rank, where) for a in np.asarray(values, np.int64).ravel()]
    if len(set(out)) != len(out):
        raise LstmctlError(f"{where}: axes {out} repeat an axis")
    return out


def ints(values, where: str, what: str) -> list:
    """A 1-D integer tensor (a shape, starts, repeats…) as Python ints."""
    values = np.asarray(values)
    if values.dtype.kind not in "iu" or values.ndim > 1:
        raise LstmctlError(f"{where}: {what} is {values.dtype} of shape {values.shape}, expected a 1-D integer tensor")
    return [int(v) for v in values.ravel()]


def broadcast(shapes, where: str) -> tuple:
    """The shape NumPy's (and ONNX's multidirectional) broadcasting gives, or a one-line error."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise LstmctlError(f"{where}: shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast") from None
