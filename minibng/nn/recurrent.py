"""LSTM: a stack of long short-term memory layers over (T, N, features) sequences, for truncated BPTT.

The fast path here batches everything that does not depend on the recurrence: the input projection of the
whole sequence is two GEMMs (the σ gates', and g's), each time step costs two products with h_{t−1} and a few
element-wise operations, and the weight gradients are one GEMM each after the backward loop.  The obvious
per-step code it must agree with is tests/lstm_reference.py; the equations are in docs/layers.md.
"""
from __future__ import annotations

import math

from .. import backend
from .activation import sigmoid, tanh
from .checks import check_dtype, check_fraction, check_rng, check_seed, check_sizes
from .containers import Sequential
from .dropout import dropout_scale
from .init import check_init
from .module import Module, Parameter

__all__ = ["LSTM", "LSTMLayer"]


class LSTMLayer(Module):
    """One LSTM layer; gates in PyTorch's order i, f, g, o, one combined bias.

    Shapes: x (T, N, in), W_ih (in, 4H), W_hh (H, 4H), b (4H,), h_t and c_t (N, H), y (T, N, H).
    Forward, for t = 1 … T, with a_t = [a^i, a^f, a^g, a^o] split into four (N, H) blocks:
        a_t = x_t W_ih + h_{t−1} W_hh + b
        i = σ(a^i)   f = σ(a^f)   g = tanh(a^g)   o = σ(a^o)
        c_t = f ∘ c_{t−1} + i ∘ g        h_t = o ∘ tanh(c_t)        y_t = h_t
    Backward through time, for dy_t = ∂L/∂y_t, from t = T down to 1 with δa_{T+1} = 0 and δc_{T+1} = 0
    (the initial state (h_0, c_0) is a constant: no gradient leaves the window):
        δh_t = dy_t + δa_{t+1} W_hhᵀ
        δc_t = δh_t ∘ o ∘ sech²(c_t) + δc_{t+1} ∘ f_{t+1}
        δa^i = δc_t ∘ g ∘ σ′(a^i)    δa^f = δc_t ∘ c_{t−1} ∘ σ′(a^f)
        δa^g = δc_t ∘ i ∘ sech²(a^g)  δa^o = δh_t ∘ tanh(c_t) ∘ σ′(a^o)
    then, with δA, X and H₋ the T·N rows of δa_t, x_t and h_{t−1} stacked:
        ∂L/∂W_ih = Xᵀ δA    ∂L/∂W_hh = H₋ᵀ δA    ∂L/∂b = Σ_rows δA    ∂L/∂x = δA W_ihᵀ

    Implementation: σ, tanh and their slopes are :func:`.activation.sigmoid` and :func:`.activation.tanh`, the
    functions of the Sigmoid and Tanh layers, exact in both tails (never i(1 − i) or 1 − g², which are 0 where a
    gate saturates).  Inside a forward pass the gate columns are kept in the order i, f, o, g (the weights are
    copied so, once per call), and the σ gates and g in two arrays, (T, N, 3H) and (T, N, H), so that each
    step's σ and tanh are one call each over contiguous memory; each step keeps the activations and their
    slopes σ′ / sech², so backward multiplies δa by the slopes.
    Training mode keeps X, the gates and their slopes, c_0 … c_T, tanh c_t and sech² c_t, h_0 … h_{T−1} and
    the reordered weights.  ``forward(x, h0, c0)`` returns (y, h_T, c_T); ``backward(dy)`` returns ∂L/∂x.
    """

    _cached = ("_cache",)

    def __init__(self, input_size, hidden_size, init="torch", dtype="float32", rng=None):
        super().__init__()
        check_sizes("LSTMLayer", input_size=input_size, hidden_size=hidden_size)
        dtype = check_dtype("LSTMLayer", dtype)
        rng = check_rng("LSTMLayer", rng)
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        init = check_init("LSTMLayer", init, ("torch",))
        bound = 1 / math.sqrt(self.hidden_size) if init == "torch" else float(init)
        host = backend.host_rng(rng)
        four_h = 4 * self.hidden_size
        self.weight_ih = Parameter(host.uniform(-bound, bound, (self.input_size, four_h)).astype(dtype))
        self.weight_hh = Parameter(host.uniform(-bound, bound, (self.hidden_size, four_h)).astype(dtype))
        self.bias = Parameter(host.uniform(-bound, bound, (four_h,)).astype(dtype))

    def _swap_g_and_o(self, xp, a):
        """``a`` with its last two H-column blocks swapped: PyTorch's gate order i, f, g, o becomes the order i, f,
        o, g used inside a pass (σ gates first), and back again."""
        H = self.hidden_size
        return xp.concatenate([a[..., :2 * H], a[..., 3 * H:], a[..., 2 * H:3 * H]], axis=-1)

    def forward(self, x, h0, c0):
        xp = backend.get_array_module(x, self.weight_ih.data)
        T, N, _ = x.shape
        H = self.hidden_size
        dtype = self.weight_ih.data.dtype
        w_ih, w_hh = self._swap_g_and_o(xp, self.weight_ih.data), self._swap_g_and_o(xp, self.weight_hh.data)
        bias = self._swap_g_and_o(xp, self.bias.data)
        # The σ gates (i, f, o) and g are held apart, each step's (N, 3H) and (N, H) blocks contiguous: NumPy takes
        # two to three times as long over a column slice of an (N, 4H) array as over contiguous memory.
        # The input projection of every time step at once: one (T·N, in) × (in, 3H) GEMM, and one for g.
        rows = x.reshape(T * N, self.input_size)
        sigma_gates = (rows @ w_ih[:, :3 * H]).reshape(T, N, 3 * H)
        sigma_gates += bias[:3 * H]
        g_gate = (rows @ w_ih[:, 3 * H:]).reshape(T, N, H)
        g_gate += bias[3 * H:]
        sigma_slopes = xp.empty_like(sigma_gates)
        g_slopes = xp.empty_like(g_gate)
        hs = xp.empty((T + 1, N, H), dtype=dtype)
        cs = xp.empty((T + 1, N, H), dtype=dtype)
        tanh_c = xp.empty((T, N, H), dtype=dtype)
        tanh_c_slope = xp.empty((T, N, H), dtype=dtype)
        hs[0], cs[0] = h0, c0
        for t in range(T):
            s, g = sigma_gates[t], g_gate[t]
            s += hs[t] @ w_hh[:, :3 * H]
            g += hs[t] @ w_hh[:, 3 * H:]
            sigmoid(s, out=s, slope=sigma_slopes[t])
            tanh(g, out=g, slope=g_slopes[t])                # s = [i, f, o] and g, activations
            i, f, o = s[:, :H], s[:, H:2 * H], s[:, 2 * H:]
            xp.multiply(f, cs[t], out=cs[t + 1])
            cs[t + 1] += i * g
            tanh(cs[t + 1], out=tanh_c[t], slope=tanh_c_slope[t])
            xp.multiply(o, tanh_c[t], out=hs[t + 1])
        self._cache = ((x, sigma_gates, g_gate, sigma_slopes, g_slopes, cs, tanh_c, tanh_c_slope, hs, w_ih, w_hh)
                       if self.training else None)
        return hs[1:].copy(), hs[T].copy(), cs[T].copy()

    def backward(self, dy):
        x, sigma_gates, g_gate, sigma_slopes, g_slopes, cs, tanh_c, tanh_c_slope, hs, w_ih, w_hh = self._cache
        xp = backend.get_array_module(dy, x)
        T, N, H = tanh_c.shape
        d_pre = xp.empty((T, N, 4 * H), dtype=tanh_c.dtype)
        w_hh_t = w_hh.T
        dh_next = dc_next = 0                                       # δa_{T+1} W_hhᵀ and δc_{T+1} ∘ f_{T+1}
        for t in range(T - 1, -1, -1):
            s, g, d = sigma_gates[t], g_gate[t], d_pre[t]
            i, f, o = s[:, :H], s[:, H:2 * H], s[:, 2 * H:]
            dh = dy[t] + dh_next                                    # δh_t
            dc = dh * o                                             # δc_t
            dc *= tanh_c_slope[t]
            dc += dc_next
            xp.multiply(dc, g, out=d[:, :H])
            xp.multiply(dc, cs[t], out=d[:, H:2 * H])
            xp.multiply(dh, tanh_c[t], out=d[:, 2 * H:3 * H])
            xp.multiply(dc, i, out=d[:, 3 * H:])
            d[:, :3 * H] *= sigma_slopes[t]
            d[:, 3 * H:] *= g_slopes[t]                             # δa_t = [δa^i, δa^f, δa^o, δa^g]
            dc_next, dh_next = dc * f, d @ w_hh_t
        d_pre = d_pre.reshape(T * N, 4 * H)
        self.weight_ih.grad += self._swap_g_and_o(xp, x.reshape(T * N, self.input_size).T @ d_pre)
        self.weight_hh.grad += self._swap_g_and_o(xp, hs[:-1].reshape(T * N, H).T @ d_pre)
        self.bias.grad += self._swap_g_and_o(xp, d_pre.sum(axis=0))
        return (d_pre @ w_ih.T).reshape(T, N, self.input_size)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"


