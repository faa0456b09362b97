"""lstmctl: open a saved Keras model and show what is inside its recurrent layers.

    >>> import lstmctl
    >>> model = lstmctl.load("sample_models/k3_lstm_dense.keras")
    >>> result = model.run(x)            # {"output": …, "lstm/sequence": …, "lstm/h": …, "lstm/c": …}
"""

from .errors import CheckFailed, LstmctlError, UsageError

__version__ = "0.1.0"
__all__ = ["load", "LstmctlError", "UsageError", "CheckFailed", "__version__"]


def load(path):
    """Read a .keras, legacy .h5 or weights-only file into a `lstmctl.model.Model`."""
    import os

    from . import model, readers

    return model.build(readers.read(os.fspath(path)))
