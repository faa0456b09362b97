"""`lstmctl report`: one self-contained HTML page, checked without a browser (stdlib html.parser):
the element contract, numbers equal to trace and run, no network reference, names escaped."""

import json
import re
import zipfile
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from pathlib import Path

from conftest import SAMPLES, sample
from lstmctl.render import report
from lstmctl.cli import main
from lstmctl.render.report import build_report, render_html
from lstmctl.runner import random_inputs
from lstmctl.analysis.trace import trace

X = sample("k3_lstm_dense.input.npy")
HOSTILE = "</script><img src=x onerror=alert(1)>"


class Page(HTMLParser):
    """Every element's tag and attributes in order, ids, text, and each rect.cell with the
    attributes of the svg.heatmap it sits in."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements, self.ids, self.text, self.cells, self.values = [], {}, [], [], []
        self._svg = None
        self._td = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        a["class"] = a.get("class") or ""
        self.elements.append((tag, a))
        if "id" in a:
            assert a["id"] not in self.ids, f"duplicate id {a['id']!r}"
            self.ids[a["id"]] = (tag, a)
        if tag == "svg" and "heatmap" in a["class"].split():
            self._svg = a
        if tag == "rect" and a["class"] == "cell":
            self.cells.append((self._svg, a))
        if tag == "td" and "value" in a["class"].split():
            self._td = a

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg = None

    def handle_data(self, data):
        self.text.append(data)
        if self._td is not None:
            self.values.append((self._td, data))
            self._td = None

    def having(self, tag=None, cls=None):
        return [a for t, a in self.elements if (tag is None or t == tag) and (cls is None or set(cls.split()) <= set(a["class"].split()))]


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def page_of(tmp_path, model, *args):
    """The HTML page and the JSON data of `lstmctl report MODEL ARGS`."""
    out, js = tmp_path / "report.html", tmp_path / "report.json"
    result = invoke("report", model, *args, "-o", out)
    assert result.exit_code == 0, result.output
    result = invoke("report", model, *args, "-o", js, "--format", "json")
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8"), json.loads(js.read_text(encoding="utf-8"))


def no_network(text):
    assert "http://" not in text and "https://" not in text and "//" not in text
    assert not re.search(r"<link\b", text, re.I)
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)
    assert not re.search(r"\b(src|href|action|srcset)\s*=\s*(?![\"']?#)", text, re.I), "a reference that is not an in-page anchor"
    for tag, attrs in Page(text).elements:
        for key in ("src", "href", "xlink:href", "action", "formaction", "srcset", "poster", "data", "background"):
            assert key not in attrs or attrs[key].startswith("#"), (tag, key, attrs[key])
    assert not re.search(r"@import|url\((?!#)", text, re.I)
    assert "default-src 'none'" in text  # and the page forbids any load itself


def contract(page: Page, data: dict):
    """The element contract the browser test relies on."""
    assert page.ids["graph"][0] == "svg"
    assert page.ids["outputs"][0] == "section" and page.ids["facts"][0] == "section"
    assert page.ids["tooltip"][0] == "div" and page.ids["sample"][0] == "select"
    nodes = page.having("g", "node")
    assert [n["data-target"] for n in nodes] == [n["target"] for n in data["graph"]["nodes"]]
    for node, facts in zip(nodes, data["graph"]["nodes"]):
        assert node["data-target"] in page.ids, f"node {facts['name']!r} targets nothing"
        assert ("recurrent" in node["class"].split()) == facts["recurrent"]
    sections = page.having("section", "layer")
    assert [s["id"] for s in sections] == [s["id"] for s in data["layers"]]
    for layer in data["layers"]:
        for part in layer["parts"]:
            assert part["id"] in page.ids
    assert page.having("table", "gates")
    assert page.having("table", "summary sortable")
    assert page.having("svg", "heatmap") and page.cells
    for svg, cell in page.cells:
        assert svg is not None and {"data-step", "data-unit", "data-value"} <= set(cell)
        assert re.fullmatch(r"-?\d+\.\d{6}|nan|-?inf", cell["data-value"])
    shown = data["samples"]["shown"]
    assert [o.get("value") for o in page.having("option")] == [str(k) for k in shown]
    blocks = [a for t, a in page.elements if "data-sample" in a]
    assert {b["data-sample"] for b in blocks} == {str(k) for k in shown}
    assert all(("hidden" in b) == (b["data-sample"] != str(data["samples"]["selected"])) for b in blocks)
    assert page.ids["legend"]


def check_traces(page: Page, data: dict, model, x):
    """Every heatmap cell equals trace(...) at 6 decimals (these samples are small: no bin is
    averaged), and the JSON holds the same numbers."""
    by_svg = {}
    for svg, cell in page.cells:
        by_svg.setdefault((svg["data-key"], int(svg["data-of-sample"])), {})[int(cell["data-step"]), int(cell["data-unit"])] = cell["data-value"]
    checked = 0
    for layer in data["layers"]:
        for part in layer["parts"]:
            for s in part["samples"]:
                assert "error" not in s, s
                tr = trace(model, x, s["layer"], sample=s["sample"])
                for h in s["heatmaps"]:
                    assert not h["grid"]["binned"]
                    want = tr.arrays[h["key"]]
                    got = by_svg[h["key"], s["sample"]]
                    assert len(got) == want.size
                    for (step, unit), text in got.items():
                        assert text == f"{float(want[step, unit]):.6f}"
                        assert text == f"{h['grid']['values'][unit][step]:.6f}"  # the JSON: rows are units
                    checked += 1
                summary = tr.summary(s["direction"])
                assert [r["unit"] for r in s["summary"]] == [r["unit"] for r in summary]
                np.testing.assert_allclose([r.get("mean_f", r.get("mean_z", 0)) for r in s["summary"]], [r.get("mean_f", r.get("mean_z", 0)) for r in summary])
    assert checked


def check_outputs(page: Page, data: dict, model, x):
    result = model.run(x)
    seen = 0
    for td, text in page.values:
        index = tuple(int(i) for i in td["data-index"].split(",") if i != "")
        want = np.asarray(result[td["data-key"]])[int(td["data-batch-index"])][index]
        assert text == f"{float(want):.6f}", td
        seen += 1
    items = data["outputs"] + data["states"]
    assert seen == sum(len(item["rows"]) * len(item["index"]) for item in items) > 0
    for item in items:
        for row in item["rows"]:
            for v, index in zip(row["values"], item["index"]):
                assert f"{v:.6f}" == f"{float(result[item['key']][row['sample']][tuple(index)]):.6f}"
    keys = [item["key"] for item in data["outputs"]]
    assert keys == [k for k in result if k == "output" or k.startswith("output_")]


CASES = [
    pytest.param("k3_lstm_dense.keras", (X,), id="k3_lstm_dense"),
    pytest.param("k3_encdec.keras", (), id="k3_encdec"),
    pytest.param("k2_bidir.h5", (), id="k2_bidir"),
    pytest.param("tf/tf1_multi_rnn_cell", (), id="tf1_multi_rnn_cell"),
    pytest.param("layers/k3_rnn_stack3.keras", (), id="k3_rnn_stack3"),
]


@pytest.mark.parametrize("name, given", CASES)
def test_report_page(tmp_path, name, given):
    model = lstmctl.load(sample(name))
    args = [a for g in given for a in ("--input", g)]
    text, data = page_of(tmp_path, sample(name), *args)
    x = np.load(given[0]) if given else random_inputs(model, seed=0)
    page = Page(text)
    no_network(text)
    contract(page, data)
    check_traces(page, data, model, x)
    check_outputs(page, data, model, x)
    assert data["input"]["given"] == bool(given)
    facts = page.ids["facts"]
    assert facts and ("seeded random" in "".join(page.text)) != bool(given)
    assert len(text.encode()) < 1_000_000
    assert build_report(model, x, sample=0)["layers"] == data["layers"]  # the library gives what the CLI writes


def test_encdec_state_edges(tmp_path):
    text, data = page_of(tmp_path, sample("k3_encdec.keras"))
    page = Page(text)
    states = page.having("path", "edge state")
    assert [(p["data-source"], p["data-target-layer"]) for p in states] == [("encoder", "decoder")] * 2
    assert "initial_state[0] = encoder h_T" in page.text and "initial_state[1] = encoder c_T" in page.text
    assert len(page.having("path", "edge")) == len(data["graph"]["edges"]) == 5
    # the decoder's trace starts from the encoder's states
    part = data["layers"][1]["parts"][0]
    encoder_h = data["states"][0]
    assert encoder_h["key"] == "encoder/h"
    np.testing.assert_allclose(part["samples"][0]["initial"]["h0"], encoder_h["rows"][0]["values"], atol=1e-6)


def test_bidirectional_and_stack_sections(tmp_path):
    page = Page(page_of(tmp_path, sample("k2_bidir.h5"))[0])
    for layer in ("bidirectional", "bidirectional_1"):
        for d in ("forward", "backward"):
            assert page.ids[f"layer-{layer}-{d}"][0] == "section"
            assert any(svg["data-key"].startswith(f"{layer}/{d}/") for svg, _ in page.cells)
    page = Page(page_of(tmp_path, sample("tf/tf1_multi_rnn_cell"))[0])
    for k in range(3):
        assert page.ids[f"layer-rnn-cell_{k}"][0] == "section"
        assert {svg["data-key"] for svg, _ in page.cells if svg["data-key"].startswith(f"rnn/cell_{k}/")} == {f"rnn/cell_{k}/{n}" for n in ("gate_i", "gate_f", "gate_c", "gate_o", "c", "h")}


def test_samples_beyond_four(tmp_path):
    x = np.concatenate([np.load(X)] * 3)  # 9 samples
    np.save(tmp_path / "x.npy", x)
    text, data = page_of(tmp_path, sample("k3_lstm_dense.keras"), "--input", tmp_path / "x.npy", "--sample", "7")
    page = Page(text)
    assert data["samples"] == {"batch": 9, "shown": [0, 1, 2, 3, 7], "selected": 7, "max": 4}
    assert "the input holds 9 samples" in text
    contract(page, data)
    check_traces(page, data, lstmctl.load(sample("k3_lstm_dense.keras")), x)
    result = invoke("report", sample("k3_lstm_dense.keras"), "--input", tmp_path / "x.npy", "--sample", "9", "-o", tmp_path / "bad.html")
    assert result.exit_code == 2 and "out of range" in result.stderr and not (tmp_path / "bad.html").exists()


def test_layer_option_and_stdout(tmp_path):
    result = invoke("report", sample("k3_encdec.keras"), "--layer", "decoder", "-o", "-")
    assert result.exit_code == 0
    page = Page(result.stdout)
    assert [s["id"] for s in page.having("section", "layer")] == ["layer-decoder"]
    assert page.ids["layer-encoder"][0] == "tr"  # every node still targets something
    assert all(n["data-target"] in page.ids for n in page.having("g", "node"))
    result = invoke("report", sample("k3_encdec.keras"), "--layer", "time_distributed", "-o", "-")
    assert result.exit_code == 2 and "not a recurrent layer" in result.stderr
    assert invoke("report", sample("k3_encdec.keras")).exit_code == 2  # -o is required


def hostile_model(tmp_path):
    dst = tmp_path / "hostile.keras"
    with zipfile.ZipFile(sample("k3_lstm_dense.keras")) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][1]["config"]["name"] = HOSTILE
                config["config"]["layers"][2]["config"]["name"] = 'd&<b>"x"</b>'
                config["config"]["name"] = "<svg onload=alert(2)>"
                data = json.dumps(config).encode()
            zout.writestr(item.filename, data)
    return dst


def test_hostile_names_are_escaped(tmp_path):
    model = hostile_model(tmp_path)
    text, data = page_of(tmp_path, model, "--input", X)
    assert data["layers"][0]["name"] == HOSTILE
    page = Page(text)
    contract(page, data)
    # only the page's own elements: no img, no second svg handler, exactly two scripts
    assert not page.having("img") and not page.having("b")
    assert not any(k.startswith("on") for _, a in page.elements for k in a)
    assert text.count("<script") == 2 and text.count("</script>") == 2
    assert HOSTILE not in text and "<img" not in text and "<svg onload" not in text
    assert html_escaped(HOSTILE) in text and "d&amp;&lt;b&gt;&quot;x&quot;&lt;/b&gt;" in text
    payload = text.split('<script type="application/json" id="report-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in payload and ">" not in payload and "&" not in payload
    assert json.loads(payload)["layers"] == [HOSTILE]
    assert HOSTILE in "".join(page.text)  # shown as text
    assert page.having("section", "layer")[0]["id"] == "layer-script-img-src-x-onerror-alert-1"
    check_traces(page, data, lstmctl.load(str(model)), np.load(X))
    no_network(text.replace("src=x", ""))  # the name itself is text; nothing else refers anywhere


def html_escaped(s):
    import html

    return html.escape(s, quote=True)


def test_render_html_escapes_every_string():
    model = lstmctl.load(sample("k3_lstm_dense.keras"))
    data = build_report(model, np.load(X))
    data["facts"]["notes"].append("<b>note</b>")
    data["layers"][0]["notes"].append("</section><script>alert(1)</script>")
    data["layers"][0]["parts"][0]["cell"]["equations"]["step"].append("</pre><i>x</i>")
    text = render_html(data)
    page = Page(text)
    assert not page.having("b") and not page.having("i") and text.count("<script") == 2
    assert "&lt;/section&gt;&lt;script&gt;" in text


def test_a_512_unit_page_stays_small(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "big.npz", kernel=rng.normal(0, 0.1, (16, 2048)).astype("f4"), recurrent_kernel=rng.normal(0, 0.05, (512, 2048)).astype("f4"), bias=np.zeros(2048, "f4"))
    for batch in (1, 4):
        np.save(tmp_path / "x.npy", rng.normal(size=(batch, 20, 16)).astype("f4"))
        out = tmp_path / f"big{batch}.html"
        result = invoke("report", tmp_path / "big.npz", "--convention", "keras", "--input", tmp_path / "x.npy", "-o", out)
        assert result.exit_code == 0, result.output
        text = out.read_text(encoding="utf-8")
        assert len(text.encode()) < 5_000_000
        page = Page(text)
        assert page.having("svg", "heatmap") and "512 units shown as" in text
        no_network(text)


def _every_sample():
    import glob
    import os

    files = [m["file"] for m in json.loads((SAMPLES / "manifest.json").read_text()) if m["format"] != "hdf5-weights" and not m["file"].endswith(".weights.h5")]
    for d in sorted(glob.glob(str(SAMPLES / "*" / "manifest.json"))):
        folder = os.path.basename(os.path.dirname(d))
        files += [f"{folder}/{m['file']}" for m in json.loads(Path(d).read_text()) if not m.get("weights_only") and m["format"] != "hdf5-weights" and not m["file"].endswith(".weights.h5")]
    return files


@pytest.mark.parametrize("name", _every_sample())
def test_a_page_for_every_sample_model(name):
    """Every full sample model, on the input Keras was given: a page whose outputs are run's."""
    with np.load(SAMPLES / f"{name}.expected.npz") as exp:
        x = {k.split("/", 1)[1]: exp[k] for k in exp if k.startswith("input/")}
    model = lstmctl.load(SAMPLES / name)
    data = report.build_report(model, x)
    page = report.render_html(data)
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page and "https://" not in page
    result = model.run(x)
    assert data["outputs"]
    for item in data["outputs"]:
        first = item["rows"][0]
        want = np.asarray(result[item["key"]], dtype=np.float64).reshape(np.asarray(result[item["key"]]).shape or (1,))[first["sample"]]
        got = [want[tuple(i)] for i in item["index"]] if item["index"] and item["index"][0] else [want]
        np.testing.assert_allclose(np.asarray(first["values"], dtype=np.float64), np.asarray(got, dtype=np.float64).ravel(), rtol=1e-6, atol=1e-6, err_msg=item["key"])
