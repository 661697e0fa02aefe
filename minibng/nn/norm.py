"""Batch normalization (Ioffe & Szegedy 2015) with PyTorch's semantics: BatchNorm1d and BatchNorm2d."""
from __future__ import annotations

from ..backend import get_array_module
from .init import check_integers
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


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
    """

    _ranks = ()
    _layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype="float32"):
        super().__init__()
        name = type(self).__name__
        check_integers(name, num_features=num_features)
        if int(num_features) <= 0:
            raise ValueError(f"{name}: num_features must be positive, got {num_features}")
        if not eps > 0:
            raise ValueError(f"{name}: eps must be > 0, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        host = get_array_module()  # NumPy: layers are built on the host and moved with .to(device)
        if affine:
            self.weight = Parameter(host.ones(self.num_features, dtype=dtype))
            self.bias = Parameter(host.zeros(self.num_features, dtype=dtype))
        else:
            self.weight = self.bias = None
        self.register_buffer("running_mean", host.zeros(self.num_features, dtype=dtype))
        self.register_buffer("running_var", host.ones(self.num_features, dtype=dtype))
        self._x_hat = self._inv_std = None

    def _check(self, x):
        self.check_input(x)
        get_array_module(x, self.running_mean)  # a TypeError naming NumPy and CuPy if they are mixed
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            layout = self._layout.format(C=self.num_features)
            raise ValueError(f"expected input of shape {layout}, got {tuple(x.shape)}")
        if x.dtype != self.running_mean.dtype:
            raise TypeError(f"expected {self.running_mean.dtype} input (the layer's dtype), got {x.dtype}")
        axes = (0,) + tuple(range(2, x.ndim))
        channel_shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        return axes, channel_shape

    def forward(self, x):
        axes, channel_shape = self._check(x)
        xp = get_array_module(x)
        if not self.training:
            self._x_hat = self._inv_std = None
            inv_std = 1 / xp.sqrt(self.running_var + self.eps)
            scale = inv_std if self.weight is None else self.weight.data * inv_std
            shift = -self.running_mean * scale
            if self.bias is not None:
                shift += self.bias.data
            return x * scale.reshape(channel_shape) + shift.reshape(channel_shape)
        count = x.size // self.num_features
        if count < 2:
            raise ValueError(f"expected more than 1 value per channel in training mode, got input shape "
                             f"{tuple(x.shape)}")
        mean = x.mean(axis=axes)
        x_hat = x - mean.reshape(channel_shape)
        var = (x_hat * x_hat).mean(axis=axes)
        inv_std = 1 / xp.sqrt(var + self.eps)
        x_hat *= inv_std.reshape(channel_shape)
        m = self.momentum
        self.running_mean *= 1 - m
        self.running_mean += m * mean
        self.running_var *= 1 - m
        self.running_var += (m * count / (count - 1)) * var
        self._x_hat, self._inv_std = x_hat, inv_std
        if self.weight is None:
            return x_hat.copy()  # x_hat is cached for backward: never hand it out
        return x_hat * self.weight.data.reshape(channel_shape) + self.bias.data.reshape(channel_shape)

    def backward(self, dy):
        x_hat = self._x_hat
        if x_hat is None:
            raise RuntimeError(f"{type(self).__name__}.backward called without a forward pass in training mode")
        if tuple(dy.shape) != tuple(x_hat.shape):
            raise ValueError(f"expected upstream gradient of shape {tuple(x_hat.shape)}, got {tuple(dy.shape)}")
        axes = (0,) + tuple(range(2, dy.ndim))
        channel_shape = (1, self.num_features) + (1,) * (dy.ndim - 2)
        count = dy.size // self.num_features
        beta_grad = dy.sum(axis=axes)
        gamma_grad = (dy * x_hat).sum(axis=axes)
        dx = x_hat * (gamma_grad * (-1.0 / count)).reshape(channel_shape)
        dx += dy
        dx -= (beta_grad * (1.0 / count)).reshape(channel_shape)
        scale = self._inv_std if self.weight is None else self.weight.data * self._inv_std
        dx *= scale.reshape(channel_shape)
        if self.weight is not None:
            self.weight.grad += gamma_grad
            self.bias.grad += beta_grad
        return dx

    def _clear_cache(self):
        self._x_hat = self._inv_std = None

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
