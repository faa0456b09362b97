"""The README's `$ lstmctl …` examples are real: each is run and its output compared exactly.

After an intended change of output: `python tests/test_readme.py --update` rewrites them.
"""

import re
import shlex
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"```console\n\$ (lstmctl [^\n]*)\n(.*?)```", re.S)


def examples():
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README.read_text())]


def run_example(command: str) -> str:
    """stdout as the README shows it; a non-zero exit code is shown as a last line `(exit code N)`."""
    from lstmctl.cli import main

    result = CliRunner().invoke(main, shlex.split(command)[1:], env={"COLUMNS": None})  # piped width (110) whatever the shell exports
    assert result.exit_code in (0, 1), result.output
    text = "\n".join(line.rstrip() for line in result.stdout.splitlines()) + "\n"
    return text + (f"(exit code {result.exit_code})\n" if result.exit_code else "")


def test_readme_has_examples():
    assert len(examples()) >= 4


@pytest.mark.parametrize("command, shown", examples(), ids=[c for c, _ in examples()])
def test_readme_example_output_is_real(command, shown, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert run_example(command) == shown


def update():
    import os

    os.chdir(ROOT)
    text = README.read_text()
    text = BLOCK.sub(lambda m: f"```console\n$ {m.group(1)}\n{run_example(m.group(1))}```", text)
    README.write_text(text)


if __name__ == "__main__" and "--update" in sys.argv:
    sys.path.insert(0, str(ROOT))
    update()
