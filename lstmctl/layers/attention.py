"""Attention: Attention (Luong), AdditiveAttention (Bahdanau), MultiHeadAttention, and Dot (the
product Luong attention is often built from). Dropout does nothing at inference.

Attention and AdditiveAttention take [query, value] or [query, value, key]. The value's mask
(and a causal mask: `use_causal_mask` in the call, or `causal` in an older tf.keras config)
push scores 1e9 down before the softmax; the query's mask zeroes output rows and is the
output's mask (`return_attention_scores` adds the weights as a second, unmasked output).

MultiHeadAttention combines the masks of query [B, T, 1], value and key [B, 1, S], the causal
mask, Keras 3's sliding window and the `attention_mask` argument by AND, and passes the
query's mask on. A fully masked row of scores differs by version and path:
* tf_keras adds -1e9 (sets it with `softmax_robust_masking`): the row comes out about uniform.
* Keras 3 without scores, dropout or a rank other than 3 calls dot_product_attention, which sets
  masked logits to -0.7·float32 max: uniform too.
* Keras 3 otherwise goes through its Softmax layer, which zeroes masked weights: a zero row.
Keras 3 reads the query's mask from the query tensor even when `query_mask` is passed, and
then deletes the masks of its input tensors (see `call`).
"""

import string

import numpy as np

from .. import config as cfg
from ..config import positive_int
from ..errors import LstmctlError
from ..kernels import sigmoid
from .activations import masked_softmax, softmax
from .base import LayerType, Tensor, cast, check_rank, register
from .normalization import l2_normalize, read_axes

MAX_HEADS = 4096
MAX_RANK = 8  # of MultiHeadAttention's inputs: einsum letters for every axis


def _call_flag(ctx, key):
    return cfg.flag(ctx.call_kwargs, key, f"{ctx.path}: layer call")


def _step_mask(layer, mask, x, what):
    """A (batch, time) mask for x, checked: a mask passed by keyword can be any tensor."""
    if mask is not None and mask.shape != x.shape[:2]:
        raise LstmctlError(f"layer '{layer.name}': its {what} mask has shape {mask.shape}, its {what} {x.shape}")
    return mask


def _causal(rows, cols):
    """[i, j] true where j <= i: position i sees no later one."""
    return np.tri(rows, cols, dtype=bool)


class DenseAttention(LayerType):
    """What Attention and AdditiveAttention share: masks, softmax, weighted sum of the values."""

    n_inputs = None
    default_scale = False
    scale_is_vector = False

    def weight_names(self, config, where) -> list:
        return ["scale"] if cfg.flag(config, "use_scale", where, self.default_scale) else []

    def weight_count(self, config, where):
        return len(self.weight_names(config, where))

    def v3_weights(self, store, path, config):
        return store.vars(path) or []

    def build(self, builder, layer, entry, where):
        p = layer.params
        names = self.weight_names(layer.config, where)
        if len(layer.weights) != len(names):
            raise LstmctlError(f"{where}: {layer.class_name} should hold {len(names)} weight arrays ({', '.join(names) or 'none'}), found {len(layer.weights)}")
        for name, weight in zip(names, layer.weights):
            if weight.ndim != (1 if self.scale_is_vector and name == "scale" else 0):
                raise LstmctlError(f"{where}: {layer.class_name} {name} has shape {weight.shape}")
            p[name] = weight
        p["use_scale"] = "scale" in names
        p["causal"] = cfg.flag(layer.config, "causal", where)  # tf.keras 2.4-2.9 kept it in the config

    def call(self, layer, args, ctx):
        if len(args) not in (2, 3):
            raise LstmctlError(f"layer '{layer.name}': {layer.class_name} takes [query, value] or [query, value, key], got {len(args)} inputs")
        dtype = ctx.compute_dtype(layer)
        q, v, k = (cast(a.value, dtype) for a in (args[0], args[1], args[-1]))
        for x in (q, v, k):
            check_rank(layer, x, {3})
        if q.shape[0] != v.shape[0] or k.shape[:2] != v.shape[:2] or q.shape[-1] != k.shape[-1]:
            raise LstmctlError(f"layer '{layer.name}': query {q.shape}, value {v.shape} and key {k.shape} do not fit together")
        q_mask, v_mask = args[0].mask, args[1].mask
        explicit = ctx.kwargs.get("mask")  # Keras 3: mask=[query_mask, value_mask] given in the call
        if explicit and len(explicit) >= 2:
            q_mask, v_mask = (t.value.astype(bool) for t in explicit[:2])
        q_mask, v_mask = _step_mask(layer, q_mask, q, "query"), _step_mask(layer, v_mask, v, "value")
        scores = self.scores(layer, q, k)
        mask = None if v_mask is None else v_mask[:, None, :]
        if layer.params["causal"] or _call_flag(ctx, "use_causal_mask"):
            tri = _causal(q.shape[1], k.shape[1])[None]
            mask = tri if mask is None else mask & tri
        if mask is not None:
            big = 65504 if scores.dtype == np.float16 else 1e9
            scores = np.where(mask, scores, scores - scores.dtype.type(big))
        weights = softmax(scores, -1)
        out = weights @ v
        if q_mask is not None:
            keep = q_mask[:, :, None]
            out = np.where(keep, out, out.dtype.type(0)) if ctx.keras_major >= 3 else out * keep.astype(dtype)
        scores_out = [Tensor(weights)] if _call_flag(ctx, "return_attention_scores") else []
        return [Tensor(out, q_mask), *scores_out]

    def facts(self, layer, major):
        return {"use_scale": layer.params["use_scale"], **({"causal": True} if layer.params["causal"] else {})}


