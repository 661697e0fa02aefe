"""Trainer callbacks that belong to a recipe rather than to the loop.

A callback is any object with some of ``on_fit_start(trainer)``, ``on_step_end(trainer)`` and
``on_epoch_end(trainer, metrics)`` (:class:`~minibng.train.Trainer` calls those it has).

- :class:`MaxNorm`: Kim's (2014) max-norm constraint on the output layer of the sentence CNN (§4.5 of the paper):
  after every step, each output unit's weight vector whose L2 norm exceeds s is rescaled to norm s.  As Kim, it
  constrains the output layer's weight only (not its bias, the filters or the word vectors).
"""
from __future__ import annotations

from .. import nn
from ..backend import get_array_module

__all__ = ["MaxNorm"]


class MaxNorm:
    """Kim's max-norm constraint as a Trainer callback: after each optimizer step,

        w_j ← w_j · min(1, s / ‖w_j‖₂)      for every output unit j (column j of ``layer.weight`` (in, out))

    so no output unit's weight vector is longer than s (Kim: s = 3).  ``layer`` is a Linear (for text_cnn, the
    model's last layer: ``MaxNorm(model[-1])``).  The weights are rescaled in place, which keeps them views into
    the optimizer's flat parameter vector; the scale is computed on the device (no host round-trip).
    """

    def __init__(self, layer, s=3.0):
        if not isinstance(layer, nn.Linear):
            raise TypeError(f"MaxNorm: expected a Linear layer, got {type(layer).__name__}")
        if not s > 0:
            raise ValueError(f"MaxNorm: s must be positive, got {s}")
        self.layer = layer
        self.s = float(s)

    def apply(self):
        w = self.layer.weight.data
        xp = get_array_module(w)
        norms = xp.sqrt((w * w).sum(axis=0))
        limit = w.dtype.type(self.s)
        w *= xp.where(norms > limit, limit / xp.maximum(norms, limit), w.dtype.type(1))

    def on_step_end(self, trainer):
        self.apply()

    def __repr__(self):
        return f"MaxNorm(s={self.s})"
