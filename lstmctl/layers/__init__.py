"""Layer types by family, registered under Keras class names (see base.py).

Importing this package registers every family; `lookup` finds a class name's type.
"""

from . import core, merging, recurrent, reshaping, wrappers  # noqa: F401  (each registers its layers)
from .base import REGISTRY, Context, LayerType, Tensor
from .ops import OP_TYPES, is_op

__all__ = ["REGISTRY", "OP_TYPES", "Context", "LayerType", "Tensor", "is_op", "lookup"]


def lookup(class_name: str):
    """The registered type for a Keras class name, or None (an opaque layer)."""
    return REGISTRY.get(class_name)