@register("Attention")
class Attention(DenseAttention):
    def weight_names(self, config, where):
        concat = cfg.choice(config, "score_mode", ("dot", "concat"), where, "dot") == "concat"
        return super().weight_names(config, where) + (["concat_score_weight"] if concat else [])

    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        layer.params["score_mode"] = layer.config.get("score_mode", "dot")

    def scores(self, layer, q, k):
        p = layer.params
        scale = cast(p["scale"], q.dtype) if p["use_scale"] else None
        if p["score_mode"] == "dot":
            scores = q @ np.swapaxes(k, -1, -2)
            return scores if scale is None else scores * scale
        pairs = q[:, :, None, :] + k[:, None, :, :]
        return cast(p["concat_score_weight"], q.dtype) * np.sum(np.tanh(pairs if scale is None else scale * pairs), axis=-1)

    def facts(self, layer, major):
        return {**super().facts(layer, major), "score_mode": layer.params["score_mode"]}


@register("AdditiveAttention")
class AdditiveAttention(DenseAttention):
    scale_is_vector = True
    default_scale = True

    def scores(self, layer, q, k):
        p = layer.params
        if p["use_scale"] and p["scale"].shape != q.shape[-1:]:
            raise LstmctlError(f"layer '{layer.name}': AdditiveAttention scale has shape {p['scale'].shape}, its inputs have {q.shape[-1]} features")
        scale = cast(p["scale"], q.dtype) if p["use_scale"] else 1
        return np.sum(scale * np.tanh(q[:, :, None, :] + k[:, None, :, :]), axis=-1)


# --- MultiHeadAttention -------------------------------------------------------------------


def projection_equation(free_dims, bound_dims, output_dims) -> str:
    """Keras's _build_proj_equation: free axes kept, bound axes summed against the kernel."""
    letters = string.ascii_lowercase
    free = letters[:free_dims]
    bound = letters[free_dims : free_dims + bound_dims]
    out = letters[free_dims + bound_dims : free_dims + bound_dims + output_dims]
    return f"{free}{bound},{bound}{out}->{free}{out}"


def attention_equations(rank, attn_axes):
    """Keras's _build_attention_equation for projected tensors of `rank` (…, heads, channels):
    (key, query) -> scores (batch dims, heads, query attention axes, key attention axes), and
    (scores, value) -> output."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch_dims = [i for i in range(rank) if i not in attn_axes and i != rank - 1]
    extra = iter(letters[rank:])
    source = "".join(target[i] if i in batch_dims or i == rank - 1 else next(extra) for i in range(rank))
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attn_axes] + [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}"


def projections(config, where) -> tuple:
    """The EinsumDense sublayers in get_weights order; Keras 3's use_gate adds a sigmoid gate."""
    gate = ("gate",) if cfg.flag(config, "use_gate", where) else ()
    return ("query", "key", *gate, "value", "output")


