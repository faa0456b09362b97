"""Hostile PyTorch, safetensors and ONNX files, each built on the fly (no malicious binary is
committed): exit code 3, one line on stderr naming the file and what is wrong, nothing executed,
imported or read from outside the given file (the tripwires of test_hostile), no traceback.
"""

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from portwire import _global, _text, evil_reduce, field, lstm_graph, lstm_state_dict, node, onnx_model, onnx_tensor, state_dict_pickle, tensor_pickle, torch_zip, value_info
from test_hostile import EVIL_MODULE, fails, tripwires  # noqa: F401 (a fixture)
from test_ports import PORTS, write_safetensors

# ---------------------------------------------------------------------------------------------
# pickles: what torch.load without weights_only would run


def test_the_payloads_are_live(tmp_path):
    """Control: an unrestricted unpickler runs these opcodes (so refusing them means something)."""
    sentinel = tmp_path / "ran"
    code = f"import pathlib; pathlib.Path({str(sentinel)!r}).write_text('x')"
    pickle.loads(evil_reduce("builtins", "exec", code))  # noqa: S301 (the control)
    assert sentinel.read_text() == "x"


PAYLOADS = [
    ("os", "system", "the pickle calls os.system, which is not a tensor or dict constructor; refused (lstmctl runs nothing from a model file)"),
    ("posix", "system", "the pickle calls posix.system"),
    ("builtins", "eval", "the pickle calls builtins.eval"),
    ("builtins", "exec", "the pickle calls builtins.exec"),
    ("subprocess", "check_output", "the pickle calls subprocess.check_output"),
    (EVIL_MODULE, "Evil", f"the pickle calls {EVIL_MODULE}.Evil"),
    ("torch.nn.modules.rnn", "LSTM", "holds a pickled Python class (torch.nn.modules.rnn.LSTM), a whole model that only its code can rebuild; refused (lstmctl runs nothing from a model file): save model.state_dict() instead"),
    ("__main__", "Net", "holds a pickled Python class (__main__.Net)"),
    ("torch", "load", "the pickle calls torch.load"),
    ("numpy.core.multiarray", "_reconstruct", "the pickle calls numpy.core.multiarray._reconstruct"),
]


@pytest.mark.parametrize("module, name, message", PAYLOADS, ids=[f"{m}.{n}" for m, n, _ in PAYLOADS])
def test_pickle_globals_are_refused(tmp_path, tripwires, module, name, message):  # noqa: F811
    sentinel = tripwires["sentinel"]
    payload = evil_reduce(module, name, f"touch {sentinel}" if name in ("system", "check_output") else f"open({str(sentinel)!r}, 'w')")
    path = torch_zip(tmp_path / "evil.pt", payload, {})
    line = fails("inspect", path, contains=[str(path)])
    assert message in line


def test_a_payload_inside_a_state_dict(tmp_path, tripwires):  # noqa: F811
    """A valid tensor, then an entry whose value is a call to os.system: refused as the unpickler meets it."""
    entries = {"rnn.weight_ih_l0": tensor_pickle("0", 24, 0, (12, 2), (2, 1)), "evil": _global("os", "system") + _text(f"touch {tripwires['sentinel']}") + b"\x85R"}
    path = torch_zip(tmp_path / "evil.pt", state_dict_pickle(entries), {"0": bytes(96)})
    fails("run", path, contains=["os.system"])


