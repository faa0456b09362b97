"""lstmctl against what Keras computed for the layer fixtures in sample_models/layers (atol 1e-5):
every model output, every layer's output, every recurrent layer's sequence and states (and each
cell's of a stack), and the gate matrices against Keras's get_weights()."""

import json

import numpy as np
import pytest

import lstmctl
from conftest import SAMPLES

# Every fixture folder below sample_models with a manifest (sample_models/layers and any family's own).
MANIFEST = [dict(m, file=f"{d.parent.name}/{m['file']}") for d in sorted(SAMPLES.glob("*/manifest.json")) for m in json.loads(d.read_text())]
FULL = [m["file"] for m in MANIFEST if m["format"] != "hdf5-weights" and not m["file"].endswith(".weights.h5") and not m.get("weights_only")]
WEIGHTS_ONLY = [m["file"] for m in MANIFEST if m["file"] not in FULL]
ATOL = 1e-5


def _expected(name):
    with np.load(SAMPLES / f"{name}.expected.npz") as data:
        return dict(data)


def _inputs(exp):
    return {k.split("/", 1)[1]: v for k, v in exp.items() if k.startswith("input/")}


def _close(got, want, key):
    assert got.shape == want.shape, f"{key}: shape {got.shape}, Keras {want.shape}"
    if want.dtype == bool:
        np.testing.assert_array_equal(got, want, err_msg=key)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL, err_msg=key)


@pytest.mark.parametrize("name", FULL)
def test_every_value_matches_keras(name):
    exp = _expected(name)
    model = lstmctl.load(SAMPLES / name)
    result = model.run(_inputs(exp), layer_outputs=True)
    keys = [k for k in exp if not k.startswith(("input/", "weights/")) and not k.endswith("/input") and "/initial_state/" not in k]
    assert any(k.startswith("output") for k in keys)
    for key in keys:
        if key.startswith("layer/") and key.split("/")[1] not in {layer.name for layer in model.walk()}:
            continue  # Keras 3 also records the masks it computes, under names of ops nodes kept apart
        assert key in result, f"{key} missing; lstmctl has {sorted(result)}"
        _close(np.asarray(result[key]), exp[key], key)


def _keras_weights(exp, layer):
    prefix = f"weights/{layer}/"
    return [v for _, v in sorted((int(k[len(prefix):]), v) for k, v in exp.items() if k.startswith(prefix))]


def _split(kind_gates, W, U, b):
    """Keras's fused arrays split the way Keras slices them: columns k·units … (k+1)·units of the last axis."""
    k = len(kind_gates)
    out = {}
    for j, g in enumerate(kind_gates):
        u = W.shape[-1] // k
        out[f"W_{g}"] = W[..., j * u : (j + 1) * u]
        out[f"U_{g}"] = U[..., j * u : (j + 1) * u]
        if b is not None:
            bb = b if b.ndim == 1 else b[0]
            out[f"b_{g}"] = bb[j * u : (j + 1) * u]
            if b.ndim == 2:
                out[f"rb_{g}"] = b[1][j * u : (j + 1) * u]
    return out


@pytest.mark.parametrize("name", [*FULL, *WEIGHTS_ONLY])
def test_gates_are_keras_weights_split(name):
    exp = _expected(name)
    model = lstmctl.load(SAMPLES / name)
    gates = model.gates()
    assert gates
    for key, value in gates.items():
        assert np.all(np.isfinite(value)), key
    for layer in model.recurrent_layers():
        if model.inferred:
            continue
        weights = _keras_weights(exp, layer.name)
        if not weights:
            continue
        halves = [layer.forward, layer.backward] if layer.forward is not None else [layer]
        per_half = len(weights) // len(halves)
        for h, half in enumerate(halves):
            arrays = weights[h * per_half : (h + 1) * per_half]
            subs = half.cells or [half]
            pos = 0
            for sub in subs:
                cell = sub.cell
                n = 3 if cell.bias is not None else 2
                W, U, *b = arrays[pos : pos + n]
                pos += n
                names = {"lstm": "ifco", "gru": "zrh"}.get(cell.kind)
                want = _split(names, W, U, b[0] if b else None) if names else {"W": W, "U": U, **({"b": b[0]} if b else {})}
                for part, value in want.items():
                    np.testing.assert_array_equal(gates[f"{sub.name}/{part}"], value, err_msg=f"{sub.name}/{part}")
