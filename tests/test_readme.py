"""The `$ lstmctl …` examples of README.md and docs/*.md are real: each is run and its output compared exactly.
Their relative links are real too: every linked file exists and every `#anchor` names one of its headings.

After an intended change of output: `python tests/test_readme.py --update` rewrites them.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
PAGE_IDS = [page.relative_to(ROOT).as_posix() for page in DOCS]
BLOCK = re.compile(r"```console\n\$ (lstmctl [^\n]*)\n(.*?)```", re.S)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def examples(page: Path):
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(page.read_text())]


def all_examples():
    return [(page, command, shown) for page in DOCS for command, shown in examples(page)]


def run_example(command: str) -> str:
    """stdout as the docs show it; a non-zero exit code is shown as a last line `(exit code N)`."""
    from lstmctl.cli import main

    result = CliRunner().invoke(main, shlex.split(command)[1:], env={"COLUMNS": None})  # piped width (110) whatever the shell exports
    assert result.exit_code in (0, 1), result.output
    text = "\n".join(line.rstrip() for line in result.stdout.splitlines()) + "\n"
    return text + (f"(exit code {result.exit_code})\n" if result.exit_code else "")


def test_readme_has_examples():
    assert len(examples(README)) >= 5


@pytest.mark.parametrize("page", DOCS, ids=PAGE_IDS)
def test_every_console_block_is_a_checked_example(page):
    """A ```console block that BLOCK does not match (no `$ lstmctl` first line) would go unchecked."""
    assert len(re.findall(r"^```console$", page.read_text(), re.M)) == len(examples(page))


@pytest.mark.parametrize("page, command, shown", all_examples(), ids=[f"{p.relative_to(ROOT).as_posix()}: {c}" for p, c, _ in all_examples()])
def test_example_output_is_real(page, command, shown, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert run_example(command) == shown


def _activated_shell():
    """The README's Quick start environment: `source .venv/bin/activate` in a fresh bash, whose PATH
    holds only the system's folders. None where the clone has no such environment (CI makes one)."""
    activate = ROOT / ".venv" / "bin" / "activate"
    if not (activate.exists() and (ROOT / ".venv" / "bin" / "lstmctl").exists()):
        return None
    return lambda command: subprocess.run(["bash", "--noprofile", "--norc", "-c", f"source .venv/bin/activate && {command}"], cwd=ROOT, capture_output=True, text=True,
                                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/"), "LANG": "C.UTF-8"}, timeout=120)  # fmt: skip


def test_readme_examples_run_in_a_fresh_shell():
    """Every command of the README after its Quick start, run as a new user runs it: a fresh shell,
    the environment activated as the Quick start says, the command exactly as shown (issue 26: they
    said "lstmctl: command not found")."""
    shell = _activated_shell()
    if shell is None:
        pytest.skip("no .venv with lstmctl installed in the clone (the README's Quick start makes it)")
    text = README.read_text()
    after = text[text.index("## Quick start") :]
    assert "source .venv/bin/activate" in after.split("\n## ")[0]
    for command, shown in examples(README):
        done = shell(command)
        text_out = "\n".join(line.rstrip() for line in done.stdout.splitlines()) + "\n"
        assert text_out + (f"(exit code {done.returncode})\n" if done.returncode else "") == shown, (command, done.stderr)
    # the README's bash loop runs the same way: test_state.py::test_readme_streaming_example_runs_as_shown


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped, spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set:
    """The anchors GitHub gives a page's headings; a repeated one gets -1, -2, … as on GitHub."""
    found, count = set(), {}
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        found.add(f"{base}-{count[base]}" if base in count else base)
        count[base] = count.get(base, 0) + 1
    return found


def test_slug_is_githubs():
    # anchors the README used before the docs pages existed, as GitHub resolved them
    assert slug("Moving weights between Keras, PyTorch, TF1 and ONNX: `lstmctl export` and `--convention`") == "moving-weights-between-keras-pytorch-tf1-and-onnx-lstmctl-export-and---convention"
    assert slug("TensorFlow 1 checkpoints, TF2 checkpoints and SavedModel folders") == "tensorflow-1-checkpoints-tf2-checkpoints-and-savedmodel-folders"
    assert slug("`lstmctl run --expect`: check numbers against a reference") == "lstmctl-run---expect-check-numbers-against-a-reference"
    assert slug("Stacks of cells: `RNN([LSTMCell, …])`, Keras's MultiRNNCell") == "stacks-of-cells-rnnlstmcell--kerass-multirnncell"
    assert slug("2. The three tensors of `LSTM(return_sequences=True, return_state=True)`") == "2-the-three-tensors-of-lstmreturn_sequencestrue-return_statetrue"


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n```bash\n# not a heading\n```\n\n## Notes\n\n## Notes\n")
    assert anchors(page) == {"notes", "notes-1", "notes-2"}


def local_links(page: Path):
    """Link targets outside code blocks and code spans, but for web (http:, mailto:, …) ones."""
    text = INLINE_CODE.sub("", FENCE.sub("", page.read_text()))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", DOCS, ids=PAGE_IDS)
def test_relative_links_resolve(page):
    broken = []
    for target in local_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, broken


def update():
    import os

    os.chdir(ROOT)
    for page in DOCS:
        text = page.read_text()
        new = BLOCK.sub(lambda m: f"```console\n$ {m.group(1)}\n{run_example(m.group(1))}```", text)
        if new != text:
            page.write_text(new)


if __name__ == "__main__" and "--update" in sys.argv:
    sys.path.insert(0, str(ROOT))
    update()


def test_the_budget_table_is_the_budget():
    """docs/reliability.md#the-budget lists lstmctl/budget.py's LIMITS, row for row: limit and meaning."""
    from lstmctl.budget import LIMITS

    page = ROOT / "docs" / "reliability.md"
    assert "the-budget" in anchors(page)
    section = page.read_text().split("### The budget", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|$", section, re.M)
    table = {name: (int(limit.split("=")[-1].replace(",", "").strip()), what.strip()) for name, limit, what in rows}
    assert list(table) == list(LIMITS) and table == LIMITS
    for name, limit, _ in rows:  # a power of two is also written as one, and agrees
        if "=" in limit:
            power = limit.split("=")[0].strip().translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789"))
            assert 2 ** int(power[1:]) == LIMITS[name][0], name
