"""Finite-difference checking of any module's backward.

For a module f with inputs x (and parameters θ) and a random upstream gradient u, the scalar
    L(x, θ) = Σ u ∘ f(x; θ)
has ∂L/∂x = backward(u) and ∂L/∂θ = the accumulated ``.grad``.  Each coordinate is compared with the central
difference (L(· + ε e_k) − L(· − ε e_k)) / 2ε, in float64, on a copy of the module.  The error of a tensor is
    max_k |analytic_k − numeric_k| / max(max_k |analytic_k|, max_k |numeric_k|, floor)
(the worst error relative to the tensor's scale).  Any randomness inside the module (dropout) is replayed
identically for every evaluation, and so is a carried recurrent state (an LSTM's ``.state``).

    report = mb.gradcheck.check(my_layer, x)     # raises GradcheckError if a tensor is off
    print(report)                                # worst relative error per tensor
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import backend

__all__ = ["check", "GradcheckError", "GradcheckReport"]


class GradcheckError(AssertionError):
    """A backward disagrees with finite differences; the message lists every tensor's error."""


@dataclass
class GradcheckReport:
    errors: dict = field(default_factory=dict)  # tensor name -> worst relative error
    tolerance: float = 1e-6

    @property
    def ok(self) -> bool:
        return all(e <= self.tolerance for e in self.errors.values())

    def __str__(self):
        width = max((len(n) for n in self.errors), default=0)
        lines = [f"{n:<{width}}  {e:.2e}  {'ok' if e <= self.tolerance else 'FAIL'}" for n, e in self.errors.items()]
        return "\n".join(lines)


def _streams(module):
    return [m.rng for m in module.modules() if isinstance(getattr(m, "rng", None), backend.RandomStream)]


def _carried(module):
    """Modules that carry state from one call to the next (they have ``reset_state`` and ``state``)."""
    return [m for m in module.modules() if hasattr(m, "reset_state") and hasattr(m, "state")]


def check(module, *inputs, dy=None, eps=1e-6, tolerance=1e-6, floor=1e-7, seed=0, raise_on_failure=True,
          max_coordinates=None):
    """Compare ``module``'s backward with central differences for every floating input and every parameter.

    ``inputs`` are passed to ``module`` as ``module(*inputs)``; integer inputs (labels, token ids) are held fixed.
    Only the first input receives ∂L/∂x from ``backward`` (the framework's convention); other floating inputs
    are not checked.  ``dy`` is the upstream gradient (random normal by default, never all ones);
    ``max_coordinates`` checks a random subset of each tensor's coordinates for large tensors.
    Returns a :class:`GradcheckReport`; raises :class:`GradcheckError` when an error exceeds ``tolerance``.
    """
    model = module.copy().astype(np.float64)
    model.train(module.training)
    xp = backend.get_array_module(*inputs)
    xs = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs]
    rng = np.random.default_rng(seed)
    streams, carriers = _streams(model), _carried(model)
    saved = [s.state() for s in streams]
    carried = [m.state for m in carriers]

    def run():
        for s, state in zip(streams, saved):
            s.set_state(state)
        for m, state in zip(carriers, carried):
            m.state = state
        return model(*xs)

    y = run()
    if dy is None:
        dy = xp.asarray(rng.standard_normal(np.shape(y)))
    dy = xp.asarray(dy, dtype=np.float64)

    def objective():
        return float((run() * dy).sum())

    model.zero_grad()
    dx = model.backward(dy.copy())
    checked = []
    if xs[0].dtype.kind == "f" and dx is not None:  # None: the module skips ∂L/∂x (input_grad=False)
        checked.append(("input", xs[0], dx))
    checked += [(name, p.data, p.grad.copy()) for name, p in model.named_parameters()]

    report = GradcheckReport(tolerance=tolerance)
    for name, values, analytic in checked:
        if analytic is None or tuple(analytic.shape) != tuple(values.shape):
            raise GradcheckError(f"{name}: backward gave shape {None if analytic is None else tuple(analytic.shape)}, "
                                 f"expected {tuple(values.shape)}")
        flat = values.reshape(-1)
        coordinates = np.arange(flat.size)
        if max_coordinates is not None and flat.size > max_coordinates:
            coordinates = rng.choice(flat.size, max_coordinates, replace=False)
        analytic_flat = backend.asnumpy(analytic).reshape(-1)[coordinates]
        numeric = np.empty(len(coordinates))
        for j, k in enumerate(coordinates):
            original = float(flat[k])
            flat[k] = original + eps
            plus = objective()
            flat[k] = original - eps
            minus = objective()
            flat[k] = original
            numeric[j] = (plus - minus) / (2 * eps)
        scale = max(np.abs(analytic_flat).max(initial=0), np.abs(numeric).max(initial=0), floor)
        report.errors[name] = float(np.abs(analytic_flat - numeric).max(initial=0) / scale)
    if raise_on_failure and not report.ok:
        raise GradcheckError(f"backward of {type(module).__name__} disagrees with finite differences:\n{report}")
    return report
