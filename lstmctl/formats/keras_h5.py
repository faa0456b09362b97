"""Keras HDF5 files: a legacy full model (`model.save` to .h5, Keras 1/2 and tf_keras), Keras 1/2
`save_weights`, and Keras 3 `.weights.h5` — each read through the HDF5 wall.
"""

import numpy as np

from ..errors import LstmctlError, show
from . import safejson
from .h5wall import Group, Snapshot, open_h5
from .saved import KerasV3Store, LayerStore, Saved, version_text


def read_hdf5(path: str) -> Saved:
    h5 = open_h5(path, path)
    root = h5.file
    version = version_text(h5.attr(root, "keras_version"), f"{path}: attribute keras_version")
    backend = version_text(h5.attr(root, "backend"), f"{path}: attribute backend")
    model_config = h5.attr(root, "model_config")
    if model_config is not None:
        config = safejson.loads(model_config, f"{path}: model_config")
        group = h5.get("model_weights")
        if not isinstance(group, Group):
            raise LstmctlError(f"{path}: has a model_config but no model_weights group")
        version = version or version_text(h5.attr(group, "keras_version"), f"{path}: model_weights attribute keras_version")
        backend = backend or version_text(h5.attr(group, "backend"), f"{path}: model_weights attribute backend")
        return Saved(path, "hdf5-model", version, backend, config, LegacyStore(h5, "model_weights", path))
    if h5.attr(root, "layer_names") is not None:
        return Saved(path, "hdf5-weights", version, backend, None, LegacyStore(h5, "", path))
    if h5.get("layers") is not None or h5.get("vars") is not None:
        store = KerasV3Store(h5, path)
        notes = ["group names use Windows backslashes (the file was written on Windows); read as Keras's '/' paths"] if store.windows else []
        return Saved(path, "keras-weights", version, backend, None, store, notes)
    raise LstmctlError(f"{path}: HDF5 file holds no Keras model or weights")


class LegacyStore(LayerStore):
    """Keras 1/2 `save_weights` / legacy `model.save` layout: `<layer>/<weight_names…>`."""

    def __init__(self, h5: Snapshot, root: str, where: str):
        self.h5 = h5
        self.root = root
        self.where = where

    def _group_path(self, name: str) -> str:
        return f"{self.root}/{name}" if self.root else name

    def _names(self, group, attr: str, path: str) -> list[str]:
        names = self.h5.attr(group, attr)
        if names is None:
            return []
        if isinstance(names, np.ndarray) and names.size == 0:
            return []  # Keras writes an empty float array for a layer without weights
        if not isinstance(names, list):
            raise LstmctlError(f"{self.where}: attribute '{attr}' of '{show(path) or '/'}' is not a list of names")
        return names

    def layer_names(self) -> list[str]:
        group = self.h5.get(self.root) if self.root else self.h5.file
        if group is None:
            return []
        return self._names(group, "layer_names", self.root)

    def weight_names(self, layer: str) -> list[str]:
        path = self._group_path(layer)
        group = self.h5.get(path)
        if group is None:
            return []
        if not hasattr(group, "keys"):
            raise LstmctlError(f"{self.where}: '{show(path)}' is not a group")
        return self._names(group, "weight_names", path)

    def layer_weights(self, layer: str) -> list[np.ndarray]:
        return [self.h5.read(f"{self._group_path(layer)}/{w}") for w in self.weight_names(layer)]
