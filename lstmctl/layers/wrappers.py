"""TimeDistributed: one layer applied to every time step (Bidirectional lives with the recurrent layers)."""

from .. import config as cfg
from ..errors import LstmctlError, Unsupported
from .base import LayerType, Tensor, entry_weight_count, register


@register("TimeDistributed")
class TimeDistributed(LayerType):
    def _inner_entry(self, config, where):
        inner = config.get("layer")
        if not isinstance(inner, dict):
            raise LstmctlError(f"{where}: TimeDistributed has no inner layer")
        cfg.entry_config(inner, where)
        return inner

    def weight_count(self, config, where):
        return entry_weight_count(self._inner_entry(config, where), where)

    def v3_weights(self, store, path, config):
        return None  # the inner layer reads its own group (see build)

    def build(self, builder, layer, entry, where):
        inner_entry = self._inner_entry(layer.config, where)
        v3_path = f"{builder.v3_path_of(layer)}/layer" if builder.v3 else None
        layer.inner = builder.layer(inner_entry, None if builder.v3 else layer.weights, v3_path, where)
        layer.weights = layer.inner.weights

    def call(self, layer, args, ctx):
        inner = layer.inner
        if inner.spec is None or inner.spec.n_inputs != 1 or inner.kind not in ("layer", "recurrent", "bidirectional"):
            raise Unsupported(f"{ctx.path}: layer '{layer.name}': TimeDistributed({inner.class_name}) is not supported by run")
        x = args[0]
        if x.value.ndim < 3:
            raise LstmctlError(f"layer '{layer.name}': TimeDistributed expects (batch, time, …), got {x.value.shape}")
        batch, steps = x.value.shape[:2]
        flat = x.value.reshape(batch * steps, *x.value.shape[2:])
        outs = inner.spec.call(inner, [Tensor(flat)], ctx)
        y = outs[0].value
        return [Tensor(y.reshape(batch, steps, *y.shape[1:]), x.mask)]

    def facts(self, layer, major):
        return {"layer": layer.inner.class_name}
