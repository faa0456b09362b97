"""Convolutions: Conv1D/2D/3D, SeparableConv1D/2D, DepthwiseConv1D/2D, and the n-d convolution
they share with the pooling layers and ConvLSTM.

A `Window` (kernel or pool size, strides, dilation_rate, padding) says, for each offset of the
window, which input positions it meets at every output position. A convolution (Keras's ops.conv,
a cross-correlation) sums, over the offsets, the input values met times that offset's
(in, filters) matrix; offsets over the padding are left out (they add zeros), so the padding is
never built and memory stays at the size of the input and the output. Layouts are Keras's:
x (batch, *spatial, channels), kernel (*kernel_size, in/groups, filters), bias (filters,).
Padding is TF's: "same" gives ceil(size/stride) outputs with the extra padding after, "causal"
(1D) pads before only.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from .. import config as cfg
from .. import kernels
from ..config import positive_int
from ..errors import LstmctlError
from .base import LayerType, cast, check_rank, register


def _ceil_div(a, b):
    return -(-a // b)


def _axis_taps(n, k, stride, dilation, padding):
    """Along one spatial axis of length n: the output length, and (offset, output slice, input
    slice) for each kernel offset that meets the input somewhere."""
    extent = (k - 1) * dilation + 1
    if padding == "valid":
        out, before = (n - extent) // stride + 1, 0
    else:  # same, causal: ceil(n / stride) outputs
        out = _ceil_div(n, stride)
        before = extent - 1 if padding == "causal" else max((out - 1) * stride + extent - n, 0) // 2
    taps = []
    if out < 1:
        return out, taps
    # Offset j meets input position o·stride + j·dilation - before; only offsets that can reach
    # [0, n) are walked, so the loop is bounded by the input whatever the window's size.
    for j in range(max(0, _ceil_div(before - (out - 1) * stride, dilation)), min(k - 1, (before + n - 1) // dilation) + 1):
        shift = j * dilation - before
        lo, hi = max(0, _ceil_div(-shift, stride)), min(out - 1, (n - 1 - shift) // stride)
        if lo <= hi:
            start = lo * stride + shift
            taps.append((j, slice(lo, hi + 1), slice(start, start + (hi - lo) * stride + 1, stride)))
    return out, taps


@dataclass(frozen=True)
class Window:
    """How a kernel (or a pooling window) of `size` moves over the spatial axes."""

    size: tuple
    strides: tuple
    dilation: tuple
    padding: str  # valid | same | causal

    def _axes(self, spatial):
        return [_axis_taps(n, k, s, d, self.padding) for n, k, s, d in zip(spatial, self.size, self.strides, self.dilation)]

    def output_shape(self, spatial, where) -> tuple:
        out = tuple(o for o, _ in self._axes(spatial))
        if min(out, default=1) < 1:
            raise LstmctlError(f"{where}: a window of {self.size} (dilation_rate {self.dilation}, padding {self.padding}) does not fit the input's spatial shape {tuple(spatial)}")
        return out

    def taps(self, spatial):
        """For every offset of the window that meets the input: (offset, output index, input index)."""
        for combo in itertools.product(*(taps for _, taps in self._axes(spatial))):
            yield tuple(j for j, _, _ in combo), (slice(None), *(o for _, o, _ in combo)), (slice(None), *(i for _, _, i in combo))

    def facts(self) -> dict:
        return {"strides": list(self.strides), "padding": self.padding, "dilation_rate": list(self.dilation)}


def convolve(x, kernel, window: Window, groups=1, where="convolution"):
    """x (batch, *spatial, in) with kernel (*size, in/groups, filters) -> (batch, *out, filters)."""
    out = window.output_shape(x.shape[1:-1], where)
    dtype = np.result_type(x, kernel)
    # Summed tap by tap in float64: a float32 sum rounds once per tap, and after a few layers that
    # drifts past 1e-5 from TensorFlow's (one blocked product) on some CPUs' BLAS kernels.
    wide = np.promote_types(dtype, np.float64)
    x, kernel = x.astype(wide, copy=False), kernel.astype(wide, copy=False)
    y = np.zeros((x.shape[0], *out, kernel.shape[-1]), wide)
    for offset, at, source in window.taps(x.shape[1:-1]):
        y[at] += _product(x[source], kernel[offset], groups)
    return y.astype(dtype, copy=False)


def _product(values, w, groups):
    """values (…, in) times one offset's w (in/groups, filters): input channel group g meets filter group g."""
    if groups == 1:
        return values @ w
    per_group, filters = w.shape
    v = values.reshape(*values.shape[:-1], groups, per_group)
    return np.einsum("...gc,cgf->...gf", v, w.reshape(per_group, groups, filters // groups)).reshape(*values.shape[:-1], filters)


def depthwise(x, kernel, window: Window, where):
    """Each input channel convolved on its own with kernel (*size, in, depth_multiplier): channel c
    gives outputs c·dm … c·dm + dm - 1, a grouped convolution with one group per channel."""
    channels, multiplier = kernel.shape[-2:]
    return convolve(x, kernel.reshape(*kernel.shape[:-2], 1, channels * multiplier), window, channels, where)


# --- config --------------------------------------------------------------------------------


def rank_of(class_name: str) -> int:
    """Conv2D -> 2, MaxPooling3D -> 3, ConvLSTM1D -> 1."""
    return int(class_name[-2])


def read_window(config, rank, where, size_key="kernel_size", paddings=("valid", "same"), default_strides=1) -> Window:
    size = cfg.int_tuple(config.get(size_key), rank, where, size_key)
    strides = config.get("strides")
    strides = cfg.int_tuple(default_strides if strides is None else strides, rank, where, "strides")
    dilation = cfg.int_tuple(config.get("dilation_rate", 1), rank, where, "dilation_rate")
    padding = config.get("padding", "valid")
    padding = padding.lower() if isinstance(padding, str) else padding  # Keras lower-cases it
    if padding not in paddings:
        raise LstmctlError(f"{where}: padding {cfg.short(padding)} is not one of {', '.join(paddings)}")
    return Window(size, strides, dilation, padding)


KERAS1_KEYS = ("border_mode", "dim_ordering", "pool_length", "stride", "subsample", "subsample_length")


def channels_first(config, where) -> bool:
    """data_format; a Keras 1 config (same class names, other keys) is refused rather than misread."""
    keras1 = [key for key in KERAS1_KEYS if key in config]
    if keras1:
        raise LstmctlError(f"{where}: Keras 1 config ({', '.join(keras1)}) is not supported; re-save the model with Keras 2 or 3")
    value = config.get("data_format") or "channels_last"  # None: Keras's default image_data_format
    value = value.lower() if isinstance(value, str) else value
    if value not in ("channels_last", "channels_first"):
        raise LstmctlError(f"{where}: data_format {cfg.short(value)} is not channels_last or channels_first")
    return value == "channels_first"


def to_channels_last(x, first: bool):
    """(batch, channels, *spatial) -> (batch, *spatial, channels) for channels_first layers: the
    kernels' layout is the same in both formats, so a channels_first layer is its channels_last
    computation between two transposes."""
    return np.moveaxis(x, 1, -1) if first else x


def from_channels_last(y, first: bool):
    return np.moveaxis(y, -1, 1) if first else y


def check_kernel(kernel, size, last, what, where):
    """kernel must be (*size, any, last)."""
    if kernel.ndim != len(size) + 2 or kernel.shape[: len(size)] != size or kernel.shape[-1] != last:
        raise LstmctlError(f"{where}: {what} has shape {kernel.shape}, but the config needs ({', '.join(map(str, size))}, input channels, {last})")


# --- layer types ---------------------------------------------------------------------------


class ConvFamily(LayerType):
    """What the convolution layers share: window, data_format, activation, use_bias, and a forward
    pass in channels_last. A subtype checks its kernels (`check`) and convolves (`compute`)."""

    n_kernels = 1  # arrays before the bias

    def weight_count(self, config, where):
        return self.n_kernels + cfg.use_bias(config, where)

    def v3_weights(self, store, path, config):
        return store.vars(path) or []

    def build(self, builder, layer, entry, where):
        config, p = layer.config, layer.params
        p["rank"] = rank_of(layer.class_name)
        p["window"] = read_window(config, p["rank"], where, paddings=("valid", "same", "causal") if p["rank"] == 1 else ("valid", "same"))
        p["channels_first"] = channels_first(config, where)
        p["activation"] = cfg.activation_name(config.get("activation", "linear"), "activation", where)
        want = self.weight_count(config, where)
        if len(layer.weights) != want:
            raise LstmctlError(f"{where}: {layer.class_name} should hold {want} weight arrays, found {len(layer.weights)}")
        self.check(layer, config, where)

    def forward(self, layer, x, ctx):
        p = layer.params
        check_rank(layer, x, {p["rank"] + 2})
        dtype = ctx.compute_dtype(layer)
        where = f"{ctx.path}: layer '{layer.name}'"
        w = [cast(a, dtype) for a in layer.weights]
        x = to_channels_last(cast(x, dtype), p["channels_first"])
        if x.shape[-1] != self.in_channels(layer, w):
            raise LstmctlError(f"{where}: its kernel takes {self.in_channels(layer, w)} input channels, its input has {x.shape[-1]}")
        y = self.compute(layer, x, w, where)
        if len(w) > self.n_kernels:
            y = y + w[-1]
        return from_channels_last(kernels.activation(p["activation"], ctx.keras_major)(y), p["channels_first"])

    def output_mask(self, layer, args):
        return None  # Keras's convolutions do not carry a mask

    def facts(self, layer, major):
        p = layer.params
        return {
            "kernel_size": list(p["window"].size),
            **p["window"].facts(),
            **self.sizes(layer),
            "activation": p["activation"],
            "use_bias": len(layer.weights) > self.n_kernels,
            "data_format": "channels_first" if p["channels_first"] else "channels_last",
        }


@register("Conv1D", "Conv2D", "Conv3D")
class Conv(ConvFamily):
    def check(self, layer, config, where):
        p, window = layer.params, layer.params["window"]
        filters = positive_int(config.get("filters"), f"{where}: filters")
        p["groups"] = groups = positive_int(config.get("groups", 1), f"{where}: groups")
        if filters % groups:
            raise LstmctlError(f"{where}: filters {filters} is not a multiple of groups {groups}")
        if max(window.strides) > 1 and max(window.dilation) > 1:
            raise LstmctlError(f"{where}: strides {window.strides} and dilation_rate {window.dilation} are both above 1, which Keras refuses")
        check_kernel(layer.weights[0], window.size, filters, "kernel", where)
        if len(layer.weights) > 1 and layer.weights[1].shape != (filters,):
            raise LstmctlError(f"{where}: bias has shape {layer.weights[1].shape}, but filters={filters} needs ({filters},)")

    def in_channels(self, layer, w):
        return w[0].shape[-2] * layer.params["groups"]

    def compute(self, layer, x, w, where):
        return convolve(x, w[0], layer.params["window"], layer.params["groups"], where)

    def sizes(self, layer):
        return {"filters": layer.weights[0].shape[-1], "groups": layer.params["groups"]}


@register("DepthwiseConv1D", "DepthwiseConv2D")
class DepthwiseConv(ConvFamily):
    """depthwise_kernel (*kernel_size, in, depth_multiplier), bias (in·depth_multiplier,)."""

    def check(self, layer, config, where):
        multiplier = positive_int(config.get("depth_multiplier", 1), f"{where}: depth_multiplier")
        kernel = layer.weights[0]
        check_kernel(kernel, layer.params["window"].size, multiplier, "depthwise_kernel", where)
        if len(layer.weights) > 1 and layer.weights[1].shape != (kernel.shape[-2] * multiplier,):
            raise LstmctlError(f"{where}: bias has shape {layer.weights[1].shape}, but the depthwise kernel gives {kernel.shape[-2] * multiplier} channels")

    def in_channels(self, layer, w):
        return w[0].shape[-2]

    def compute(self, layer, x, w, where):
        return depthwise(x, w[0], layer.params["window"], where)

    def sizes(self, layer):
        return {"depth_multiplier": layer.weights[0].shape[-1]}


@register("SeparableConv1D", "SeparableConv2D")
class SeparableConv(DepthwiseConv):
    """A depthwise convolution, then a pointwise one: depthwise_kernel (*kernel_size, in, dm),
    pointwise_kernel (1, …, in·dm, filters), bias (filters,)."""

    n_kernels = 2

    def check(self, layer, config, where):
        filters = positive_int(config.get("filters"), f"{where}: filters")
        multiplier = positive_int(config.get("depth_multiplier", 1), f"{where}: depth_multiplier")
        rank, (depth, point, *bias) = layer.params["rank"], layer.weights
        check_kernel(depth, layer.params["window"].size, multiplier, "depthwise_kernel", where)
        if point.shape != (1,) * rank + (depth.shape[-2] * multiplier, filters):
            raise LstmctlError(f"{where}: pointwise_kernel has shape {point.shape}, but the config needs {(1,) * rank + (depth.shape[-2] * multiplier, filters)}")
        if bias and bias[0].shape != (filters,):
            raise LstmctlError(f"{where}: bias has shape {bias[0].shape}, but filters={filters} needs ({filters},)")

    def compute(self, layer, x, w, where):
        depth, point = w[0], w[1]
        return depthwise(x, depth, layer.params["window"], where) @ point.reshape(point.shape[-2:])

    def sizes(self, layer):
        return {"filters": layer.weights[1].shape[-1], "depth_multiplier": layer.weights[0].shape[-1]}