class LSTM(Module):
    """A stack of ``num_layers`` LSTM layers (see :class:`LSTMLayer` for the equations), with dropout between
    layers and the final state carried into the next call, for truncated backpropagation through time.

    Shapes: x (T, N, input_size) → y (T, N, hidden_size), the last layer's h_1 … h_T.
    Parameters, per layer l: ``layers.l.weight_ih`` (in_l, 4H), ``layers.l.weight_hh`` (H, 4H) and
    ``layers.l.bias`` (4H,), gates in PyTorch's order i, f, g, o; in_0 = input_size, in_l = H after.  Each
    layer is its own child module, so ``blocks="layer"`` makes one block per LSTM layer.  PyTorch keeps two
    biases and the transposed weights: ``weight_ih_l{l}`` = W_ihᵀ, ``weight_hh_l{l}`` = W_hhᵀ and
    b = ``bias_ih_l{l}`` + ``bias_hh_l{l}``.

    Dropout: in training mode, layer l+1 reads m ∘ y^l / (1 − p), m ~ Bernoulli(1 − p), for every layer but
    the last (as PyTorch's ``dropout``).  Masks come from ``self.rng`` (a RandomStream), so gradient checks
    replay them and a resumed run draws the same ones.

    Carried state: every forward starts from (h_0, c_0) = the previous call's (h_T, c_T) — zeros on the first
    call, after ``reset_state()``, or when the batch size N changes (the state is then reset automatically).
    The state is a constant for the next window: ``backward`` stops at h_0 and c_0 (truncated BPTT, "detached").
    ``state`` is (h, c), each (num_layers, N, H), or None; assign to it to restore a checkpoint.  Eval mode
    carries the state too (evaluate a long text window by window).  Because of the carry, calling forward
    twice on the same input gives different outputs; to gradient-check, set ``state`` before every call.

    Initialization (``init``): ``"torch"`` uniform(±1/√H) for every weight and bias (PyTorch draws each of its
    two biases so; here the single bias is drawn once), or a float a for uniform(±a) (0.1 in Zaremba et al.).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0, init="torch", dtype="float32",
                 rng=None, seed=None):
        super().__init__()
        check_sizes("LSTM", input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        self.dropout = check_fraction("LSTM", "dropout", dropout)
        init = check_init("LSTM", init, ("torch",))
        dtype = check_dtype("LSTM", dtype)
        seed = check_seed("LSTM", seed)
        rng = check_rng("LSTM", rng)
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        rng = backend.host_rng(rng)   # one generator for all layers (an int seed would repeat their draws)
        # children "0", "1", … of a Sequential that is never run, so parameters are named layers.0.weight_ih, …
        self.layers = Sequential(*(LSTMLayer(self.input_size if l == 0 else self.hidden_size, self.hidden_size, init,
                                             dtype, rng) for l in range(self.num_layers)))
        self.rng = backend.RandomStream(seed)   # drawn after the weights, so the weights do not depend on it
        self._h = self._c = None

    # -- carried state --------------------------------------------------------------------------------------
    @property
    def state(self):
        """(h, c), copies of the state the next forward starts from, each (num_layers, N, H); or None.

        Assigning (h, c) (NumPy or CuPy arrays, moved to the parameters' device and dtype) sets it;
        assigning None resets it."""
        return None if self._h is None else (self._h.copy(), self._c.copy())

    @state.setter
    def state(self, value):
        if value is None:
            self.reset_state()
            return
        h, c = value
        if not (backend.is_array(h) and backend.is_array(c)):
            raise TypeError(f"LSTM state must be a pair of arrays, got {type(h).__name__}, {type(c).__name__}")
        if h.shape != c.shape or h.ndim != 3 or h.shape[0] != self.num_layers or h.shape[2] != self.hidden_size:
            raise ValueError(f"LSTM state must be (h, c) of shape ({self.num_layers}, N, {self.hidden_size}) each, "
                             f"got {tuple(h.shape)} and {tuple(c.shape)}")
        self._h, self._c = self._beside_weights(h, copy=True), self._beside_weights(c, copy=True)

    def _beside_weights(self, a, copy=False):
        """``a`` on the parameters' device, in their dtype (host arrays from a checkpoint, or after ``to``)."""
        weight = self.layers[0].weight_ih.data
        moved = backend.to_device(a, backend.device_of(weight))
        xp = backend.get_array_module(weight)
        return (xp.array if copy else xp.asarray)(moved, dtype=weight.dtype)

    def reset_state(self):
        """Start the next forward from zeros (e.g. at the start of an epoch or of a new text)."""
        self._h = self._c = None

    # -- forward / backward ---------------------------------------------------------------------------------
    def forward(self, x):
        weight = self.layers[0].weight_ih.data
        self.check_input(x, dtype=weight.dtype)
        xp = backend.get_array_module(x, weight)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"expected input of shape (T, N, {self.input_size}), got {tuple(x.shape)}")
        T, N, _ = x.shape
        if T == 0 or N == 0:
            raise ValueError(f"expected at least one time step and one sequence, got shape {tuple(x.shape)}")
        if self._h is None or self._h.shape[1] != N:
            self._h = self._c = xp.zeros((self.num_layers, N, self.hidden_size), dtype=weight.dtype)  # only read
        masks, h_last, c_last = [], [], []
        y = x
        for l, layer in enumerate(self.layers):
            if l > 0 and self.training and self.dropout > 0:
                masks.append(dropout_scale(self.rng, y, self.dropout))
                y = y * masks[-1]
            y, h_t, c_t = layer(y, self._h[l], self._c[l])
            h_last.append(h_t)
            c_last.append(c_t)
        self._h, self._c = xp.stack(h_last), xp.stack(c_last)
        self._masks = masks if self.training else None
        return y

    def backward(self, dy):
        for l in range(self.num_layers - 1, -1, -1):
            dy = self.layers[l].backward(dy)
            if l > 0 and self._masks:
                dy *= self._masks[l - 1]   # dy is the fresh ∂L/∂x of layer l, never the caller's array
        return dy

    def _clear_cache(self):
        """Forget cached activations; keep the carried state, moved to the parameters' device and dtype."""
        self._masks = None
        if self._h is not None:
            self._h, self._c = self._beside_weights(self._h), self._beside_weights(self._c)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, dropout={self.dropout}"
