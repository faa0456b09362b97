"""SavedModel folders, as tf.keras 2.0-2.12 wrote `model.save("my_model")` by default.

`keras_metadata.pb` (a SavedMetadata message) carries, for the root object, the same Keras config
JSON an .h5 file keeps; `variables/variables.*` is a TF2 checkpoint whose object graph places
each layer's variables (the node paths of the metadata, `root.layer_with_weights-0`, are paths in
that graph). Together they give the same model as the .h5 of that model. Without Keras metadata
(a SavedModel written by TensorFlow or by Keras 3's `export`) the variables are read as weights.
`saved_model.pb` (the graph and its functions) is never parsed: nothing in it is needed.
"""

import os

from ..errors import LstmctlError, show
from . import safejson
from .protowire import Message
from .saved import Saved, version_text
from .tensorbundle import Bundle, opened, regular_file
from .tf2_checkpoint import CheckpointStore, ObjectGraph, layer_variables, object_graph, read_tf2, skipped_notes

MAX_METADATA_BYTES = 256 << 20


def _metadata(path: str) -> list | None:
    """The SavedMetadata nodes as (node path, identifier, metadata JSON text), or None."""
    file = os.path.join(path, "keras_metadata.pb")
    if not os.path.lexists(file):
        return None
    size = regular_file(file, path, path)
    if size > MAX_METADATA_BYTES:
        raise LstmctlError(f"{path}: keras_metadata.pb of {size} bytes is over the {MAX_METADATA_BYTES}-byte cap")
    with opened(file, path) as fh:
        message = Message(fh.read(), f"{path}: keras_metadata.pb")
    return [(node.text(3), node.text(4), node.text(5)) for node in message.repeated(1)]


def read(path: str) -> Saved:
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        if os.path.lexists(os.path.join(path, name)):
            regular_file(os.path.join(path, name), path, path)
            break
    variables = os.path.join(path, "variables")
    if not os.path.isfile(os.path.join(variables, "variables.index")):
        raise LstmctlError(f"{path}: SavedModel without variables/variables.index (no weights to read)")
    bundle = Bundle(os.path.join(variables, "variables"), f"{path}: variables", folder=path)
    graph = object_graph(bundle)
    if graph is None:
        raise LstmctlError(f"{path}: variables/ holds no object graph; not a TF2 SavedModel")
    nodes = _metadata(path)
    root = next((meta for node_path, _, meta in nodes or [] if node_path == "root"), None)
    if root is None:
        saved = read_tf2(bundle, graph, path)
        saved.format = "savedmodel"
        saved.notes[0] = "SavedModel without Keras metadata" + (" (no keras_metadata.pb)" if nodes is None else "") + ": its variables read as weights only"
        return saved
    where = f"{path}: keras_metadata.pb"
    meta = safejson.loads(root, f"{where} (root)")
    if not isinstance(meta, dict):
        raise LstmctlError(f"{where}: the root's metadata is not a JSON object")
    config = meta.get("model_config")
    if config is None and "config" in meta:
        config = {"class_name": meta.get("class_name"), "config": meta["config"]}
    if not isinstance(config, dict) or not isinstance(config.get("config"), (dict, list)):
        saved = read_tf2(bundle, graph, path)
        saved.format = "savedmodel"
        saved.notes[0] = "SavedModel of a Keras model without a config (a subclassed model): its variables read as weights only"
        return saved
    config = _untuple(config)
    layers = _layers(nodes, graph, where)
    store = CheckpointStore(bundle, layers, path)
    version = version_text(meta.get("keras_version"), f"{where}: keras_version")
    backend = version_text(meta.get("backend"), f"{where}: backend")
    return Saved(path, "savedmodel", version, backend, config, store, ["SavedModel folder: Keras config from keras_metadata.pb, weights from variables/", *skipped_notes(store.skipped())])


def _untuple(value):
    """The metadata writes tuples as {"class_name": "__tuple__", "items": [...]}; .h5 configs as
    lists (safejson bounds the depth, so this recursion is bounded too)."""
    if isinstance(value, dict):
        if value.get("class_name") == "__tuple__" and isinstance(value.get("items"), list) and len(value) == 2:
            return [_untuple(v) for v in value["items"]]
        return {k: _untuple(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untuple(v) for v in value]
    return value


def _layers(nodes: list, graph: ObjectGraph, where: str) -> dict:
    """{layer name: [(TF name, key)]} for the model's own layers (metadata paths `root.<child>`)."""
    layers = {}
    for node_path, identifier, meta_text in nodes:
        parts = node_path.split(".")
        if len(parts) != 2 or parts[0] != "root" or not identifier.startswith("_tf_keras_") or identifier == "_tf_keras_metric":
            continue
        meta = safejson.loads(meta_text, f"{where} ({show(node_path)})")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str):
            raise LstmctlError(f"{where}: '{show(node_path)}' has no layer name")
        node = graph.find(node_path)
        if node is None:
            raise LstmctlError(f"{where}: '{show(node_path)}' is not in the variables' object graph")
        layers[name] = layer_variables(graph, node)
    return layers
