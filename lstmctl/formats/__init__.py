"""Readers: one module per on-disk form, each turning a path into the same model description.

`load(path)` picks the reader by what MODEL is: a SavedModel folder (savedmodel), a TensorFlow
checkpoint — its prefix, `.index`, a data shard or a folder with a `checkpoint` file
(tf2_checkpoint, or tf1_checkpoint when it holds no object graph) — or a Keras file recognised
by its first bytes (keras_zip, keras_h5). Keras readers return a `saved.Saved` (config as data
and a weight store) that `build` turns into a `Model`; TF1 checkpoints and --convention .npz
files (npz_weights) have no Keras config and build their Model directly.
"""

import os
import stat

from ..errors import LstmctlError, UsageError

MAGIC_HDF5 = b"\x89HDF\r\n\x1a\n"
MAGIC_ZIP = b"PK\x03\x04"
MAGIC_NPY = b"\x93NUMPY"


def load(path: str, forget_bias: float | None = None, activation: str | None = None):
    """The Model at `path`. `forget_bias` and `activation` apply to TF1 checkpoints only: TF1
    adds forget_bias at run time and the checkpoint records neither."""
    from . import build, savedmodel, tf1_checkpoint
    from .tensorbundle import Bundle, resolve
    from .tf2_checkpoint import object_graph, read_tf2

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
                return tf1_checkpoint.model(bundle, path, 1.0 if forget_bias is None else forget_bias, activation)
            saved = read_tf2(bundle, graph, path)
    if forget_bias is not None or activation is not None:
        given = ", ".join(k for k, v in (("forget_bias", forget_bias), ("activation", activation)) if v is not None)
        raise UsageError(f"{given}: applies only to a TF1 checkpoint or an .npz read with --convention; {path} records its own")
    return build.build(saved if saved is not None else read_keras(path))


_NOT_FILES = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def check_kind(path: str):
    """MODEL must be a regular file or a folder (a SavedModel's, a checkpoint's), known by `stat`
    before anything opens it: opening a FIFO waits for a writer, forever if none comes; a device may
    never end. A path that does not exist is left to the readers (a checkpoint's prefix is no file)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LstmctlError(f"{path}: cannot be read ({exc.strerror})") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise LstmctlError(f"{path}: is {_NOT_FILES.get(stat.S_IFMT(mode), 'no regular file')}, not a model file; refused")


def sniff(path: str) -> str:
    """'hdf5', 'zip' or 'npy' from the file's first bytes; errors for anything else."""
    if os.path.isdir(path):
        raise LstmctlError(f"{path}: is a directory, not a model file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise LstmctlError(f"{path}: no such file") from None
    except OSError as exc:
        raise LstmctlError(f"{path}: cannot be read ({exc.strerror})") from None
    if not head:
        raise LstmctlError(f"{path}: file is empty")
    if head.startswith(MAGIC_HDF5):
        return "hdf5"
    if head.startswith(MAGIC_ZIP):
        return "zip"
    if head.startswith(MAGIC_NPY):
        return "npy"
    raise LstmctlError(f"{path}: not a Keras model file (neither HDF5 nor a .keras zip)")


def read_keras(path: str):
    """The `Saved` description of a .keras zip or a Keras HDF5 file."""
    kind = sniff(path)
    if kind == "zip":
        from .keras_zip import read_keras_zip

        return read_keras_zip(path)
    if kind == "hdf5":
        from .keras_h5 import read_hdf5

        return read_hdf5(path)
    raise LstmctlError(f"{path}: is a NumPy array file, not a model")
