"""`lstmctl compare model.keras model.tflite --input x.npy`: compare_models (layers mapped by order
and shape, weights gate by gate, sequences step by step) with the converter's own traps named:

- cell_clip: the converter writes cell_clip=10 into an LSTM; LiteRT clips c_t there, Keras does
  not. Named with the steps and units where the Keras layer's |c_t| passes the clip on this input;
- quantization: int8 weights (dynamic-range) differ from Keras's by up to half a quantization step;
  the error given in units of each column's step, and what LiteRT adds at run time;
- a batch fixed at conversion: an input of another batch is refused, saying so;
- a state shared between layers: the converter may give two layers one zero-state variable tensor,
  which LiteRT's UNIDIRECTIONAL_SEQUENCE_LSTM overwrites with its final state, so the next layer
  starts from that instead of zeros (the reader's notes say so; compare names it).
(Gate order is compare_models's own trap check.)"""

import numpy as np

from .. import runner
from ..errors import LstmctlError
from ..gates import GATES
from ..layers.recurrent import BIDIRECTIONAL
from ..model import Layer
from .compare import compare_models


def compare_with_tflite(reference, port, inputs, atol=(), rtol=()):
    """compare_models, with the TFLite traps added when either model is a .tflite file."""
    if "tflite" not in (reference.format, port.format):
        return compare_models(reference, port, inputs, atol, rtol)
    tfl = port if port.format == "tflite" else reference
    _check_batch(tfl, inputs)
    keras = reference if tfl is port else port
    paired = Paired(tfl, keras)
    reference, port = (reference, paired) if tfl is port else (paired, port)
    c = compare_models(reference, port, inputs, atol, rtol)
    for item, a, b in zip(c.layers, reference.recurrent_layers(), port.recurrent_layers()):
        k_layer, t_layer = (a, b) if reference is keras else (b, a)
        clip, quiet = cell_clip_trap(keras, k_layer, t_layer, inputs)
        item.findings += clip + quantization_trap(k_layer, t_layer) + [f"{k_layer.name} ↔ {t_layer.name}: {n}" for n in t_layer.notes if n.startswith("starts from")]
        c.notes += quiet
    fixed = [s for s in tfl.inputs if s.batch is not None]
    if fixed:
        c.notes.append(f"{tfl.path}: the batch is fixed at conversion ({', '.join(f'{s.name} takes batch {s.batch}' for s in fixed)}); Keras takes any batch")
    return c


class Paired:
    """A .tflite model seen as Keras sees it: where the Keras model has a Bidirectional layer, the
    converter wrote two recurrent ops (the backward one reading a REVERSE_V2 of the input); the two
    are one Bidirectional layer here, and run's results get its `L/forward/…` and `L/backward/…`
    keys (the backward sequence put back in input order, as Keras's Bidirectional returns it)."""

    def __init__(self, tfl, keras):
        self.model, self.path, self.format, self.inputs = tfl, tfl.path, tfl.format, tfl.inputs
        self.pairs = []  # (Bidirectional layer, forward layer, backward layer)
        ours = list(tfl.recurrent_layers())
        layers = []
        for k_layer in keras.recurrent_layers():
            reversed_ = [_reads_reversed(tfl, layer) for layer in ours[:2]] if k_layer.forward is not None and len(ours) >= 2 else []
            if reversed_ and reversed_[0] != reversed_[1]:
                fw, bw = (ours[1], ours[0]) if reversed_[0] else (ours[0], ours[1])
                both = Layer(f"{fw.name}+{bw.name}", "Bidirectional", {"name": f"{fw.name}+{bw.name}"}, spec=BIDIRECTIONAL, forward=fw, backward=bw)
                self.pairs.append((both, fw, bw))
                layers.append(both)
                ours = ours[2:]
            elif ours:
                layers.append(ours.pop(0))
        self.layers = layers + ours

    def recurrent_layers(self):
        return self.layers

    def __getattr__(self, name):  # the rest (outputs, layer, …) is the .tflite model's
        return getattr(self.model, name)

    def run(self, inputs):
        result = self.model.run(inputs)
        for both, fw, bw in self.pairs:
            for part in ("sequence", "h", "c"):
                if f"{fw.name}/{part}" in result:
                    result[f"{both.name}/forward/{part}"] = result[f"{fw.name}/{part}"]
                    back = result[f"{bw.name}/{part}"]
                    result[f"{both.name}/backward/{part}"] = back[:, ::-1] if part == "sequence" else back
        return result


