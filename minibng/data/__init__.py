"""Data sets, downloads and batching for minibng.

One module per data set — :mod:`~minibng.data.mnist` (MNIST, Fashion-MNIST), :mod:`~minibng.data.cifar`
(CIFAR-10/100, binary format), :mod:`~minibng.data.ptb` (Penn Treebank), :mod:`~minibng.data.rt_polarity`
(sentence polarity) — each with ``load(..., data_dir=None, download=True)``.  Files are looked for under the
data roots of :mod:`~minibng.data.root` (``--data-dir``, ``$MINIBNG_DATA``, ``./datasets``, the user cache,
``/usr/share/datasets``), verified by SHA-256, and downloaded when missing (:mod:`~minibng.data.download`).
:class:`Batches` moves a data set to the device once and serves seeded, resumable shuffled mini-batches;
:mod:`~minibng.data.augment` holds the on-device CIFAR augmentation.
"""
from . import augment, cifar, mnist, ptb, rt_polarity, synthetic
from .augment import Compose, RandomCropFlip, pad_to_32, random_crop_flip
from .batching import Batches
from .checksums import ChecksumError, DatasetError, FileSpec
from .mnist import ImageData
from .root import search_roots

__all__ = ["augment", "cifar", "mnist", "ptb", "rt_polarity", "synthetic", "Batches", "RandomCropFlip",
           "Compose", "random_crop_flip", "pad_to_32", "DatasetError", "ChecksumError", "FileSpec", "ImageData",
           "search_roots", "load"]

_LOADERS = {"mnist": mnist.load, "fashion-mnist": mnist.load, "cifar-10": cifar.load, "cifar-100": cifar.load}


def load(name: str, data_dir=None, download: bool = True, **options):
    """``load("mnist" | "fashion-mnist" | "cifar-10" | "cifar-100" | "ptb" | "rt-polarity", data_dir=...)``."""
    if name in _LOADERS:
        return _LOADERS[name](name, data_dir=data_dir, download=download, **options)
    if name == "ptb":
        return ptb.load(data_dir=data_dir, download=download)
    if name == "rt-polarity":
        return rt_polarity.load(data_dir=data_dir, download=download)
    raise ValueError(f"unknown data set {name!r}; expected one of {', '.join([*_LOADERS, 'ptb', 'rt-polarity'])}")