def test_legacy_file_payloads(tmp_path, tripwires):  # noqa: F811
    """The legacy format's pickles: the payload in the state_dict's place, after a valid header."""
    from lstmctl.formats.torch_file import LEGACY_HEAD

    head = LEGACY_HEAD + b"." + b"\x80\x02M\xe9\x03." + b"\x80\x02}(X\x0d\x00\x00\x00little_endian\x88u."
    path = tmp_path / "legacy.pt"
    path.write_bytes(head + evil_reduce("os", "system", f"touch {tripwires['sentinel']}"))
    fails("inspect", path, contains=["os.system", "(legacy torch.save)"])
    path.write_bytes(LEGACY_HEAD + b"." + b"\x80\x02M\xe8\x03.")
    fails("inspect", path, contains=["protocol 1000, not torch's 1001"])


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"\x80\x02r\xff\xff\xff\x7f.", "memo slot 2147483647, over lstmctl's cap"),  # LONG_BINPUT: Python would size its memo to it
        (b"\x80\x02j\x00\x00\x00\x10.", "memo slot 268435456"),  # LONG_BINGET
        (b"\x80\x02X\xff\xff\xff\x7f" + b"a" * 10 + b".", "not a readable pickle"),  # a 2 GiB string that is not there
        (b"\x80\x02\x8b\xff\xff\xff\x7f.", "not a readable pickle"),  # LONG4 of 2 GiB
        (b"\x80\x02h\x05.", "not a readable pickle"),  # a memo slot never filled
        (b"\x80\x02(" + b"(" * 200000 + b"l" * 200000 + b"l.", "holds a list, not a state_dict"),  # deep nesting
        (b"\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s.", "holds no state_dict (a dict of tensors), or several; its entries are 'a' (dict)"),  # a dict holding itself
        (b"\x80\x02\x82\x01.", "EXT1 opcode, which torch.save never writes"),
        (b"\x80\x02(X\x02\x00\x00\x00idios\nsystem\n.", "INST opcode"),
        (b"\x80\x05\x97.", "NEXT_BUFFER opcode"),
        (b"\x80\x02", "not a readable pickle"),
    ],
    ids=["memo-put", "memo-get", "huge-string", "huge-long", "empty-memo", "deep", "recursive", "ext", "inst", "buffer", "truncated"],
)
def test_malformed_pickles(tmp_path, tripwires, blob, message):  # noqa: F811
    path = torch_zip(tmp_path / "m.pt", blob, {})
    fails("inspect", path, contains=[message])


def _one_tensor(tmp_path, numel, offset, size, stride, data=None, key="0", storage="FloatStorage"):
    pkl = state_dict_pickle({"rnn.weight_ih_l0": tensor_pickle(key, numel, offset, size, stride, storage)})
    return torch_zip(tmp_path / "t.pt", pkl, {"0": bytes(4 * numel) if data is None else data})


@pytest.mark.parametrize(
    "args, message",
    [
        ((1 << 40, 0, (12, 2), (2, 1)), "storages declare 4398046511104 bytes, over the 4294967296-byte cap"),
        ((24, 0, (12, 2), (2, 1), bytes(95)), "storage '0' declares 96 bytes; its member holds 95"),
        ((24, 0, (12, 2), (2, 1), None, "../../secret"), "storage '../../secret' has no member 'archive/data/../../secret' in the archive"),
        ((24, 0, (12, 2), (-2, 1)), "tensor 'rnn.weight_ih_l0' has a negative offset, size or stride"),
        ((24, -4, (12, 2), (2, 1)), "negative offset, size or stride"),
        ((24, 1, (12, 2), (2, 1)), "tensor 'rnn.weight_ih_l0' (12, 2) (offset 1, strides (2, 1)) reaches past its storage of 24 elements"),
        ((24, 0, (12, 2), (1 << 40, 1)), "reaches past its storage"),
        ((24, 0, (12, 2), (2, 1), None, "0", "ComplexFloatStorage"), "the pickle calls torch.ComplexFloatStorage"),
        ((1, 0, (1 << 15, 1 << 15), (0, 0)), "tensor 'rnn.weight_ih_l0' (32768, 32768) is over the 1073741824-byte cap"),  # one element broadcast by zero strides
    ],
    ids=["huge-storage", "short-member", "key-outside", "negative-stride", "negative-offset", "past-storage", "huge-stride", "unknown-storage", "huge-tensor"],
)
def test_storages_are_checked_before_allocating(tmp_path, args, message):
    numel = args[0]
    data = args[4] if len(args) > 4 and args[4] is not None else (bytes(4 * numel) if numel < 1 << 27 else b"")
    path = _one_tensor(tmp_path, *args[:4], data=data, **dict(zip(("key", "storage"), args[5:])))
    fails("inspect", path, contains=[str(path), message])


