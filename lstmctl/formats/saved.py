"""The model description every reader returns: a `Saved` (format, saving Keras version and backend,
the model config as plain JSON data or None for weights-only files) and a weight store that hands
out each layer's arrays in Keras's `get_weights()` order. Nothing from a file is imported or evaluated.
"""

import abc
from dataclasses import dataclass, field

import numpy as np

from ..errors import LstmctlError, show
from .h5wall import Snapshot


@dataclass
class Saved:
    path: str
    format: str  # keras-zip | hdf5-model | hdf5-weights | keras-weights
    keras_version: str | None
    backend: str | None
    config: dict | None
    store: "WeightStore"
    notes: list[str] = field(default_factory=list)


def version_text(value, where):
    """A version or backend string; numbers are accepted as Keras 1 wrote some, nothing else."""
    if value is None:
        return None
    if isinstance(value, (bytes, np.bytes_)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, (np.integer, np.floating)) and not isinstance(value, np.bool_):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise LstmctlError(f"{where} is not a version string")
    value = show(str(value))
    if len(value) > 100:
        raise LstmctlError(f"{where} is not a version string (too long)")
    return value


class WeightStore:
    """Hands out arrays by location; the model builder decides which location a layer has."""

    where: str


class EmptyStore(WeightStore):
    def __init__(self, where):
        self.where = where


class KerasV3Store(WeightStore):
    """Keras 3 layout: groups named after snake_cased class names; arrays under `vars/0..n`.

    A file written on Windows names its groups with backslashes, all at the top
    (`layers\\lstm\\cell` holding `vars`): paths are mapped onto those names."""

    def __init__(self, h5: Snapshot, where: str):
        self.h5 = h5
        self.where = where
        root = h5.members(h5.file)
        self.windows = "layers" not in root and any(name.startswith("layers\\") for name in root)
        self._root = root if self.windows else []

    def _physical(self, path: str) -> str:
        if not self.windows:
            return path
        parts = [p for p in path.split("/") if p]
        cut = parts.index("vars") if "vars" in parts else len(parts)
        return "/".join(["\\".join(parts[:cut]), *parts[cut:]])

    def vars(self, path: str) -> list[np.ndarray] | None:
        """The arrays under `<path>/vars`, in index order; None when the group is absent."""
        where = self._physical(f"{path}/vars")
        group = self.h5.get(where)
        if group is None:
            return None
        if not hasattr(group, "keys"):
            raise LstmctlError(f"{self.where}: '{show(where)}' is not a group")
        keys = self.h5.members(group)
        if not all(k.isascii() and k.isdigit() and str(int(k)) == k for k in keys):
            raise LstmctlError(f"{self.where}: '{show(where)}' holds members not numbered 0..{len(keys) - 1}")
        indices = sorted(int(k) for k in keys)
        if indices != list(range(len(indices))):
            raise LstmctlError(f"{self.where}: '{show(where)}' is not numbered 0..{len(indices) - 1}")
        return [self.h5.read(f"{where}/{i}") for i in indices]

    def children(self, path: str) -> list[str]:
        if self.windows:
            prefix = self._physical(path) + "\\"
            return [n[len(prefix) :] for n in self._root if n.startswith(prefix) and "\\" not in n[len(prefix) :]]
        group = self.h5.get(path)
        if group is None or not hasattr(group, "keys"):
            return []
        return self.h5.members(group)

    def all_arrays(self, path: str) -> list[np.ndarray]:
        """Every array below a group (depth first, names sorted): for layers not interpreted.

        The HDF5 wall refuses a group met twice (a loop), so this walk ends; a dataset under two
        names is one array, listed once."""
        phys = self._physical(path)
        starts = [n for n in self._root if n == phys or n.startswith(phys + "\\")] if self.windows else [path]
        out, seen = [], set()
        stack = sorted(starts, reverse=True)
        while stack:
            current = stack.pop()
            obj = self.h5.get(current)
            if obj is None or obj.id in seen:
                continue
            seen.add(obj.id)
            if hasattr(obj, "keys"):
                stack.extend(f"{current}/{name}" for name in sorted(self.h5.members(obj), reverse=True))
            else:
                out.append(self.h5.read_dataset(obj, current))
        return out


class LayerStore(WeightStore, abc.ABC):
    """Arrays by layer name, in Keras's `get_weights()` order (legacy HDF5, TensorFlow checkpoints)."""

    @abc.abstractmethod
    def layer_names(self) -> list[str]: ...

    @abc.abstractmethod
    def weight_names(self, layer: str) -> list[str]: ...

    @abc.abstractmethod
    def layer_weights(self, layer: str) -> list[np.ndarray]: ...
