import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text())


def sample(name: str) -> str:
    return str(SAMPLES / name)


def expected(name: str) -> dict:
    """What Keras itself computed for a sample (see sample_models/README.md)."""
    with np.load(SAMPLES / f"{name}.expected.npz") as data:
        return dict(data)


def keras_inputs(exp: dict) -> dict:
    return {k.split("/", 1)[1]: v for k, v in exp.items() if k.startswith("input/")}


def keras_results(exp: dict) -> dict:
    """The expected model outputs and per-layer sequence/state arrays (not weights, not inputs)."""
    return {k: v for k, v in exp.items() if not k.startswith(("weights/", "input/")) and not k.endswith("/input")}


def keras_weights(exp: dict, layer: str) -> list:
    prefix = f"weights/{layer}/"
    items = sorted(((int(k[len(prefix):]), v) for k, v in exp.items() if k.startswith(prefix)))
    return [v for _, v in items]


@pytest.fixture(autouse=True)
def _numpy_raises():
    """Any overflow / invalid-value warning from a kernel fails the test."""
    with np.errstate(all="raise"):
        yield


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch):
    monkeypatch.delenv("LSTMCTL_MODEL", raising=False)
    monkeypatch.delenv("LSTMCTL_DEBUG", raising=False)
