"""Merge layers: several tensors in, one out, with each Keras version's mask rule.

Keras 1/2 AND the masks and leave values alone; Keras 3 ORs them (Concatenate counting an
unmasked input as all-true, the others giving no mask unless every input has one), and
Multiply, Maximum and Minimum skip masked positions: Multiply counts them as 1 (and zeroes
what no input covers when every input has a mask); Maximum and Minimum take the other operand
there, until an unmasked input ends the masking.

The elementwise merges give a lower-rank input new axes after the batch axis until the ranks
agree (Concatenate does not).
"""

import numpy as np

from .. import config as cfg
from ..errors import LstmctlError
from .base import LayerType, Tensor, register


class Merge(LayerType):
    n_inputs = None  # two or more
    elementwise = True

    def call(self, layer, args, ctx):
        if len(args) < 2:
            raise LstmctlError(f"layer '{layer.name}': {layer.class_name} needs at least two inputs")
        values = [a.value for a in args]
        masks = [a.mask for a in args]
        if self.elementwise:
            rank = max(v.ndim for v in values)
            values = [v.reshape(v.shape[:1] + (1,) * (rank - v.ndim) + v.shape[1:]) for v in values]
        try:  # Keras 1/2 compute the values as if nothing were masked
            out = self.combine(layer, values, masks if ctx.keras_major >= 3 else [None] * len(values))
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
    elementwise = False

    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["axis"] = cfg.axis(layer.config.get("axis", -1), where)

    def combine(self, layer, values, masks):
        return np.concatenate(values, axis=layer.params["axis"])

    def merged_mask(self, values, masks, major):
        if major >= 3 and any(m is not None for m in masks):
            return np.logical_or.reduce([np.ones(v.shape[:2], bool) if m is None else m for v, m in zip(values, masks)])
        return super().merged_mask(values, masks, major)

    def facts(self, layer, major):
        return {"axis": layer.params["axis"]}


@register("Add")
class Add(Merge):
    def combine(self, layer, values, masks):
        return sum(values[1:], values[0])


@register("Average")
class Average(Merge):
    def combine(self, layer, values, masks):
        return sum(values[1:], values[0]) / len(values)


@register("Subtract")
class Subtract(Merge):
    def combine(self, layer, values, masks):
        if len(values) != 2:
            raise LstmctlError(f"layer '{layer.name}': Subtract takes exactly two inputs, got {len(values)}")
        return values[0] - values[1]


def _positions(mask, value):
    """A (batch, time) mask spread over every value of the step."""
    return np.broadcast_to(mask.reshape(mask.shape + (1,) * (value.ndim - mask.ndim)), value.shape)


@register("Multiply")
class Multiply(Merge):
    def combine(self, layer, values, masks):
        out = None
        for v, m in zip(values, masks):
            v = v if m is None else np.where(_positions(m, v), v, v.dtype.type(1))
            out = v if out is None else out * v
        if all(m is not None for m in masks):
            out = np.where(_positions(np.logical_or.reduce(masks), out), out, out.dtype.type(0))
        return out


@register("Maximum", "Minimum")
class Extremum(Merge):
    def combine(self, layer, values, masks):
        op = np.maximum if layer.class_name == "Maximum" else np.minimum
        out, out_mask = values[0], masks[0]
        for v, m in zip(values[1:], masks[1:]):
            if m is not None:
                v = np.where(_positions(m, v), v, out)
            if out_mask is not None:
                out = np.where(_positions(out_mask, out), out, v)
            out_mask = None if m is None or out_mask is None else out_mask | m
            out = op(out, v)
        return out
