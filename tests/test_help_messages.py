"""What a newcomer reads first: where to start, an example in every command's help, and messages
that name the option that helps."""

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from conftest import sample
from lstmctl.cli import main


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_no_arguments_say_where_to_start():
    result = invoke()
    assert result.exit_code in (0, 2)
    assert "Start with `lstmctl inspect MODEL`" in result.output
    assert "TensorFlow" in result.output


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_shows_examples(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    at = lines.index("  Examples:")
    examples = [line.strip() for line in lines[at + 1 :] if line.startswith("    lstmctl ")]
    assert examples and all(e.startswith(f"lstmctl {command} ") for e in examples)
    assert main.commands[command].get_short_help_str().strip()  # the command list shows a line for each


def test_a_mistyped_key_lists_the_sequence_keys_too():
    result = invoke("run", sample("k3_lstm_dense.keras"), "--key", "lstm/seq")
    assert result.exit_code == 2
    assert result.stderr == "lstmctl: error: no result key 'lstm/seq'; keys are: output, lstm/h, lstm/c, lstm/sequence\n"
    x = np.load(sample("k3_lstm_dense.input.npy"))
    result = invoke("run", sample("k3_lstm_dense.keras"), "--input", sample("k3_lstm_dense.input.npy"), "--key", "lstm/sequence", "--format", "json")
    assert result.exit_code == 0
    np.testing.assert_allclose(np.array(__import__("json").loads(result.stdout)["lstm/sequence"]), lstmctl.load(sample("k3_lstm_dense.keras")).run(x)["lstm/sequence"], atol=1e-6)


def test_gates_names_its_own_options_for_one_array(tmp_path):
    result = invoke("gates", sample("k3_lstm_dense.keras"), "--part", "W", "--format", "npy", "-o", tmp_path / "w.npy")
    assert result.exit_code == 2
    assert "choose one with --layer, --gate and --part or use npz/json" in result.stderr
    assert "--key" not in result.stderr
    assert not (tmp_path / "w.npy").exists()


def test_output_file_without_a_format_takes_its_suffix(tmp_path):
    x = sample("k3_lstm_dense.input.npy")
    result = invoke("run", sample("k3_lstm_dense.keras"), "--input", x, "-o", tmp_path / "r.npz")
    assert result.exit_code == 0 and result.stdout == ""
    with np.load(tmp_path / "r.npz") as got:
        np.testing.assert_allclose(got["output"], lstmctl.load(sample("k3_lstm_dense.keras")).run(np.load(x))["output"], atol=1e-6)
    result = invoke("run", sample("k3_lstm_dense.keras"), "--input", x, "-o", tmp_path / "r.txt")
    assert result.exit_code == 2 and "--output writes" in result.stderr and not (tmp_path / "r.txt").exists()


def test_dash_is_standard_output_for_a_table_too():
    result = invoke("run", sample("k3_lstm_dense.keras"), "-o", "-")
    assert result.exit_code == 0 and "model output: dense[0]" in result.stdout
