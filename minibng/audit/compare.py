"""How the optimizer audit compares two runs fed the same gradients: the step each block took, with a stated tolerance.

Both sides start from the same x_1 and record x_t after every step.  The step taken at t is u_t = x_t − x_{t+1}
(formed in float64 from the parameters' values, exactly).  Block i agrees at step t when, coordinate by coordinate,

    |u_cand − u_ref| ≤ τ_t · max_j |u^i_ref,j| + 2 ulp(x)          τ_t = 256 · ε · t,  |x| = max(|x_t|, |x_{t+1}|)

with ε the machine epsilon of the audited dtype (2.2e-16 for float64, 1.2e-7 for float32).  Why each term:

- τ_t · max|u^i|: a step is a handful of operations per coordinate plus a block norm (a sum of d_i squares,
  accurate to ~log₂ d_i · ε when summed pairwise); an implementation that orders them differently differs by a few ε
  of the block's largest step.  One term can lose more: Adam's bias correction 1 − β₂ᵗ formed in the dtype
  cancels, and in float32 1 − 0.999 is off by 1.3e-5 ≈ 100 ε (optax's float32 Adam sits there, at ~0.3 of this
  tolerance).  State carried from step to step (momentum, Adam's moments) carries each earlier step's rounding
  forward once, hence the factor t; 256 ε covers both with a margin of 2.5.  The error is measured against the
  block's largest step, not each coordinate's own: a coordinate whose momentum cancels to near 0 has an absolute
  error of the block's scale, not of its own.
- 2 ulp(x): each side rounds x_t − u to the dtype once, and u is read back as x_t − x_{t+1}: the two sides' readings
  differ by up to an ulp of the larger of x_t and x_{t+1} on each side.  A step smaller than that leaves no trace in
  the parameters on either side (it is invisible to the model as well).
- A non-finite value (∞, NaN) agrees only with a non-finite value.

Every deliberate change of the catalogue (:mod:`.variants`) moves some step by far more than this: a missing bias
correction by a factor ~3, a naive float32 norm at scale 1e-30 by the whole step.  A correct float32 implementation
written differently stays below a tenth of it (``audit self`` shows the measured fraction, ``worst``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Tolerance", "Mismatch", "first_mismatch", "worst_fraction", "vectors_agree"]

FACTOR = 256


@dataclass(frozen=True)
class Tolerance:
    """τ_t = 256 ε t and the 2-ulp rounding allowance of ``dtype`` (see the module docstring)."""

    dtype: str

    @property
    def epsilon(self):
        return float(np.finfo(self.dtype).eps)

    @property
    def per_step(self):
        """256 ε: τ_t / t."""
        return FACTOR * self.epsilon

    def relative(self, step):
        return self.per_step * step

    def allowed(self, step, reference_steps, x_before, x_after=None):
        """The allowed |u_cand − u_ref| per coordinate of one block: τ_t · max|u_ref| + 2 ulp(max(|x_t|, |x_{t+1}|))."""
        finite = reference_steps[np.isfinite(reference_steps)]
        scale = np.max(np.abs(finite), initial=0.0)
        x = np.abs(x_before) if x_after is None else np.maximum(np.abs(x_before), np.abs(x_after))
        magnitude = np.where(np.isfinite(x), x, 0.0).astype(self.dtype)
        return self.relative(step) * scale + 2 * np.spacing(magnitude).astype(np.float64)

    def describe(self):
        return (f"|u_cand − u_ref| ≤ 256·ε·t · max|u_ref^i| + 2 ulp(x) per coordinate of block i, "
                f"ε = {self.epsilon:.3g} ({self.dtype})")

    def as_json(self):
        return {"dtype": self.dtype, "epsilon": self.epsilon, "relative_per_step": self.per_step,
                "formula": "|u_cand - u_ref| <= 256*eps*t*max|u_ref^i| + 2*ulp(max(|x_t|, |x_{t+1}|)), per coordinate "
                           "of block i"}


@dataclass(frozen=True)
class Mismatch:
    """The first coordinate off: ``step`` t (0: the starting parameters), ``block`` index, ``index`` the flat
    coordinate, the reference's and candidate's values (the step u_t, or x_1 at step 0), the allowance."""

    step: int
    block: int
    index: int
    reference: float
    candidate: float
    allowed: float

    @property
    def difference(self):
        return self.candidate - self.reference


def _off(reference, candidate, allowed):
    """Where the two differ by more than ``allowed`` (a non-finite value agrees only with a non-finite one)."""
    finite_r, finite_c = np.isfinite(reference), np.isfinite(candidate)
    with np.errstate(invalid="ignore", over="ignore"):
        too_far = np.abs(candidate - reference) > allowed
    return np.where(finite_r & finite_c, too_far, finite_r != finite_c)


def _fractions(reference, candidate, allowed):
    """|u_cand − u_ref| / allowed per coordinate (∞ where exactly one is non-finite, 0 where both are)."""
    finite = np.isfinite(reference) & np.isfinite(candidate)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        ratio = np.abs(candidate - reference) / allowed
    ratio = np.where(finite, ratio, np.where(np.isfinite(reference) != np.isfinite(candidate), np.inf, 0.0))
    return np.nan_to_num(ratio, nan=0.0, posinf=np.inf)


def _steps(params):
    with np.errstate(invalid="ignore", over="ignore"):
        return params[:-1] - params[1:]


def _compare(reference, candidate, blocks, tolerance, visit):
    """Call ``visit(step, block, indices, ref, cand, allowed)`` for x_1 and every step's u_t, block by block, until it
    returns something; return that (or None)."""
    first = visit(0, None, np.arange(reference.shape[1]), reference[0], candidate[0],
                  2 * np.spacing(np.abs(reference[0]).astype(tolerance.dtype)).astype(np.float64))
    if first is not None:
        return first
    steps = min(len(reference), len(candidate)) - 1
    ref_steps, cand_steps = _steps(reference[:steps + 1]), _steps(candidate[:steps + 1])
    for t in range(1, steps + 1):
        for b, indices in enumerate(blocks):
            r, c = ref_steps[t - 1, indices], cand_steps[t - 1, indices]
            found = visit(t, b, indices, r, c, tolerance.allowed(t, r, reference[t - 1, indices], reference[t, indices]))
            if found is not None:
                return found
    return None


def first_mismatch(reference, candidate, blocks, tolerance):
    """The first :class:`Mismatch` between two trajectories (T+1, d) (x_1 … x_{T+1}, float64), step by step and
    block by block (``blocks``: the flat coordinates of each block), or None when they agree throughout."""

    def visit(step, block, indices, r, c, allowed):
        off = _off(r, c, allowed)
        if not off.any():
            return None
        worst = int(np.argmax(np.where(off, _fractions(r, c, allowed), -1.0)))
        owner = block if block is not None else next(b for b, ind in enumerate(blocks) if indices[worst] in ind)
        return Mismatch(step, owner, int(indices[worst]), float(r[worst]), float(c[worst]), float(allowed[worst]))

    return _compare(reference, candidate, blocks, tolerance, visit)


def worst_fraction(reference, candidate, blocks, tolerance):
    """max over steps and coordinates of |u_cand − u_ref| / allowed: below 1 the runs agree (0.02: at 2 % of the
    tolerance)."""
    worst = [0.0]

    def visit(step, block, indices, r, c, allowed):
        worst[0] = max(worst[0], float(np.max(_fractions(r, c, allowed), initial=0.0)))

    _compare(reference, candidate, blocks, tolerance, visit)
    return worst[0]


def vectors_agree(reference, candidate, tolerance, step):
    """Whether two vectors of step ``step`` (a rule's state, say) agree within τ_t · max|reference| + 2 ulp."""
    return not _off(reference, candidate, tolerance.allowed(step, reference, reference)).any()
