"""Normalization, attention, activation, merge, reshaping and Rescaling layers: bad and hostile
configs and weights refused with an LstmctlError naming the layer (at load where the config alone
decides, at run where the input does), never another exception or an unbounded allocation; and
what the fixtures cannot show, checked against values Keras computed for them. Every fixture value
is compared by tests/test_layers.py."""

import io
import json
import re
import shutil
import zipfile

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from lstmctl.cli import main
from lstmctl.errors import LstmctlError
from conftest import expected, keras_inputs, sample

NORMS = "layers/k3_norms.keras"
ATTENTION = "layers/k3_attention.keras"
MHA = "layers/k3_mha.keras"
LUONG = "layers/k3_luong.keras"
SHAPES = "layers/k3_merges_shapes.keras"
ACTIVATIONS = "layers/k3_activations.keras"


def _edit_keras(src, dst, config_edit=None, weights_edit=None):
    """A copy of a .keras file with its config.json and/or model.weights.h5 changed in place."""
    with zipfile.ZipFile(sample(src)) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json" and config_edit:
                config = json.loads(data)
                config_edit(config)
                data = json.dumps(config).encode()
            if item.filename == "model.weights.h5" and weights_edit:
                buffer = io.BytesIO(data)
                with h5py.File(buffer, "r+") as f:
                    weights_edit(f)
                data = buffer.getvalue()
            zout.writestr(item, data)
    return dst


def _set(layer, **changes):
    """A config edit: keys of one layer's config set (None deletes the key)."""

    def edit(config):
        entry = next(e for e in config["config"]["layers"] if e["config"].get("name") == layer)
        for key, value in changes.items():
            if value is None:
                entry["config"].pop(key, None)
            else:
                entry["config"][key] = value

    return edit


def _refused(path, layer, message):
    with pytest.raises(LstmctlError) as err:
        lstmctl.load(path)
    assert f"layer '{layer}'" in str(err.value) and message in str(err.value), str(err.value)
    assert str(path) in str(err.value)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 3 and "Traceback" not in result.output and layer in result.output, result.output


HUGE = 10**30

CONFIG_ERRORS = [
    (NORMS, "bn_last", {"axis": "x"}, "axis 'x' is not an axis"),
    (NORMS, "bn_last", {"axis": [1, 2]}, "takes one axis"),
    (NORMS, "bn_last", {"center": False}, "should hold 3 weight arrays"),
    (NORMS, "bn_last", {"scale": "yes"}, "'scale' must be true or false"),
    (NORMS, "bn_last", {"epsilon": "small"}, "epsilon 'small' is not a number"),
    (NORMS, "bn_last", {"mode": 2}, "batch statistics"),
    (NORMS, "bn_last", {"virtual_batch_size": 4}, "virtual_batch_size"),
    (NORMS, "ln", {"axis": [1, 2]}, "do not fit axis [1, 2]"),
    (NORMS, "ln", {"axis": HUGE}, "is not an axis"),
    (NORMS, "ln", {"axis": [-1] * 100}, "is not an axis or a list of axes"),
    (NORMS, "ln", {"rms_scaling": True}, "should hold 1 weight arrays"),
    (ATTENTION, "att_dot_scaled", {"use_scale": False}, "should hold 0 weight arrays"),
    (ATTENTION, "att_concat", {"score_mode": "general"}, "score_mode 'general'"),
    (ATTENTION, "additive", {"use_scale": 1}, "'use_scale' must be true or false"),
    (MHA, "mha_self", {"num_heads": HUGE}, "num_heads"),
    (MHA, "mha_self", {"num_heads": "2"}, "num_heads must be a positive integer"),
    (MHA, "mha_self", {"num_heads": 3}, "do not fit num_heads=3"),
    (MHA, "mha_self", {"key_dim": -3}, "key_dim must be a positive integer"),
    (MHA, "mha_self", {"value_dim": 4}, "value weights"),
    (MHA, "mha_self", {"output_shape": [7]}, "output weights"),
    (MHA, "mha_self", {"output_shape": [HUGE]}, "output_shape"),
    (MHA, "mha_self", {"use_bias": False}, "should hold 4 weight arrays"),
    (MHA, "mha_self", {"use_gate": True}, "should hold 10 weight arrays (query, key, gate, value, output"),
    (MHA, "mha_self", {"sliding_window": 0}, "sliding_window must be a positive integer"),
    (LUONG, "scores", {"axes": [2, 2, 2]}, "not an axis or a pair of axes"),
    (LUONG, "scores", {"axes": "x"}, "axes 'x' is not an axis"),
    (SHAPES, "permute", {"dims": [1, 1]}, "not a permutation"),
    (SHAPES, "permute", {"dims": [HUGE, 1]}, "not a permutation"),
    (SHAPES, "crop", {"cropping": [-1, 2]}, "non-negative integer pairs"),
    (SHAPES, "crop", {"cropping": [1, 2, 3]}, "non-negative integer pairs"),
    (SHAPES, "pad", {"padding": None}, "padding None"),
    (SHAPES, "upsample", {"size": 0}, "size 0"),
    (ACTIVATIONS, "leaky", {"negative_slope": "steep"}, "negative_slope 'steep' is not a number"),
    (ACTIVATIONS, "relu_options", {"max_value": -1}, "max_value -1.0 is below 0"),
    (ACTIVATIONS, "relu_options", {"threshold": [1]}, "threshold [1] is not a number"),
    (ACTIVATIONS, "elu", {"alpha": [0.7]}, "alpha [0.7] is not a number"),
    (ACTIVATIONS, "softmax", {"axis": [0.5]}, "is not an axis"),
    (ACTIVATIONS, "prelu_shared", {"shared_axes": [0]}, "after the batch axis"),
    (ACTIVATIONS, "prelu_shared", {"shared_axes": [2]}, "not 1 along shared_axes [2]"),
    (ACTIVATIONS, "rescaling", {"scale": "half"}, "scale 'half' is not a number"),
    (ACTIVATIONS, "rescaling", {"scale": [[1, 2], [3]]}, "is not a number or an array"),
    (ACTIVATIONS, "rescaling", {"offset": {"class_name": "__numpy__", "config": {"value": "x"}}}, "offset"),
    (ACTIVATIONS, "rescaling", {"scale": [0.5] * (1 << 21)}, "scale"),
]


