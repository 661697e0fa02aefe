"""The optimizer audit: anyone's optimizer (PyTorch, optax, NumPy) against minibng's reference, on the same gradients.

    report = mb.audit.audit_optimizer("adamng", my_factory, framework="torch", dtype="float32")
    print(report)            # a short table; report.agrees, report.first, report.variant, report.as_json()

For each scale s, in the order given (1, 1e-30, 1e30, 0 by default), one run feeds both sides the audit's seeded
gradient stream (:mod:`.stream`) with the first block's gradients multiplied by s (``every_block=True`` adds a run
per further block); the reference (``optim.create(reference, model, **settings)``) runs under a
:class:`~.trace.ChainTrace`.  After every step the step each block took is compared (:mod:`.compare`, whose
tolerance is stated there).  The first disagreement — in the order of the runs, then steps, then blocks — is
reported with its scale, step, block (name, size), coordinate, the reference's and the candidate's values, and the
stage where it can be seen: the variant's, when a variant of the catalogue (:mod:`.variants`) reproduces every run
of the candidate; else a rule state the candidate shows under minibng's (PyTorch's) names that already differs; else
the update.  How FACTORY is called: :mod:`.torch_mirror`, :mod:`.optax_mirror`, :mod:`.numpy_mirror`.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import optim
from .compare import Tolerance, first_mismatch, vectors_agree, worst_fraction
from .mirror import Mirror, mirror_for
from .report import format_audit
from .stream import DEFAULT_SIZES, GradientStream, audit_model
from .trace import exact_norm
from .trajectory import run_minibng
from .variants import CATALOGUE, build_variant

__all__ = ["audit_optimizer", "prepare_audit", "PreparedAudit", "OptimizerAudit", "Disagreement", "AuditRun",
           "DEFAULT_SCALES"]

DEFAULT_SCALES = (1.0, 1e-30, 1e30, 0.0)
DTYPES = ("float64", "float32")


@dataclass
class AuditRun:
    """One run: the first block's gradients (``block``, ``size``) times ``scale``; ``agrees``; ``first_step`` where
    it parted (None); ``worst``: max |u_cand − u_ref| / allowed over the run (below 1: within the tolerance), None
    when the candidate raised (``error``: its steps stop there, and no fraction measures a run that did not end)."""

    scale: float
    block: str
    size: int
    agrees: bool
    first_step: int | None
    worst: float | None
    error: str | None = None


@dataclass
class Disagreement:
    """Where the candidate first parts from the reference (see the module docstring).  ``reference``,
    ``candidate``: the step u_t = x_t − x_{t+1} of ``coordinate`` on each side (at step 0, x_1 itself);
    ``chain``: the reference's chain at that step for that block (‖·‖ of each link's output)."""

    scale: float
    step: int
    block: str
    size: int
    stage: str
    coordinate: str | None
    reference: float | None
    candidate: float | None
    difference: float | None
    allowed: float | None
    scaled_block: str
    chain: str = ""

    def as_json(self):
        return {"scale": self.scale, "step": self.step, "block": {"name": self.block, "size": self.size},
                "stage": self.stage, "coordinate": self.coordinate, "reference": self.reference,
                "candidate": self.candidate, "difference": self.difference, "allowed": self.allowed,
                "scaled_block": self.scaled_block}


@dataclass
class OptimizerAudit:
    """The audit's report: ``agrees``; ``first`` (a :class:`Disagreement` or None); ``variant`` (the first
    variant of the catalogue that reproduces every run of the candidate, or None) and ``matches`` (all of them);
    ``runs``; the settings it ran with; ``str()`` is the printed table, ``as_json()`` the --json file."""

    reference: str
    settings: dict
    framework: str
    candidate: str
    dtype: str
    steps: int
    seed: int
    tolerance: Tolerance
    runs: list = field(default_factory=list)
    first: Disagreement | None = None
    variant: str | None = None
    matches: list = field(default_factory=list)
    variant_descriptions: dict = field(default_factory=dict)

    @property
    def agrees(self):
        return self.first is None

    def as_json(self):
        return {"agrees": self.agrees, "tolerance": self.tolerance.as_json(),
                "first": None if self.first is None else self.first.as_json(), "variant": self.variant,
                "matches": list(self.matches), "reference": self.reference,
                "settings": {k: _json_value(v) for k, v in self.settings.items()}, "framework": self.framework,
                "candidate": self.candidate, "dtype": self.dtype, "steps": self.steps, "seed": self.seed,
                "runs": [{"scale": r.scale, "block": {"name": r.block, "size": r.size}, "agrees": r.agrees,
                          "first_step": r.first_step, "worst": _finite_or_none(r.worst),
                          "error": r.error} for r in self.runs]}

    def __str__(self):
        return format_audit(self)


def _json_value(value):
    """A setting as JSON holds it: a number, text, a bool or None as it is, anything else as its repr."""
    return value if isinstance(value, (bool, int, float, str, type(None))) else repr(value)


def _finite_or_none(value):
    """JSON has no ∞: a fraction that is not a finite number (or None) is written as null."""
    return value if value is not None and np.isfinite(value) else None


def check_audit_options(reference, framework, dtype, steps, scales, seed):
    """ValueError/TypeError naming the option, before any work."""
    if not isinstance(reference, str) or reference.lower() not in optim.preset_names():
        raise ValueError(f"reference: unknown optimizer {reference!r}; known: {', '.join(optim.preset_names())}")
    mirror_for(framework)
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or not 1 <= steps <= 10_000:
        raise ValueError(f"steps: expected an integer from 1 to 10000, got {steps!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    if len(scales) == 0:
        raise ValueError("scales: give at least one scale, e.g. 1,1e-30,1e30,0")
    for scale in scales:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not 0 <= scale < np.inf:
            raise ValueError(f"scales: each scale must be a finite number >= 0, got {scale!r}")


class _Setup:
    """What every run shares: the model, the stream, the blocks (coordinates of each of the reference's blocks)."""

    def __init__(self, reference, settings, dtype, steps, seed, sizes):
        self.model = audit_model(sizes, dtype, seed)
        probe = optim.create(reference, self.model.copy(), **settings)
        self.stream = GradientStream(self.model, steps, seed)
        partition = probe.flat.partition
        starts = np.cumsum([0] + partition.sizes[:-1])
        members = [[] for _ in partition.sizes]
        for name, start, _, _ in probe.flat.param_slices():
            members[int(np.searchsorted(starts, start, side="right")) - 1].append(name)
        self.block_names = list(partition.names)
        self.block_sizes = list(partition.sizes)
        self.block_members = members
        self.blocks = [self.stream.coordinates(names) for names in members]
        self.build = lambda model: optim.create(reference, model, **settings)   # noqa: E731

    def coordinate(self, index):
        for s in self.stream.slices:
            if s.start <= index < s.stop:
                position = np.unravel_index(index - s.start, s.shape)
                return f"{s.name}[{', '.join(map(str, position))}]"
        return str(index)


def audit_optimizer(reference, candidate, framework, dtype="float64", steps=5, scales=DEFAULT_SCALES, seed=0,
                    every_block=False, sizes=DEFAULT_SIZES, label=None, **settings):
    """Audit ``candidate`` (FACTORY: how it is called depends on ``framework``, see the module docstring) against
    ``optim.create(reference, model, **settings)``; returns an :class:`OptimizerAudit`.

    Raises ValueError/TypeError for a bad option, an unknown reference or settings ``optim.create`` refuses;
    ImportError when ``framework`` is not installed; :class:`~.mirror.CandidateError` when FACTORY raises or returns
    the wrong kind of object — all before any run (:func:`prepare_audit`, then :meth:`PreparedAudit.run`)."""
    return prepare_audit(reference, candidate, framework, dtype, steps, scales, seed, every_block, sizes, label,
                         **settings).run()


def prepare_audit(reference, candidate, framework, dtype="float64", steps=5, scales=DEFAULT_SCALES, seed=0,
                  every_block=False, sizes=DEFAULT_SIZES, label=None, **settings):
    """The judging half of :func:`audit_optimizer` (same arguments, same errors): every option, the reference's
    settings and FACTORY checked, no run made.  Returns a :class:`PreparedAudit`; an error of its :meth:`run` is one
    of the runs (minibng's, or a candidate that fails only later), not of the arguments."""
    scales = tuple(scales)
    check_audit_options(reference, framework, dtype, steps, scales, seed)
    if not callable(candidate):
        raise TypeError(f"candidate: expected FACTORY, a callable, got {type(candidate).__name__}")
    mirror = mirror_for(framework)
    missing = mirror.available()
    if missing:
        raise ImportError(missing)
    setup = _Setup(reference, settings, dtype, steps, seed, sizes)
    mirror.build(candidate, setup.model.copy(), dtype)
    report = OptimizerAudit(reference.lower(), dict(settings), framework,
                            label or getattr(candidate, "__qualname__", repr(candidate)), dtype, steps, seed,
                            Tolerance(dtype))
    return PreparedAudit(setup, mirror, candidate, report, scales, every_block)


@dataclass
class PreparedAudit:
    """An optimizer audit whose arguments were judged (:func:`prepare_audit`); :meth:`run` makes its runs."""

    setup: _Setup
    mirror: Mirror
    candidate: Callable
    report: OptimizerAudit
    scales: tuple
    every_block: bool

    def run(self):
        """Run both sides on every scale (and block, with ``every_block``); returns the :class:`OptimizerAudit`."""
        setup = self.setup
        report = self.report
        tolerance = report.tolerance
        targets = range(len(setup.block_names)) if self.every_block else [0]
        recorded, first = [], None
        for scale in self.scales:
            for target in targets:
                gradients = setup.stream.scaled(float(scale), setup.block_members[target])
                ours, trace = run_minibng(setup.build, setup.model, setup.stream, gradients, trace=True)
                theirs = self.mirror.run(self.candidate, setup.model.copy(), setup.stream, gradients, report.dtype)
                mismatch = first_mismatch(ours.params, theirs.params, setup.blocks, tolerance)
                parted_at = _parting_step(mismatch, theirs)
                worst = None if theirs.error else worst_fraction(ours.params, theirs.params, setup.blocks, tolerance)
                report.runs.append(AuditRun(float(scale), setup.block_names[target], setup.block_sizes[target],
                                            parted_at is None, parted_at, worst, theirs.error))
                recorded.append((gradients, theirs))
                if parted_at is not None and first is None:
                    first = (float(scale), target, mismatch, ours, theirs, trace)
        if first is not None:
            _name_variants(report, report.reference, report.settings, setup, recorded, tolerance)
            report.first = _disagreement(report, setup, tolerance, *first)
        return report


def _parting_step(mismatch, theirs):
    """The step where a run parts: the first mismatch, or the step the candidate raised at (whichever is earlier)."""
    steps = [s for s in (mismatch.step if mismatch else None, theirs.error_step) if s is not None]
    return min(steps) if steps else None


def _name_variants(report, reference, settings, setup, recorded, tolerance):
    """Rerun the reference under every applicable variant; keep those that reproduce every run of the candidate."""
    if any(theirs.error for _, theirs in recorded):
        return
    for variant in CATALOGUE:
        build = build_variant(variant, reference, settings)
        if build is None or build(setup.model.copy()) is None:
            continue
        if all(first_mismatch(run_minibng(build, setup.model, setup.stream, gradients)[0].params, theirs.params,
                              setup.blocks, tolerance) is None for gradients, theirs in recorded):
            report.matches.append(variant.name)
            report.variant_descriptions[variant.name] = (variant.description, variant.stage)
    report.variant = report.matches[0] if report.matches else None


def _disagreement(report, setup, tolerance, scale, target, mismatch, ours, theirs, trace):
    scaled = setup.block_names[target]
    if mismatch is None or (theirs.error_step is not None and theirs.error_step <= mismatch.step):
        block = 0 if mismatch is None else mismatch.block
        return Disagreement(scale, theirs.error_step, setup.block_names[block], setup.block_sizes[block],
                            f"the candidate's step raised {theirs.error}", None, None, None, None, None, scaled)
    stage = _stage(report, setup, tolerance, mismatch, ours, theirs)
    chain = _chain_line(trace, mismatch) if mismatch.step >= 1 else ""
    return Disagreement(scale, mismatch.step, setup.block_names[mismatch.block], setup.block_sizes[mismatch.block],
                        stage, setup.coordinate(mismatch.index), mismatch.reference, mismatch.candidate,
                        mismatch.difference, mismatch.allowed, scaled, chain)


def _stage(report, setup, tolerance, mismatch, ours, theirs):
    """Where the parting can be seen (see the module docstring)."""
    if mismatch.step == 0:
        return "parameters x_1 (the candidate changed them before its first step)"
    if report.variant is not None:
        return report.variant_descriptions[report.variant][1]
    t, indices = mismatch.step, setup.blocks[mismatch.block]
    reference_state, candidate_state = ours.states[t - 1], theirs.states[t - 1] if theirs.states else {}
    shown = [name for name in reference_state if name in candidate_state]
    for name in shown:
        if not vectors_agree(reference_state[name][indices], candidate_state[name][indices], tolerance, t):
            return f"rule state {name} (what the rule was fed, or how it updates its state)"
    if shown:
        return f"update u (the rule's state {', '.join(shown)} agrees: its step from that state, or a link after it)"
    return "update u"


def _chain_line(trace, mismatch):
    """‖·‖ of g and of every link's output at the disagreement's step, for its block, as the reference made them."""
    traced = trace.step(mismatch.step)
    part = trace.block_slice(mismatch.block)
    norms = [("g", exact_norm(traced.gradient[part]))]
    norms += [(name, exact_norm(vector[part])) for name, vector in traced.outputs]
    return " → ".join(f"{name} {value:.3g}" for name, value in norms)
