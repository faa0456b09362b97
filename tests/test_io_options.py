"""Issue 13 (7, 8, 10): stdin sniffing, JSON one-sample inputs, CSV of sequences, --expect --map and
one-sample references, `run --outdir`, and `lstmctl compare`."""

import io
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from lstmctl.cli import main
from conftest import expected, keras_inputs, keras_results, sample

LSTM = "k3_lstm_dense.keras"
ENCDEC = "k3_encdec.keras"
X = sample("k3_lstm_dense.input.npy")


def invoke(*args, **kw):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kw)
    assert "Traceback" not in result.output
    return result


def one_line(result, code):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def ours():
    return lstmctl.load(sample(LSTM)).run(np.load(X))


def _csv_text(x2d, header=True):
    head = ",".join(f"f{j}" for j in range(x2d.shape[1])) + "\n" if header else ""
    return head + "\n".join(",".join(repr(float(v)) for v in row) for row in x2d) + "\n"


# ---------------------------------------------------------------------------------------------
# 1. --input - sniffs npy / JSON / CSV


@pytest.mark.parametrize("header", [True, False])
def test_stdin_csv_is_read_as_csv(ours, header):
    x = np.load(X)
    one = lstmctl.load(sample(LSTM)).run(x[1:2])
    result = invoke("run", sample(LSTM), "--input", "-", "--key", "lstm/h", "--format", "json", input=_csv_text(x[1], header))
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(json.loads(result.stdout)["lstm/h"], one["lstm/h"], atol=1e-6)
    np.testing.assert_allclose(json.loads(result.stdout)["lstm/h"], expected(LSTM)["lstm/h"][1:2], atol=1e-5)


def test_stdin_json_and_npy_still_work(ours):
    x = np.load(X)
    for data in ("  \n" + json.dumps(x.tolist())).encode(), _npy_bytes(x):
        result = invoke("run", sample(LSTM), "--input", "-", "--key", "output", "--format", "json", input=data)
        assert result.exit_code == 0, result.output
        np.testing.assert_allclose(json.loads(result.stdout)["output"], ours["output"], atol=1e-6)


def _npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def test_stdin_csv_errors_name_stdin():
    line = one_line(invoke("run", sample(LSTM), "--input", "-", input="1,2,3,4\n1,2,3,x\n"), 3)
    assert "stdin" in line and "not a number" in line
    line = one_line(invoke("run", sample(LSTM), "--input", "-", input="{\"a\": 1}"), 3)
    assert "stdin" in line and "object" in line


# ---------------------------------------------------------------------------------------------
# 2. a JSON (time, features) array is one sample, as a CSV is


def test_json_rank2_is_one_sample_like_csv(tmp_path):
    x = np.load(X)
    (tmp_path / "x.json").write_text(json.dumps(x[2].tolist()))
    (tmp_path / "x.csv").write_text(_csv_text(x[2]))
    got = {}
    for name in ("x.json", "x.csv"):
        result = invoke("run", sample(LSTM), "--input", tmp_path / name, "--format", "npz")
        assert result.exit_code == 0, result.output
        with np.load(io.BytesIO(result.stdout_bytes)) as data:
            got[name] = dict(data)
    assert got["x.json"]["lstm/sequence"].shape == (1, 6, 5)
    for key in got["x.csv"]:
        np.testing.assert_allclose(got["x.json"][key], got["x.csv"][key], atol=1e-7)
    np.testing.assert_allclose(got["x.json"]["output"], expected(LSTM)["output"][2:3], atol=1e-5)


def test_json_rank2_named_input_and_direct(tmp_path):
    exp = expected(ENCDEC)
    xs = keras_inputs(exp)
    args = []
    for name, array in xs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(array[0].tolist()))
        args += ["--input", f"{name}={tmp_path / name}.json"]
    result = invoke("run", sample(ENCDEC), *args, "--key", "decoder/sequence", "--format", "npy", "-o", tmp_path / "s.npy")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), exp["decoder/sequence"][:1], atol=1e-5)
    (tmp_path / "d.json").write_text(json.dumps(np.load(X)[0].tolist()))
    result = invoke("run", sample(LSTM), "--layer", "lstm", "--direct", "--input", tmp_path / "d.json", "--key", "lstm/h", "--format", "json")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(json.loads(result.stdout)["lstm/h"], expected(LSTM)["lstm/h"][:1], atol=1e-5)


