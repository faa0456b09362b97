"""The real-world tier for TensorFlow Lite: the twelve .tflite files of ../shared/zoo7 (other
people's models: fused LSTM ops, WHILE loops from Keras layers, dynamic-range and full-integer
quantization, SVDF, Flex ops), each opened by inspect; each that LiteRT's builtin operators can run
is run whole by lstmctl against the LiteRT interpreter (ai-edge-litert) at test time, float to
1e-5 and dynamic-range quantized to 1e-4; the others are refused in one line that says why.

The zoo7 files are not in the repository: the tier skips where ../shared/zoo7 or ai_edge_litert is
missing. CI runs it in the live tier (.venv-live has ai-edge-litert):
    .venv-live/bin/python -m pytest -q tests/test_zoo7.py
"""

import numpy as np
import pytest

import lstmctl
from conftest import ROOT
from test_hostile import cli

ZOO = ROOT.parent / "shared" / "zoo7"
litert = pytest.importorskip("ai_edge_litert.interpreter")
pytestmark = pytest.mark.skipif(not ZOO.is_dir(), reason=f"{ZOO} does not exist (the zoo7 files are not in the repository)")

# file -> (recurrent layers lstmctl finds, atol of the run against LiteRT)
RUNS = {
    "driveprofiler_kimidoge/lstm_model.tflite": (["LSTM"], 1e-5),
    "fused_lstm_phuoctan/model_LSTM_Metadata.tflite": (["LSTM"], 1e-5),
    "har_lstm_529669517/lstm.tflite": (["LSTM"], 1e-5),
    "health_app_boradj/lstm.tflite": (["LSTM"], 1e-5),
    "moody_chanho6e1/lstm_model.tflite": (["LSTM"], 1e-5),
    "pdiot_har_niveda/task2-activities.tflite": (["LSTM", "LSTM"], 1e-5),
    "tesi_kjossul_gru/gru.tflite": (["GRU"], 1e-5),
    "tesi_kjossul_lstm/lstm.h5.tflite": (["LSTM"], 1e-4),  # int8 weights in its WHILE body
}
# file -> what the one-line refusal of run says
REFUSED = {
    "lstm_docker_pitdagosti/lstm.tflite": "FlexTensorListReserve is a Flex (TensorFlow) operator",
    "fall_detection_w90m/rnn_model.tflite": "FlexTensorListReserve is a Flex (TensorFlow) operator",
    "tflite_micro_dtln/dtln_noise_suppression.tflite": "a full-integer quantized model (int8/int16 activations)",
    "tflite_micro_keyword/keyword_scrambled.tflite": "a full-integer quantized model (int8/int16 activations)",
}


def test_every_file_is_listed():
    assert sorted(str(p.relative_to(ZOO)) for p in ZOO.glob("*/*.tflite")) == sorted([*RUNS, *REFUSED])


def _inputs(path):
    interpreter = litert.Interpreter(model_path=str(path), experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    rng = np.random.default_rng(7)
    feeds = {}
    for d in interpreter.get_input_details():
        shape = tuple(int(s) for s in d["shape"])
        feeds[d["name"]] = rng.standard_normal(shape).astype(d["dtype"]) if np.dtype(d["dtype"]).kind == "f" else rng.integers(0, 5, shape).astype(d["dtype"])
    return interpreter, feeds


def framework(path, feeds) -> dict:
    """LiteRT's outputs by tensor name, from its builtin kernels."""
    interpreter, _ = _inputs(path)
    interpreter.allocate_tensors()
    for d in interpreter.get_input_details():
        interpreter.set_tensor(d["index"], feeds[d["name"]])
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


@pytest.mark.parametrize("name", sorted([*RUNS, *REFUSED]))
def test_inspect_opens(name):
    res = cli("inspect", ZOO / name)
    assert res.exit_code == 0, res.output
    assert "TensorFlow Lite" in res.stdout


@pytest.mark.parametrize("name", sorted(RUNS))
def test_run_equals_litert(name):
    path = ZOO / name
    kinds, atol = RUNS[name]
    model = lstmctl.load(str(path))
    assert [layer.class_name for layer in model.recurrent_layers()] == kinds
    _, feeds = _inputs(path)
    want = framework(path, feeds)
    got = model.run(feeds)
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=0, atol=atol, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_in_one_line(name):
    res = cli("run", ZOO / name)
    assert res.exit_code == 3
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and REFUSED[name] in lines[0], res.stderr
