"""Activation layers: LeakyReLU, PReLU, ELU, ReLU, Softmax, ThresholdedReLU. Each passes its
input's mask on.

Softmax reads the mask (broadcast against its input from the right, as Keras does): Keras 3
sets masked positions to -1e9 and zeroes them in the output, so a fully masked row is all
zeros; tf_keras adds -1e9 to them and leaves the output alone, so such a row comes out about
uniform (its `robust_masking` sets them to -1e9 instead of adding).
"""

import numpy as np

from .. import config as cfg
from ..errors import LstmctlError
from .base import LayerType, Tensor, cast, register
from .normalization import read_axes


def softmax(x, axis):
    with np.errstate(under="ignore"):  # far-off (masked) positions rightly come out 0
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def large_negative(dtype, keras_major):
    """What Keras puts at masked positions before a softmax (float16 cannot hold -1e9)."""
    if np.dtype(dtype) == np.float16:
        return np.float16(-3e4) if keras_major >= 3 else np.finfo(np.float16).min / 2
    return np.dtype(dtype).type(-1e9)


def masked_softmax(x, mask, axis, keras_major, robust=False):
    """Softmax over `axis` of x with mask (bool, broadcastable to x) marking what counts."""
    if mask is None:
        return softmax(x, axis)
    negative = large_negative(x.dtype, keras_major)
    if keras_major >= 3:
        return np.where(mask, softmax(np.where(mask, x, negative), axis), x.dtype.type(0))
    return softmax(np.where(mask, x, negative) if robust else x + (1 - mask.astype(x.dtype)) * negative, axis)


def _number(config, keys, default, where, minimum=None):
    """The first of `keys` the config has (a renamed option), as a float."""
    key = next((k for k in keys if k in config), keys[0])
    value = cfg.number(config, key, where, default)
    if minimum is not None and value < minimum:
        raise LstmctlError(f"{where}: {key} {value} is below {minimum}")
    return value


class Elementwise(LayerType):
    """f(x) with the parameters `build` reads into layer.params."""

    def forward(self, layer, x, ctx):
        return self.f(cast(x, ctx.compute_dtype(layer)), **layer.params["f"])

    def facts(self, layer, major):
        return dict(layer.params["f"])


@register("LeakyReLU")
class LeakyReLU(Elementwise):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        # Keras 3 renamed alpha to negative_slope (and still reads alpha first).
        layer.params["f"] = {"negative_slope": _number(layer.config, ("alpha", "negative_slope"), 0.3, where)}

    @staticmethod
    def f(x, negative_slope):
        return np.where(x > 0, x, x * x.dtype.type(negative_slope))


@register("ELU")
class ELU(Elementwise):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["f"] = {"alpha": _number(layer.config, ("alpha",), 1.0, where)}

    @staticmethod
    def f(x, alpha):
        return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))


@register("ReLU")
class ReLU(Elementwise):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        config = layer.config
        max_value = None if config.get("max_value") is None else _number(config, ("max_value",), None, where, 0)
        layer.params["f"] = {
            "max_value": max_value,
            "negative_slope": _number(config, ("negative_slope",), 0.0, where, 0),
            "threshold": _number(config, ("threshold",), 0.0, where, 0),
        }

    @staticmethod
    def f(x, max_value, negative_slope, threshold):
        """Keras's relu: x above the threshold (capped at max_value), else negative_slope·(x - threshold)."""
        t = x.dtype.type(threshold)
        y = np.where(x > t, x, 0)
        if max_value is not None:
            y = np.minimum(y, x.dtype.type(max_value))
        return y - x.dtype.type(negative_slope) * np.maximum(t - x, 0)


@register("ThresholdedReLU")
class ThresholdedReLU(Elementwise):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["f"] = {"theta": _number(layer.config, ("theta",), 1.0, where, 0)}

    @staticmethod
    def f(x, theta):
        return x * (x > x.dtype.type(theta))


@register("PReLU")
class PReLU(LayerType):
    n_weights = 1

    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        shared = layer.config.get("shared_axes")
        shared = [] if shared is None else read_axes(shared, where, "shared_axes")
        if any(a < 1 for a in shared):
            raise LstmctlError(f"{where}: shared_axes {shared} must name axes after the batch axis")
        alpha = layer.weights[0]
        if alpha.ndim < max(shared, default=0) or any(alpha.shape[a - 1] != 1 for a in shared):
            raise LstmctlError(f"{where}: PReLU alpha has shape {alpha.shape}, which is not 1 along shared_axes {shared}")
        layer.params["shared_axes"] = shared

    def forward(self, layer, x, ctx):
        alpha = layer.weights[0]
        want = tuple(1 if a in layer.params["shared_axes"] else d for a, d in enumerate(x.shape[1:], 1))
        if alpha.shape != want:
            raise LstmctlError(f"layer '{layer.name}': PReLU alpha has shape {alpha.shape}, its input needs {want}")
        x = cast(x, ctx.compute_dtype(layer))
        return np.maximum(x, 0) - cast(alpha, x.dtype) * np.maximum(-x, 0)

    def facts(self, layer, major):
        return {"shared_axes": layer.params["shared_axes"] or None}


@register("Softmax")
class Softmax(LayerType):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["axes"] = read_axes(layer.config.get("axis", -1), where)
        layer.params["robust"] = cfg.flag(layer.config, "robust_masking", where)

    def call(self, layer, args, ctx):
        x = cast(args[0].value, ctx.compute_dtype(layer))
        axes = layer.params["axes"]
        if any(not -x.ndim <= a < x.ndim for a in axes):
            raise LstmctlError(f"layer '{layer.name}': axis {axes} does not fit its rank-{x.ndim} input")
        mask = args[0].mask
        if mask is not None:
            try:
                mask = np.broadcast_to(mask, x.shape)
            except ValueError:
                raise LstmctlError(f"layer '{layer.name}': its mask {mask.shape} does not broadcast to its input {x.shape} (Keras refuses it too)") from None
        return [Tensor(masked_softmax(x, mask, tuple(axes), ctx.keras_major, layer.params["robust"]), args[0].mask)]

    def facts(self, layer, major):
        return {"axis": layer.params["axes"]}
