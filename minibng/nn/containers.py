"""Containers: Sequential, Residual and Concat.  Children are named "0", "1", … (or as assigned)."""
from __future__ import annotations

import itertools

from ..backend import get_array_module
from .checks import check_integer
from .module import Module

__all__ = ["Sequential", "Residual", "Concat"]


def _check_module(container, role, value):
    if not isinstance(value, Module):
        raise TypeError(f"{container} takes Modules, got {type(value).__name__} as {role}")
    return value


class Sequential(Module):
    """y = f_K(… f_2(f_1(x)));  backward applies each child's backward in reverse order."""

    def __init__(self, *layers):
        super().__init__()
        for layer in layers:
            self.append(layer)

    def append(self, layer):
        setattr(self, str(len(self._modules)), _check_module("Sequential", f"layer {len(self._modules)}", layer))
        return self

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def backward(self, dy):
        for layer in reversed(self._modules.values()):
            dy = layer.backward(dy)
        return dy


class Residual(Module):
    """y = F(x) + S(x), with S the identity when ``shortcut`` is None.
    ∂L/∂x = F'ᵀ dy + S'ᵀ dy  (= F'ᵀ dy + dy for the identity)."""

    def __init__(self, branch, shortcut=None):
        super().__init__()
        self.branch = _check_module("Residual", "branch", branch)
        self.shortcut = None if shortcut is None else _check_module("Residual", "shortcut", shortcut)

    def forward(self, x):
        y = self.branch(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if y.shape != skip.shape:
            raise ValueError(f"expected the branch's output to have the shortcut's output shape {tuple(skip.shape)}, "
                             f"got {tuple(y.shape)}")
        return y + skip

    def backward(self, dy):
        skip = dy if self.shortcut is None else self.shortcut.backward(dy)
        return self.branch.backward(dy) + skip


class Concat(Module):
    """y = [B_1(x), B_2(x), …] concatenated on ``axis``;  ∂L/∂x = Σ_k B_kᵀ(dy restricted to B_k's slice)."""

    def __init__(self, *branches, axis=1):
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        for i, branch in enumerate(branches):
            setattr(self, str(i), _check_module("Concat", f"branch {i}", branch))
        self.axis = check_integer("Concat", "axis", axis)

    def forward(self, x):
        outputs = [branch(x) for branch in self._modules.values()]
        if not -outputs[0].ndim <= self.axis < outputs[0].ndim:
            raise ValueError(f"expected branch outputs with an axis {self.axis}, got shape {tuple(outputs[0].shape)}")
        self._sizes = [y.shape[self.axis] for y in outputs]
        return get_array_module(*outputs).concatenate(outputs, axis=self.axis)

    def backward(self, dy):
        xp = get_array_module(dy)
        cuts = list(itertools.accumulate(self._sizes[:-1]))
        parts = xp.split(dy, cuts, axis=self.axis)
        dx = None
        for branch, part in zip(self._modules.values(), parts):
            d = branch.backward(xp.ascontiguousarray(part))
            dx = d if dx is None else dx + d
        return dx

    def extra_repr(self):
        return f"axis={self.axis}"

