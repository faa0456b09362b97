"""inspect --format dot / mermaid: the layer graph with shapes and initial_state links."""

import json

from click.testing import CliRunner

from conftest import sample
from lstmctl.render import diagram
from lstmctl.cli import main


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_dot_of_an_encoder_decoder():
    result = invoke("inspect", sample("k3_encdec.keras"), "--format", "dot")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == 'digraph "encdec" {' and lines[-1] == "}"
    assert '  "encoder" [label="encoder\\nLSTM\\n(None, 8), (None, 8), (None, 8)", style="rounded,bold"];' in lines  # a model output
    assert '  "decoder_input" -> "decoder";' in lines
    assert '  "encoder" -> "decoder" [style=dashed, label="initial_state[0] = encoder h_T"];' in lines
    assert '  "encoder" -> "decoder" [style=dashed, label="initial_state[1] = encoder c_T"];' in lines
    assert sum("->" in line for line in lines) == 5


def test_mermaid_of_an_encoder_decoder():
    result = invoke("inspect", sample("k3_encdec.keras"), "--format", "mermaid")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    assert '  n2 -. "initial_state[0] = encoder h_T" .-> n3' in lines
    assert '  n3["decoder<br/>LSTM<br/>(None, 5, 8)"]' in lines


def test_names_from_a_file_stay_text():
    facts = {
        "model": {"name": 'm"x', "outputs": ['b"\\[0]']},
        "layers": [
            {"name": 'a"\n<script>&', "class_name": "InputLayer", "inbound": [], "initial_state_from": [], "output_shapes": [[None, 3]]},
            {"name": 'b"\\', "class_name": "LSTM", "inbound": ['a"\n<script>&'], "initial_state_from": [], "output_shapes": [[None, 2]]},
        ],
    }
    text = diagram.dot(facts)
    assert text.splitlines()[0] == 'digraph "m\\"x" {'
    assert '  "a\\"\\n<script>&" -> "b\\"\\\\";' in text
    for line in text.splitlines()[3:-1]:  # every name is one JSON-escaped string literal
        json.loads(line.strip().split(" [label=")[0].split(" -> ")[0])
    mer = diagram.mermaid(facts)
    assert "<script>" not in mer and '#quot;' in mer and "#lt;script#gt;#amp;" in mer


def test_graph_formats_draw_the_whole_model():
    result = invoke("inspect", sample("k3_lstm_dense.keras"), "--format", "dot", "--layer", "lstm")
    assert result.exit_code == 2 and "draws the whole model" in result.stderr
