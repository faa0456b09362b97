"""Layer types by family, one module each, registered under Keras class names (see base.py).

The registry imports a family module the first time a model names one of its classes; `lookup`
finds a class name's type. keras.ops nodes are in ops.py, imported when a model has one.
"""

from ..config import OPS_MODULES
from .base import REGISTRY, Context, LayerType, Tensor

__all__ = ["REGISTRY", "Context", "LayerType", "Tensor", "is_op", "lookup", "op_type"]


def lookup(class_name: str):
    """The registered type for a Keras class name, or None (an opaque layer)."""
    return REGISTRY.get(class_name)


def is_op(entry) -> bool:
    """A keras.ops node. Keras 3's legacy .h5 configs drop the module: then the name decides, and
    for a class that is also a layer (Concatenate, Add, Reshape, Softmax…) the config does: a
    layer's always has `trainable`. ops.py is imported only for a name that may be an op."""
    cls, module = entry.get("class_name"), entry.get("module")
    if module is None:
        config = entry.get("config")
        if cls in REGISTRY and not (isinstance(config, dict) and "trainable" not in config):
            return False
    elif not (isinstance(module, str) and module.startswith(OPS_MODULES)):
        return False
    from .ops import OPS

    return cls in OPS


def op_type(class_name: str):
    """The keras.ops node type of a class name is_op accepted."""
    from .ops import OP_TYPES

    return OP_TYPES[class_name]


def __getattr__(name):
    if name == "OP_TYPES":  # the table of keras.ops node types, for code that lists them
        from .ops import OP_TYPES

        return OP_TYPES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
