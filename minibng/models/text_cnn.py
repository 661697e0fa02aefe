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

Kim's max-norm constraint is :class:`MaxNorm`, a Trainer callback: after every step, each output unit's weight
vector (a column of the final Linear's ``weight`` (m, classes)) whose L2 norm exceeds s is rescaled to norm s.
As Kim, it constrains the output layer's weight only (not its bias, the filters or the word vectors).
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..backend import get_array_module
from ..nn.module import Module

__all__ = ["text_cnn", "WordsToChannels", "MaxNorm"]


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


class MaxNorm:
    """Kim's max-norm constraint as a Trainer callback: after each optimizer step,

        w_j ← w_j · min(1, s / ‖w_j‖₂)      for every output unit j (column j of ``layer.weight`` (in, out))

    so no output unit's weight vector is longer than s (Kim: s = 3).  ``layer`` is a Linear (for text_cnn, the
    model's last layer: ``MaxNorm(model[-1])``).  The weights are rescaled in place, which keeps them views into
    the optimizer's flat parameter vector; the scale is computed on the device (no host round-trip).
    """

    def __init__(self, layer, s=3.0):
        if not isinstance(layer, nn.Linear):
            raise TypeError(f"MaxNorm: expected a Linear layer, got {type(layer).__name__}")
        if not s > 0:
            raise ValueError(f"MaxNorm: s must be positive, got {s}")
        self.layer, self.s = layer, float(s)

    def apply(self):
        w = self.layer.weight.data
        xp = get_array_module(w)
        norms = xp.sqrt((w * w).sum(axis=0))
        limit = w.dtype.type(self.s)
        w *= xp.where(norms > limit, limit / xp.maximum(norms, limit), w.dtype.type(1))

    def on_step_end(self, trainer):
        self.apply()

    def __repr__(self):
        return f"MaxNorm(s={self.s})"
