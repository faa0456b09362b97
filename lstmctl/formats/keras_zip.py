"""The Keras 3 `.keras` zip: config.json, metadata.json and model.weights.h5 (read through the HDF5 wall).
"""

import io

from ..errors import LstmctlError
from . import safejson
from .h5wall import open_h5
from .saved import EmptyStore, KerasV3Store, Saved, version_text
from .zipsafe import check_names, open_zip, read_member

MAX_MEMBER_BYTES = 2 << 30  # model.weights.h5 inside a .keras zip
MAX_CONFIG_BYTES = safejson.MAX_JSON_BYTES
MAX_METADATA_BYTES = 1 << 20


def read_keras_zip(path: str) -> Saved:
    zf = open_zip(path, path)
    with zf:
        check_names(zf, path)
        names = set(zf.namelist())
        if "config.json" not in names:
            raise LstmctlError(f"{path}: zip has no config.json; not a .keras model")
        config = safejson.loads(read_member(zf, "config.json", MAX_CONFIG_BYTES, path), f"{path}: config.json")
        metadata = {}
        if "metadata.json" in names:
            metadata = safejson.loads(read_member(zf, "metadata.json", MAX_METADATA_BYTES, path), f"{path}: metadata.json")
        if "model.weights.h5" in names:
            blob = read_member(zf, "model.weights.h5", MAX_MEMBER_BYTES, path, sink=io.BytesIO())
            blob.seek(0)
            h5 = open_h5(blob, f"{path}: model.weights.h5")
        elif "model.weights.npz" in names:
            raise LstmctlError(f"{path}: weights stored as model.weights.npz are not supported")
        else:
            h5 = None
    if not isinstance(config, dict):
        raise LstmctlError(f"{path}: config.json is not a JSON object")
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    store = KerasV3Store(h5, path) if h5 is not None else EmptyStore(path)
    return Saved(path, "keras-zip", version_text(version, f"{path}: metadata.json"), None, config, store)
