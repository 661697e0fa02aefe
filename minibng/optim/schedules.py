"""Learning-rate schedules, applied once per epoch.

Epochs count from 1 (the first epoch is epoch 1).  A schedule is a pure function of the epoch and the base
rate, ``lr_at(epoch, base_lr)``; ``schedule.apply(opt, epoch)`` sets ``opt.lr = lr_at(epoch, opt.base_lr)``
(``base_lr`` is the lr the optimizer was built with, and is saved in its state_dict).  Call ``apply`` at the
start of every epoch; because the rate depends only on the epoch, a resumed run gets the same rates.

    MultiStep([81, 122], 0.1):  lr = base · 0.1^{#{m ∈ milestones : m ≤ epoch}}
                                (epochs 1–80: base, 81–121: base/10, from 122: base/100; fb.resnet.torch)
    Exponential(0.95):          lr = base · 0.95^{epoch − 1}
"""
from __future__ import annotations

from . import checks

__all__ = ["Schedule", "MultiStep", "Exponential"]


def _epoch(epoch):
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise ValueError(f"epoch must be an integer ≥ 1 (epochs count from 1), got {epoch!r}")
    return epoch


class Schedule:
    def lr_at(self, epoch, base_lr):
        raise NotImplementedError

    def apply(self, opt, epoch):
        """Set ``opt.lr`` for ``epoch`` from ``opt.base_lr``; returns the new rate."""
        opt.lr = self.lr_at(epoch, opt.base_lr)
        return opt.lr


class MultiStep(Schedule):
    """lr = base · γ^k, k = the number of milestones ≤ epoch (the rate drops at the start of each milestone)."""

    def __init__(self, milestones, gamma=0.1):
        milestones = list(milestones)
        if not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in milestones):
            raise ValueError(f"milestones must be integers ≥ 1, got {milestones!r}")
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"milestones must be strictly increasing, got {milestones!r}")
        self.milestones = milestones
        self.gamma = checks.positive("gamma", gamma)

    def lr_at(self, epoch, base_lr):
        epoch = _epoch(epoch)
        return base_lr * self.gamma ** sum(1 for m in self.milestones if m <= epoch)

    def __repr__(self):
        return f"MultiStep(milestones={self.milestones}, gamma={self.gamma})"


class Exponential(Schedule):
    """lr = base · γ^{epoch − 1}."""

    def __init__(self, gamma):
        self.gamma = checks.positive("gamma", gamma)

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** (_epoch(epoch) - 1)

    def __repr__(self):
        return f"Exponential(gamma={self.gamma})"
