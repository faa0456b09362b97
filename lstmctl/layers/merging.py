"""Merge layers: several tensors in, one out, with each Keras version's mask rule.

Keras 1/2 AND the masks and leave values alone; Keras 3 ORs them (Concatenate counting an
unmasked input as all-true, the others giving no mask unless every input has one), and
Multiply ignores masked positions.
"""

import numpy as np

from .. import config as cfg
from ..errors import LstmctlError
from .base import LayerType, Tensor, register


class Merge(LayerType):
    n_inputs = None  # two or more

    def call(self, layer, args, ctx):
        if len(args) < 2:
            raise LstmctlError(f"layer '{layer.name}': {layer.class_name} needs at least two inputs")
        values = [a.value for a in args]
        masks = [a.mask for a in args]
        try:
            out = self.combine(layer, values, masks, ctx.keras_major)
        except ValueError:
            raise LstmctlError(f"layer '{layer.name}': {layer.class_name} inputs have shapes {[v.shape for v in values]} that do not combine") from None
        return [Tensor(out, self.merged_mask(values, masks, ctx.keras_major))]

    def merged_mask(self, values, masks, major):
        if all(m is None for m in masks):
            return None
        if major < 3:
            return np.logical_and.reduce([m for m in masks if m is not None])
        return None if any(m is None for m in masks) else np.logical_or.reduce(masks)


@register("Concatenate")
class Concatenate(Merge):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["axis"] = cfg.axis(layer.config.get("axis", -1), where)

    def combine(self, layer, values, masks, major):
        return np.concatenate(values, axis=layer.params["axis"])

    def merged_mask(self, values, masks, major):
        if major >= 3 and any(m is not None for m in masks):
            return np.logical_or.reduce([np.ones(v.shape[:2], bool) if m is None else m for v, m in zip(values, masks)])
        return super().merged_mask(values, masks, major)

    def facts(self, layer, major):
        return {"axis": layer.params["axis"]}


@register("Add")
class Add(Merge):
    def combine(self, layer, values, masks, major):
        return sum(values[1:], values[0])


@register("Average")
class Average(Merge):
    def combine(self, layer, values, masks, major):
        return sum(values[1:], values[0]) / len(values)


@register("Multiply")
class Multiply(Merge):
    def combine(self, layer, values, masks, major):
        if major >= 3 and all(m is not None for m in masks):
            out = np.ones_like(values[0])
            for v, m in zip(values, masks):
                out = out * np.where(m[..., None], v, 1)
            return np.where(np.logical_or.reduce(masks)[..., None], out, 0)
        out = values[0]
        for v in values[1:]:
            out = out * v
        return out
