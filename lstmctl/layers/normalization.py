"""Normalization at inference: BatchNormalization (moving statistics), LayerNormalization and
UnitNormalization. All three pass their input's mask on and ignore it.

Where the versions differ:
* BatchNormalization: tf_keras takes a list of axes (its weights then have the input's rank, 1
  on the other axes); Keras 3 one axis. Renormalization keeps three more arrays, unused here.
* LayerNormalization: the weights' axes are in the order Keras keeps them, sorted as given in
  Keras 3, made positive but unsorted in tf_keras; a weight of several axes is reshaped (not
  transposed) onto them, as Keras does. Keras 3's `rms_scaling` divides by the standard
  deviation without centring and has no beta.
* L2 normalization (UnitNormalization, Dot's `normalize`): Keras 3 multiplies by
  min(1/‖x‖, 1/ε), tf_keras's l2_normalize by 1/sqrt(max(‖x‖², ε)): both x / sqrt(max(‖x‖², floor))
  with floor ε² (ε = 1e-12 for UnitNormalization, 1e-7 for Dot) in Keras 3, 1e-12 in tf_keras.
"""

import re

import numpy as np

from .. import config as cfg
from ..errors import LstmctlError
from .base import LayerType, cast, register

MAX_AXES = 32


def read_axes(value, where, key="axis") -> list:
    """An axis or a list of distinct axes, as given (negative ones stay negative)."""
    items = value if isinstance(value, list) else [value]
    if not items or len(items) > MAX_AXES:
        raise LstmctlError(f"{where}: {key} {cfg.short(value)} is not an axis or a list of axes")
    return [cfg.axis(a, where, key) for a in items]


def positive_axes(layer, axes, ndim) -> list:
    """The axes counted from 0 for a rank-`ndim` input; each must exist and appear once."""
    if any(not -ndim <= a < ndim for a in axes):
        raise LstmctlError(f"layer '{layer.name}': axis {axes} does not fit its rank-{ndim} input")
    out = [a % ndim for a in axes]
    if len(set(out)) != len(out):
        raise LstmctlError(f"layer '{layer.name}': axis {axes} names an axis twice")
    return out


def l2_normalize(x, axis, floor):
    """x / ‖x‖ over `axis`, the squared norm floored (module docstring)."""
    squares = np.sum(np.square(x), axis=axis, keepdims=True)
    return x / np.sqrt(np.maximum(squares, x.dtype.type(floor)))


def scale_shift(x, mean, variance, gamma, beta, epsilon):
    """(x - mean) / sqrt(variance + epsilon) · gamma + beta, folded as tf.nn.batch_normalization folds it."""
    inv = 1 / np.sqrt(variance + x.dtype.type(epsilon))
    if gamma is not None:
        inv = inv * gamma
    return x * inv + (-mean * inv if beta is None else beta - mean * inv)


def _weight_shape(layer, weight, want, what):
    if weight.shape != want:
        raise LstmctlError(f"layer '{layer.name}': {what} has shape {weight.shape}, its input needs {want}")


@register("BatchNormalization")
class BatchNormalization(LayerType):
    def weight_count(self, config, where):
        extra = 3 if cfg.flag(config, "renorm", where) else 0  # moving_stddev, renorm_mean, renorm_stddev
        return cfg.flag(config, "scale", where, True) + cfg.flag(config, "center", where, True) + 2 + extra

    def v3_weights(self, store, path, config):
        return store.vars(path) or []

    def build(self, builder, layer, entry, where):
        config, p = layer.config, layer.params
        mode = config.get("mode", 0)  # Keras 1: modes 1 and 2 use the batch's own statistics
        if mode != 0:
            raise LstmctlError(f"{where}: BatchNormalization mode {cfg.short(mode)} normalizes with batch statistics; only mode 0 is read")
        if re.match(r"\s*1\.0\b", builder.saved.keras_version or ""):  # kept a standard deviation, not a variance
            raise LstmctlError(f"{where}: BatchNormalization saved by Keras {builder.saved.keras_version} is not supported (Keras 1.1 and later are)")
        if config.get("virtual_batch_size") is not None:
            raise LstmctlError(f"{where}: BatchNormalization with a virtual_batch_size is not supported")
        axes = read_axes(config.get("axis", -1), where)
        if builder.major >= 3 and len(axes) != 1:
            raise LstmctlError(f"{where}: a Keras 3 BatchNormalization takes one axis, got {cfg.short(config.get('axis'))}")
        p["axes"] = axes
        p["epsilon"] = cfg.number(config, "epsilon", where, 1e-3)
        p["scale"] = cfg.flag(config, "scale", where, True)
        p["center"] = cfg.flag(config, "center", where, True)
        w = layer.weights
        want = self.weight_count(config, where)
        if len(w) != want:
            raise LstmctlError(f"{where}: BatchNormalization should hold {want} weight arrays (center={p['center']}, scale={p['scale']}), found {len(w)}")
        gamma = w[0] if p["scale"] else None
        beta = w[int(p["scale"])] if p["center"] else None
        mean, variance = w[p["scale"] + p["center"] :][:2]
        if any(a.shape != mean.shape for a in (variance, gamma, beta) if a is not None) or (len(axes) == 1 and mean.ndim != 1):
            raise LstmctlError(f"{where}: BatchNormalization weights {[a.shape for a in w]} do not share one shape")
        if np.any(variance + p["epsilon"] < 0):
            raise LstmctlError(f"{where}: BatchNormalization's moving_variance + epsilon is negative somewhere; its output would be NaN")
        p["gamma"], p["beta"], p["mean"], p["variance"] = gamma, beta, mean, variance

    def forward(self, layer, x, ctx):
        p = layer.params
        axes = positive_axes(layer, p["axes"], x.ndim)
        # One axis: vectors along it. Several (tf_keras): arrays of the input's rank, 1 elsewhere.
        full = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
        want = (x.shape[axes[0]],) if len(axes) == 1 else tuple(full)
        _weight_shape(layer, p["mean"], want, "moving_mean")
        dtype = ctx.compute_dtype(layer)
        mean, variance, gamma, beta = (None if a is None else cast(a, dtype).reshape(full) for a in (p["mean"], p["variance"], p["gamma"], p["beta"]))
        return scale_shift(cast(x, dtype), mean, variance, gamma, beta, p["epsilon"])

    def facts(self, layer, major):
        p = layer.params
        return {"axis": p["axes"][0] if len(p["axes"]) == 1 else p["axes"], "epsilon": p["epsilon"], "center": p["center"], "scale": p["scale"]}


