"""Checks of the arguments a layer is built with, each failure naming the layer and the option.

A value of the wrong kind is a TypeError (``Dropout: p must be a number, got '0.5' (str)``), a value of the right
kind outside its range a ValueError (``Dropout: p must be in [0, 1), got nan``).  ``True`` and ``False`` are never
taken for the numbers 1 and 0, nor a string for the number it spells, nor NaN or ∞ for a size, a rate or a bound.
"""
from __future__ import annotations

import math
import numbers

from .. import backend

__all__ = ["check_sizes", "check_integer", "check_flag", "check_real", "check_positive", "check_fraction",
           "check_dtype", "check_rng", "check_seed", "DTYPES"]

DTYPES = ("float32", "float64")   # what every layer (and the GPU kernels) compute in


def _kind(value):
    return f"{value!r} ({type(value).__name__})"


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_integer(layer, option, value, minimum=None):
    """``value`` as an int (NumPy integers are integers; 4.5, '4' and True are not), at least ``minimum``."""
    if not _is_integer(value):
        raise TypeError(f"{layer}: {option} must be an integer, got {_kind(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{layer}: {option} must be ≥ {minimum}, got {value}")
    return int(value)


def check_sizes(layer, **sizes):
    """Every size as an int ≥ 1: a TypeError naming ``layer`` and the argument unless it is an integer (4.5 is never
    taken as 4), a ValueError unless it is positive."""
    for name, value in sizes.items():
        if not _is_integer(value):
            raise TypeError(f"{layer}: {name} must be an integer, got {_kind(value)}")
    if min(sizes.values()) <= 0:
        raise ValueError(f"{layer}: {' and '.join(sizes)} must be positive, got {', '.join(map(str, sizes.values()))}")


def check_flag(layer, option, value):
    """``value`` as a bool; only True and False (Python's or NumPy's) are flags."""
    if not isinstance(value, (bool, backend.host_module().bool_)):
        raise TypeError(f"{layer}: {option} must be True or False, got {_kind(value)}")
    return bool(value)


def check_real(layer, option, value):
    """``value`` as a finite float: a TypeError for anything but a real number (a string, None, a bool), a ValueError
    for NaN or ±∞."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{layer}: {option} must be a number, got {_kind(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{layer}: {option} must be a finite number, got {value}")
    return value


def check_positive(layer, option, value):
    """``value`` as a finite float > 0."""
    value = check_real(layer, option, value)
    if value <= 0:
        raise ValueError(f"{layer}: {option} must be > 0, got {value}")
    return value


def check_fraction(layer, option, value, closed=False):
    """``value`` as a float in [0, 1) (a dropout rate), or in [0, 1] if ``closed`` (a momentum)."""
    value = check_real(layer, option, value)
    if not (0 <= value <= 1 if closed else 0 <= value < 1):
        raise ValueError(f"{layer}: {option} must be in [0, 1{']' if closed else ')'}, got {value}")
    return value


def check_dtype(layer, dtype):
    """``dtype`` ("float32", numpy.float64, …) as a NumPy dtype, one of :data:`DTYPES`; None is not a dtype (NumPy
    would read it as float64)."""
    try:
        resolved = None if dtype is None else backend.host_module().dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise TypeError(f"{layer}: dtype must be {' or '.join(DTYPES)}, got {_kind(dtype)}")
    return resolved


def check_rng(layer, rng):
    """``rng`` if it is None (the generator of :func:`minibng.backend.manual_seed`), a NumPy Generator or a seed
    (an integer ≥ 0, as NumPy's SeedSequence takes)."""
    if rng is None or isinstance(rng, backend.host_module().random.Generator):
        return rng
    if not _is_integer(rng):
        raise TypeError(f"{layer}: rng must be None, a numpy.random.Generator or an integer seed, got {_kind(rng)}")
    return check_integer(layer, "rng", rng, minimum=0)


def check_seed(layer, seed):
    """``seed`` if it is None (drawn from the host generator) or an integer ≥ 0 (as NumPy's SeedSequence takes)."""
    return None if seed is None else check_integer(layer, "seed", seed, minimum=0)