def test_json_rank2_initial_state_is_not_batched(tmp_path):
    """Only model inputs are batched: an initial state (batch, units) in JSON keeps its shape."""
    x = np.load(X)
    (tmp_path / "h.json").write_text(json.dumps(np.zeros((3, 5)).tolist()))
    (tmp_path / "c.json").write_text(json.dumps(np.zeros((3, 5)).tolist()))
    result = invoke("run", sample(LSTM), "--input", X, "--layer", "lstm", "--initial-state", tmp_path / "h.json", "--initial-state", tmp_path / "c.json",
                    "--key", "lstm/h", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(json.loads(result.stdout)["lstm/h"], expected(LSTM)["lstm/h"], atol=1e-5)
    assert x.shape[0] == 3


# ---------------------------------------------------------------------------------------------
# 3. CSV of a 3-D key: header and (sample, time) columns


def test_csv_of_sequence_has_header_and_index_columns(ours, tmp_path):
    out = tmp_path / "s.csv"
    assert invoke("run", sample(LSTM), "--input", X, "--key", "lstm/sequence", "--format", "csv", "-o", out).exit_code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "sample,time," + ",".join(f"lstm/sequence[{j}]" for j in range(5))
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    seq = ours["lstm/sequence"]
    assert table.shape == (3 * 6, 2 + 5)
    np.testing.assert_array_equal(table[:, 0], np.repeat(np.arange(3), 6))
    np.testing.assert_array_equal(table[:, 1], np.tile(np.arange(6), 3))
    np.testing.assert_allclose(table[:, 2:], seq.reshape(-1, 5), atol=1e-7)
    np.testing.assert_allclose(table[:, 2:].reshape(3, 6, 5), expected(LSTM)["lstm/sequence"], atol=1e-5)


def test_csv_of_2d_key_has_a_header_that_pandas_reads(ours, tmp_path):
    """A header row names each column (`lstm/h[j]`), a row per sample; --no-header gives the bare
    matrix that np.loadtxt reads."""
    out = tmp_path / "h.csv"
    assert invoke("run", sample(LSTM), "--input", X, "--key", "lstm/h", "--format", "csv", "-o", out).exit_code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(f"lstm/h[{j}]" for j in range(5)) and len(lines) == 4
    np.testing.assert_allclose(np.loadtxt(out, delimiter=",", skiprows=1), ours["lstm/h"], atol=1e-7)
    np.testing.assert_allclose(np.loadtxt(out, delimiter=",", skiprows=1), expected(LSTM)["lstm/h"], atol=1e-5)
    bare = tmp_path / "bare.csv"
    assert invoke("run", sample(LSTM), "--input", X, "--key", "lstm/h", "--no-header", "-o", bare).exit_code == 0
    np.testing.assert_allclose(np.loadtxt(bare, delimiter=","), ours["lstm/h"], atol=1e-7)
    seq = tmp_path / "seq.csv"
    assert invoke("run", sample(LSTM), "--input", X, "--key", "lstm/sequence", "--no-header", "-o", seq).exit_code == 0
    table = np.loadtxt(seq, delimiter=",")
    assert table.shape == (18, 7) and table[1, :2].tolist() == [0, 1]
    refused = invoke("run", sample(LSTM), "--input", X, "--no-header", "--format", "json")
    assert refused.exit_code == 2 and "--no-header applies to --format csv" in refused.output


# ---------------------------------------------------------------------------------------------
# 4. --expect with --map, and one-sample references


def test_expect_with_map_of_a_users_own_names(tmp_path):
    exp = expected(LSTM)
    np.savez(tmp_path / "ref.npz", seq=exp["lstm/sequence"], h=exp["lstm/h"], c=exp["lstm/c"])
    args = ["run", sample(LSTM), "--input", X, "--expect", tmp_path / "ref.npz"]
    maps = ["--map", "seq=lstm/sequence", "--map", "h=lstm/h", "--map", "c=lstm/c"]
    result = invoke(*args, *maps, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["match"] and [(k["reference_key"], k["result_key"]) for k in doc["keys"]] == [("seq", "lstm/sequence"), ("h", "lstm/h"), ("c", "lstm/c")]
    # without the mapping the user's names are not in our result
    line = one_line(invoke(*args), 1)
    assert "3 of 3 keys differ" in line and "seq" in line
    # a tolerance may name either side's key
    assert invoke(*args, *maps, "--atol", "h=1e-3", "--atol", "lstm/c=1e-3").exit_code == 0
    # a mapping naming a key that does not exist: one line naming it
    line = one_line(invoke(*args, "--map", "seq=lstm/nope"), 2)
    assert "lstm/nope" in line
    line = one_line(invoke(*args, "--map", "zzz=lstm/h"), 2)
    assert "zzz" in line
    assert one_line(invoke(*args, "--map", "seq"), 2).count("seq") >= 1


def test_expect_map_reports_a_difference_naming_the_key(tmp_path):
    exp = expected(LSTM)
    np.savez(tmp_path / "ref.npz", h=exp["lstm/h"] + 0.1)
    line = one_line(invoke("run", sample(LSTM), "--input", X, "--expect", tmp_path / "ref.npz", "--map", "h=lstm/h"), 1)
    assert "1 of 1 keys differ" in line and "h=lstm/h" in line


def test_expect_one_sample_reference_without_batch_axis(tmp_path):
    x = np.load(X)[:1]
    np.save(tmp_path / "x.npy", x)
    one = lstmctl.load(sample(LSTM)).run(x)
    np.savez(tmp_path / "ref.npz", seq=one["lstm/sequence"][0], h=one["lstm/h"][0])
    result = invoke("run", sample(LSTM), "--input", tmp_path / "x.npy", "--expect", tmp_path / "ref.npz",
                    "--map", "seq=lstm/sequence", "--map", "h=lstm/h", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [k["shape"] for k in doc["keys"]] == [[6, 5], [5]] and all(k["note"] for k in doc["keys"])
    # a divergence is still located in time for a (time, units) reference
    bad = one["lstm/sequence"][0].copy()
    bad[4:] += 1.0
    np.savez(tmp_path / "bad.npz", seq=bad)
    result = invoke("run", sample(LSTM), "--input", tmp_path / "x.npy", "--expect", tmp_path / "bad.npz", "--map", "seq=lstm/sequence", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["keys"][0]["first_divergent_step"] == 4
    # with a batch of 3 a (time, units) reference is a shape mismatch, not silently sample 0
    np.savez(tmp_path / "one.npz", seq=one["lstm/sequence"][0])
    result = invoke("run", sample(LSTM), "--input", X, "--expect", tmp_path / "one.npz", "--map", "seq=lstm/sequence", "--format", "json")
    assert result.exit_code == 1 and "shape" in json.loads(result.stdout)["keys"][0]["problem"]


# ---------------------------------------------------------------------------------------------
# 5. run --outdir


def test_outdir_writes_one_npy_per_key(ours, tmp_path):
    out = tmp_path / "new" / "results"
    result = invoke("run", sample(LSTM), "--input", X, "--outdir", out)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out)) == sorted(k.replace("/", "__") + ".npy" for k in ours)
    for key in ours:
        np.testing.assert_array_equal(np.load(out / (key.replace("/", "__") + ".npy")), ours[key])
    np.testing.assert_allclose(np.load(out / "lstm__sequence.npy"), expected(LSTM)["lstm/sequence"], atol=1e-5)
    # --key selects; an existing folder is written into
    again = tmp_path / "sel"
    again.mkdir()
    assert invoke("run", sample(LSTM), "--input", X, "--key", "lstm/h", "--outdir", again).exit_code == 0
    assert os.listdir(again) == ["lstm__h.npy"]


def test_outdir_refusals_leave_nothing(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep")
    line = one_line(invoke("run", sample(LSTM), "--input", X, "--outdir", f), 3)
    assert str(f) in line and "not a directory" in line and f.read_text() == "keep"
    assert invoke("run", sample(LSTM), "--input", X, "--outdir", tmp_path / "d", "-o", tmp_path / "r.npz").exit_code == 2
    assert invoke("run", sample(LSTM), "--input", X, "--outdir", tmp_path / "d", "--format", "csv").exit_code == 2
    assert not (tmp_path / "d").exists() and not (tmp_path / "r.npz").exists()
    # a failing run (unknown key) writes nothing
    d = tmp_path / "e"
    failed = invoke("run", sample(LSTM), "--input", X, "--key", "nope", "--outdir", d)
    line = one_line(failed, failed.exit_code)
    assert failed.exit_code in (2, 3) and "nope" in line and (not d.exists() or not os.listdir(d))


def test_outdir_write_failure_leaves_no_partial_files(tmp_path, monkeypatch):
    from lstmctl.arrays import writers

    d = tmp_path / "out"
    calls = []

    def flaky(path, mode="r", *a, **kw):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return open(path, mode, *a, **kw)

    monkeypatch.setattr(writers, "open", flaky, raising=False)  # the third temporary file cannot be written
    line = one_line(invoke("run", sample(LSTM), "--input", X, "--outdir", d), 3)
    assert "No space left" in line
    assert os.listdir(d) == []


def test_outdir_streamed(ours, tmp_path):
    out = tmp_path / "s"
    assert invoke("run", sample(LSTM), "--input", X, "--chunk", "2", "--outdir", out).exit_code == 0
    assert sorted(os.listdir(out)) == sorted(k.replace("/", "__") + ".npy" for k in ours)
    for key in ours:
        np.testing.assert_allclose(np.load(out / (key.replace("/", "__") + ".npy")), ours[key], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# 6. lstmctl compare


def test_compare_two_result_files(tmp_path):
    r = tmp_path / "r.npz"
    assert invoke("run", sample(LSTM), "--input", X, "--format", "npz", "-o", r).exit_code == 0
    ref = tmp_path / "keras.npz"
    np.savez(ref, **keras_results(expected(LSTM)))
    result = invoke("compare", r, ref, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["match"] and {k["key"] for k in doc["keys"]} == {"output", "lstm/sequence", "lstm/h", "lstm/c"}
    assert all(k["max_abs"] < 1e-5 for k in doc["keys"])
    assert invoke("compare", r, ref).exit_code == 0


def test_compare_differs_tolerances_and_map(tmp_path):
    r = tmp_path / "r.npz"
    assert invoke("run", sample(LSTM), "--input", X, "--format", "npz", "-o", r).exit_code == 0
    with np.load(r) as data:
        got = dict(data)
    ref = tmp_path / "ref.npz"
    np.savez(ref, h=got["lstm/h"] + 1e-3, out=got["output"])
    args = ["compare", r, ref, "--map", "h=lstm/h", "--map", "out=output"]
    line = one_line(invoke(*args), 1)
    assert "1 of 2 keys differ" in line and "h=lstm/h" in line
    result = invoke(*args, "--format", "json")
    doc = {k["key"]: k for k in json.loads(result.stdout)["keys"]}
    assert doc["h=lstm/h"]["max_abs"] == pytest.approx(1e-3, rel=1e-3) and not doc["h=lstm/h"]["ok"] and doc["out=output"]["ok"]
    assert invoke(*args, "--atol", "h=2e-3").exit_code == 0
    assert invoke(*args, "--atol", "2e-3").exit_code == 0
    assert invoke(*args, "--rtol", "lstm/h=1").exit_code == 0


def test_compare_bad_files_exit_3(tmp_path):
    r = tmp_path / "r.npz"
    np.savez(r, output=np.zeros((2, 3)))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04garbage")
    line = one_line(invoke("compare", r, bad), 3)
    assert str(bad) in line
    line = one_line(invoke("compare", r, tmp_path / "missing.npz"), 3)
    assert "missing.npz" in line and "no such file" in line
    pickled = tmp_path / "p.npy"
    np.save(pickled, np.array([object()], dtype=object), allow_pickle=True)
    line = one_line(invoke("compare", pickled, r), 3)
    assert str(pickled) in line


def test_compare_library_function(tmp_path):
    from lstmctl.analysis.compare import compare_files

    np.savez(tmp_path / "a.npz", **{"lstm/h": np.ones((1, 5))})
    np.savez(tmp_path / "b.npz", h=np.ones(5))
    (report,) = compare_files(str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), mapping={"h": "lstm/h"})
    assert report.ok and report.key == "h=lstm/h" and report.max_abs == 0.0
