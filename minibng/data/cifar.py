"""CIFAR-10 and CIFAR-100 from their *binary* distributions (nothing is ever unpickled).

Binary record layout (Krizhevsky 2009, "binary version"), one record per image, no header:

    CIFAR-10:   <1 byte label 0..9> <3072 bytes pixels>
    CIFAR-100:  <1 byte coarse label 0..19> <1 byte fine label 0..99> <3072 bytes pixels>

The 3072 pixel bytes are the red, then green, then blue 32×32 plane, each row-major: exactly one image in
NCHW order, so a file reshapes to (N, 3, 32, 32) without any transpose.

Files are looked for under ``<root>/cifar-10/cifar-10-batches-bin/`` (``data_batch_1..5.bin``, ``test_batch.bin``)
and ``<root>/cifar-100/cifar-100-binary/`` (``train.bin``, ``test.bin``).  When they are missing, the tarball
(``cifar-10-binary.tar.gz`` / ``cifar-100-binary.tar.gz``, found beside them or downloaded from Toronto) is
verified by SHA-256 and the batch files are extracted from it through the path filter of
:mod:`minibng.data.archive`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backend import get_array_module
from .archive import extract
from .checksums import DatasetError, FileSpec, verify_file
from .download import fetch, find
from .mnist import ImageData
from .root import download_roots, first_writable

__all__ = ["DATASETS", "NAMES", "load", "read_batches", "encode_records", "channel_mean_std", "normalize"]

_PIXELS = 3 * 32 * 32
_TORONTO = "https://www.cs.toronto.edu/~kriz/"


@dataclass(frozen=True)
class CifarLayout:
    archive: FileSpec
    train: tuple[FileSpec, ...]
    test: tuple[FileSpec, ...]
    label_bytes: int
    classes: tuple[int, ...]          # number of classes per label byte


def _bin(folder, name, size, sha):
    return FileSpec(f"{folder}/{name}", (sha,), size)


DATASETS = {
    "cifar-10": CifarLayout(
        FileSpec("cifar-10-binary.tar.gz", ("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",),
                 170052171, (_TORONTO + "cifar-10-binary.tar.gz",)),
        tuple(_bin("cifar-10-batches-bin", f"data_batch_{i}.bin", 30730000, sha) for i, sha in enumerate((
            "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
            "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
            "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
            "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
            "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add"), start=1)),
        (_bin("cifar-10-batches-bin", "test_batch.bin", 30730000,
              "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b"),),
        1, (10,)),
    "cifar-100": CifarLayout(
        FileSpec("cifar-100-binary.tar.gz", ("58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",),
                 168513733, (_TORONTO + "cifar-100-binary.tar.gz",)),
        (_bin("cifar-100-binary", "train.bin", 153700000,
              "f31298fc616915fa142368359df1c4ca2ae984d6915ca468b998a5ec6aeebf29"),),
        (_bin("cifar-100-binary", "test.bin", 30740000,
              "d8b1e6b7b3bee4020055f0699b111f60b1af1e262aeb93a0b659061746f8224a"),),
        2, (20, 100)),
}
NAMES = tuple(DATASETS)


def encode_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Binary records of uint8 ``images`` (N, 3, 32, 32) and ``labels`` (N,) or (N, label_bytes)."""
    images = np.asarray(images, dtype=np.uint8).reshape(len(images), _PIXELS)
    labels = np.asarray(labels, dtype=np.uint8).reshape(len(images), -1)
    return np.concatenate([labels, images], axis=1).tobytes()


def read_batches(paths, label_bytes: int, classes=None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N, label_bytes) uint8 of the binary batch files, concatenated."""
    record = label_bytes + _PIXELS
    images, labels = [], []
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % record:
            raise DatasetError(f"{path}: {raw.size:,} bytes is not a whole number of {record}-byte CIFAR records "
                               f"(truncated or not a CIFAR binary batch file)")
        rows = raw.reshape(-1, record)
        labels.append(rows[:, :label_bytes])
        images.append(rows[:, label_bytes:].reshape(-1, 3, 32, 32))
    labels = np.concatenate(labels)
    for column, count in enumerate(classes or ()):
        if labels[:, column].max(initial=0) >= count:
            raise DatasetError(f"{paths[0]}: label byte {column} holds {labels[:, column].max()}, "
                               f"outside 0..{count - 1}")
    return np.concatenate(images), labels


def _batch_files(name: str, data_dir, download: bool) -> list[Path]:
    layout = DATASETS[name]
    members = layout.train + layout.test
    found = [find(name, spec, data_dir)[0] for spec in members]
    if all(p is not None for p in found):
        return [verify_file(p, spec) for p, spec in zip(found, members)]
    archive = fetch(name, layout.archive, data_dir, download)
    dest = archive.parent
    if not _writable(dest):
        dest = (first_writable(download_roots(data_dir)) or dest) / name
    extract(archive, dest, [m.name for m in members], specs={m.name: m for m in members})
    return [verify_file(dest / m.name, m) for m in members]


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def load(name: str = "cifar-10", data_dir=None, download: bool = True, label: str = "fine") -> ImageData:
    """CIFAR-10 or CIFAR-100: uint8 images (N, 3, 32, 32) and int64 labels; 50,000 train and 10,000 test.

    ``label`` picks CIFAR-100's ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses) label.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(NAMES)}")
    if label not in ("fine", "coarse"):
        raise ValueError(f"label must be 'fine' or 'coarse', got {label!r}")
    layout = DATASETS[name]
    paths = _batch_files(name, data_dir, download)
    column = 0 if layout.label_bytes == 1 or label == "coarse" else 1
    train_x, train_y = read_batches(paths[:len(layout.train)], layout.label_bytes, layout.classes)
    test_x, test_y = read_batches(paths[len(layout.train):], layout.label_bytes, layout.classes)
    return ImageData(train_x, train_y[:, column].astype(np.int64), test_x, test_y[:, column].astype(np.int64))


def channel_mean_std(images, scale: float = 1 / 255, chunk: int = 4096):
    """Per-channel mean μ_c and standard deviation σ_c of ``scale · images`` over (N, H, W); float32 (C,) arrays.

    Accumulated in float64 over chunks of images, so a 50,000-image uint8 set needs no float copy of itself.
    """
    xp = get_array_module(images)
    total = xp.zeros(images.shape[1], dtype=xp.float64)
    squares = xp.zeros(images.shape[1], dtype=xp.float64)
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].astype(xp.float64) * scale
        total += x.sum(axis=(0, 2, 3))
        squares += (x * x).sum(axis=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = xp.sqrt(xp.maximum(squares / count - mean * mean, 0.0))
    return mean.astype(xp.float32), std.astype(xp.float32)


def normalize(images, mean, std, scale: float = 1 / 255, dtype=None):
    """(scale · x − μ_c) / σ_c per channel c of NCHW ``images``, in ``dtype`` (float32 by default)."""
    xp = get_array_module(images)
    dtype = xp.dtype(dtype or xp.float32)
    mean = xp.asarray(mean, dtype=dtype).reshape(1, -1, 1, 1)
    std = xp.asarray(std, dtype=dtype).reshape(1, -1, 1, 1)
    return (images.astype(dtype) * dtype.type(scale) - mean) / std
