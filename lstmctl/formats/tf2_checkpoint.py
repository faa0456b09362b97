"""TensorFlow checkpoints as models.

A TF2 object-based checkpoint (`tf.train.Checkpoint(model=…).write()`, tf_keras's
`save_weights` without .h5, a SavedModel's `variables/`) stores the object graph it saved: which
object holds which, and each variable's checkpoint key and TF name. The Keras layers are found
in it (`layer-<k>` children of the model, each layer's variables in Keras's order), then read
like a weights-only file. A TF1 `tf.compat.v1.train.Saver` checkpoint has only variable names: its
cells are found by their scopes (lstmctl.formats.tf1_checkpoint). What is neither (optimizer slots, step counters,
metrics, other variables) is listed as skipped.
"""

import re

from ..errors import LstmctlError, show
from .protowire import Message
from .saved import LayerStore, Saved
from .tensorbundle import DT_STRING, Bundle

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
MAX_NODES = 1 << 20
_LAYER = re.compile(r"layer-(\d+)")
# children that only mirror a layer's own (SavedModel's `variables` lists, Keras internals)
_MIRRORS = {"variables", "trainable_variables", "non_trainable_variables", "keras_api", "regularization_losses", "_self_saveable_object_factories"}


class ObjectGraph:
    """TrackableObjectGraph: nodes[i] = (children [(node, local name)], {attribute: (TF name, key)})."""

    def __init__(self, blob: bytes, where: str):
        self.where = where
        self.nodes = []
        for node in Message(blob, where).repeated(1):
            children = [(c.uint(1), c.text(2)) for c in node.repeated(1)]
            attributes = {a.text(1): (a.text(2), a.text(3)) for a in node.repeated(2)}
            self.nodes.append((children, attributes))
            if len(self.nodes) > MAX_NODES:
                raise LstmctlError(f"{where}: object graph of over {MAX_NODES} nodes; refused")
        for children, _ in self.nodes:
            for child, name in children:
                if child >= len(self.nodes):
                    raise LstmctlError(f"{where}: object graph child '{show(name)}' names node {child} of {len(self.nodes)}")
        if not self.nodes:
            raise LstmctlError(f"{where}: empty object graph")

    def child(self, node: int, name: str) -> int | None:
        return next((c for c, n in self.nodes[node][0] if n == name), None)

    def find(self, dotted: str) -> int | None:
        """The node at a Keras metadata path such as `root.layer_with_weights-0.forward_layer`."""
        parts = dotted.split(".")
        if parts[0] != "root":
            return None
        node = 0
        for part in parts[1:]:
            node = self.child(node, part)
            if node is None:
                return None
        return node

    def variable(self, node: int):
        """(TF name, checkpoint key) of a variable node, else None."""
        return self.nodes[node][1].get("VARIABLE_VALUE")

    def variables_of(self, node: int) -> list:
        """A layer's variable nodes in Keras's order: its `variables` list where the SavedModel
        keeps one, otherwise depth first through its children in the order they were tracked."""
        listed = self.child(node, "variables")
        if listed is not None:
            items = [(int(n), c) for c, n in self.nodes[listed][0] if n.isdigit()]
            return [c for _, c in sorted(items) if self.variable(c)]
        out, seen, stack = [], set(), [node]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if self.variable(current):
                out.append(current)
            stack.extend(c for c, n in reversed(self.nodes[current][0]) if n not in _MIRRORS and not n.startswith(".") and c not in seen)
        return out

    def model_node(self) -> int | None:
        """The Keras model: the first node (breadth first) with `layer-<k>` children."""
        queue, seen = [0], {0}
        while queue:
            node = queue.pop(0)
            if any(_LAYER.fullmatch(n) for _, n in self.nodes[node][0]):
                return node
            for c, _ in self.nodes[node][0]:
                if c not in seen:
                    seen.add(c)
                    queue.append(c)
        return None

    def layers(self, model: int) -> list:
        """The model's layer nodes, in `layer-<k>` order."""
        numbered = [(_LAYER.fullmatch(n), c) for c, n in self.nodes[model][0]]
        return [c for _, c in sorted((int(m.group(1)), c) for m, c in numbered if m)]


