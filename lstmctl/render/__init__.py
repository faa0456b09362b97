"""What lstmctl shows: terminal tables and heatmaps (console), the layer graph as DOT or Mermaid
text (diagram), and the self-contained HTML page (report)."""


def __getattr__(name):
    """lstmctl 0.1's `lstmctl.render` module is now lstmctl.render.console: its names still
    resolve here, with a DeprecationWarning."""
    import importlib
    import warnings

    console = importlib.import_module("lstmctl.render.console")
    if name.startswith("__") or not hasattr(console, name):
        raise AttributeError(f"module 'lstmctl.render' has no attribute {name!r}")
    warnings.warn(f"lstmctl.render.{name} is now lstmctl.render.console.{name}", DeprecationWarning, stacklevel=2)
    return getattr(console, name)
