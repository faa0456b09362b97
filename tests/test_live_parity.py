"""Live parity tier: random recurrent models built and saved by real Keras, run by lstmctl.

Cases come in three families (stacks of 1-3 LSTM/GRU/SimpleRNN layers, some as Sequential;
Bidirectional with every merge mode, with other layers before/after it; encoder -> decoder with
`initial_state` and two inputs), with or without Masking(0.0), float32 or float64, saved by Keras 3
(`keras`: .keras and .h5) and by Keras 2 (`tf_keras`: .h5 and .keras). Each case is drawn from an
RNG seeded by (flavour, case id), so `k3-0007` is the same model on every run; a failure prints
the whole configuration. The expected numbers come only from Keras:

* the model outputs from `model(x)`;
* for every recurrent layer L, a *probe*: an intermediate model yields L's input (and its
  initial-state tensors); a clone of L built from its config with return_sequences=True and
  return_state=True (for Bidirectional: a fresh Bidirectional around clones of both directions,
  so Keras itself applies its zero-outputs-for-masked-steps rule) gets L's weights and the mask
  Keras hands L (tf_keras: `np.any(x != 0, -1)` of the masked input; Keras 3: the mask tensor of
  L's call in the graph, which Keras 3 leaves out for a call with `initial_state`), and is called.
  Before it is trusted, a clone as configured must reproduce L's own outputs inside the model
  and the probe's states must equal that clone's (1e-6); otherwise the test fails with
  "PROBE IS WRONG", which is a bug in this file, not in lstmctl.

Keras runs under ignored warnings and `np.errstate(all="ignore")`; lstmctl runs outside that,
under the suite's warnings-as-errors and errstate(all="raise").

LSTMCTL_LIVE_CASES (default 24) sets the number of random cases per Keras flavour.
"""

import os
import sys
import warnings
from contextlib import contextmanager, nullcontext
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

pytestmark = pytest.mark.live

N_CASES = int(os.environ.get("LSTMCTL_LIVE_CASES", "24"))
FLAVOURS = {"k3": "keras", "k2": "tf_keras"}  # Keras 3, Keras 2 (tf_keras)

KINDS = ["lstm", "gru", "gru_v1", "simple_rnn"]  # gru: reset_after=True, gru_v1: reset_after=False
ACTIVATIONS = ["tanh", "relu", "sigmoid", "hard_sigmoid", "linear", "elu", "softsign", "selu", "swish", "softplus"]
RECURRENT_ACTIVATIONS = ["sigmoid", "hard_sigmoid", "tanh"]
MERGE_MODES = ["concat", "sum", "mul", "ave", None]
FAMILIES = ["stack", "bidir", "stack", "bidir", "encdec", "bidir"]
SELF_CHECK_ATOL = 1e-6
WEIGHT_SCALE = 0.4

# tf_keras's public vector 1 (LSTM(1), constant 0.1 kernels, hard_sigmoid, unit_forget_bias)
VECTOR1_X = np.array([0.1, 0.2, 0.3, 0.1, 0.2, 0.3], dtype=np.float32).reshape(1, 3, 2)
VECTOR1_K2_SEQUENCE = [0.00767819, 0.01597687, 0.02480672]
VECTOR1_K2_C = 0.04864851


# ---------------------------------------------------------------------------------------------
# Keras, quietly


@contextmanager
def quiet_keras():
    """Keras may warn or trip NumPy's error state internally; that is not under test."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def keras_module(flavour):
    with quiet_keras():
        return pytest.importorskip(FLAVOURS[flavour])


def to_numpy(t):
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def is_keras3(K):
    return not K.__name__.startswith("tf_keras")


def keras3_mask_argument(K, layer):
    """The mask tensor Keras 3 passes to `layer` in the model graph, or None.

    Keras 3 populates `mask` only when the call has a single tensor argument; a recurrent layer
    called with `initial_state` tensors gets none, even behind a Masking layer."""
    if not is_keras3(K):
        return None
    (node,) = layer._inbound_nodes  # every probed layer is called once
    return node.arguments.kwargs.get("mask")


def first(x):
    """A layer's input tensor (Keras 3 Sequential lists the mask it passes after it)."""
    return x[0] if isinstance(x, (list, tuple)) else x