def test_truncated_archive_and_zip_bomb(tmp_path):
    good = lstm_state_dict(tmp_path / "good.pt")
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    fails("inspect", tmp_path / "cut.pt", contains=["cut.pt"])
    bomb = tmp_path / "bomb.pt"
    numel = 8 << 20
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:  # 32 MiB of zeros deflated to 32 KiB
        z.writestr("archive/data.pkl", state_dict_pickle({"w": tensor_pickle("0", numel, 0, (numel,), (1,))}))
        z.writestr("archive/data/0", bytes(4 * numel))
    fails("inspect", bomb, contains=["member 'archive/data/0' expands", "refused as a zip bomb"])


def test_a_valid_hand_built_state_dict_loads(tmp_path):
    """Control for the cases above: the same writer makes a file lstmctl reads and runs."""
    import lstmctl

    m = lstmctl.load(lstm_state_dict(tmp_path / "ok.pt"))
    assert m.run(np.zeros((1, 4, 2), np.float32))["rnn/h_n"].shape == (1, 1, 3)


def test_a_bad_state_dict_under_a_resource_limit(tmp_path):
    """A huge declared tensor refused in a process limited to 1 GiB of address space: a clean exit 3, not a MemoryError or a kill."""
    path = _one_tensor(tmp_path, 1, 0, (1 << 15, 1 << 15), (0, 0))
    code = "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); from lstmctl.cli import entry; sys.argv = ['lstmctl', 'inspect', sys.argv[1]]; entry()"
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 3, proc.stderr.decode()[-2000:]
    assert proc.stderr.decode().count("\n") == 1


# ---------------------------------------------------------------------------------------------
# safetensors


def _safetensors(tmp_path, header, data=b"", length=None):
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    path = tmp_path / "h.safetensors"
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


W = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}


@pytest.mark.parametrize(
    "header, data, length, message",
    [
        ({"w": W}, bytes(16), 1 << 40, None),  # a length past the file: not recognised as safetensors
        (b'{"w": ' + b" " * (17 << 20) + b"}", b"", None, "safetensors header of 17825799 bytes is over the 16777216-byte cap"),
        (b'{"w": 1, "w": 2}', b"", None, "duplicate key 'w' in JSON"),
        (b'{"w": NaN}', b"", None, "NaN is not allowed in JSON"),
        ({"w": dict(W, dtype="F8_E4M3")}, bytes(16), None, "tensor 'w' has dtype F8_E4M3, which lstmctl does not read"),
        ({"w": dict(W, shape=[2, 3])}, bytes(16), None, "tensor 'w' F32(2, 3) needs 24 bytes; its data_offsets span 16"),
        ({"w": dict(W, shape=[-2, -2])}, bytes(16), None, "a shape that is not a list of at most 32 non-negative integers"),
        ({"w": W, "v": dict(W, data_offsets=[8, 24])}, bytes(24), None, "tensor 'v' starts at byte 8 of the data, where 16 was expected"),
        ({"w": dict(W, data_offsets=[4, 20])}, bytes(20), None, "tensor 'w' starts at byte 4 of the data, where 0 was expected"),
        ({"w": W}, bytes(32), None, "the tensors' byte ranges end at 16, but the file holds 32 bytes of data"),
        ({"w": W, "__metadata__": {"a": 1}}, bytes(16), None, "safetensors __metadata__ is not an object of strings"),
        ({"w": dict(W, data_offsets=[16, 0])}, bytes(16), None, "data_offsets that are not [begin, end] with 0 <= begin <= end"),
        ({"w": dict(W, extra=1)}, bytes(16), None, "header entry 'w' is not {dtype, shape, data_offsets}"),
        ({"w": dict(W, shape=[1 << 20, 1 << 20], data_offsets=[0, 1 << 42])}, bytes(16), None, "is over the 1073741824-byte cap"),
        ({"__metadata__": {}}, b"", None, "safetensors file holds no tensors"),
    ],
    ids=["length-past-end", "huge-header", "duplicate", "nan", "dtype", "shape-vs-bytes", "negative-shape", "overlap", "gap", "trailing", "metadata", "reversed", "extra-key", "huge", "empty"],
)
def test_safetensors_header_rules(tmp_path, header, data, length, message):
    path = _safetensors(tmp_path, header, data, length)
    line = fails("inspect", path, contains=[str(path)])
    if message is None:
        assert "not a Keras model file" in line
    else:
        assert message in line


