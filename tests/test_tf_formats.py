"""TensorFlow's own formats against TensorFlow's own numbers: TF1 Saver checkpoints (every cell
kind, MultiRNNCell, bidirectional_dynamic_rnn, forget_bias, Adam slots), TF2 checkpoints and
SavedModel folders of tf_keras models, all written by sample_models/tf/generate_tf.py with what
TensorFlow computed stored beside them (atol 1e-5). The tf_keras models' every output, layer and
gate is also checked by test_layers.py through sample_models/tf/manifest.json."""

import json
import os

import numpy as np
import pytest

import lstmctl
from conftest import SAMPLES
from lstmctl.formats import crc32c
from lstmctl.errors import LstmctlError, UsageError
from lstmctl.formats.protowire import Message
from lstmctl.formats.tensorbundle import Bundle
from lstmctl.runner import run_layer

from click.testing import CliRunner
from lstmctl.formats import tf1_checkpoint
from lstmctl.cli import main

TF = SAMPLES / "tf"
TF1 = {m["file"].split("/")[0]: m for m in json.loads((TF / "tf1_manifest.json").read_text())}
KERAS = {m["file"]: m for m in json.loads((TF / "manifest.json").read_text())}
ATOL = 1e-5


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _expected(file):
    with np.load(TF / f"{file}.expected.npz") as data:
        return dict(data)


def _tf1(name, **options):
    m = TF1[name]
    return m, lstmctl.load(TF / m["file"], **options), _expected(m["file"])


def _state_key(layer, key):
    """TensorFlow's final-state names in the fixture -> lstmctl's result keys."""
    parts = key.split("/")[1:]
    parts = [{"fw": "forward", "bw": "backward"}.get(p, p) for p in parts]
    return "/".join([layer, *parts])


