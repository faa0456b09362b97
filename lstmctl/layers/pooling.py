"""Pooling: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and the global poolings.

Windows move as a convolution's do (convolution.Window, TF's padding). Max pooling never lets a
padded position win; TF's "same" average pooling divides each window's sum by the number of
input positions it covers, not by the pool size. Of the global poolings only
GlobalAveragePooling1D reads a mask: the mean over unmasked steps, with masked steps zeroed by
`where` in Keras 3 and by multiplying with the mask in Keras 2 (the same for finite values;
NaN·0 stays NaN). A fully masked sample is 0/0 = NaN there, as in Keras. No pooling layer passes
a mask on.
"""

import numpy as np

from .. import config as cfg
from ..errors import LstmctlError
from .base import LayerType, Tensor, cast, check_rank, register
from .convolution import channels_first, from_channels_last, rank_of, read_window, to_channels_last

MAX = ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D")
AVERAGE = ("AveragePooling1D", "AveragePooling2D", "AveragePooling3D")
GLOBAL_MAX = ("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D")
GLOBAL_AVERAGE = ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D")


def max_pool(x, window, where):
    out = window.output_shape(x.shape[1:-1], where)
    y = np.full((x.shape[0], *out, x.shape[-1]), -np.inf, x.dtype)
    for _, at, source in window.taps(x.shape[1:-1]):
        np.maximum(y[at], x[source], out=y[at])
    return y


def average_pool(x, window, where):
    out = window.output_shape(x.shape[1:-1], where)
    total = np.zeros((x.shape[0], *out, x.shape[-1]), x.dtype)
    count = np.zeros((1, *out, 1), x.dtype)  # input positions each window covers
    for _, at, source in window.taps(x.shape[1:-1]):
        total[at] += x[source]
        count[at] += 1
    return total / count


class PoolingBase(LayerType):
    """Rank and data_format; the input in channels_last; no mask passed on."""

    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["rank"] = rank_of(layer.class_name)
        layer.params["channels_first"] = channels_first(layer.config, where)

    def channels_last_input(self, layer, x, ctx):
        check_rank(layer, x, {layer.params["rank"] + 2})
        return to_channels_last(cast(x, ctx.compute_dtype(layer)), layer.params["channels_first"])

    def output_mask(self, layer, args):
        return None

    def facts(self, layer, major):
        return {"data_format": "channels_first" if layer.params["channels_first"] else "channels_last"}


@register(*MAX, *AVERAGE)
class Pooling(PoolingBase):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        # strides default to the pool size (Keras: strides=None)
        layer.params["window"] = read_window(layer.config, layer.params["rank"], where, size_key="pool_size", default_strides=layer.config.get("pool_size"))
        layer.params["pool"] = max_pool if layer.class_name in MAX else average_pool

    def forward(self, layer, x, ctx):
        p = layer.params
        y = p["pool"](self.channels_last_input(layer, x, ctx), p["window"], f"{ctx.path}: layer '{layer.name}'")
        return from_channels_last(y, p["channels_first"])

    def facts(self, layer, major):
        window = layer.params["window"]
        return {"pool_size": list(window.size), "strides": list(window.strides), "padding": window.padding, **super().facts(layer, major)}


@register(*GLOBAL_MAX, *GLOBAL_AVERAGE)
class GlobalPooling(PoolingBase):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["keepdims"] = cfg.flag(layer.config, "keepdims", where)

    def call(self, layer, args, ctx):
        x, mask = self.channels_last_input(layer, args[0].value, ctx), args[0].mask
        axes = tuple(range(1, x.ndim - 1))
        if 0 in x.shape[1:-1]:
            raise LstmctlError(f"{ctx.path}: layer '{layer.name}': nothing to pool: its input has shape {args[0].value.shape}")
        if layer.class_name in GLOBAL_MAX:
            y = np.max(x, axis=axes, keepdims=True)
        elif layer.class_name == "GlobalAveragePooling1D" and mask is not None:
            y = _masked_mean(layer, x, mask, ctx.keras_major)
        else:
            y = np.mean(x, axis=axes, keepdims=True)
        y = from_channels_last(y, layer.params["channels_first"])
        return [Tensor(y if layer.params["keepdims"] else y.reshape(y.shape[0], -1))]

    def facts(self, layer, major):
        mask = "mean over unmasked steps" if layer.class_name == "GlobalAveragePooling1D" else "ignored"
        return {"keepdims": layer.params["keepdims"], "mask": mask, **super().facts(layer, major)}


def _masked_mean(layer, x, mask, major):
    if mask.shape != x.shape[:2]:
        raise LstmctlError(f"layer '{layer.name}': its mask has shape {mask.shape}, its input {x.shape}")
    keep = mask[:, :, None]
    weights = keep.astype(x.dtype)
    values = np.where(keep, x, 0) if major >= 3 else x * weights
    with np.errstate(invalid="ignore", divide="ignore"):  # a fully masked sample: 0/0 = NaN, as in Keras
        return np.sum(values, axis=1, keepdims=True) / np.sum(weights, axis=1, keepdims=True)
