"""The catalogue of known variants: ways an implementation of a block-normalized optimizer departs from the
reference, each written as a change of the reference's chain (:mod:`.variant_links`), so the audit can rerun the
reference under it and name the variant a candidate matches.

| variant                    | the change                                                       | stage            |
|----------------------------|------------------------------------------------------------------|------------------|
| naive-norm                 | ‖g^i‖ = √Σ g² in the parameters' dtype (underflows to 0, overflows to ∞); a zero norm leaves the block at 0 | block norms |
| unguarded-zero-block       | exact norms, but a zero block divided by its zero norm (0/0 = NaN)   | direction       |
| naive-norm-unguarded       | the naive norm, and g^i/‖g^i‖ divided with no case for 0 (±∞ or NaN) | block norms     |
| per-tensor-blocks          | one block per parameter array (weight and bias apart)              | blocks           |
| global-blocks              | one block for the whole model (B = 1)                              | blocks           |
| layer-blocks               | one block per layer (when the reference has other blocks)          | blocks           |
| no-normalization           | the NG step left out: the rule fed g itself                        | direction        |
| normalized-step            | the rule fed g, its step normalized per block (the velocity normalized instead of the gradient) | direction |
| decay-before-normalization / decay-after-normalization | λx added before the norms are measured, or after | direction |
| decoupled-weight-decay     | λx added to the step, ηλx, not fed to the rule (AdamW)             | update           |
| no-weight-decay            | λ ignored                                                          | direction        |
| no-bias-correction         | Adam with c₁ = c₂ = 1                                              | update           |
| eps-inside-sqrt            | √(v + ε) for √v + ε (Adam, RMSProp, AdaGrad)                       | update           |
| eps-outside-correction     | Adam's ε added to √v, not √(v/c₂) (TensorFlow's)                   | update           |
| nesterov / no-nesterov     | Nesterov's momentum switched on (or off)                           | update           |
| dampened-momentum          | v = μv + (1 − μ)d: momentum as an average (dampening = μ)          | rule state       |

The catalogue's order is the order in which a match is named, the smallest change first (where a naive norm is
exact, an unguarded naive norm and an unguarded exact one act alike).  A variant applies only where it changes something (no bias correction needs Adam, decay order needs λ > 0 …).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import optim
from ..optim import AdaGradRule, AdamRule, BlockNormalize, BlockNorms, RMSPropRule, SGDRule, WeightDecay
from .variant_links import (AdaGradEpsilonInRoot, AdamEpsilonInRoot, AdamEpsilonUncorrected, AdamWithoutCorrection,
                            DecoupledWeightDecay, NaiveBlockNorms, NormalizedStep, RMSPropEpsilonInRoot,
                            UnguardedNormalize)

__all__ = ["Variant", "CATALOGUE", "variant_named", "build_variant"]


@dataclass(frozen=True)
class Variant:
    """``name``; ``description`` (one line, what differs); ``stage`` (where in the step it differs); ``blocks``
    (a partition to build with instead of the reference's) and/or ``rewrite`` (links → new links, or None where the
    variant changes nothing)."""

    name: str
    description: str
    stage: str
    rewrite: Callable | None = None
    blocks: str | None = None


def _replace(kind, make):
    """Replace every link of exactly type ``kind`` by ``make(link)``; None when there is none."""
    def rewrite(links):
        if not any(type(link) is kind for link in links):
            return None
        return [make(link) if type(link) is kind else link for link in links]
    return rewrite


def _unguarded_zero_block(links):
    return _replace(BlockNormalize, lambda link: UnguardedNormalize())(links)


def _naive_unguarded(links):
    changed = _replace(BlockNormalize, lambda link: UnguardedNormalize())(links)
    return None if changed is None else _replace(BlockNorms, lambda link: NaiveBlockNorms())(changed)


def _naive(links):
    if not any(getattr(link, "needs_block_norms", False) for link in links):
        return None   # the norms are only logged: a naive measurement changes no step
    return _replace(BlockNorms, lambda link: NaiveBlockNorms())(links)


def _without_normalization(links):
    if not any(type(link) is BlockNormalize for link in links):
        return None
    return [link for link in links if type(link) is not BlockNormalize]


def _normalized_step(links):
    kept = _without_normalization(links)
    if kept is None:
        return None
    rule = next(k for k, link in enumerate(kept) if isinstance(link, optim.Rule))
    return [*kept[:rule + 1], NormalizedStep(), *kept[rule + 1:]]


def _decay_link(links):
    return next((link for link in links if type(link) is WeightDecay), None)


def _move_decay(before):
    def rewrite(links):
        decay = _decay_link(links)
        if decay is None or (links.index(decay) == 0) == before:
            return None
        rest = [link for link in links if link is not decay]
        if before:
            return [decay, *rest]
        rule = next(k for k, link in enumerate(rest) if isinstance(link, optim.Rule))
        return [*rest[:rule], decay, *rest[rule:]]
    return rewrite


def _decoupled(links):
    decay = _decay_link(links)
    if decay is None:
        return None
    return [link for link in links if link is not decay] + [DecoupledWeightDecay(decay.weight_decay)]


def _no_decay(links):
    decay = _decay_link(links)
    return None if decay is None else [link for link in links if link is not decay]


def _rule_like(cls, rule):
    """A rule of class ``cls`` with ``rule``'s hyperparameters."""
    if isinstance(rule, AdamRule):
        return cls((rule.beta1, rule.beta2), rule.eps)
    if isinstance(rule, RMSPropRule):
        return cls(rule.alpha, rule.eps, rule.momentum, rule.centered)
    return cls(rule.eps)


