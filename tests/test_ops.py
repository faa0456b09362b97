"""keras.ops nodes (lstmctl/layers/ops.py): Keras's dtypes, the CLI on ops fixtures, inspect's
listing, and hostile node data refused naming the node and the file, nothing executed.

The values themselves are checked against Keras for every fixture by test_layers.py."""

import base64
import json
import marshal
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from lstmctl.cli import main
from lstmctl.layers.ops import OPS, result_type
from conftest import SAMPLES, keras_inputs

BASE = "ops/k3_ops_masked.keras"  # multiply (args [s, 2.0]), tanh, get_item (s[:, :4]), multiply_1
OPS_FIXTURES = sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.glob("*/k3_ops*") if p.suffix in (".keras", ".h5"))


def expected(name):
    with np.load(SAMPLES / f"{name}.expected.npz") as data:
        return dict(data)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(result, *contains):
    """Exit 3 with one `lstmctl: error:` line naming what it should, no traceback."""
    assert result.exit_code == 3, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmctl: error:"), result.stderr
    for text in contains:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def edited(tmp_path, edit, src=BASE):
    """A copy of an ops fixture whose config.json layer entries went through `edit(by_name)`."""
    with zipfile.ZipFile(SAMPLES / src) as zin:
        config = json.loads(zin.read("config.json"))
        edit({layer["config"]["name"]: layer for layer in config["config"]["layers"]})
        dst = tmp_path / "edited.keras"
        with zipfile.ZipFile(dst, "w") as zout:
            for item in zin.infolist():
                zout.writestr(item, json.dumps(config) if item.filename == "config.json" else zin.read(item))
    return dst


def input_file(tmp_path, name=BASE):
    path = tmp_path / "x.npy"
    np.save(path, keras_inputs(expected(name))["input_layer"])
    return path


# --- dtypes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operands, dtype",
    [
        (("float32", float), "float32"),  # s * 2.0 stays float32
        (("int32", float), "float32"),  # NumPy: float64
        (("float32", "int64"), "float32"),  # NumPy: float64
        (("float16", "int32"), "float16"),
        (("float64", float), "float64"),
        (("uint8", "int8"), "int16"),
        (("uint32", "int32"), "int64"),
        (("bool", int), "int32"),
        ((int, float), "float32"),
        (("int32", int), "int32"),
        (("uint64",), "uint32"),
    ],
)
def test_keras_promotion(operands, dtype):
    assert result_type(*operands) == dtype


@pytest.mark.parametrize("name", OPS_FIXTURES)
def test_every_op_value_is_keras_value_in_keras_dtype(name):
    exp = expected(name)
    model = lstmctl.load(SAMPLES / name)
    result = model.run(keras_inputs(exp), layer_outputs=True)
    ops = [layer.name for layer in model.walk() if layer.op]
    assert ops
    for key in (f"layer/{op}" for op in ops):
        assert result[key].dtype == exp[key].dtype, (key, result[key].dtype, exp[key].dtype)
        np.testing.assert_allclose(result[key], exp[key], rtol=0, atol=1e-5, err_msg=key)


def test_run_forced_to_float64_stays_float64_through_ops():
    name = "ops/k3_ops_math.keras"
    exp = expected(name)
    result = lstmctl.load(SAMPLES / name).run(keras_inputs(exp), dtype="float64", layer_outputs=True)
    assert result["layer/multiply"].dtype == np.float64 and result["output"].dtype == np.float64
    np.testing.assert_allclose(result["output"], exp["output"], atol=1e-5)


def test_every_supported_op_has_a_keras_fixture():
    covered = {c[len("ops."):] for d in SAMPLES.glob("*/manifest.json") for m in json.loads(d.read_text()) for c in m["classes"] if c.startswith("ops.")}
    assert set(OPS) <= covered, sorted(set(OPS) - covered)


