"""Element-wise activations; each backward is the derivative beside its forward rule.

Each caches its output y for backward (the array it returned, as PyTorch saves it: modify it in place before
backward and the gradient is wrong); y is usually kept alive by the next layer anyway, so this costs no memory.
"""
from __future__ import annotations

from ..backend import get_array_module
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh"]


class _Activation(Module):
    """y = f(x) element-wise;  ∂L/∂x = dy · f′(x), with f′ written in terms of y (:meth:`slope`)."""

    _cached = ("_y",)

    def forward(self, x):
        self.check_input(x)
        y = self.function(get_array_module(x), x)
        self._y = y if self.training else None
        return y

    def backward(self, dy):
        return dy * self.slope(self._y)


class ReLU(_Activation):
    """y = max(x, 0);   ∂L/∂x = dy · [y > 0]."""

    def function(self, xp, x):
        return xp.maximum(x, 0)

    def slope(self, y):
        return y > 0


class Sigmoid(_Activation):
    """y = σ(x) = 1 / (1 + e⁻ˣ), computed as (1 + tanh(x/2)) / 2, which never overflows;
    ∂L/∂x = dy · y (1 − y)."""

    def function(self, xp, x):
        y = x * 0.5
        xp.tanh(y, out=y)
        y += 1
        y *= 0.5
        return y

    def slope(self, y):
        return y * (1 - y)


class Tanh(_Activation):
    """y = tanh(x);   ∂L/∂x = dy · (1 − y²)."""

    def function(self, xp, x):
        return xp.tanh(x)

    def slope(self, y):
        return 1 - y * y
