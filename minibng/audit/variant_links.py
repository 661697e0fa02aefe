"""The deliberately different links of the variant catalogue (:mod:`.variants`): each is a known way an
implementation departs from the reference, written as a link of minibng's chain so the reference can be rerun with it.

Each states its math beside the reference's; none is meant for training.  AdamW's decay, the catalogue's
``DecoupledWeightDecay``, is a link of :mod:`minibng.optim` (one that is meant for training), named here too.
"""
from __future__ import annotations

import math

from .. import backend
from ..optim import (AdaGradRule, AdamRule, BlockNorms, BlockNormalize, DecoupledWeightDecay, RMSPropRule,
                     UpdateTransform)

__all__ = ["NaiveBlockNorms", "UnguardedNormalize", "NormalizedStep", "DecoupledWeightDecay", "AdamWithoutCorrection",
           "AdamEpsilonInRoot", "AdamEpsilonUncorrected", "RMSPropEpsilonInRoot", "AdaGradEpsilonInRoot"]


class NaiveBlockNorms(BlockNorms):
    """‖v^i‖ = √(Σ_j (v^i_j)²) summed in the parameters' dtype: in float32 the squares of entries below ~1e-19
    underflow to 0 (‖g^i‖ = 0 at gradient scale 1e-30) and those above ~1e19 overflow (‖g^i‖ = ∞)."""

    def __call__(self, v, it):
        xp = it.partition.xp
        with backend.errors_ignored(xp):   # these links under- and overflow on purpose
            sums = backend.segment_sum(v * v, it.partition.segments, xp.empty(len(it.partition.sizes), v.dtype))
            it.block_norms = xp.sqrt(sums).astype(xp.float64)
        return v


class UnguardedNormalize(BlockNormalize):
    """ĝ^i = g^i / ‖g^i‖ with no case for ‖g^i‖ = 0: a zero block becomes 0/0 = NaN (and with a naive norm that
    underflowed, g^i/0 = ±∞)."""

    def __call__(self, v, it):
        xp = it.partition.xp
        with backend.errors_ignored(xp):   # these links under- and overflow on purpose
            norms = it.partition.expand(it.block_norms.astype(v.dtype))
            return xp.divide(v, norms, out=it.direction)


class NormalizedStep(UpdateTransform):
    """The rule fed the raw gradient, its step normalized per block: u^i ← η u^i / ‖u^i‖ (momentum SGD: the velocity
    normalized, η v^i/‖v^i‖, instead of the gradient fed to it; a zero block stays zero)."""

    name = "normalized_step"

    def __call__(self, u, it):
        return it.partition.scale(u, it.lr, it.partition.norms(u), out=it.direction)


class _AdamMoments(AdamRule):
    """Adam's moments m, v as the reference; subclasses say how the step is formed from them."""

    def moments(self, d):
        xp, u = backend.get_array_module(d), self.update
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        m *= self.beta1
        m += xp.multiply(d, 1 - self.beta1, out=u)
        v *= self.beta2
        v += xp.multiply(xp.multiply(d, d, out=u), 1 - self.beta2, out=u)
        return xp, m, v


class AdamWithoutCorrection(_AdamMoments):
    """Adam without bias correction: u = η m / (√v + ε) (c₁ = c₂ = 1; the reference divides by c_k = 1 − β_kᵗ)."""

    def __call__(self, d, it):
        xp, m, v = self.moments(d)
        u = xp.sqrt(v, out=self.update)
        u += self.eps
        xp.divide(m, u, out=u)
        u *= it.lr
        return u


class AdamEpsilonInRoot(_AdamMoments):
    """Adam with ε inside the square root: u = η (m/c₁) / √(v/c₂ + ε) (the reference: √(v/c₂) + ε)."""

    def __call__(self, d, it):
        xp, m, v = self.moments(d)
        c1, c2 = 1 - self.beta1 ** it.t, 1 - self.beta2 ** it.t
        u = xp.divide(v, c2, out=self.update)
        u += self.eps
        xp.sqrt(u, out=u)
        xp.divide(m, u, out=u)
        u *= it.lr / c1
        return u


class AdamEpsilonUncorrected(_AdamMoments):
    """Adam with ε outside the bias correction (TensorFlow's and the paper's "efficient version"):
    u = (η√c₂/c₁) · m / (√v + ε); the reference adds ε√c₂ there."""

    def __call__(self, d, it):
        xp, m, v = self.moments(d)
        c1, c2 = 1 - self.beta1 ** it.t, 1 - self.beta2 ** it.t
        u = xp.sqrt(v, out=self.update)
        u += self.eps
        xp.divide(m, u, out=u)
        u *= it.lr * math.sqrt(c2) / c1
        return u


class RMSPropEpsilonInRoot(RMSPropRule):
    """RMSProp with ε inside the square root (TensorFlow's, optax's default): u = η d / √(a + ε)."""

    def __call__(self, d, it):
        xp, u, a = backend.get_array_module(d), self.update, self.state["square_avg"]
        a *= self.alpha
        a += xp.multiply(xp.multiply(d, d, out=u), 1 - self.alpha, out=u)
        xp.add(a, self.eps, out=u)
        xp.sqrt(u, out=u)
        xp.divide(d, u, out=u)
        u *= it.lr
        return u


class AdaGradEpsilonInRoot(AdaGradRule):
    """AdaGrad with ε inside the square root (optax's): u = η d / √(s + ε)."""

    def __call__(self, d, it):
        xp, u, s = backend.get_array_module(d), self.update, self.state["sum"]
        s += xp.multiply(d, d, out=u)
        xp.add(s, self.eps, out=u)
        xp.sqrt(u, out=u)
        xp.divide(d, u, out=u)
        u *= it.lr
        return u
