"""A trace of an optimizer's chain: what every link made, block by block, step by step (``minibng.audit.ChainTrace``).

An optimizer's step is u = (T_k ∘ … ∘ T_1)(g), then x_{t+1} = x_t − u (:mod:`minibng.optim.chain`).  A trace
records, for every step t, the gradient g_t it was fed and the output of every link in turn — the measurement of
the block norms ‖g^i_t‖, the direction ĝ_t of each direction transform, the rule's update τ_t ∘ ĝ_t, each update
transform's — and the rule's state after the step (Adam's ``exp_avg`` …), on the host, in the parameters' dtype:

    with audit.ChainTrace(opt) as trace:
        for batch in batches:
            ...; opt.step()
    print(trace.table(step=1))                       # ‖·‖ of every link's output, per block
    trace.output(step=1, link="block", block="0")    # ĝ^0_1, the block's coordinates (a copy)
    trace.block_norms(step=1)                        # {"0": ‖g^0_1‖, …}

Links are named as in the chain's signature (``norms``, ``block``, ``adaptive``, ``clip``, ``lars``,
``weight_decay``, the rule's ``sgd``/``adagrad``/``rmsprop``/``adam``, ``trust_ratio``, ``gradient_norm_scale``);
``links`` lists them in the order they run.  Block i's coordinates are those of ``opt.blocks[i]`` in the flat
vector.  The trace hooks into ``opt.chain.observers`` and leaves the step itself untouched; leaving the ``with``
block (or ``close()``) unhooks it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import backend

__all__ = ["ChainTrace", "TracedStep", "exact_norm"]


@dataclass
class TracedStep:
    """One step t: ``gradient`` g_t, ``outputs`` [(link name, output vector)] in the order the links ran,
    ``block_norms`` ‖g^i_t‖ as the chain measured them (None without a measurement), ``state`` {buffer: vector}
    of the rule after the step, ``lr`` η_t.  Vectors are flat host copies in the parameters' dtype."""

    t: int
    lr: float
    gradient: np.ndarray
    outputs: list = field(default_factory=list)
    block_norms: np.ndarray | None = None
    state: dict = field(default_factory=dict)


class ChainTrace:
    """Records every link of ``optimizer``'s chain at every step while it is attached (see the module docstring)."""

    def __init__(self, optimizer):
        if not hasattr(optimizer, "chain") or not hasattr(optimizer.chain, "observers"):
            raise TypeError(f"ChainTrace: expected a minibng optimizer (optim.Optimizer), got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.steps = []
        self.names = list(optimizer.flat.partition.names)
        self.sizes = list(optimizer.flat.partition.sizes)
        self._starts = np.cumsum([0] + self.sizes[:-1])
        self._attached = False
        self.attach()

    @property
    def links(self):
        """The links' names in the order they run."""
        return [link.name for link in self.optimizer.chain.links]

    def attach(self):
        if not self._attached:
            self.optimizer.chain.observers.append(self._observe)
            self._attached = True
        return self

    def close(self):
        """Stop recording (the steps recorded so far stay)."""
        if self._attached:
            self.optimizer.chain.observers.remove(self._observe)
            self._attached = False

    def __enter__(self):
        return self.attach()

    def __exit__(self, *exc):
        self.close()

    def _observe(self, link, v_in, v_out, it):
        chain = self.optimizer.chain
        if link is chain.links[0]:
            self.steps.append(TracedStep(int(it.t), float(it.lr), _host_copy(v_in)))
        step = self.steps[-1]
        step.outputs.append((link.name, _host_copy(v_out)))
        if link.name == "norms":
            step.block_norms = _host_copy(it.block_norms)
        if link is chain.rule:
            step.state = {name: _host_copy(buffer) for name, buffer in chain.rule.state.items()}

    # -- reading a trace ------------------------------------------------------------------------------------------
    def step(self, step):
        """The :class:`TracedStep` of step t (counted from 1, as the optimizer counts)."""
        for traced in self.steps:
            if traced.t == step:
                return traced
        raise KeyError(f"ChainTrace: no step {step} recorded (recorded: {[s.t for s in self.steps]})")

    def block_slice(self, block):
        """The coordinates of ``block`` (its name or index) in the flat vector."""
        index = self.names.index(block) if isinstance(block, str) else int(block)
        return slice(int(self._starts[index]), int(self._starts[index] + self.sizes[index]))

    def output(self, step, link, block=None):
        """The output of the link named ``link`` at ``step`` (the whole vector, or ``block``'s coordinates)."""
        traced = self.step(step)
        for name, vector in traced.outputs:
            if name == link:
                return vector if block is None else vector[self.block_slice(block)]
        raise KeyError(f"ChainTrace: no link named {link!r}; the chain runs {self.links}")

    def block_norms(self, step):
        """{block name: ‖g^i_t‖} as the chain measured them at ``step`` (empty without a measurement)."""
        norms = self.step(step).block_norms
        return {} if norms is None else dict(zip(self.names, map(float, norms)))

    def norms_of(self, vector):
        """‖v^i‖₂ of every block of a flat vector (:func:`exact_norm`)."""
        return [exact_norm(vector[self.block_slice(i)]) for i in range(len(self.sizes))]

    def table(self, step):
        """A text table of ‖·‖ per block for the gradient and every link's output at ``step``."""
        traced = self.step(step)
        rows = [("g (input)", self.norms_of(traced.gradient))]
        rows += [(name, self.norms_of(vector)) for name, vector in traced.outputs]
        width = max(len(name) for name, _ in rows)
        header = f"{'step ' + str(step):<{width}}  " + "  ".join(f"{name:>10}" for name in self.names)
        lines = [header] + [f"{name:<{width}}  " + "  ".join(f"{v:>10.3g}" for v in values) for name, values in rows]
        return "\n".join(lines)

    def __repr__(self):
        return f"ChainTrace({len(self.steps)} steps of {' → '.join(self.links)})"


def exact_norm(values):
    """‖v‖₂ in float64, exact across the range: v is scaled by its largest magnitude first (∞ and NaN pass)."""
    values = np.asarray(values, dtype=np.float64)
    largest = np.max(np.abs(values), initial=0.0)
    return float(largest * np.linalg.norm(values / largest)) if 0 < largest < np.inf else float(largest)


def _host_copy(a):
    return np.array(backend.asnumpy(a), copy=True)
