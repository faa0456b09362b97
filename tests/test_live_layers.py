"""Live layer tier: random models over the layer families lstmctl added beside LSTM/GRU/SimpleRNN,
built and saved by real Keras, run by lstmctl, compared with what Keras computes on the spot.

Families (each case is drawn from an RNG seeded by (flavour, family, case), so `k3-rnn-0007` is the
same model on every run; a failure prints the whole configuration):

* `rnn`: `RNN` over one cell or a stack of 1-3 cells (LSTMCell, GRUCell with reset_after True or
  False, SimpleRNNCell; random units, activations, use_bias), given as a cell, a list or a
  `StackedRNNCells`, with random go_backwards / return_sequences / return_state; optionally behind
  Masking(0.0) with all-zero steps in the input, and in one of three shapes: plain (sometimes a
  second RNN on top, sometimes a Dense head), inside Bidirectional (every merge mode), or an
  encoder -> decoder whose decoder gets the encoder's (nested, per cell) states as initial_state.
  About one case in seven is float64 (compared to 1e-10; 1e-6 where Keras wraps a list of cells in a
  float32 StackedRNNCells, see ATOL_FLOAT64_LIST_OF_CELLS).
* `conv_lstm`: ConvLSTM1D / ConvLSTM2D (random filters, kernel, padding, strides or dilation,
  activations, go_backwards, return_sequences / return_state), optionally inside Bidirectional,
  sometimes a second ConvLSTM on top, then Flatten+Dense or a global pooling or nothing.
* `around`: a chain of the layers found around recurrent layers in real models with an LSTM or a
  GRU in it. Each case features one of: Conv1D (valid / same / causal; random strides, dilation,
  groups), SeparableConv1D, Max/AveragePooling1D, GlobalAverage/MaxPooling1D, BatchNormalization
  (axis -1 or 1), LayerNormalization (axis -1 or [1, 2]), Dropout, LeakyReLU, PReLU, ELU, ReLU,
  Softmax, Permute, ZeroPadding1D, Cropping1D, UpSampling1D, self-attention on the recurrent
  sequence with Attention (dot / concat scores), AdditiveAttention or MultiHeadAttention (sometimes
  causal, with a separate key, or returning the scores as a model output; MultiHeadAttention also
  with output_shape, and in Keras 3 use_gate and sliding_window), Dot, Subtract / Maximum /
  Minimum with a side branch (Dense or GRU), TimeDistributed(Dense), and with Keras 3 the keras.ops
  expressions `s + s2`, `s * 2.0`, `ops.concatenate`, `s[:, -1, :]`, `ops.mean(s, axis=1)`; the
  featured layer cycles with the case number and sits right after the recurrent layer (where
  a Masking in front, one case in four, sends its mask into it), before it, or at the end; the
  rest of the chain is drawn from the same menu.

Saving: Keras 3 (`keras`) alternates .keras and .h5; Keras 2 (`tf_keras`) saves .h5.
Weights are random and look trained (normal * 0.4, scaled by sqrt(2 / fan-in) for kernels;
non-zero biases, +1 on LSTM forget biases; BatchNormalization moving variance in [0.5, 1.5]).

What is compared (lstmctl's `model.run(x, layer_outputs=True)` against Keras, float32 atol 1e-5):

* every model output (Keras's output structure flattened: Keras 3 nests a stack's states per cell);
* `layer/<name>` (`layer/<name>/<i>` for several outputs) for every top-level layer and every
  keras.ops node this file wrote, from one sub-model over all of them (Keras 3's own mask nodes are
  compared when lstmctl reports them);
* for every recurrent layer, a *probe* in the manner of test_live_parity.py: `L/sequence`, `L/h`,
  `L/c` and for a stack `L/cell_<k>/...` (Bidirectional: `L/forward/...`, `L/backward/...` and the
  merged `L/sequence`), from clones of the layer (and of each cell) with return_sequences and
  return_state, given the layer's input, initial state and the mask Keras hands it (Keras 3: the
  mask tensor of the layer's call; tf_keras: the mask its input carries). The clones must
  reproduce the layer's own outputs in the model and the per-cell runs the stack's, and the mask
  must be the one the test expects where it knows it, or the test fails with "PROBE IS WRONG",
  a bug in this file, not an lstmctl finding.

Models Keras itself refuses to build, call or save are skipped ("Keras rejects ...", counted by
pytest; `test_few_cases_skipped` fails when more than a quarter of a family's cases were). Keras
3.15 cannot run a masked RNN over a one-cell stack nor a masked float64 RNN over a list of cells;
such draws use the bare cell / a float64 StackedRNNCells instead (`keras3_workarounds`).
A case whose model holds a class lstmctl does not register (lstmctl.layers.REGISTRY, the
recurrent module's cells, lstmctl.layers.OP_TYPES) fails naming it, and so does the family's
`test_family_is_supported[...]`, so a family that is not implemented yet cannot go unnoticed;
deselect it with `-k "not <family>"` while it is being written.

LSTMCTL_LIVE_LAYER_CASES (default 70) sets the number of random cases per Keras flavour, split
between the families as 2 rnn : 1 conv_lstm : 3 around (about 70 s per flavour on 2 cores).
"""

import copy
import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    tf = pytest.importorskip("tensorflow")

import lstmctl  # noqa: E402
from lstmctl.layers import OP_TYPES, REGISTRY  # noqa: E402
from test_live_parity import is_keras3, keras_module, quiet_keras, to_numpy  # noqa: E402

try:
    from lstmctl.layers.recurrent import CELL_KINDS
except ImportError:  # pragma: no cover - while recurrent.py is being rewritten
    CELL_KINDS = {}

pytestmark = pytest.mark.live

N_CASES = int(os.environ.get("LSTMCTL_LIVE_LAYER_CASES", "70"))
FLAVOURS = {"k3": "keras", "k2": "tf_keras"}
FAMILY_SHARE = {"rnn": 2, "conv_lstm": 1, "around": 3}
ATOL = {"float32": 1e-5, "float64": 1e-10}
# Keras wraps a plain list of cells in a StackedRNNCells it makes without a dtype: float32, even in a
# float64 model (the saved config says so), so Keras rounds each step's input and states to float32.
# lstmctl computes such a stack in float64; the two differ by up to ~4e-7 there.
ATOL_FLOAT64_LIST_OF_CELLS = 1e-6


def _wraps_a_list(spec) -> bool:
    if isinstance(spec, dict):
        return spec.get("wrap") == "list" or any(_wraps_a_list(v) for v in spec.values())
    if isinstance(spec, list):
        return any(_wraps_a_list(v) for v in spec)
    return False
SELF_CHECK_ATOL = 1e-6
WEIGHT_SCALE = 0.4

ACTIVATIONS = ["tanh", "relu", "sigmoid", "hard_sigmoid", "linear", "elu", "softsign", "selu", "swish", "softplus"]
RECURRENT_ACTIVATIONS = ["sigmoid", "hard_sigmoid", "tanh"]
DENSE_ACTIVATIONS = ["linear", "tanh", "relu", "sigmoid", "elu", "selu", "softplus", "softsign", "swish", "gelu", "hard_sigmoid"]
MERGE_MODES = ["concat", "sum", "mul", "ave", None]
CELL_TYPES = ["lstm", "gru", "gru_v1", "simple_rnn"]  # gru: reset_after=True, gru_v1: False

