"""lstmctl: open a saved Keras model and show what is inside its recurrent layers.

    >>> import lstmctl
    >>> model = lstmctl.load("sample_models/k3_lstm_dense.keras")
    >>> result = model.run(x)            # {"output": …, "lstm/sequence": …, "lstm/h": …, "lstm/c": …}
    >>> layer = lstmctl.load("weights.npz", convention="pytorch")   # a state_dict saved with numpy
    >>> tf1 = lstmctl.load("train/model.ckpt")                       # a TF1 checkpoint, no TensorFlow needed
    >>> port = lstmctl.load("encoder.pt")                            # a torch.save state_dict (or .safetensors, .onnx), no torch needed
"""

from . import _moved
from .errors import CheckFailed, LstmctlError, UsageError

_moved.install()  # the 0.1 flat import paths, forwarded with a DeprecationWarning

__version__ = "0.1.0"
__all__ = ["load", "LstmctlError", "UsageError", "CheckFailed", "__version__"]


def load(path, convention=None, forget_bias=1.0, activation=None, recurrent_activation=None, name=None, hard_sigmoid="keras2"):
    """Read a model into a `lstmctl.model.Model`: a .keras, legacy .h5 or weights-only file, a
    TensorFlow SavedModel folder, a TF1 / TF2 checkpoint (its prefix, `.index` file, or the
    folder holding its `checkpoint` file), a PyTorch state_dict (torch.save zip or legacy file,
    .safetensors) or an ONNX model (see docs/ports.md). For a TF1 checkpoint, `forget_bias` and
    `activation` say what TF1 added and used at run time (the checkpoint does not record them);
    for a state_dict, `activation` is nn.RNN's nonlinearity, tanh or relu.

    With `convention` ("keras", "pytorch", "tf1" or "onnx"), `path` is an .npz holding one recurrent
    layer's weights (or a stack) in that framework's layout; see `lstmctl.conventions.import_arrays`
    for the other arguments. An .npz given without `convention` is refused with a message saying so.
    """
    import os

    from . import formats

    path = os.fspath(path)
    formats.check_kind(path)
    if convention is not None:
        from .formats import npz_weights

        return npz_weights.import_file(
            path, convention, forget_bias=forget_bias, activation=activation,
            recurrent_activation=recurrent_activation, name=name, hard_sigmoid=hard_sigmoid,
        )  # fmt: skip
    options = {"recurrent_activation": recurrent_activation, "name": name}
    given = [k for k, v in options.items() if v is not None] + (["hard_sigmoid"] if hard_sigmoid != "keras2" else [])
    if given:
        raise UsageError(f"{', '.join(given)} only apply to an .npz read with a convention")
    if not isinstance(forget_bias, (int, float)) or isinstance(forget_bias, bool) or forget_bias != forget_bias or abs(forget_bias) == float("inf"):
        raise UsageError(f"forget_bias must be a finite number, got {forget_bias!r}")
    return formats.load(path, None if forget_bias == 1.0 else float(forget_bias), activation)
