"""The word-level LSTM language model of Zaremba et al. (2014), as the paper's §4.4 uses it on Penn Treebank.

A window of T word ids per stream, w_1 … w_T for N parallel streams, goes through

    Embedding(V, E) → Dropout(p) → LSTM(E, H, layers, dropout=p) → Dropout(p) → Linear(H, V)

so the logits z_t = h_t^L W + b (h_t^L the last layer's hidden state) score the next word w_{t+1} for every
t.  Dropout is applied to the word vectors, between the LSTM layers and before the output layer — never on the
recurrent connections (Zaremba et al.'s scheme).  The objective is the mean cross-entropy per predicted token,
log perplexity (``nn.SoftmaxCrossEntropy`` on the (T, N, V) logits); perplexity is its exponential.

The LSTM carries its final state into the next window (truncated BPTT): the Trainer resets it at the start of
every epoch and every evaluation, so within an epoch the streams are read as one long text each.

The paper's setup: V = 10,000, E = H = 200, 2 layers, p = 0.5, every parameter drawn from uniform(±0.1)
(Zaremba et al.'s initialization; ``init=`` takes any of :mod:`minibng.nn.init`'s rules instead).  With the
optimizers' ``layer`` partition the model has four blocks: the embedding table, LSTM layer 0 (its W_ih, W_hh
and b), LSTM layer 1, and the output layer (W and b).
"""
from __future__ import annotations

import numpy as np

from .. import backend, nn

__all__ = ["lstm_lm"]


def lstm_lm(vocab_size, embed=200, hidden=200, layers=2, dropout=0.5, init=0.1, dtype=np.float32, rng=None):
    """Word ids (T, N) → next-word logits (T, N, vocab_size); see the module docstring.

    ``init`` is a float a for uniform(±a) everywhere (0.1 by default), or "torch" for each layer's own default
    (N(0, 1) for the embedding, uniform(±1/√H) for the LSTM, uniform(±1/√H) for the output layer).  Weights come
    from ``rng`` (a NumPy Generator, an int seed, or None for :func:`minibng.backend.manual_seed`'s generator),
    and so do the seeds of the three dropout streams, so one seed fixes the whole model.
    """
    for name, value in (("vocab_size", vocab_size), ("embed", embed), ("hidden", hidden), ("layers", layers)):
        if int(value) != value or value < 1:
            raise ValueError(f"lstm_lm: {name} must be a positive integer, got {value!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"lstm_lm: dropout must be in [0, 1), got {dropout}")
    if not (init == "torch" or (isinstance(init, (int, float)) and not isinstance(init, bool) and init > 0)):
        raise ValueError(f"lstm_lm: init must be 'torch' or a positive float bound, got {init!r}")
    host = backend.host_rng(rng)

    def seed():
        """A fresh seed for the next random stream (each dropout draws its own masks)."""
        return int(host.integers(2**62))

    return nn.Sequential(
        nn.Embedding(vocab_size, embed, init="normal" if init == "torch" else init, dtype=dtype, rng=host),
        nn.Dropout(dropout, seed=seed()),
        nn.LSTM(embed, hidden, layers, dropout=dropout, init=init, dtype=dtype, rng=host, seed=seed()),
        nn.Dropout(dropout, seed=seed()),
        nn.Linear(hidden, vocab_size, init=init, dtype=dtype, rng=host),
    )
