"""Recurrent layers: LSTM, GRU, SimpleRNN (and their cuDNN forms), the RNN wrapper over cells or a
stack of cells, and Bidirectional.

A recurrent layer holds its gates in a `gates.Cell` (Keras's fused kernel, recurrent_kernel and
bias). An RNN over a stack of cells (Keras's StackedRNNCells, TF1's MultiRNNCell) holds one
sub-layer per cell, `<layer>/cell_<k>`: within a time step cell k feeds cell k+1, which is the
same as running the cells one after the other over the whole sequence (the mask and the
direction are the stack's). Contract keys: `L/sequence`, `L/h`, `L/c` (LSTM); for a stack also
`L/cell_<k>/…` per cell, `L/h`, `L/c` being the top cell's; `L/forward/…` and `L/backward/…` for
a Bidirectional.
"""

import numpy as np

from .. import config as cfg
from .. import gates as gates_mod
from .. import kernels
from ..errors import LstmctlError
from ..model import Layer
from .base import REGISTRY, LayerType, Tensor, register

KINDS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn", "CuDNNLSTM": "lstm", "CuDNNGRU": "gru"}
CELL_KINDS = {"LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "simple_rnn"}
HARD_SIGMOID = {2: "clip(0.2·x + 0.5, 0, 1) (Keras 1/2 form)", 3: "clip(x/6 + 0.5, 0, 1) (Keras 3 form)"}


# --- the cell inside a layer ----------------------------------------------------------------


def make_cell(cls, config, weights, where, notes, major):
    """A `gates.Cell` from a layer's (or cell's) config and its arrays as saved."""
    kind = KINDS.get(cls) or CELL_KINDS[cls]
    units = cfg.units(config, where)
    cfg.check_flags(config, cfg.RNN_FLAGS, where)
    k = gates_mod.n_gates(kind)
    if cls.startswith("CuDNN"):
        if not gates_mod.is_cudnn_layout(kind, weights):
            raise LstmctlError(f"{where}: {cls} weights do not have cuDNN's {2 * k}·units bias")
        W, U = weights[0], weights[1]
        if W.ndim != 2 or W.shape[1] != k * units or U.shape != (units, k * units):
            raise LstmctlError(f"{where}: {cls} kernels {W.shape} and {U.shape} do not fit units={units}")
        weights = gates_mod.from_cudnn(kind, weights)
        notes.append(f"{cls} weights converted to {'LSTM' if kind == 'lstm' else 'GRU(reset_after=True)'} (biases {'summed' if kind == 'lstm' else 'split into input and recurrent'}, as Keras converts them)")
        return gates_mod.make_cell(kind, units, weights, where=where, activation="tanh", recurrent_activation="sigmoid", use_bias=True, reset_after=(kind == "gru"), keras_major=major)
    cfg.activation_name(config.get("activation", "tanh"), "activation", where)
    if kind != "simple_rnn":
        cfg.activation_name(cfg.recurrent_activation(config), "recurrent_activation", where)
    if len(weights) in (9, 12) and major == 1:
        for part in range(3):
            shapes = [w.shape for w in weights[part::3]]
            if any(len(sh) == 0 or len(sh) != len(shapes[0]) or sh[:-1] != shapes[0][:-1] for sh in shapes):
                raise LstmctlError(f"{where}: Keras 1 per-gate arrays have shapes {shapes} that do not fuse")
        weights = gates_mod.from_keras1(kind, weights)
        notes.append("Keras 1 per-gate arrays (i, c, f, o order) fused into Keras's i, f, c, o layout")
    elif kind == "lstm" and gates_mod.is_cudnn_layout(kind, weights):
        raise LstmctlError(f"{where}: LSTM bias has cuDNN's 8·units layout; re-save the model from Keras to convert it")
    reset_after = False
    if kind == "gru":
        # Every Keras version whose default is True writes the key; older ones meant False.
        reset_after = cfg.flag(config, "reset_after", where)
    return gates_mod.make_cell(
        kind, units, weights, where=where,
        activation=config.get("activation", "tanh"),
        recurrent_activation=cfg.recurrent_activation(config) if kind != "simple_rnn" else None,
        use_bias=cfg.use_bias(config, where), reset_after=reset_after, keras_major=major,
    )  # fmt: skip


def recurrent_layer(name, class_name, config, weights, cell, notes=()) -> Layer:
    """A plain recurrent layer built outside a config (weights-only files, imported conventions)."""
    return Layer(name, class_name, config, list(weights), spec=RECURRENT, cell=cell, notes=list(notes))


def stack_layer(name, cells, notes=()) -> Layer:
    """An RNN over a stack of cells, from one recurrent Layer per cell (renamed `<name>/cell_<k>`)."""
    for k, sub in enumerate(cells):
        sub.name = f"{name}/cell_{k}"
    config = {"units": cells[-1].cell.units}
    return Layer(name, "RNN", config, [w for sub in cells for w in sub.weights], spec=REGISTRY["RNN"], cells=list(cells), notes=list(notes))


def bidirectional_layer(name, config, forward, backward, notes=()) -> Layer:
    return Layer(name, "Bidirectional", config, forward.weights + backward.weights, spec=BIDIRECTIONAL, forward=forward, backward=backward, notes=list(notes))


def state_names(layer) -> list:
    """Names of the states a direction carries, flat over a stack's cells."""
    if layer.cells:
        return [f"{sub.name.rsplit('/', 1)[1]}/{s}" for sub in layer.cells for s in sub.cell.state_names]
    return list(layer.cell.state_names)


def top_cell(layer):
    """The cell whose output is the layer's output (a stack's last)."""
    return layer.cells[-1].cell if layer.cells else layer.cell


# --- running one direction ------------------------------------------------------------------


def _state_shape(layer, cell, x, mask) -> tuple:
    """Each state's shape: (batch, units), or a cell's own (ConvLSTM: (batch, *spatial, filters));
    the input and the mask checked against the cell."""
    if hasattr(cell, "state_shape"):
        return cell.state_shape(layer, x, mask)
    if x.ndim != 3 or x.shape[2] != cell.input_dim:
        got = "(batch, " + ", ".join(str(d) for d in x.shape[1:]) + ")"
        raise LstmctlError(f"layer '{layer.name}': its kernel expects input (batch, time, {cell.input_dim}), got {got}")
    if mask is not None and mask.shape != x.shape[:2]:
        raise LstmctlError(f"layer '{layer.name}': its mask has shape {mask.shape}, not (batch, time) {x.shape[:2]}")
    return (x.shape[0], cell.units)


def _given_states(layer, cell, states, shape, dtype):
    # a projected LSTM's h is narrower than its c
    shapes = [(*shape[:-1], w) for w in cell.state_widths()] if cell.projection is not None else [shape] * len(cell.state_names)
    if not states:
        return tuple(np.zeros(s, dtype) for s in shapes)
    if len(states) != len(cell.state_names):
        raise LstmctlError(f"layer '{layer.name}': initial_state needs {len(cell.state_names)} arrays ({', '.join(cell.state_names)}), got {len(states)}")
    out = []
    for name, s, shape in zip(cell.state_names, states, shapes):
        s = np.asarray(s)
        if s.shape != shape:
            raise LstmctlError(f"layer '{layer.name}': initial state {name} must have shape {shape}, got {s.shape}")
        if s.dtype.kind != "f" or not np.isfinite(s).all():
            raise LstmctlError(f"layer '{layer.name}': initial state {name} must hold finite floats")
        out.append(s.astype(dtype))
    return tuple(out)


def run_direction(layer: Layer, x, states, mask, dtype, zero_output, trace=None, keep_sequence=True, ctx=None, record=None):
    """One direction of a recurrent layer: (sequence in the order produced, final states, flat).

    A stack runs its cells one after the other; each cell's sequence and states go into `record`
    under `<cell layer>/…`, and a watched cell (`ctx.watch`) keeps its input, states and gates."""
    go_backwards = layer.flag("go_backwards")
    if layer.cells:
        n_states = len(state_names(layer))
        if states and len(states) != n_states:
            raise LstmctlError(f"layer '{layer.name}': initial_state needs {n_states} arrays ({', '.join(state_names(layer))}), got {len(states)}")
        finals, offset, inputs = [], 0, x
        for k, sub in enumerate(layer.cells):
            n = len(sub.cell.state_names)
            given = list(states[offset : offset + n]) if states else []
            offset += n
            sub_trace = None
            if ctx is not None and sub.name in ctx.watch and sub.name not in ctx.seen:
                traces = {}
                ctx.seen[sub.name] = {"x": Tensor(inputs, mask), "states": given, "traces": traces, "dtype": dtype}
                sub_trace = traces.setdefault("", [])
            last = k == len(layer.cells) - 1
            seq, final = run_direction(sub, inputs, given, mask, dtype, zero_output, sub_trace, keep_sequence or not last, ctx)
            if record is not None:
                if seq is not None:
                    record[f"{sub.name}/sequence"] = seq
                for name, value in zip(sub.cell.state_names, final):
                    record[f"{sub.name}/{name}"] = value
            finals.extend(final)
            # The next cell reads this one's outputs in the time order of the input: it walks
            # them in the same direction, so it meets them in the order they were produced.
            inputs = None if seq is None else (seq[:, ::-1] if go_backwards else seq)
        return seq, tuple(finals)
    cell = layer.cell.astype(dtype)
    if getattr(cell, "repeats_masked_output", False):  # tf_keras's ConvLSTM ignores zero_output_for_mask
        zero_output = False
    init = _given_states(layer, cell, states, _state_shape(layer, cell, x, mask), dtype)
    if ctx is not None and ctx.probe:  # inspect needs shapes only: no scan over a long declared time axis
        return (np.zeros((x.shape[0], x.shape[1], *init[0].shape[1:]), dtype) if keep_sequence else None), init
    return kernels.scan(cell, x.astype(dtype, copy=False), init, mask, go_backwards, zero_output, trace, keep_sequence)


def _record_final(layer, final, record, prefix):
    """`prefix/h`, `prefix/c`: the top cell's final states (a stack's last cell)."""
    top = top_cell(layer)
    for name, value in zip(top.state_names, final[-len(top.state_names) :]):
        record[f"{prefix}/{name}"] = value


def _watch(layer, x, states, dtype, ctx):
    if layer.name in ctx.watch and layer.name not in ctx.seen:
        traces = {}
        ctx.seen[layer.name] = {"x": x, "states": list(states), "traces": traces, "dtype": dtype}
        return traces
    return None


def _shared_suffix(rec, n, record):
    suffix = f"@{n}" if n else ""  # a shared layer's later calls
    for key, value in rec.items():
        head, _, tail = key.partition("/")
        record[f"{head}{suffix}/{tail}"] = value


# --- what inspect shows -------------------------------------------------------------------


def _gate_rows(cell) -> list:
    parts = cell.split()
    rows = []
    names = gates_mod.GATES[cell.kind] or ("",)
    for j, g in enumerate(names):
        suffix = f"_{g}" if g else ""
        row = {
            "gate": g or "-",
            "name": gates_mod.GATE_NAMES.get(g, "SimpleRNN (no gates)"),
            "columns": [j * cell.units, (j + 1) * cell.units],  # the slice of the fused kernel/bias
        }
        for part in ("W", "U", "b", "rb"):
            key = f"{part}{suffix}"
            if key in parts:
                row[part] = {"shape": list(parts[key].shape), **gates_mod.stats(parts[key])}
        rows.append(row)
    return rows


def equations(cell) -> dict:
    """One step of the cell in symbols, with this layer's sizes: the equations, the shapes, and
    how the notation of Colah's "Understanding LSTM Networks" maps onto Keras's W and U."""
    n, u = cell.input_dim, cell.units
    act, gate = cell.activation_name, cell.recurrent_activation_name
    conv = getattr(cell, "rank", 0)
    dot = "∗" if conv else "·"  # a ConvLSTM convolves where a dense cell multiplies

    def pre(g, h="h_{t−1}"):
        return f"x_t {dot} W_{g} + {h} {dot} U_{g}" + (f" + b_{g}" if cell.bias is not None else "")

    if cell.kind == "lstm":
        steps = [
            f"i_t = {gate}({pre('i')})", f"f_t = {gate}({pre('f')})", f"c̃_t = {act}({pre('c')})", f"o_t = {gate}({pre('o')})",
            "c_t = f_t ⊙ c_{t−1} + i_t ⊙ c̃_t", f"h_t = o_t ⊙ {act}(c_t)",
        ]  # fmt: skip
        states = {"h": u, "c": u}
        if cell.projection is not None:  # torch's proj_size
            p = cell.projection.shape[1]
            steps[-1] = f"h_t = (o_t ⊙ {act}(c_t)) · P"
            states = {"h": p, "c": u}
    elif cell.kind == "gru":
        recurrent = "r_t ⊙ (h_{t−1} · U_h + rb_h)" if cell.reset_after else "(r_t ⊙ h_{t−1}) · U_h"
        candidate = f"x_t · W_h + {recurrent}" + (" + b_h" if cell.bias is not None else "")
        steps = [f"z_t = {gate}({pre('z')})", f"r_t = {gate}({pre('r')})", f"h̃_t = {act}({candidate})", "h_t = z_t ⊙ h_{t−1} + (1 − z_t) ⊙ h̃_t"]
        states = {"h": u}
    else:
        steps = [f"h_t = {act}(x_t {dot} W + h_{{t−1}} {dot} U" + (" + b)" if cell.bias is not None else ")")]
        states = {"h": u}
    facts = {
        "step": steps,
        "sizes": f"x_t ({n},), h_t ({states['h']},)" + (f", c_t ({u},)" if "c" in states else "") + f"; W_<g> ({n}, {u}), U_<g> ({states['h']}, {u}), b_<g> ({u},)" + (f", P ({u}, {states['h']})" if states["h"] != u else ""),
        "state_sizes": states,
    }
    if not conv and cell.kind == "lstm":
        facts["colah"] = (
            f"Colah's f_t = σ(W_f·[h_{{t−1}}, x_t] + b_f) uses one ({u} × {u + n}) matrix on [h, x]: "
            f"it is [U_f; W_f]ᵀ here (U_f's {u} rows first, then W_f's {n}), and his σ is this layer's {gate}"
        )
    if conv:
        facts["sizes"] = f"W_<g> {tuple(cell.W.shape[:-1]) + (u,)}, U_<g> {tuple(cell.U.shape[:-1]) + (u,)}; ∗ is a convolution over the spatial axes"
    return facts


def cell_facts(layer: Layer, major: int) -> dict:
    cell = layer.cell
    facts = {
        "units": cell.units,
        **({"proj_size": cell.projection.shape[1], "projection_shape": list(cell.projection.shape)} if cell.projection is not None else {}),
        "input_dim": cell.input_dim,
        "activation": cell.activation_name,
        "recurrent_activation": cell.recurrent_activation_name,
        "use_bias": cell.bias is not None,
        "go_backwards": layer.flag("go_backwards"),
        "kernel_shape": list(cell.W.shape),
        "recurrent_kernel_shape": list(cell.U.shape),
        "bias_shape": None if cell.bias is None else list(cell.bias.shape),
        "gates": _gate_rows(cell),
        "equations": equations(cell),
        "trainable": layer.trainable,
    }
    if cell.kind == "gru":
        facts["reset_after"] = cell.reset_after
    if "hard_sigmoid" in (cell.activation_name, cell.recurrent_activation_name):
        facts["hard_sigmoid"] = HARD_SIGMOID[3 if major >= 3 else 2]
    if cell.kind == "lstm" and cell.bias is not None:
        b_f = cell.split()["b_f"]
        tf1 = layer.config.get("tf1_forget_bias")
        if "forget_bias_note" in layer.config:  # weights from another framework say where b_f came from
            note = layer.config["forget_bias_note"]
        elif tf1 is not None:
            note = f"the stored TF1 bias plus the forget_bias {tf1!r} TF1 adds at run time"
        elif np.all(b_f == 1.0) and layer.config.get("unit_forget_bias", True):
            note = "every b_f is exactly 1.0: unit_forget_bias=True set them to 1 whatever bias_initializer said, and training has not moved them"
        else:
            note = "the saved forget bias already includes training; unit_forget_bias only set its initial value to 1.0"
        facts["forget_bias"] = {**gates_mod.stats(b_f), "note": note}
    return facts


# --- layer types ----------------------------------------------------------------------------


class RecurrentBase(LayerType):
    kind = "recurrent"

    def call(self, layer, args, ctx):
        x = args[0]
        dtype = ctx.compute_dtype(layer)
        key = layer.name + (f"@{ctx.node}" if ctx.node else "")
        # As a stateful Keras layer: an initial_state from the graph wins over the carried one.
        states = ctx.overrides.get(layer.name, ctx.states) or ctx.carry.get(key, ())
        traces = _watch(layer, x, states, dtype, ctx)
        rec = {}
        outs, ctx.final_states[key] = self.run(layer, x, list(states), dtype, rec, traces, ctx)
        _shared_suffix(rec, ctx.node, ctx.record)
        return outs

    def run(self, layer, x, states, dtype, rec, traces, ctx):
        """The layer's outputs, and its final states (flat, in initial_state's order)."""
        trace = None if traces is None else traces.setdefault("", [])
        keep = ctx.sequences or layer.flag("return_sequences") or trace is not None
        seq, final = run_direction(layer, x.value, states, x.mask, dtype, layer.flag("zero_output_for_mask"), trace, keep, ctx, rec)
        _record_final(layer, final, rec, layer.name)
        if seq is None:  # not asked for: the last output is h_T (no mask reaches the fast path)
            return [Tensor(final[-len(top_cell(layer).state_names)])] + ([Tensor(s) for s in final] if layer.flag("return_state") else []), final
        rec[f"{layer.name}/sequence"] = seq
        main = seq if layer.flag("return_sequences") else seq[:, -1]
        outs = [Tensor(main, x.mask if layer.flag("return_sequences") else None)]
        if layer.flag("return_state"):
            outs += [Tensor(s) for s in final]
        return outs, final

    def facts(self, layer, major):
        if layer.cells:
            return {
                "cells": [
                    {"name": sub.name, "class_name": sub.class_name, "trainable": sub.trainable, **cell_facts(sub, major),
                     "feeds": layer.cells[k + 1].name if k + 1 < len(layer.cells) else "the layer's output"}
                    for k, sub in enumerate(layer.cells)
                ],
            }  # fmt: skip
        return cell_facts(layer, major)


@register(*KINDS)
class Recurrent(RecurrentBase):
    """LSTM, GRU, SimpleRNN and the cuDNN layers."""

    def weight_count(self, config, where):
        return 3 if cfg.use_bias(config, where) else 2

    def v3_weights(self, store, path, config):
        return store.vars(f"{path}/cell") or []

    def build(self, builder, layer, entry, where):
        layer.cell = make_cell(layer.class_name, layer.config, layer.weights, where, layer.notes, builder.major)


RECURRENT = Recurrent()


@register("RNN")
class RNN(RecurrentBase):
    """keras.layers.RNN over one cell, a list of cells or StackedRNNCells."""

    def cell_entries(self, config, where) -> list:
        cell = config.get("cell")
        if isinstance(cell, dict) and cell.get("class_name") == "StackedRNNCells":
            cell = cfg.entry_config(cell, where).get("cells")
        entries = cell if isinstance(cell, list) else [cell]
        if not entries or len(entries) > 256:
            raise LstmctlError(f"{where}: RNN holds {len(entries)} cells")
        for entry in entries:
            cfg.entry_config(entry, where)
            if entry["class_name"] not in CELL_KINDS or cfg.foreign(entry):
                raise LstmctlError(f"{where}: RNN cell {cfg.short(entry['class_name'])} is not a Keras cell lstmctl knows (LSTMCell, GRUCell, SimpleRNNCell)")
        return entries

    def weight_count(self, config, where):
        return sum(3 if cfg.use_bias(cfg.entry_config(e, where), where) else 2 for e in self.cell_entries(config, where))

    def v3_weights(self, store, path, config):
        entries = self.cell_entries(config, path)
        if len(entries) == 1 and not (isinstance(config.get("cell"), dict) and config["cell"].get("class_name") == "StackedRNNCells"):
            return store.vars(f"{path}/cell") or []
        out, used = [], {}
        for entry in entries:  # Keras 3 names a list's items by class, as it names layers
            key = cfg.snake_case(entry["class_name"])
            n = used.get(key)
            used[key] = 0 if n is None else n + 1
            out.extend(store.vars(f"{path}/cell/cells/{key}" + (f"_{used[key]}" if n is not None else "")) or [])
        return out

    def build(self, builder, layer, entry, where):
        entries = self.cell_entries(layer.config, where)
        cfg.check_flags(layer.config, cfg.RNN_FLAGS, where)
        counts = [3 if cfg.use_bias(cfg.entry_config(e, where), where) else 2 for e in entries]
        if sum(counts) != len(layer.weights):
            raise LstmctlError(f"{where}: RNN holds {len(layer.weights)} weight arrays, its {len(entries)} cell(s) need {sum(counts)}")
        subs, pos = [], 0
        for k, (e, n) in enumerate(zip(entries, counts)):
            config = dict(cfg.entry_config(e, where))
            for key in ("go_backwards", "zero_output_for_mask"):  # the stack's, which every cell follows
                config[key] = layer.config.get(key, False)
            arrays = layer.weights[pos : pos + n]
            pos += n
            notes = []
            cell = make_cell(e["class_name"], config, arrays, f"{where} cell {k}", notes, builder.major)
            subs.append(Layer(f"{layer.name}/cell_{k}", e["class_name"], config, list(arrays), spec=RECURRENT, cell=cell, notes=notes,
                              trainable=layer.trainable and cfg.flag(config, "trainable", where, True)))  # fmt: skip
        if len(subs) == 1:
            layer.cell = subs[0].cell
            layer.notes.extend(subs[0].notes)
        else:
            layer.cells = subs


@register("Bidirectional")
class Bidirectional(LayerType):
    kind = "bidirectional"

    def inner_entries(self, config, where):
        inner = config.get("layer")
        backward = config.get("backward_layer") or inner
        for entry in (inner, backward):
            cls = entry.get("class_name") if isinstance(entry, dict) else None
            if not isinstance(cls, str) or not isinstance(REGISTRY.get(cls), RecurrentBase) or cfg.foreign(entry):
                raise LstmctlError(f"{where}: Bidirectional wraps {cls!r}, not a recurrent layer lstmctl knows")
            cfg.entry_config(entry, where)
        return inner, backward

    def weight_count(self, config, where):
        inner, backward = self.inner_entries(config, where)
        a = REGISTRY[inner["class_name"]].weight_count(cfg.entry_config(inner, where), where)
        b = REGISTRY[backward["class_name"]].weight_count(cfg.entry_config(backward, where), where)
        return a + b

    def v3_weights(self, store, path, config):
        return None  # each direction reads its own group (see build)

    def build(self, builder, layer, entry, where):
        config = layer.config
        inner, backward_entry = self.inner_entries(config, where)
        halves = [None, None]
        if layer.weights is not None and not builder.v3:
            if len(layer.weights) % 2:
                raise LstmctlError(f"{where}: Bidirectional holds an odd number ({len(layer.weights)}) of weight arrays")
            # Keras 1 keeps per-gate arrays, more than the config's count: the halves are equal then.
            first = len(layer.weights) // 2
            if builder.major > 1:
                first = REGISTRY[inner["class_name"]].weight_count(cfg.entry_config(inner, where), where)
            halves = [layer.weights[:first], layer.weights[first:]]
        directions = []
        for direction, e, arrays in (("forward", inner, halves[0]), ("backward", backward_entry, halves[1])):
            sub_entry = dict(e, config=dict(cfg.entry_config(e, where), name=f"{layer.name}/{direction}"))
            v3_path = f"{builder.v3_path_of(layer)}/{direction}_layer" if builder.v3 else None
            sub = builder.layer(sub_entry, arrays, v3_path, f"{where} ({direction})")
            if direction == "backward" and "backward_layer" not in config:
                sub.config["go_backwards"] = not sub.config.get("go_backwards", False)
                for cell_layer in sub.cells:
                    cell_layer.config["go_backwards"] = sub.config["go_backwards"]
            directions.append(sub)
        cfg.check_flags(config, cfg.RNN_FLAGS, where)
        merge_mode = config.get("merge_mode", "concat")
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise LstmctlError(f"{where}: unknown merge_mode {cfg.short(merge_mode)}")
        config["merge_mode"] = merge_mode
        for key in ("return_sequences", "return_state", "go_backwards", "stateful"):
            config.setdefault(key, inner.get("config", {}).get(key, False))
        layer.forward, layer.backward = directions
        layer.weights = directions[0].weights + directions[1].weights

    call = RecurrentBase.call

    def run(self, layer, x, states, dtype, rec, traces, ctx):
        fwd, bwd = layer.forward, layer.backward
        n = len(state_names(fwd))
        if states and len(states) != 2 * n:
            raise LstmctlError(f"layer '{layer.name}': initial_state needs {2 * n} arrays (forward then backward), got {len(states)}")
        return_sequences = layer.flag("return_sequences")
        # L/sequence is what the layer returns with return_sequences=True, and then Keras zeroes
        # the outputs of masked steps inside a Bidirectional.
        f_trace = None if traces is None else traces.setdefault("forward", [])
        b_trace = None if traces is None else traces.setdefault("backward", [])
        keep = ctx.sequences or return_sequences or traces is not None
        f_seq, f_states = run_direction(fwd, x.value, states[:n], x.mask, dtype, True, f_trace, keep, ctx, rec)
        b_seq, b_states = run_direction(bwd, x.value, states[n:], x.mask, dtype, True, b_trace, keep, ctx, rec)
        k = len(top_cell(fwd).state_names)
        if f_seq is None:  # no sequences kept, no mask: each direction's last output is its final h
            f_seq, b_seq = f_states[-k][:, None], b_states[-k][:, None]
        # As Bidirectional returns them: the forward half as produced, the backward half reversed
        # (whatever each direction's own go_backwards says).
        f_aligned, b_aligned = f_seq, b_seq[:, ::-1]
        mode = layer.config.get("merge_mode")
        L = layer.name
        if keep:
            rec[f"{L}/forward/sequence"] = f_aligned
            rec[f"{L}/backward/sequence"] = b_aligned
            if mode is not None:
                rec[f"{L}/sequence"] = _merge(mode, f_aligned, b_aligned)
        _record_final(fwd, f_states, rec, f"{L}/forward")
        _record_final(bwd, b_states, rec, f"{L}/backward")
        rec[f"{L}/h"] = np.concatenate([f_states[-k], b_states[-k]], axis=-1)
        if k > 1:
            rec[f"{L}/c"] = np.concatenate([f_states[-1], b_states[-1]], axis=-1)
        if return_sequences:
            y, y_rev = f_aligned, b_aligned
        else:
            y, y_rev = _last_output(fwd, f_seq, x.mask), _last_output(bwd, b_seq, x.mask)
        out_mask = x.mask if return_sequences else None
        outs = [Tensor(y, out_mask), Tensor(y_rev, out_mask)] if mode is None else [Tensor(_merge(mode, y, y_rev), out_mask)]
        if layer.flag("return_state"):
            outs += [Tensor(s) for s in (*f_states, *b_states)]
        return outs, (*f_states, *b_states)

    def facts(self, layer, major):
        return {
            "merge_mode": layer.config.get("merge_mode"),
            "directions": {d.name.rsplit("/", 1)[1]: d.spec.facts(d, major) for d in (layer.forward, layer.backward)},
        }


BIDIRECTIONAL = REGISTRY["Bidirectional"]


def _last_output(layer: Layer, seq, mask):
    """The output Keras returns without return_sequences: the latest unmasked step's (zeros if none).

    `seq` is in processing order with masked steps zeroed."""
    if mask is None:
        return seq[:, -1]
    processed = mask[:, ::-1] if layer.flag("go_backwards") else mask
    steps = processed.shape[1]
    last = steps - 1 - np.argmax(processed[:, ::-1], axis=1)  # per sample (and per position of a ConvLSTM's mask)
    trailing = (1,) * (seq.ndim - 1 - last.ndim)
    out = np.take_along_axis(seq, last.reshape(last.shape[0], 1, *last.shape[1:], *trailing), axis=1)[:, 0]
    return np.where(processed.any(axis=1).reshape(*last.shape, *trailing), out, np.zeros_like(out))


def _merge(mode, a, b):
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    if mode == "sum":
        return a + b
    if mode == "mul":
        return a * b
    return (a + b) / 2  # ave
