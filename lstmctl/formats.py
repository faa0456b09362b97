"""One `read` for every format lstmctl opens, by what MODEL is: a SavedModel folder, a TensorFlow
checkpoint (its prefix, `.index`, a data shard or a folder with a `checkpoint` file), or a Keras
file (.keras zip, HDF5) recognised by its first bytes."""

import os

from . import builder, readers, savedmodel, tf1
from .checkpoint import object_graph, read_tf2
from .errors import LstmctlError, UsageError
from .tensorbundle import Bundle, resolve


def load(path: str, forget_bias: float | None = None, activation: str | None = None):
    """The Model at `path`. `forget_bias` and `activation` apply to TF1 checkpoints only: TF1
    adds forget_bias at run time and the checkpoint records neither."""
    if savedmodel.is_savedmodel(path):
        saved = savedmodel.read(path)
    else:
        prefix = resolve(path)
        if prefix is None:
            if os.path.isdir(path):
                raise LstmctlError(f"{path}: is a directory without a SavedModel (saved_model.pb) or a TensorFlow 'checkpoint' file")
            saved = None
        else:
            bundle = Bundle(prefix, path)
            graph = object_graph(bundle)
            if graph is None:
                return tf1.model(bundle, path, 1.0 if forget_bias is None else forget_bias, activation)
            saved = read_tf2(bundle, graph, path)
    if forget_bias is not None or activation is not None:
        given = ", ".join(k for k, v in (("forget_bias", forget_bias), ("activation", activation)) if v is not None)
        raise UsageError(f"{given}: applies only to a TF1 checkpoint or an .npz read with --convention; {path} records its own")
    return builder.build(saved if saved is not None else readers.read(path))
