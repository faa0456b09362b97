"""The one budget every port reader and graph runner works within (torch.save pickles, safetensors,
ONNX, TFLite, carried state files, and the ops their graphs run).

Each limit is checked where the field that could pass it is read, before anything is allocated
or computed from it, and a refusal is one line naming the file (or node), the budget and the value:
`model.onnx: node 'Expand_3' would compute 2**40 elements, over lstmctl's budget of 2**26 elements
one operator computes`. docs/reliability.md#the-budget lists the same table.

No NumPy here: readers check sizes before they import or allocate anything.
"""

from .errors import LstmctlError

# name -> (limit, what it counts). Generous for real files (the largest zoo file is far below each),
# small enough that a few-kilobyte file cannot ask for gigabytes or minutes.
LIMITS = {
    "depth": (200, "levels of nesting (pickle containers, graphs within graphs, subgraph calls)"),
    "objects": (1 << 21, "objects one pickle builds"),
    "tensors": (1 << 18, "tensors in one file"),
    "nodes": (1 << 18, "nodes or operators in one file"),
    "dims": (32, "dimensions of one tensor"),
    "dimension": (1 << 31, "elements along one dimension"),
    "tensor_elements": (1 << 28, "elements of one tensor"),
    "op_elements": (1 << 26, "elements one operator computes"),
    "graph_elements": (1 << 30, "elements all operators of one run compute"),
    "loop_steps": (1 << 20, "iterations of one loop"),
    "bytes": (4 << 30, "bytes read from one file"),
}


def limit(name: str) -> int:
    return LIMITS[name][0]


def number(n: int) -> str:
    """An integer for a one-line message: a power of two as 2**k, a huge one by its size alone (a
    file may give an integer of thousands of digits; Python refuses to print past 4300)."""
    n = int(n)
    if n > 0 and n & (n - 1) == 0 and n >= 1024:
        return f"2**{n.bit_length() - 1}"
    if abs(n) >= 10**18:
        return f"an integer of {n.bit_length()} bits"
    return str(n)


def refuse(name: str, value: int, where: str) -> LstmctlError:
    cap, what = LIMITS[name]
    return LstmctlError(f"{where}: {number(value)} {what.split(' (')[0]} is over lstmctl's budget of {number(cap)}")


def check(name: str, value: int, where: str) -> int:
    """`value` if it is within budget `name`, else LstmctlError (exit 3) naming `where`."""
    if value > LIMITS[name][0]:
        raise refuse(name, value, where)
    return value


def check_shape(shape, where: str, budget: str = "tensor_elements") -> tuple:
    """A shape read from a file or computed by an op: a tuple of non-negative ints, at most `dims`
    of them, each within `dimension`, their product within `budget`. Checked before allocating."""
    shape = tuple(shape)
    check("dims", len(shape), where)
    total = 1
    for d in shape:
        if type(d) is not int and not hasattr(d, "__index__"):
            raise LstmctlError(f"{where}: a dimension is {type(d).__name__}, expected an integer")
        d = int(d)
        if d < 0:
            raise LstmctlError(f"{where}: dimension {number(d)} is negative")
        check("dimension", d, where)
        total *= d
    check(budget, total, where)
    return tuple(int(d) for d in shape)


class Tally:
    """Running totals for one file or one run (bytes read, objects built, elements computed):
    `add` raises as soon as a total passes its budget."""

    def __init__(self, where: str):
        self.where = where
        self.spent = {}

    def add(self, name: str, n: int = 1, where: str | None = None) -> None:
        total = self.spent.get(name, 0) + int(n)
        self.spent[name] = total
        if total > LIMITS[name][0]:
            raise refuse(name, total, where or self.where)
