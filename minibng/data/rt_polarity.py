"""Sentence polarity data v1.0 (Pang & Lee 2005): rt-polarity.pos / rt-polarity.neg under ``<root>/rt-polarity/``.

5,331 positive and 5,331 negative movie-review snippets, one per line.  Both the authors' Windows-1252 files
and the common UTF-8 re-encodings are accepted (each verified by its own SHA-256); text is decoded as UTF-8,
falling back to Windows-1252.  When neither file is found, the authors' ``rt-polaritydata.tar.gz`` (placed by
hand or downloaded from Cornell) is opened and the two members are extracted through the path filter, each
verified by SHA-256 before it is written.

Tokens follow Kim (2014)'s ``clean_str``: keep only ASCII letters, digits and ( ) , ! ? ' `, split the clitics
's 've n't 're 'd 'll off their word, pad , ! ( ) ? with spaces, lower-case, split on whitespace.  Sentences
become rows of word ids padded with 0 (``<pad>``) to the longest sentence; labels are 1 = positive, 0 = negative.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .archive import extract
from .checksums import DatasetError, FileSpec, verify_file
from .download import fetch, find
from .root import download_roots, first_writable

__all__ = ["FILES", "ARCHIVE", "SentenceData", "read_lines", "clean_str", "tokenize", "build_vocab", "encode",
           "load", "train_val_split", "kfold_splits"]

PAD = "<pad>"
_NAME = "rt-polarity"
# Each file: the authors' Windows-1252 original first, then the UTF-8 re-encoding (same text).
FILES = {
    "pos": FileSpec("rt-polarity.pos", ("d79ef14009bbf87cd6be21f91c3ea1a3cbcb73b34dfb4231aef7bbcd7677abc4",
                                        "4134882974a28d0c7b5151256f0e33a6169984ee7372c279e673f1114f475d58"), 626168),
    "neg": FileSpec("rt-polarity.neg", ("4af43bf489620b498a0852c5a8c6a535155dec7985fdfea782b8f7756b957ccc",
                                        "2d11cfbc790f1cd96d78339f41ce53ced1efa83cd22d37d6788fa3fe3d17e2fd"), 612290),
}
# No SHA-256 of the archive itself is published; its two members are verified when extracted.
ARCHIVE = FileSpec("rt-polaritydata.tar.gz", (), None,
                   ("https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz",))
_MEMBERS = {"rt-polaritydata/rt-polarity.pos": "rt-polarity.pos", "rt-polaritydata/rt-polarity.neg": "rt-polarity.neg"}


@dataclass
class SentenceData:
    """ids (N, L) int64 padded with 0; labels (N,) int64 (1 = positive); lengths (N,); vocab[id] = word."""

    ids: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    vocab: list[str]
    word_to_id: dict[str, int]


def read_lines(path) -> list[str]:
    """The non-empty lines of a text file read as UTF-8, or as Windows-1252 when it is not valid UTF-8."""
    raw = Path(path).read_bytes()
    for encoding in ("utf-8", "cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    return [line.strip() for line in text.split("\n") if line.strip()]


_NOT_KEPT = re.compile(r"[^A-Za-z0-9(),!?'`]")
_CLITICS = ("'s", "'ve", "n't", "'re", "'d", "'ll")
_SPACED = ",!()?"


def clean_str(sentence: str) -> str:
    """Kim (2014)'s normalization of one sentence, as a space-separated lower-case string."""
    text = _NOT_KEPT.sub(" ", sentence)
    for clitic in _CLITICS:
        text = text.replace(clitic, " " + clitic)
    for mark in _SPACED:
        text = text.replace(mark, f" {mark} ")
    return " ".join(text.split()).lower()


def tokenize(sentence: str) -> list[str]:
    return clean_str(sentence).split()


def build_vocab(sentences) -> list[str]:
    """``<pad>`` (id 0), then every word by decreasing count, ties alphabetically."""
    counts = Counter(word for tokens in sentences for word in tokens)
    return [PAD] + sorted(counts, key=lambda w: (-counts[w], w))


def encode(sentences, word_to_id, length: int | None = None) -> np.ndarray:
    """(N, length) int64 ids, each row padded with 0 after its words; length defaults to the longest."""
    length = max(map(len, sentences), default=0) if length is None else length
    ids = np.zeros((len(sentences), length), dtype=np.int64)
    for row, tokens in enumerate(sentences):
        words = tokens[:length]
        ids[row, :len(words)] = [word_to_id[w] for w in words]
    return ids


def _source_files(data_dir, download: bool) -> list[Path]:
    specs = [FILES["pos"], FILES["neg"]]
    found = [find(_NAME, spec, data_dir) for spec in specs]
    if all(path is not None for path, _ in found):
        return [verify_file(path, spec) for (path, _), spec in zip(found, specs)]
    try:
        archive = fetch(_NAME, ARCHIVE, data_dir, download)
    except DatasetError as e:
        looked = "".join(f"\n  {p}" for _, paths in found for p in paths)
        raise DatasetError(f"data set '{_NAME}': rt-polarity.pos and rt-polarity.neg were not found.\n"
                           f"Looked in:{looked}\nThen looked for the authors' archive: {e}") from None
    dest = archive.parent
    if not os.access(dest, os.W_OK | os.X_OK):
        dest = (first_writable(download_roots(data_dir)) or dest) / _NAME
    extract(archive, dest, _MEMBERS, specs={m: FILES[n.rsplit(".", 1)[1]] for m, n in _MEMBERS.items()})
    return [verify_file(dest / spec.name, spec) for spec in specs]


def load(data_dir=None, download: bool = True) -> SentenceData:
    """All 10,662 sentences (positives first), tokenized, with a vocabulary built from all of them (as Kim)."""
    pos_path, neg_path = _source_files(data_dir, download)
    positives = [tokenize(s) for s in read_lines(pos_path)]
    negatives = [tokenize(s) for s in read_lines(neg_path)]
    sentences = positives + negatives
    vocab = build_vocab(sentences)
    word_to_id = {w: i for i, w in enumerate(vocab)}
    labels = np.concatenate([np.ones(len(positives), np.int64), np.zeros(len(negatives), np.int64)])
    lengths = np.array([len(t) for t in sentences], dtype=np.int64)
    return SentenceData(encode(sentences, word_to_id), labels, lengths, vocab, word_to_id)


def train_val_split(n: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of range(n): (train indices, validation indices), round(n·fraction) for validation."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def kfold_splits(n: int, k: int = 10, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Kim's cross-validation: a seeded partition of range(n) into k folds; [(train, test)] per held-out fold."""
    if not 2 <= k <= n:
        raise ValueError(f"k must be in [2, n], got k={k}, n={n}")
    folds = np.array_split(np.random.default_rng(seed).permutation(n), k)
    return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), np.sort(folds[i])) for i in range(k)]
