"""Verification tier for ONNX graphs as exporters write them: torch.onnx.export's TorchScript exporter
without constant folding (the torch <= 1.3 form: W, R, B computed by the graph, zero states built
from Shape), written now for several modules and opsets, and the committed tf2onnx and
keras2onnx-style fixtures on fresh inputs; lstmctl runs each whole graph against onnxruntime,
float32 atol 1e-5.

Runs where torch, onnx and onnxruntime are installed (the verify extra), skipped elsewhere:
    .venv-verify/bin/python -m pytest -q tests/test_onnx_graphs_verify.py
"""

import warnings

import numpy as np
import pytest

import lstmctl
from test_ports import PORTS
from test_ports_verify import ort, torch  # skipped, as that tier is, where torch, onnx or onnxruntime is missing

MODULES = [
    ("LSTM", {"num_layers": 2}, 9),
    ("LSTM", {"bidirectional": True}, 11),
    ("GRU", {}, 13),
    ("GRU", {"num_layers": 2, "bidirectional": True}, 9),
    ("RNN", {"nonlinearity": "relu"}, 11),
    ("RNN", {"num_layers": 3}, 14),
]


def _session_outputs(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


@pytest.mark.parametrize("cls, kwargs, opset", MODULES, ids=[f"{c}-{o}-{i}" for i, (c, _, o) in enumerate(MODULES)])
def test_unfolded_torchscript_exports_run_whole_like_onnxruntime(tmp_path, cls, kwargs, opset):
    r = np.random.default_rng(opset + len(kwargs))
    module = getattr(torch.nn, cls)(3, 4, **kwargs).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.from_numpy(r.normal(0, 0.5, tuple(p.shape)).astype(np.float32)))
    x = r.standard_normal((6, 2, 3)).astype(np.float32)
    path = tmp_path / "m.onnx"
    outputs = ["y", "h", "c"] if cls == "LSTM" else ["y", "h"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(x),), path, dynamo=False, do_constant_folding=False, opset_version=opset, input_names=["input"], output_names=outputs)
    want = _session_outputs(path, {"input": x})
    m = lstmctl.load(path)
    assert [s.name for s in m.inputs] == ["input"]
    result = m.run({"input": x})
    for key in outputs:
        np.testing.assert_allclose(result[key], want[key], rtol=0, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("name", ["lstm2_tf2onnx.onnx", "lstm2_keras2onnx_style.onnx", "gru2_bidir_torch13_folded.onnx"])
def test_committed_exporter_graphs_on_fresh_inputs(name):
    m = lstmctl.load(PORTS / name)
    (spec,) = m.inputs
    shape = [spec.batch or 4, *spec.shape]
    x = np.random.default_rng(11).standard_normal(shape).astype(np.float32)
    want = _session_outputs(PORTS / name, {spec.name: x})
    result = m.run(x)
    for key, value in want.items():
        np.testing.assert_allclose(result[key], value, rtol=0, atol=1e-5, err_msg=key)
