"""The real-world tier for ONNX: the six ONNX graphs of ../shared/zoo5 (exported by torch 0.3 and 1.3,
keras2onnx, tf2onnx, and burn's hand-built tests), each opened by inspect and run WHOLE by lstmctl,
against what onnxruntime computes for the same inputs at test time (onnx's reference evaluator
where onnxruntime has no kernel for the file's old opset), float32 atol 1e-5. Every graph output is
compared under its own name.

The zoo5 files are other people's and are not in the repository: the tier skips where
../shared/zoo5 or onnx / onnxruntime is missing. CI runs it in the verify tier:
    .venv-verify/bin/python -m pytest -q tests/test_zoo5_onnx.py
"""

import numpy as np
import pytest

import lstmctl
from conftest import ROOT
from test_hostile import cli

ZOO = ROOT.parent / "shared" / "zoo5"
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytestmark = pytest.mark.skipif(not ZOO.is_dir(), reason=f"{ZOO} does not exist (the zoo5 files are not in the repository)")

FILES = ["burn_gru_bidir/gru_bidirectional.onnx", "burn_gru_initial_h/gru_with_initial_state.onnx", "coli_lstm_pt03/lstm.onnx",
         "knet_rnn_tanh/rnn.onnx", "lishengxie_keras2onnx_lstm/mnist_lstm.onnx", "mcklrrn_tf2onnx_lstm/lstm_model.onnx"]  # fmt: skip
BATCH = 3  # for a batch dimension the file leaves symbolic


def framework(path, feeds: dict) -> dict:
    """The graph's outputs by name, as onnxruntime computes them (or onnx's reference evaluator,
    for an opset onnxruntime no longer runs)."""
    proto = onnx.load(str(path))
    names = [o.name for o in proto.graph.output]
    try:
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # e.g. torch 0.3's opset 6: onnxruntime's kernels start at opset 7
        from onnx.reference import ReferenceEvaluator

        return dict(zip(names, ReferenceEvaluator(proto).run(None, feeds)))
    return dict(zip(names, session.run(names, feeds)))


def graph_feeds(path, seed=0) -> dict:
    """Random inputs for the graph's inputs (initializers listed as inputs left out), by name."""
    proto = onnx.load(str(path))
    stored = {t.name for t in proto.graph.initializer}
    r = np.random.default_rng(seed)
    feeds = {}
    for value in proto.graph.input:
        if value.name not in stored:
            shape = [d.dim_value if d.HasField("dim_value") else BATCH for d in value.type.tensor_type.shape.dim]
            feeds[value.name] = r.standard_normal(shape).astype(np.float32)
    return feeds


@pytest.mark.parametrize("name", FILES)
def test_zoo5_onnx_file_opens_with_inspect(name):
    result = cli("inspect", ZOO / name)
    assert result.exit_code == 0, result.stderr
    assert "is not one lstmctl computes" not in result.stdout


@pytest.mark.parametrize("name", FILES)
def test_zoo5_onnx_graph_runs_whole_as_onnxruntime_computes(name):
    path = ZOO / name
    feeds = graph_feeds(path)
    want = framework(path, feeds)
    m = lstmctl.load(path)
    layers = {layer.name for layer in m.layers}
    # lstmctl takes a time-major graph input read only by recurrent nodes batch-major, as every input
    given = {k: (v.transpose(1, 0, 2) if f"{k}.time_major" in layers else v) for k, v in feeds.items()}
    assert sorted(given) == sorted(s.name for s in m.inputs)  # the graph's own input names
    result = m.run(given)
    assert want
    for key, value in want.items():
        assert result[key].shape == value.shape, key
        np.testing.assert_allclose(result[key], value, rtol=0, atol=1e-5, err_msg=key)


def _inferred_shapes(path) -> dict:
    """lstmctl layer name -> the shapes ONNX shape inference gives the node's outputs (ints, the
    graph inputs' dim_param names, None where inference names a size of its own or gives none)."""
    import re

    proto = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = proto.graph
    named = {d.dim_param for v in graph.input for d in v.type.tensor_type.shape.dim if d.dim_param}
    known = {v.name: v.type.tensor_type for v in [*graph.value_info, *graph.output]}
    out = {}
    for k, n in enumerate(graph.node):
        shapes = []
        for o in n.output:
            t = known.get(o)
            if t is None or not t.HasField("shape"):
                shapes.append(None)
            else:
                shapes.append([d.dim_value if d.HasField("dim_value") else (d.dim_param if d.dim_param in named else "?") for d in t.shape.dim])
        out[re.sub(r"[/@]+", ".", n.name).strip(".") or f"{n.op_type}_{k}"] = shapes
    return out


@pytest.mark.parametrize("name", FILES)
def test_zoo5_onnx_inspect_shapes_are_onnx_shape_inferences(name):
    """inspect's output shapes of each node are the ones onnx.shape_inference gives (the issue: Y shown as (None, 1, 1, 8))."""
    import json

    want = _inferred_shapes(ZOO / name)
    result = cli("inspect", ZOO / name, "--format", "json")
    compared = 0
    for layer in json.loads(result.stdout)["layers"]:
        for got, expected in zip(layer["output_shapes"] or [], want.get(layer["name"]) or []):
            if expected is not None:
                assert len(got) == len(expected), (layer["name"], got, expected)
                for g, e in zip(got, expected):
                    assert e == "?" or g == e, (layer["name"], got, expected)
                compared += 1
    assert compared >= 2
