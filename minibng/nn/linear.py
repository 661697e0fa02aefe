"""Dense layers: Linear and Flatten."""
from __future__ import annotations

import math

from .checks import check_dtype, check_flag, check_rng, check_sizes
from .init import check_init, init_weight
from .module import Module, Parameter

__all__ = ["Linear", "Flatten"]


class Linear(Module):
    """Affine map y = x W + b over the last axis.

    Shapes: x (..., in), W (in, out), b (out,), y (..., out); leading axes (N, or T and N) are batch axes.
    Backward, for upstream gradient dy = ∂L/∂y, with x and dy flattened to (M, in) and (M, out):
        ∂L/∂W = xᵀ dy      ∂L/∂b = Σ_m dy_m      ∂L/∂x = dy Wᵀ
    Initialization (``init``): Torch7's uniform(±1/√in) by default; see :mod:`minibng.nn.init`.
    ``input_grad=False`` (for a network's first layer, whose input is data) skips ∂L/∂x: backward returns None.
    """

    _cached = ("_x",)

    def __init__(self, in_features, out_features, bias=True, init="torch", dtype="float32", rng=None,
                 input_grad=True):
        super().__init__()
        check_sizes("Linear", in_features=in_features, out_features=out_features)
        bias = check_flag("Linear", "bias", bias)
        self.input_grad = check_flag("Linear", "input_grad", input_grad)
        dtype = check_dtype("Linear", dtype)
        rng = check_rng("Linear", rng)
        self.in_features, self.out_features = int(in_features), int(out_features)
        init = check_init("Linear", init)
        self.weight = Parameter(init_weight((in_features, out_features), in_features, out_features, init, rng, dtype))
        self.bias = (Parameter(init_weight((out_features,), in_features, 0, init, rng, dtype, bias=True))
                     if bias else None)

    def forward(self, x):
        self.check_input(x, features=self.in_features, dtype=self.weight.data.dtype)
        self._x = x if self.training else None
        y = x @ self.weight.data
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, dy):
        x2 = self._x.reshape(-1, self.in_features)
        dy2 = dy.reshape(-1, self.out_features)
        self.weight.grad += x2.T @ dy2
        if self.bias is not None:
            self.bias.grad += dy2.sum(axis=0)
        return dy @ self.weight.data.T if self.input_grad else None

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """(N, d₁, d₂, …) → (N, d₁·d₂·…), for any rank ≥ 2 (an empty batch too); backward reshapes ∂L/∂y back to the
    input's shape."""

    def forward(self, x):
        self.check_input(x)
        if x.ndim < 2:
            raise ValueError(f"expected input of shape (N, d₁, …), rank 2 or more, got {tuple(x.shape)}")
        self._shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:])).copy()  # not -1, which an empty batch leaves undefined

    def backward(self, dy):
        return dy.reshape(self._shape).copy()
