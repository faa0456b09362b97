"""keras.ops nodes that Keras 3 records in a Functional graph: the tensor code a user writes
(`s[:, -1]`, `keras.ops.mean(s, axis=1)`, `s1 + s2`, `s * 2.0`, …) and the masks Keras computes.

A node is data, never code. Its `config` holds the op's constructor arguments (axis, keepdims,
newshape…), its inbound node's `args` / `kwargs` the call's: tensors as `__keras_tensor__`
references, everything else plain data — numbers, booleans, None and lists of them, `__slice__`
and `__ellipsis__` in a GetItem key, `__numpy__` / `__tensor__` constant arrays. Anything else
is refused, naming the node and the file.

Each op computes what Keras 3's TensorFlow backend computes (keras/src/backend/tensorflow),
dtypes included: Keras promotes along JAX's lattice, where float32 meets a Python float, an int64
array or float16 and stays float32 (NumPy would give float64). Ops drop masks, as in Keras 3.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from .. import kernels
from ..config import MAX_SAMPLE_ELEMENTS, is_int, is_number, short, snake_case, tensor_refs
from ..errors import LstmctlError, Unsupported
from .base import LayerType, Tensor

# --- Keras's dtype promotion (keras/src/backend/common/dtypes.py) --------------------------------
# The lattice over the dtypes lstmctl computes with; "int" and "float" are Python's weak scalars,
# which take the type of the array they meet.
_LATTICE = {
    "bool": ["int"],
    "int": ["uint8", "int8"],
    "uint8": ["int16", "uint16"],
    "uint16": ["int32", "uint32"],
    "uint32": ["int64", "uint64"],
    "uint64": ["float"],
    "int8": ["int16"],
    "int16": ["int32"],
    "int32": ["int64"],
    "int64": ["float"],
    "float": ["float16"],
    "float16": ["float32"],
    "float32": ["float64"],
    "float64": [],
}
DTYPES = frozenset(_LATTICE) - {"int", "float"}
FLOATS = ("float16", "float32", "float64")


def _is_dtype(value) -> bool:
    return isinstance(value, str) and value in DTYPES


def _above(node) -> frozenset:
    return frozenset({node}).union(*(_above(n) for n in _LATTICE[node]))


_UPPER = {node: _above(node) for node in _LATTICE}


def _lattice_type(value) -> tuple:
    """(dtype, weak): an array's dtype; Python's int and float (the values or the types) are weak."""
    if isinstance(value, np.ndarray):
        return value.dtype.name, False
    if value is int or (isinstance(value, int) and not isinstance(value, bool)):
        return "int64", True
    if value is float or isinstance(value, float):
        return "float32", True
    return ("bool" if isinstance(value, bool) else value), False


def result_type(*values) -> str:
    """keras.backend.result_type on the TensorFlow backend with floatx float32."""
    dtypes, weak = zip(*map(_lattice_type, values))
    if len(set(dtypes)) == 1 and (len(dtypes) == 1 or not all(weak)):
        out, out_weak = dtypes[0], all(weak)
    else:
        # Weak scalars meet arrays as "int" / "float"; all-weak operands take their strong bound.
        nodes = set(dtypes) if all(weak) else {("float" if d.startswith("float") else "int") if w else d for d, w in zip(dtypes, weak)}
        common = frozenset.intersection(*(_UPPER[n] for n in nodes))
        out = next(c for c in common if common <= _UPPER[c])
        out_weak = all(weak) or out in ("int", "float")
    if out_weak and out != "bool":
        out = {"u": "uint32", "i": "int32", "f": "float32"}[out[0]]
    return "uint32" if out == "uint64" else out


def _cast(value, dtype):
    """An operand in `dtype`: arrays converted, Python scalars made 0-d arrays of it."""
    if isinstance(value, np.ndarray):
        return value.astype(dtype, copy=False)
    return np.asarray(value, dtype=dtype)  # OverflowError (300 as uint8) is refused by the caller


# --- the saved arguments, as data ------------------------------------------------------------------

_INT64 = 1 << 63


def _int(value, what):
    if not (is_int(value) and -_INT64 <= value < _INT64):
        raise LstmctlError(f"{what} {short(value)} is not a 64-bit integer")
    return value


def _numbers(value, depth=0) -> bool:
    """Nested lists of numbers and booleans, nothing else (a constant array's value)."""
    if isinstance(value, list) and depth < 32:
        return all(_numbers(v, depth + 1) for v in value)
    return isinstance(value, (bool, int, float))


def _array(value, dtype=None):
    """Nested lists of numbers as an array (NumPy's dtype when None is given)."""
    if not _numbers(value):
        raise Unsupported(f"a constant {short(value)} that is not numbers")
    try:
        return np.array(value, dtype=dtype)
    except (ValueError, OverflowError):
        raise LstmctlError(f"a constant {short(value)} that is ragged or out of the range of {dtype}") from None


def _resolve(arg, tensor):
    """A saved argument as a value; `tensor(ref)` gives a referenced tensor's."""
    if isinstance(arg, dict):
        kind, inner = arg.get("class_name"), arg.get("config")
        if kind == "__keras_tensor__":
            return tensor(tensor_refs(arg, "op argument")[0])
        if kind == "__slice__" and isinstance(inner, dict) and set(inner) == {"start", "stop", "step"}:
            return slice(*(None if inner[k] is None else _int(inner[k], f"slice {k}") for k in ("start", "stop", "step")))
        if kind == "__ellipsis__":
            return Ellipsis
        if kind in ("__numpy__", "__tensor__") and isinstance(inner, dict) and _is_dtype(inner.get("dtype")):
            return _array(inner.get("value"), inner["dtype"])
        raise Unsupported(f"an argument {short(arg)} that is neither a tensor nor plain data")
    if isinstance(arg, list):
        return [_resolve(a, tensor) for a in arg]
    if arg is None or isinstance(arg, (bool, float)):
        return arg
    if isinstance(arg, int):
        return _int(arg, "constant")
    raise Unsupported(f"an argument {short(arg)} that is not a number, a tensor or a list of them")


def _operand(value, what):
    """A tensor or a Python number (which Keras types weakly: it takes the other operand's type)."""
    if isinstance(value, (np.ndarray, bool, int, float)):
        return value
    raise LstmctlError(f"{what} is {short(value)}, not a tensor or a number")


def _tensor(value, what="x"):
    """A tensor operand; a Python number becomes one as Keras converts it (float32, int32, bool)."""
    value = _operand(value, what)
    return value if isinstance(value, np.ndarray) else np.asarray(value, dtype=result_type(value))


def _tensors(values, what):
    if not isinstance(values, list) or not values:
        raise LstmctlError(f"{what} is {short(values)}, not a list of tensors")
    return [_tensor(v, what) for v in values]


def _fits(shape, *operands):
    """Refuse an output larger than MAX_SAMPLE_ELEMENTS values and than every operand: constants
    in a file (tile repeats, a broadcast shape) must not grow memory past what a run was given."""
    n = math.prod(shape)
    if n > max(MAX_SAMPLE_ELEMENTS, *(np.size(o) for o in operands)):
        raise LstmctlError(f"its output would hold {n} values, over lstmctl's cap of {MAX_SAMPLE_ELEMENTS}")


# --- config parameters: check(value, key) -> value -------------------------------------------------

REQUIRED = object()


def _axis_param(value, key):
    """None, an int or a list of ints (Keras saves a tuple as a list)."""
    if value is None or is_int(value):
        return value
    if isinstance(value, list) and value and all(is_int(v) for v in value):
        return tuple(value)
    raise LstmctlError(f"{key} {short(value)} is not an axis or a list of axes")


def _one_axis(value, key):
    if not is_int(value):
        raise LstmctlError(f"{key} {short(value)} is not an axis")
    return value


def _flag(value, key):
    if not isinstance(value, bool):
        raise LstmctlError(f"{key} {short(value)} is not true or false")
    return value


def _number(value, key):
    if not is_number(value):
        raise LstmctlError(f"{key} {short(value)} is not a number")
    return value


def _optional(check):
    return lambda value, key: None if value is None else check(value, key)


def _dtype(value, key):
    if value is not None and not _is_dtype(value):
        raise Unsupported(f"{key} {short(value)} is not a dtype lstmctl computes with")
    return value


def _no_dtype(value, key):
    # Backends disagree on what an explicit accumulation dtype does (TensorFlow ignores it).
    if value is not None:
        raise Unsupported(f"{key} {short(value)}: an explicit accumulation dtype is not supported")
    return value


def _ints(minimum):
    """An int or a list of ints of at least `minimum` (shapes, repeats)."""

    def check(value, key):
        items = [value] if is_int(value) else value
        if not isinstance(items, list) or not all(is_int(v) and minimum <= v < _INT64 for v in items):
            raise LstmctlError(f"{key} {short(value)} is not an integer or a list of integers of at least {minimum}")
        return value if is_int(value) else tuple(items)

    return check


def _axes(axis, ndim, extra=0):
    """`axis` (None, an int or a tuple) checked against a rank-`ndim` input; `extra`: axes the op adds."""
    if axis is None:
        return None
    items = axis if isinstance(axis, tuple) else (axis,)
    rank = ndim + extra
    if not all(-rank <= a < rank for a in items):
        raise LstmctlError(f"axis {short(axis)} is out of range for a rank-{ndim} input")
    if len({a % rank for a in items}) != len(items):
        raise LstmctlError(f"axis {short(axis)} names an axis twice")
    return axis


def _as_tuple(axis) -> tuple:
    return () if axis is None else axis if isinstance(axis, tuple) else (axis,)


# --- the ops ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpDef:
    """fn(**call arguments, **config parameters) -> array."""

    fn: object
    call: tuple = ("x",)  # Keras's call signature; every argument is required
    params: dict = field(default_factory=dict)  # config key -> (check, default or REQUIRED)


# elementwise


def _unary(fn, prepare=lambda x: x):
    return OpDef(lambda x: fn(prepare(_tensor(x))))


def _to_float(x):
    """Keras computes transcendental math on ints and bools in float32 (result_type(x, float))."""
    return x.astype(result_type(x, float), copy=False)


def _floating(x):
    if x.dtype.name not in FLOATS:
        raise Unsupported(f"an activation of a {x.dtype} tensor (Keras computes these on floats)")
    return x


def _activation(fn, **params):
    """keras.ops.nn activations: float tensors, their dtype kept."""
    return OpDef(lambda x, **p: fn(_floating(_tensor(x)), **p), params=params)


def _pair(x1, x2, promote=result_type):
    """Both operands in the dtype Keras promotes them to, their broadcast size checked."""
    x1, x2 = _operand(x1, "x1"), _operand(x2, "x2")
    dtype = promote(x1, x2)
    a, b = _cast(x1, dtype), _cast(x2, dtype)
    _fits(np.broadcast_shapes(a.shape, b.shape), a, b)
    return a, b


def _binary(fn, promote=result_type, integer_divisor=False):
    """Binary ops: both operands in Keras's promoted dtype, broadcast."""

    def compute(x1, x2):
        a, b = _pair(x1, x2, promote)
        if integer_divisor and a.dtype.kind in "iu" and not np.all(b):
            raise LstmctlError("integer division by zero")  # TensorFlow refuses it too
        return fn(a, b)

    return OpDef(compute, ("x1", "x2"))


def _to_float_type(x1, x2):
    return result_type(x1, x2, float)


def _to_bool(*_):
    return "bool"


def _bool_as_int(x1, x2):
    dtype = result_type(x1, x2)
    return "int32" if dtype == "bool" else dtype


def _power(x1, x2):
    a, b = _pair(x1, x2)
    if a.dtype.kind == "u":  # tf.pow has no unsigned kernels: Keras goes through int32
        return np.power(a.astype("int32"), b.astype("int32")).astype(a.dtype)
    return np.power(a, b)


def _matmul(x1, x2):
    a, b = _tensor(x1, "x1"), _tensor(x2, "x2")
    if a.ndim == 0 or b.ndim == 0:
        raise LstmctlError("matmul of a scalar")
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    _fits((*lead, a.shape[-2] if a.ndim > 1 else 1, b.shape[-1] if b.ndim > 1 else 1), a, b)
    # Keras multiplies in the float result type and returns the operands' promoted type.
    compute = result_type(a, b, float)
    return np.matmul(_cast(a, compute), _cast(b, compute)).astype(result_type(a, b), copy=False)


def _where(condition, x1, x2):
    if x1 is None or x2 is None:
        raise Unsupported("where without x1 and x2 (nonzero: a data-dependent shape)")
    condition = _tensor(condition, "condition").astype(bool, copy=False)
    a, b = _pair(x1, x2)
    _fits(np.broadcast_shapes(condition.shape, a.shape, b.shape), condition, a, b)
    return np.where(condition, a, b)


def _clip(x, x_min, x_max):
    x = _tensor(x)
    x = x.astype("int32") if x.dtype == bool else x
    return np.clip(x, _cast(x_min, x.dtype), _cast(x_max, x.dtype))


def _round(x, decimals=0):
    """TensorFlow's round: half to even; with decimals, through x·10^d (ints in float32)."""
    x = _tensor(x)
    if x.dtype.kind != "f" and decimals >= 0:
        return x
    if decimals == 0:
        return np.round(x)
    work = x if x.dtype.kind == "f" else x.astype("float32")
    factor = np.asarray(10.0**decimals, dtype=work.dtype)
    return (np.round(work * factor) / factor).astype(x.dtype)


def _cast_to(x, dtype):
    if dtype is None:
        raise LstmctlError("cast names no dtype")
    return _tensor(x).astype(dtype)


def _convert_to_tensor(x, dtype, sparse, ragged):
    """What attention layers' mask code records: an identity, or a cast."""
    if sparse or ragged:
        raise Unsupported("a sparse or ragged tensor")
    x = _tensor(x)
    return x if dtype is None else x.astype(dtype)


def _absolute(x):
    return x if x.dtype == bool or x.dtype.kind == "u" else np.abs(x)


# reductions


def _reduction(fn, prepare=lambda x: x, **params):
    """fn(x, axis, keepdims) over checked axes; `prepare` casts x as Keras does first."""

    def compute(x, axis, keepdims, **p):
        x = _tensor(x)
        return np.asarray(fn(prepare(x), axis=_axes(axis, x.ndim), keepdims=keepdims, **p))

    return OpDef(compute, params={"axis": (_axis_param, None), "keepdims": (_flag, False), **params})


_WIDER = {"bool": "int32", "int8": "int32", "int16": "int32", "uint8": "uint32", "uint16": "uint32"}


def _accumulated(fn):
    """sum / prod: small integers and bools accumulate in 32 bits (JAX's rule), the rest in their
    own dtype (NumPy would widen int32 to int64)."""

    def compute(x, axis, keepdims, dtype=None):  # prod's `dtype` is checked to be None
        x = x.astype(_WIDER.get(x.dtype.name, x.dtype), copy=False)
        return fn(x, axis=axis, keepdims=keepdims, dtype=x.dtype)

    return compute


def _mean(x, axis, keepdims):
    # In float32 at least (float16 would overflow); ints give float32, floats keep their dtype.
    compute = result_type(x, "float32")
    out = np.mean(x.astype(compute, copy=False), axis=axis, keepdims=keepdims)
    return out.astype(x.dtype if x.dtype.name in FLOATS else compute, copy=False)


def _var(x, axis, keepdims):
    out = np.var(x.astype(result_type(x, "float32"), copy=False), axis=axis, keepdims=keepdims)
    return out.astype(result_type(x, float), copy=False)


def _std(x, axis, keepdims):
    return np.std(x if x.dtype.name in FLOATS else x.astype("float32"), axis=axis, keepdims=keepdims)


def _extreme(fn, join):
    """max / min; `initial` joins the result afterwards, as in Keras's TensorFlow backend."""

    def compute(x, axis, keepdims, initial=None):
        y = fn(x.astype("int32") if x.dtype == bool else x, axis=axis, keepdims=keepdims)
        if initial is not None:
            y = join(y, _cast(initial, y.dtype))
        return y.astype(x.dtype, copy=False)

    return compute


def _arg(fn):
    """argmax / argmin as int32; a float -0.0 counts below +0.0 (Keras works around TF's FTZ)."""

    def compute(x, axis, keepdims):
        if isinstance(axis, tuple):
            raise LstmctlError(f"axis {short(list(axis))}: argmax and argmin take one axis")
        if x.dtype.name in FLOATS:
            x = np.where((x == 0) & np.signbit(x), -np.finfo(x.dtype).tiny, x)
        return fn(x, axis=axis, keepdims=keepdims).astype("int32")

    return compute


def _logsumexp(x, axis, keepdims):
    """TensorFlow's reduce_logsumexp: shifted by the (finite) maximum."""
    x = _to_float(x)
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


def _count_nonzero(x, axis=None):
    x = _tensor(x)
    return np.asarray(np.count_nonzero(x, axis=_axes(axis, x.ndim))).astype("int32")


def _scan(fn):
    """cumsum / cumprod: axis None runs over the flattened tensor; bools count as int32."""

    def compute(x, axis, dtype):
        x = _tensor(x)
        x = x.astype("int32") if x.dtype == bool else x
        if axis is None:
            x, axis = x.reshape(-1), 0
        return fn(x, axis=_axes(axis, x.ndim), dtype=x.dtype)

    return OpDef(compute, params={"axis": (_optional(_one_axis), None), "dtype": (_no_dtype, None)})


# indexing and shapes


def _get_item(x, key):
    """x[key] with int, slice, None (newaxis) and Ellipsis entries, as Python and TensorFlow index."""
    x = _tensor(x)
    key = tuple(key) if isinstance(key, list) else (key,)  # Keras saves the tuple as a list
    if not all(k is None or k is Ellipsis or isinstance(k, slice) or is_int(k) for k in key):
        raise Unsupported(f"an index {short(list(key))}: only integers, slices, None and ... are supported")
    if sum(k is Ellipsis for k in key) > 1:
        raise LstmctlError("an index with more than one ...")
    if any(isinstance(k, slice) and k.step == 0 for k in key):
        raise LstmctlError("a slice with step 0")
    if sum(k is not None and k is not Ellipsis for k in key) > x.ndim:
        raise LstmctlError(f"an index with more entries than the rank-{x.ndim} input has axes")
    return np.ascontiguousarray(x[key])  # an integer out of range: IndexError, refused by the caller


def _reshape(x, newshape):
    x = _tensor(x)
    dims = _as_tuple(newshape)
    known = math.prod(d for d in dims if d != -1)  # -1: the one dimension NumPy infers
    fits = dims.count(-1) == 1 and known and x.size % known == 0 if -1 in dims else x.size == known
    if not fits:
        raise LstmctlError(f"cannot reshape a tensor of shape {x.shape} to {short(list(dims))}")
    return x.reshape(dims)


def _transpose(x, axes=None):
    x = _tensor(x)
    if axes is not None:
        axes = _as_tuple(axes)
        if len(axes) != x.ndim:
            raise LstmctlError(f"axes {short(list(axes))} do not name the {x.ndim} axes of the input")
        _axes(axes, x.ndim)  # each in range, none twice: a permutation
    return np.transpose(x, axes)


def _squeeze(x, axis=None):
    x = _tensor(x)
    if any(x.shape[a] != 1 for a in _as_tuple(_axes(axis, x.ndim))):
        raise LstmctlError(f"cannot squeeze axis {short(axis)} of shape {x.shape}: it is not 1")
    return np.squeeze(x, axis=axis)


def _expand_dims(x, axis):
    x = _tensor(x)
    axes = _as_tuple(axis)
    return np.expand_dims(x, _axes(axes, x.ndim, extra=len(axes)))


def _joined(xs):
    """A list of tensors in their common dtype (concatenate, stack)."""
    xs = _tensors(xs, "xs")
    dtype = result_type(*{x.dtype.name for x in xs})
    return [_cast(x, dtype) for x in xs]


def _concatenate(xs, axis=0):
    xs = _joined(xs)
    return np.concatenate(xs, axis=_axes(axis, xs[0].ndim))


def _stack(x, axis=0):
    xs = _joined(x)
    return np.stack(xs, axis=_axes(axis, xs[0].ndim, extra=1))


def _flip(x, axis=None):
    x = _tensor(x)
    return np.flip(x, axis=_axes(axis, x.ndim)).copy()


def _swapaxes(x, axis1, axis2):
    x = _tensor(x)
    return np.swapaxes(x, _axes(axis1, x.ndim), _axes(axis2, x.ndim)).copy()


def _moveaxis(x, source, destination):
    x = _tensor(x)
    return np.moveaxis(x, _axes(source, x.ndim), _axes(destination, x.ndim)).copy()


def _tile(x, repeats):
    x = _tensor(x)
    reps = _as_tuple(repeats)
    rank = max(len(reps), x.ndim)
    shape, reps = (1,) * (rank - x.ndim) + x.shape, (1,) * (rank - len(reps)) + reps  # both padded on the left
    _fits([d * r for d, r in zip(shape, reps)], x)
    return np.tile(x, reps)


def _repeat(x, repeats, axis=None):
    x = _tensor(x)
    n = x.size if axis is None else x.shape[_axes(axis, x.ndim)]
    counts = _as_tuple(repeats)
    if len(counts) not in (1, n):
        raise LstmctlError(f"repeats {short(repeats)} do not match the {n} entries to repeat")
    _fits((x.size // max(n, 1) * (counts[0] * n if len(counts) == 1 else sum(counts)),), x)
    return np.repeat(x, counts if len(counts) > 1 else counts[0], axis=axis)


def _broadcast_to(x, shape):
    x = _tensor(x)
    shape = _as_tuple(shape)
    _fits(shape, x)
    return np.broadcast_to(x, shape).copy()


def _take(x, indices, axis=None):
    x = _tensor(x)
    if not isinstance(indices, np.ndarray):
        indices = _array(indices)  # constant indices: an int or nested lists of them
    if indices.dtype.kind not in "iu":
        raise LstmctlError(f"indices of dtype {indices.dtype}, not integers")
    source = x.reshape(-1) if axis is None else x
    along = 0 if axis is None else _axes(axis, x.ndim)
    n = source.shape[along]
    if indices.size and not (-n <= indices.min() and indices.max() < n):
        raise LstmctlError(f"an index is out of range for an axis of {n} entries")  # TensorFlow refuses too
    _fits((source.size // max(n, 1) * indices.size,), x, indices)
    return np.take(source, indices, axis=along)


def _full_like(x, fill_value, dtype=None):
    x = _tensor(x)
    dtype = result_type(dtype or x.dtype.name)
    return np.broadcast_to(_cast(_operand(fill_value, "fill_value"), dtype), x.shape).copy()


def _like(fill):
    return OpDef(lambda x, dtype: np.full_like(_tensor(x), fill, dtype=dtype), params={"dtype": (_dtype, None)})


# activations


def _softmax(fn):
    """softmax / log_softmax over one axis, or over every entry for axis None."""

    def compute(x, axis):
        x = _floating(_tensor(x))
        if axis is None:
            return fn(x.reshape(-1), axis=-1).reshape(x.shape)
        return fn(x, axis=_axes(axis, x.ndim))

    return OpDef(compute, params={"axis": (_optional(_one_axis), -1)})


def _log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _glu(x, axis):
    x = _floating(_tensor(x))
    if x.shape[_axes(axis, x.ndim)] % 2:
        raise LstmctlError(f"glu splits axis {axis} in halves; the input's shape is {x.shape}")
    a, b = np.split(x, 2, axis=axis)
    return a * kernels.sigmoid(b)


def _gelu(x, approximate):
    if not approximate:
        return kernels.activation("gelu", 3)(x)
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi).astype(x.dtype) * (x + 0.044715 * x**3)))


def _elu(x, alpha):
    y = kernels.activation("elu", 3)(x)
    return y if alpha == 1 else np.where(x > 0, y, alpha * y)


def _celu(x, alpha):
    return np.maximum(x, 0) + alpha * np.expm1(np.minimum(x, 0) / alpha)


def _soft_shrink(x, threshold):
    return np.where(x > threshold, x - threshold, np.where(x < -threshold, x + threshold, 0)).astype(x.dtype)


def _hard_shrink(x, threshold):
    return np.where(np.abs(x) > threshold, x, 0).astype(x.dtype)


_AS_FLOAT = {
    "Exp": np.exp, "Expm1": np.expm1, "Log": np.log, "Log1p": np.log1p, "Log2": np.log2, "Log10": np.log10,
    "Sqrt": np.sqrt, "Tanh": np.tanh, "Sin": np.sin, "Cos": np.cos, "Tan": np.tan, "Arctan": np.arctan,
    "Sinh": np.sinh, "Cosh": np.cosh, "Floor": np.floor, "Ceil": np.ceil,
}  # fmt: skip
# keras.ops.nn name -> the activation lstmctl's kernels compute for Keras 3 layers (the same math)
_ACTIVATIONS = {
    "Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid", "Softplus": "softplus", "Softsign": "softsign",
    "Silu": "silu", "LogSigmoid": "log_sigmoid", "Selu": "selu", "HardSigmoid": "hard_sigmoid",
    "HardSilu": "hard_silu", "HardTanh": "hard_tanh",
}  # fmt: skip

OPS = {
    # elementwise (keras.ops.numpy)
    **{name: _unary(fn, _to_float) for name, fn in _AS_FLOAT.items()},
    "Rsqrt": _unary(lambda x: 1 / np.sqrt(x), _floating),
    "Reciprocal": _unary(np.reciprocal, _floating),
    "Negative": _unary(np.negative),
    "Sign": _unary(np.sign),
    "Absolute": _unary(_absolute),
    "Square": _unary(np.square, lambda x: x.astype("int32") if x.dtype == bool else x),
    "Isnan": _unary(np.isnan),
    "Isinf": _unary(np.isinf),
    "Isfinite": _unary(np.isfinite),
    "LogicalNot": _unary(np.logical_not, lambda x: x.astype(bool, copy=False)),
    "StopGradient": OpDef(lambda variable: _tensor(variable), ("variable",)),
    "Round": OpDef(_round, params={"decimals": (_int, 0)}),
    "Clip": OpDef(_clip, params={"x_min": (_number, REQUIRED), "x_max": (_number, REQUIRED)}),
    "Cast": OpDef(_cast_to, params={"dtype": (_dtype, REQUIRED)}),
    "ConvertToTensor": OpDef(_convert_to_tensor, params={"dtype": (_dtype, None), "sparse": (_optional(_flag), None), "ragged": (_optional(_flag), None)}),
    "Add": _binary(np.add),
    "Subtract": _binary(np.subtract),
    "Multiply": _binary(np.multiply),
    "Divide": _binary(np.true_divide, _to_float_type),
    "TrueDivide": _binary(np.true_divide, _to_float_type),
    "FloorDivide": _binary(np.floor_divide, integer_divisor=True),
    "Mod": _binary(np.mod, _bool_as_int, integer_divisor=True),
    "Power": OpDef(_power, ("x1", "x2")),
    "Maximum": _binary(np.maximum),
    "Minimum": _binary(np.minimum),
    "Equal": _binary(np.equal),
    "NotEqual": _binary(np.not_equal),
    "Greater": _binary(np.greater),
    "GreaterEqual": _binary(np.greater_equal),
    "Less": _binary(np.less),
    "LessEqual": _binary(np.less_equal),
    "LogicalAnd": _binary(np.logical_and, _to_bool),
    "LogicalOr": _binary(np.logical_or, _to_bool),
    "LogicalXor": _binary(np.logical_xor, _to_bool),
    "Matmul": OpDef(_matmul, ("x1", "x2")),
    "Where": OpDef(_where, ("condition", "x1", "x2")),
    # reductions over axis (None: every axis), keepdims
    "Sum": _reduction(_accumulated(np.sum)),
    "Prod": _reduction(_accumulated(np.prod), dtype=(_no_dtype, None)),
    "Mean": _reduction(_mean),
    "Var": _reduction(_var),
    "Std": _reduction(_std),
    "Max": _reduction(_extreme(np.max, np.maximum), initial=(_optional(_number), None)),
    "Min": _reduction(_extreme(np.min, np.minimum), initial=(_optional(_number), None)),
    "Amax": _reduction(_extreme(np.max, np.maximum)),
    "Amin": _reduction(_extreme(np.min, np.minimum)),
    "Any": _reduction(np.any, lambda x: x.astype(bool, copy=False)),
    "All": _reduction(np.all, lambda x: x.astype(bool, copy=False)),
    "Argmax": _reduction(_arg(np.argmax)),
    "Argmin": _reduction(_arg(np.argmin)),
    "Logsumexp": _reduction(_logsumexp),
    "CountNonzero": OpDef(_count_nonzero, params={"axis": (_axis_param, None)}),
    "Cumsum": _scan(np.cumsum),
    "Cumprod": _scan(np.cumprod),
    # indexing and shapes
    "GetItem": OpDef(_get_item, ("x", "key")),
    "Reshape": OpDef(_reshape, params={"newshape": (_ints(-1), REQUIRED)}),
    "Ravel": _unary(lambda x: x.reshape(-1)),
    "Transpose": OpDef(_transpose, params={"axes": (_axis_param, None)}),
    "Squeeze": OpDef(_squeeze, params={"axis": (_axis_param, None)}),
    "ExpandDims": OpDef(_expand_dims, params={"axis": (_axis_param, REQUIRED)}),
    "Concatenate": OpDef(_concatenate, ("xs",), {"axis": (_one_axis, 0)}),
    "Stack": OpDef(_stack, params={"axis": (_one_axis, 0)}),
    "Flip": OpDef(_flip, params={"axis": (_axis_param, None)}),
    "Swapaxes": OpDef(_swapaxes, params={"axis1": (_one_axis, REQUIRED), "axis2": (_one_axis, REQUIRED)}),
    "Moveaxis": OpDef(_moveaxis, params={"source": (_axis_param, REQUIRED), "destination": (_axis_param, REQUIRED)}),
    "Tile": OpDef(_tile, params={"repeats": (_ints(0), REQUIRED)}),
    "Repeat": OpDef(_repeat, params={"repeats": (_ints(0), REQUIRED), "axis": (_optional(_one_axis), None)}),
    "BroadcastTo": OpDef(_broadcast_to, params={"shape": (_ints(0), REQUIRED)}),
    "Take": OpDef(_take, ("x", "indices"), {"axis": (_optional(_one_axis), None)}),
    "ZerosLike": _like(0),
    "OnesLike": _like(1),
    "FullLike": OpDef(_full_like, ("x", "fill_value"), {"dtype": (_dtype, None)}),
    # activations (keras.ops.nn), on float tensors
    **{name: _activation(kernels.activation(key, 3)) for name, key in _ACTIVATIONS.items()},
    "LeakyRelu": _activation(lambda x, negative_slope: np.where(x > 0, x, negative_slope * x), negative_slope=(_number, 0.2)),
    "Elu": _activation(_elu, alpha=(_number, 1.0)),
    "Celu": _activation(_celu, alpha=(_number, 1.0)),
    "Gelu": _activation(_gelu, approximate=(_flag, True)),
    "TanhShrink": _activation(lambda x: x - np.tanh(x)),
    "SoftShrink": _activation(_soft_shrink, threshold=(_number, 0.5)),
    "HardShrink": _activation(_hard_shrink, threshold=(_number, 0.5)),
    "Softmax": _softmax(kernels.softmax),
    "LogSoftmax": _softmax(_log_softmax),
    "Glu": OpDef(_glu, params={"axis": (_one_axis, -1)}),
}


# --- the node type ---------------------------------------------------------------------------------


def _computable(value):
    if value.dtype.name not in DTYPES:
        raise Unsupported(f"a {value.dtype} tensor")
    return value


class Op(LayerType):
    kind = "op"

    def __init__(self, definition: OpDef):
        self.definition = definition

    def build(self, builder, layer, entry, where):
        pass

    def _params(self, layer, forced_dtype=None) -> dict:
        """The config's parameters checked as data; unknown ones refused (they could change the math)."""
        spec = self.definition.params
        unknown = sorted(set(layer.config) - set(spec) - {"name"})
        if unknown:
            raise Unsupported(f"setting(s) {', '.join(map(short, unknown))} lstmctl does not know")
        out = {}
        for key, (check, default) in spec.items():
            if key not in layer.config and default is REQUIRED:
                raise LstmctlError(f"its config has no {key}")
            out[key] = check(layer.config[key], key) if key in layer.config else default
        if forced_dtype and out.get("dtype") in FLOATS:
            out["dtype"] = forced_dtype  # a run forced to float64 stays in float64 through casts
        return out

    def _arguments(self, call, tensor) -> dict:
        """The call's saved arguments bound to the op's call signature."""
        names = self.definition.call
        args = [_resolve(a, tensor) for a in (call.raw_args or [])]
        if len(args) > len(names):
            raise LstmctlError(f"takes {len(names)} argument(s), its node gives {len(args)}")
        bound = dict(zip(names, args))
        for key, value in call.kwargs.items():
            if key not in names or key in bound:
                raise LstmctlError(f"its node passes an unexpected argument {short(key)}")
            bound[key] = _resolve(value, tensor)
        missing = [n for n in names if n not in bound]
        if missing:
            raise LstmctlError(f"its node does not give {', '.join(missing)}")
        return bound

    def evaluate(self, layer, call, get, ctx) -> Tensor:
        """The node's value, computed as Keras does; bad node data raises naming the node and file."""
        where = f"{ctx.path}: op '{layer.name}' ({layer.class_name})"
        try:
            params = self._params(layer, ctx.dtype)
            bound = self._arguments(call, lambda ref: _computable(get(ref).value))
            with np.errstate(all="ignore"):  # IEEE results, as Keras gives them (exp overflowing to inf)
                out = np.asarray(self.definition.fn(**bound, **params))
        except (LstmctlError, TypeError, ValueError, IndexError, OverflowError) as exc:  # also NumPy refusing operands
            # inspect's probe (batch 1, random values) goes on past a node it cannot compute, say a
            # reshape that names the batch size: it is listed with its shapes unknown.
            unsupported = ctx.probe or isinstance(exc, Unsupported)
            raise (Unsupported if unsupported else LstmctlError)(f"{where}: {exc}") from None
        return Tensor(_computable(out))

    def facts(self, layer, major) -> dict:
        """What inspect shows: the call as written, tensors named by the layer that made them."""
        try:
            bound = self._arguments(layer.calls[0], _Named) if layer.calls else {}
            params = self._params(layer)
        except LstmctlError:
            return {}
        if layer.class_name == "GetItem":
            key = bound["key"] if isinstance(bound["key"], list) else [bound["key"]]
            return {"call": f"{_text(bound['x'])}[{', '.join(map(_text, key))}]"}
        defaults = {k: default for k, (_, default) in self.definition.params.items()}
        items = [_text(v) for v in bound.values()] + [f"{k}={_text(v)}" for k, v in params.items() if v != defaults[k]]
        return {"call": f"{snake_case(layer.class_name)}({', '.join(items)})"}


class _Named(str):
    """A tensor argument, shown by the name of the layer that made it."""

    def __new__(cls, ref):
        return super().__new__(cls, ref.layer + (f"[{ref.index}]" if ref.index else ""))


def _text(value) -> str:
    if isinstance(value, slice):
        text = ":".join("" if v is None else str(v) for v in (value.start, value.stop, value.step))
        return text.removesuffix(":") if value.step is None else text
    if isinstance(value, np.ndarray):
        return f"<{value.dtype} constant of shape {value.shape}>"
    if isinstance(value, list):
        return "[" + ", ".join(map(_text, value)) + "]"
    return "..." if value is Ellipsis else str(value)


# Looked up apart from the layer registry: "Concatenate", "Add", "Reshape"… are also layers.
OP_TYPES = {name: Op(definition) for name, definition in OPS.items()}
