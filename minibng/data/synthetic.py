"""Small synthetic data sets for tests and examples (deterministic given a seed).

``blobs``: classification with Gaussian clusters — class c has centre μ_c ~ N(0, separation² I) and samples
x = μ_c + ε, ε ~ N(0, I).  ``images``: NCHW uint8 images whose class is a bright horizontal band at a class-
dependent height, plus noise — learnable by a small convolutional net in a few steps.  ``tokens``: a token
stream from a first-order Markov chain over a small vocabulary, for language-model tests.
"""
from __future__ import annotations

import numpy as np

__all__ = ["blobs", "images", "tokens"]


def blobs(n: int = 512, features: int = 20, classes: int = 3, separation: float = 3.0, seed: int = 0,
          dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, features) in ``dtype``, y (n,) int64 in 0..classes−1); every class gets ⌊n/classes⌋ or one more."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, separation, size=(classes, features))
    y = rng.permutation(np.arange(n) % classes).astype(np.int64)
    x = centres[y] + rng.standard_normal((n, features))
    return x.astype(dtype), y


def images(n: int = 256, classes: int = 4, channels: int = 3, size: int = 16, noise: int = 40,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, channels, size, size) uint8, y (n,) int64): class c lights rows near height (c + ½)·size/classes."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % classes).astype(np.int64)
    x = rng.integers(0, noise, size=(n, channels, size, size)).astype(np.int64)
    band = size // classes
    rows = np.arange(size)
    lit = (rows[None, :] >= (y[:, None] * band)) & (rows[None, :] < (y[:, None] + 1) * band)   # (n, size)
    x += np.where(lit[:, None, :, None], 200, 0)
    return np.clip(x, 0, 255).astype(np.uint8), y


def tokens(length: int = 2000, vocab: int = 20, seed: int = 0) -> np.ndarray:
    """int64 stream of ``length`` ids in 0..vocab−1 from a random sparse Markov chain (predictable next token)."""
    rng = np.random.default_rng(seed)
    transition = rng.dirichlet(np.full(vocab, 0.1), size=vocab)
    cumulative = np.cumsum(transition, axis=1)
    out = np.empty(length, dtype=np.int64)
    out[0] = rng.integers(vocab)
    draws = rng.random(length)
    for t in range(1, length):
        out[t] = min(int(np.searchsorted(cumulative[out[t - 1]], draws[t])), vocab - 1)
    return out
