"""Batch normalization (Ioffe & Szegedy 2015) with PyTorch's semantics: BatchNorm1d and BatchNorm2d."""
from __future__ import annotations

import functools
import math

from ..backend import errors_ignored, get_array_module, host_module
from .checks import check_dtype, check_flag, check_fraction, check_positive, check_sizes
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


@functools.lru_cache(maxsize=None)
def smallest_eps(dtype):
    """The smallest ε for which 1/√ε, the factor that normalizes a channel whose values are all equal, is finite in
    ``dtype``: 1/max² (8.6e-78 for float32; it underflows to 0 for float64, where every ε > 0 will do)."""
    largest = float(host_module().finfo(dtype).max)
    return 1 / largest / largest


class _BatchNorm(Module):
    """Per-channel normalization over every axis but the channel axis 1 (one implementation for 1d and 2d).

    For channel c, with the M = N·(spatial size) values x_m of that channel in the batch:
        training:  μ = (1/M) Σ_m x_m     σ² = (1/M) Σ_m (x_m − μ)²     (biased, used to normalize)
                   running_mean ← (1 − m)·running_mean + m·μ
                   running_var  ← (1 − m)·running_var  + m·σ²·M/(M − 1)     (unbiased)
        evaluation: μ = running_mean, σ² = running_var
        x̂_m = (x_m − μ)/√(σ² + ε)      y_m = γ x̂_m + β
    with γ = ``weight`` (ones), β = ``bias`` (zeros), m = ``momentum`` (0.1), ε = ``eps`` (1e-5).

    Backward of the training-mode map (μ and σ² depend on the batch), for dy = ∂L/∂y:
        ∂L/∂β = Σ_m dy_m      ∂L/∂γ = Σ_m dy_m x̂_m
        ∂L/∂x_m = (γ/√(σ² + ε)) · (dy_m − ∂L/∂β / M − x̂_m · ∂L/∂γ / M)
    ``backward`` needs a forward pass in training mode (as every layer here).

    Exact across the dtype's range.  Σx never overflows where μ is representable (:meth:`channel_totals`; in
    float32 the sum of 64 values near 1e37 would).  (x − μ)² overflows float32 from |x − μ| ≈ 1.8e19 and loses its
    digits below 1e-19, so the squares are never formed from x − μ itself.  Each channel is divided by its spread
    s = max_m |x_m − μ| first, x̃ = (x − μ)/s ∈ [−1, 1], and σ² = s² · (1/M) Σ x̃², with s², σ², 1/√(σ² + ε) and
    the gain s/√(σ² + ε) that turns x̃ into x̂ computed in float64 for the C channels.  So a float32 layer is exact
    for every batch whose values lie within float32's largest number (3.4e38) of their channel's mean: values of
    one sign, however large, or of both signs within ±1.7e38; beyond, x − μ itself overflows and the channel's
    output is NaN.  A float64 layer is exact while s < 1e154.  ``running_var`` keeps the layer's dtype, as
    PyTorch: a batch variance beyond the dtype's largest number (activations ≳ 1.8e19 in float32) makes it
    infinite, with NumPy's overflow warning, and the Trainer's non-finite guard stops the run on it.  ε must keep
    1/√ε finite in the dtype (:func:`smallest_eps`).

    ``sync``: None, or (set by :mod:`minibng.distributed`) a function adding the per-channel sums and the count M
    over every rank of a data-parallel job, so that the sums above run over the global batch (SyncBatchNorm).
    The sums it receives are Σx, Σ(x − μ)² (both float64), Σdy and Σdy·x̂: none depends on a rank's own spread s.
    """

    _ranks = ()
    _layout = ""
    sync = None
    _cached = ("_scaled", "_gain", "_inv_std")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype="float32"):
        super().__init__()
        name = type(self).__name__
        check_sizes(name, num_features=num_features)
        self.eps = check_positive(name, "eps", eps)
        self.momentum = check_fraction(name, "momentum", momentum, True)
        affine = check_flag(name, "affine", affine)
        dtype = check_dtype(name, dtype)
        self.num_features = int(num_features)
        host = host_module()
        self._check_eps(dtype)
        if affine:
            self.weight = Parameter(host.ones(self.num_features, dtype=dtype))
            self.bias = Parameter(host.zeros(self.num_features, dtype=dtype))
        else:
            self.weight = self.bias = None
        self.register_buffer("running_mean", host.zeros(self.num_features, dtype=dtype))
        self.register_buffer("running_var", host.ones(self.num_features, dtype=dtype))

    def _check_eps(self, dtype):
        if self.eps < smallest_eps(dtype):
            raise ValueError(f"{type(self).__name__}: eps={self.eps:g} is too small for {dtype}: 1/√eps, which "
                             f"normalizes a channel whose values are all equal, would exceed {dtype}'s largest "
                             f"number; give eps ≥ {smallest_eps(dtype):.2g}, or build the layer with "
                             "dtype='float64'")

    def _check(self, x):
        self.check_input(x, dtype=self.running_mean.dtype)
        get_array_module(x, self.running_mean)  # a TypeError naming NumPy and CuPy if they are mixed
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            layout = self._layout.format(C=self.num_features)
            raise ValueError(f"expected input of shape {layout}, got {tuple(x.shape)}")
        self._check_eps(x.dtype)   # the layer may have been cast (astype) since it was built

    # -- layout: x (N, C, …) as an (N, K) matrix, K = C·S, so that every element-wise step is one long loop ----------
    def _matrix(self, a):
        """``a`` as the (N, K) matrix of the layout chosen by forward: column c·S + s (C-ordered) or s·C + c (channels
        last, e.g. a convolution's output); a view when ``a`` is laid out so in memory.  NumPy runs a per-channel
        vector broadcast over channels-last memory in loops of C elements, ~5× slower than over these rows."""
        if self._channels_last:
            a = get_array_module(a).ascontiguousarray(a.transpose(0, *range(2, a.ndim), 1))
        return a.reshape(a.shape[0], math.prod(a.shape[1:]))   # not -1, which an empty batch leaves undefined

    def _restore(self, matrix, shape):
        """The inverse of :meth:`_matrix`: an (N, C, …) array of ``shape`` in the same memory."""
        if not self._channels_last:
            return matrix.reshape(shape)
        last = matrix.reshape((shape[0],) + shape[2:] + (shape[1],))
        return last.transpose(0, len(shape) - 1, *range(1, len(shape) - 1))

    def _expand(self, v, spatial):
        """A per-channel vector v (C,) laid across the K columns."""
        xp = get_array_module(v)
        return xp.tile(v, spatial) if self._channels_last else xp.repeat(v, spatial)

    def _per_channel(self, columns, reduce):
        """A (K,) vector of per-column values reduced to (C,) per channel with ``reduce`` ("sum" or "max")."""
        spatial = columns.size // self.num_features
        if self._channels_last:
            return getattr(columns.reshape(spatial, self.num_features), reduce)(axis=0)
        return getattr(columns.reshape(self.num_features, spatial), reduce)(axis=1)

    def channel_sums(self, a, b=None, dtype=None):
        """Σ a (or Σ a·b) per channel over the batch and spatial axes, accumulated in ``dtype`` (default: a's), for
        matrices from :meth:`_matrix`: the one place where the batch statistics Σx, Σ x̃², Σdy and Σdy·x̃ are summed
        (a synchronized BatchNorm all-reduces these sums across processes)."""
        columns = a.sum(axis=0, dtype=dtype) if b is None else get_array_module(a).einsum("nk,nk->k", a, b)
        return self._per_channel(columns, "sum")

    def channel_totals(self, matrix):
        """Σx per channel (see :meth:`channel_sums`) as float64, never ∞ where the mean Σx/M is representable: in
        float32 the sum overflows (64 values near 1e37) though the mean does not.  A GPU accumulates in float64 (one
        pass, no host read).  The CPU, where NumPy accumulates float32 in float64 several times slower, sums in the
        dtype and keeps that sum when it is finite (the common case: one pass, as fast as before); otherwise it sums
        again in float64."""
        xp = get_array_module(matrix)
        if xp is not host_module():
            return self.channel_sums(matrix, dtype=xp.float64)
        with errors_ignored(xp, "over"):   # an overflowed sum is taken again just below
            total = self.channel_sums(matrix)
        if not xp.isfinite(total).all():
            total = self.channel_sums(matrix, dtype=xp.float64)
        return total.astype(xp.float64)

    def channel_spread(self, a):
        """s = max |a| per channel over the batch and spatial axes (two reductions, no temporary array), at least
        the dtype's smallest normal number, so that a / s stays within [−1, 1] and never divides by 0."""
        xp = get_array_module(a)
        columns = xp.maximum(a.max(axis=0), -a.min(axis=0))
        return xp.maximum(self._per_channel(columns, "max"), xp.finfo(a.dtype).tiny)

    # -- forward and backward ---------------------------------------------------------------------------------
    def forward(self, x):
        self._check(x)
        xp = get_array_module(x)
        self._channels_last = x.ndim > 2 and x.transpose(0, *range(2, x.ndim), 1).flags.c_contiguous
        matrix, rows = self._matrix(x), x.size // self.num_features
        spatial = math.prod(x.shape[2:])
        if not self.training:
            inv_std = self._inverse_std(xp, self.running_var).astype(x.dtype)
            centered = matrix - self._expand(self.running_mean, spatial)
            gain = inv_std                                                 # x̂ = (x − μ)/√(σ² + ε)
        else:
            (total,), count = self._reduce([self.channel_totals(matrix)], rows)
            if count < 2:
                raise ValueError(f"expected more than 1 value per channel in training mode, got input shape "
                                 f"{tuple(x.shape)}")
            mean = (total / count).astype(x.dtype)
            centered = matrix - self._expand(mean, spatial)
            spread = self.channel_spread(centered)
            centered /= self._expand(spread, spatial)                      # x̃ = (x − μ)/s
            spread_wide = spread.astype(xp.float64)
            squares = self.channel_sums(centered, centered).astype(xp.float64) * spread_wide * spread_wide
            var = self._reduce([squares], rows)[0][0] / count              # σ², float64
            inv_std_wide = self._inverse_std(xp, var)
            gain = (spread_wide * inv_std_wide).astype(x.dtype)            # x̂ = x̃ · s/√(σ² + ε)
            inv_std = inv_std_wide.astype(x.dtype)
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += (m * count / (count - 1)) * var
        self._keep_for_backward(centered, gain, inv_std)
        factor = gain if self.weight is None else gain * self.weight.data
        y = xp.multiply(centered, self._expand(factor, spatial), out=None if self.training else centered)
        if self.weight is not None:
            y += self._expand(self.bias.data, spatial)
        return self._restore(y, x.shape)

    def _keep_for_backward(self, scaled, gain, inv_std):
        """Cache x̃, the gain s/√(σ² + ε) and 1/√(σ² + ε) in training mode; nothing in evaluation."""
        self._scaled = scaled if self.training else None
        self._gain = gain if self.training else None
        self._inv_std = inv_std if self.training else None

    def _inverse_std(self, xp, var):
        """1/√(σ² + ε) per channel, in float64 (σ² of a float32 layer reaches 1e77)."""
        return 1 / xp.sqrt(var.astype(xp.float64) + self.eps)

    def backward(self, dy):
        scaled, gain, dy_matrix = self._scaled, self._gain, self._matrix(dy)
        rows, spatial = scaled.size // self.num_features, scaled.shape[1] // self.num_features
        beta_grad = self.channel_sums(dy_matrix)
        gamma_grad = self.channel_sums(dy_matrix, scaled) * gain                      # Σ dy·x̂ = s/√(σ² + ε) · Σ dy·x̃
        (beta_all, gamma_all), count = self._reduce([beta_grad, gamma_grad], rows)
        scale = self._inv_std if self.weight is None else self.weight.data * self._inv_std
        # ∂L/∂x = a·dy + b·x̂ + c per channel: a = γ/√(σ² + ε), b = −a·∂L/∂γ/M, c = −a·∂L/∂β/M; x̂ = x̃ · gain
        dx = scaled * self._expand(scale * gamma_all * gain * (-1.0 / count), spatial)
        dx += self._expand(scale * beta_all * (-1.0 / count), spatial)
        dx += dy_matrix * self._expand(scale, spatial)
        if self.weight is not None:  # this rank's part: the data-parallel gradient all-reduce adds the others'
            self.weight.grad += gamma_grad
            self.bias.grad += beta_grad
        return self._restore(dx, dy.shape)

    def _reduce(self, sums, rows):
        """(per-channel sums, row count) of this batch, or with ``sync`` of every rank's batch."""
        return (sums, rows) if self.sync is None else self.sync(sums, rows)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.weight is not None}"


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) features (or (N, C, L) sequences) per channel C; see :class:`_BatchNorm`."""

    _ranks = (2, 3)
    _layout = "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) images per channel C, over N·H·W values; see :class:`_BatchNorm`."""

    _ranks = (4,)
    _layout = "(N, {C}, H, W)"