@register("MultiHeadAttention")
class MultiHeadAttention(LayerType):
    n_inputs = None

    def weight_count(self, config, where):
        return len(projections(config, where)) * (2 if cfg.use_bias(config, where) else 1)

    def v3_weights(self, store, path, config):
        # The gate has no public property, so Keras saves it under its attribute name.
        groups = {"gate": "_gate_dense"}
        return [a for name in projections(config, "") for a in (store.vars(f"{path}/{groups.get(name, name + '_dense')}") or [])]

    def build(self, builder, layer, entry, where):
        c, p = layer.config, layer.params
        heads = positive_int(c.get("num_heads"), f"{where}: num_heads", MAX_HEADS)
        key_dim = positive_int(c.get("key_dim"), f"{where}: key_dim", cfg.MAX_DIM)
        value_dim = key_dim if c.get("value_dim") is None else positive_int(c.get("value_dim"), f"{where}: value_dim", cfg.MAX_DIM)
        output_shape = c.get("output_shape") or []  # Keras: empty or None is the query's last dimension
        output_shape = [output_shape] if cfg.is_int(output_shape) else output_shape
        if not isinstance(output_shape, list) or len(output_shape) > MAX_RANK or not all(cfg.is_int(d) and 1 <= d <= cfg.MAX_DIM for d in output_shape):
            raise LstmctlError(f"{where}: output_shape {cfg.short(c.get('output_shape'))} is not a list of positive integers")
        axes = c.get("attention_axes")
        p["attention_axes"] = None if axes is None else read_axes(axes, where, "attention_axes")
        if builder.major < 3 and any(a < 0 for a in p["attention_axes"] or []):
            raise LstmctlError(f"{where}: negative attention_axes in a tf_keras file are not supported")
        window = c.get("sliding_window")
        p["sliding_window"] = None if window is None else positive_int(window, f"{where}: sliding_window", cfg.MAX_DIM)
        p["robust"] = cfg.flag(c, "softmax_robust_masking", where)
        p["dropout"] = cfg.number(c, "dropout", where, 0.0)
        use_bias = cfg.use_bias(c, where)
        names = projections(c, where)
        w = layer.weights
        if len(w) != self.weight_count(c, where):
            raise LstmctlError(f"{where}: MultiHeadAttention should hold {self.weight_count(c, where)} weight arrays ({', '.join(names)}; use_bias={use_bias}), found {len(w)}")
        pairs = [(w[2 * i], w[2 * i + 1]) for i in range(len(names))] if use_bias else [(k, None) for k in w]
        dims = {"query": key_dim, "key": key_dim, "gate": value_dim, "value": value_dim}
        for name, (kernel, bias) in zip(names, pairs):
            if name == "output":
                ok = kernel.ndim >= 3 and kernel.shape[:2] == (heads, value_dim) and (not output_shape or list(kernel.shape[2:]) == output_shape)
                ok = ok and (bias is None or bias.shape == kernel.shape[2:])
            else:
                ok = kernel.ndim == 3 and kernel.shape[1:] == (heads, dims[name]) and (bias is None or bias.shape == (heads, dims[name]))
            if not ok:
                raise LstmctlError(f"{where}: MultiHeadAttention {name} weights {[a.shape for a in (kernel, bias) if a is not None]} "
                                   f"do not fit num_heads={heads}, key_dim={key_dim}, value_dim={value_dim}")  # fmt: skip
        p["projections"] = dict(zip(names, pairs))
        p.update(heads=heads, key_dim=key_dim, value_dim=value_dim, output_shape=output_shape)

    def _project(self, layer, name, x, bound_dims, dtype):
        kernel, bias = layer.params["projections"][name]
        if x.shape[x.ndim - bound_dims :] != kernel.shape[:bound_dims]:
            raise LstmctlError(f"layer '{layer.name}': its {name} projection takes {kernel.shape[:bound_dims]}, got {x.shape}")
        y = np.einsum(projection_equation(x.ndim - bound_dims, bound_dims, kernel.ndim - bound_dims), x, cast(kernel, dtype))
        return y if bias is None else y + cast(bias, dtype)

    def _mask(self, layer, query, value, key, ctx):
        """The [B, T, S] attention mask from every source Keras combines (module docstring), or None."""
        given = {name: ctx.kwargs[name][0].value.astype(bool) for name in ("attention_mask", "value_mask", "key_mask") if ctx.kwargs.get(name)}
        value_mask = _step_mask(layer, given.get("value_mask", value.mask), value.value, "value")
        key_mask = _step_mask(layer, given.get("key_mask", None if key is None else key.mask), (key or value).value, "key")
        parts = []
        if _step_mask(layer, query.mask, query.value, "query") is not None:
            parts.append(query.mask[:, :, None])
        parts += [m[:, None, :] for m in (value_mask, key_mask) if m is not None]
        rows, cols = query.value.shape[1], value.value.shape[1]
        if _call_flag(ctx, "use_causal_mask"):
            parts.append(_causal(rows, cols)[None])
        if layer.params["sliding_window"] is not None:
            parts.append((np.abs(np.arange(rows)[:, None] - np.arange(cols)[None, :]) < layer.params["sliding_window"])[None])
        if "attention_mask" in given:
            parts.append(given["attention_mask"])
        if not parts:
            return None
        try:
            return np.logical_and.reduce(np.broadcast_arrays(*parts))
        except ValueError:
            raise LstmctlError(f"layer '{layer.name}': its masks {[m.shape for m in parts]} do not combine") from None

    def call(self, layer, args, ctx):
        p = layer.params

        def tensor(i, name):  # Keras 3 records value and key as arguments, tf_keras as keywords
            given = args[i : i + 1] or ctx.kwargs.get(name) or [None]
            return given[0]

        query, value, key = args[0], tensor(1, "value"), tensor(2, "key")
        if value is None:
            raise LstmctlError(f"layer '{layer.name}': MultiHeadAttention was called without a value")
        rank = query.value.ndim
        if not 3 <= rank <= MAX_RANK or any(t.value.ndim != rank for t in (value, key) if t is not None):
            raise LstmctlError(f"layer '{layer.name}': MultiHeadAttention takes inputs of one rank from 3 to {MAX_RANK}, "
                               f"got {[t.value.shape for t in (query, value, key) if t is not None]}")  # fmt: skip
        attn_axes = tuple(range(1, rank - 1)) if p["attention_axes"] is None else tuple(a if a >= 0 else rank + a for a in p["attention_axes"])
        if not all(1 <= a < rank - 1 for a in attn_axes) or len(set(attn_axes)) != len(attn_axes):
            raise LstmctlError(f"layer '{layer.name}': attention_axes {p['attention_axes']} do not fit its rank-{rank} inputs")
        # Query and value share every axis but the attention axes and the features; key and value all but the features.
        shared = [a for a in range(rank - 1) if a not in attn_axes]
        if [query.value.shape[a] for a in shared] != [value.value.shape[a] for a in shared] or (key and key.value.shape[:-1] != value.value.shape[:-1]):
            raise LstmctlError(f"layer '{layer.name}': query {query.value.shape}, value {value.value.shape} and key "
                               f"{None if key is None else key.value.shape} do not fit together")  # fmt: skip
        dtype = ctx.compute_dtype(layer)
        mask = self._mask(layer, query, value, key, ctx)
        if not p["output_shape"] and p["projections"]["output"][0].shape[2:] != query.value.shape[-1:]:
            raise LstmctlError(f"layer '{layer.name}': its output kernel {p['projections']['output'][0].shape} does not give the query's {query.value.shape[-1]} features back")
        q = self._project(layer, "query", cast(query.value, dtype), 1, dtype)
        q = q * q.dtype.type(1 / np.sqrt(p["key_dim"]))
        k = self._project(layer, "key", cast((key or value).value, dtype), 1, dtype)
        v = self._project(layer, "value", cast(value.value, dtype), 1, dtype)
        dot_equation, combine_equation = attention_equations(rank + 1, attn_axes)
        scores = np.einsum(dot_equation, k, q)
        if mask is not None:
            for _ in range(scores.ndim - mask.ndim):  # in front of the attention axes: over the heads
                mask = np.expand_dims(mask, -2 * len(attn_axes) - 1)
            try:
                mask = np.broadcast_to(mask, scores.shape)
            except ValueError:
                raise LstmctlError(f"layer '{layer.name}': its attention mask does not fit the scores {scores.shape}") from None
        return_scores = _call_flag(ctx, "return_attention_scores")
        norm_axes = tuple(range(scores.ndim - len(attn_axes), scores.ndim))
        if ctx.keras_major >= 3 and not (return_scores or p["dropout"] > 0 or rank != 3):
            # dot_product_attention (module docstring), in at least float32
            logits = scores.astype(np.result_type(scores.dtype, np.float32))
            probs = softmax(logits if mask is None else np.where(mask, logits, logits.dtype.type(-0.7 * 3.38953e38)), norm_axes).astype(dtype)
        else:
            probs = masked_softmax(scores, mask, norm_axes, ctx.keras_major, p["robust"])
        out = np.einsum(combine_equation, probs, v)
        if "gate" in p["projections"]:
            out = out * sigmoid(self._project(layer, "gate", cast(query.value, dtype), 1, dtype))
        out = Tensor(self._project(layer, "output", out, 2, dtype), query.mask)
        if ctx.keras_major >= 3:
            # Keras 3 deletes the masks of the tensors it was called on: whatever reads them later
            # (a merge with the query, another attention) sees none.
            for t in (query, value, key):
                if t is not None:
                    t.mask = None
        return [out, *([Tensor(probs)] if return_scores else [])]

    def facts(self, layer, major):
        p = layer.params
        optional = {k: p[k] for k in ("output_shape", "attention_axes", "sliding_window") if p[k]} | ({"use_gate": True} if "gate" in p["projections"] else {})
        return {"num_heads": p["heads"], "key_dim": p["key_dim"], "value_dim": p["value_dim"], "use_bias": p["projections"]["output"][1] is not None, **optional}


