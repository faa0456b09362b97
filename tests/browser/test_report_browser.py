"""`lstmctl report` pages in a real headless Chromium, driven over the DevTools protocol.

For each sample the CLI writes the page, Chromium opens it from file://, and the tests check what
a person would see: no console error or exception, no request beyond the page itself, a real
screenshot, a click on a recurrent layer in the graph that goes to its section, a hover on a
heatmap cell that shows its value, and the sample selector. LSTMCTL_SCREENSHOTS=1 writes the
screenshots to docs/report_<sample>.png for the README (else they go to a temporary folder).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import checks

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_models"
MODELS = ["k3_lstm_dense.keras", "k3_encdec.keras"]
# An input with 3 samples per model, for the sample selector when the default page has one.
MULTI_SAMPLE_INPUT = {
    "k3_lstm_dense.keras": ["--input", str(SAMPLES / "k3_lstm_dense.input.npy")],
    "k3_encdec.keras": ["--input", f"encoder_input={SAMPLES / 'k3_encdec.encoder_input.npy'}",
                        "--input", f"decoder_input={SAMPLES / 'k3_encdec.decoder_input.npy'}"],
}


def make_report(model: str, out: Path, *extra: str) -> Path:
    cmd = [sys.executable, "-m", "lstmctl", "report", f"sample_models/{model}", "-o", str(out), *extra]  # relative: the page shows the path
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{' '.join(cmd)} exited {run.returncode}:\n{run.stderr[-3000:]}"
    assert out.is_file() and out.stat().st_size > 0, f"{out} was not written"
    return out


@pytest.fixture(scope="module", params=MODELS)
def report(request, tmp_path_factory, browser):
    """The page `lstmctl report` writes for one sample model (made once per model)."""
    model = request.param
    out = tmp_path_factory.mktemp(Path(model).stem) / "report.html"
    return model, make_report(model, out)


def test_loads_clean_and_screenshot(page, report, tmp_path):
    model, html = report
    checks.open_report(page, html)
    checks.check_contract(page)
    name = f"report_{Path(model).stem}.png"
    out = ROOT / "docs" / name if os.environ.get("LSTMCTL_SCREENSHOTS") == "1" else tmp_path / name
    checks.check_screenshot(page, out)
    checks.assert_clean(page, html)


def test_graph_node_click_goes_to_section(page, report, tmp_path):
    model, html = report
    checks.open_report(page, html)
    facts = checks.check_contract(page)
    for target in facts["recurrent"]:
        checks.click_node_goes_to_section(page, target)
    # where the last click landed: a recurrent layer's section, as a reader sees it
    name = f"report_{Path(model).stem}_section.png"
    out = ROOT / "docs" / name if os.environ.get("LSTMCTL_SCREENSHOTS") == "1" else tmp_path / name
    checks.check_screenshot(page, out)
    checks.assert_clean(page, html)


def test_heatmap_hover_shows_value(page, report):
    model, html = report
    checks.open_report(page, html)
    checks.check_contract(page)
    shown = checks.hover_cell_shows_value(page)
    assert "step" in shown["tooltip"] and shown["cell"]["value"] in shown["tooltip"]
    checks.assert_clean(page, html)


def test_sample_selector(page, report, tmp_path):
    model, html = report
    checks.open_report(page, html)
    if checks.check_contract(page)["samples"] < 2:
        html = make_report(model, tmp_path / "report.html", *MULTI_SAMPLE_INPUT[model])
        checks.open_report(page, html)
        if checks.check_contract(page)["samples"] < 2:
            pytest.skip(f"the page for {model} shows one sample even for a 3-sample input")
    checks.sample_selector_switches(page)
    checks.assert_clean(page, html)
