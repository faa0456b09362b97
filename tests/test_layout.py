"""The package layout (docs/architecture.md): every module imports on its own (no import circles),
each command module is registered, and lstmctl 0.1's flat import paths still work, with a
DeprecationWarning naming the new one."""

import importlib
import pkgutil
import subprocess
import sys
import textwrap

import pytest

import lstmctl
from conftest import ROOT
from lstmctl import _moved
from lstmctl.cli import main

MODULES = sorted(m.name for m in pkgutil.walk_packages(lstmctl.__path__, "lstmctl.") if m.name != "lstmctl.__main__")


def test_every_module_imports_first_on_its_own():
    """A circle shows only when the module on it is imported first: one fresh interpreter imports
    each module with every lstmctl module forgotten before it."""
    script = textwrap.dedent(
        f"""
        import importlib, sys
        failed = []
        for name in {MODULES!r}:
            for loaded in [m for m in sys.modules if m == "lstmctl" or m.startswith("lstmctl.")]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
        print("\\n".join(failed))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    assert len(MODULES) > 50


def test_each_command_module_is_a_registered_command():
    modules = {m.name for m in pkgutil.iter_modules(importlib.import_module("lstmctl.commands").__path__)} - {"options"}
    assert modules == set(main.commands) == {"inspect", "gates", "run", "compare", "report", "trace", "diagnose", "export"}
    for name, command in main.commands.items():
        assert command.callback.__module__ == f"lstmctl.commands.{name}"


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_old_import_path_forwards_with_a_warning(old):
    sys.modules.pop(f"lstmctl.{old}", None)
    with pytest.warns(DeprecationWarning, match=rf"lstmctl\.{old} is now lstmctl\."):
        module = importlib.import_module(f"lstmctl.{old}")
    new = [importlib.import_module(t) for t in _moved.targets(old)]
    public = getattr(new[0], "__all__", None) or [n for n in dir(new[0]) if not n.startswith("_") and getattr(getattr(new[0], n), "__module__", None) == new[0].__name__]
    assert public, old
    for name in public:
        assert getattr(module, name) is getattr(new[0], name)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_old_names_that_moved_between_modules_resolve():
    """Names that left their module in the split: hdf5.show (errors), safejson.positive_int (config),
    readers.open_zip (zipsafe) and readers.read_keras_zip (keras_zip), render's (render.console)."""
    from lstmctl import errors
    from lstmctl.config import positive_int
    from lstmctl.formats.keras_zip import read_keras_zip
    from lstmctl.formats.zipsafe import open_zip
    from lstmctl.render.console import render_inspect

    for old in ("hdf5", "safejson", "readers"):
        sys.modules.pop(f"lstmctl.{old}", None)
    with pytest.warns(DeprecationWarning):
        from lstmctl.hdf5 import show
        from lstmctl.readers import open_zip as old_open_zip
        from lstmctl.readers import read_keras_zip as old_read
        from lstmctl.safejson import positive_int as old_positive_int
    assert (show, old_open_zip, old_read, old_positive_int) == (errors.show, open_zip, read_keras_zip, positive_int)
    with pytest.warns(DeprecationWarning, match="lstmctl.render.console.render_inspect"):
        from lstmctl.render import render_inspect as old_render_inspect
    assert old_render_inspect is render_inspect


def test_public_api_is_where_the_readme_says():
    from lstmctl import conventions
    from lstmctl.model import Model
    from lstmctl.runner import run_layer

    model = lstmctl.load(ROOT / "sample_models" / "k3_lstm_dense.keras")
    assert isinstance(model, Model) and callable(run_layer)
    arrays, _ = conventions.export(model, "pytorch", ["lstm"])
    assert sorted(arrays) == ["bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"]
    assert conventions.import_arrays(arrays, "pytorch").recurrent_layers()[0].cell.units == 5