# ---------------------------------------------------------------------------------------------
# Random configurations (plain data, so the failing case can be printed)


def rnn_spec(rng, kind=None, return_sequences=None, nth=None):
    """One recurrent layer. `nth` (the case's index within its family) makes this the case's main
    layer, whose activations cycle so that every one of them is covered by a few dozen cases."""
    kind = kind or KINDS[rng.integers(len(KINDS))]
    activation = ACTIVATIONS[rng.integers(len(ACTIVATIONS)) if nth is None else nth % len(ACTIVATIONS)]
    recurrent = RECURRENT_ACTIVATIONS[rng.integers(len(RECURRENT_ACTIVATIONS)) if nth is None else nth % len(RECURRENT_ACTIVATIONS)]
    spec = {
        "kind": kind,
        "units": int(rng.integers(1, 9)),
        "activation": activation,
        "use_bias": bool(rng.random() < 0.75),
        "go_backwards": bool(rng.random() < 0.4),
        "return_sequences": bool(rng.random() < 0.5) if return_sequences is None else return_sequences,
    }
    if kind != "simple_rnn":
        spec["recurrent_activation"] = recurrent
    return spec


def case_spec(flavour, case):
    rng = np.random.default_rng([list(FLAVOURS).index(flavour), case])
    family = FAMILIES[case % len(FAMILIES)]
    nth = sum(1 for i in range(case) if FAMILIES[i % len(FAMILIES)] == family)  # index within family
    spec = {
        "family": family,
        "batch": int(rng.integers(1, 4)),
        "dtype": "float64" if rng.random() < 0.2 else "float32",
        "input_style": ["array", "list", "dict"][rng.integers(3)],
    }
    if flavour == "k3":
        spec["format"] = ["keras", "h5"][(case // 2) % 2]
    else:
        spec["format"] = "keras" if (case // 2) % 3 == 2 else "h5"
    if family == "stack":
        depth = 1 + nth % 3
        layers = [rnn_spec(rng, KINDS[nth % 4], True, nth)] + [rnn_spec(rng, None, True) for _ in range(depth - 1)]
        layers[-1]["return_sequences"] = bool(rng.random() < 0.5)
        spec.update(
            features=int(rng.integers(1, 6)), timesteps=int(rng.integers(1, 10)),
            variable_time=bool(rng.random() < 0.3), masked=(nth // 4) % 2 == 0, layers=layers,
            dense=int(rng.integers(1, 4)) if rng.random() < 0.4 else None,
            sequential=bool(rng.random() < 0.4),
        )  # fmt: skip
    elif family == "bidir":
        mode = MERGE_MODES[nth % len(MERGE_MODES)]
        inner = rnn_spec(rng, KINDS[(nth // 2) % 4], nth=nth)
        concat_halves = mode is None and (nth // 5) % 2 == 0
        if concat_halves:
            inner["return_sequences"] = True  # so that a Masking in front reaches the Concatenate
        spec.update(
            features=int(rng.integers(1, 6)), timesteps=int(rng.integers(1, 10)),
            variable_time=bool(rng.random() < 0.3), masked=nth % 2 == 0, merge_mode=mode, inner=inner,
            # a None merge needs a Concatenate or both halves as model outputs
            concat_halves=concat_halves,
            before=rnn_spec(rng, return_sequences=True) if rng.random() < 0.3 else None,
            after=rnn_spec(rng) if (mode is not None and inner["return_sequences"] and rng.random() < 0.4) else None,
            sequential=mode is not None and rng.random() < 0.3,
        )  # fmt: skip
    else:
        enc_kind = KINDS[nth % 4]
        # the decoder takes the encoder's states: same number of them ([h, c] or [h])
        dec_kinds = ["lstm"] if enc_kind == "lstm" else ["gru", "gru_v1", "simple_rnn"]
        encoder = rnn_spec(rng, enc_kind, nth=nth)
        decoder = rnn_spec(rng, dec_kinds[rng.integers(len(dec_kinds))])
        decoder["units"] = encoder["units"]
        spec.update(
            enc_features=int(rng.integers(1, 6)), enc_timesteps=int(rng.integers(1, 10)),
            dec_features=int(rng.integers(1, 6)), dec_timesteps=int(rng.integers(1, 10)),
            enc_masked=nth % 2 == 0, dec_masked=(nth // 2) % 2 == 0,
            encoder=encoder, decoder=decoder, dense=int(rng.integers(1, 4)) if rng.random() < 0.5 else None,
            extra_output=["none", "h", "sequence"][rng.integers(3)],
        )  # fmt: skip
    return spec, rng


def random_input(rng, batch, timesteps, features, masked, dtype):
    """Standard normal; with masking some all-zero steps, a leading one in the first sample and a
    trailing one in the last (Masking(0.0) masks exactly those)."""
    x = rng.standard_normal((batch, timesteps, features))
    if masked:
        drop = rng.random((batch, timesteps)) < 0.25
        drop[0, 0] = True
        if timesteps > 1:
            drop[-1, -1] = True
        x[drop] = 0.0
    return x.astype(dtype)


# ---------------------------------------------------------------------------------------------
# Building the Keras model; every recurrent call is remembered for its probe


def make_rnn(K, s, name, dtype, **extra):
    cls = {"lstm": K.layers.LSTM, "gru": K.layers.GRU, "gru_v1": K.layers.GRU, "simple_rnn": K.layers.SimpleRNN}[s["kind"]]
    kwargs = {k: s[k] for k in ("units", "activation", "use_bias", "go_backwards", "return_sequences")}
    if "recurrent_activation" in s:
        kwargs["recurrent_activation"] = s["recurrent_activation"]
    if s["kind"].startswith("gru"):
        kwargs["reset_after"] = s["kind"] == "gru"
    return cls(name=name, dtype=dtype, **kwargs, **extra)


class Builder:
    def __init__(self, K, dtype):
        self.K, self.dtype = K, dtype
        self.inputs, self.names, self.arrays = [], [], []
        self.probes = []  # dicts: name, layer, x, states, outs, mask_input, bidirectional

    def input(self, name, timesteps, features, array, masked):
        K = self.K
        t = K.Input(shape=(timesteps, features), name=name, dtype=self.dtype)
        self.inputs.append(t)
        self.names.append(name)
        self.arrays.append(array)
        index = len(self.inputs) - 1
        if masked:
            return K.layers.Masking(0.0, dtype=self.dtype)(t), index
        return t, None

    def rnn(self, layer, x, mask_input, initial_state=None, bidirectional=False):
        outs = layer(x, initial_state=initial_state) if initial_state is not None else layer(x)
        self.probes.append(dict(
            name=layer.name, layer=layer, x=x, states=list(initial_state or []), outs=as_list(outs),
            mask_input=mask_input, bidirectional=bidirectional,
        ))  # fmt: skip
        return outs


def build(K, spec, rng):
    dtype = spec["dtype"]
    b = Builder(K, dtype)
    family, batch = spec["family"], spec["batch"]
    if spec.get("sequential"):
        return build_sequential(K, spec, rng)
    if family in ("stack", "bidir"):
        T = spec["timesteps"]
        arr = random_input(rng, batch, T, spec["features"], spec["masked"], dtype)
        y, mask = b.input("x", None if spec["variable_time"] else T, spec["features"], arr, spec["masked"])
    if family == "stack":
        for i, s in enumerate(spec["layers"]):
            y = b.rnn(make_rnn(K, s, f"rnn{i}", dtype), y, mask)
        outputs = [y]
    elif family == "bidir":
        if spec["before"]:
            y = b.rnn(make_rnn(K, spec["before"], "before", dtype), y, mask)
        y = b.rnn(make_bidirectional(K, spec), y, mask, bidirectional=True)
        if spec["merge_mode"] is None:
            outputs = [K.layers.Concatenate(name="halves", dtype=dtype)(y)] if spec["concat_halves"] else list(y)
        elif spec["after"]:
            outputs = [b.rnn(make_rnn(K, spec["after"], "after", dtype), y, mask)]
        else:
            outputs = [y]
    else:
        enc_arr = random_input(rng, batch, spec["enc_timesteps"], spec["enc_features"], spec["enc_masked"], dtype)
        dec_arr = random_input(rng, batch, spec["dec_timesteps"], spec["dec_features"], spec["dec_masked"], dtype)
        e, e_mask = b.input("enc_in", spec["enc_timesteps"], spec["enc_features"], enc_arr, spec["enc_masked"])
        d, d_mask = b.input("dec_in", spec["dec_timesteps"], spec["dec_features"], dec_arr, spec["dec_masked"])
        enc_out, *states = b.rnn(make_rnn(K, spec["encoder"], "encoder", dtype, return_state=True), e, e_mask)
        y = b.rnn(make_rnn(K, spec["decoder"], "decoder", dtype), d, d_mask, initial_state=states)
        outputs = [y]
        if spec["extra_output"] == "h":
            outputs.append(states[0])
        elif spec["extra_output"] == "sequence":
            outputs.append(enc_out)
    if spec.get("dense"):
        outputs[0] = K.layers.Dense(spec["dense"], activation="tanh", name="head", dtype=dtype)(outputs[0])
    model = K.Model(b.inputs if len(b.inputs) > 1 else b.inputs[0], outputs if len(outputs) > 1 else outputs[0])
    randomize_weights(model, rng)
    return model, b


def make_bidirectional(K, spec):
    inner = make_rnn(K, spec["inner"], "inner", spec["dtype"])
    kwargs = {}
    if spec["inner"]["go_backwards"] and is_keras3(K):
        # Keras 3 derives the backward layer with go_backwards=True whatever the wrapped layer's
        # flag, and refuses two backwards layers: a go_backwards forward layer needs its partner given.
        kwargs["backward_layer"] = make_rnn(K, {**spec["inner"], "go_backwards": False}, "inner_back", spec["dtype"])
    return K.layers.Bidirectional(inner, merge_mode=spec["merge_mode"], name="bidir", dtype=spec["dtype"], **kwargs)


def build_sequential(K, spec, rng):
    """The same stacks as a Sequential model (whose saved graph differs from a Functional one)."""
    dtype, T = spec["dtype"], spec["timesteps"]
    arr = random_input(rng, spec["batch"], T, spec["features"], spec["masked"], dtype)
    layers = [K.layers.Masking(0.0, dtype=dtype)] if spec["masked"] else []
    recurrent = []
    if spec["family"] == "stack":
        recurrent += [(make_rnn(K, s, f"rnn{i}", dtype), False) for i, s in enumerate(spec["layers"])]
    else:
        if spec["before"]:
            recurrent.append((make_rnn(K, spec["before"], "before", dtype), False))
        recurrent.append((make_bidirectional(K, spec), True))
        if spec["after"]:
            recurrent.append((make_rnn(K, spec["after"], "after", dtype), False))
    layers += [layer for layer, _ in recurrent]
    if spec.get("dense"):
        layers.append(K.layers.Dense(spec["dense"], activation="tanh", name="head", dtype=dtype))
    model = K.Sequential([K.Input(shape=(None if spec["variable_time"] else T, spec["features"]), name="x", dtype=dtype), *layers])
    b = Builder(K, dtype)
    b.inputs, b.names, b.arrays = list(model.inputs), ["x"], [arr]
    for layer, bidirectional in recurrent:
        b.probes.append(dict(
            name=layer.name, layer=layer, x=first(layer.input), states=[], outs=as_list(layer.output),
            mask_input=0 if spec["masked"] else None, bidirectional=bidirectional,
        ))  # fmt: skip
    randomize_weights(model, rng)
    return model, b


def randomize_weights(model, rng):
    """Random weights, not initializer zeros or constants: normal * WEIGHT_SCALE, and for a matrix
    with more than two rows normal * WEIGHT_SCALE * sqrt(2 / rows).

    This keeps pre-activations of order one and stops the recurrence from growing values to where
    float32 rounding alone breaks atol 1e-5. With plain normal * 0.5, a GRU with tanh as recurrent
    activation and elu reached |h| ~ 24 and Keras's own float32 result was 4e-5 from the float64
    one. Over 150 random float32 cases at 0.4, Keras and lstmctl differed by 2e-6 at most."""
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            scale = [WEIGHT_SCALE * np.sqrt(2 / max(2, w.shape[0])) if w.ndim == 2 else WEIGHT_SCALE for w in weights]
            layer.set_weights([(rng.standard_normal(w.shape) * s).astype(w.dtype) for w, s in zip(weights, scale)])


# ---------------------------------------------------------------------------------------------
# Probes: what Keras computes for one recurrent layer


def clone_rnn(layer, tag, **overrides):
    config = dict(layer.get_config())
    config.update(overrides, name=f"{layer.name}_{tag}")
    clone = type(layer).from_config(config)
    clone.zero_output_for_mask = layer.zero_output_for_mask  # tf_keras leaves it out of get_config
    return clone


def clone_bidirectional(K, layer, tag, return_sequences, merge_mode):
    """A fresh Bidirectional around clones of both directions (Keras then applies its own rules,
    such as zero outputs for masked steps when it returns sequences)."""
    fwd = clone_rnn(layer.forward_layer, f"{tag}_f", return_sequences=return_sequences, return_state=True)
    bwd = clone_rnn(layer.backward_layer, f"{tag}_b", return_sequences=return_sequences, return_state=True)
    return K.layers.Bidirectional(fwd, backward_layer=bwd, merge_mode=merge_mode, name=f"{layer.name}_{tag}", dtype=layer.dtype)


def call_clone(clone, source, x, mask, states):
    kwargs = {}
    if mask is not None:
        kwargs["mask"] = tf.constant(mask)
    if states:
        kwargs["initial_state"] = [tf.constant(s) for s in states]
    clone(tf.constant(x), **kwargs)  # builds it
    clone.set_weights(source.get_weights())
    return [to_numpy(t) for t in as_list(clone(tf.constant(x), **kwargs))]


class ProbeError(AssertionError):
    pass


def self_check(case, what, got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape or not np.allclose(g, w, rtol=0, atol=SELF_CHECK_ATOL):
            err = np.max(np.abs(g - w)) if g.shape == w.shape else f"shapes {g.shape} vs {w.shape}"
            raise ProbeError(f"{case}: PROBE IS WRONG ({what}, item {i}: {err}); this is a test bug, not an lstmctl finding")


def keras_expectations(K, case, model, builder):
    """{contract key: array} computed by Keras, with the self-checks done."""
    arrays = builder.arrays
    feed = arrays if len(arrays) > 1 else arrays[0]
    want = {}
    outputs = [to_numpy(t) for t in as_list(model(feed))]
    if len(outputs) == 1:
        want["output"] = outputs[0]
    else:
        want.update({f"output_{i}": v for i, v in enumerate(outputs)})
    for p in builder.probes:
        layer, name = p["layer"], p["name"]
        mask_tensor = keras3_mask_argument(K, layer)
        tensors = [p["x"], *p["states"], *p["outs"], *([mask_tensor] if mask_tensor is not None else [])]
        sub = K.Model(builder.inputs, tensors)
        values = [to_numpy(t) for t in as_list(sub(feed))]
        x, states = values[0], values[1 : 1 + len(p["states"])]
        original = values[1 + len(p["states"]) : 1 + len(p["states"]) + len(p["outs"])]
        masking = None if p["mask_input"] is None else np.any(arrays[p["mask_input"]] != 0, axis=-1)
        if not is_keras3(K):
            mask = masking  # tf_keras hands the input's mask to the layer, initial_state or not
        elif mask_tensor is None:
            mask = None  # Keras 3 passed no mask (as for a call with initial_state tensors)
        else:
            mask = values[-1]
            if masking is None or not np.array_equal(mask, masking):
                raise ProbeError(f"{case}: PROBE IS WRONG: Keras 3 gives {name} the mask {mask.tolist()}, the probe expected {masking}")
        if p["bidirectional"]:
            rs, mode = layer.return_sequences, layer.merge_mode
            # 1. the same layer, rebuilt, reproduces its outputs inside the model
            same = call_clone(clone_bidirectional(K, layer, "same", rs, mode), layer, x, mask, states)
            self_check(case, f"{name}: clone as configured vs the model's layer", same, original)
            n_main = 2 if mode is None else 1
            # 2. the probe: the halves as Bidirectional(merge_mode=None) returns them, the states, the merged sequence
            halves = call_clone(clone_bidirectional(K, layer, "halves", True, None), layer, x, mask, states)
            self_check(case, f"{name}: probe states vs clone as configured", halves[2:], same[n_main:])
            if rs and mode is None:
                self_check(case, f"{name}: probe halves vs the model's layer", halves[:2], original[:2])
            want[f"{name}/forward/sequence"], want[f"{name}/backward/sequence"] = halves[:2]
            n = (len(halves) - 2) // 2
            for direction, part in (("forward", halves[2 : 2 + n]), ("backward", halves[2 + n :])):
                for key, value in zip(("h", "c"), part):
                    want[f"{name}/{direction}/{key}"] = value
            if mode is not None:
                merged = call_clone(clone_bidirectional(K, layer, "merged", True, mode), layer, x, mask, states)
                self_check(case, f"{name}: merged probe states vs clone as configured", merged[1:], same[1:])
                if rs:
                    self_check(case, f"{name}: merged probe vs the model's layer", merged[:1], original[:1])
                want[f"{name}/sequence"] = merged[0]
        else:
            same = call_clone(clone_rnn(layer, "same", return_state=True), layer, x, mask, states)
            self_check(case, f"{name}: clone as configured vs the model's layer", same[: len(original)], original)
            probe = call_clone(clone_rnn(layer, "probe", return_sequences=True, return_state=True), layer, x, mask, states)
            self_check(case, f"{name}: probe states vs clone as configured", probe[1:], same[1:])
            last = probe[0] if layer.return_sequences else probe[0][:, -1]
            self_check(case, f"{name}: probe sequence vs the model's layer", [last], same[:1])
            want[f"{name}/sequence"] = probe[0]
            for key, value in zip(("h", "c"), probe[1:]):
                want[f"{name}/{key}"] = value
    return want


# ---------------------------------------------------------------------------------------------
# Comparing


def compare(case, result, want, atol, absent=()):
    problems = []
    for key, value in want.items():
        if key not in result:
            problems.append(f"{key}: missing from lstmctl's result (has {sorted(result)})")
            continue
        got = result[key]
        try:
            assert got.shape == value.shape, f"shape {got.shape} != Keras {value.shape}"
            assert got.dtype == value.dtype, f"dtype {got.dtype} != Keras {value.dtype}"
            np.testing.assert_allclose(got, value, rtol=0, atol=atol, err_msg=f"{case}: {key}")
        except AssertionError as exc:
            detail = str(exc).strip().splitlines()
            err = float(np.max(np.abs(got.astype(np.float64) - value))) if got.shape == value.shape else None
            problems.append(f"{key}: max abs error {err}\n    " + "\n    ".join(detail[:12]))
    for key in absent:
        if key in result:
            problems.append(f"{key}: present, but Keras's layer has no such output")
    return problems


def describe(spec):
    return "\n".join(f"  {k}: {v}" for k, v in spec.items())


def lstmctl_inputs(spec, builder):
    names = builder.names
    style = spec["input_style"]
    if style == "dict" or len(names) > 1 and style == "array":
        return dict(zip(names, builder.arrays))
    if style == "list":
        return list(builder.arrays)
    return builder.arrays[0]


CASES = [pytest.param(f, i, id=f"{f}-{i:04d}") for f in FLAVOURS for i in range(N_CASES)]


@pytest.mark.parametrize("flavour, case", CASES)
def test_random_model_matches_keras(flavour, case, tmp_path):
    K = keras_module(flavour)
    spec, rng = case_spec(flavour, case)
    case_id = f"{flavour}-{case:04d}"
    path = tmp_path / f"model.{spec['format']}"
    with quiet_keras():
        model, builder = build(K, spec, rng)
        model.save(str(path))
        want = keras_expectations(K, case_id, model, builder)
    loaded = lstmctl.load(path)
    result = loaded.run(lstmctl_inputs(spec, builder))
    absent = [f"{p['name']}/sequence" for p in builder.probes if p["bidirectional"] and p["layer"].merge_mode is None]
    atol = 1e-10 if spec["dtype"] == "float64" else 1e-5
    problems = compare(case_id, result, want, atol, absent)
    if problems:
        pytest.fail(f"{case_id}: lstmctl disagrees with {FLAVOURS[flavour]} ({path.name})\n{describe(spec)}\n" + "\n".join(problems), pytrace=False)


# ---------------------------------------------------------------------------------------------
# Public vector 1, in both flavours


@pytest.mark.parametrize("flavour, fmt", [("k2", "h5"), ("k2", "keras"), ("k3", "keras"), ("k3", "h5")])
def test_public_vector_1(flavour, fmt, tmp_path):
    K = keras_module(flavour)
    path = tmp_path / f"vector1.{fmt}"
    with quiet_keras():
        const = K.initializers.Constant(0.1)
        inp = K.Input(shape=(3, 2), name="x")
        out = K.layers.LSTM(
            1, kernel_initializer=const, recurrent_initializer=const, bias_initializer="zeros",
            unit_forget_bias=True, recurrent_activation="hard_sigmoid", return_sequences=True, name="lstm",
        )(inp)  # fmt: skip
        model = K.Model(inp, out)
        model.save(str(path))
        keras_seq = to_numpy(model(VECTOR1_X))
        probe = call_clone(clone_rnn(model.get_layer("lstm"), "probe", return_state=True), model.get_layer("lstm"), VECTOR1_X, None, [])
    np.testing.assert_allclose(probe[0], keras_seq, rtol=0, atol=SELF_CHECK_ATOL, err_msg="probe is wrong")
    if flavour == "k2":
        np.testing.assert_allclose(keras_seq[0, :, 0], VECTOR1_K2_SEQUENCE, atol=1e-7)
        np.testing.assert_allclose(probe[2][0, 0], VECTOR1_K2_C, atol=1e-7)
    else:  # Keras 3's hard_sigmoid is x/6 + 0.5: the same model gives other numbers
        assert np.max(np.abs(keras_seq[0, :, 0] - VECTOR1_K2_SEQUENCE)) > 1e-4
    result = lstmctl.load(path).run(VECTOR1_X)
    for key, value in (("output", keras_seq), ("lstm/sequence", keras_seq), ("lstm/h", probe[1]), ("lstm/c", probe[2])):
        np.testing.assert_allclose(result[key], value, rtol=0, atol=1e-7, err_msg=f"{flavour} {fmt}: {key}")


# ---------------------------------------------------------------------------------------------
# State carried across calls: Keras's stateful=True model, predict called once per piece

N_STATE_CASES = int(os.environ.get("LSTMCTL_LIVE_STATE_CASES", "12"))
STATE_CASES = [(flavour, case) for case in range(N_STATE_CASES) for flavour in FLAVOURS]


def stateful_model(K, rng, batch, features):
    """A random stateful model: one or two recurrent layers (some Bidirectional, some over a
    masked input), random activations, then a Dense head on the sequence."""
    x = K.Input(batch_shape=(batch, None, features))
    y = K.layers.Masking(0.0)(x) if rng.random() < 0.3 else x
    for k in range(int(rng.integers(1, 3))):
        s = rnn_spec(rng, return_sequences=True)
        if rng.random() < 0.3:  # Keras makes the backward half itself: the wrapped layer runs forward
            layer = make_rnn(K, dict(s, go_backwards=False), f"rnn_{k}", "float32", stateful=True)
            y = K.layers.Bidirectional(layer, merge_mode=str(rng.choice(["concat", "sum"])))(y)
        else:
            y = make_rnn(K, s, f"rnn_{k}", "float32", stateful=True)(y)
    return K.Model(x, K.layers.Dense(2)(y))


@pytest.mark.parametrize("flavour, case", STATE_CASES)
def test_stateful_pieces_match_keras(flavour, case, tmp_path):
    """Keras's stateful model fed three pieces (predict called once each) against lstmctl's run
    with the state carried: every piece's output."""
    K = keras_module(flavour)
    rng = np.random.default_rng([int(flavour[1]), case, 7])
    batch, features, steps = 2, int(rng.integers(2, 5)), 9
    with quiet_keras():
        K.backend.clear_session()
        model = stateful_model(K, rng, batch, features)
        randomize_weights(model, rng)
        x = rng.standard_normal((batch, steps, features)).astype(np.float32)
        x[1, 2:4] = 0.0  # masked steps where there is a Masking layer, plain zeros otherwise
        path = tmp_path / ("model.keras" if flavour == "k3" else "model.h5")
        model.save(str(path))
        cuts = sorted(rng.choice(np.arange(1, steps), 2, replace=False))
        pieces = [(0, cuts[0]), (cuts[0], cuts[1]), (cuts[1], steps)]
        want = [to_numpy(model.predict(x[:, a:b], batch_size=batch, verbose=0)) for a, b in pieces]
    ours = lstmctl.load(path)
    state = {}
    for (a, b), expected in zip(pieces, want):
        result = ours.run(x[:, a:b], state=state)
        np.testing.assert_allclose(result["output"], expected, rtol=0, atol=1e-5, err_msg=f"{flavour}-{case} piece {a}:{b} {model.to_json()}")
        state = result.state


# ---------------------------------------------------------------------------------------------
# The fast path's product layouts (lstmctl/fastpath.py), each against Keras: a batch of one with
# its input projection inside each step's product (a small cell) or beside it (a larger one), and
# a recurrent product cut into row blocks (threads.unpacked_macs; forced here, so that it runs
# whatever BLAS this machine has) on one thread, in batch slices and whole.


@pytest.mark.parametrize("batch, units, features", [(1, 16, 8), (1, 128, 64), (24, 192, 48)])
def test_fast_path_layouts_match_keras(batch, units, features, tmp_path, monkeypatch):
    from lstmctl import fastpath, threads

    K = keras_module("k3")
    rng = np.random.default_rng(units)
    with quiet_keras():
        inp = K.Input((13, features))
        model = K.Model(inp, K.layers.LSTM(units, return_sequences=True, name="lstm")(inp))
        kernel, recurrent, bias = (w.shape for w in model.get_layer("lstm").get_weights())
        model.get_layer("lstm").set_weights([(rng.standard_normal(kernel) / np.sqrt(features)).astype(np.float32),
                                             (rng.standard_normal(recurrent) / np.sqrt(units)).astype(np.float32),
                                             (0.3 * rng.standard_normal(bias)).astype(np.float32)])  # fmt: skip
        model.save(str(tmp_path / "m.keras"))
        x = rng.standard_normal((batch, 13, features)).astype(np.float32)
        want = to_numpy(model(x))
    loaded = lstmctl.load(tmp_path / "m.keras")
    cell = loaded.layer("lstm").cell
    fused = (fastpath._lstm_vector_product(cell).shape[1] > units) if batch == 1 else None
    assert fused is (None if batch > 1 else units == 16)  # the small cell takes its inputs into the product
    monkeypatch.setattr(threads, "unpacked_macs", lambda: threads.UNPACKED_MACS)
    for n in (1, 2, None):  # one thread; two (slices or BLAS threads, by the plan); the policy
        with threads.use(n) if n else nullcontext():
            got = loaded.run(x)["output"]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"threads {n}")