@pytest.mark.parametrize("src, layer, changes, message", CONFIG_ERRORS)
def test_config_errors_name_file_and_layer(tmp_path, src, layer, changes, message):
    _refused(_edit_keras(src, tmp_path / "bad.keras", _set(layer, **changes)), layer, message)


RUN_ERRORS = [
    (NORMS, "ln", {"axis": 5}, "does not fit its rank-3 input"),
    (NORMS, "unitnorm", {"axis": [1, -2]}, "names an axis twice"),
    (MHA, "mha_self", {"attention_axes": [2]}, "attention_axes [2] do not fit"),
    (LUONG, "scores", {"axes": [0, 0]}, "does not fit inputs"),
    (SHAPES, "permute", {"dims": [2, 3, 1]}, "expects a rank-4 input"),
    (SHAPES, "crop", {"cropping": [3, 3]}, "leaves nothing"),
    ("extra_layers/k3_reshaping_more.keras", "pad3d", {"padding": 1 << 20}, "over lstmctl's cap"),
    ("extra_layers/k3_reshaping_more.keras", "up2d", {"size": [1 << 20, 1 << 20]}, "over lstmctl's cap"),
    (NORMS, "bn_last", {"axis": 1}, "moving_mean has shape (5,), its input needs (6,)"),
    (ACTIVATIONS, "softmax_time", {"axis": 3}, "does not fit its rank-3 input"),
    (ACTIVATIONS, "rescaling", {"scale": [1.0, 2.0]}, "do not fit its input"),
]


@pytest.mark.parametrize("src, layer, changes, message", RUN_ERRORS)
def test_input_dependent_errors_at_run(tmp_path, src, layer, changes, message):
    path = _edit_keras(src, tmp_path / "bad.keras", _set(layer, **changes))
    model = lstmctl.load(path)
    inputs = keras_inputs(expected(src))
    with pytest.raises(LstmctlError, match=f"layer '{layer}'.*{re.escape(message)}"):
        model.run(inputs)


def _replace(f, path, array):
    del f[path]
    f[path] = array


def _zeros(*shape):
    return np.zeros(shape, np.float32)


MHA_OUT = "layers/multi_head_attention/output_dense/vars/"


@pytest.mark.parametrize(
    "src, arrays, layer, message, at_load",
    [
        (ACTIVATIONS, {"layers/p_re_lu/vars/0": _zeros(5, 6)}, "prelu", "alpha has shape (5, 6)", False),
        (NORMS, {"layers/batch_normalization/vars/3": -np.ones(5, np.float32)}, "bn_last", "moving_variance + epsilon is negative", True),
        (NORMS, {"layers/batch_normalization/vars/2": _zeros(5, 1)}, "bn_last", "do not share one shape", True),
        (MHA, {MHA_OUT + "0": _zeros(2, 3, 5), MHA_OUT + "1": _zeros(5)}, "mha_self", "does not give the query's 6 features", False),
        (MHA, {"layers/multi_head_attention/query_dense/vars/1": _zeros(6)}, "mha_self", "query weights", True),
        (ATTENTION, {"layers/additive_attention/vars/0": np.ones(3, np.float32)}, "additive", "scale has shape (3,)", False),
        (ATTENTION, {"layers/attention/vars/0": np.ones(2, np.float32)}, "att_dot_scaled", "scale has shape (2,)", True),
    ],
)
def test_weights_that_do_not_fit(tmp_path, src, arrays, layer, message, at_load):
    def edit(f):
        for path, array in arrays.items():
            _replace(f, path, array)

    bad = _edit_keras(src, tmp_path / "bad.keras", weights_edit=edit)
    if at_load:
        _refused(bad, layer, message)
        return
    model = lstmctl.load(bad)
    with pytest.raises(LstmctlError, match=f"layer '{layer}'.*{re.escape(message)}"):
        model.run(keras_inputs(expected(src)))


