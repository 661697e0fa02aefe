"""The public optimizers: SGD, AdaGrad, RMSProp, Adam and AdaGradBNG (Algorithm 2).

Each takes ``params`` (a Module, a list of Parameters or of (name, Parameter) pairs), ``normalize=None |
"block" | Adaptive(alpha) | Clip(threshold) | Lars(trust_coefficient, weight_decay) | TrustRatio(weight_decay)``
(Lars acts on the direction, TrustRatio, LAMB's, on the rule's step), ``blocks="layer" | "tensor" | "global" |
[[p, ...], ...]``, ``weight_decay`` (λ, added to the direction after normalization; ``decay="before"`` adds it
before) and ``track_norms`` (compute ``block_norms`` every step even without a normalizer; default True).
With ``normalize=None`` each equals the torch.optim rule of the same name.

``eps`` (δ for AdaGradBNG) must be > 0, and large enough not to vanish in the parameters' dtype: with ε = 0, or
an ε that rounds to 0 there (1e-300 in float32), a coordinate whose gradient has always been 0 (MNIST's border
pixels) divides 0 by 0.  Likewise a momentum or β that the dtype rounds to 1 (0.99999999 in float32) is
refused.  Both are checked against the parameters before anything is packed, so a refused optimizer leaves the
model as it was.
"""
from __future__ import annotations

from . import checks
from .optimizer import Optimizer
from .rules import AdaGradRule, AdamRule, RMSPropRule, SGDRule
from .transforms import BlockNormalize, GradientNormScale, as_transform

__all__ = ["SGD", "AdaGrad", "RMSProp", "Adam", "AdaGradBNG"]


class SGD(Optimizer):
    """SGD with momentum μ, dampening and Nesterov as Torch7/PyTorch: v_1 = d_1, v_t = μv + (1 − dampening)d_t,
    x ← x − lr·v (or x ← x − lr·(d + μv) with nesterov); d = normalize(g) + λx."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, *,
                 normalize=None, blocks="layer", decay="after", track_norms=True):
        momentum = checks.fraction("momentum", momentum)
        dampening = checks.fraction("dampening", dampening, closed=True)
        nesterov = checks.flag("nesterov", nesterov)
        if nesterov and (momentum == 0 or dampening != 0):
            raise ValueError(f"nesterov needs momentum > 0 and dampening = 0, got momentum={momentum}, "
                             f"dampening={dampening}")
        rule = SGDRule(momentum, dampening, nesterov)
        super().__init__(params, rule, lr, normalize=normalize, blocks=blocks,
                         weight_decay=weight_decay, decay=decay, track_norms=track_norms)


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011) as torch.optim.Adagrad: s ← s + d²;  x ← x − lr · d / (√s + ε)."""

    def __init__(self, params, lr=0.01, eps=1e-10, weight_decay=0.0, *, normalize=None, blocks="layer",
                 decay="after", track_norms=True):
        rule = AdaGradRule(checks.positive("eps", eps))
        super().__init__(params, rule, lr, normalize=normalize, blocks=blocks,
                         weight_decay=weight_decay, decay=decay, track_norms=track_norms)


class RMSProp(Optimizer):
    """RMSProp as torch.optim.RMSprop: a ← αa + (1 − α)d²;  x ← x − lr · d / (√a + ε) (centered and momentum
    variants as PyTorch's)."""

    def __init__(self, params, lr=1e-3, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0, *,
                 normalize=None, blocks="layer", decay="after", track_norms=True):
        rule = RMSPropRule(checks.fraction("alpha", alpha), checks.positive("eps", eps),
                           checks.fraction("momentum", momentum), checks.flag("centered", centered))
        super().__init__(params, rule, lr, normalize=normalize, blocks=blocks,
                         weight_decay=weight_decay, decay=decay, track_norms=track_norms)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2014) as torch.optim.Adam: m ← β₁m + (1 − β₁)d;  v ← β₂v + (1 − β₂)d²;
    x ← x − (lr / c₁) · m / (√v / √c₂ + ε),  c_k = 1 − β_kᵗ."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, normalize=None,
                 blocks="layer", decay="after", track_norms=True):
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        betas = (checks.fraction("betas[0]", betas[0]), checks.fraction("betas[1]", betas[1]))
        rule = AdamRule(betas, checks.positive("eps", eps))
        super().__init__(params, rule, lr, normalize=normalize, blocks=blocks,
                         weight_decay=weight_decay, decay=decay, track_norms=track_norms)


class AdaGradBNG(Optimizer):
    """Algorithm 2, AdaGrad with block-normalized gradient, per step t and block i:

        ĝ^i_t = g^i_t / ‖g^i_t‖₂            (a zero block stays zero)                BlockNormalize
        s_t   = √(Σ_{τ≤t} ĝ_τ²)              (coordinate-wise, from the normalized    AdaGrad with ε = δ:
        u_t   = η ĝ_t / (δ + s_t)            gradients)                               η ĝ_t / (√(Σ ĝ²) + δ)
        τ^i_t ∘ ĝ^i_t = ‖g^i_t‖ u^i_t = η ‖g^i_t‖ (δ + s^i_t)⁻¹ ∘ ĝ^i_t               GradientNormScale
        x_{t+1} = x_t − τ_t ∘ ĝ_t

    ``lr`` is η, ``delta`` is δ > 0.  Only ``normalize="block"`` is meaningful here.
    """

    def __init__(self, params, lr=0.01, delta=1e-10, *, normalize="block", blocks="layer", track_norms=True):
        if not isinstance(as_transform(normalize), BlockNormalize):
            raise ValueError(f"normalize: AdaGradBNG is defined with block normalization ('block'), got {normalize!r}")
        rule = AdaGradRule(checks.positive("delta", delta), option="delta")
        super().__init__(params, rule, lr, normalize="block", blocks=blocks,
                         track_norms=track_norms, update_transforms=[GradientNormScale()])