def _eps_inside(links):
    for kind, cls in ((AdamRule, AdamEpsilonInRoot), (AdaGradRule, AdaGradEpsilonInRoot)):
        changed = _replace(kind, lambda rule, cls=cls: _rule_like(cls, rule))(links)
        if changed is not None:
            return changed
    plain = [link for link in links if type(link) is RMSPropRule and link.momentum == 0 and not link.centered]
    return _replace(RMSPropRule, lambda rule: _rule_like(RMSPropEpsilonInRoot, rule))(links) if plain else None


def _sgd_rule(links):
    return next((link for link in links if type(link) is SGDRule and link.momentum > 0), None)


def _nesterov(on):
    def rewrite(links):
        rule = _sgd_rule(links)
        if rule is None or rule.nesterov == on or rule.dampening != 0:
            return None
        return [SGDRule(rule.momentum, 0.0, on) if link is rule else link for link in links]
    return rewrite


def _dampened(links):
    rule = _sgd_rule(links)
    if rule is None or rule.nesterov or rule.dampening == rule.momentum:
        return None
    return [SGDRule(rule.momentum, rule.momentum, False) if link is rule else link for link in links]


_BLOCKS = "blocks (which coordinates share one norm ‖g^i‖)"

CATALOGUE = (
    Variant("naive-norm", "‖g^i‖ = √Σg² summed in the parameters' dtype (float32 squares underflow to 0 below ~1e-19 "
            "and overflow above ~1e19); a zero norm leaves the block at 0", "block norms ‖g^i‖", _naive),
    Variant("unguarded-zero-block", "a zero block divided by its zero norm: 0/0 = NaN instead of a block left at 0",
            "direction ĝ^i", _unguarded_zero_block),
    Variant("naive-norm-unguarded", "‖g^i‖ = √Σg² in the parameters' dtype, then g^i/‖g^i‖ with no case for a zero "
            "norm (±∞ or NaN where the norm underflowed)", "block norms ‖g^i‖", _naive_unguarded),
    Variant("per-tensor-blocks", "one block per parameter array (each weight and each bias normalized apart)",
            _BLOCKS, blocks="tensor"),
    Variant("global-blocks", "one block for the whole model (B = 1: the whole gradient normalized at once)", _BLOCKS,
            blocks="global"),
    Variant("layer-blocks", "one block per layer (weight and bias together)", _BLOCKS, blocks="layer"),
    Variant("no-normalization", "the normalization left out: the rule is fed g, not ĝ", "direction ĝ^i",
            _without_normalization),
    Variant("normalized-step", "the rule fed g and its step normalized per block, η u^i/‖u^i‖ (with momentum: the "
            "velocity normalized instead of the gradient)", "direction ĝ^i", _normalized_step),
    Variant("decay-before-normalization", "weight decay λx added before the block norms are measured (they are those "
            "of g + λx)", "direction ĝ^i", _move_decay(before=True)),
    Variant("decay-after-normalization", "weight decay λx added after the normalization", "direction ĝ^i",
            _move_decay(before=False)),
    Variant("decoupled-weight-decay", "weight decay applied to the step, x ← x − ηλx, never fed to the rule (AdamW)",
            "update u", _decoupled),
    Variant("no-weight-decay", "the weight decay λ ignored", "direction ĝ^i", _no_decay),
    Variant("no-bias-correction", "Adam without bias correction: η m/(√v + ε)", "update u",
            _replace(AdamRule, lambda rule: _rule_like(AdamWithoutCorrection, rule))),
    Variant("eps-inside-sqrt", "ε inside the square root: √(v + ε) for √v + ε (Adam, RMSProp, AdaGrad)", "update u",
            _eps_inside),
    Variant("eps-outside-correction", "Adam's ε added to √v rather than to √(v/c₂) (TensorFlow's form)", "update u",
            _replace(AdamRule, lambda rule: _rule_like(AdamEpsilonUncorrected, rule))),
    Variant("nesterov", "Nesterov's momentum, u = η(d + μv), where the reference has plain momentum", "update u",
            _nesterov(True)),
    Variant("no-nesterov", "plain momentum, u = ηv, where the reference has Nesterov's", "update u", _nesterov(False)),
    Variant("dampened-momentum", "momentum as an average, v = μv + (1 − μ)d (dampening = μ)", "rule state",
            _dampened),
)


def variant_named(name):
    for variant in CATALOGUE:
        if variant.name == name:
            return variant
    raise ValueError(f"unknown variant {name!r}; the catalogue holds {', '.join(v.name for v in CATALOGUE)}")


def build_variant(variant, reference, settings):
    """``build(model)`` → the reference optimizer ``reference`` (an optim.create name, with ``settings``) under
    ``variant``; None when the variant changes nothing for this reference."""
    if variant.blocks is not None and settings.get("blocks", "layer") == variant.blocks:
        return None

    def build(model):
        options = dict(settings, **({"blocks": variant.blocks} if variant.blocks else {}))
        optimizer = optim.create(reference, model, **options)
        if variant.rewrite is not None:
            links = variant.rewrite(list(optimizer.chain.links))
            if links is None:
                return None
            optimizer.chain = optim.Chain(*links)
            optimizer.rule.init_state(optimizer.flat.x)
        return optimizer

    return build