@register("LayerNormalization")
class LayerNormalization(LayerType):
    def _flags(self, config, where, major):
        rms = cfg.flag(config, "rms_scaling", where) if major >= 3 else False
        scale = cfg.flag(config, "scale", where, True) or rms
        center = cfg.flag(config, "center", where, True) and not rms
        return rms, scale, center

    def weight_count(self, config, where):
        # rms_scaling is only ever in a Keras 3 config (build refuses it in older files).
        _, scale, center = self._flags(config, where, 3)
        return scale + center

    def v3_weights(self, store, path, config):
        return store.vars(path) or []

    def build(self, builder, layer, entry, where):
        config, p = layer.config, layer.params
        if builder.major < 3 and cfg.flag(config, "rms_scaling", where):
            raise LstmctlError(f"{where}: rms_scaling is a Keras 3 option, found in a Keras {builder.major} file")
        p["rms"], p["scale"], p["center"] = self._flags(config, where, builder.major)
        p["axes"] = read_axes(config.get("axis", -1), where)
        p["epsilon"] = cfg.number(config, "epsilon", where, 1e-3)
        w = layer.weights
        if len(w) != p["scale"] + p["center"]:
            raise LstmctlError(f"{where}: LayerNormalization should hold {p['scale'] + p['center']} weight arrays (center={p['center']}, scale={p['scale']}), found {len(w)}")
        if any(a.shape != w[0].shape or a.ndim != len(p["axes"]) for a in w):
            raise LstmctlError(f"{where}: LayerNormalization weights {[a.shape for a in w]} do not fit axis {p['axes']}")
        p["gamma"] = w[0] if p["scale"] else None
        p["beta"] = w[-1] if p["center"] else None

    def forward(self, layer, x, ctx):
        p = layer.params
        positive = positive_axes(layer, p["axes"], x.ndim)
        # The order Keras keeps the weights' axes in (module docstring).
        order = [a % x.ndim for a in sorted(p["axes"])] if ctx.keras_major >= 3 else positive
        full = [x.shape[a] if a in positive else 1 for a in range(x.ndim)]
        dtype = ctx.compute_dtype(layer)
        gamma, beta = (None if a is None else cast(a, dtype) for a in (p["gamma"], p["beta"]))
        for weight, what in ((gamma, "gamma"), (beta, "beta")):
            if weight is not None:
                _weight_shape(layer, weight, tuple(x.shape[a] for a in order), what)
        gamma, beta = (None if a is None else a.reshape(full) for a in (gamma, beta))
        x = cast(x, dtype)
        mean = np.mean(x, axis=tuple(positive), keepdims=True)
        variance = np.mean(np.square(x - mean), axis=tuple(positive), keepdims=True)
        if p["rms"]:
            return x / np.sqrt(variance + x.dtype.type(p["epsilon"])) * gamma
        return scale_shift(x, mean, variance, gamma, beta, p["epsilon"])

    def facts(self, layer, major):
        p = layer.params
        return {"axis": p["axes"], "epsilon": p["epsilon"], "center": p["center"], "scale": p["scale"], **({"rms_scaling": True} if p["rms"] else {})}


@register("UnitNormalization")
class UnitNormalization(LayerType):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["axes"] = read_axes(layer.config.get("axis", -1), where)

    def forward(self, layer, x, ctx):
        axes = positive_axes(layer, layer.params["axes"], x.ndim)
        return l2_normalize(cast(x, ctx.compute_dtype(layer)), tuple(axes), 1e-24 if ctx.keras_major >= 3 else 1e-12)

    def facts(self, layer, major):
        return {"axis": layer.params["axes"]}
