"""Guarded access to an untrusted HDF5 file.

h5py silently follows soft links, external links, external storage and virtual datasets, even
for a file opened from memory. Every path component and dataset is checked here before a byte of
data is read, and each dataset's declared size is checked against caps before it is allocated.
"""

import h5py
import numpy as np

from .errors import LstmctlError

MAX_ARRAY_BYTES = 1 << 30  # one weight tensor
SPARSE_LIMIT = 16 << 20  # above this, the data must really be stored in the file
MAX_EXPANSION = 64  # declared bytes per stored byte, for datasets above SPARSE_LIMIT
MAX_ATTR_BYTES = 64 << 20
_NUMERIC_KINDS = "fiu"


class H5:
    """An HDF5 file (path or file object) read through checked paths only."""

    def __init__(self, source, where: str):
        self.where = where
        try:
            self.file = h5py.File(source, "r")
        except Exception:
            raise LstmctlError(f"{where}: not a readable HDF5 file (truncated or corrupt)") from None

    def close(self):
        self.file.close()

    def _child(self, group, name: str, path: str):
        link = group.get(name, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            kind = type(link).__name__
            raise LstmctlError(f"{self.where}: '{path}' is a {kind}; links out of the file are refused")
        return group[name]

    def get(self, path: str):
        """The object at a slash-separated path, or None; every component must be a hard link."""
        node = self.file
        done = []
        for part in [p for p in path.split("/") if p]:
            if not isinstance(node, h5py.Group):
                return None
            done.append(part)
            node = self._child(node, part, "/".join(done))
            if node is None:
                return None
        return node

    def members(self, group) -> list[str]:
        """Names of a group's members, every one checked to be a hard link."""
        names = list(group.keys())
        for name in names:
            self._child(group, name, f"{group.name.strip('/')}/{name}".strip("/"))
        return names

    def attr(self, obj, name: str, default=None):
        if name not in obj.attrs:
            return default
        try:
            attr_id = obj.attrs.get_id(name)
            declared = int(np.prod(attr_id.shape or (), dtype=np.float64)) * attr_id.dtype.itemsize
            if declared > MAX_ATTR_BYTES:
                raise LstmctlError(f"{self.where}: attribute '{name}' is too large")
            value = obj.attrs[name]
        except LstmctlError:
            raise
        except Exception:
            raise LstmctlError(f"{self.where}: attribute '{name}' could not be read (corrupt file)") from None
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value.tolist()]
        return value

    def read(self, path: str) -> np.ndarray:
        """A numeric dataset's contents, after the link, storage and size checks."""
        ds = self.get(path)
        if not isinstance(ds, h5py.Dataset):
            raise LstmctlError(f"{self.where}: '{path}' is not a dataset")
        return self.read_dataset(ds, path)

    def read_dataset(self, ds, path: str) -> np.ndarray:
        if ds.external:
            raise LstmctlError(f"{self.where}: dataset '{path}' uses external storage; refused")
        if ds.is_virtual:
            raise LstmctlError(f"{self.where}: dataset '{path}' is a virtual dataset; refused")
        dtype = ds.dtype
        if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None:
            raise LstmctlError(f"{self.where}: dataset '{path}' has non-numeric dtype {dtype}")
        declared = int(np.prod(ds.shape, dtype=np.float64)) * dtype.itemsize
        if declared > MAX_ARRAY_BYTES:
            raise LstmctlError(
                f"{self.where}: dataset '{path}' declares shape {ds.shape} ({declared} bytes), over the cap"
            )
        stored = ds.id.get_storage_size()
        if declared > SPARSE_LIMIT and stored * MAX_EXPANSION < declared:
            raise LstmctlError(
                f"{self.where}: dataset '{path}' declares {declared} bytes but stores only {stored}; refused"
            )
        try:
            data = ds[()]
        except Exception:
            raise LstmctlError(f"{self.where}: dataset '{path}' could not be read (corrupt file)") from None
        return np.asarray(data).astype(dtype.newbyteorder("="), copy=False)
