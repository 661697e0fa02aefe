"""The paper's optimizers by name, with its default hyperparameters: ``optim.create(name, params, **overrides)``.

| name        | optimizer                                              | defaults                                  |
|-------------|--------------------------------------------------------|-------------------------------------------|
| sgd         | SGD                                                    | lr 0.1                                    |
| sgdm        | SGD with momentum                                      | lr 0.1, momentum 0.9                      |
| sgdmng      | … normalize="block"                                    |                                           |
| sgdmngadap  | … normalize=Adaptive(0.02)                             | α = 0.02 (the paper's best)               |
| sgdmclip    | … normalize=Clip(0.1)                                  | c = 0.1 (the paper's best)                |
| adagrad     | AdaGrad                                                | lr 0.01, ε 1e-10                          |
| adagradng   | … normalize="block"                                    |                                           |
| adagradbng  | AdaGradBNG (Algorithm 2)                               | η 0.01, δ 1e-10                           |
| rmsprop     | RMSProp                                                | lr 1e-3, α 0.99, ε 1e-8                   |
| rmspropng   | … normalize="block"                                    |                                           |
| adam        | Adam                                                   | lr 1e-3, β (0.9, 0.999), ε 1e-8           |
| adamng      | … normalize="block"                                    |                                           |
| adamngadap  | … normalize=Adaptive(0.02)                             |                                           |
| adamclip    | … normalize=Clip(0.1)                                  |                                           |
| lars        | SGD, momentum 0.9, normalize=Lars(η, λ)                | lr 0.1, trust_coefficient η 0.02, λ 0     |
| lamb        | Adam, normalize=TrustRatio(λ)                          | lr 1e-3, β (0.9, 0.999), ε 1e-6, λ 0.01   |

Overrides are the optimizer's keyword arguments (``lr=``, ``blocks=``, ``weight_decay=``, ``nesterov=`` …);
for the NGadap and CLIP presets ``alpha=`` / ``threshold=`` change the transform, for lars
``trust_coefficient=`` and ``weight_decay=`` go to LARS, for lamb ``weight_decay=`` goes to the trust ratio.

Each preset is a chain of links (:mod:`.chain`), which ``repr`` prints right to left; for lamb:
``TrustRatio(weight_decay=0.01) ∘ Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-06) ∘ BlockNorms ∘ blocks=layer``.
"""
from __future__ import annotations

from .algorithms import SGD, AdaGrad, AdaGradBNG, Adam, RMSProp
from .transforms import Adaptive, Clip, Lars, TrustRatio

__all__ = ["create", "preset_names", "preset_defaults", "PRESETS"]

_SGDM = {"lr": 0.1, "momentum": 0.9}


def _preset(cls, defaults, transform=None, **options):
    """``create``'s builder for one name: ``cls`` with the paper's ``defaults``; ``transform`` ("block" or a
    transform class) becomes ``normalize=``, built from ``options`` (its keyword defaults), which overrides of the
    same name replace (alpha, threshold, trust_coefficient, weight_decay)."""
    def build(params, **overrides):
        chosen = {name: overrides.pop(name, value) for name, value in options.items()}
        if transform is not None:
            overrides["normalize"] = transform if isinstance(transform, str) else transform(**chosen)
        return cls(params, **{**defaults, **overrides})
    build.defaults = dict(defaults)
    return build


PRESETS = {
    "sgd": _preset(SGD, {"lr": 0.1}),
    "sgdm": _preset(SGD, _SGDM),
    "sgdmng": _preset(SGD, _SGDM, "block"),
    "sgdmngadap": _preset(SGD, _SGDM, Adaptive, alpha=0.02),
    "sgdmclip": _preset(SGD, _SGDM, Clip, threshold=0.1),
    "adagrad": _preset(AdaGrad, {"lr": 0.01}),
    "adagradng": _preset(AdaGrad, {"lr": 0.01}, "block"),
    "adagradbng": _preset(AdaGradBNG, {"lr": 0.01, "delta": 1e-10}),
    "rmsprop": _preset(RMSProp, {"lr": 1e-3}),
    "rmspropng": _preset(RMSProp, {"lr": 1e-3}, "block"),
    "adam": _preset(Adam, {"lr": 1e-3}),
    "adamng": _preset(Adam, {"lr": 1e-3}, "block"),
    "adamngadap": _preset(Adam, {"lr": 1e-3}, Adaptive, alpha=0.02),
    "adamclip": _preset(Adam, {"lr": 1e-3}, Clip, threshold=0.1),
    "lars": _preset(SGD, _SGDM, Lars, trust_coefficient=0.02, weight_decay=0.0),
    "lamb": _preset(Adam, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-6}, TrustRatio, weight_decay=0.01),
}


def preset_names():
    """Every name :func:`create` knows, in the table's order."""
    return list(PRESETS)


def preset_defaults(name):
    """The hyperparameters preset ``name`` passes to its optimizer unless overridden (``{"lr": 0.1, "momentum": 0.9}``
    for sgdm), so that a caller can derive a value, such as a scaled learning rate, before building it."""
    if name not in PRESETS:
        raise ValueError(f"unknown optimizer name {name!r}; known: {', '.join(PRESETS)}")
    return dict(PRESETS[name].defaults)


def create(name, params, **overrides):
    """The optimizer called ``name`` (case-insensitive) over ``params``, with the paper's defaults."""
    if not isinstance(name, str):
        raise TypeError(f"optimizer name must be a string such as 'adamng', got {type(name).__name__} {name!r}")
    key = name.lower()
    if key not in PRESETS:
        raise ValueError(f"unknown optimizer name {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[key](params, **overrides)
