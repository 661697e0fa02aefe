"""The sentence-classification CNN of Kim (2014), CNN-rand, as the paper's §4.5 uses it on Rotten Tomatoes.

A sentence of L word ids becomes the matrix of its word vectors x_{1:L} (x_t ∈ R^k, k = ``embed``).  A filter
w ∈ R^{h·k} of width h reads every window of h consecutive words,

    c_t = ReLU(w · x_{t:t+h−1} + b),    t = 1 … L − h + 1,

and max-over-time pooling keeps one feature per filter, ĉ = max_t c_t.  ``maps`` filters for each width in
``widths`` give the penultimate vector z = [ĉ_1, …, ĉ_m] (m = maps · len(widths)); dropout, then a linear
layer, give the class scores y = W z + b.  Everything is built from minibng.nn modules:

    Embedding(V, k) → WordsToChannels → Concat(for each h: Conv2d(k, maps, (h, 1)) → ReLU → GlobalMaxPool2d)
                    → Dropout(p) → Linear(m, classes)

The word vectors are laid out as k input channels of a (L × 1) "image", so the filter of width h is a Conv2d
kernel (maps, k, h, 1): the same sum over the h·k window as Kim's (N, 1, L, k) view with kernel (h, k), but
col2im loops over h kernel positions instead of h·k (about 1.3× faster for the whole step on this CPU).

Kim's max-norm constraint on the output layer is a Trainer callback, :class:`minibng.train.MaxNorm`.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..nn.module import Module

__all__ = ["text_cnn", "WordsToChannels"]


class WordsToChannels(Module):
    """(N, L, k) word vectors → (N, k, L, 1): y[n, c, t, 0] = x[n, t, c].  Backward: dx[n, t, c] = dy[n, c, t, 0]."""

    def forward(self, x):
        self.check_input(x, ndim=3)
        return x.copy().transpose(0, 2, 1)[..., None]  # a copy of x, in the channels-last memory Conv2d reads

    def backward(self, dy):
        return dy[..., 0].transpose(0, 2, 1).copy()


def text_cnn(vocab_size, embed=128, widths=(3, 4, 5), maps=100, dropout=0.5, classes=2, embed_init="normal",
             init="torch", dtype=np.float32, rng=None):
    """Kim's CNN over word ids (N, L) → class scores (N, classes); see the module docstring.

    ``vocab_size`` rows of word vectors (id 0, the padding word, is a learned vector like any other), initialized
    N(0, 1) by default (Torch7's LookupTable, which the paper ran on; Kim's CNN-rand drew U(±0.25): pass
    ``embed_init=0.25``).  Filters and the output layer use ``init`` (Torch7's uniform(±1/√fan_in) by default).
    Sentences must be at least max(widths) words long (pad them).
    """
    widths = tuple(int(h) for h in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"text_cnn: widths must be a non-empty list of positive ints, got {widths}")
    if int(maps) < 1 or int(classes) < 2 or int(embed) < 1:
        raise ValueError(f"text_cnn: embed, maps must be positive and classes >= 2, got embed={embed}, "
                         f"maps={maps}, classes={classes}")
    branches = [nn.Sequential(nn.Conv2d(embed, maps, (h, 1), init=init, dtype=dtype, rng=rng), nn.ReLU(),
                              nn.GlobalMaxPool2d()) for h in widths]
    return nn.Sequential(
        nn.Embedding(vocab_size, embed, init=embed_init, dtype=dtype, rng=rng),
        WordsToChannels(),
        nn.Concat(*branches, axis=1),
        nn.Dropout(dropout),
        nn.Linear(maps * len(widths), classes, init=init, dtype=dtype, rng=rng),
    )
