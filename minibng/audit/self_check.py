"""``python -m minibng.audit self``: minibng's presets against the optimizers of PyTorch and optax that are the same
method, every scale included — how anyone verifies the reference on their own machine.

Only pairs that are truly the same method are run: torch.optim's SGD (plain, momentum, Nesterov, L2 weight decay),
Adagrad, RMSprop and Adam; optax's sgd (the same three), rmsprop with ε outside the root (``eps_in_sqrt=False``),
adam, and lamb and lars against minibng's with one block per tensor (optax's trust ratios are per leaf).  The
block-normalized presets (…ng, …ngadap, …clip, adagradbng) have no counterpart in either framework: the audit's own
tests check them against hand-written candidates in each.  A framework that is not installed is skipped, saying so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import optim
from .mirror import mirror_for
from .optimizer_audit import DEFAULT_SCALES, audit_optimizer
from .report import format_worst

__all__ = ["PAIRS", "SelfPair", "audit_self", "presets_without_counterpart"]


@dataclass(frozen=True)
class SelfPair:
    """A framework's optimizer (``label``, built by ``factory``) and the preset ``reference`` with ``settings``."""

    framework: str
    label: str
    reference: str
    settings: dict
    factory: Callable


def _torch(name, **options):
    def factory(model):
        import torch
        return getattr(torch.optim, name)(model.parameters(), **options)
    return factory


def _optax(name, *args, **options):
    def factory():
        import optax
        return getattr(optax, name)(*args, **options)
    return factory


PAIRS = (
    SelfPair("torch", "torch.optim.SGD(lr=0.1)", "sgd", {}, _torch("SGD", lr=0.1)),
    SelfPair("torch", "torch.optim.SGD(lr=0.1, momentum=0.9)", "sgdm", {}, _torch("SGD", lr=0.1, momentum=0.9)),
    SelfPair("torch", "torch.optim.SGD(lr=0.1, momentum=0.9, nesterov=True)", "sgdm", {"nesterov": True},
             _torch("SGD", lr=0.1, momentum=0.9, nesterov=True)),
    SelfPair("torch", "torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01)", "sgdm", {"weight_decay": 0.01},
             _torch("SGD", lr=0.1, momentum=0.9, weight_decay=0.01)),
    SelfPair("torch", "torch.optim.Adagrad(lr=0.01)", "adagrad", {}, _torch("Adagrad", lr=0.01)),
    SelfPair("torch", "torch.optim.RMSprop(lr=0.001)", "rmsprop", {}, _torch("RMSprop", lr=1e-3)),
    SelfPair("torch", "torch.optim.Adam(lr=0.001)", "adam", {}, _torch("Adam", lr=1e-3)),
    SelfPair("optax", "optax.sgd(0.1)", "sgd", {}, _optax("sgd", 0.1)),
    SelfPair("optax", "optax.sgd(0.1, momentum=0.9)", "sgdm", {}, _optax("sgd", 0.1, momentum=0.9)),
    SelfPair("optax", "optax.sgd(0.1, momentum=0.9, nesterov=True)", "sgdm", {"nesterov": True},
             _optax("sgd", 0.1, momentum=0.9, nesterov=True)),
    SelfPair("optax", "optax.rmsprop(0.001, decay=0.99, eps_in_sqrt=False)", "rmsprop", {},
             _optax("rmsprop", 1e-3, decay=0.99, eps=1e-8, eps_in_sqrt=False)),
    SelfPair("optax", "optax.adam(0.001)", "adam", {}, _optax("adam", 1e-3)),
    SelfPair("optax", "optax.lamb(0.001, weight_decay=0.01)", "lamb", {"blocks": "tensor"},
             _optax("lamb", 1e-3, weight_decay=0.01)),
    SelfPair("optax", "optax.lars(0.1, trust_coefficient=0.02)", "lars", {"blocks": "tensor"},
             _optax("lars", 0.1, trust_coefficient=0.02)),
)


def presets_without_counterpart():
    """The presets no pair covers."""
    covered = {pair.reference for pair in PAIRS}
    return [name for name in optim.preset_names() if name not in covered]


def unavailable_frameworks():
    """{framework: why it cannot run here} for each framework of the pairs that is not installed."""
    frameworks = sorted({pair.framework for pair in PAIRS})
    return {framework: why for framework in frameworks if (why := mirror_for(framework).available())}


def audit_self(dtype="float64", steps=5, scales=DEFAULT_SCALES, seed=0):
    """[(pair, OptimizerAudit or None)] for every pair, and {framework: why it was skipped}."""
    skipped = unavailable_frameworks()
    results = [(pair, None if pair.framework in skipped else
                audit_optimizer(pair.reference, pair.factory, pair.framework, dtype=dtype, steps=steps, scales=scales,
                                seed=seed, label=pair.label, **pair.settings))
               for pair in PAIRS]
    return results, skipped


def format_self(results, skipped, dtype, steps, scales):
    """The agreement table: one line per pair, worst |Δu| as a fraction of the tolerance over every scale."""
    scales_text = ", ".join(f"{s:g}" for s in scales)
    rows = [_row(pair, audit) for pair, audit in results]
    lines = [f"minibng's presets against PyTorch and optax: {dtype}, {steps} steps, first block's gradients scaled by "
             f"{scales_text}", ""]
    lines += _aligned([("framework optimizer", "minibng", "result", "worst/tolerance"), *rows])
    lines.append("")
    lines += [f"skipped: {why}" for why in skipped.values()]
    lines.append(f"no counterpart in PyTorch or optax (checked by the audit's tests against hand-written candidates): "
                 f"{', '.join(presets_without_counterpart())}")
    return "\n".join(lines)


def _row(pair, audit):
    """(the framework's optimizer, the preset with its settings, the result, the worst fraction) of one pair."""
    settings = ", ".join(f"{k}={v!r}" for k, v in pair.settings.items())
    reference = pair.reference + (f"({settings})" if settings else "")
    if audit is None:
        return pair.label, reference, f"skipped: {pair.framework} is not installed", ""
    result = "agrees" if audit.agrees else f"parts (scale {audit.first.scale:g}, step {audit.first.step})"
    measured = [run.worst for run in audit.runs if run.worst is not None]
    return pair.label, reference, result, format_worst(max(measured) if measured else None)


def _aligned(rows):
    """The rows as lines, every column but the last as wide as its widest cell (header included), two spaces apart."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return ["  " + "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip()
            for row in rows]
