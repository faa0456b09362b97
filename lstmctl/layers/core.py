"""Core layers: InputLayer, Dense, Embedding, Activation, Masking and the inference identities."""

import numpy as np

from .. import config as cfg
from .. import kernels
from ..config import positive_int
from ..errors import LstmctlError, first_bad
from .base import LayerType, Tensor, cast, register


@register("InputLayer")
class InputLayer(LayerType):
    """Never called: the runner feeds the model's inputs in its place."""

    def compute_dtype(self, config, where):
        return cfg.dtype_name(config.get("dtype"), where)


@register("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")
class Identity(LayerType):
    """Regularisers that do nothing at inference."""

    def forward(self, layer, x, ctx):
        return x


@register("Dense")
class Dense(LayerType):
    def weight_count(self, config, where):
        return 2 if cfg.use_bias(config, where) else 1

    def v3_weights(self, store, path, config):
        return store.vars(path) or []

    def build(self, builder, layer, entry, where):
        units = cfg.units(layer.config, where)
        w = layer.weights
        want = self.weight_count(layer.config, where)
        if len(w) != want or w[0].ndim != 2 or w[0].shape[1] != units or (want == 2 and w[1].shape != (units,)):
            raise LstmctlError(f"{where}: Dense weights {[a.shape for a in w]} do not fit units={units}")
        layer.params["activation"] = cfg.activation_name(layer.config.get("activation", "linear"), "activation", where)

    def forward(self, layer, x, ctx):
        w = layer.weights
        if x.shape[-1] != w[0].shape[0]:
            raise LstmctlError(f"layer '{layer.name}': its kernel takes {w[0].shape[0]} features, its input has {x.shape[-1]}")
        dtype = ctx.compute_dtype(layer)
        y = cast(x, dtype) @ cast(w[0], dtype)
        if len(w) > 1:
            y = y + cast(w[1], dtype)
        return kernels.activation(layer.params["activation"], ctx.keras_major)(y)

    def facts(self, layer, major):
        return {"units": layer.weights[0].shape[1], "activation": layer.params["activation"]}


@register("Activation")
class Activation(LayerType):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        if layer.config.get("activation") is None:
            raise LstmctlError(f"{where}: Activation layer names no activation")
        layer.params["activation"] = cfg.activation_name(layer.config["activation"], "activation", where)

    def forward(self, layer, x, ctx):
        return kernels.activation(layer.params["activation"], ctx.keras_major)(x)

    def facts(self, layer, major):
        return {"activation": layer.params["activation"]}


@register("Embedding")
class Embedding(LayerType):
    n_weights = 1

    def compute_dtype(self, config, where):
        # Keras 2.0 wrote the token dtype ("int32") as the layer's dtype; the vectors are float32 then.
        name = cfg.dtype_name(config.get("dtype"), where)
        return "float32" if name.startswith(("int", "uint")) else cfg.compute_dtype("Embedding", config, where)

    def build(self, builder, layer, entry, where):
        w = layer.weights
        if len(w) != 1 or w[0].ndim != 2:
            raise LstmctlError(f"{where}: Embedding weights {[a.shape for a in w]} are not one matrix")
        rows = w[0].shape[0]
        dim = positive_int(layer.config.get("input_dim"), f"{where}: input_dim")
        if dim != rows:
            raise LstmctlError(f"{where}: input_dim {dim} contradicts the embedding matrix's {rows} rows")
        layer.params["mask_zero"] = cfg.flag(layer.config, "mask_zero", where)

    def call(self, layer, args, ctx):
        table = layer.weights[0]
        tokens = args[0].value
        if tokens.dtype.kind == "f":  # Keras 2.1 declared token inputs float32 by default
            with np.errstate(invalid="ignore"):
                first_bad(~np.isfinite(tokens) | (tokens != np.round(tokens)), tokens, f"{ctx.path}: layer '{layer.name}': Embedding needs integer token ids", "is not one")
            tokens = tokens.astype(np.int64)
        first_bad((tokens < 0) | (tokens >= table.shape[0]), tokens, f"{ctx.path}: layer '{layer.name}': token ids must lie in [0, {table.shape[0]})", "does not")
        mask = tokens != 0 if layer.params["mask_zero"] else None
        return [Tensor(cast(table[tokens], ctx.compute_dtype(layer)), mask)]

    def facts(self, layer, major):
        return {"input_dim": layer.weights[0].shape[0], "output_dim": layer.weights[0].shape[1], "mask_zero": layer.params["mask_zero"]}


@register("Masking")
class Masking(LayerType):
    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["mask_value"] = cfg.number(layer.config, "mask_value", where, 0.0)

    def call(self, layer, args, ctx):
        x = args[0].value
        mask = np.any(x != layer.params["mask_value"], axis=-1)
        return [Tensor(x * mask[..., None].astype(x.dtype), mask)]

    def facts(self, layer, major):
        return {"mask_value": layer.params["mask_value"]}
