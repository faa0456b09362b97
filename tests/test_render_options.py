"""Table output without colour, --precision, COLUMNS when piped, and summarised --gate matrices
(issue 13, points 4 and 6)."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from rich.cells import cell_len

import lstmctl
from conftest import sample
from lstmctl.cli import main
from lstmctl.render.console import RAMP

MODEL = sample("k3_lstm_dense.keras")
X = sample("k3_lstm_dense.input.npy")
TRACE = ["trace", MODEL, "--input", X]


def invoke(args, **env):
    env.setdefault("COLUMNS", None)  # piped: 110 columns unless a test sets COLUMNS
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def heat_rows(text):
    """{heatmap title: [its unit rows' cells]}."""
    maps, title = {}, None
    for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines():
        if "scale" in line and "rows: units" in line:
            title = line.split("  (")[0]
            maps[title] = []
        elif title and re.match(r"^\s+u\d+(-\d+)? ", line):
            maps[title].append(line[10:])
        elif title and not line.strip():
            title = None
    return maps


# --- heatmaps without colour ---------------------------------------------------------------------


@pytest.mark.parametrize("env", [{}, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, {"TERM": "dumb", "FORCE_COLOR": "1"}], ids=["piped", "NO_COLOR", "TERM=dumb"])
def test_heatmaps_use_a_shade_ramp_and_a_legend_when_colour_is_off(env):
    out = invoke([*TRACE, "--view", "heatmap"], **env)
    assert "█" not in out
    maps = heat_rows(out)
    assert len(maps) == 6  # i f c o, c_t, h_t
    for title, rows in maps.items():
        assert len(rows) == 5, title
        cells = "".join(rows)
        assert set(cells) <= set(RAMP), title
        assert len(set(rows)) > 1, f"{title}: every row the same"
    assert f'"{RAMP}": " " = 0 (low) … "@" = 1 (high)' in out  # the gates' legend
    assert f'"{RAMP}": " " = -1 (low) … "@" = 1 (high)' in out  # c̃, c_t and h_t's
    legends = [line for line in out.splitlines() if RAMP in line]
    assert len(legends) == 6 and all(len(line) <= 110 for line in legends)


def test_the_ramp_follows_the_values():
    m = lstmctl.load(MODEL)
    h = m.run(np.load(X))["lstm/sequence"][0]  # (time, units): the h_t heatmap, scale -1 … 1
    rows = heat_rows(invoke([*TRACE, "--view", "heatmap"]))["lstm h_t (hidden state)"]
    for unit, row in enumerate(rows):
        cells = row[::3]  # three characters a step for 6 steps
        assert len(cells) == h.shape[0]
        for t, ch in enumerate(cells):
            band = min(int((h[t, unit] + 1) / 2 * len(RAMP)), len(RAMP) - 1)
            assert ch == RAMP[band], (unit, t, h[t, unit])


def test_colour_on_keeps_the_coloured_blocks():
    out = invoke([*TRACE, "--view", "heatmap"], FORCE_COLOR="1", TERM="xterm-256color")
    assert "█" in out and "\x1b[" in out
    assert "shades" not in out and "colour scale" in out


def test_svg_keeps_colour_even_with_no_color(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    svg = tmp_path / "t.svg"
    invoke([*TRACE, "--view", "summary", "--svg", str(svg)])
    text = svg.read_text()
    assert "█" in text.replace("&#9608;", "█") and "shades" not in text
    assert re.search(r"fill: *#[0-9a-f]{6}", text)


# --- --precision -----------------------------------------------------------------------------------


def _decimals_shown(out, value, decimals):
    return np.format_float_positional(value, precision=decimals, unique=True, trim=".") in re.findall(r"-?\d+\.\d*", out)


def test_run_precision():
    y = lstmctl.load(MODEL).run(np.load(X))["output"]
    v = y.flat[np.argmax([len(repr(float(a))) for a in y.flat])]  # a value with many digits
    default = invoke(["run", MODEL, "--input", X])
    three = invoke(["run", MODEL, "--input", X, "--precision", "3"])
    eight = invoke(["run", MODEL, "--input", X, "--precision", "8"])
    assert _decimals_shown(three, v, 3) and not _decimals_shown(three, v, 8)
    assert _decimals_shown(eight, v, 8) and not _decimals_shown(eight, v, 3)
    assert _decimals_shown(default, v, 6)
    assert default == invoke(["run", MODEL, "--input", X, "--precision", "6"])


def test_trace_precision():
    h = lstmctl.load(MODEL).run(np.load(X))["lstm/sequence"][0]
    three = invoke([*TRACE, "--view", "table", "--precision", "3"])
    eight = invoke([*TRACE, "--view", "table", "--precision", "8"])
    default = invoke([*TRACE, "--view", "table"])
    assert f"{h[0, 0]:+.3f} │" in three and f"{h[0, 0]:+.8f} │" in eight and f"{h[0, 0]:+.4f} │" in default
    assert f"{h[0, 0]:+.4f} │" not in three


def test_inspect_precision():
    facts = json.loads(invoke(["inspect", MODEL, "--format", "json"]))
    (lstm,) = [layer for layer in facts["layers"] if layer["name"] == "lstm"]
    mean = lstm["recurrent"]["gates"][0]["W"]["mean"]  # the input gate's W
    assert f"{mean:.4g}" in invoke(["inspect", MODEL])
    assert f"{mean:.3g}" in invoke(["inspect", MODEL, "--precision", "3"])
    assert f"{mean:.8g}" in invoke(["inspect", MODEL, "--precision", "8"])


@pytest.mark.parametrize("bad", ["0", "18", "x"])
def test_precision_range(bad):
    result = CliRunner().invoke(main, ["run", MODEL, "--input", X, "--precision", bad])
    assert result.exit_code == 2


def test_precision_leaves_files_alone(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    invoke(["run", MODEL, "--input", X, "-o", str(a)])
    invoke(["run", MODEL, "--input", X, "-o", str(b), "--precision", "2"])
    assert a.read_bytes() == b.read_bytes()


# --- COLUMNS -------------------------------------------------------------------------------------------


NUMBER_CUT = re.compile(r"\d\.\d*…|\d…[ │┃]")  # 0.0… or 12… at a cell edge: a number cut short (t=0…5 is a range)


@pytest.mark.parametrize("args", [["inspect", MODEL], TRACE, ["run", MODEL, "--input", X, "--return-sequences", "--return-state"]], ids=["inspect", "trace", "run"])
def test_columns_is_the_width_when_piped(args):
    narrow = invoke(args, COLUMNS="60")
    assert not NUMBER_CUT.search(narrow), narrow
    assert max(cell_len(line) for line in narrow.splitlines()) <= 60
    wide = invoke(args)
    assert max(cell_len(line) for line in wide.splitlines()) > 60


def test_narrow_inspect_keeps_every_statistic_whole():
    facts = json.loads(invoke(["inspect", MODEL, "--format", "json"]))
    (lstm,) = [layer for layer in facts["layers"] if layer["name"] == "lstm"]
    out = invoke(["inspect", MODEL], COLUMNS="60")
    words = set(re.findall(r"\S+", out))
    for row in lstm["recurrent"]["gates"]:
        for part in ("W", "U", "b"):
            for key in ("mean", "std", "min", "max", "norm"):
                assert f"{row[part][key]:.4g}" in words, (row["gate"], part, key)


def test_columns_ignored_unless_a_positive_integer():
    default = invoke(["inspect", MODEL])
    assert invoke(["inspect", MODEL], COLUMNS="0") == default
    assert invoke(["inspect", MODEL], COLUMNS="wide") == default


# --- summarised --gate matrices ------------------------------------------------------------------


def matrices(out):
    """The text of the --gate panels (the statistics table above shows fused columns as [..., a:b])."""
    return out[out.index("╭─ lstm/"):]


@pytest.fixture(scope="module")
def big_lstm(tmp_path_factory):
    """Keras-layout weights of an LSTM with 300 units: U_f is 300 x 300."""
    rng = np.random.default_rng(13)
    units = 300
    path = tmp_path_factory.mktemp("big") / "big300.npz"
    np.savez(path, kernel=rng.standard_normal((4, 4 * units)).astype("float32"),
             recurrent_kernel=(0.05 * rng.standard_normal((units, 4 * units))).astype("float32"), bias=np.zeros(4 * units, "float32"))  # fmt: skip
    return str(path)


def test_gate_matrices_are_summarised_unless_full(big_lstm):
    summary = invoke(["inspect", big_lstm, "--convention", "keras", "--gate", "f"])
    full = invoke(["inspect", big_lstm, "--convention", "keras", "--gate", "f", "--full"])
    assert "..." in matrices(summary) and "90,000 values, summarised" in summary
    assert len(summary.splitlines()) < 200
    assert "..." not in matrices(full) and "summarised" not in full
    assert len(full.splitlines()) > 300 * 3  # every row of U_f, several lines each
    u_f = lstmctl.load(big_lstm, convention="keras").gates()["lstm/U_f"]
    lines = np.array2string(u_f, precision=6, threshold=u_f.size, max_line_width=100).splitlines()
    assert lines[len(lines) // 2] in full  # a line from the middle of U_f, as NumPy prints it whole


def test_small_gate_matrices_are_printed_whole():
    out = invoke(["inspect", MODEL, "--gate", "f"])
    assert "..." not in matrices(out) and "summarised" not in out
    w_f = lstmctl.load(MODEL).gates("lstm")["lstm/W_f"]
    assert out.count("╭─ lstm/") == 3 and np.format_float_positional(w_f[0, 0], precision=6, trim="-") in out
