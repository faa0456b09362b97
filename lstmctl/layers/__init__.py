"""Layer types by family, one module each, registered under Keras class names (see base.py).

Importing this package imports every family module in it, which registers its layers;
`lookup` finds a class name's type.
"""

import importlib
import pkgutil

from .base import REGISTRY, Context, LayerType, Tensor
from .ops import OP_TYPES, is_op

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")  # our own family modules only: each registers its layers

__all__ = ["REGISTRY", "OP_TYPES", "Context", "LayerType", "Tensor", "is_op", "lookup"]


def lookup(class_name: str):
    """The registered type for a Keras class name, or None (an opaque layer)."""
    return REGISTRY.get(class_name)