def _reads_reversed(model, layer, hops: int = 4) -> bool:
    """Whether the layer's input comes (through reshapes and transposes) from a REVERSE_V2."""
    refs = [r for call in layer.calls for r in call.inputs]
    inputs = {s.name for s in model.inputs}
    for _ in range(hops):
        producers = [model.layer(r.layer) for r in refs if r.layer not in inputs]
        if any(p.class_name == "REVERSE_V2" for p in producers):
            return True
        refs = [r for p in producers if p.class_name in ("RESHAPE", "TRANSPOSE", "EXPAND_DIMS", "SQUEEZE") for call in p.calls for r in call.inputs]
    return False


def _check_batch(tfl, inputs):
    arrays = inputs if isinstance(inputs, dict) else {tfl.inputs[0].name: inputs} if len(tfl.inputs) == 1 else dict(zip((s.name for s in tfl.inputs), inputs))
    for spec in tfl.inputs:
        x = arrays.get(spec.name, next(iter(arrays.values())) if len(arrays) == 1 else None)
        if x is not None and spec.batch is not None and np.ndim(x) and np.shape(x)[0] != spec.batch:
            raise LstmctlError(f"{tfl.path}: a batch fixed at conversion: input '{spec.name}' takes batch {spec.batch}, the input holds {np.shape(x)[0]}; "
                               f"compare on {spec.batch} samples, or convert with the batch you need (keras.Input(shape, batch_size={np.shape(x)[0]}))")  # fmt: skip


def cell_clip_trap(keras, k_layer, t_layer, inputs) -> tuple:
    """(findings, notes): where the Keras layer's cell state passes the .tflite's cell_clip on this
    input; a note when the clip is there but inactive."""
    clip = t_layer.cell.cell_clip if t_layer.cell is not None else 0.0
    if not clip or k_layer.cell is None or k_layer.cell.kind != "lstm":
        return [], []
    steps = runner.run(keras, inputs, watch=(k_layer.name,)).seen[k_layer.name]["traces"][""]
    c = np.stack([states[1] for _, states in steps], axis=1)  # (batch, time, units)
    over = np.abs(c) > clip
    where = f"{k_layer.name} ↔ {t_layer.name}"
    if not over.any():
        return [], [f"{where}: cell_clip={clip:g} (written by the converter) is inactive on this input: Keras's |c_t| stays within {float(np.abs(c).max()):.3g}"]
    t = np.flatnonzero(over.any(axis=(0, 2)))
    units = np.flatnonzero(over.any(axis=(0, 1)))
    return [f"{where}: cell_clip={clip:g} is active: the converter wrote it, LiteRT clips c_t to ±{clip:g} and Keras does not; Keras's |c_t| passes {clip:g} "
             f"at {len(t)} step(s) {_ranges(t)} in unit(s) {_ranges(units)} (up to {float(np.abs(c).max()):.3g}), and the outputs part from there on"], []  # fmt: skip


def quantization_trap(k_layer, t_layer) -> list:
    """int8 weights: each gate's error against Keras's, in units of its quantization step."""
    scales = t_layer.params.get("scales") if t_layer.params else None
    if not scales or k_layer.cell is None or t_layer.cell is None or k_layer.cell.W.shape != t_layer.cell.W.shape:
        return []
    u = t_layer.cell.units
    parts = []
    worst = 0.0
    for part, ours, theirs in (("W", k_layer.cell.W, t_layer.cell.W), ("U", k_layer.cell.U, t_layer.cell.U)):
        step = np.asarray(scales[part], np.float64)
        if not step.any():
            continue
        err = np.abs(theirs.astype(np.float64) - ours) / np.where(step > 0, step, np.inf)
        for j, g in enumerate(GATES[t_layer.cell.kind] or ("",)):
            e = float(err[:, j * u : (j + 1) * u].max())
            worst = max(worst, e)
            parts.append(f"{part}_{g}" if g else part)
    if not parts:
        return []
    verdict = "rounding only (at most half a step)" if worst <= 0.5 + 1e-3 else "more than rounding: these weights differ beyond quantization"
    return [f"{k_layer.name} ↔ {t_layer.name}: quantization: {', '.join(parts)} are int8 (dynamic-range), up to {worst:.2f} of a quantization step from Keras's ({verdict}); "
            "LiteRT also quantizes x_t and h_t per row at each step, which adds to the difference in the sequence"]  # fmt: skip


def _ranges(indices) -> str:
    """[0, 1, 2, 5] -> '0–2, 5'."""
    out, start = [], None
    for k, i in enumerate(indices):
        if start is None:
            start = i
        if k + 1 == len(indices) or indices[k + 1] != i + 1:
            out.append(f"{start}–{i}" if i > start else f"{i}")
            start = None
    return ", ".join(out[:8]) + (", …" if len(out) > 8 else "")