def test_legacy_prelu_alpha_and_layernorm_rms(tmp_path):
    """tf_keras files: weights are read by position from the layer's group; rms_scaling is Keras 3's."""
    bad = tmp_path / "bad.h5"
    shutil.copy(sample("layers/k2_activations.h5"), bad)
    with h5py.File(bad, "r+") as f:
        _replace(f, "model_weights/prelu/prelu/alpha:0", np.zeros((2, 2), np.float32))
    with pytest.raises(LstmctlError, match="layer 'prelu'.*alpha has shape"):
        lstmctl.load(bad).run(keras_inputs(expected("layers/k2_activations.h5")))
    with h5py.File(bad, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        entry = next(e for e in config["config"]["layers"] if e["config"]["name"] == "prelu_shared")
        entry["config"]["shared_axes"] = 7
        f.attrs["model_config"] = json.dumps(config)
    _refused(bad, "prelu_shared", "not 1 along shared_axes [7]")
    norms = tmp_path / "norms.h5"
    shutil.copy(sample("layers/k2_norms.h5"), norms)
    with h5py.File(norms, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        next(e for e in config["config"]["layers"] if e["config"]["name"] == "ln")["config"]["rms_scaling"] = True
        f.attrs["model_config"] = json.dumps(config)
    _refused(norms, "ln", "rms_scaling is a Keras 3 option")


def test_keras_1_0_batch_normalization_refused(tmp_path):
    """Keras 1.0 kept a running standard deviation where later versions keep a variance."""
    old = tmp_path / "old.h5"
    shutil.copy(sample("layers/k2_norms.h5"), old)
    with h5py.File(old, "r+") as f:
        f.attrs["keras_version"] = "1.0.8"
    _refused(old, "bn_last", "saved by Keras 1.0.8 is not supported")


def test_softmax_mask_must_broadcast():
    """The (batch, time) mask of activations_more's softmax broadcasts onto (batch 3, 3, 3) from the
    right, as Keras applies it; with another batch size Keras refuses, and so does lstmctl."""
    name = "extra_layers/k3_activations_more.keras"
    inputs = keras_inputs(expected(name))
    model = lstmctl.load(sample(name))
    with pytest.raises(LstmctlError, match=r"layer 'softmax_masked'.*mask \(2, 3\) does not broadcast"):
        model.run({k: v[:2] for k, v in inputs.items()})


def test_old_causal_config_is_use_causal_mask(tmp_path):
    """tf.keras 2.4-2.9 saved `causal: true` in an Attention's config instead of passing
    use_causal_mask: the same layer written the old way gives what Keras computed for the new."""
    name = "layers/k2_attention.h5"
    old = tmp_path / "old.h5"
    shutil.copy(sample(name), old)
    with h5py.File(old, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        entry = next(e for e in config["config"]["layers"] if e["config"]["name"] == "att_causal")
        entry["config"]["causal"] = True
        for item in entry["inbound_nodes"][0]:
            item[3].pop("use_causal_mask")
        f.attrs["model_config"] = json.dumps(config)
    exp = expected(name)
    result = lstmctl.load(old).run(keras_inputs(exp), layer_outputs=True)
    np.testing.assert_allclose(result["layer/att_causal"], exp["layer/att_causal"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(result["output_0"], exp["output_0"], atol=1e-5, rtol=0)


def test_inspect_shows_parsed_settings():
    result = CliRunner().invoke(main, ["inspect", sample("extra_layers/k3_mha_more.keras"), "--format", "json"])
    assert result.exit_code == 0, result.output
    settings = {layer["name"]: layer.get("settings") for layer in json.loads(result.output)["layers"]}
    assert settings["mha_causal_masked"] == {"num_heads": 3, "key_dim": 2, "value_dim": 4, "use_bias": True, "attention_axes": [1]}
    assert settings["mha_grid_axis2"]["attention_axes"] == [2] and settings["mha_grid_axis2"]["output_shape"] == [3]
    assert settings["mha_version_option"]["sliding_window"] == 2 and settings["mha_version_option"]["use_gate"] is True