# --- TF1 Saver checkpoints ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(n for n, m in TF1.items() if m["structure"] != "seq2seq"))
def test_tf1_outputs_and_final_states_match_tensorflow(name):
    m, model, exp = _tf1(name, forget_bias=m_fb if (m_fb := TF1[name]["forget_bias"]) is not None else 1.0)
    layer = m["scope"].replace("/", ".")
    result = model.run(exp["input"])
    np.testing.assert_allclose(result["output"], exp["outputs"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(result[f"{layer}/sequence"], exp["outputs"], atol=ATOL, rtol=0)
    states = [k for k in exp if k.startswith("state/")]
    assert states
    for key in states:
        np.testing.assert_allclose(result[_state_key(layer, key)], exp[key], atol=ATOL, rtol=0, err_msg=key)
    assert model.format == "tf1-checkpoint"
    assert [lay.name for lay in model.recurrent_layers()] == [layer]


def test_tf1_encoder_hands_its_state_to_the_decoder():
    """Two scopes, two layers with their own inputs; the decoder started from TF's encoder state."""
    _, model, exp = _tf1("tf1_seq2seq")
    assert sorted(i.name for i in model.inputs) == ["decoder.rnn_input", "encoder.rnn_input"]
    assert repr(model).startswith("<lstmctl Model 'tf1'")
    feed = {"encoder.rnn_input": exp["input"], "decoder.rnn_input": exp["decoder_input"]}
    alone = model.run(feed)
    np.testing.assert_allclose(alone["encoder.rnn/sequence"], exp["encoder_outputs"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(alone["encoder.rnn/c"], exp["encoder_state/c"], atol=ATOL, rtol=0)
    assert np.abs(alone["decoder.rnn/sequence"] - exp["outputs"]).max() > 1e-3  # a zero start is not TF's decoder
    handed = model.run(feed, initial_state=[alone["encoder.rnn/h"], alone["encoder.rnn/c"]], layer="decoder.rnn")
    np.testing.assert_allclose(handed["decoder.rnn/sequence"], exp["outputs"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(handed["decoder.rnn/h"], exp["state/h"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(handed["decoder.rnn/c"], exp["state/c"], atol=ATOL, rtol=0)


def test_tf1_structure_is_named_as_tensorflow_scopes_it():
    _, model, _ = _tf1("tf1_multi_rnn_cell")
    rnn = model.layer("rnn")
    assert rnn.class_name == "RNN" and [c.name for c in rnn.cells] == ["rnn/cell_0", "rnn/cell_1", "rnn/cell_2"]
    assert [c.cell.units for c in rnn.cells] == [5, 4, 3]
    _, model, _ = _tf1("tf1_bidirectional_multi")
    bi = model.layer("bidirectional_rnn")
    assert bi.class_name == "Bidirectional"
    assert [c.name for c in bi.backward.cells] == ["bidirectional_rnn/backward/cell_0", "bidirectional_rnn/backward/cell_1"]
    assert all(c.config["go_backwards"] for c in bi.backward.cells)
    _, model, _ = _tf1("tf1_scoped_adam")
    assert [lay.name for lay in model.recurrent_layers()] == ["encoder.rnn"]


@pytest.mark.parametrize("name", ["tf1_lstm_cell", "tf1_basic_lstm_cell", "tf1_lstm_forget_bias", "tf1_multi_rnn_cell", "tf1_bidirectional"])
def test_tf1_gates_are_tensorflows_kernel_columns(name):
    """W_f is rows 0:in, columns 2u:3u of TF1's kernel on [x, h]; b_f the stored bias plus forget_bias."""
    m, model, exp = _tf1(name, forget_bias=TF1[name]["forget_bias"])
    gates = model.gates()
    prefixes = sorted({k.rsplit("/", 1)[0] for k in exp if k.startswith("variables/") and k.endswith("/kernel")})
    assert prefixes
    for prefix in prefixes:
        kernel, bias = exp[f"{prefix}/kernel"], exp[f"{prefix}/bias"]
        u = kernel.shape[1] // 4
        n = kernel.shape[0] - u
        scope = prefix[len("variables/") :]
        layer = m["scope"].replace("/", ".")
        key = layer
        if "/fw/" in scope or "/bw/" in scope:
            key += "/forward" if "/fw/" in scope else "/backward"
        if "/cell_" in scope:
            key += "/" + [p for p in scope.split("/") if p.startswith("cell_")][0]
        for g, tf_block in (("i", 0), ("c", 1), ("f", 2), ("o", 3)):  # TF1 keeps i, j (= c̃), f, o
            cols = slice(tf_block * u, (tf_block + 1) * u)
            np.testing.assert_array_equal(gates[f"{key}/W_{g}"], kernel[:n, cols])
            np.testing.assert_array_equal(gates[f"{key}/U_{g}"], kernel[n:, cols])
            want = bias[cols] + (m["forget_bias"] if g == "f" else 0.0)
            np.testing.assert_allclose(gates[f"{key}/b_{g}"], want, rtol=0, atol=1e-6)


def test_forget_bias_is_the_one_tensorflow_added():
    m, model, exp = _tf1("tf1_lstm_forget_bias")  # saved with LSTMCell(forget_bias=2.5), loaded with the default
    assert m["forget_bias"] == 2.5
    assert np.abs(model.run(exp["input"])["output"] - exp["outputs"]).max() > 1e-2
    assert any("forget_bias 1.0 added" in n for n in model.notes)
    _, model, _ = _tf1("tf1_lstm_forget_bias", forget_bias=2.5)
    np.testing.assert_allclose(model.run(exp["input"])["output"], exp["outputs"], atol=ATOL, rtol=0)
    assert any("forget_bias 2.5 added" in n for n in model.notes)


def test_tf1_reader_returns_the_bytes_tensorflow_saved():
    for name, m in TF1.items():
        exp = _expected(m["file"])
        bundle = Bundle(str(TF / m["file"]))
        assert sorted(bundle.entries) == m["variables"]
        for key in (k for k in exp if k.startswith("variables/")):
            np.testing.assert_array_equal(bundle.read(key[len("variables/") :]), exp[key], err_msg=f"{name} {key}")


def test_optimizer_slots_and_counters_are_listed_as_skipped():
    _, model, exp = _tf1("tf1_scoped_adam")
    notes = "\n".join(model.notes)
    assert "skipped 8 checkpoint variable(s), optimizer slots: dense/bias/Adam, dense/bias/Adam_1" in notes
    assert "skipped 2 checkpoint variable(s), optimizer variables: beta1_power, beta2_power" in notes
    assert "skipped 1 checkpoint variable(s), step counters: global_step" in notes
    assert "skipped 2 checkpoint variable(s), outside any recurrent cell's scope: dense/bias, dense/kernel" in notes
    result = invoke("inspect", TF / "tf1_scoped_adam", "--format", "json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["format"] == "tf1-checkpoint"
    assert any(n.startswith("skipped 1 checkpoint variable(s), step counters") for n in facts["notes"])


@pytest.mark.parametrize("given", ["tf1_lstm_cell", "tf1_lstm_cell/model.ckpt", "tf1_lstm_cell/model.ckpt.index", "tf1_lstm_cell/model.ckpt.data-00000-of-00001"])
def test_a_checkpoint_is_named_by_folder_prefix_index_or_shard(given):
    exp = _expected("tf1_lstm_cell/model.ckpt")
    model = lstmctl.load(TF / given)
    np.testing.assert_allclose(model.run(exp["input"])["output"], exp["outputs"], atol=ATOL, rtol=0)


def test_checkpoint_state_with_an_absolute_path_from_another_machine(tmp_path):
    """Savers often record `/home/…/model.ckpt-1000`: the name is looked up in the folder given."""
    for suffix in (".index", ".data-00000-of-00001"):
        (tmp_path / f"model.ckpt-7{suffix}").write_bytes((TF / "tf1_lstm_cell" / f"model.ckpt{suffix}").read_bytes())
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/home/someone/train/model.ckpt-7"\nall_model_checkpoint_paths: "/home/someone/train/model.ckpt-7"\n')
    exp = _expected("tf1_lstm_cell/model.ckpt")
    np.testing.assert_allclose(lstmctl.load(tmp_path).run(exp["input"])["output"], exp["outputs"], atol=ATOL, rtol=0)


def test_cli_on_a_tf1_checkpoint(tmp_path):
    exp = _expected("tf1_multi_rnn_cell/model.ckpt")
    x = tmp_path / "x.npy"
    np.save(x, exp["input"])
    out = tmp_path / "out.npz"
    result = invoke("run", TF / "tf1_multi_rnn_cell", "--input", x, "--output", out)
    assert result.exit_code == 0, result.output
    with np.load(out) as got:
        np.testing.assert_allclose(got["output"], exp["outputs"], atol=ATOL, rtol=0)
        np.testing.assert_allclose(got["rnn/cell_1/c"], exp["state/cell_1/c"], atol=ATOL, rtol=0)
    result = invoke("inspect", TF / "tf1_lstm_forget_bias", "--forget-bias", "2.5")
    assert result.exit_code == 0, result.output
    assert "forget_bias 2.5 added" in result.stdout.replace("\n", " ").replace("│", "")
    result = invoke("trace", TF / "tf1_lstm_cell", "--input", x)
    assert result.exit_code == 0, result.output
    result = invoke("inspect", SAMPLES / "k2_lstm_dense.h5", "--forget-bias", "2")
    assert result.exit_code == 2 and "--forget-bias: a what-if for run, trace and diagnose" in result.stderr


def test_export_of_a_multirnncell_checkpoint_gives_back_its_variables(tmp_path):
    m, model, exp = _tf1("tf1_multi_rnn_cell")
    out = tmp_path / "tf1_checkpoint.npz"
    result = invoke("export", TF / "tf1_multi_rnn_cell", "--to", "tf1", "--output", out)
    assert result.exit_code == 0, result.output
    with np.load(out) as got:
        for key in (k for k in exp if k.startswith("variables/")):
            np.testing.assert_allclose(got[key[len("variables/") :]], exp[key], atol=1e-6, rtol=0, err_msg=key)


def test_peephole_and_projection_variables_are_refused_by_name():
    for name, what in (("rnn/lstm_cell/w_f_diag", "peephole weights"), ("rnn/lstm_cell/projection/kernel", "a projection")):
        with pytest.raises(LstmctlError, match=f"'{name}' holds {what}"):
            tf1_checkpoint._place(name)
    assert tf1_checkpoint._place("rnn/multi_rnn_cell/cell_2/lstm_cell/kernel") == ("rnn", None, 2, "rnn/multi_rnn_cell/cell_2/lstm_cell/", "kernel")
    assert tf1_checkpoint._place("bidirectional_rnn/bw/gru_cell/gates/bias") == ("bidirectional_rnn", "bw", None, "bidirectional_rnn/bw/gru_cell/", "gates/bias")
    assert tf1_checkpoint._place("dense/kernel") is None


# --- TF2 checkpoints and SavedModel folders of tf_keras models -----------------------------------------


@pytest.mark.parametrize("name", ["lstm", "gru", "bidir", "stack", "rnn_cells", "encdec"])
def test_savedmodel_is_the_same_model_as_its_h5(name):
    a, b = lstmctl.load(TF / f"{name}.savedmodel"), lstmctl.load(TF / f"{name}.h5")
    assert a.format == "savedmodel" and a.keras_version == b.keras_version
    assert [(lay.name, lay.class_name) for lay in a.walk()] == [(lay.name, lay.class_name) for lay in b.walk()]
    ga, gb = a.gates(), b.gates()
    assert sorted(ga) == sorted(gb)
    for key in ga:
        np.testing.assert_array_equal(ga[key], gb[key], err_msg=key)


@pytest.mark.parametrize("name", ["lstm", "gru", "bidir", "stack", "rnn_cells", "encdec"])
def test_tf2_checkpoint_names_its_layers_from_the_object_graph(name):
    ckpt, h5 = lstmctl.load(TF / f"{name}.ckpt"), lstmctl.load(TF / f"{name}.h5")
    assert ckpt.format == "tf2-checkpoint" and ckpt.inferred
    want = [(lay.name, lay.class_name) for lay in h5.recurrent_layers() if "/" not in lay.name]
    assert [(lay.name, lay.class_name) for lay in ckpt.recurrent_layers() if "/" not in lay.name] == want
    gc, gh = ckpt.gates(), h5.gates()
    assert sorted(gc) == sorted(gh)
    for key in gc:
        np.testing.assert_array_equal(gc[key], gh[key], err_msg=key)


def test_tf2_adam_slots_are_skipped():
    for given in ("adam.ckpt", "adam.savedmodel"):
        notes = "\n".join(lstmctl.load(TF / given).notes)
        assert "optimizer" in notes and "skipped" in notes, given
    notes = lstmctl.load(TF / "adam.savedmodel").notes
    assert any(n.startswith("skipped") and "metrics" in n for n in notes)


def test_real_savedmodel_from_zoo2_opens_on_the_cli(tmp_path):
    folder = SAMPLES.parent.parent / "shared" / "zoo2" / "sailesh_bilstm_savedmodel" / "BiLSTM"
    if not folder.is_dir():
        pytest.skip("../shared/zoo2 is not here")
    result = invoke("inspect", folder)
    assert result.exit_code == 0, result.output
    assert "TensorFlow SavedModel folder" in result.stdout and "Keras 2.10.0" in result.stdout


# --- the wire formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("implementation", ["numpy", "crc32c package"])
def test_crc32c_known_values_and_long_inputs(implementation, monkeypatch):
    """Both ways of checking a checkpoint's CRCs: NumPy's, and the crc32c package's when installed
    (the test extra installs it; `pip install lstmctl[fast]` for users)."""
    if implementation == "numpy":
        monkeypatch.setattr(crc32c, "_native", lambda: None)
    else:
        assert crc32c._native() is not None, "the test extra installs the crc32c package"
    assert crc32c.value(b"123456789") == 0xE3069283  # the check value of CRC-32C (RFC 3720)
    assert crc32c.value(b"") == 0
    assert crc32c.value(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 bytes of zeros
    assert crc32c.value(bytes([0xFF] * 32)) == 0x62A8AB43  # RFC 3720 B.4: 32 bytes of 0xff
    assert crc32c.value(bytes(range(32))) == 0x46DD794E  # RFC 3720 B.4: incrementing
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (1 << 20) + 12345, dtype=np.uint8).tobytes()
    plain = 0xFFFFFFFF
    for byte in data:  # the textbook loop, bit by bit
        plain ^= byte
        for _ in range(8):
            plain = (plain >> 1) ^ (0x82F63B78 if plain & 1 else 0)
    assert crc32c.value(data) == plain ^ 0xFFFFFFFF
    assert crc32c.extend(crc32c.value(data[:1000]), data[1000:]) == plain ^ 0xFFFFFFFF
    assert crc32c.unmask(crc32c.mask(0x12345678)) == 0x12345678


def test_protowire_reads_fields_and_refuses_what_runs_past():
    msg = Message(b"\x08\x96\x01\x12\x03abc\x1d\x01\x00\x00\x00\x12\x01z", "m")
    assert msg.uint(1) == 150 and msg.text(2) == "z" and msg.uint(3) == 1 and msg.fields[2] == [b"abc", b"z"]
    for bad, what in ((b"\x12\x05ab", "declares 5 bytes"), (b"\x08" + b"\xff" * 11, "longer than 10 bytes"), (b"\x0b", "wire type 3"), (b"\x00\x01", "field number 0")):
        with pytest.raises(LstmctlError, match=what):
            Message(bad, "m")


def test_forget_bias_for_a_keras_file_is_a_usage_error():
    with pytest.raises(UsageError, match="applies only to a TF1 checkpoint"):
        lstmctl.load(SAMPLES / "k2_lstm_dense.h5", forget_bias=2.0)
    assert os.path.isdir(TF / "tf1_lstm_cell")


def test_diagnose_names_the_missing_tf1_forget_bias():
    """docs/examples/tf1_my_lstm.py: a NumPy LSTMCell on the checkpoint's variables without forget_bias."""
    docs = SAMPLES.parent / "docs" / "examples"
    result = invoke("diagnose", TF / "tf1_lstm_cell", "--input", docs / "tf1_x.npy", "--outputs", docs / "tf1_my_outputs.npy", "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["match"] is False and report["first_divergent_step"] == 1
    assert [e["id"] for e in report["explanations"] if e["matches"]] == ["tf1_forget_bias_missing"]
    result = invoke("diagnose", SAMPLES / "k2_vector2.h5", "--input", SAMPLES / "k2_vector2.input.npy", "--outputs", SAMPLES / "k2_vector2.tf1_without_forget_bias.npy", "--format", "json")
    assert "tf1_forget_bias_missing" not in result.stdout  # a Keras file's b_f holds the whole forget bias


def test_savedmodel_without_keras_metadata_is_read_as_weights():
    """Keras 3's model.export(): no keras_metadata.pb; the variables grouped by their names."""
    model = lstmctl.load(TF / "k3_export.savedmodel")
    assert model.format == "savedmodel" and model.inferred
    assert [(lay.name, lay.class_name) for lay in model.layers] == [("enc", "LSTM"), ("head", "Dense")]
    assert "SavedModel without Keras metadata (no keras_metadata.pb): its variables read as weights only" in model.notes
    exp = _expected("k3_export.savedmodel")
    np.testing.assert_array_equal(model.layer("enc").weights[0], exp["weights/enc/0"])


def test_diagnose_with_convention_tf1_and_a_trained_bias():
    """The same mistake found from an .npz of TF1 variables read with --convention tf1 (TF's own
    trained values), and the rows say what the layer really computes."""
    docs = SAMPLES.parent / "docs" / "examples"
    args = ["--input", docs / "tf1_x.npy", "--outputs", docs / "tf1_my_outputs.npy"]
    result = invoke("diagnose", docs / "tf1_lstm_cell_vars.npz", "--convention", "tf1", *args)
    assert result.exit_code == 1, result.output
    text = " ".join(result.stdout.split()).replace("│ ", "")
    assert "Your outputs are reproduced by 'tf1_forget_bias_missing'" in text
    assert "Against TF1 your sequence first diverges at step 1" in text
    assert "differ from TF1's for layer 'lstm'" in result.stderr
    result = invoke("diagnose", docs / "tf1_lstm_cell_vars.npz", "--convention", "tf1", *args, "--format", "json")
    rows = {r["id"]: r for r in json.loads(result.stdout)["explanations"]}
    assert rows["tf1_forget_bias_missing"]["matches"] and not rows["forget_bias_missing"]["matches"]
    model = lstmctl.load(docs / "tf1_lstm_cell_vars.npz", convention="tf1")
    from lstmctl.analysis.diagnose import diagnose

    d = diagnose(model, np.load(docs / "tf1_x.npy"), np.load(docs / "tf1_my_outputs.npy"))
    explained = {r["id"]: r["explanation"] for r in d.results}
    assert explained["hard_sigmoid_keras3"].endswith("this layer uses sigmoid")
    assert explained["reference"] == "your numbers match TF1's cell with forget_bias 1.0: your implementation is right"


# --- layers a TF2 checkpoint's variable names identify ----------------------------------------

NORM_CHAIN = [("embedding", "input/input_1"), ("lstm", "layer/embedding"), ("batch_normalization", "layer/lstm"), ("layer_normalization", "layer/batch_normalization"), ("dense", "layer/layer_normalization")]


@pytest.mark.parametrize("name", ["norm.ckpt", "norm.h5"])
def test_checkpoint_layers_are_known_layers_not_opaque(name):
    """A weights-only checkpoint has no config, but its variables' names (kernel, embeddings,
    gamma, moving_mean…) say which layer holds them: Embedding, BatchNormalization,
    LayerNormalization and Dense are built as the registry's layers, with Keras's defaults for what
    is not recorded (said in their notes), and each computes what Keras computed for it."""
    exp = dict(np.load(TF / f"{name}.expected.npz"))
    model = lstmctl.load(TF / name)
    kinds = {layer.name: (layer.class_name, layer.spec is not None) for layer in model.walk() if layer.class_name != "InputLayer"}
    assert kinds == {"embedding": ("Embedding", True), "lstm": ("LSTM", True), "batch_normalization": ("BatchNormalization", True), "layer_normalization": ("LayerNormalization", True), "dense": ("Dense", True)}
    if name.endswith(".ckpt"):
        assert "activation not recorded: assumed linear (Keras's default)" in model.layer("dense").notes
        for layer, source in NORM_CHAIN:
            out = run_layer(model, layer, exp[source])
            got = out[f"{layer}/sequence"] if layer == "lstm" else out["output"]
            np.testing.assert_allclose(got, exp[f"layer/{layer}"], rtol=0, atol=1e-5, err_msg=layer)


def test_direct_run_of_a_checkpoints_dense_layer(tmp_path):
    exp = dict(np.load(TF / "norm.ckpt.expected.npz"))
    np.save(tmp_path / "x.npy", exp["layer/layer_normalization"])
    out = CliRunner().invoke(main, ["run", str(TF / "norm.ckpt"), "--layer", "dense", "--direct", "--input", str(tmp_path / "x.npy"), "--format", "json"])
    assert out.exit_code == 0, out.output
    np.testing.assert_allclose(json.loads(out.stdout)["output"], exp["output"], rtol=0, atol=1e-5)
    inspected = CliRunner().invoke(main, ["inspect", str(TF / "norm.ckpt")])
    assert "opaque" not in inspected.stdout and "BatchNormalization" in inspected.stdout