def test_safetensors_nonfinite_weights(tmp_path):
    w = np.ones((12, 2), np.float32)
    w[3, 1] = np.nan
    path = write_safetensors(tmp_path / "nan.safetensors", {"weight_ih_l0": w, "weight_hh_l0": np.ones((12, 3), np.float32)})
    fails("run", path, contains=["'weight_ih_l0' holds non-finite values"])


# ---------------------------------------------------------------------------------------------
# ONNX


def _onnx(tmp_path, data, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _external(location):
    """An LSTM whose W keeps its data in `location`, as onnx writes external data."""
    entries = b"".join(field(13, field(1, k) + field(2, v)) for k, v in (("location", location), ("offset", "0"), ("length", "96")))
    W = field(1, 1) + field(1, 12) + field(1, 2) + field(2, 1) + field(8, "W") + entries + field(14, 1)
    R = onnx_tensor("R", np.ones((1, 12, 3), np.float32))
    return onnx_model([node("LSTM", ["X", "W", "R"], ["Y"], name="lstm", hidden_size=3)], [value_info("X", ["t", "b", 2])], [value_info("Y", [])], [W, R])


def test_onnx_external_data_stays_in_the_models_folder(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(96))
    folder = tmp_path / "model"
    folder.mkdir()
    fails("inspect", _onnx(folder, _external("../secret.bin")), contains=["keeps its data in '../secret.bin', which is not a file name inside the model's folder; refused"])
    fails("inspect", _onnx(folder, _external(str(secret))), contains=["which is not a file name inside the model's folder"])
    (folder / "link.bin").symlink_to(secret)
    fails("inspect", _onnx(folder, _external("link.bin")), contains=["keeps its data in 'link.bin', which is not a file inside the model's folder"])
    (folder / "short.bin").write_bytes(bytes(50))
    fails("inspect", _onnx(folder, _external("short.bin")), contains=["needs 96 bytes at offset 0 of 'short.bin' (50 bytes"])
    (folder / "w.bin").write_bytes(np.ones((1, 12, 2), np.float32).tobytes())
    import lstmctl

    assert lstmctl.load(_onnx(folder, _external("w.bin"))).layer("lstm").cell.W.shape == (2, 12)  # the control: beside the model, it is read


@pytest.mark.parametrize(
    "data, message",
    [
        (lstm_graph()[:-7], "ONNX ModelProto: protobuf field 7 declares"),
        (onnx_model([node("LSTM", ["X", "W", "R"], ["Y"], name="lstm")], [value_info("X", [3, 1, 2])], [value_info("Y", [])],
                    [field(1, 1 << 40) + field(1, 1 << 20) + field(2, 1) + field(8, "W"), onnx_tensor("R", np.ones((1, 4, 1), np.float32))]), "tensor 'W': 2**40 elements along one dimension is over lstmctl's budget of 2**31"),
        (onnx_model([node("LSTM", ["X", "W", "R"], ["Y"], name="lstm")], [value_info("X", [3, 1, 2])], [value_info("Y", [])],
                    [field(1, 1) + field(1, 4) + field(1, 2) + field(2, 1) + field(8, "W") + field(9, bytes(7)), onnx_tensor("R", np.ones((1, 4, 1), np.float32))]), "tensor 'W' (1, 4, 2) needs 32 bytes of raw_data, holds 7"),
        (onnx_model([node("Relu", ["Z"], ["Y"], name="relu")], [value_info("X", [3, 1, 2])], [value_info("Y", [])]), "node 'relu' (Relu): reads tensor 'Z', which no node before it produces"),
        (onnx_model([node("Relu", ["X"], ["Y"], name="relu")], [value_info("X", [3, 1, 2])], [value_info("Y", [])]), "the ONNX graph has no LSTM, GRU or RNN node (its nodes: Relu 1)"),
        (onnx_model([node("Relu", ["X"], ["Y"], name="relu")], [value_info("X", [])], [value_info("Y", [])]), "graph input 'X' is a scalar or has no shape"),
        (field(1, 8) + field(2, "x"), "ONNX ModelProto without a graph"),
    ],
    ids=["truncated", "huge-tensor", "short-raw-data", "dangling-input", "no-recurrent-node", "scalar-input", "no-graph"],
)
def test_malformed_onnx(tmp_path, data, message):
    path = _onnx(tmp_path, data)
    fails("inspect", path, contains=[str(path), message])


def test_onnx_expand_to_a_huge_shape_is_capped(tmp_path):
    """An Expand whose target shape is a constant of 2^40 elements: refused when run, before allocating."""
    r = np.random.default_rng(0)
    inits = [onnx_tensor("W", r.normal(size=(1, 12, 2)).astype(np.float32)), onnx_tensor("R", r.normal(size=(1, 12, 3)).astype(np.float32)), onnx_tensor("shape", np.array([1 << 20, 1 << 20, 3], np.int64))]
    nodes = [node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], name="lstm", hidden_size=3), node("Expand", ["Y_h", "shape"], ["Z"], name="expand")]
    path = _onnx(tmp_path, onnx_model(nodes, [value_info("X", ["t", "b", 2])], [value_info("Z", [])], inits))
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 2), np.float32))
    fails("run", path, "--input", tmp_path / "x.npy", contains=["node 'expand' (Expand): 3298534883328 elements one operator computes is over lstmctl's budget of 2**26"])


