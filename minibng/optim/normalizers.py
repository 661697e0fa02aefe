"""Direction transforms ("normalizers"): a per-block scale computed from block norms, for all blocks at once.

Every transform here is one per-block ratio s_i = a_i / b_i of block norms, and the optimizer applies it as
d^i = g^i · a_i / b_i (``Blocks.scale``: one multiply over the flat vector, and never a ratio that overflows,
so a block with ‖g^i‖ = 1e-30 is normalized as exactly as one with ‖g^i‖ = 1).  With n_i = ‖g^i‖₂ and
p_i = ‖x^i‖₂, both exact float64 block norms (``Blocks.norms``):

| transform            | a_i / b_i                                   | direction for block i           | paper       |
|----------------------|---------------------------------------------|---------------------------------|-------------|
| ``None``             | (no scaling)                                | g^i                             | baseline    |
| ``"block"`` (NG)     | 1 / n_i                                     | g^i / ‖g^i‖                     | …NG         |
| ``Adaptive(α)``      | α p_i / n_i; 1 / n_i if p_i = 0             | α ‖x^i‖ g^i / ‖g^i‖             | …NGadap     |
| ``Clip(c)``          | c / max(n_i, c)                             | g^i · min(1, c / ‖g^i‖)         | …CLIP       |
| ``Lars(η, λ)``       | η p_i / (n_i + λ p_i); 1 if n_i or p_i = 0  | (g^i + λx^i) · s_i              | LARS        |
| ``TrustRatio(λ)``    | p_i / ‖u^i‖; 1 if either is 0               | applied to the rule's step u    | LAMB        |

A block whose b_i is 0 (a zero gradient block under NG) gets s_i = 0: a zero block stays zero under every
transform.  Ratios are computed with ``xp.where``/``xp.maximum`` on device arrays, never a Python ``if`` on a
value, so a GPU step never waits for the host.

To write a new transform, subclass :class:`Normalizer` and implement ``block_ratio(grad_norms, param_norms)``
returning (a, b), each a (B,) array or a scalar; set ``needs_param_norms = True`` if it reads ‖x^i‖.
"""
from __future__ import annotations

import math

from .. import backend

__all__ = ["Normalizer", "BlockNormalize", "Adaptive", "Clip", "Lars", "TrustRatio", "as_normalizer"]


def _positive(option, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{option} must be a positive finite number, got {value!r}")
    return float(value)


class Normalizer:
    """Base class: a per-block ratio a_i / b_i from block norms.

    ``stage``: ``"direction"`` scales the gradient before the step rule (NG, NGadap, CLIP, LARS);
    ``"step"`` scales the rule's step after it (LAMB).  ``weight_decay`` > 0 means the transform adds λx to
    the vector it scales (LARS, LAMB), so the optimizer's own weight decay must then be 0.
    """

    stage = "direction"
    needs_param_norms = False
    weight_decay = 0.0
    name = "custom"

    def block_ratio(self, grad_norms, param_norms):
        """(a, b): block i of the vector is multiplied by a_i / b_i (0 where b_i = 0)."""
        raise NotImplementedError

    def config(self):
        """Hyperparameters, saved in the optimizer's state_dict and checked on load."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class BlockNormalize(Normalizer):
    """NG: ĝ^i = g^i / ‖g^i‖₂ (Algorithm 1, step 2); a zero block stays zero."""

    name = "block"

    def block_ratio(self, grad_norms, param_norms):
        return 1.0, grad_norms


class Adaptive(Normalizer):
    """NGadap: α ‖x^i‖ g^i / ‖g^i‖; where ‖x^i‖ = 0 the block falls back to NG (g^i / ‖g^i‖)."""

    needs_param_norms = True
    name = "adaptive"

    def __init__(self, alpha=0.02):
        self.alpha = _positive("Adaptive: alpha", alpha)

    def block_ratio(self, grad_norms, param_norms):
        xp = _xp(grad_norms)
        return xp.where(param_norms > 0, self.alpha * param_norms, 1), grad_norms

    def config(self):
        return {"alpha": self.alpha}


class Clip(Normalizer):
    """CLIP: g^i · min(1, c / ‖g^i‖), computed as c / max(‖g^i‖, c) (exactly 1 for blocks within c)."""

    name = "clip"

    def __init__(self, threshold=0.1):
        self.threshold = _positive("Clip: threshold", threshold)

    def block_ratio(self, grad_norms, param_norms):
        return self.threshold, _xp(grad_norms).maximum(grad_norms, self.threshold)

    def config(self):
        return {"threshold": self.threshold}


class Lars(Normalizer):
    """LARS (You et al. 2017): d^i = (g^i + λx^i) · η‖x^i‖ / (‖g^i‖ + λ‖x^i‖), ratio 1 where either norm is 0.

    η is the trust coefficient, λ the weight decay (added here, so the optimizer's own must be 0).
    """

    needs_param_norms = True
    name = "lars"

    def __init__(self, trust_coefficient=0.02, weight_decay=0.0):
        self.trust_coefficient = _positive("Lars: trust_coefficient", trust_coefficient)
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
            raise ValueError(f"Lars: weight_decay must be ≥ 0, got {weight_decay!r}")
        self.weight_decay = float(weight_decay)

    def block_ratio(self, grad_norms, param_norms):
        xp = _xp(grad_norms)
        both = (grad_norms > 0) & (param_norms > 0)
        return (xp.where(both, self.trust_coefficient * param_norms, 1),
                xp.where(both, grad_norms + self.weight_decay * param_norms, 1))

    def config(self):
        return {"trust_coefficient": self.trust_coefficient, "weight_decay": self.weight_decay}


class TrustRatio(Normalizer):
    """LAMB's layer-wise trust ratio (You et al. 2019): u^i ← (u^i + λx^i) · ‖x^i‖ / ‖u^i + λx^i‖.

    Applied to the step rule's output u (stage ``"step"``), ratio 1 where either norm is 0.
    """

    stage = "step"
    needs_param_norms = True
    name = "trust_ratio"

    def __init__(self, weight_decay=0.0):
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
            raise ValueError(f"TrustRatio: weight_decay must be ≥ 0, got {weight_decay!r}")
        self.weight_decay = float(weight_decay)

    def block_ratio(self, step_norms, param_norms):
        xp = _xp(step_norms)
        both = (step_norms > 0) & (param_norms > 0)
        return xp.where(both, param_norms, 1), xp.where(both, step_norms, 1)

    def config(self):
        return {"weight_decay": self.weight_decay}


def _xp(a):
    return backend.get_array_module(a)


def as_normalizer(normalize):
    """``None`` -> None; ``"block"`` -> BlockNormalize(); a Normalizer passes through; else ValueError."""
    if normalize is None or isinstance(normalize, Normalizer):
        return normalize
    if normalize == "block":
        return BlockNormalize()
    raise ValueError(f"normalize must be None, 'block', optim.Adaptive(alpha) or optim.Clip(threshold), got {normalize!r}")
