"""What the layer audit reports (:class:`GradcheckReport`): per tensor the worst relative error against finite
differences and its worst coordinate, the accumulation check, the problems found before any difference was taken
(a forward or backward that writes into its input or returns an array aliasing it, a forward that is not
deterministic), and the inputs held fixed."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["GradcheckError", "GradcheckReport", "LayerArgumentError", "WorstCoordinate"]


class GradcheckError(AssertionError):
    """A backward disagrees with finite differences or does not accumulate; the message lists every tensor."""


class LayerArgumentError(ValueError):
    """The layer audit was given what it cannot check (a tolerance <= 0, an empty batch, an output with no values):
    the caller's mistake, told apart from a ValueError that the audited layer's own code raises."""


@dataclass(frozen=True)
class WorstCoordinate:
    """The coordinate of a tensor where |analytic − numeric| is largest: its ``index`` (in the tensor's shape), the
    ``analytic`` value (backward's) and the ``numeric`` one (central differences)."""

    index: tuple
    analytic: float
    numeric: float

    @property
    def ratio(self):
        """analytic / numeric (a backward 4× too small reads 0.25); None where numeric is 0."""
        return None if self.numeric == 0 else self.analytic / self.numeric

    def __str__(self):
        ratio = "numeric is 0" if self.ratio is None else f"analytic/numeric = {self.ratio:.4g}"
        return (f"worst at [{', '.join(map(str, self.index))}]: analytic {self.analytic:.6g}, numeric "
                f"{self.numeric:.6g} ({ratio})")


@dataclass
class GradcheckReport:
    """Per tensor: ``errors`` the worst relative error against finite differences, ``worst`` its
    :class:`WorstCoordinate`, ``accumulation`` the relative error of a second backward's ``.grad`` against twice the
    first (it must add, never replace).  ``problems``: what fails the layer before any difference is taken (an input
    written into, an output aliasing an input, a forward that is not deterministic).  ``held_fixed``: the inputs not
    checked (integers: labels, token ids; floating inputs after the first, which receive no ∂L/∂x).  ``ok`` when
    every error is within ``tolerance`` and there is no problem."""

    errors: dict = field(default_factory=dict)
    accumulation: dict = field(default_factory=dict)
    tolerance: float = 1e-6
    worst: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    held_fixed: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        within = all(e <= self.tolerance for e in (*self.errors.values(), *self.accumulation.values()))
        return within and not self.problems

    def __str__(self):
        width = max((len(n) for n in self.errors), default=0)
        lines = [f"{n:<{width}}  {e:.2e}  {'ok' if e <= self.tolerance else 'FAIL'}"
                 + (f"  {self.worst[n]}" if n in self.worst and e > self.tolerance else "")
                 for n, e in self.errors.items()]
        lines += [f"{n:<{width}}  a second backward did not add to .grad (relative error {e:.2e} against twice the "
                  "first): accumulate with p.grad += ..., never p.grad = ... or p.grad[...] = ...  FAIL"
                  for n, e in self.accumulation.items() if e > self.tolerance]
        lines += [f"FAIL: {problem}" for problem in self.problems]
        lines += [f"held fixed (not checked): {what}" for what in self.held_fixed]
        lines.append(f"tolerance {self.tolerance:g} (relative to each tensor's largest gradient); "
                     f"{'ok' if self.ok else 'FAIL'}")
        return "\n".join(lines)

    def as_json(self):
        return {"ok": self.ok, "tolerance": self.tolerance, "errors": dict(self.errors),
                "accumulation": dict(self.accumulation), "problems": list(self.problems),
                "held_fixed": list(self.held_fixed),
                "worst": {name: {"index": list(w.index), "analytic": w.analytic, "numeric": w.numeric,
                                 "ratio": w.ratio} for name, w in self.worst.items()}}
