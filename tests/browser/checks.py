"""What the browser tier checks on a report page, written against the page's element contract:

  <svg id="graph"> with <g class="node" data-target="layer-SLUG"> per layer (recurrent ones also
  class "recurrent"); <section id="layer-SLUG" class="layer"> per recurrent layer; heatmaps
  <svg class="heatmap"> of <rect class="cell" data-step data-unit data-value>; one <div id="tooltip">
  showing "step S, unit U: V" on mouseover; <select id="sample"> switching blocks data-sample="k";
  <section id="outputs">, <section id="facts">.

Each check drives the page like a person (real mouse events through Input.dispatchMouseEvent) and
asserts what a person would see; the tests call them on `lstmctl report` pages, and
test_cdp_harness.py on a hand-written page that follows the contract.
"""

import json
import re
from pathlib import Path

from .cdp import Page, file_url, png_facts

# Element.checkVisibility: display:none on it or an ancestor, visibility:hidden, opacity:0.
VISIBLE = "(el => !!el && el.checkVisibility({opacityProperty: true, visibilityProperty: true}) && el.getClientRects().length > 0)"
CENTRE = "(r => ({x: r.left + r.width / 2, y: r.top + r.height / 2, w: r.width, h: r.height}))"


def allowed_data_prefixes(html: str) -> tuple[str, ...]:
    """data: URLs are fine only for inline images the page itself carries."""
    return tuple(sorted(set(re.findall(r"data:image/[a-z+.-]+", html))))


def open_report(page: Page, html_path: Path) -> None:
    page.navigate(file_url(html_path))


def assert_clean(page: Page, html_path: Path) -> None:
    problems = page.problems(allowed_data_prefixes(Path(html_path).read_text(encoding="utf-8")))
    assert not problems, "the page had problems:\n  " + "\n  ".join(problems)


def check_contract(page: Page) -> dict:
    facts = page.evaluate("""(() => {
        const q = s => document.querySelector(s), qa = s => [...document.querySelectorAll(s)];
        const nodes = qa('svg#graph g.node');
        return {
            graph: !!q('svg#graph'),
            nodes: nodes.map(n => n.dataset.target),
            recurrent: qa('svg#graph g.node.recurrent').map(n => n.dataset.target),
            sections: qa('section.layer').map(s => s.id),
            cells: qa('svg.heatmap rect.cell').length,
            tooltips: qa('#tooltip').length,
            outputs: !!q('section#outputs'),
            facts: !!q('section#facts'),
            samples: q('select#sample') ? q('select#sample').options.length : 0,
        };
    })()""")
    assert facts["graph"], "no <svg id=graph>"
    assert facts["nodes"], "the graph has no g.node"
    assert all(t and t.startswith("layer-") for t in facts["nodes"]), facts["nodes"]
    assert facts["recurrent"], "no g.node.recurrent in the graph"
    missing = [t for t in facts["recurrent"] if t not in facts["sections"]]
    assert not missing, f"recurrent graph nodes without a section.layer: {missing}"
    assert facts["cells"] > 0, "no svg.heatmap rect.cell"
    assert facts["tooltips"] == 1, f"{facts['tooltips']} #tooltip elements"
    assert facts["outputs"] and facts["facts"], "section#outputs or section#facts missing"
    return facts


def check_screenshot(page: Page, out: Path) -> dict:
    png = page.screenshot()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    facts = png_facts(png)
    assert facts["complete"], f"{out}: IDAT does not decode to the whole picture"
    assert facts["width"] >= 800, facts
    assert facts["distinct_rows"] > 20, f"{out} looks blank: {facts}"
    assert facts["bytes"] > 20_000, f"{out} is suspiciously small: {facts}"
    return facts


