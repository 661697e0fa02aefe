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

from ..backend import errors_ignored, get_array_module, host_module
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh", "sigmoid", "tanh"]


def sigmoid(x, out=None, slope=None):
    """σ(x) = 1 / (1 + e⁻ˣ), written into ``out`` (which may be x itself) or a new array; and, if ``slope`` is
    given, σ′(x) = σ(x) σ(−x) written into it.

    Two forms, each within a few roundings of the truth, relative, down to the smallest subnormal number
    (σ(−100) = 3.7e-44 and σ′(±100) in float32); they may differ from each other in the last bit.  No step
    subtracts two nearly equal numbers.
      from eˣ, where eˣ is finite (every x ≤ ⌊ln max⌋: 88 in float32, 709 in float64), 4 array passes:
          σ(x) = eˣ / (1 + eˣ)                 σ′(x) = σ(x) / (1 + eˣ)   (σ(−x) = 1 / (1 + eˣ))
      from e = e^{−|x|} ∈ [0, 1], which never overflows, for every x; 9 passes:
          σ(x) = max(e, [x ≥ 0]) / (1 + e)     σ′(x) = e / (1 + e)²
    Beyond ln max the first form would take ∞/∞, and σ′(x) = e⁻ˣ there is a subnormal number that no clipping of
    x keeps.  On the host one reduction (max x, a fifth pass) chooses; a GPU takes the second form always, so
    that no layer makes the host wait for the device to report max x.
    """
    xp = get_array_module(x)
    if xp is host_module() and _exp_is_finite(x):
        return _sigmoid_from_exp(xp, x, out, slope)
    return _sigmoid_from_exp_of_minus_abs(xp, x, out, slope)


@functools.lru_cache(maxsize=None)
def _largest_exponent(dtype):
    """⌊ln max⌋ of ``dtype`` (88 for float32, 709 for float64): eˣ is finite for every x up to it.  Rounded down
    to a whole number, so that it is exact in every dtype (ln max itself rounds up in float32, and e to that
    overflows)."""
    return math.floor(math.log(float(host_module().finfo(dtype).max)))


def _exp_is_finite(x):
    """Whether eˣ is finite for every element of ``x`` (NaN counts as finite: it passes through either form)."""
    return x.size == 0 or not x.max() > _largest_exponent(x.dtype)


def _sigmoid_from_exp(xp, x, out, slope):
    """σ and σ′ from eˣ, for x whose eˣ is finite: see :func:`sigmoid`."""
    e = xp.exp(x, out=out)                             # x is not read after this
    denominator = xp.add(e, 1, out=slope)              # held where σ′ will be written
    value = xp.divide(e, denominator, out=e)
    if slope is not None:
        xp.divide(value, denominator, out=slope)
    return value


def _sigmoid_from_exp_of_minus_abs(xp, x, out, slope):
    """σ and σ′ from e^{−|x|}, for any x: see :func:`sigmoid`.  The two cases of σ are one expression,
    max(e, [x ≥ 0]) / (1 + e): a select (``where``) is several times slower in NumPy."""
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


def tanh(x, out=None, slope=None):
    """tanh x, written into ``out`` (which may be x itself) or a new array; and, if ``slope`` is given,
    tanh′x = sech²x = (1 / cosh x)² written into it — never 1 − tanh²x, which is 0 in float32 from |x| ≈ 9.0
    (where tanh x rounds to ±1) although sech²x is representable up to |x| ≈ 52.

    cosh x overflows to ∞ beyond |x| ≈ ln(2 max) (89.4 in float32); its reciprocal 0 is then sech²x rounded, since
    sech²x < 1/max² lies below half the smallest subnormal number in every IEEE format.  The reciprocal is taken
    before squaring, so that sech²x keeps its subnormal values.  Array passes: 1 for tanh, 4 with the slope.
    """
    xp = get_array_module(x)
    if slope is not None:
        with errors_ignored(xp, "over"):               # the overflow to ∞ is the intended result, see above
            xp.cosh(x, out=slope)
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
