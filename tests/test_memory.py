"""A model whose layers would allocate more than the process may use ends with one clear line
naming the layer (exit 3), never "unexpected MemoryError"."""

import io
import json
import resource
import subprocess
import sys
import zipfile

import h5py

from conftest import ROOT


def _keras_zip(path, layers, inputs, outputs):
    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        f.create_group("layers")
        f.create_group("vars")
    config = {"class_name": "Functional", "config": {"name": "m", "layers": layers, "input_layers": inputs, "output_layers": outputs}}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("model.weights.h5", weights.getvalue())


def _tensor(name):
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 4096], "dtype": "float32", "keras_history": [name, 0, 0]}}


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_a_layer_that_would_need_16_gib_is_refused_by_name(tmp_path):
    path = tmp_path / "repeat.keras"
    layers = [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 4096], "dtype": "float32"}, "name": "x", "inbound_nodes": []},
        {"module": "keras.layers", "class_name": "RepeatVector", "config": {"name": "repeat", "n": 1 << 20, "trainable": True}, "name": "repeat", "inbound_nodes": [{"args": [_tensor("x")], "kwargs": {}}]},
    ]
    _keras_zip(path, layers, [["x", 0, 0]], [["repeat", 0, 0]])
    proc = subprocess.run([sys.executable, "-m", "lstmctl", "run", str(path), "--format", "npz", "-o", str(tmp_path / "o.npz")],
                          cwd=ROOT, capture_output=True, text=True, preexec_fn=_limit, timeout=120)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"lstmctl: error: {path}: layer 'repeat' (RepeatVector) needs more memory than this process may use"
    assert not (tmp_path / "o.npz").exists()
