"""One side of an optimizer audit run: the parameters after every step, the rule's state, and what went wrong.

:func:`run_minibng` runs a minibng optimizer (the reference, or a variant of the catalogue) on a gradient stream;
the framework mirrors (:mod:`.torch_mirror`, :mod:`.optax_mirror`, :mod:`.numpy_mirror`) fill the same record for
a candidate.  Vectors are float64 copies of the dtype's values (exact), parameters in the order of the stream.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .trace import ChainTrace

__all__ = ["Trajectory", "collect", "run_minibng"]


@dataclass
class Trajectory:
    """``params`` (T+1, d): x_1 … x_{T+1}; ``states`` [{buffer name: (d,)}] after each step (the names of minibng's
    rules, so PyTorch's; empty where a side shows none); ``error`` "ExcType: message" when step ``error_step``
    raised (``params`` then stops before it)."""

    params: np.ndarray
    states: list = field(default_factory=list)
    error: str | None = None
    error_step: int | None = None


def collect(gradients, start, run_step, states_of=None, catch=False):
    """The :class:`Trajectory` of one call of ``run_step(t, g_t)`` per row of ``gradients`` (T, d), from parameters
    ``start``; ``run_step`` returns the parameters (d,) after the step, ``states_of()`` the state {name: (d,)}.
    With ``catch`` (a candidate), a step that raises is recorded and ends the run: the candidate's own failure is a
    finding of the audit, not a crash of it."""
    params, states = [np.asarray(start, dtype=np.float64)], []
    for t, gradient in enumerate(gradients, start=1):
        try:
            with np.errstate(all="ignore"):
                after = run_step(t, gradient)
                state = states_of() if states_of else {}
        except Exception as error:
            if not catch:
                raise
            return Trajectory(np.array(params), states, f"{type(error).__name__}: {error}", t)
        params.append(np.asarray(after, dtype=np.float64))
        states.append(state)
    return Trajectory(np.array(params), states)


def run_minibng(build, model, stream, gradients, trace=False):
    """Run ``build(model)`` (a minibng optimizer over ``model``, a fresh copy in the audited dtype) on ``gradients``
    (T, d), written into each parameter's ``.grad`` by name.  Returns (Trajectory, ChainTrace or None)."""
    model = model.copy()
    optimizer = build(model)
    named = dict(model.named_parameters())
    tracer = ChainTrace(optimizer) if trace else None
    flat_slices = list(optimizer.flat.param_slices())

    def params_now():
        return stream.flatten({name: p.data for name, p in named.items()})

    def run_step(t, gradient):
        optimizer.zero_grad()
        for name, values in stream.split(gradient).items():
            named[name].grad[...] = values.astype(named[name].grad.dtype)
        optimizer.step()
        return params_now()

    def states_of():
        return {buffer: stream.flatten({name: vector[start:stop] for name, start, stop, _ in flat_slices})
                for buffer, vector in optimizer.rule.state.items()}

    trajectory = collect(gradients, params_now(), run_step, states_of)
    if tracer is not None:
        tracer.close()
    return trajectory, tracer
