"""Layers that move values around without computing: Flatten, Reshape, RepeatVector."""

import numpy as np

from .. import config as cfg
from ..errors import LstmctlError
from ..safejson import positive_int
from .base import LayerType, register


@register("Flatten")
class Flatten(LayerType):
    def forward(self, layer, x, ctx):
        return x.reshape(x.shape[0], -1)

    def output_mask(self, layer, args):
        return None


@register("Reshape")
class Reshape(LayerType):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        target = layer.config.get("target_shape")
        if not isinstance(target, list) or not target or len(target) > 32 or any(not cfg.is_int(d) or not (d == -1 or 1 <= d <= cfg.MAX_DIM) for d in target):
            raise LstmctlError(f"{where}: target_shape {cfg.short(target)} is not a list of positive integers")
        if target.count(-1) > 1:
            raise LstmctlError(f"{where}: target_shape {cfg.short(target)} has more than one -1")
        layer.params["target_shape"] = tuple(target)

    def forward(self, layer, x, ctx):
        target = layer.params["target_shape"]
        try:
            return x.reshape(x.shape[0], *target)
        except ValueError:
            raise LstmctlError(f"layer '{layer.name}': cannot reshape {x.shape[1:]} to {target}") from None

    def output_mask(self, layer, args):
        return None

    def facts(self, layer, major):
        return {"target_shape": list(layer.params["target_shape"])}


@register("RepeatVector")
class RepeatVector(LayerType):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["n"] = positive_int(layer.config.get("n"), f"{where}: n", cfg.MAX_DIM)

    def forward(self, layer, x, ctx):
        if x.ndim != 2:
            raise LstmctlError(f"layer '{layer.name}': RepeatVector expects (batch, features), got {x.shape}")
        return np.repeat(x[:, None, :], layer.params["n"], axis=1)

    def output_mask(self, layer, args):
        return None

    def facts(self, layer, major):
        return {"n": layer.params["n"]}
