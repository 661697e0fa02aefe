"""Hand-written layers for the layer audit's tests: ``FACTORY()`` returns a minibng module (``python -m minibng.audit
layer FILE.py:FACTORY``)."""
from minibng import nn


class FourfoldWeightGradient(nn.Linear):
    """A Linear whose backward adds 4 ∂L/∂W to ``weight.grad`` (it still accumulates: only the factor is wrong)."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.weight.grad += 3 * (self._x.T @ dy)
        return dx


def fourfold():
    return FourfoldWeightGradient(3, 2)
