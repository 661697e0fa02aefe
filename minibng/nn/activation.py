"""Element-wise activations, and the exact σ and tanh that they and the LSTM's gates share.

Exact means: value and slope within a few units in the last place of the true value (float64 math is the
oracle), at every finite x, in float32 and float64 alike — in both tails too, where a saturated unit's slope is
tiny but not 0, and where block normalization (NG) would rescale it.  No slope is written in terms of the
output: y(1 − y) and 1 − y² round to 0 as soon as y rounds to 0 or ±1 (σ(x) at x ≳ 17 in float32), although the
true slope is representable up to |x| ≈ 103.  Sigmoid and Tanh therefore compute their slope f′(x) in the forward
pass and save it for backward (one array); ReLU saves its output, from which its slope [y > 0] is exact.
"""
from __future__ import annotations

import functools
import math

from ..backend import get_array_module, host_module
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh", "sigmoid", "tanh"]


def sigmoid(x, out=None, slope=None):
    """σ(x) = 1 / (1 + e⁻ˣ), written into ``out`` (which may be x itself) or a new array; and, if ``slope`` is
    given, σ′(x) = σ(x) σ(−x) written into it.

    Both come from e = e^{−|x|} ∈ [0, 1], which never overflows:
        σ(x) = 1 / (1 + e)   for x ≥ 0          σ′(x) = e / (1 + e)²   for every x
        σ(x) = e / (1 + e)   for x < 0
    No step subtracts two nearly equal numbers, so each result carries a few roundings, relative, down to the
    smallest subnormal number (σ(−100) = 3.7e-44 and σ′(±100) in float32).  The two cases of σ are one
    expression, max(e, [x ≥ 0]) / (1 + e): a select (``where``) is several times slower in NumPy.
    Array passes: 7 for σ, 9 with σ′.
    """
    xp = get_array_module(x)
    e = xp.abs(x)
    xp.negative(e, out=e)
    xp.exp(e, out=e)                                   # e = e^{−|x|}
    denominator = e + 1
    numerator = xp.maximum(e, x >= 0, out=out)         # 1 where x ≥ 0, e where x < 0 (x is not read after this)
    value = xp.divide(numerator, denominator, out=numerator)
    if slope is not None:
        xp.divide(e, denominator, out=slope)
        xp.divide(slope, denominator, out=slope)
    return value


@functools.lru_cache(maxsize=None)
def _log_largest(dtype):
    """ln of the largest finite number of ``dtype`` (88.72 for float32, 709.78 for float64): cosh stays finite up
    to it, and beyond it sech²x < 4/max², which rounds to 0 in every IEEE format (it lies below half the smallest
    subnormal number)."""
    return math.log(float(host_module().finfo(dtype).max))


def tanh(x, out=None, slope=None):
    """tanh x, written into ``out`` (which may be x itself) or a new array; and, if ``slope`` is given,
    tanh′x = sech²x = (1 / cosh x)² written into it — never 1 − tanh²x, which is 0 in float32 from |x| ≈ 9.0
    (where tanh x rounds to ±1) although sech²x is representable up to |x| ≈ 52.

    cosh overflows beyond |x| = ln(max) (88.7 in float32); there sech²x is far below the smallest subnormal, so
    x is clipped to ±ln(max) first (it changes no result and keeps NumPy from warning).  The reciprocal is taken
    before squaring, so that sech²x keeps its subnormal values.  Array passes: 1 for tanh, 5 with the slope.
    """
    xp = get_array_module(x)
    if slope is not None:
        bound = _log_largest(x.dtype)
        xp.clip(x, -bound, bound, out=slope)
        xp.cosh(slope, out=slope)
        xp.reciprocal(slope, out=slope)
        xp.square(slope, out=slope)
    return xp.tanh(x, out=out)


class _Activation(Module):
    """y = f(x) element-wise;  ∂L/∂x = dy · f′(x), with f′(x) given by :meth:`slope` from what a training-mode forward
    saved (:meth:`evaluate`)."""

    _cached = ("_saved",)

    def forward(self, x):
        self.check_input(x)
        y, self._saved = self.evaluate(x, keep=self.training)
        return y

    def backward(self, dy):
        return dy * self.slope(self._saved)


class ReLU(_Activation):
    """y = max(x, 0);   ∂L/∂x = dy · [y > 0].  Saves its output y (the next layer keeps it alive anyway, so it costs
    no memory, unlike a mask) and forms the mask in backward."""

    def evaluate(self, x, keep):
        y = get_array_module(x).maximum(x, 0)
        return y, (y if keep else None)

    def slope(self, y):
        return y > 0


class _SavesSlope(_Activation):
    """An activation whose slope cannot be recovered from its output in floating point: forward computes f′(x)
    beside f(x) and saves it."""

    def evaluate(self, x, keep):
        slope = get_array_module(x).empty_like(x) if keep else None
        return self.function(x, slope=slope), slope

    def slope(self, saved):
        return saved


class Sigmoid(_SavesSlope):
    """y = σ(x) = 1 / (1 + e⁻ˣ);   ∂L/∂x = dy · σ′(x), σ′(x) = σ(x) σ(−x).  Both exact in both tails: see
    :func:`sigmoid`."""

    function = staticmethod(sigmoid)


class Tanh(_SavesSlope):
    """y = tanh x;   ∂L/∂x = dy · sech²x.  Both exact in both tails: see :func:`tanh`."""

    function = staticmethod(tanh)
