"""Validation of hyperparameters (each failure a ValueError naming the option and the value given), and the base
class that names them.

Two checks depend on the parameters' dtype, known once an optimizer has its parameters: a small constant added
to a denominator (ε, δ) must not vanish there (:func:`addend_kept`), and a decay factor (momentum, β, α) must not
round to 1 (:func:`factor_kept_below_one`).  The same rules hold in float64, whose wider range only moves the
bounds.
"""
from __future__ import annotations

import math

from .. import backend

__all__ = ["number", "non_negative", "positive", "fraction", "flag", "choice", "addend_kept",
           "factor_kept_below_one", "Hyperparameters"]


def number(option, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ValueError(f"{option} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{option} must be finite, got {value!r}")
    return value


def non_negative(option, value):
    value = number(option, value)
    if value < 0:
        raise ValueError(f"{option} must be ≥ 0, got {value!r}")
    return value


def positive(option, value):
    value = number(option, value)
    if value <= 0:
        raise ValueError(f"{option} must be > 0, got {value!r}")
    return value


def fraction(option, value, closed=False):
    """A value in [0, 1) (momentum, betas, RMSProp's alpha), or in [0, 1] if ``closed`` (dampening)."""
    value = number(option, value)
    if not (0 <= value <= 1 if closed else 0 <= value < 1):
        raise ValueError(f"{option} must be in [0, 1{']' if closed else ')'}, got {value!r}")
    return value


def flag(option, value):
    if not isinstance(value, bool):
        raise ValueError(f"{option} must be True or False, got {value!r}")
    return value


def choice(option, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{option} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _or_wider(dtype):
    return "" if dtype.itemsize >= 8 else ", or float64 parameters"


def addend_kept(option, value, dtype, added, rule_adds):
    """``value`` unless ``added`` — what the step rule adds to a denominator with it; ``rule_adds`` says so with a
    ``{}`` where the number goes, e.g. "at step 1 the step adds eps·√(1 − β₂) = {} to √v" — is below ``dtype``'s
    smallest normal number.  There it rounds to 0, or keeps a few bits, and a coordinate whose gradient has
    always been 0 (MNIST's border pixels) divides 0 by 0: NaN after the first step."""
    tiny = float(backend.host_module().finfo(dtype).tiny)
    if added < tiny:
        smallest = tiny * (value / added)
        raise ValueError(f"{option}={value:g} vanishes in {dtype}: {rule_adds.format(f'{added:.3g}')}, below "
                         f"{dtype}'s smallest normal number {tiny:.3g} (a coordinate whose gradient has always been 0 "
                         f"would become 0/0 = NaN); give {option} ≥ {smallest:.2g}{_or_wider(dtype)}")
    return value


def factor_kept_below_one(option, value, dtype, role):
    """``value`` (a decay factor in [0, 1)) unless ``dtype`` rounds it to 1, which would make ``role`` (e.g. "the
    momentum buffer") an average that never forgets."""
    host = backend.host_module()
    one, zero = dtype.type(1), dtype.type(0)
    if value > 0 and dtype.type(value) == one:
        largest = host.nextafter(one, zero)            # printed in the dtype's shortest form: 0.99999994
        raise ValueError(f"{option}={value!r} rounds to 1 in {dtype}, so {role} would never forget; give "
                         f"{option} ≤ {largest!s}{_or_wider(dtype)}")
    return value


class Hyperparameters:
    """Base of step rules and transforms: ``hyperparameters`` names the attributes that ``config()`` reports (saved
    in the optimizer's state_dict and checked on load) and ``repr`` prints."""

    hyperparameters = ()

    def config(self):
        return {name: getattr(self, name) for name in self.hyperparameters}

    def __repr__(self):
        config = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({config})" if config else type(self).__name__
