"""Block transforms: the links of an optimizer's chain (:mod:`.chain`) before and after its step rule.

Each transform maps a flat vector v ∈ R^d to another, block by block, with per-block values computed for all
blocks at once.  *Direction transforms* act on the gradient before the rule (Algorithm 1, line 3); *update
transforms* (:class:`UpdateTransform`) act on the rule's update τ_t ∘ ĝ_t after it.  With n_i = ‖v^i‖₂ measured
by :class:`BlockNorms` (exact float64 block norms: ‖g^i‖, or ‖g^i + λx^i‖ when weight decay comes first) and
p_i = ‖x^i‖₂:

| transform                            | block i of the output                     | paper / source                   |
|--------------------------------------|-------------------------------------------|----------------------------------|
| ``BlockNorms``                       | v^i (and measures n_i)                    | ‖g^i‖ of Algorithm 1             |
| ``BlockNormalize`` (NG)              | v^i / n_i                                 | …NG, Algorithm 1 line 3          |
| ``Adaptive(α)``                      | v^i · α p_i / n_i  (v^i / n_i if p_i = 0) | …NGadap                          |
| ``Clip(c)``                          | v^i · c / max(n_i, c)                     | …CLIP                            |
| ``Lars(η, λ)``                       | (v^i + λx^i) · η p_i / (n_i + λ p_i)      | LARS (You et al. 2017)           |
| ``WeightDecay(λ)``                   | v^i + λx^i                                | Torch7's optim.sgd               |
| ``DecoupledWeightDecay(λ)`` (update) | u^i + ηλx^i                               | AdamW (Loshchilov & Hutter 2019) |
| ``TrustRatio(λ)`` (update)           | w^i · η p_i / ‖w^i‖, w = u + ηλx          | LAMB (You et al. 2019)           |
| ``GradientNormScale``                | u^i · n_i                                 | Algorithm 2 (AdaGradBNG)         |

Every per-block factor is a ratio a_i / b_i handed to ``Partition.scale``, which never forms a ratio that
overflows (so a block with ‖g^i‖ = 1e-30 is normalized as exactly as one with ‖g^i‖ = 1).  A block whose b_i
is 0 gets the factor 0, so a zero block stays zero; LARS and LAMB use the ratio 1 where either norm is 0.
Ratios are array expressions (``xp.where``, ``xp.maximum``), never a Python ``if`` on a value, so a GPU step
never waits for the host.

To write a transform: subclass :class:`Transform` (or :class:`UpdateTransform`), implement ``__call__(v, it)``
returning the new vector written into ``it.direction`` (never into ``v``, unless ``v`` is ``it.direction``: the
gradient stays as the layers wrote it, and the link works wherever it stands in a chain), read what the iteration
offers (``it.x``, ``it.lr``, ``it.block_norms``, ``it.param_norms``, ``it.partition``), set
``needs_block_norms = True`` if it reads ``it.block_norms``, and name its hyperparameters in ``hyperparameters``.
"""
from __future__ import annotations

from . import checks

__all__ = ["Transform", "UpdateTransform", "BlockNorms", "WeightDecay", "DecoupledWeightDecay", "BlockNormalize",
           "Adaptive", "Clip", "Lars", "TrustRatio", "GradientNormScale", "as_transform"]


class Transform(checks.Hyperparameters):
    """A direction transform, applied to the gradient before the step rule; ``hyperparameters`` names its
    attributes that ``config()`` reports (saved in the optimizer's state_dict under ``name``, checked on load)."""

    name = "custom"
    needs_block_norms = False
    weight_decay = 0.0   # > 0: the transform adds λx itself, so the optimizer's own weight_decay must be 0

    def __call__(self, v, it):
        raise NotImplementedError


class UpdateTransform(Transform):
    """An update transform, meant for the rule's update τ_t ∘ ĝ_t before x ← x − u (``normalize=`` places it after
    the rule)."""


class BlockNorms(Transform):
    """The measurement: n_i = ‖v^i‖₂ for every block, kept as ``it.block_norms`` for the links after it and for
    logging (``opt.block_norms``); the vector passes unchanged."""

    name = "norms"

    def __call__(self, v, it):
        it.block_norms = it.partition.norms(v, work=None if v is it.direction else it.direction)
        return v


class WeightDecay(Transform):
    """v + λx: L2 weight decay, added after normalization (Torch7's optim.sgd) or, placed first, before it.  Placed
    after the rule it adds λx to the update itself, so x_{t+1} = x_t − u − λx_t whatever the learning rate η
    (:class:`DecoupledWeightDecay` is the one scaled by η)."""

    name = "weight_decay"
    hyperparameters = ("weight_decay",)

    def __init__(self, weight_decay):
        self.weight_decay = checks.positive(f"{type(self).__name__}: weight_decay", weight_decay)

    def __call__(self, v, it):
        xp = it.partition.xp
        return xp.add(v, xp.multiply(it.x, self.decay_factor(it), out=it.scratch), out=it.direction)

    def decay_factor(self, it):
        """The multiple of x_t added: λ."""
        return self.weight_decay