def skip_reason(key: str, other: str = "not a layer's weights") -> str:
    """Why a checkpoint entry is no layer's weight, in a word or two (`other` when no known kind)."""
    if "/.OPTIMIZER_SLOT/" in key or re.search(r"/(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|Adadelta|Adadelta_\d+|Ftrl|Ftrl_\d+|ExponentialMovingAverage)$", key):
        return "optimizer slots"
    if key.startswith("optimizer/") or re.fullmatch(r"(.*/)?beta[12]_power(_\d+)?", key):
        return "optimizer variables"
    if key.startswith("save_counter/") or re.fullmatch(r"(.*/)?global_step", key):
        return "step counters"
    if key.startswith("keras_api/metrics/") or "/metrics/" in key:
        return "metrics"
    return other


def skipped_notes(skipped: dict) -> list:
    """One note per reason: the count and the first few names (without TF2's `/.ATTRIBUTES/VARIABLE_VALUE`)."""
    notes = []
    for reason, keys in sorted(skipped.items()):
        shown = ", ".join(show(k.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE")) for k in keys[:6]) + (f", … ({len(keys) - 6} more)" if len(keys) > 6 else "")
        notes.append(f"skipped {len(keys)} checkpoint variable(s), {reason}: {shown}")
    return notes


class CheckpointStore(LayerStore):
    """Layer name -> its arrays in Keras's order, read from a checkpoint through its object graph."""

    def __init__(self, bundle: Bundle, layers: dict, where: str):
        self.bundle = bundle
        self.where = where
        self._layers = layers  # name -> [(TF name, checkpoint key)]

    def layer_names(self) -> list[str]:
        return list(self._layers)

    def weight_names(self, layer: str) -> list[str]:
        return [f"{name}:0" for name, _ in self._layers.get(layer, [])]

    def layer_weights(self, layer: str) -> list:
        out = []
        for name, key in self._layers.get(layer, []):
            if key not in self.bundle.entries:
                raise LstmctlError(f"{self.where}: the object graph names variable '{show(name)}' at '{show(key)}', which the checkpoint does not hold")
            out.append(self.bundle.read(key))
        return out

    def skipped(self) -> dict:
        """{reason: [keys]} of the checkpoint's entries no layer claims."""
        claimed = {key for variables in self._layers.values() for _, key in variables}
        out = {}
        for key in self.bundle.entries:
            if key != OBJECT_GRAPH_KEY and key not in claimed:
                out.setdefault(skip_reason(key), []).append(key)
        return out


def object_graph(bundle: Bundle) -> ObjectGraph | None:
    entry = bundle.entries.get(OBJECT_GRAPH_KEY)
    if entry is None:
        return None
    if entry.dtype != DT_STRING or entry.shape != ():
        raise LstmctlError(f"{bundle.where}: '{OBJECT_GRAPH_KEY}' is not a string scalar")
    return ObjectGraph(bundle.read(OBJECT_GRAPH_KEY)[0], f"{bundle.where}: object graph")


def layer_variables(graph: ObjectGraph, node: int) -> list:
    return [graph.variable(v) for v in graph.variables_of(node)]


def tf2_layers(graph: ObjectGraph, where: str) -> tuple[dict, list]:
    """{layer name: [(TF name, key)]} for the Keras layers with weights, and notes. The name is
    the first part of the layer's variables' TF names (`lstm/lstm_cell/kernel` -> `lstm`)."""
    model = graph.model_node()
    layers, notes = {}, []
    if model is None:  # Keras 3's export, a plain tf.Module: group the variables by their names' first part
        for name, key in layer_variables(graph, 0):
            if not key.startswith(("optimizer/", "save_counter/")) and not name.startswith("seed_generator"):
                layers.setdefault(name.split("/")[0], []).append((name, key))
        notes.append("no Keras layers in the object graph: variables grouped into layers by the first part of their names")
    for node in graph.layers(model) if model is not None else []:
        variables = layer_variables(graph, node)
        if not variables:
            continue
        name = variables[0][0].split("/")[0] or f"layer_{node}"
        if name in layers:
            raise LstmctlError(f"{where}: two layers' variables are both named '{show(name)}/…'")
        layers[name] = variables
    notes.append("layer names are taken from the variables' TensorFlow names; kinds and sizes are inferred from their shapes")
    return layers, notes


def read_tf2(bundle: Bundle, graph: ObjectGraph, path: str) -> Saved:
    layers, notes = tf2_layers(graph, path)
    store = CheckpointStore(bundle, layers, path)
    return Saved(path, "tf2-checkpoint", None, "tensorflow", None, store, ["TF2 object-based checkpoint: no config, read as weights only", *notes, *skipped_notes(store.skipped())])
