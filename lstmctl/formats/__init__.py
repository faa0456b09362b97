"""Readers: one module per on-disk form, each turning a path into the same model description.

`load(path)` picks the reader by what MODEL is: a SavedModel folder (savedmodel), a TensorFlow
checkpoint — its prefix, `.index`, a data shard or a folder with a `checkpoint` file
(tf2_checkpoint, or tf1_checkpoint when it holds no object graph) — or a file recognised by its
first bytes and structure, never by its name: Keras (keras_zip, keras_h5), a torch.save zip or
legacy pickle (torch_file), safetensors (safetensors_file), ONNX (onnx_file), TensorFlow Lite (tflite_file, by its TFL3
identifier). Keras readers
return a `saved.Saved` (config as data and a weight store) that `build` turns into a `Model`;
TF1 checkpoints, --convention .npz files (npz_weights), state_dicts (ports) and ONNX graphs have
no Keras config and build their Model directly, through one builder (weights_builder).
"""

import contextlib
import gc
import os
import stat

from ..errors import LstmctlError, UsageError

MAGIC_HDF5 = b"\x89HDF\r\n\x1a\n"
MAGIC_ZIP = b"PK\x03\x04"
MAGIC_NPY = b"\x93NUMPY"
PORT_FORMATS = ("pytorch-zip", "pytorch-legacy", "safetensors", "onnx", "tflite")


def load(path: str, forget_bias: float | None = None, activation: str | None = None):
    """The Model at `path`. `forget_bias` and `activation` apply to TF1 checkpoints: TF1 adds
    forget_bias at run time and the checkpoint records neither; `activation` is also nn.RNN's
    nonlinearity (tanh or relu) in a torch state_dict, which does not record it either. Each reader
    is imported when a path needs it (start-up time: a .keras file needs none of TensorFlow's)."""
    if os.path.isfile(path) and not path.endswith(".index") and ".data-" not in os.path.basename(path):
        kind = port_kind(path)
        if kind is not None:
            if forget_bias is not None or (activation is not None and kind in ("onnx", "tflite")):
                given = "forget_bias" if forget_bias is not None else "activation"
                raise UsageError(f"{given}: applies to a TF1 checkpoint or an nn.RNN's state_dict; {path} records its own")
            return read_port(path, kind, activation)
        saved = None  # a Keras file: HDF5 or zip
    elif is_savedmodel(path):
        from . import savedmodel

        saved = savedmodel.read(path)
    else:
        from . import tf1_checkpoint
        from .tensorbundle import Bundle, resolve
        from .tf2_checkpoint import object_graph, read_tf2

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
    from . import build  # Keras's builder (and h5py): not for a port

    return build.build(saved if saved is not None else read_keras(path))


def is_model(path: str) -> bool:
    """Whether `path` names a model (a file or folder `load` reads) rather than a file of arrays
    (.npy, an .npz of .npy members, CSV, JSON): told by its first bytes and structure, as `load`
    tells formats apart. Call check_kind first: this opens the file."""
    from .tensorbundle import resolve

    if os.path.isdir(path):
        return is_savedmodel(path) or resolve(path) is not None
    if resolve(path) is not None:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False  # the reader of arrays says why
    if head.startswith(MAGIC_ZIP):
        from .zipsafe import open_zip

        with open_zip(path, path) as zf:
            names = zf.namelist()
        return not (names and all(n.endswith(".npy") for n in names))
    return head.startswith(MAGIC_HDF5) or (not head.startswith(MAGIC_NPY) and port_kind(path) is not None)


def is_savedmodel(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.lexists(os.path.join(path, name)) for name in ("saved_model.pb", "saved_model.pbtxt"))


def port_kind(path: str) -> str | None:
    """Which of PORT_FORMATS the file at `path` is, from its first bytes and structure (None: none).
    A Keras HDF5 file or .keras zip is told apart before any port reader is imported, and an .npz
    of arrays given as a model is refused here, saying that --convention reads it (the zip's
    names are listed once for both)."""
    from .zipsafe import open_zip

    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
            size = fh.seek(0, os.SEEK_END)
    except OSError:
        return None  # the readers after this one say why
    if head.startswith(MAGIC_HDF5):
        return None
    if head.startswith(MAGIC_ZIP):
        with open_zip(path, path) as zf:
            names = zf.namelist()
        if "config.json" in names:
            return None
        if names and all(n.endswith(".npy") for n in names):
            raise UsageError(f"{path}: an .npz of arrays, not a Keras model; to read it as one recurrent layer's weights pass --convention keras|pytorch|tf1|onnx")
        from . import torch_file

        return "pytorch-zip" if torch_file.is_torch_zip(names) else None
    from . import safetensors_file, tflite_file, torch_file

    if tflite_file.looks_like(head):
        return "tflite"
    if head.startswith(torch_file.LEGACY_HEAD):
        return "pytorch-legacy"
    if safetensors_file.looks_like(head, size):
        return "safetensors"
    from . import onnx_file  # its op registry: imported for an ONNX file or what may be one

    if onnx_file.looks_like(head):
        return "onnx"
    return None


def read_port(path: str, kind: str, activation: str | None = None):
    """The Model of a PyTorch, safetensors, ONNX or TFLite file (`kind` from port_kind)."""
    from . import ports

    with collector_paused():
        if kind == "onnx":
            from . import onnx_file

            return onnx_file.model(path)
        if kind == "tflite":
            from . import tflite_file

            return tflite_file.model(path)
        if kind == "safetensors":
            from . import safetensors_file

            arrays, dtypes, notes = safetensors_file.read(path)
            tree = None
        else:
            from . import torch_file

            arrays, dtypes, notes, tree = (torch_file.read_zip if kind == "pytorch-zip" else torch_file.read_legacy)(path)
        return ports.state_dict_model(arrays, dtypes, path, kind, notes, activation, tree)


@contextlib.contextmanager
def collector_paused():
    """Python's cycle collector off for a while (reading, probing, running a graph, inspecting). A
    file of 10^5 tensors or nodes becomes some 10^6 small objects (a header's dicts and lists,
    arrays, layers, their facts), all kept, and the collector would walk them again and again as
    they are made: paused, a safetensors file of 10^5 tensors is read in half the time, an ONNX
    graph of 150k nodes in a third, and probed in a fifth. None of those objects is garbage in a
    cycle; the few cycles made meanwhile wait for it."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


_NOT_FILES = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def check_kind(path: str, what: str = "a model file", folders: bool = True, pipes: bool = False):
    """A path lstmctl opens must be a regular file (MODEL: or a folder, a SavedModel's or a
    checkpoint's; `--input`: or a pipe, read to its end as `cat` reads it), known by `stat` before
    anything opens it: opening a FIFO waits for a writer, forever if none comes; a device may never
    end. A path that does not exist is left to the readers (a checkpoint's prefix is no file)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LstmctlError(f"{path}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode) and not folders:
        raise LstmctlError(f"{path}: is a directory, not {what}")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or (pipes and stat.S_ISFIFO(mode))):
        raise LstmctlError(f"{path}: is {_NOT_FILES.get(stat.S_IFMT(mode), 'no regular file')}, not {what}; refused")


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
    raise LstmctlError(f"{path}: not a Keras model file (neither HDF5 nor a .keras zip), nor a torch.save, safetensors, ONNX or TensorFlow Lite file")


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
