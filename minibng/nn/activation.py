"""Element-wise activations; each backward is the derivative beside its forward rule."""
from __future__ import annotations

from ..backend import get_array_module
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh"]


class ReLU(Module):
    """y = max(x, 0);   ∂L/∂x = dy · [x > 0]."""

    def __init__(self):
        super().__init__()
        self._positive = None

    def forward(self, x):
        self.check_input(x)
        positive = x > 0
        self._positive = positive if self.training else None
        return x * positive

    def backward(self, dy):
        if self._positive is None:
            raise RuntimeError("ReLU.backward called without a forward pass in training mode")
        return dy * self._positive

    def _clear_cache(self):
        self._positive = None


class Sigmoid(Module):
    """y = σ(x) = 1 / (1 + e⁻ˣ), computed as (1 + tanh(x/2)) / 2, which never overflows;
    ∂L/∂x = dy · y (1 − y)."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        self.check_input(x)
        y = x * 0.5
        get_array_module(y).tanh(y, out=y)
        y += 1
        y *= 0.5
        self._y = y if self.training else None
        return y

    def backward(self, dy):
        y = self._y
        if y is None:
            raise RuntimeError("Sigmoid.backward called without a forward pass in training mode")
        return dy * y * (1 - y)

    def _clear_cache(self):
        self._y = None


class Tanh(Module):
    """y = tanh(x);   ∂L/∂x = dy · (1 − y²)."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        self.check_input(x)
        y = get_array_module(x).tanh(x)
        self._y = y if self.training else None
        return y

    def backward(self, dy):
        y = self._y
        if y is None:
            raise RuntimeError("Tanh.backward called without a forward pass in training mode")
        return dy * (1 - y * y)

    def _clear_cache(self):
        self._y = None
