"""The optimizer audit's model and its seeded gradient stream: what both sides of an audit are fed.

The model is a small MLP, Linear → Sigmoid → … → Linear (sizes (6, 5, 4, 3) by default), with Torch7's
uniform(±1/√fan_in) weights *and biases* (never zero: a zero bias hides bias bugs) drawn from the seed.  Its
parameters are named as ``nn.Sequential`` names them (``0.weight``, ``0.bias``, ``2.weight`` …), weights in minibng's
layout (in, out).

The gradient stream is g_t = ∇F(x_1; batch_t), t = 1 … T: the mean softmax cross-entropy of the model at its
initial parameters x_1 on a fresh seeded batch of 8 points per step, computed in float64.  It depends on the seed
alone — not on either side's trajectory — so the reference, the candidate and every variant of the catalogue are
fed the very same g_t.  A run scales the coordinates of one block by s (1e-30: the vanishing layers NG exists for;
1e30; 0: a zero block) before casting to the audited dtype, so the scaled values are the float64 products, rounded
once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn

__all__ = ["DEFAULT_SIZES", "audit_model", "GradientStream"]

DEFAULT_SIZES = (6, 5, 4, 3)
BATCH = 8


def audit_model(sizes=DEFAULT_SIZES, dtype="float64", seed=0):
    """nn.Sequential(Linear, Sigmoid, …, Linear) of ``sizes``, its parameters drawn from ``seed`` (non-zero
    biases), in ``dtype``."""
    if len(sizes) < 2 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in sizes):
        raise ValueError(f"audit model: sizes must be two or more positive integers, got {sizes!r}")
    rng = np.random.default_rng([seed, 1])
    layers = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(fan_in, fan_out, dtype=dtype, rng=rng)] + ([nn.Sigmoid()] if k < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class ParameterSlice:
    """Where parameter ``name`` of ``shape`` lies in the audit's flat vectors: coordinates start … stop − 1."""

    name: str
    start: int
    stop: int
    shape: tuple


class GradientStream:
    """g_1 … g_T of ``model`` (see the module docstring) as one float64 array (T, d), parameters in the order of
    ``model.named_parameters()``; ``slices`` says where each parameter lies."""

    def __init__(self, model, steps, seed=0):
        work = model.copy().astype(np.float64)
        named = list(work.named_parameters())
        self.slices, offset = [], 0
        for name, p in named:
            self.slices.append(ParameterSlice(name, offset, offset + p.data.size, tuple(p.data.shape)))
            offset += p.data.size
        self.size = offset
        rng = np.random.default_rng([seed, 2])
        first = next(m for m in work.modules() if isinstance(m, nn.Linear))
        last = [m for m in work.modules() if isinstance(m, nn.Linear)][-1]
        loss_fn = nn.SoftmaxCrossEntropy()
        self.gradients = np.empty((steps, self.size))
        for t in range(steps):
            inputs = rng.standard_normal((BATCH, first.in_features))
            labels = rng.integers(0, last.out_features, BATCH)
            work.zero_grad()
            loss_fn(work(inputs), labels)
            work.backward(loss_fn.backward())
            self.gradients[t] = np.concatenate([p.grad.reshape(-1) for _, p in named])

    def coordinates(self, names):
        """The flat coordinates of the parameters called ``names``."""
        chosen = [np.arange(s.start, s.stop) for s in self.slices if s.name in names]
        return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)

    def scaled(self, scale, names):
        """The stream with the coordinates of the parameters ``names`` multiplied by ``scale`` (float64)."""
        gradients = self.gradients.copy()
        gradients[:, self.coordinates(names)] *= scale
        return gradients

    def split(self, vector):
        """{parameter name: array in its shape} of a flat vector (views)."""
        return {s.name: vector[s.start:s.stop].reshape(s.shape) for s in self.slices}

    def flatten(self, arrays):
        """The flat float64 vector of {parameter name: array} (in the stream's order)."""
        return np.concatenate([np.asarray(arrays[s.name], dtype=np.float64).reshape(-1) for s in self.slices])
