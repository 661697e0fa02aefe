"""Theorem 1 for a user's run: :class:`BoundRecorder` records what the bound needs while AdaGradBNG trains, and
:meth:`BoundRecorder.verdict` says whether the realized regret stays below it.

    recorder = mb.audit.BoundRecorder(opt)           # opt: an optim.AdaGradBNG; η and δ are read from it
    with recorder:
        for batch in batches:
            loss = ...; model.backward(...); opt.step()
            recorder.add_loss(loss)                  # F_t(x_t), the mini-batch loss at the iterate of step t
    verdict = recorder.verdict(u, comparator_losses)  # F_t(u) on the same batches
    print(verdict)                                   # holds / violated, both bounds, R_T, slack, every term

While attached (inside ``with``), every ``opt.step()`` records the iterate x_t and the gradient g_t it was fed (from
the chain's observers, :mod:`minibng.optim.chain`, before x moves) and the learning rate; the losses are given by the
caller, since only it knows the batch.  The bound and its terms are :func:`~.bound.adagrad_bng_bound`'s.  Theorem 1
is stated for a constant η and a run from its first step: a run whose lr changed is refused, and so are an
optimizer other than AdaGradBNG and one that took steps the recorder did not see (attached mid-run).
(The Trainer hands its callbacks neither the batch nor its loss, so the recorder wraps the optimizer instead.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend, optim
from .bound import TheoremOneBound, adagrad_bng_bound, average_regret

__all__ = ["BoundRecorder", "BoundVerdict"]


@dataclass(frozen=True)
class BoundVerdict:
    """``holds`` when R_T ≤ bound₁ (and bound₁ ≤ bound₂, as the theorem's second inequality says); ``regret`` R_T,
    ``bound`` (:class:`~.bound.TheoremOneBound`: both bounds and their terms), ``lr`` η and ``delta`` δ as read from
    the optimizer."""

    holds: bool
    regret: float
    bound: TheoremOneBound
    lr: float
    delta: float

    @property
    def slack(self):
        """bound₁ / R_T (how many times the realized regret the bound allows; ∞ when R_T ≤ 0)."""
        return float("inf") if self.regret <= 0 else self.bound.first / self.regret

    def __str__(self):
        b = self.bound
        lines = [f"Theorem 1 {'HOLDS' if self.holds else 'is VIOLATED'}: R_T = {self.regret:.6g} "
                 f"{'≤' if self.regret <= b.first else '>'} bound₁ = {b.first:.6g} ≤ bound₂ = {b.second:.6g}",
                 f"  T = {b.steps} steps, η = {self.lr:g}, δ = {self.delta:g} (read from the optimizer); "
                 f"slack bound₁/R_T = {self.slack:.3g}",
                 f"  bound₁ = ‖x_1 − u‖²_H₁/(2ηT) {b.initial_term:.4g} + D∞² Σ s_T/(2ηT) {b.distance_term:.4g} "
                 f"+ (η/T) Σ_i M_i² Σ_j∈i s_T,j {b.gradient_term:.4g}",
                 f"  bound₂ = ‖x_1 − u‖²_H₁/(2ηT) {b.initial_term:.4g} + D∞² √(Bd)/(2η√T) "
                 f"{b.distance_term_worst:.4g} + η Σ_i M_i² √d_i/√T {b.gradient_term_worst:.4g}",
                 f"  D∞ = {b.d_inf:.4g}; M_i = {', '.join(f'{m:.3g}' for m in b.block_grad_max)}"]
        return "\n".join(lines)


class BoundRecorder:
    """Records x_t, g_t and η_t of every step of an AdaGradBNG optimizer while attached (see the module docstring)."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, optim.AdaGradBNG):
            raise TypeError(f"BoundRecorder: Theorem 1 bounds AdaGradBNG (Algorithm 2, optim.AdaGradBNG or "
                            f"optim.create('adagradbng', ...)); got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.iterates, self.gradients, self.lrs, self.losses = [], [], [], []
        self._attached = False

    def _observe(self, link, v_in, v_out, it):
        if link is self.optimizer.chain.links[0]:
            self.iterates.append(np.array(backend.asnumpy(it.x), dtype=np.float64))
            self.gradients.append(np.array(backend.asnumpy(v_in), dtype=np.float64))
            self.lrs.append(float(it.lr))

    def __enter__(self):
        if not self._attached:
            self._check_every_step_is_seen()
            self.optimizer.chain.observers.append(self._observe)
            self._attached = True
        return self

    def _check_every_step_is_seen(self):
        """Refuse to attach to an optimizer that took steps this recorder did not see: the bound is about a run from
        its first step, and AdaGradBNG's accumulator s_t already holds the unseen steps' gradients."""
        taken = self.optimizer.step_count
        if taken != self.steps:
            raise ValueError(f"BoundRecorder: the optimizer has taken {taken} steps, of which this recorder saw "
                             f"{self.steps}: Theorem 1 bounds a run from its first step, and AdaGradBNG's accumulator "
                             "s_t already holds the gradients of the steps it did not see; attach a recorder before "
                             "the optimizer's first step (and keep it attached for every step)")

    def __exit__(self, *exc):
        if self._attached:
            self.optimizer.chain.observers.remove(self._observe)
            self._attached = False

    def add_loss(self, loss):
        """F_t(x_t): the loss of step t's mini-batch at the iterate the step's gradient was taken at."""
        self.losses.append(float(backend.asnumpy(loss)))

    @property
    def steps(self):
        return len(self.gradients)

    def verdict(self, comparator, comparator_losses):
        """Theorem 1's verdict for the recorded run against the comparator u (the final iterate, or x*) whose
        per-step losses F_t(u) on the same mini-batches are ``comparator_losses``."""
        if not self.gradients:
            raise ValueError("BoundRecorder: no step was recorded; call opt.step() inside `with recorder:`")
        if len(self.losses) != self.steps or len(comparator_losses) != self.steps:
            raise ValueError(f"BoundRecorder: {self.steps} steps were recorded, with {len(self.losses)} losses "
                             f"(add_loss) and {len(comparator_losses)} comparator losses; give one of each per step")
        if len(set(self.lrs)) != 1:
            changed = next(t for t, lr in enumerate(self.lrs, start=1) if lr != self.lrs[0])
            raise ValueError(f"BoundRecorder: Theorem 1 is stated for a constant η, but lr changed at step {changed} "
                             f"({self.lrs[0]} → {self.lrs[changed - 1]})")
        lr, delta = self.lrs[0], float(self.optimizer.rule.eps)
        u = np.asarray(backend.asnumpy(comparator), dtype=np.float64).reshape(-1)
        bound = adagrad_bng_bound(np.array(self.iterates), np.array(self.gradients), u, self.optimizer.blocks, lr,
                                  delta)
        regret = average_regret(self.losses, comparator_losses)
        holds = regret <= bound.first * (1 + 1e-12) and bound.first <= bound.second * (1 + 1e-12)
        return BoundVerdict(bool(holds), regret, bound, lr, delta)
