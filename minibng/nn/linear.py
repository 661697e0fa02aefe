"""Dense layers: Linear and Flatten."""
from __future__ import annotations

from .init import check_init, check_sizes, init_weight
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
        self.input_grad = bool(input_grad)
        check_sizes("Linear", in_features=in_features, out_features=out_features)
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
    """(N, d₁, d₂, …) → (N, d₁·d₂·…); backward reshapes ∂L/∂y back to the input's shape."""

    def forward(self, x):
        self.check_input(x, ndim=tuple(range(2, 8)))
        self._shape = x.shape
        return x.reshape(x.shape[0], -1).copy()

    def backward(self, dy):
        return dy.reshape(self._shape).copy()
