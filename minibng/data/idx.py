"""Reader for the IDX format of MNIST and Fashion-MNIST (raw or gzip-compressed).

An IDX file is a 4-byte magic number, then one big-endian uint32 per dimension, then the values in C order:

    magic = 0x00 0x00 <type> <ndim>      type 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                                              0x0D float32, 0x0E float64 (big-endian)

The reader validates the magic, the type code, and that the file holds exactly ∏ dims values — a truncated or
padded file, or a header claiming more values than any file holds, is an error naming the file and what to do,
never a silently shorter array.
"""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from .checksums import DatasetError

__all__ = ["read_idx", "parse_idx", "encode_idx"]

_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_FIX = "delete it and let minibng fetch it again, or place the original by hand (docs/data.md)"


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """The array stored in IDX ``data`` (native byte order)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        magic = data[:4].hex() or "missing"
        raise DatasetError(f"{source}: not an IDX file (magic {magic}, expected 0000ttnn); {_FIX}")
    code, ndim = data[2], data[3]
    if code not in _TYPES:
        raise DatasetError(f"{source}: unknown IDX type code 0x{code:02x}; {_FIX}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{source}: truncated IDX header ({len(data)} bytes, need {header}); {_FIX}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _TYPES[code]
    expected = header + math.prod(dims) * dtype.itemsize   # Python ints: 65536⁴ items would wrap around in int64
    if len(data) != expected:
        raise DatasetError(f"{source}: IDX size mismatch: header says {dims} of {dtype.name} "
                           f"({expected:,} bytes), file holds {len(data):,} bytes (truncated or corrupted); {_FIX}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path) -> np.ndarray:
    """Read an IDX file, gzip-compressed (detected by its magic bytes, whatever the name) or raw."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetError(f"{path}: corrupted gzip data ({e}); {_FIX}") from e
    return parse_idx(raw, str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes of ``array`` (the inverse of :func:`parse_idx`; used to build test files)."""
    array = np.asarray(array)
    code = next(c for c, t in _TYPES.items() if t.kind == array.dtype.kind and t.itemsize == array.dtype.itemsize)
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(_TYPES[code], copy=False).tobytes()