def test_onnx_unknown_op_is_opaque_and_run_stops_there(tmp_path):
    r = np.random.default_rng(0)
    inits = [onnx_tensor("W", r.normal(size=(1, 12, 2)).astype(np.float32)), onnx_tensor("R", r.normal(size=(1, 12, 3)).astype(np.float32))]
    nodes = [node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], name="lstm", hidden_size=3), node("Hardmax", ["Y_h"], ["Z"], name="hardmax")]
    path = _onnx(tmp_path, onnx_model(nodes, [value_info("X", ["t", "b", 2])], [value_info("Z", [])], inits))
    from test_hostile import cli

    result = cli("inspect", path, "--format", "json")
    assert result.exit_code == 0
    assert [f["kind"] for f in json.loads(result.stdout)["layers"]] == ["layer", "layer", "recurrent", "opaque"]  # X, its time-major Transpose, the node, Hardmax
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 2), np.float32))
    fails("run", path, "--input", tmp_path / "x.npy", contains=["layer 'hardmax' (Hardmax) is not supported by run"])


def test_fixture_files_are_not_truncation_tolerant(tmp_path):
    """Every committed port fixture cut short fails with one line, whatever the cut."""
    for name in ("lstm2_bidir.pt", "gru_legacy.pt", "rnn_relu.safetensors", "lstm2_bidir.onnx"):
        data = (PORTS / name).read_bytes()
        for cut in (len(data) // 3, len(data) - 3):
            path = tmp_path / f"cut-{cut}-{name}"
            path.write_bytes(data[:cut])
            fails("inspect", path, contains=[str(path)])


def test_the_protobuf_writer_matches_onnx_files():
    """The tests' writer encodes fields as onnx does: the fixture's first field, ir_version, byte for byte."""
    data = (PORTS / "rnn_reverse.onnx").read_bytes()
    assert data.startswith(field(1, 8)) and io.BytesIO(data).read(2) == b"\x08\x08"
