"""MNIST and Fashion-MNIST: the original IDX files, found under ``<root>/mnist/`` and ``<root>/fashion-mnist/``.

``load(name)`` returns ``ImageData(train_images, train_labels, test_images, test_labels)``: images uint8 of shape
(N, 28, 28) with values 0…255 (callers scale, e.g. x = images / 255), labels int64 in 0…9; N = 60,000 and 10,000.
The ``.gz`` files are verified by SHA-256 (a re-compressed copy, as Debian's ``dataset-fashion-mnist`` ships in
``/usr/share/datasets``, or the decompressed file, is accepted by the SHA-256 of its content).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .checksums import DatasetError, FileSpec
from .download import fetch
from .idx import read_idx

__all__ = ["ImageData", "FILES", "MIRRORS", "load", "NAMES"]

MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/",
              "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
}

# name: (bytes, SHA-256 of the .gz file, SHA-256 of the decompressed IDX file)
_SUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                       "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train-labels-idx1-ubyte.gz": (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                       "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "t10k-images-idx3-ubyte.gz": (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                                      "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "t10k-labels-idx1-ubyte.gz": (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                                      "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                                       "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train-labels-idx1-ubyte.gz": (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                                       "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "t10k-images-idx3-ubyte.gz": (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                                      "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "t10k-labels-idx1-ubyte.gz": (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                                      "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
}

FILES = {dataset: {name: FileSpec(name, (gz,), size, tuple(m + name for m in MIRRORS[dataset]), content)
                   for name, (size, gz, content) in sums.items()}
         for dataset, sums in _SUMS.items()}
NAMES = tuple(FILES)


class ImageData(NamedTuple):
    """A labelled image data set split into train and test (unpacks as a 4-tuple)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def _split(name, images_file, labels_file, count, data_dir, download):
    files = FILES[name]
    images = read_idx(fetch(name, files[images_file], data_dir, download))
    labels = read_idx(fetch(name, files[labels_file], data_dir, download))
    if images.shape != (count, 28, 28) or images.dtype != np.uint8:
        raise DatasetError(f"{name}/{images_file}: expected uint8 images of shape ({count}, 28, 28), "
                           f"got {images.dtype} {images.shape}")
    if labels.shape != (count,) or labels.dtype != np.uint8 or labels.max(initial=0) > 9:
        raise DatasetError(f"{name}/{labels_file}: expected {count} uint8 labels in 0..9, "
                           f"got {labels.dtype} {labels.shape}")
    return images, labels.astype(np.int64)


def load(name: str = "mnist", data_dir=None, download: bool = True) -> ImageData:
    """MNIST (``name="mnist"``) or Fashion-MNIST (``"fashion-mnist"``) as uint8 images and int64 labels."""
    if name not in FILES:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(NAMES)}")
    train = _split(name, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000, data_dir, download)
    test = _split(name, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000, data_dir, download)
    return ImageData(*train, *test)