class DecoupledWeightDecay(WeightDecay, UpdateTransform):
    """AdamW's decoupled weight decay (Loshchilov & Hutter 2019), meant after the rule: u + ηλx, so
    x_{t+1} = (1 − ηλ) x_t − u.  The decay follows the learning rate η (and its schedule) and never enters the
    rule's state, where Adam would divide it by √v."""

    name = "decoupled_weight_decay"

    def decay_factor(self, it):
        """The multiple of x_t added: ηλ."""
        return it.lr * self.weight_decay


class BlockNormalize(Transform):
    """NG: ĝ^i = g^i / ‖g^i‖₂ (a zero block stays zero)."""

    name = "block"
    needs_block_norms = True

    def __call__(self, v, it):
        return it.partition.scale(v, 1.0, it.block_norms, out=it.direction)


class Adaptive(Transform):
    """NGadap: α ‖x^i‖ g^i / ‖g^i‖; where ‖x^i‖ = 0 the block falls back to NG (g^i / ‖g^i‖)."""

    name = "adaptive"
    needs_block_norms = True
    hyperparameters = ("alpha",)

    def __init__(self, alpha=0.02):
        self.alpha = checks.positive("Adaptive: alpha", alpha)

    def __call__(self, v, it):
        xp, p = it.partition.xp, it.param_norms
        return it.partition.scale(v, xp.where(p > 0, self.alpha * p, 1), it.block_norms, out=it.direction)


class Clip(Transform):
    """CLIP: g^i · min(1, c / ‖g^i‖), computed as c / max(‖g^i‖, c): exactly 1 for blocks within c."""

    name = "clip"
    needs_block_norms = True
    hyperparameters = ("threshold",)

    def __init__(self, threshold=0.1):
        self.threshold = checks.positive("Clip: threshold", threshold)

    def __call__(self, v, it):
        xp = it.partition.xp
        return it.partition.scale(v, self.threshold, xp.maximum(it.block_norms, self.threshold), out=it.direction)


class Lars(Transform):
    """LARS (You et al. 2017): d^i = (g^i + λx^i) · η‖x^i‖ / (‖g^i‖ + λ‖x^i‖), ratio 1 where either norm is 0.

    η is the trust coefficient, λ the weight decay (added here, so the optimizer's own must be 0).
    """

    name = "lars"
    needs_block_norms = True
    hyperparameters = ("trust_coefficient", "weight_decay")

    def __init__(self, trust_coefficient=0.02, weight_decay=0.0):
        self.trust_coefficient = checks.positive("Lars: trust_coefficient", trust_coefficient)
        self.weight_decay = checks.non_negative("Lars: weight_decay", weight_decay)
        self._decay = WeightDecay(weight_decay) if weight_decay else None

    def __call__(self, v, it):
        xp, n, p = it.partition.xp, it.block_norms, it.param_norms
        if self._decay is not None:
            v = self._decay(v, it)
        both = (n > 0) & (p > 0)
        return it.partition.scale(v, xp.where(both, self.trust_coefficient * p, 1),
                                  xp.where(both, n + self.weight_decay * p, 1), out=it.direction)


class TrustRatio(UpdateTransform):
    """LAMB's layer-wise trust ratio (You et al. 2019) on the rule's update u = η û (û: Adam's step):
    w = u + ηλx = η(û + λx), then u^i ← w^i · η‖x^i‖ / ‖w^i‖, so x^i moves by η‖x^i‖ along û^i + λx^i;
    ratio 1 (u^i ← w^i) where either norm is 0."""

    name = "trust_ratio"
    hyperparameters = ("weight_decay",)

    def __init__(self, weight_decay=0.0):
        self.weight_decay = checks.non_negative("TrustRatio: weight_decay", weight_decay)

    def __call__(self, u, it):
        xp, partition = it.partition.xp, it.partition
        w = u
        if self.weight_decay:
            w = xp.add(u, xp.multiply(it.x, it.lr * self.weight_decay, out=partition.scratch), out=it.direction)
        w_norms, p = partition.norms(w), it.param_norms
        both = (w_norms > 0) & (p > 0)
        return partition.scale(w, xp.where(both, it.lr * p, 1), xp.where(both, w_norms, 1), out=it.direction)


class GradientNormScale(UpdateTransform):
    """u^i ← ‖g^i‖ u^i: turns AdaGrad's update on the normalized gradient, η ĝ^i / (δ + s^i), into Algorithm 2's
    τ^i_t ∘ ĝ^i_t = η ‖g^i_t‖ ĝ^i_t / (δ + s^i_t)."""

    name = "gradient_norm_scale"
    needs_block_norms = True

    def __call__(self, u, it):
        return it.partition.scale(u, it.block_norms, 1.0, out=it.direction)


def as_transform(normalize):
    """What an optimizer's ``normalize=`` accepts: ``None`` → None; ``"block"`` → BlockNormalize(); one Transform
    (Adaptive, Clip, Lars, TrustRatio or your own) passes through; anything else is a ValueError."""
    if normalize is None or isinstance(normalize, Transform):
        return normalize
    if normalize == "block":
        return BlockNormalize()
    raise ValueError("normalize must be None, 'block' or one transform (optim.Adaptive(alpha), optim.Clip(threshold), "
                     f"optim.Lars(...), optim.TrustRatio(...) or your own), got {normalize!r}")
