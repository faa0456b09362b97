"""The browser tier's own checks, on hand-written pages: one that follows the report's element
contract passes them, and one that logs errors and reaches for the network is caught."""

import pytest

from . import checks

GOOD = """<!doctype html><html><head><meta charset="utf-8"><title>contract page</title>
<style>
body { font: 14px sans-serif; margin: 0 20px; }
section.layer { min-height: 700px; border-top: 2px solid #888; }
#tooltip { position: fixed; display: none; background: #ffd; border: 1px solid #000; padding: 2px; }
[data-sample="1"] { display: none; }
</style></head><body>
<h1>contract page</h1>
<svg id="graph" width="600" height="120">
  <g class="node" data-target="layer-input"><rect x="10" y="30" width="120" height="50" fill="#ccc"/><text x="20" y="60">input</text></g>
  <g class="node recurrent" data-target="layer-lstm"><rect x="200" y="30" width="120" height="50" fill="#9cf"/><text x="210" y="60">lstm</text></g>
  <g class="node" data-target="layer-dense"><rect x="390" y="30" width="120" height="50" fill="#ccc"/><text x="400" y="60">dense</text></g>
</svg>
<select id="sample"><option value="0">sample 0</option><option value="1">sample 1</option></select>
<section id="layer-lstm" class="layer"><h2>lstm</h2>
  <div data-sample="0"><svg class="heatmap" width="200" height="40">
    <rect class="cell" x="0" y="0" width="40" height="40" fill="#f00" data-step="0" data-unit="0" data-value="0.125"/>
    <rect class="cell" x="40" y="0" width="40" height="40" fill="#00f" data-step="1" data-unit="0" data-value="-0.5"/>
  </svg></div>
  <div data-sample="1"><svg class="heatmap" width="200" height="40">
    <rect class="cell" x="0" y="0" width="40" height="40" fill="#0f0" data-step="0" data-unit="0" data-value="0.75"/>
  </svg></div>
</section>
<section id="outputs"><h2>outputs</h2><p>""" + "output text " * 400 + """</p></section>
<section id="facts"><h2>facts</h2></section>
<div id="tooltip"></div>
<script>
for (const n of document.querySelectorAll('svg#graph g.node')) n.addEventListener('click', () => {
  const s = document.getElementById(n.dataset.target);
  if (s) { location.hash = n.dataset.target; s.scrollIntoView(); }
});
const tip = document.getElementById('tooltip');
for (const c of document.querySelectorAll('rect.cell')) {
  c.addEventListener('mouseover', e => {
    tip.textContent = `step ${c.dataset.step}, unit ${c.dataset.unit}: ${c.dataset.value}`;
    tip.style.left = (e.clientX + 10) + 'px'; tip.style.top = (e.clientY + 10) + 'px'; tip.style.display = 'block';
  });
  c.addEventListener('mouseout', () => { tip.style.display = 'none'; });
}
document.getElementById('sample').addEventListener('change', e => {
  for (const b of document.querySelectorAll('[data-sample]')) b.style.display = b.dataset.sample === e.target.value ? 'block' : 'none';
});
</script></body></html>
"""

BAD = """<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="http://127.0.0.1:1/x.css"></head>
<body><p>bad</p><script>
console.error('boom');
fetch('http://127.0.0.1:1/data.json').catch(() => {});
setTimeout(() => { throw new Error('uncaught'); }, 0);
</script></body></html>
"""


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "contract.html"
    path.write_text(GOOD, encoding="utf-8")
    return path


def test_contract_page_passes_every_check(page, good, tmp_path):
    checks.open_report(page, good)
    facts = checks.check_contract(page)
    assert facts["recurrent"] == ["layer-lstm"] and facts["samples"] == 2
    checks.click_node_goes_to_section(page, "layer-lstm")
    tip = checks.hover_cell_shows_value(page)
    assert tip["tooltip"] == "step 0, unit 0: 0.125"
    checks.sample_selector_switches(page)
    checks.assert_clean(page, good)


def test_errors_and_network_are_caught(page, tmp_path):
    path = tmp_path / "bad.html"
    path.write_text(BAD, encoding="utf-8")
    checks.open_report(page, path)
    with pytest.raises(AssertionError) as caught:
        checks.assert_clean(page, path)
    text = str(caught.value)
    assert "console.error: boom" in text
    assert "uncaught exception" in text and "Error: uncaught" in text
    assert "network request: http://127.0.0.1:1/x.css" in text
    assert "network request: http://127.0.0.1:1/data.json" in text


def test_missing_behaviour_is_caught(page, tmp_path):
    path = tmp_path / "inert.html"
    path.write_text(GOOD.split("<script>")[0] + "</body></html>", encoding="utf-8")
    checks.open_report(page, path)
    with pytest.raises(AssertionError, match="did not bring its section into view"):
        checks.click_node_goes_to_section(page, "layer-lstm")
    with pytest.raises(AssertionError, match="did not show its value"):
        checks.hover_cell_shows_value(page)