def click_node_goes_to_section(page: Page, target: str) -> None:
    t = json.dumps(target)
    sel = json.dumps(f'svg#graph g.node[data-target="{target}"]')
    page.evaluate("history.replaceState(null, '', location.pathname); window.scrollTo(0, 0); 0")
    box = page.evaluate(f"""(() => {{
        const n = document.querySelector({sel});
        n.scrollIntoView({{block: 'center', behavior: 'instant'}});
        return {CENTRE}(n.getBoundingClientRect());
    }})()""")
    assert box["w"] > 0 and box["h"] > 0, f"graph node {target} has no size: {box}"
    hit = page.evaluate(f"""(() => {{
        const e = document.elementFromPoint({box['x']}, {box['y']});
        return !!e && !!e.closest({sel});
    }})()""")
    assert hit, f"the centre of graph node {target} is covered by another element"
    page.click(box["x"], box["y"])
    near_top = f"Math.abs(document.getElementById({t}).getBoundingClientRect().top) <= 50"
    if page.wait_for(near_top, timeout=3.0):
        return
    # A section near the end of a short page cannot reach the top: then the hash names it and
    # the section is on screen.
    state = page.evaluate(f"""(() => {{
        const r = document.getElementById({t}).getBoundingClientRect();
        return {{hash: location.hash, top: r.top, bottom: r.bottom, height: innerHeight, scrollY}};
    }})()""")
    on_screen = state["top"] < state["height"] and state["bottom"] > 0
    assert state["hash"] == "#" + target and on_screen, f"clicking graph node {target} did not bring its section into view: {state}"


def hover_cell_shows_value(page: Page) -> dict:
    page.mouse("mouseMoved", 1, 1)
    cell = page.evaluate(f"""(() => {{
        const c = document.querySelector('svg.heatmap rect.cell');
        c.scrollIntoView({{block: 'center', behavior: 'instant'}});
        return {{...{CENTRE}(c.getBoundingClientRect()), step: c.dataset.step, unit: c.dataset.unit, value: c.dataset.value}};
    }})()""")
    assert cell["value"] is not None and cell["step"] is not None and cell["unit"] is not None, cell
    before = page.evaluate(f"(t => ({{visible: {VISIBLE}(t), text: t.textContent}}))(document.getElementById('tooltip'))")
    assert not (before["visible"] and cell["value"] in before["text"]), f"the tooltip shows the value before any hover: {before}"
    page.mouse("mouseMoved", cell["x"], cell["y"])
    shown = f"""(t => {VISIBLE}(t) && t.textContent.includes('step') && t.textContent.includes({json.dumps(cell['value'])}))(document.getElementById('tooltip'))"""
    ok = page.wait_for(shown, timeout=3.0)
    after = page.evaluate(f"(t => ({{visible: {VISIBLE}(t), text: t.textContent}}))(document.getElementById('tooltip'))")
    assert ok, f"hovering the cell {cell} did not show its value in #tooltip: {after}"
    return {"cell": cell, "tooltip": after["text"]}


def sample_selector_switches(page: Page) -> None:
    blocks = f"""(k => [...document.querySelectorAll('[data-sample="' + k + '"]')].filter({VISIBLE}).length)"""
    first = page.evaluate("document.getElementById('sample').options[0].value")
    second = page.evaluate("document.getElementById('sample').options[1].value")
    assert page.evaluate(f"{blocks}({json.dumps(first)})") > 0, f"no data-sample={first} block is visible at first"
    assert page.evaluate(f"{blocks}({json.dumps(second)})") == 0, f"a data-sample={second} block is visible before it is chosen"
    page.evaluate(f"""(() => {{
        const s = document.getElementById('sample');
        s.value = {json.dumps(second)};
        s.dispatchEvent(new Event('input', {{bubbles: true}}));
        s.dispatchEvent(new Event('change', {{bubbles: true}}));
        return 0;
    }})()""")
    assert page.wait_for(f"{blocks}({json.dumps(second)}) > 0", timeout=3.0), f"choosing sample {second} showed no data-sample={second} block"
    assert page.evaluate(f"{blocks}({json.dumps(first)})") == 0, f"data-sample={first} blocks stay visible after choosing sample {second}"
