"""Inverted dropout with a device-side random stream."""
from __future__ import annotations

from .. import backend
from .checks import check_fraction, check_seed
from .module import Module

__all__ = ["Dropout", "dropout_scale"]


def dropout_scale(rng, x, p):
    """m / (1 − p) with m_k ~ Bernoulli(1 − p) drawn from the RandomStream ``rng`` on x's device, in x's shape and
    dtype."""
    keep = rng.random(x.shape, backend.get_array_module(x), x.dtype) >= p
    return keep * x.dtype.type(1 / (1 - p))


class Dropout(Module):
    """Training: y = x · m / (1 − p) with m_k ~ Bernoulli(1 − p) drawn on the input's device; evaluation: y = x.
    ∂L/∂x = dy · m / (1 − p).

    The mask stream (``self.rng``, a :class:`minibng.backend.RandomStream`) is seeded from the host generator at
    construction and saved in checkpoints, so a resumed run draws the same masks.
    """

    _cached = ("_scale",)

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        self.p = check_fraction("Dropout", "p", p)
        self.rng = backend.RandomStream(check_seed("Dropout", seed))

    def forward(self, x):
        self.check_input(x)
        if not self.training or self.p == 0:
            self._scale = None
            return x.copy()
        self._scale = dropout_scale(self.rng, x, self.p)
        return x * self._scale

    def backward(self, dy):
        return dy.copy() if self._scale is None else dy * self._scale

    def extra_repr(self):
        return f"p={self.p}"
