"""The layer graph as text another tool draws: Graphviz DOT and Mermaid, from inspect's facts.

One node per layer (name, class, output shapes), an edge per input it reads, a dashed edge
labelled with the state for each `initial_state` link (encoder h_T, c_T into a decoder), and the
model's outputs marked. Names from the file are quoted, never interpreted.
"""

import json
import re

from ..errors import show_lines


def _shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _label(layer) -> str:
    shapes = ", ".join(_shape(s) for s in layer.get("output_shapes") or [])
    return f"{layer['name']}\n{layer['class_name']}" + (f"\n{shapes}" if shapes else "")


def _ref(text: str) -> tuple[str, str]:
    """'encoder[1]' -> ('encoder', '[1]'); 'lstm' -> ('lstm', '')."""
    match = re.fullmatch(r"(.*?)(\[\d+\])?", text, re.DOTALL)
    return match.group(1), match.group(2) or ""


def edges(facts):
    """(source layer, target layer, label, dashed) for every input and initial_state link; a state
    handed over is named as inspect names it (`encoder[1]` is the encoder's h_T)."""
    named = _state_names(facts)
    for layer in facts["layers"]:
        for ref in layer["inbound"]:
            yield _ref(ref)[0], layer["name"], "", False
        for k, ref in enumerate(layer["initial_state_from"]):
            yield _ref(ref)[0], layer["name"], f"initial_state[{k}] = {named.get(ref, ref)}", True


def _state_names(facts) -> dict:
    out = {}
    for layer in facts["layers"]:
        for k, ret in enumerate((layer.get("recurrent") or {}).get("returns", [])):
            out[f"{layer['name']}[{k}]"] = f"{layer['name']} {ret['math'].split(' ')[0]}"
    return out


def dot(facts) -> str:
    def q(text: str) -> str:  # a DOT string: JSON's escapes (\" \\ \n) of the text as errors.show_lines shows it
        return json.dumps(show_lines(text), ensure_ascii=False)

    lines = [f"digraph {q(facts['model']['name'])} {{", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
    outputs = {_ref(o)[0] for o in facts["model"]["outputs"]}
    for layer in facts["layers"]:
        style = ', style="rounded,bold"' if layer["name"] in outputs else (", style=rounded" if layer["class_name"] == "InputLayer" else "")
        lines.append(f"  {q(layer['name'])} [label={q(_label(layer))}{style}];")
    for source, target, label, dashed in edges(facts):
        attrs = f" [style=dashed, label={q(label)}]" if dashed else ""
        lines.append(f"  {q(source)} -> {q(target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def mermaid(facts) -> str:
    ids = {layer["name"]: f"n{k}" for k, layer in enumerate(facts["layers"])}

    def text(s: str) -> str:  # a Mermaid label: quoted, markup characters as Mermaid's own entities
        for char, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
            s = s.replace(char, entity)
        return '"' + s.replace("\n", "<br/>") + '"'

    lines = ["flowchart TD"]
    for layer in facts["layers"]:
        lines.append(f"  {ids[layer['name']]}[{text(_label(layer))}]")
    for source, target, label, dashed in edges(facts):
        if source not in ids:
            continue
        arrow = f" -. {text(label)} .-> " if dashed else " --> "
        lines.append(f"  {ids[source]}{arrow}{ids[target]}")
    return "\n".join(lines) + "\n"
