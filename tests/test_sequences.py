"""(T, N, ·) sequences through Linear and SoftmaxCrossEntropy, and a whole tiny language model
(Embedding → LSTM → Linear → SoftmaxCrossEntropy) gradient-checked end to end."""
import numpy as np
from hypothesis import given, strategies as st

from minibng.audit import check_layer
from minibng.nn.embedding import Embedding
from minibng.nn.linear import Linear
from minibng.nn.loss import SoftmaxCrossEntropy
from minibng.nn.module import Module
from minibng.nn.recurrent import LSTM
from support import host, on, run_forward_backward

seeds = st.integers(0, 2**31 - 1)
small = st.integers(1, 4)


@given(steps=small, batch=small, n_in=small, n_out=small, seed=seeds)
def test_linear_on_sequences_is_linear_at_every_step(device, steps, batch, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    layer = Linear(n_in, n_out, dtype=np.float64, rng=seed).to(device)
    layer.bias.data[...] = on(device, rng.uniform(0.5, 1.5, n_out))
    x_host = rng.standard_normal((steps, batch, n_in))
    check_layer(layer, on(device, x_host))
    y, dy, dx = run_forward_backward(layer, on(device, x_host), dy_seed=seed)
    w, b, dy = host(layer.weight.data), host(layer.bias.data), host(dy)
    expected_dw = np.zeros_like(w)
    for t in range(steps):
        np.testing.assert_allclose(host(y)[t], x_host[t] @ w + b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(host(dx)[t], dy[t] @ w.T, rtol=1e-12, atol=1e-12)
        expected_dw += x_host[t].T @ dy[t]
    np.testing.assert_allclose(host(layer.weight.grad), expected_dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(layer.bias.grad), dy.sum(axis=(0, 1)), rtol=1e-12, atol=1e-12)


@given(steps=small, batch=small, classes=st.integers(2, 5), seed=seeds)
def test_cross_entropy_on_sequences_is_the_mean_over_all_steps(device, steps, batch, classes, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((steps, batch, classes)) * 3
    labels = rng.integers(0, classes, (steps, batch))
    loss_fn = SoftmaxCrossEntropy()
    loss = float(loss_fn(on(device, logits), on(device, labels)))
    expected = 0.0
    for t in range(steps):
        for n in range(batch):
            z = logits[t, n]
            expected += np.log(np.exp(z).sum()) - z[labels[t, n]]
    assert abs(loss - expected / (steps * batch)) < 1e-12
    # Central differences (h = 1e-6) of loss·dy: the loss, log Σ exp(z − max z) − (z_y − max z) averaged over the
    # N rows, is rounded at ε ≈ 2.2e-16 of its parts (at most C + 2·max|z|), so the numeric derivative is off by up
    # to 2ε·|dy|·(C + 2·max|z|)/(2h). Where a softmax saturates (logits 14 apart: p ≈ 1e-6) that bound is not small
    # beside the gradient itself, so errors are measured against the floor at which it equals the tolerance (1e-6).
    dy = np.random.default_rng(seed + 1).standard_normal()
    noise = np.finfo(np.float64).eps * abs(dy) * (classes + 2 * np.abs(logits).max()) / 1e-6
    check_layer(loss_fn, on(device, logits), on(device, labels), dy=dy, floor=noise / 1e-6)


class TinyLanguageModel(Module):
    """Loss of next-token prediction: L = CE(Linear(LSTM(Embedding(ids))), targets), the LSTM started from a
    fixed (h0, c0) at every call so that finite differences see one function."""

    def __init__(self, vocab, embed, hidden, layers, h0, c0):
        super().__init__()
        self.embedding = Embedding(vocab, embed, rng=0)
        self.lstm = LSTM(embed, hidden, layers, dropout=0.3, rng=1, seed=2)
        self.decoder = Linear(hidden, vocab, rng=3)
        self.loss = SoftmaxCrossEntropy()
        self.register_buffer("h0", h0)
        self.register_buffer("c0", c0)

    def forward(self, ids, targets):
        self.lstm.state = (self.h0, self.c0)
        return self.loss(self.decoder(self.lstm(self.embedding(ids))), targets)

    def backward(self, dy):
        return self.embedding.backward(self.lstm.backward(self.decoder.backward(self.loss.backward(dy))))


def test_language_model_gradients_end_to_end(device):
    rng = np.random.default_rng(0)
    vocab, steps, batch, layers, hidden = 7, 4, 3, 2, 4
    state = [rng.standard_normal((layers, batch, hidden)) for _ in range(2)]
    model = TinyLanguageModel(vocab, 3, hidden, layers, *state).to(device)
    tokens = rng.integers(0, vocab, (steps + 1, batch))
    tokens[1, :] = tokens[0, 0]                         # repeated ids in the embedding's backward
    ids, targets = on(device, tokens[:-1]), on(device, tokens[1:])
    report = check_layer(model, ids, targets)
    assert {"embedding.weight", "lstm.layers.1.weight_hh", "decoder.bias"} <= set(report.errors)
    assert "input" not in report.errors                 # token ids are integers: held fixed
