"""Activation functions against closed-form values (computed here, not by lstmctl)."""

import math
import subprocess
import sys

import numpy as np
import pytest

from lstmctl import kernels
from lstmctl.errors import LstmctlError


def test_sigmoid_is_stable_for_large_negative_inputs():
    x = np.array([-1000.0, -89.0, -20.0, 0.0, 20.0, 1000.0], dtype=np.float32)
    y = kernels.sigmoid(x)  # the autouse fixture turns any overflow warning into an error
    expected = [0.0, 0.0, 1 / (1 + math.exp(20)), 0.5, 1 / (1 + math.exp(-20)), 1.0]
    np.testing.assert_allclose(y, expected, atol=1e-7)
    assert y.dtype == np.float32


@pytest.mark.parametrize(
    "major, x, y",
    [(2, 1.0, 0.7), (2, -2.5, 0.0), (2, 2.0, 0.9), (3, 1.0, 0.5 + 1 / 6), (3, -3.0, 0.0), (3, 2.0, 0.5 + 2 / 6), (1, 2.0, 0.9)],
)
def test_hard_sigmoid_form_follows_saving_keras_version(major, x, y):
    assert kernels.activation("hard_sigmoid", major)(np.float64(x)) == pytest.approx(y)


@pytest.mark.parametrize(
    "name, x, y",
    [
        ("relu", -1.5, 0.0),
        ("linear", -1.5, -1.5),
        ("elu", -1.0, math.exp(-1) - 1),
        ("selu", -1.0, 1.0507009873554805 * 1.6732632423543772 * (math.exp(-1) - 1)),
        ("softsign", 3.0, 0.75),
        ("softplus", 2.0, math.log1p(math.exp(2.0))),
        ("softplus", -800.0, 0.0),
        ("exponential", 1.0, math.e),
        ("swish", 1.0, 1 / (1 + math.exp(-1))),
        ("gelu", 1.0, 0.5 * (1 + math.erf(1 / math.sqrt(2)))),
        ("relu6", 7.0, 6.0),
        ("mish", 1.0, math.tanh(math.log1p(math.e))),
        ("tanh", 0.5, math.tanh(0.5)),
    ],
)
def test_activations(name, x, y):
    assert float(kernels.activation(name, 3)(np.array([x]))[0]) == pytest.approx(y, abs=1e-12)


def test_unknown_activation_is_refused():
    with pytest.raises(LstmctlError, match="not supported"):
        kernels.activation("my_custom_act", 3)
    with pytest.raises(LstmctlError, match="not a built-in"):
        kernels.activation({"class_name": "Custom"}, 3)


def test_python_dash_m_runs():
    out = subprocess.run([sys.executable, "-m", "lstmctl", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "lstmctl, version 0.1.0"
