"""lstmctl: open a saved Keras model and show what is inside its recurrent layers.

    >>> import lstmctl
    >>> model = lstmctl.load("sample_models/k3_lstm_dense.keras")
    >>> result = model.run(x)            # {"output": …, "lstm/sequence": …, "lstm/h": …, "lstm/c": …}
    >>> layer = lstmctl.load("weights.npz", convention="pytorch")   # a state_dict saved with numpy
"""

from .errors import CheckFailed, LstmctlError, UsageError

__version__ = "0.1.0"
__all__ = ["load", "LstmctlError", "UsageError", "CheckFailed", "__version__"]


def load(path, convention=None, forget_bias=1.0, activation=None, recurrent_activation=None, name=None, hard_sigmoid="keras2"):
    """Read a .keras, legacy .h5 or weights-only file into a `lstmctl.model.Model`.

    With `convention` ("keras", "pytorch", "tf1" or "onnx"), `path` is an .npz holding one recurrent
    layer's weights (or a stack) in that framework's layout; see `lstmctl.conventions.import_arrays`
    for the other arguments. An .npz given without `convention` is refused with a message saying so.
    """
    import os

    from . import builder, conventions, readers

    path = os.fspath(path)
    if convention is not None:
        return conventions.import_file(
            path, convention, forget_bias=forget_bias, activation=activation,
            recurrent_activation=recurrent_activation, name=name, hard_sigmoid=hard_sigmoid,
        )  # fmt: skip
    options = {"activation": activation, "recurrent_activation": recurrent_activation, "name": name}
    given = [k for k, v in options.items() if v is not None] + (["forget_bias"] if forget_bias != 1.0 else []) + (["hard_sigmoid"] if hard_sigmoid != "keras2" else [])
    if given:
        raise UsageError(f"{', '.join(given)} only apply to an .npz read with a convention")
    conventions.refuse_unmarked_npz(path)
    return builder.build(readers.read(path))
