"""Preprocessing layers with fixed arithmetic: Rescaling (x · scale + offset).

Keras 3 lets scale and offset be lists or arrays (saved as `__numpy__` / `__tensor__` objects);
they broadcast against the input from its last axis, the channels_last layout.
"""

import numpy as np

from .. import config as cfg
from ..errors import LstmctlError
from .base import LayerType, cast, register

SAVED_ARRAYS = ("__numpy__", "__tensor__", "__tuple__")


def _constant(config, key, default, where) -> np.ndarray:
    value = config.get(key, default)
    if isinstance(value, dict) and value.get("class_name") in SAVED_ARRAYS and isinstance(value.get("config"), dict):
        value = value["config"].get("value")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.size > cfg.MAX_DIM or not np.all(np.isfinite(array)):
        raise LstmctlError(f"{where}: {key} {cfg.short(value)} is not a number or an array of numbers")
    return array


def _fits(shape, *others) -> bool:
    """Whether the others broadcast onto `shape` without changing it."""
    try:
        return np.broadcast_shapes(shape, *others) == shape
    except ValueError:
        return False


@register("Rescaling")
class Rescaling(LayerType):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["scale"] = _constant(layer.config, "scale", None, where)
        layer.params["offset"] = _constant(layer.config, "offset", 0.0, where)

    def forward(self, layer, x, ctx):
        dtype = ctx.compute_dtype(layer)
        scale, offset = (cast(layer.params[k], dtype) for k in ("scale", "offset"))
        if not _fits(x.shape, scale.shape, offset.shape):
            raise LstmctlError(f"layer '{layer.name}': scale {scale.shape} and offset {offset.shape} do not fit its input {x.shape}")
        return cast(x, dtype) * scale + offset

    def facts(self, layer, major):
        return {k: layer.params[k].tolist() for k in ("scale", "offset")}
