"""The layer audit's checks before any finite difference: a forward or backward must not write into its input
(x, dy) nor return an array that shares memory with it, and a forward must be deterministic once the module's own
random streams are replayed (a dropout drawing from NumPy's global generator is not: its gradient cannot be checked,
and the audit says so instead of reporting a gradient mismatch)."""
from __future__ import annotations

import numpy as np

from .. import backend

__all__ = ["shares_memory", "changed", "purity_problems"]


def _extent(a):
    base = a.data.ptr if hasattr(a.data, "ptr") else a.__array_interface__["data"][0]
    return base, base + a.nbytes


def shares_memory(a, b):
    """True when arrays ``a`` and ``b`` overlap in memory (a conservative test on their byte ranges)."""
    if not (backend.is_array(a) and backend.is_array(b)) or a.nbytes == 0 or b.nbytes == 0:
        return False
    (a0, a1), (b0, b1) = _extent(a), _extent(b)
    return a0 < b1 and b0 < a1


def changed(before, after):
    """True when ``after`` differs from the copy ``before`` anywhere (NaN equal to NaN)."""
    before, after = backend.asnumpy(before), backend.asnumpy(after)
    return before.shape != after.shape or not np.array_equal(before, after, equal_nan=before.dtype.kind == "f")


def purity_problems(name, inputs, saved, outputs, role):
    """The problems of a call of ``name`` (``role``: "forward" or "backward") that was given ``inputs`` (copies of
    their values before the call: ``saved``) and returned ``outputs``."""
    problems = []
    label = {"forward": "x", "backward": "dy"}[role]
    for k, (x, before) in enumerate(zip(inputs, saved)):
        which = label if len(inputs) == 1 else f"input {k}"
        if changed(before, x):
            problems.append(f"{role} of {name} wrote into its input {which} (it must leave it as it was given: inside "
                            "a Residual the same array feeds the shortcut too)")
        for y in outputs:
            if shares_memory(y, x):
                problems.append(f"{role} of {name} returned an array that shares memory with its input {which} "
                                "(return a new array: a later in-place change would reach the input)")
                break
    return problems
