"""Layers that move values around without computing: Flatten, Reshape, RepeatVector, Permute,
and Cropping, ZeroPadding and UpSampling (nearest) in 1D, 2D and 3D."""

import math

import numpy as np

from .. import config as cfg
from ..config import positive_int
from ..errors import LstmctlError
from .base import LayerType, check_rank, register
from .convolution import channels_first, from_channels_last, rank_of, to_channels_last


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


@register("Permute")
class Permute(LayerType):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        dims = layer.config.get("dims")
        if not isinstance(dims, list) or len(dims) > 32 or not all(cfg.is_int(d) for d in dims) or sorted(dims) != list(range(1, len(dims) + 1)):
            raise LstmctlError(f"{where}: Permute dims {cfg.short(dims)} is not a permutation of 1..n")
        layer.params["dims"] = tuple(dims)

    def forward(self, layer, x, ctx):
        dims = layer.params["dims"]
        check_rank(layer, x, {len(dims) + 1})
        return x.transpose(0, *dims)

    def output_mask(self, layer, args):
        return None

    def facts(self, layer, major):
        return {"dims": list(layer.params["dims"])}


def _pairs(value, rank, where, key) -> list:
    """Keras's cropping / padding forms: n or (a, b) in 1D; per spatial axis n or (a, b) otherwise."""
    entries = [value] if rank == 1 else [value] * rank if cfg.is_int(value) else value
    if not isinstance(entries, list) or len(entries) != rank:
        raise LstmctlError(f"{where}: {key} {cfg.short(value)} does not give {rank} axis(es)")
    out = []
    for entry in entries:
        pair = [entry, entry] if cfg.is_int(entry) else entry
        if not isinstance(pair, list) or len(pair) != 2 or not all(cfg.is_int(v) and 0 <= v <= cfg.MAX_DIM for v in pair):
            raise LstmctlError(f"{where}: {key} {cfg.short(value)} is not made of non-negative integer pairs")
        out.append(pair)
    return out


class Spatial(LayerType):
    """Cropping, ZeroPadding and UpSampling in 1D, 2D and 3D: each spatial axis on its own, in
    either data format. None of them passes a mask on (Keras 3 drops it; tf_keras refuses one)."""

    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        if layer.config.get("dim_ordering", "tf") not in ("tf", "default"):  # Keras 1's "th" is channels_first
            raise LstmctlError(f"{where}: dim_ordering {cfg.short(layer.config['dim_ordering'])} is not supported")
        layer.params["rank"] = rank_of(layer.class_name)
        layer.params["channels_first"] = channels_first(layer.config, where)
        layer.params[self.key] = self.read(layer.config, layer.params["rank"], where)

    def forward(self, layer, x, ctx):
        p = layer.params
        check_rank(layer, x, {p["rank"] + 2})
        y = self.apply(p, to_channels_last(x, p["channels_first"]), f"layer '{layer.name}'")
        return from_channels_last(y, p["channels_first"])

    def read(self, config, rank, where):
        return _pairs(config.get(self.key), rank, where, self.key)

    def output_mask(self, layer, args):
        return None

    def facts(self, layer, major):
        p = layer.params
        return {self.key: p[self.key], "data_format": "channels_first" if p["channels_first"] else "channels_last"}


def _bounded(spatial, x, where):
    """An output with these spatial sizes (and x's channels) must stay within the per-sample cap."""
    size = math.prod(spatial) * x.shape[-1]
    if size > cfg.MAX_SAMPLE_ELEMENTS:
        raise LstmctlError(f"{where}: its output would hold {size} values per sample, over lstmctl's cap of {cfg.MAX_SAMPLE_ELEMENTS}")


@register("Cropping1D", "Cropping2D", "Cropping3D")
class Cropping(Spatial):
    key = "cropping"

    def apply(self, p, x, where):
        if any(a + b >= d for (a, b), d in zip(p["cropping"], x.shape[1:-1])):
            raise LstmctlError(f"{where}: cropping {p['cropping']} leaves nothing of its input {x.shape}")
        return x[(slice(None), *(slice(a, d - b) for (a, b), d in zip(p["cropping"], x.shape[1:-1])))]


@register("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
class ZeroPadding(Spatial):
    key = "padding"

    def apply(self, p, x, where):
        _bounded([d + a + b for (a, b), d in zip(p["padding"], x.shape[1:-1])], x, where)
        return np.pad(x, [(0, 0), *p["padding"], (0, 0)])


@register("UpSampling1D", "UpSampling2D", "UpSampling3D")
class UpSampling(Spatial):
    key = "size"

    def read(self, config, rank, where):
        size = config.get("size", config.get("length"))  # Keras 1's UpSampling1D said length
        interpolation = config.get("interpolation", "nearest")
        if not isinstance(interpolation, str) or interpolation.lower() != "nearest":
            raise LstmctlError(f"{where}: interpolation {cfg.short(interpolation)} is not supported (only nearest)")
        return list(cfg.int_tuple(size, rank, where, "size"))

    def apply(self, p, x, where):
        _bounded([d * s for s, d in zip(p["size"], x.shape[1:-1])], x, where)
        for axis, s in enumerate(p["size"], 1):
            x = np.repeat(x, s, axis=axis)
        return x
