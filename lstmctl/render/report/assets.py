"""The report page's CSS and JS, inline in every page (hashed into its Content-Security-Policy).
"""

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 2em 4em;color:#222;background:#fff}
h1{margin:.6em 0 .2em}h2{border-top:2px solid #ccc;padding-top:.6em}
pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:2px 8px;border-bottom:1px solid #e4e4e4;text-align:left}
td.num{text-align:right;font-family:ui-monospace,monospace}
caption{text-align:left;font-weight:600;padding:.3em 0}
.muted{color:#666;font-weight:normal}.note{color:#8a5a00}.bad{color:#b00}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th.asc::after{content:" \\25B2"}table.sortable th.desc::after{content:" \\25BC"}
#graph .node rect{fill:#f4f4f4;stroke:#777;stroke-width:1.2}
#graph .node.recurrent rect{fill:#fff3d6;stroke:#d08a00;stroke-width:2.2}
#graph .node{cursor:pointer}#graph .node:hover rect,#graph .node:focus rect{stroke:#225;stroke-width:3}
#graph .node .name{font-weight:600}#graph .node .shape,#graph .node .cls{font-size:12px;fill:#444}
#graph .edge{stroke:#555;stroke-width:1.4;fill:none}
#graph .edge.state{stroke:#c0392b;stroke-dasharray:6 4}
#graph .arrowhead{fill:#555}
.heatmaps{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:.3em 0}figcaption{font-weight:600}
svg text{font:10px ui-monospace,monospace;fill:#333}
svg.heatmap rect.cell:hover,svg.weights rect.wcell:hover{stroke:#000;stroke-width:1}
#tooltip{position:fixed;pointer-events:none;background:#222;color:#fff;padding:3px 7px;border-radius:3px;font:12px ui-monospace,monospace;z-index:10}
#tooltip[hidden]{display:none}
.sample-block[hidden]{display:none}
nav a{margin-right:1em}
header .controls{margin:.5em 0}
"""
JS = """
(function () {
  var tip = document.getElementById('tooltip');
  function place(ev) { tip.style.left = (ev.clientX + 14) + 'px'; tip.style.top = (ev.clientY + 14) + 'px'; }
  document.addEventListener('mouseover', function (ev) {
    var t = ev.target;
    if (!t || !t.classList) { return; }
    if (t.classList.contains('cell') && t.tagName.toLowerCase() === 'rect') {
      tip.textContent = 'step ' + t.getAttribute('data-step') + ', unit ' + t.getAttribute('data-unit') + ': ' + t.getAttribute('data-value');
    } else if (t.classList.contains('wcell') && t.tagName.toLowerCase() === 'rect') {
      tip.textContent = 'row ' + t.getAttribute('data-row') + ', unit ' + t.getAttribute('data-unit') + ': ' + t.getAttribute('data-value');
    } else { return; }
    tip.hidden = false;
    place(ev);
  });
  document.addEventListener('mousemove', function (ev) { if (!tip.hidden) { place(ev); } });
  document.addEventListener('mouseout', function (ev) {
    var t = ev.target;
    if (t && t.classList && (t.classList.contains('cell') || t.classList.contains('wcell'))) { tip.hidden = true; tip.textContent = ''; }
  });
  function go(node) {
    var target = node.getAttribute('data-target');
    var el = document.getElementById(target);
    if (!el) { return; }
    location.hash = target;
    el.scrollIntoView();
  }
  Array.prototype.forEach.call(document.querySelectorAll('#graph g.node'), function (node) {
    node.addEventListener('click', function () { go(node); });
    node.addEventListener('keydown', function (ev) { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); go(node); } });
  });
  var select = document.getElementById('sample');
  function show(k) {
    Array.prototype.forEach.call(document.querySelectorAll('[data-sample]'), function (el) {
      el.hidden = el.getAttribute('data-sample') !== k;
    });
  }
  if (select) {
    select.addEventListener('change', function () { show(select.value); });
    show(select.value);
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    var heads = table.querySelectorAll('thead th');
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener('click', function () {
        var asc = !th.classList.contains('asc');
        Array.prototype.forEach.call(heads, function (h) { h.classList.remove('asc', 'desc'); });
        th.classList.add(asc ? 'asc' : 'desc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = parseFloat(a.cells[col].getAttribute('data-sort'));
          var y = parseFloat(b.cells[col].getAttribute('data-sort'));
          if (isNaN(x)) { x = -Infinity; }
          if (isNaN(y)) { y = -Infinity; }
          return asc ? x - y : y - x;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""
