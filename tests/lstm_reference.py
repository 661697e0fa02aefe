"""The LSTM written the obvious way, one time step at a time: for reading, and as the test oracle of the fast one.

:class:`LSTMReference` has the same constructor, parameter names, dropout masks and carried state as
:class:`minibng.nn.recurrent.LSTM`, and the tests hold the two equal, forward and backward.  It is several
times slower: every time step does its own input projection, and every weight gradient is a sum of T
per-step outer products instead of one GEMM.  Read :func:`cell_forward` and :func:`cell_backward` first.
"""
from __future__ import annotations

import math

from minibng import backend
from minibng.nn.module import Module, Parameter

__all__ = ["LSTMReference", "cell_forward", "cell_backward"]


def _sigmoid(xp, z):
    return 1 / (1 + xp.exp(-z))


def cell_forward(x_t, h_prev, c_prev, w_ih, w_hh, b):
    """One time step.  a = x_t W_ih + h_{t−1} W_hh + b = [a^i, a^f, a^g, a^o];
    i, f, o = σ(a^i), σ(a^f), σ(a^o);  g = tanh(a^g);  c_t = f ∘ c_{t−1} + i ∘ g;  h_t = o ∘ tanh(c_t).
    Returns h_t, c_t and what :func:`cell_backward` needs."""
    xp = backend.get_array_module(x_t, h_prev)
    H = h_prev.shape[1]
    a = x_t @ w_ih + h_prev @ w_hh + b
    i = _sigmoid(xp, a[:, 0:H])
    f = _sigmoid(xp, a[:, H:2 * H])
    g = xp.tanh(a[:, 2 * H:3 * H])
    o = _sigmoid(xp, a[:, 3 * H:4 * H])
    c = f * c_prev + i * g
    h = o * xp.tanh(c)
    return h, c, (x_t, h_prev, c_prev, i, f, g, o, c)


def cell_backward(dh, dc, cache, w_ih, w_hh):
    """Gradients of one time step, given δh_t (= dy_t + what h_t feeds into step t+1) and δc_{t+1} ∘ f_{t+1}.

    Returns ∂L/∂x_t, ∂L/∂h_{t−1} (through the gates), δc_t ∘ f_t (for step t−1) and this step's
    contributions x_tᵀ δa, h_{t−1}ᵀ δa and Σ_n δa to ∂L/∂W_ih, ∂L/∂W_hh and ∂L/∂b."""
    xp = backend.get_array_module(dh, dc)
    x_t, h_prev, c_prev, i, f, g, o, c = cache
    tanh_c = xp.tanh(c)
    dc = dc + dh * o * (1 - tanh_c ** 2)
    da_i = dc * g * i * (1 - i)
    da_f = dc * c_prev * f * (1 - f)
    da_g = dc * i * (1 - g ** 2)
    da_o = dh * tanh_c * o * (1 - o)
    da = xp.concatenate([da_i, da_f, da_g, da_o], axis=1)
    return da @ w_ih.T, da @ w_hh.T, dc * f, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


class _ReferenceLayer(Module):
    """The parameters of one layer (same names, shapes and draws as the fast LSTMLayer)."""

    def __init__(self, input_size, hidden_size, bound, dtype, rng):
        super().__init__()
        host = backend.host_rng(rng)
        self.weight_ih = Parameter(host.uniform(-bound, bound, (input_size, 4 * hidden_size)).astype(dtype))
        self.weight_hh = Parameter(host.uniform(-bound, bound, (hidden_size, 4 * hidden_size)).astype(dtype))
        self.bias = Parameter(host.uniform(-bound, bound, (4 * hidden_size,)).astype(dtype))


class _Layers(Module):
    pass


class LSTMReference(Module):
    """Per-step LSTM with the interface of :class:`minibng.nn.recurrent.LSTM` (carried state, dropout
    between layers drawn from ``self.rng`` in the same order, ``reset_state``, ``state``)."""

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0, init="torch", dtype="float32",
                 rng=None, seed=None):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.dropout = dropout
        bound = 1 / math.sqrt(hidden_size) if init == "torch" else float(init)
        rng = backend.host_rng(rng)
        self.layers = _Layers()
        for l in range(num_layers):
            size = input_size if l == 0 else hidden_size
            setattr(self.layers, str(l), _ReferenceLayer(size, hidden_size, bound, dtype, rng))
        self.rng = backend.RandomStream(seed)
        self.state = None
        self._caches = self._masks = None

    def reset_state(self):
        self.state = None

    def forward(self, x):
        xp = backend.get_array_module(x)
        T, N, _ = x.shape
        layers = list(self.layers.children())
        if self.state is None or self.state[0].shape[1] != N:
            zeros = xp.zeros((self.num_layers, N, self.hidden_size), dtype=x.dtype)
            self.state = (zeros, zeros.copy())
        h0, c0 = self.state
        inputs = [x[t] for t in range(T)]
        self._caches, self._masks, h_last, c_last = [], [], [], []
        for l, layer in enumerate(layers):
            if l > 0 and self.training and self.dropout > 0:
                keep = self.rng.random((T, N, self.hidden_size), xp, x.dtype) >= self.dropout
                mask = keep * x.dtype.type(1 / (1 - self.dropout))
                inputs = [inputs[t] * mask[t] for t in range(T)]
                self._masks.append(mask)
            h, c = h0[l], c0[l]
            outputs, caches = [], []
            for t in range(T):
                h, c, cache = cell_forward(inputs[t], h, c, layer.weight_ih.data, layer.weight_hh.data,
                                           layer.bias.data)
                outputs.append(h)
                caches.append(cache)
            self._caches.append(caches)
            h_last.append(h)
            c_last.append(c)
            inputs = outputs
        self.state = (xp.stack(h_last), xp.stack(c_last))
        return xp.stack(inputs)

    def backward(self, dy):
        xp = backend.get_array_module(dy)
        layers = list(self.layers.children())
        T = dy.shape[0]
        upstream = [dy[t] for t in range(T)]
        for l in range(self.num_layers - 1, -1, -1):
            layer = layers[l]
            dh_next = xp.zeros_like(upstream[0])
            dc_next = xp.zeros_like(upstream[0])
            dxs = [None] * T
            for t in range(T - 1, -1, -1):
                dx, dh_next, dc_next, dw_ih, dw_hh, db = cell_backward(
                    upstream[t] + dh_next, dc_next, self._caches[l][t], layer.weight_ih.data, layer.weight_hh.data)
                layer.weight_ih.grad += dw_ih
                layer.weight_hh.grad += dw_hh
                layer.bias.grad += db
                dxs[t] = dx
            if l > 0 and self._masks:
                dxs = [dxs[t] * self._masks[l - 1][t] for t in range(T)]
            upstream = dxs
        return xp.stack(upstream)
