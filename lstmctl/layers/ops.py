"""keras.ops nodes that Keras 3 records in a Functional graph (mask computation, tensor code).

A node's saved arguments mix tensor references and constants; tensors are substituted, and
constants must be plain data (numbers, booleans, None, lists of them).
"""

import numpy as np

from ..config import OPS_MODULES, tensor_refs
from ..errors import LstmctlError, Unsupported
from .base import LayerType, Tensor

_BOOL_OR_NUMBER = (bool, int, float)
_OP_DTYPES = {"bool", "float16", "float32", "float64", "int32", "int64", "uint8"}


def is_op(entry, layer_classes) -> bool:
    """A keras.ops node. Keras 3's legacy .h5 configs drop the module: then the name decides, and
    for Concatenate (also a layer) the config does: a layer's always has `trainable`."""
    cls, module = entry.get("class_name"), entry.get("module")
    if cls not in OPS:
        return False
    if module is None:
        config = entry.get("config")
        return cls not in layer_classes or (isinstance(config, dict) and "trainable" not in config)
    return isinstance(module, str) and module.startswith(OPS_MODULES)


class Op(LayerType):
    kind = "op"

    def __init__(self, fn, params=()):
        self.fn = fn
        self.params = params

    def build(self, builder, layer, entry, where):
        pass

    def evaluate(self, layer, call, get, ctx) -> Tensor:
        """The node's value: its tensor arguments substituted, constants checked to be plain data."""

        def resolve(arg):
            if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
                return get(tensor_refs(arg, f"op '{layer.name}'")[0]).value
            if isinstance(arg, list):
                return [resolve(a) for a in arg]
            if arg is None or isinstance(arg, _BOOL_OR_NUMBER):
                return arg
            raise Unsupported(f"{ctx.path}: op '{layer.name}' ({layer.class_name}) has an argument lstmctl does not evaluate")

        args = [resolve(a) for a in (call.raw_args or [])]
        kwargs = {}
        for key in self.params:
            if key in layer.config:
                value = layer.config[key]
                if key == "dtype" and value not in _OP_DTYPES:
                    raise Unsupported(f"{ctx.path}: op '{layer.name}' has dtype {value!r}")
                kwargs[key] = value
        try:
            return Tensor(np.asarray(self.fn(*args, **kwargs)))
        except (TypeError, ValueError) as exc:
            raise LstmctlError(f"{ctx.path}: op '{layer.name}' ({layer.class_name}) failed: {exc}") from None


# class name -> (function, config params)
OPS = {
    "NotEqual": (np.not_equal, ()),
    "Equal": (np.equal, ()),
    "Any": (np.any, ("axis", "keepdims")),
    "All": (np.all, ("axis", "keepdims")),
    "ExpandDims": (np.expand_dims, ("axis",)),
    "ZerosLike": (np.zeros_like, ("dtype",)),
    "OnesLike": (np.ones_like, ("dtype",)),
    "LogicalOr": (np.logical_or, ()),
    "LogicalAnd": (np.logical_and, ()),
    "LogicalNot": (np.logical_not, ()),
    "Concatenate": (lambda xs, axis=-1: np.concatenate(xs, axis=axis), ("axis",)),
}
# Looked up apart from the layer registry: "Concatenate" is both a layer and an op.
OP_TYPES = {name: Op(fn, params) for name, (fn, params) in OPS.items()}

