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
"""
from __future__ import annotations

from .algorithms import SGD, AdaGrad, AdaGradBNG, Adam, RMSProp
from .transforms import Adaptive, Clip, Lars, TrustRatio

__all__ = ["create", "preset_names", "PRESETS"]

_SGDM = {"lr": 0.1, "momentum": 0.9}


def _with_transform(cls, defaults, transform=None):
    def build(params, **overrides):
        kwargs = dict(defaults)
        if transform == "adaptive":
            kwargs["normalize"] = Adaptive(overrides.pop("alpha", 0.02))
        elif transform == "clip":
            kwargs["normalize"] = Clip(overrides.pop("threshold", 0.1))
        elif transform is not None:
            kwargs["normalize"] = transform
        kwargs.update(overrides)
        return cls(params, **kwargs)
    return build


def _lars(params, trust_coefficient=0.02, weight_decay=0.0, **overrides):
    kwargs = {**_SGDM, **overrides, "normalize": Lars(trust_coefficient, weight_decay)}
    return SGD(params, **kwargs)


def _lamb(params, weight_decay=0.01, **overrides):
    kwargs = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-6, **overrides, "normalize": TrustRatio(weight_decay)}
    return Adam(params, **kwargs)


PRESETS = {
    "sgd": _with_transform(SGD, {"lr": 0.1}),
    "sgdm": _with_transform(SGD, _SGDM),
    "sgdmng": _with_transform(SGD, _SGDM, "block"),
    "sgdmngadap": _with_transform(SGD, _SGDM, "adaptive"),
    "sgdmclip": _with_transform(SGD, _SGDM, "clip"),
    "adagrad": _with_transform(AdaGrad, {"lr": 0.01}),
    "adagradng": _with_transform(AdaGrad, {"lr": 0.01}, "block"),
    "adagradbng": _with_transform(AdaGradBNG, {"lr": 0.01, "delta": 1e-10}),
    "rmsprop": _with_transform(RMSProp, {"lr": 1e-3}),
    "rmspropng": _with_transform(RMSProp, {"lr": 1e-3}, "block"),
    "adam": _with_transform(Adam, {"lr": 1e-3}),
    "adamng": _with_transform(Adam, {"lr": 1e-3}, "block"),
    "adamngadap": _with_transform(Adam, {"lr": 1e-3}, "adaptive"),
    "adamclip": _with_transform(Adam, {"lr": 1e-3}, "clip"),
    "lars": _lars,
    "lamb": _lamb,
}


def preset_names():
    """Every name :func:`create` knows, in the table's order."""
    return list(PRESETS)


def create(name, params, **overrides):
    """The optimizer called ``name`` (case-insensitive) over ``params``, with the paper's defaults."""
    if not isinstance(name, str):
        raise TypeError(f"optimizer name must be a string such as 'adamng', got {type(name).__name__} {name!r}")
    key = name.lower()
    if key not in PRESETS:
        raise ValueError(f"unknown optimizer name {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[key](params, **overrides)