# --- Dot ----------------------------------------------------------------------------------


@register("Dot")
class Dot(LayerType):
    """The batch-wise dot product over one axis of each input; no mask comes out."""

    n_inputs = None

    def build(self, builder, layer, entry, where):
        super().build(builder, layer, entry, where)
        axes = layer.config.get("axes")
        if isinstance(axes, list) and len(axes) != 2:
            raise LstmctlError(f"{where}: Dot axes {cfg.short(axes)} is not an axis or a pair of axes")
        layer.params["axes"] = [cfg.axis(a, where, "axes") for a in axes] if isinstance(axes, list) else cfg.axis(axes, where, "axes")
        layer.params["normalize"] = cfg.flag(layer.config, "normalize", where)

    def call(self, layer, args, ctx):
        if len(args) != 2:
            raise LstmctlError(f"layer '{layer.name}': Dot takes two inputs, got {len(args)}")
        dtype = ctx.compute_dtype(layer)
        x, y = (cast(a.value, dtype) for a in args)
        axes = layer.params["axes"]
        axes = axes if isinstance(axes, list) else [axes, axes]
        ax, ay = (a % t.ndim if a < 0 else a for a, t in zip(axes, (x, y)))
        if not 2 <= min(x.ndim, y.ndim) <= max(x.ndim, y.ndim) <= MAX_RANK or not (0 < ax < x.ndim and 0 < ay < y.ndim) or x.shape[ax] != y.shape[ay] or x.shape[0] != y.shape[0]:
            raise LstmctlError(f"layer '{layer.name}': Dot over axes {layer.params['axes']} does not fit inputs {x.shape} and {y.shape}")
        if layer.params["normalize"]:
            floor = 1e-14 if ctx.keras_major >= 3 else 1e-12
            x, y = l2_normalize(x, ax, floor), l2_normalize(y, ay, floor)
        letters = string.ascii_letters
        xs = letters[: x.ndim]
        ys = "".join(xs[0] if i == 0 else xs[ax] if i == ay else letters[x.ndim + i] for i in range(y.ndim))
        out = xs[:ax] + xs[ax + 1 :] + ys[1:ay] + ys[ay + 1 :]
        z = np.einsum(f"{xs},{ys}->{out}", x, y)
        return [Tensor(z.reshape(-1, 1) if z.ndim == 1 else z)]

    def facts(self, layer, major):
        return {"axes": layer.params["axes"], "normalize": layer.params["normalize"]}
