"""Validation of hyperparameters (each failure a ValueError naming the option and the value given), and the base
class that names them."""
from __future__ import annotations

import math

__all__ = ["number", "non_negative", "positive", "fraction", "flag", "choice", "Hyperparameters"]


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


class Hyperparameters:
    """Base of step rules and transforms: ``hyperparameters`` names the attributes that ``config()`` reports (saved
    in the optimizer's state_dict and checked on load) and ``repr`` prints."""

    hyperparameters = ()

    def config(self):
        return {name: getattr(self, name) for name in self.hyperparameters}

    def __repr__(self):
        config = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({config})" if config else type(self).__name__
