"""Audit a layer you wrote: minibng.audit.check_layer compares its backward with finite differences.

    python examples/audit_a_layer.py
"""
import numpy as np

from minibng import audit, nn


class Swish(nn.Module):
    """y = x σ(x);   ∂L/∂x = dy · (σ(x) + x σ(x)(1 − σ(x)))."""

    def forward(self, x):
        self._x = x
        return x / (1 + np.exp(-x))

    def backward(self, dy):
        s = 1 / (1 + np.exp(-self._x))
        return dy * (s + self._x * s * (1 - s))


class BuggySwish(Swish):
    """The same layer with a classic slip: the product rule's second term forgotten."""

    def backward(self, dy):
        return dy / (1 + np.exp(-self._x))


x = np.random.default_rng(0).standard_normal((8, 5))
print("Swish inside a small network:")
print(audit.check_layer(nn.Sequential(nn.Linear(5, 4), Swish(), nn.Linear(4, 3)), x))

print("\nBuggySwish:")
report = audit.check_layer(BuggySwish(), x, raise_on_failure=False)
print(report)
assert not report.ok, "the checker must catch the missing term"
print("caught: the analytic input gradient disagrees with finite differences.")
