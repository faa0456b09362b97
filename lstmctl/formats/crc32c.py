"""CRC-32C (Castagnoli), as TensorFlow checks its checkpoint files: with the `crc32c` package
(hardware CRC instructions; `pip install lstmctl[fast]`) when it is installed, else in NumPy.

The standard library has only the other CRC-32. A byte-at-a-time loop in Python reads about a
megabyte a second, too slow for a checkpoint shard, so long inputs are cut into equal blocks whose
CRCs are computed side by side (one NumPy table lookup per byte position for all blocks at once)
and then joined: a CRC register is linear, so feeding a block after some register value equals
feeding it after zero, XORed with that value carried through as many zero bytes.
"""

import functools
import sys

import numpy as np

POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8


def _table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(POLY), table >> 1).astype(np.uint32)
    return table


TABLE = _table()
_TABLE_LIST = TABLE.tolist()
_SMALL = 1 << 16  # below this the plain loop is as quick
_BLOCK = 1 << 11  # measured best for 1-100 MB (about 80 MB/s on one core)
_LOW = 0 if sys.byteorder == "little" else 3  # the register's low byte within its four


def _feed(reg: int, data) -> int:
    """The register after feeding `data` byte by byte (the plain algorithm)."""
    table = _TABLE_LIST
    for byte in data:
        reg = table[(reg ^ byte) & 0xFF] ^ (reg >> 8)
    return reg


def _feed_blocks(regs: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Row k of `columns` (bytes, one column per block) fed into register k of each block, all
    blocks side by side; in place, on the register's low byte, to keep each step four array ops."""
    regs = regs.astype(np.uint32).copy()
    low = regs.view(np.uint8)[_LOW::4]
    index = np.empty(regs.size, dtype=np.uint8)
    shifted = np.empty_like(regs)
    looked = np.empty_like(regs)
    for column in columns:
        np.bitwise_xor(low, column, out=index)
        np.right_shift(regs, 8, out=shifted)
        np.take(TABLE, index, out=looked)
        np.bitwise_xor(looked, shifted, out=regs)
    return regs


@functools.cache
def _zeros_operator(length: int) -> list:
    """Four 256-entry tables giving the register after `length` zero bytes, byte by byte of the
    start value (the map is linear, so the four parts XOR together)."""
    starts = (np.arange(256, dtype=np.uint32)[None, :] << (8 * np.arange(4, dtype=np.uint32))[:, None]).ravel()
    ends = _feed_blocks(starts, np.zeros((length, starts.size), dtype=np.uint8))
    return [ends[256 * k : 256 * (k + 1)].tolist() for k in range(4)]


@functools.cache
def _native():
    """The crc32c package's function, or None. Looked up at first use: only TF formats need it."""
    try:
        import crc32c  # the PyPI package (absolute import: not this module)
    except ImportError:
        return None
    return crc32c.crc32c


def extend(crc: int, data) -> int:
    """The CRC-32C of what `crc` covered followed by `data` (crc 0 for a fresh start)."""
    native = _native()
    return numpy_extend(crc, data) if native is None else native(data, value=crc)


def numpy_extend(crc: int, data) -> int:
    """extend() without the crc32c package."""
    view = memoryview(data).cast("B")
    reg = crc ^ 0xFFFFFFFF
    n = len(view)
    if n <= _SMALL:
        return _feed(reg, view) ^ 0xFFFFFFFF
    block = _BLOCK
    count = n // block
    columns = np.frombuffer(view[: count * block], dtype=np.uint8).reshape(count, block).T.copy()
    raws = _feed_blocks(np.zeros(count, dtype=np.uint32), columns).tolist()
    t0, t1, t2, t3 = _zeros_operator(block)
    for raw in raws:
        reg = t0[reg & 0xFF] ^ t1[(reg >> 8) & 0xFF] ^ t2[(reg >> 16) & 0xFF] ^ t3[reg >> 24] ^ raw
    return _feed(reg, view[count * block :]) ^ 0xFFFFFFFF


def value(data) -> int:
    return extend(0, data)


def unmask(masked: int) -> int:
    """TensorFlow stores CRCs masked (rotated and offset) so a CRC of CRC-bearing data stays strong."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF
