"""Import paths of lstmctl 0.1's flat layout, kept working for a while: `import lstmctl.inputs`
gives a module that forwards every name to lstmctl.arrays.inputs, with a DeprecationWarning that
names the new path. New code imports from the new places (docs/architecture.md)."""

import importlib
import sys
import types
import warnings
from importlib.machinery import ModuleSpec

MOVED = {
    "builder": "formats.build",
    "checkpoint": "formats.tf2_checkpoint",
    "compare": "analysis.compare",
    "crc32c": "formats.crc32c",
    "describe": "analysis.describe",
    "diagnose": "analysis.diagnose",
    "graph": "model",
    "graphs": "render.diagram",
    "h5wall": "formats.h5wall",
    "hdf5": ("formats.hdf5", "errors"),
    "infer": "formats.infer",
    "inputs": "arrays.inputs",
    "protowire": "formats.protowire",
    "readers": ("formats.saved", "formats", "formats.keras_zip", "formats.keras_h5", "formats.zipsafe"),
    "report": "render.report",
    "safejson": ("formats.safejson", "config"),
    "savedmodel": "formats.savedmodel",
    "stream": "arrays.stream",
    "tensorbundle": "formats.tensorbundle",
    "tf1": "formats.tf1_checkpoint",
    "trace": "analysis.trace",
    "whatif": "analysis.whatif",
    "writers": "arrays.writers",
}


def targets(old: str) -> list:
    """The modules that now hold what lstmctl.<old> held (a split module has several)."""
    new = MOVED[old]
    return [f"lstmctl.{n}" for n in ((new,) if isinstance(new, str) else new)]


class _Forward(types.ModuleType):
    """The old module: every attribute read from the new one(s)."""

    def __init__(self, name, targets):
        super().__init__(name, f"moved to {', '.join(targets)}")
        self._targets = targets

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        for target in self._targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"{self.__name__} (now {', '.join(self._targets)}) has no attribute {attr!r}")

    def __dir__(self):
        return sorted({n for t in self._targets for n in dir(importlib.import_module(t))})


class _Loader:
    def create_module(self, spec):
        new = targets(spec.name.rsplit(".", 1)[1])
        warnings.warn(f"{spec.name} is now {' and '.join(new)}; import it from there", DeprecationWarning, stacklevel=2)
        return _Forward(spec.name, new)

    def exec_module(self, module):
        pass


class _Finder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        package, _, leaf = name.rpartition(".")
        if package == "lstmctl" and leaf in MOVED:
            return ModuleSpec(name, _Loader())
        return None


def install():
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