# Classes each family draws (cells are checked against lstmctl's recurrent cells, `ops.X` against OP_TYPES)
FAMILY_CLASSES = {
    "rnn": ["RNN", "LSTMCell", "GRUCell", "SimpleRNNCell", "Bidirectional", "Masking", "Dense"],
    "conv_lstm": [
        "ConvLSTM1D", "ConvLSTM2D", "Bidirectional", "Flatten", "Dense",
        "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    ],
    "around": [
        "LSTM", "GRU", "Masking", "Conv1D", "SeparableConv1D", "MaxPooling1D", "AveragePooling1D",
        "GlobalAveragePooling1D", "GlobalMaxPooling1D", "BatchNormalization", "LayerNormalization", "Dropout",
        "LeakyReLU", "PReLU", "ELU", "ReLU", "Softmax", "Permute", "ZeroPadding1D", "Cropping1D", "UpSampling1D",
        "Attention", "AdditiveAttention", "MultiHeadAttention", "Dot", "Subtract", "Maximum", "Minimum",
        "TimeDistributed", "Dense", "ops.GetItem", "ops.Mean", "ops.Add", "ops.Multiply", "ops.Concatenate",
    ],
}  # fmt: skip


def lstmctl_supports(class_name):
    if class_name.startswith("ops."):
        return class_name[4:] in OP_TYPES
    if class_name.endswith("Cell") and not class_name.startswith("ConvLSTM"):
        return class_name in CELL_KINDS
    if class_name in ("StackedRNNCells", "ConvLSTMCell", "ConvLSTM1DCell", "ConvLSTM2DCell"):
        return True  # read as part of RNN / ConvLSTM*
    return class_name in REGISTRY


MISSING = {family: [c for c in classes if not lstmctl_supports(c)] for family, classes in FAMILY_CLASSES.items()}  # at collection


# ---------------------------------------------------------------------------------------------
# Keras helpers


def flatten(K, x):
    if is_keras3(K):
        import keras

        return list(keras.tree.flatten(x))
    return list(tf.nest.flatten(x))


def pack_as(K, structure, flat):
    if is_keras3(K):
        import keras

        return keras.tree.pack_sequence_as(structure, flat)
    return tf.nest.pack_sequence_as(structure, flat)


def class_name(obj):
    return type(obj).__name__


def node_outputs(K, op):
    (node,) = op._inbound_nodes  # every layer and op node here is called once
    return flatten(K, node.output_tensors)


def top_nodes(K, model):
    """The model's own graph nodes: layers, and for Keras 3 also keras.ops nodes."""
    ops = model.operations if is_keras3(K) else model.layers
    return [op for op in ops if class_name(op) != "InputLayer"]


def is_layer(K, op):
    return isinstance(op, K.layers.Layer)


def covered_classes(K, op):
    """Class names an op covers: itself, a wrapper's inner layers, an RNN's cells; `ops.X` for ops."""
    if not is_layer(K, op):
        return ["ops." + class_name(op)]
    names = [class_name(op)]
    if class_name(op) == "Bidirectional":
        names += covered_classes(K, op.forward_layer) + covered_classes(K, op.backward_layer)
    elif class_name(op) == "TimeDistributed":
        names += covered_classes(K, op.layer)
    elif hasattr(op, "cell"):
        names.append(class_name(op.cell))
        names += [class_name(c) for c in getattr(op.cell, "cells", [])]
    return list(dict.fromkeys(names))


def cells_of(layer):
    cell = layer.cell
    return list(cell.cells) if class_name(cell) == "StackedRNNCells" else [cell]


def n_states(cell):
    return 2 if "LSTM" in class_name(cell) else 1


# ---------------------------------------------------------------------------------------------
# Random configurations (plain data, printed on failure)


def pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def chance(rng, p):
    return bool(rng.random() < p)


def cell_spec(rng, kind=None, units=None):
    kind = kind or pick(rng, CELL_TYPES)
    c = {"kind": kind, "units": units or int(rng.integers(1, 7)), "activation": pick(rng, ACTIVATIONS), "use_bias": chance(rng, 0.75)}
    if kind != "simple_rnn":
        c["recurrent_activation"] = pick(rng, RECURRENT_ACTIVATIONS)
    return c


def rnn_layer_spec(rng, n_cells, return_sequences=None, return_state=None):
    cells = [cell_spec(rng) for _ in range(n_cells)]
    return {
        "cells": cells,
        "wrap": pick(rng, ["cell", "list"]) if n_cells == 1 else pick(rng, ["list", "list", "stacked_cells"]),
        "named_cells": chance(rng, 0.3),
        "go_backwards": chance(rng, 0.35),
        "return_sequences": chance(rng, 0.5) if return_sequences is None else return_sequences,
        "return_state": chance(rng, 0.4) if return_state is None else return_state,
    }


def spec_rnn(rng, nth, flavour):
    shape = ["plain", "bidir", "plain", "encdec"][nth % 4]
    n_cells = 1 + (nth // 4) % 3
    spec = {"shape": shape, "batch": int(rng.integers(1, 4)), "dtype": "float64" if chance(rng, 0.15) else "float32"}
    if shape == "encdec":
        enc = rnn_layer_spec(rng, n_cells, return_state=True)
        dec = rnn_layer_spec(rng, n_cells)
        for i, (ce, cd) in enumerate(zip(enc["cells"], dec["cells"])):  # the decoder takes the encoder's states: same sizes
            if (ce["kind"] == "lstm") != (cd["kind"] == "lstm"):
                dec["cells"][i] = cell_spec(rng, "lstm" if ce["kind"] == "lstm" else pick(rng, CELL_TYPES[1:]), ce["units"])
            else:
                cd["units"] = ce["units"]
        spec.update(
            enc_timesteps=int(rng.integers(1, 9)), enc_features=int(rng.integers(1, 5)),
            dec_timesteps=int(rng.integers(1, 9)), dec_features=int(rng.integers(1, 5)),
            enc_masked=chance(rng, 0.4), dec_masked=chance(rng, 0.4), encoder=enc, decoder=dec,
            extra_output=pick(rng, ["none", "state", "sequence"]),
        )  # fmt: skip
        keras3_workarounds(spec, flavour)
        if n_cells == 1 and (enc["wrap"] == "cell") != (dec["wrap"] == "cell"):
            # a bare cell's states are [h, c], a one-cell stack's [[h, c]]: the decoder takes the encoder's form
            dec["wrap"] = "cell" if enc["wrap"] == "cell" else "list"
        return spec
    spec.update(
        timesteps=int(rng.integers(1, 10)), features=int(rng.integers(1, 5)),
        variable_time=chance(rng, 0.25), masked=(nth // 2) % 2 == 0, rnn=rnn_layer_spec(rng, n_cells),
    )  # fmt: skip
    if shape == "bidir":
        spec["merge_mode"] = MERGE_MODES[(nth // 4) % len(MERGE_MODES)]
    elif spec["rnn"]["return_sequences"] and chance(rng, 0.3):
        spec["rnn2"] = rnn_layer_spec(rng, int(rng.integers(1, 3)))
    spec["head"] = int(rng.integers(1, 4)) if chance(rng, 0.35) and spec.get("merge_mode", "concat") is not None else None
    return keras3_workarounds(spec, flavour)


def keras3_workarounds(spec, flavour):
    """Keras 3.15 fails to run a masked RNN over a stack of one cell, a list or StackedRNNCells ("The
    two structures don't have the same nested structure"), and a masked float64 RNN over a list
    (its StackedRNNCells is float32; SelectV2 gets a float32 zero). The same model with the bare
    cell, or with a float64 StackedRNNCells, runs: such cases use that form."""
    if flavour != "k3":
        return spec
    for key, masked in (("rnn", spec.get("masked")), ("rnn2", spec.get("masked")), ("encoder", spec.get("enc_masked"))):
        r = spec.get(key)
        if r and masked and len(r["cells"]) == 1:
            r["wrap"] = "cell"
        elif r and masked and r["wrap"] == "list" and spec["dtype"] == "float64":
            r["wrap"] = "stacked_cells"
    return spec


def conv_out(size, kernel, stride, dilation, padding):
    if padding == "valid":
        return (size - dilation * (kernel - 1) - 1) // stride + 1
    return -(-size // stride)


def convlstm_spec(rng, rank, spatial, return_sequences=None):
    kernel, strides, dilation, out = [], [], [], []
    padding = pick(rng, ["valid", "same"])
    dilated = chance(rng, 0.2)
    for s in spatial:
        d = 2 if dilated else 1
        k = int(rng.integers(1, 4))
        if padding == "valid":
            k = max(1, min(k, 1 + (s - 1) // d))
        st = 1 if dilated else int(rng.integers(1, 3))
        kernel.append(k), strides.append(st), dilation.append(d), out.append(conv_out(s, k, st, d, padding))
    return {
        "rank": rank, "filters": int(rng.integers(1, 5)), "kernel_size": kernel, "strides": strides,
        "dilation_rate": dilation, "padding": padding, "activation": pick(rng, ACTIVATIONS),
        "recurrent_activation": pick(rng, RECURRENT_ACTIVATIONS), "use_bias": chance(rng, 0.8),
        "go_backwards": chance(rng, 0.3),
        "return_sequences": chance(rng, 0.5) if return_sequences is None else return_sequences,
        "return_state": chance(rng, 0.3), "out_spatial": out,
    }  # fmt: skip


def spec_conv_lstm(rng, nth):
    rank = 1 + nth % 2
    spatial = [int(rng.integers(3, 8 if rank == 1 else 6)) for _ in range(rank)]
    spec = {
        "batch": int(rng.integers(1, 3)), "timesteps": int(rng.integers(1, 6)), "spatial": spatial,
        "channels": int(rng.integers(1, 4)), "bidirectional": (nth // 2) % 3 == 1,
    }  # fmt: skip
    first = convlstm_spec(rng, rank, spatial)
    spec["layer"] = first
    if spec["bidirectional"]:
        spec["merge_mode"] = pick(rng, MERGE_MODES)
    if first["return_sequences"] and not first["return_state"] and chance(rng, 0.35):
        first = spec["layer2"] = convlstm_spec(rng, rank, first["out_spatial"])
    spec["head"] = pick(rng, ["none", "flatten_dense", "global_average", "global_max"])
    if spec.get("merge_mode", "concat") is None:
        spec["head"] = "none"
    return spec


# --- the `around` family: a chain of steps whose shapes are simulated here ---------------------

SEQ_STEPS = [
    "conv1d", "conv1d", "sepconv1d", "pool", "batchnorm", "layernorm", "dropout", "leaky_relu", "prelu", "elu",
    "relu", "softmax", "permute", "zero_padding", "cropping", "upsampling", "attention", "additive_attention",
    "mha", "mha", "dot", "merge", "merge", "td_dense", "dense",
]  # fmt: skip
VEC_STEPS = ["batchnorm", "layernorm", "dropout", "leaky_relu", "prelu", "elu", "relu", "softmax", "dot", "merge", "dense"]
K3_STEPS = ["op_add", "op_scale", "op_concat"]
MAX_T = 24


def draw_step(rng, op, shape, force=None):
    """A step dict for `op` applicable to `shape` ((T, C) or (C,)), with its output shape, or None."""
    seq = len(shape) == 2
    T, C = shape if seq else (None, shape[0])
    s = {"op": op}
    if op in ("conv1d", "sepconv1d"):
        padding = (force or {}).get("padding") or pick(rng, ["valid", "same", "causal"] if op == "conv1d" else ["valid", "same"])
        d = 2 if chance(rng, 0.25) else 1
        st = 1 if d > 1 else int(rng.integers(1, 3))
        k = int(rng.integers(1, 5))
        if padding == "valid":
            k = min(k, 1 + (T - 1) // d)
        s.update(filters=int(rng.integers(1, 7)), kernel=k, padding=padding, strides=st, dilation=d, activation=pick(rng, DENSE_ACTIVATIONS), use_bias=chance(rng, 0.8))
        if op == "conv1d" and C % 2 == 0 and chance(rng, 0.2):
            s.update(groups=2, filters=2 * int(rng.integers(1, 4)))
        if op == "sepconv1d":
            s["depth_multiplier"] = int(rng.integers(1, 3))
        s["out"] = [conv_out(T, k, st, d, "same" if padding == "causal" else padding), s["filters"]]
    elif op == "pool":
        p = int(rng.integers(1, 4))
        padding = pick(rng, ["valid", "same"])
        if padding == "valid" and T < p:
            p = T
        st = int(rng.integers(1, p + 1))
        s.update(kind=pick(rng, ["max", "average"]), pool=p, strides=st, padding=padding, out=[conv_out(T, p, st, 1, padding), C])
    elif op == "global_pool":
        s.update(kind=pick(rng, ["max", "average"]), out=[C])
    elif op == "batchnorm":
        s.update(axis=1 if seq and chance(rng, 0.25) else -1, center=chance(rng, 0.8), scale=chance(rng, 0.8), epsilon=pick(rng, [1e-3, 1e-2, 0.1]))
    elif op == "layernorm":
        s.update(axis=[1, 2] if seq and chance(rng, 0.15) else -1, center=chance(rng, 0.8), scale=chance(rng, 0.8), epsilon=pick(rng, [1e-3, 1e-2, 0.1]))
    elif op == "dropout":
        s["rate"] = pick(rng, [0.1, 0.25, 0.5])
    elif op == "leaky_relu":
        s["slope"] = pick(rng, [0.01, 0.1, 0.2, 0.3])
    elif op == "prelu":
        s["shared_time"] = seq and chance(rng, 0.4)
    elif op == "elu":
        s["alpha"] = pick(rng, [0.5, 1.0, 1.5])
    elif op == "relu":
        s.update(max_value=pick(rng, [None, 0.6, 1.5]), negative_slope=pick(rng, [0.0, 0.1]), threshold=pick(rng, [0.0, 0.05, 0.2]))
    elif op == "softmax":
        s["axis"] = 1 if seq and chance(rng, 0.3) else -1
    elif op == "permute":
        s["out"] = [C, T]
    elif op == "zero_padding":
        a, b = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        if T + a + b > MAX_T:
            return None
        s.update(padding=[a, b], out=[T + a + b, C])
    elif op == "cropping":
        if T < 2:
            return None
        a = int(rng.integers(0, min(2, T - 1) + 1))
        b = int(rng.integers(0, min(2, T - 1 - a) + 1))
        s.update(cropping=[a, b], out=[T - a - b, C])
    elif op == "upsampling":
        size = int(rng.integers(2, 4))
        if T * size > MAX_T:
            return None
        s.update(size=size, out=[T * size, C])
    elif op == "attention":
        s.update(use_scale=chance(rng, 0.5), score_mode=pick(rng, ["dot", "concat"]), causal=chance(rng, 0.3), scores=chance(rng, 0.2))
    elif op == "additive_attention":
        s.update(use_scale=chance(rng, 0.7), causal=chance(rng, 0.3), scores=chance(rng, 0.2))
    elif op == "mha":
        s.update(
            heads=int(rng.integers(1, 4)), key_dim=int(rng.integers(1, 5)), value_dim=pick(rng, [None, 2, 3]),
            use_bias=chance(rng, 0.8), causal=chance(rng, 0.3), scores=chance(rng, 0.2), key=chance(rng, 0.2),
            output_shape=pick(rng, [None, None, None, int(rng.integers(1, 6))]),
            use_gate=chance(rng, 0.25), sliding_window=pick(rng, [None, None, None, None, int(rng.integers(1, 4))]),
        )  # fmt: skip
        if s["output_shape"]:
            s["out"] = [T, s["output_shape"]]
    elif op == "dot":
        axes = pick(rng, [1, 2]) if seq else 1
        s.update(axes=axes, normalize=chance(rng, 0.3), out=([T, T] if axes == 2 else [C, C]) if seq else [1])
    elif op == "merge":
        s.update(kind=pick(rng, ["subtract", "maximum", "minimum"]), branch=pick(rng, ["dense", "dense", "gru"]) if seq else "dense")
    elif op in ("td_dense", "dense"):
        s.update(units=int(rng.integers(1, 7)), activation=pick(rng, DENSE_ACTIVATIONS))
        s["out"] = [T, s["units"]] if seq else [s["units"]]
    elif op == "recurrent":
        kind = pick(rng, ["lstm", "gru", "gru_v1", "lstm"])
        s.update(cell_spec(rng, kind), go_backwards=chance(rng, 0.2), return_sequences=True)
    elif op == "op_add":
        s["branch"] = "dense"
    elif op == "op_scale":
        s["factor"] = pick(rng, [2.0, -0.5, 0.3])
    elif op == "op_concat":
        s["branch"] = "dense"
        s["out"] = [T, 2 * C] if seq else [2 * C]
    elif op in ("op_last", "op_mean"):
        s["out"] = [C]
    else:
        raise AssertionError(op)
    s.setdefault("out", list(shape))
    return s


# Each `around` case features one of these (cycling with the case number, so that a few dozen
# cases cover them all), placed right after the recurrent layer (where a mask meets it), before
# it, or at the end; the rest of the chain is random.
FEATURED = [
    ("conv1d", {"padding": "valid"}), ("conv1d", {"padding": "same"}), ("conv1d", {"padding": "causal"}),
    ("sepconv1d", {}), ("pool", {"kind": "max"}), ("pool", {"kind": "average"}), ("global_pool", {"kind": "average"}),
    ("global_pool", {"kind": "max"}), ("batchnorm", {}), ("layernorm", {}), ("dropout", {}), ("leaky_relu", {}),
    ("prelu", {}), ("elu", {}), ("relu", {}), ("softmax", {}), ("permute", {}), ("zero_padding", {}), ("cropping", {}),
    ("upsampling", {}), ("attention", {}), ("additive_attention", {}), ("mha", {}), ("dot", {}),
    ("merge", {"kind": "subtract"}), ("merge", {"kind": "maximum"}), ("merge", {"kind": "minimum"}), ("td_dense", {}),
]  # fmt: skip
K3_FEATURED = [("op_add", {}), ("op_scale", {}), ("op_concat", {}), ("op_last", {}), ("op_mean", {})]
ENDS = ("global_pool", "op_last", "op_mean")
SEQ_ONLY = {"conv1d", "sepconv1d", "pool", "permute", "zero_padding", "cropping", "upsampling", "attention", "additive_attention", "mha", "td_dense"}


def spec_around(rng, nth, flavour):
    T, C = int(rng.integers(3, 13)), int(rng.integers(1, 6))
    masked = nth % 4 == 1
    featured = (FEATURED + (K3_FEATURED if flavour == "k3" else []))
    feature, force = featured[nth % len(featured)]
    where = "end" if feature in ENDS else "after" if masked or (nth // len(featured)) % 2 == 0 else "before"
    spec = {"batch": int(rng.integers(1, 4)), "timesteps": T, "features": C, "masked": masked, "featured": feature, "where": where}
    seq_menu = SEQ_STEPS + (K3_STEPS if flavour == "k3" else [])
    vec_menu = VEC_STEPS + (K3_STEPS if flavour == "k3" else [])
    n_pre = 0 if masked else int(rng.integers(0, 2))
    n_post = int(rng.integers(0, 3))
    shape, steps = [T, C], []

    def add(op, **forced):
        nonlocal shape
        step = None
        while step is None:
            step = draw_step(rng, op(shape) if callable(op) else op, shape, forced)
        step.update(forced)
        if flavour == "k2":  # Keras 3 only
            step.pop("use_gate", None), step.pop("sliding_window", None)
        steps.append(step)
        shape = step["out"]

    def random_step(sh):
        return pick(rng, seq_menu if len(sh) == 2 else vec_menu)

    for _ in range(n_pre):
        add(random_step)
    if where == "before":
        add(feature, **force)
    add("recurrent")
    steps[-1]["return_sequences"] = where != "end" and (feature in SEQ_ONLY or chance(rng, 0.85)) or where == "end"
    if not steps[-1]["return_sequences"]:
        shape = steps[-1]["out"] = [steps[-1]["units"]]
    else:
        shape = steps[-1]["out"] = [shape[0], steps[-1]["units"]]
    if where == "after":
        add(feature, **force)
    for _ in range(n_post):
        if len(shape) == 2 and chance(rng, 0.12):
            add("recurrent")  # a second recurrent layer further on
            shape = steps[-1]["out"] = [shape[0], steps[-1]["units"]]
        else:
            add(random_step)
    if where == "end" and len(shape) == 2:
        add(feature, **force)
    elif len(shape) == 2 and chance(rng, 0.3):
        end = pick(rng, ["global_pool", "recurrent_last"] + (["op_last", "op_mean"] if flavour == "k3" else []))
        if end == "recurrent_last":
            add("recurrent")
            steps[-1]["return_sequences"] = False
            shape = steps[-1]["out"] = [steps[-1]["units"]]
        else:
            add(end)
    if chance(rng, 0.3):
        add("dense")
    spec["steps"] = steps
    spec["extra_output"] = chance(rng, 0.2)  # the first recurrent layer's output as a model output too
    return spec


def case_spec(flavour, family, case):
    rng = np.random.default_rng([list(FLAVOURS).index(flavour), list(FAMILY_SHARE).index(family), case])
    if family == "rnn":
        spec = spec_rnn(rng, case, flavour)
    elif family == "conv_lstm":
        spec = spec_conv_lstm(rng, case)
    else:
        spec = spec_around(rng, case, flavour)
    if flavour == "k3":
        spec["format"] = ["keras", "h5"][(case // 2) % 2]
    else:
        spec["format"] = "h5"
    spec.setdefault("dtype", "float32")
    return {"family": family, **spec}, rng


def random_input(rng, shape, masked, dtype):
    """Standard normal; with masking some all-zero steps (one leading in the first sample, one
    trailing in the last), which Masking(0.0) masks."""
    x = rng.standard_normal(shape)
    if masked:
        batch, T = shape[:2]
        drop = rng.random((batch, T)) < 0.25
        drop[0, 0] = True
        if T > 1:
            drop[-1, -1] = True
        x[drop] = 0.0
    return x.astype(dtype)


# ---------------------------------------------------------------------------------------------
# Building the Keras models


UNKNOWN = "unknown"  # a recurrent layer whose mask the probe takes from Keras unchecked


class Builder:
    def __init__(self, K, dtype):
        self.K, self.dtype = K, dtype
        self.inputs, self.names, self.arrays = [], [], []
        self.probes = []  # recurrent layers (and Bidirectional): layer, x, states (structure), mask_expect
        self.explicit_ops = []  # names of keras.ops nodes this file wrote

    def input(self, name, shape, array, masked):
        K = self.K
        t = K.Input(shape=tuple(shape), name=name, dtype=self.dtype)
        self.inputs.append(t)
        self.names.append(name)
        self.arrays.append(array)
        if masked:
            return K.layers.Masking(0.0, name=f"{name}_masking", dtype=self.dtype)(t), np.any(array != 0, axis=-1)
        return t, None

    def recurrent(self, layer, x, mask_expect=None, initial_state=None):
        outs = layer(x, initial_state=initial_state) if initial_state is not None else layer(x)
        self.probes.append(dict(layer=layer, x=x, states=initial_state, mask_expect=mask_expect))
        return outs

    def op(self, tensor):
        self.explicit_ops.append(tensor._keras_history[0].name)
        return tensor

    def model(self, outputs):
        outputs = flatten(self.K, outputs)
        return self.K.Model(self.inputs if len(self.inputs) > 1 else self.inputs[0], outputs if len(outputs) > 1 else outputs[0])


def make_cell(K, c, dtype, name=None):
    cls = {"lstm": K.layers.LSTMCell, "gru": K.layers.GRUCell, "gru_v1": K.layers.GRUCell, "simple_rnn": K.layers.SimpleRNNCell}[c["kind"]]
    kwargs = {k: c[k] for k in ("units", "activation", "use_bias", "recurrent_activation") if k in c}
    if c["kind"].startswith("gru"):
        kwargs["reset_after"] = c["kind"] == "gru"
    if name:
        kwargs["name"] = name
    return cls(dtype=dtype, **kwargs)


def make_rnn(K, r, dtype, name, **overrides):
    r = {**r, **overrides}
    cells = [make_cell(K, c, dtype, f"{name}_cell{i}" if r["named_cells"] else None) for i, c in enumerate(r["cells"])]
    if r["wrap"] == "cell":
        cell = cells[0]
    elif r["wrap"] == "stacked_cells":
        cell = K.layers.StackedRNNCells(cells, dtype=dtype)
    else:
        cell = cells
    flags = {k: r[k] for k in ("go_backwards", "return_sequences", "return_state")}
    return K.layers.RNN(cell, name=name, dtype=dtype, **flags)


def bidirectional(K, make, spec_layer, merge_mode, name, dtype):
    """Bidirectional around make(**overrides). Keras 3 derives the backward layer with go_backwards
    flipped to True whatever the wrapped layer's flag and refuses two backwards layers: a
    go_backwards forward layer gets its partner given."""
    kwargs = {}
    if spec_layer["go_backwards"] and is_keras3(K):
        kwargs["backward_layer"] = make(name_suffix="_back", go_backwards=False)
    return K.layers.Bidirectional(make(), merge_mode=merge_mode, name=name, dtype=dtype, **kwargs)


def build_rnn(K, spec, rng):
    dtype, batch = spec["dtype"], spec["batch"]
    b = Builder(K, dtype)
    if spec["shape"] == "encdec":
        ea = random_input(rng, (batch, spec["enc_timesteps"], spec["enc_features"]), spec["enc_masked"], dtype)
        da = random_input(rng, (batch, spec["dec_timesteps"], spec["dec_features"]), spec["dec_masked"], dtype)
        e, e_mask = b.input("enc_in", (spec["enc_timesteps"], spec["enc_features"]), ea, spec["enc_masked"])
        d, d_mask = b.input("dec_in", (spec["dec_timesteps"], spec["dec_features"]), da, spec["dec_masked"])
        enc_outs = b.recurrent(make_rnn(K, spec["encoder"], dtype, "encoder"), e, e_mask)
        states = list(enc_outs[1:])  # [h, c] for one cell, per cell ([[h0, c0], [h1, c1]]) for a stack
        # Keras 3 hands no mask to a layer called with initial_state; tf_keras passes the input's
        dec_mask = None if is_keras3(K) else d_mask
        dec_outs = b.recurrent(make_rnn(K, spec["decoder"], dtype, "decoder"), d, dec_mask, initial_state=states)
        outputs = flatten(K, dec_outs)
        if spec["extra_output"] == "state":
            outputs.append(flatten(K, states)[0])
        elif spec["extra_output"] == "sequence":
            outputs.append(enc_outs[0])
        model = b.model(outputs)
        randomize_weights(model, rng)
        return model, b
    T = spec["timesteps"]
    arr = random_input(rng, (batch, T, spec["features"]), spec["masked"], dtype)
    y, mask = b.input("x", (None if spec["variable_time"] else T, spec["features"]), arr, spec["masked"])
    if spec["shape"] == "bidir":

        def make(name_suffix="", **overrides):
            return make_rnn(K, spec["rnn"], dtype, "inner" + name_suffix, **overrides)

        outputs = flatten(K, b.recurrent(bidirectional(K, make, spec["rnn"], spec["merge_mode"], "bidir", dtype), y, mask))
    else:
        outputs = flatten(K, b.recurrent(make_rnn(K, spec["rnn"], dtype, "rnn"), y, mask))
        if spec.get("rnn2"):
            # the mask Masking puts on the input travels with the first RNN's sequence
            outputs = flatten(K, b.recurrent(make_rnn(K, spec["rnn2"], dtype, "rnn2"), outputs[0], mask)) + outputs[1:]
    if spec["head"]:
        outputs[0] = K.layers.Dense(spec["head"], activation="tanh", name="head", dtype=dtype)(outputs[0])
    model = b.model(outputs)
    randomize_weights(model, rng)
    return model, b


def make_convlstm(K, s, name, **overrides):
    s = {**s, **overrides}
    cls = K.layers.ConvLSTM1D if s["rank"] == 1 else K.layers.ConvLSTM2D
    kwargs = {k: s[k] for k in ("filters", "padding", "activation", "recurrent_activation", "use_bias", "go_backwards", "return_sequences", "return_state")}
    for k in ("kernel_size", "strides", "dilation_rate"):
        kwargs[k] = tuple(s[k])
    return cls(name=name, **kwargs)


def build_conv_lstm(K, spec, rng):
    b = Builder(K, "float32")
    shape = (spec["timesteps"], *spec["spatial"], spec["channels"])
    arr = random_input(rng, (spec["batch"], *shape), False, "float32")
    y, _ = b.input("x", shape, arr, False)
    first = spec["layer"]
    if spec["bidirectional"]:

        def make(name_suffix="", **overrides):
            return make_convlstm(K, first, "convlstm" + name_suffix, **overrides)

        outputs = flatten(K, b.recurrent(bidirectional(K, make, first, spec["merge_mode"], "bidir", "float32"), y))
    else:
        outputs = flatten(K, b.recurrent(make_convlstm(K, first, "convlstm"), y))
    if spec.get("layer2"):
        outputs = flatten(K, b.recurrent(make_convlstm(K, spec["layer2"], "convlstm2"), outputs[0])) + outputs[1:]
    head, main = spec["head"], outputs[0]
    rank = len(main.shape) - 2  # spatial (+ time) axes
    if head == "flatten_dense":
        outputs[0] = K.layers.Dense(2, activation="tanh", name="head")(K.layers.Flatten(name="flatten")(main))
    elif head in ("global_average", "global_max"):
        kind = "Average" if head == "global_average" else "Max"
        outputs[0] = getattr(K.layers, f"Global{kind}Pooling{rank}D")(name="global_pool")(main)
    model = b.model(outputs)
    randomize_weights(model, rng)
    return model, b


def build_around(K, spec, rng):
    b = Builder(K, "float32")
    T, C = spec["timesteps"], spec["features"]
    arr = random_input(rng, (spec["batch"], T, C), spec["masked"], "float32")
    y, mask = b.input("x", (T, C), arr, spec["masked"])
    outputs, first_recurrent = [], None
    for i, s in enumerate(spec["steps"]):
        name = f"{s['op']}_{i}"
        # Masking is followed by the first recurrent layer; what reaches later ones is Keras's business
        y, extra = apply_step(K, b, s, y, name, mask if i == 0 else UNKNOWN)
        outputs += extra
        if s["op"] == "recurrent" and first_recurrent is None:
            first_recurrent = y
    outputs.insert(0, y)
    if spec["extra_output"] and first_recurrent is not y:
        outputs.append(first_recurrent)
    model = b.model(outputs)
    randomize_weights(model, rng)
    return model, b


def branch(K, b, s, y, name):
    """A side branch of y's shape for the two-input steps."""
    width = y.shape[-1]
    if s.get("branch") == "gru":
        return b.recurrent(K.layers.GRU(width, return_sequences=True, name=f"{name}_branch"), y, UNKNOWN)
    return K.layers.Dense(width, activation="tanh", name=f"{name}_branch")(y)


def apply_step(K, b, s, y, name, mask_expect):
    """y after step s, and any extra model outputs (attention scores)."""
    L, op = K.layers, s["op"]
    if op == "conv1d":
        extra = {"groups": s["groups"]} if "groups" in s else {}
        return L.Conv1D(s["filters"], s["kernel"], strides=s["strides"], padding=s["padding"], dilation_rate=s["dilation"], activation=s["activation"], use_bias=s["use_bias"], name=name, **extra)(y), []
    if op == "sepconv1d":
        return L.SeparableConv1D(s["filters"], s["kernel"], strides=s["strides"], padding=s["padding"], dilation_rate=s["dilation"], depth_multiplier=s["depth_multiplier"], activation=s["activation"], use_bias=s["use_bias"], name=name)(y), []
    if op == "pool":
        cls = L.MaxPooling1D if s["kind"] == "max" else L.AveragePooling1D
        return cls(s["pool"], strides=s["strides"], padding=s["padding"], name=name)(y), []
    if op == "global_pool":
        cls = L.GlobalMaxPooling1D if s["kind"] == "max" else L.GlobalAveragePooling1D
        return cls(name=name)(y), []
    if op == "batchnorm":
        return L.BatchNormalization(axis=s["axis"], center=s["center"], scale=s["scale"], epsilon=s["epsilon"], name=name)(y), []
    if op == "layernorm":
        return L.LayerNormalization(axis=s["axis"], center=s["center"], scale=s["scale"], epsilon=s["epsilon"], name=name)(y), []
    if op == "dropout":
        return L.Dropout(s["rate"], name=name)(y), []
    if op == "leaky_relu":
        kw = {"negative_slope": s["slope"]} if is_keras3(K) else {"alpha": s["slope"]}
        return L.LeakyReLU(name=name, **kw)(y), []
    if op == "prelu":
        return L.PReLU(shared_axes=[1] if s["shared_time"] else None, name=name)(y), []
    if op == "elu":
        return L.ELU(alpha=s["alpha"], name=name)(y), []
    if op == "relu":
        return L.ReLU(max_value=s["max_value"], negative_slope=s["negative_slope"], threshold=s["threshold"], name=name)(y), []
    if op == "softmax":
        return L.Softmax(axis=s["axis"], name=name)(y), []
    if op == "permute":
        return L.Permute((2, 1), name=name)(y), []
    if op == "zero_padding":
        return L.ZeroPadding1D(tuple(s["padding"]), name=name)(y), []
    if op == "cropping":
        return L.Cropping1D(tuple(s["cropping"]), name=name)(y), []
    if op == "upsampling":
        return L.UpSampling1D(s["size"], name=name)(y), []
    if op in ("attention", "additive_attention"):
        if op == "attention":
            layer = L.Attention(use_scale=s["use_scale"], score_mode=s["score_mode"], name=name)
        else:
            layer = L.AdditiveAttention(use_scale=s["use_scale"], name=name)
        out = layer([y, y], use_causal_mask=s["causal"], return_attention_scores=s["scores"])
        return (out[0], [out[1]]) if s["scores"] else (out, [])
    if op == "mha":
        extra = {k: s[k] for k in ("use_gate", "sliding_window") if s.get(k)}
        layer = L.MultiHeadAttention(s["heads"], s["key_dim"], value_dim=s["value_dim"], use_bias=s["use_bias"], output_shape=s["output_shape"], name=name, **extra)
        key = L.Dense(y.shape[-1] + 1, name=f"{name}_key")(y) if s["key"] else None
        out = layer(y, y, key=key, use_causal_mask=s["causal"], return_attention_scores=s["scores"])
        return (out[0], [out[1]]) if s["scores"] else (out, [])
    if op == "dot":
        return L.Dot(axes=s["axes"], normalize=s["normalize"], name=name)([y, branch(K, b, s, y, name)]), []
    if op == "merge":
        cls = {"subtract": L.Subtract, "maximum": L.Maximum, "minimum": L.Minimum}[s["kind"]]
        return cls(name=name)([y, branch(K, b, s, y, name)]), []
    if op == "td_dense":
        return L.TimeDistributed(L.Dense(s["units"], activation=s["activation"]), name=name)(y), []
    if op == "dense":
        return L.Dense(s["units"], activation=s["activation"], name=name)(y), []
    if op == "recurrent":
        cls = {"lstm": L.LSTM, "gru": L.GRU, "gru_v1": L.GRU}[s["kind"]]
        kwargs = {k: s[k] for k in ("units", "activation", "recurrent_activation", "use_bias", "go_backwards", "return_sequences")}
        if s["kind"].startswith("gru"):
            kwargs["reset_after"] = s["kind"] == "gru"
        return b.recurrent(cls(name=name, **kwargs), y, mask_expect), []
    import keras  # only Keras 3 draws the ops steps

    ops = keras.ops
    if op == "op_add":
        return b.op(y + branch(K, b, s, y, name)), []
    if op == "op_scale":
        return b.op(y * s["factor"]), []
    if op == "op_concat":
        return b.op(ops.concatenate([y, branch(K, b, s, y, name)], axis=-1)), []
    if op == "op_last":
        return b.op(y[:, -1, :]), []
    if op == "op_mean":
        return b.op(ops.mean(y, axis=1)), []
    raise AssertionError(op)


BUILDERS = {"rnn": build_rnn, "conv_lstm": build_conv_lstm, "around": build_around}


# ---------------------------------------------------------------------------------------------
# Weights that look trained


def _forget_biases(layer):
    """{id(bias variable): units} of the LSTM-type cells in a layer (LSTMCell, ConvLSTMCell)."""
    out = {}
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        cn = class_name(sub)
        if "LSTM" in cn and cn.endswith("Cell") and getattr(sub, "use_bias", False) and getattr(sub, "bias", None) is not None:
            out[id(sub.bias)] = int(getattr(sub, "units", None) or sub.filters)
    return out


def randomize_weights(model, rng):
    """Kernels normal * 0.4 * sqrt(2 / fan-in) (fan-in: the product of all but the last axis), other
    arrays normal * 0.4 (biases never zero), LSTM forget-gate biases + 1; BatchNormalization /
    LayerNormalization gamma 1 + 0.2N, beta 0.3N, moving_mean 0.4N, moving_variance U(0.5, 1.5);
    PReLU alpha 0.25 + 0.1N; attention scales 1 + 0.3N. Keeps values of order one through a chain."""
    forget = {}
    for layer in model.layers:
        forget.update(_forget_biases(layer))
    done = set()
    for var in model.weights:
        if id(var) in done:
            continue
        done.add(id(var))
        old = np.asarray(var.numpy())
        short = var.name.split("/")[-1].split(":")[0]
        if not np.issubdtype(old.dtype, np.floating) or "seed" in short:
            continue
        shape = old.shape
        n = rng.standard_normal(shape)
        if short == "gamma":
            v = 1.0 + 0.2 * n
        elif short == "beta":
            v = 0.3 * n
        elif short == "moving_mean":
            v = 0.4 * n
        elif short == "moving_variance":
            v = rng.uniform(0.5, 1.5, size=shape)
        elif short == "alpha":
            v = 0.25 + 0.1 * n
        elif short == "scale":
            v = 1.0 + 0.3 * n
        elif len(shape) >= 2:
            v = n * WEIGHT_SCALE * math.sqrt(2 / max(2, int(np.prod(shape[:-1]))))
        else:
            v = n * WEIGHT_SCALE
        v = np.asarray(v).astype(old.dtype)
        if id(var) in forget:
            u = forget[id(var)]
            v[u : 2 * u] += 1
        var.assign(v)


# ---------------------------------------------------------------------------------------------
# What Keras computes


class ProbeError(AssertionError):
    pass


def self_check(case, what, got, want):
    if len(got) != len(want):
        raise ProbeError(f"{case}: PROBE IS WRONG ({what}: {len(got)} arrays vs {len(want)}); this is a test bug, not an lstmctl finding")
    for i, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape or not np.allclose(g, w, rtol=0, atol=SELF_CHECK_ATOL):
            err = np.max(np.abs(g - w)) if g.shape == w.shape else f"shapes {g.shape} vs {w.shape}"
            raise ProbeError(f"{case}: PROBE IS WRONG ({what}, item {i}: {err}); this is a test bug, not an lstmctl finding")


def clone_layer(layer, tag, **overrides):
    config = dict(layer.get_config())
    config.update(overrides, name=f"{layer.name}_{tag}")
    clone = type(layer).from_config(config)
    if hasattr(layer, "zero_output_for_mask"):
        clone.zero_output_for_mask = layer.zero_output_for_mask  # tf_keras leaves it out of get_config
    return clone


def call_built(K, layer, weights, x, kwargs):
    layer(tf.constant(x), **kwargs)  # builds it
    layer.set_weights(weights)
    return [to_numpy(t) for t in flatten(K, layer(tf.constant(x), **kwargs))]


def check_mask(case, p, mask):
    expect = p["mask_expect"]
    if isinstance(expect, str):
        return  # a recurrent layer further down a chain: the mask is whatever Keras propagated
    if (mask is None) != (expect is None) or (mask is not None and not np.array_equal(mask, expect)):
        raise ProbeError(f"{case}: PROBE IS WRONG: Keras gives {p['layer'].name} the mask {None if mask is None else mask.tolist()}, the probe expected {None if expect is None else expect.tolist()}")


def probe_kwargs(K, p, mask, init):
    kwargs = {}
    if mask is not None:
        kwargs["mask"] = tf.constant(mask)
    if init:
        kwargs["initial_state"] = pack_as(K, p["states"], [tf.constant(v) for v in init])
    return kwargs


MERGES = {
    "concat": lambda a, b: np.concatenate([a, b], axis=-1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2,
}


def probe_bidirectional(K, case, p, x, init, original, mask, want):
    """L/forward/..., L/backward/... and the merged L/sequence of a Bidirectional: a clone from its
    config with both directions returning sequences and states and merge_mode None (Keras applies
    its own rules, such as zero outputs at masked steps). Merging its halves (and last states) as
    the layer does must give the layer's own outputs in the model."""
    layer = p["layer"]
    name, mode = layer.name, layer.merge_mode
    check_mask(case, p, mask)
    config = copy.deepcopy(layer.get_config())
    for key in ("layer", "backward_layer"):
        if config.get(key):
            config[key]["config"].update(return_sequences=True, return_state=True)
    config.update(merge_mode=None, name=f"{name}_probe")
    out = call_built(K, type(layer).from_config(config), layer.get_weights(), x, probe_kwargs(K, p, mask, init))
    fseq, bseq, states = out[0], out[1], out[2:]
    n_forward = sum(n_states(c) for c in cells_of(layer.forward_layer))
    halves = {"forward": (fseq, states[:n_forward], cells_of(layer.forward_layer)), "backward": (bseq, states[n_forward:], cells_of(layer.backward_layer))}
    last = {}
    for direction, (seq, st, cells) in halves.items():
        last[direction] = st[len(st) - n_states(cells[-1]) :]
        want[f"{name}/{direction}/sequence"] = seq
        for key, value in zip(("h", "c"), last[direction]):
            want[f"{name}/{direction}/{key}"] = value
    if layer.return_sequences:
        got = [fseq, bseq] if mode is None else [MERGES[mode](fseq, bseq)]
    else:
        fh, bh = last["forward"][0], last["backward"][0]
        got = [fh, bh] if mode is None else [MERGES[mode](fh, bh)]
    if layer.return_state:
        got += states
    self_check(case, f"{name}: probe halves, merged as the layer does, vs the model's layer", got, original)
    if mode is not None:
        want[f"{name}/sequence"] = MERGES[mode](fseq, bseq)


def probe_recurrent(K, case, p, x, init, original, mask, want):
    """L/sequence, L/h, L/c (and L/cell_<k>/... for a stack) of one recurrent layer, from a clone
    with return_sequences and return_state given the layer's input, initial state and mask."""
    layer = p["layer"]
    name = layer.name
    check_mask(case, p, mask)
    kwargs = probe_kwargs(K, p, mask, init)
    weights = layer.get_weights()
    probe = call_built(K, clone_layer(layer, "probe", return_sequences=True, return_state=True), weights, x, kwargs)
    seq, states = probe[0], probe[1:]
    if layer.return_state:
        self_check(case, f"{name}: probe states vs the model's layer", states, original[1:])
    zeroed = mask is not None and getattr(layer, "zero_output_for_mask", False)
    if not zeroed:
        self_check(case, f"{name}: probe sequence vs the model's layer", [seq if layer.return_sequences else seq[:, -1]], original[:1])
    elif not layer.return_state:  # neither check above applies: a clone as configured must be the layer
        same = call_built(K, clone_layer(layer, "same", return_state=True), weights, x, kwargs)
        self_check(case, f"{name}: clone as configured vs the model's layer", same[:1], original)
        self_check(case, f"{name}: probe states vs clone as configured", states, same[1:])
    cells = cells_of(layer)
    last_n = n_states(cells[-1])
    want[f"{name}/sequence"] = seq
    for key, value in zip(("h", "c"), states[len(states) - last_n :]):
        want[f"{name}/{key}"] = value
    if len(cells) > 1:
        probe_cells(K, case, layer, cells, x, mask, init, seq, states, want)


def probe_cells(K, case, layer, cells, x, mask, init, seq, states, want):
    """Each cell of a stack: RNN(clone of cell k) on cell k-1's sequence (cell 0 on the layer's
    input), with the cell's weights, the mask and its slice of the initial state. With go_backwards
    only cell 0 runs backwards: the later cells see its output in processing (reversed) order."""
    name, back = layer.name, layer.go_backwards
    cur, offset, collected = x, 0, []
    for k, cell in enumerate(cells):
        n = n_states(cell)
        clone = type(cell).from_config(dict(cell.get_config(), name=f"{name}_cell{k}_probe"))
        wrapper = type(layer)(clone, return_sequences=True, return_state=True, go_backwards=back and k == 0, name=f"{name}_cell{k}_rnn", dtype=layer.dtype)
        wrapper.zero_output_for_mask = layer.zero_output_for_mask
        kwargs = {}
        if mask is not None:
            kwargs["mask"] = tf.constant(np.ascontiguousarray(mask[:, ::-1] if back and k > 0 else mask))
        if init:
            kwargs["initial_state"] = [tf.constant(v) for v in init[offset : offset + n]]
        out = call_built(K, wrapper, cell.get_weights(), cur, kwargs)
        want[f"{name}/cell_{k}/sequence"] = out[0]
        for key, value in zip(("h", "c"), out[1:]):
            want[f"{name}/cell_{k}/{key}"] = value
        collected += out[1:]
        cur, offset = out[0], offset + n
    self_check(case, f"{name}: last cell's sequence vs the stack's", [cur], [seq])
    self_check(case, f"{name}: the cells' states vs the stack's", collected, states)


def keras_expectations(K, case, model, b, feed, outputs):
    """({contract key: array}, keys lstmctl may leave out) computed by Keras, self-checks done.
    One sub-model yields every node's outputs and every probed layer's input, initial state and
    mask (Keras 3: the mask tensor of the layer's call; tf_keras: the mask its input carries)."""
    want, optional = {}, set()
    tensors, slots, where = [], [], {}
    for op in top_nodes(K, model):
        ts = node_outputs(K, op)
        slots.append((op, len(tensors), len(ts)))
        where[id(op)] = (len(tensors), len(ts))
        tensors += ts
    probes = []
    for p in b.probes:
        layer = p["layer"]
        state_tensors = flatten(K, p["states"]) if p["states"] is not None else []
        mask_t = layer._inbound_nodes[0].arguments.kwargs.get("mask") if is_keras3(K) else None
        probes.append((p, len(tensors), len(state_tensors), mask_t is not None))
        tensors += [p["x"], *state_tensors, *([mask_t] if mask_t is not None else [])]
    sub = K.Model(b.inputs if len(b.inputs) > 1 else b.inputs[0], tensors)
    raw = flatten(K, sub(feed, training=False))
    values = [to_numpy(t) for t in raw]
    for op, start, n in slots:
        keys = [f"layer/{op.name}"] if n == 1 else [f"layer/{op.name}/{i}" for i in range(n)]
        for key, value in zip(keys, values[start : start + n]):
            want[key] = value
            if not is_layer(K, op) and op.name not in b.explicit_ops:
                optional.add(key)  # Keras 3's own mask nodes (NotEqual, Any, ...)
    for p, start, n_states_, has_mask in probes:
        x, init = values[start], values[start + 1 : start + 1 + n_states_]
        if is_keras3(K):
            mask = values[start + 1 + n_states_].astype(bool) if has_mask else None
        else:
            m = None if any(p["x"] is t for t in b.inputs) else getattr(raw[start], "_keras_mask", None)
            mask = None if m is None else to_numpy(m).astype(bool)
        o, n = where[id(p["layer"])]
        probe = probe_bidirectional if class_name(p["layer"]) == "Bidirectional" else probe_recurrent
        probe(K, case, p, x, init, values[o : o + n], mask, want)
    if len(outputs) == 1:
        want["output"] = outputs[0]
    else:
        want.update({f"output_{i}": v for i, v in enumerate(outputs)})
    return want, optional


# ---------------------------------------------------------------------------------------------
# The cases


def describe(spec):
    lines = []
    for k, v in spec.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            lines.append(f"  {k}:")
            lines += [f"    - {json.dumps(item)}" for item in v]
        elif isinstance(v, dict):
            lines.append(f"  {k}: {json.dumps(v)}")
        else:
            lines.append(f"  {k}: {v}")
    return "\n".join(lines)


def compare(result, want, optional, atol):
    problems = []
    for key, value in want.items():
        if key not in result:
            if key not in optional:
                problems.append((key, None, f"missing from lstmctl's result (it has {sorted(result)})"))
            continue
        got = np.asarray(result[key])
        if got.shape != value.shape:
            problems.append((key, None, f"shape {got.shape} != Keras {value.shape}"))
        elif value.dtype == bool or got.dtype == bool:
            if not np.array_equal(got, value):
                problems.append((key, None, f"mask {got.astype(int).tolist()} != Keras {value.astype(int).tolist()}"))
        elif got.dtype != value.dtype:
            problems.append((key, None, f"dtype {got.dtype} != Keras {value.dtype}"))
        elif not np.allclose(got, value, rtol=0, atol=atol):
            diff = np.abs(got.astype(np.float64) - value)
            err = float(np.max(diff)) if np.isfinite(diff).all() else float("inf")
            at = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.nan_to_num(diff, nan=np.inf))), diff.shape))
            problems.append((key, err, f"max abs error {err:.3g} at {at} (lstmctl {got[at]!r}, Keras {value[at]!r}; max |Keras| {float(np.max(np.abs(value))):.3g})"))
    return problems


def case_ids():
    shares = sum(FAMILY_SHARE.values())
    out = []
    for flavour in FLAVOURS:
        for family, share in FAMILY_SHARE.items():
            n = -(-N_CASES * share // shares)
            out += [pytest.param(flavour, family, i, id=f"{flavour}-{family}-{i:04d}") for i in range(n)]
    return out


RAN, SKIPPED = {}, {}  # (flavour, family) -> cases run / skipped because Keras refused them
MAX_SKIPPED = 0.25


@pytest.mark.parametrize("family", list(FAMILY_CLASSES))
def test_family_is_supported(family):
    """Every class a family draws is one lstmctl registers (checked when the tests are collected)."""
    if MISSING[family]:
        pytest.fail(f"lstmctl does not support {', '.join(MISSING[family])} yet (not registered in lstmctl.layers): the live {family} family cannot run; deselect it with -k 'not {family}' until it lands", pytrace=False)


@pytest.mark.parametrize("flavour, family, case", case_ids())
def test_random_layer_model_matches_keras(flavour, family, case, tmp_path):
    K = keras_module(flavour)
    RAN[(flavour, family)] = RAN.get((flavour, family), 0) + 1
    spec, rng = case_spec(flavour, family, case)
    case_id = f"{flavour}-{family}-{case:04d}"
    path = tmp_path / f"model.{spec['format']}"
    header = f"{case_id} ({FLAVOURS[flavour]}, {path.name})\n{describe(spec)}"
    with quiet_keras():
        K.backend.clear_session()
        try:
            model, b = BUILDERS[family](K, spec, rng)
            feed = b.arrays if len(b.arrays) > 1 else b.arrays[0]
            outputs = [to_numpy(t) for t in flatten(K, model(feed, training=False))]
            model.save(str(path))
        except (ValueError, TypeError, NotImplementedError, tf.errors.OpError) as exc:
            if "argument" in str(exc) and ("not understood" in str(exc) or "unexpected keyword" in str(exc)):
                raise  # a wrong keyword is this file's bug, not a model Keras refuses
            SKIPPED[(flavour, family)] = SKIPPED.get((flavour, family), 0) + 1
            pytest.skip(f"Keras rejects {case_id}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        classes = list(dict.fromkeys(c for op in top_nodes(K, model) for c in covered_classes(K, op)))
        unsupported = [c for c in classes if not lstmctl_supports(c)]
        if unsupported:
            pytest.fail(f"{header}\nlstmctl does not support {', '.join(unsupported)} yet (not registered in lstmctl.layers)", pytrace=False)
        try:
            want, optional = keras_expectations(K, case_id, model, b, feed, outputs)
        except ProbeError as exc:
            pytest.fail(f"{header}\n{exc}", pytrace=False)
    try:
        loaded = lstmctl.load(path)
        result = loaded.run(dict(zip(b.names, b.arrays)), layer_outputs=True)
    except Exception as exc:  # noqa: BLE001 - a refusal is a finding like a wrong number
        pytest.fail(f"{header}\nlstmctl fails on it: {type(exc).__name__}: {exc}", pytrace=False)
    atol = ATOL_FLOAT64_LIST_OF_CELLS if spec["dtype"] == "float64" and _wraps_a_list(spec) else ATOL[spec["dtype"]]
    problems = compare(result, want, optional, atol)
    if problems:
        lines = [f"  {key}: {text}" for key, _, text in problems]
        pytest.fail(f"{header}\nlstmctl disagrees with Keras on {len(problems)} key(s); first: {problems[0][0]}\n" + "\n".join(lines), pytrace=False)


def test_few_cases_skipped():
    """Runs after the cases: a family where Keras refused more than a quarter of the drawn models
    (with at least 8 run) means the generator has drifted from what Keras builds."""
    bad = {f"{fl}-{fam}": f"{SKIPPED.get((fl, fam), 0)}/{n}" for (fl, fam), n in RAN.items() if n >= 8 and SKIPPED.get((fl, fam), 0) > MAX_SKIPPED * n}
    assert not bad, f"Keras refused too many drawn models (skipped/run): {bad}"
