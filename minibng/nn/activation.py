"""Element-wise activations; each backward is the derivative beside its forward rule.

Each caches its output y for backward (the array it returned, as PyTorch saves it: modify it in place before
backward and the gradient is wrong); y is usually kept alive by the next layer anyway, so this costs no memory.
"""
from __future__ import annotations

from ..backend import get_array_module
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh"]


class ReLU(Module):
    """y = max(x, 0);   ∂L/∂x = dy · [y > 0]."""

    _cached = ("_y",)

    def forward(self, x):
        self.check_input(x)
        y = get_array_module(x).maximum(x, 0)
        self._y = y if self.training else None
        return y

    def backward(self, dy):
        return dy * (self._y > 0)


class Sigmoid(Module):
    """y = σ(x) = 1 / (1 + e⁻ˣ), computed as (1 + tanh(x/2)) / 2, which never overflows;
    ∂L/∂x = dy · y (1 − y)."""

    _cached = ("_y",)

    def forward(self, x):
        self.check_input(x)
        y = x * 0.5
        get_array_module(y).tanh(y, out=y)
        y += 1
        y *= 0.5
        self._y = y if self.training else None
        return y

    def backward(self, dy):
        return dy * self._y * (1 - self._y)


class Tanh(Module):
    """y = tanh(x);   ∂L/∂x = dy · (1 − y²)."""

    _cached = ("_y",)

    def forward(self, x):
        self.check_input(x)
        y = get_array_module(x).tanh(x)
        self._y = y if self.training else None
        return y

    def backward(self, dy):
        return dy * (1 - self._y * self._y)