# --- CLI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ops/k3_ops_shapes.keras", "ops/k3_ops_legacy.h5"])
def test_cli_run_gives_keras_numbers(tmp_path, name):
    exp = expected(name)
    out = tmp_path / "r.npz"
    result = cli("run", SAMPLES / name, "--input", input_file(tmp_path, name), "--format", "npz", "-o", out)
    assert result.exit_code == 0, result.output
    with np.load(out) as got:
        outputs = [k for k in exp if k == "output" or k.startswith("output_")]
        assert set(outputs) <= set(got)
        for key in outputs:
            np.testing.assert_allclose(got[key], exp[key], rtol=0, atol=1e-5, err_msg=key)


def test_cli_run_table_shows_the_outputs(tmp_path):
    result = cli("run", SAMPLES / BASE, "--input", input_file(tmp_path))
    assert result.exit_code == 0, result.output
    assert all(f"output_{i}  (3, " in result.output for i in range(3))


def test_inspect_lists_user_ops_with_shapes_and_summarises_mask_ops():
    result = cli("inspect", SAMPLES / BASE, "--format", "json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    layers = {f["name"]: f for f in facts["layers"]}
    assert layers["get_item"]["kind"] == "op"
    assert layers["get_item"]["input_shapes"] == [[None, 6, 5]] and layers["get_item"]["output_shapes"] == [[None, 4, 5]]
    assert layers["get_item"]["settings"] == {"call": "lstm_masked[:, :4]"}
    assert layers["multiply"]["settings"] == {"call": "multiply(lstm_masked, 2.0)"}
    # NotEqual and Any compute the Masking layer's mask for lstm_masked: summarised, not listed.
    assert "not_equal" not in layers and "any" not in layers
    assert any(note.startswith("2 keras.ops nodes that compute masks") for note in facts["notes"])
    table = cli("inspect", SAMPLES / BASE)
    assert table.exit_code == 0 and "lstm_masked[:, :4]" in table.output


def test_inspect_goes_on_past_an_op_its_probe_cannot_compute():
    """broadcast_to((3, 6, 2)) names the batch size; inspect's probe runs batch 1, where the
    concatenation of it with the batch-1 values fails."""
    result = cli("inspect", SAMPLES / "ops/k3_ops_shapes.keras", "--format", "json")
    assert result.exit_code == 0, result.output
    layers = {f["name"]: f for f in json.loads(result.output)["layers"]}
    assert layers["dense_shapes"]["output_shapes"] is None
    assert layers["get_item"]["output_shapes"] == [[None, 2, 3]]


def test_inspect_shows_keyword_settings_of_an_op():
    facts = json.loads(cli("inspect", SAMPLES / "ops/k3_ops_legacy.h5", "--format", "json").output)
    layers = {f["name"]: f for f in facts["layers"]}
    assert layers["reshape"]["settings"] == {"call": "reshape(reshape_layer, newshape=(-1, 6, 50))"}
    assert layers["reshape"]["kind"] == "op" and layers["reshape_layer"]["kind"] == "layer"  # the same class name


def test_unknown_op_is_listed_and_refused_by_run_but_direct_works(tmp_path):
    def edit(layers):
        layers["tanh"]["class_name"] = layers["tanh"]["registered_name"] = "Einsum"

    model = edited(tmp_path, edit)
    facts = json.loads(cli("inspect", model, "--format", "json").output)
    assert {f["name"]: f["kind"] for f in facts["layers"]}["tanh"] == "opaque"
    refused(cli("run", model, "--input", input_file(tmp_path)), str(model), "'tanh'", "Einsum", "not supported")
    assert cli("run", model, "--layer", "lstm_masked", "--direct", "--input", input_file(tmp_path)).exit_code == 0


# --- hostile node data ---------------------------------------------------------------------------


def _args(node, args):
    def edit(layers):
        layers[node]["inbound_nodes"][0]["args"] = args

    return edit


def _config(node, cls, **config):
    def edit(layers):
        layers[node]["class_name"] = layers[node]["registered_name"] = cls
        layers[node]["config"] = {"name": node, **config}

    return edit


S = {"class_name": "__keras_tensor__", "config": {"shape": [None, 6, 5], "dtype": "float32", "keras_history": ["lstm_masked", 0, 0]}}


def _slice(start=None, stop=None, step=None):
    return {"class_name": "__slice__", "config": {"start": start, "stop": stop, "step": step}}


HOSTILE = {
    "huge slice step": ("get_item", _args("get_item", [S, [_slice(), _slice(step=10**30)]]), "slice step"),
    "slice step 0": ("get_item", _args("get_item", [S, [_slice(), _slice(step=0)]]), "step 0"),
    "slice with a string": ("get_item", _args("get_item", [S, [_slice(start="1")]]), "slice start"),
    "index out of range": ("get_item", _args("get_item", [S, [_slice(), 6]]), "index 6"),
    "too many indices": ("get_item", _args("get_item", [S, [0, 0, 0, 0]]), "more entries"),
    "two ellipses": ("get_item", _args("get_item", [S, [{"class_name": "__ellipsis__", "config": {}}] * 2]), "more than one"),
    "a list inside the key": ("get_item", _args("get_item", [S, [[0, 1]]]), "only integers, slices"),
    "non-numeric constant": ("multiply", _args("multiply", [S, "2.0"]), "not a number"),
    "huge integer constant": ("multiply", _args("multiply", [S, 10**30]), "64-bit"),
    "list constant": ("multiply", _args("multiply", [S, [1.0, 2.0]]), "not a tensor or a number"),
    "dict that is not a tensor": ("multiply", _args("multiply", [S, {"a": 1}]), "neither a tensor nor plain data"),
    "constant array of strings": ("multiply", _args("multiply", [S, {"class_name": "__numpy__", "config": {"value": ["1"], "dtype": "float32"}}]), "not numbers"),
    "constant array of an odd dtype": ("multiply", _args("multiply", [S, {"class_name": "__numpy__", "config": {"value": [1], "dtype": "complex64"}}]), "neither a tensor"),
    "too many arguments": ("multiply", _args("multiply", [S, 2.0, 3.0]), "takes 2"),
    "missing argument": ("multiply", _args("multiply", [S]), "does not give x2"),
    "axis out of range": ("tanh", _config("tanh", "Mean", axis=5, keepdims=False), "axis 5 is out of range"),
    "axis named twice": ("tanh", _config("tanh", "Sum", axis=[1, -2], keepdims=False), "twice"),
    "axis not an integer": ("tanh", _config("tanh", "Mean", axis="1", keepdims=False), "not an axis"),
    "keepdims not a flag": ("tanh", _config("tanh", "Mean", axis=1, keepdims="yes"), "not true or false"),
    "unknown setting": ("tanh", _config("tanh", "Tanh", exploit=True), "does not know"),
    "reshape to a huge size": ("tanh", _config("tanh", "Reshape", newshape=[10**12, 10**12]), "cannot reshape"),
    "reshape with two -1": ("tanh", _config("tanh", "Reshape", newshape=[-1, -1]), "cannot reshape"),
    "broadcast to a huge shape": ("tanh", _config("tanh", "BroadcastTo", shape=[3, 6, 5, 10**9]), "cap"),
    "tile a huge number of times": ("tanh", _config("tanh", "Tile", repeats=[1, 10**9, 1]), "cap"),
    "repeat a huge number of times": ("tanh", _config("tanh", "Repeat", repeats=10**9, axis=1), "cap"),
    "transpose that is no permutation": ("tanh", _config("tanh", "Transpose", axes=[0, 0, 1]), "twice"),
    "squeeze of an axis that is not 1": ("tanh", _config("tanh", "Squeeze", axis=1), "not 1"),
    "cast to an unknown dtype": ("tanh", _config("tanh", "Cast", dtype="string"), "dtype"),
    "dtype that is an object": ("tanh", _config("tanh", "Cast", dtype={"name": "float32"}), "dtype"),
    "constant array whose dtype is an object": ("multiply", _args("multiply", [S, {"class_name": "__numpy__", "config": {"value": [1], "dtype": {}}}]), "neither a tensor"),
    "clip bound not a number": ("tanh", _config("tanh", "Clip", x_min="0", x_max=1), "x_min"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_node_data_is_refused_naming_the_node(tmp_path, case):
    node, edit, message = HOSTILE[case]
    model = edited(tmp_path, edit)
    refused(cli("run", model, "--input", input_file(tmp_path)), str(model), f"op '{node}'", message)


def test_lambda_argument_is_never_decoded(tmp_path, monkeypatch):
    """A `__lambda__` constant (Keras's serialised Python code) is refused as data, never run."""
    sentinel = tmp_path / "PWNED"
    code = compile(f"open({str(sentinel)!r}, 'w').write('ran')", "<payload>", "exec")
    payload = {"class_name": "__lambda__", "config": {"value": [base64.b64encode(marshal.dumps(code)).decode(), None, None]}}
    for name in ("loads", "load"):
        monkeypatch.setattr(marshal, name, lambda *a, **k: pytest.fail("marshal used"))
    model = edited(tmp_path, _args("multiply", [S, payload]))
    refused(cli("run", model, "--input", input_file(tmp_path)), "op 'multiply'", "neither a tensor nor plain data")
    assert cli("inspect", model).exit_code == 0  # listed, its shape unknown
    assert not sentinel.exists()


def test_integer_division_by_zero_is_refused_as_tensorflow_does():
    model = lstmctl.load(SAMPLES / "ops/k3_ops_dtypes.keras")
    exp = expected("ops/k3_ops_dtypes.keras")
    feeds = keras_inputs(exp)
    floor_divide = next(layer for layer in model.walk() if layer.class_name == "FloorDivide" and layer.calls[0].raw_args[1] == 3)
    floor_divide.calls[0].raw_args[1] = 0
    with pytest.raises(lstmctl.LstmctlError, match="integer division by zero"):
        model.run(feeds)


@pytest.mark.parametrize("x2, square", [(2.0, False), (S, True)])
def test_arguments_passed_by_keyword(tmp_path, x2, square):
    """Keras records arguments passed by keyword in kwargs, a tensor or a constant; bound by name."""

    def edit(layers):
        node = layers["multiply"]["inbound_nodes"][0]
        node["args"], node["kwargs"] = [S], {"x2": x2}

    exp = expected(BASE)
    result = lstmctl.load(edited(tmp_path, edit)).run(keras_inputs(exp), layer_outputs=True)
    s = exp["layer/lstm_masked"]
    np.testing.assert_allclose(result["layer/multiply"], s * s if square else s * 2.0, atol=1e-6)


def test_inspect_of_a_node_with_bad_data_still_lists_it(tmp_path):
    """inspect's probe skips what run would refuse as unsupported; the node is listed without shapes."""
    model = edited(tmp_path, _args("multiply", [S, {"a": 1}]))
    facts = json.loads(cli("inspect", model, "--format", "json").output)
    row = {f["name"]: f for f in facts["layers"]}["multiply"]
    assert row["kind"] == "op" and row["output_shapes"] is None and row["settings"] == {}
    assert "tanh" in {f["name"] for f in facts["layers"]}  # what follows it too


def test_python_api_error_is_lstmctl_error(tmp_path):
    model = lstmctl.load(edited(tmp_path, _config("tanh", "Mean", axis=7, keepdims=False)))
    with pytest.raises(lstmctl.LstmctlError) as info:
        model.run(keras_inputs(expected(BASE)))
    assert "op 'tanh' (Mean)" in str(info.value) and info.value.exit_code == 3
