"""Theorem 1 on a real run: AdaGradBNG on a convex problem, its realized average regret against both bounds.

A logistic regression with two blocks (weights and bias) trained by AdaGradBNG (Algorithm 2) on mini-batches.
minibng.audit.BoundRecorder records every iterate x_t and gradient g_t as the optimizer steps, and reads η and δ
from the optimizer itself; we give it each mini-batch loss F_t(x_t), pick a comparator u (the final iterate, which
is near-optimal) with its losses F_t(u) on the same batches, and ask for the verdict:

    R_T = (1/T) Σ_t [F_t(x_t) − F_t(u)]   ≤   bound₁   ≤   bound₂          (see minibng/audit/bound.py)

    python examples/theorem1_bound.py
"""
import numpy as np

from minibng import audit, nn, optim

rng = np.random.default_rng(0)
n, features, steps, batch = 2000, 20, 400, 32
a = rng.standard_normal((n, features))
labels = (a @ rng.standard_normal(features) + 0.5 * rng.standard_normal(n) > 0).astype(np.float64)

w, b = nn.Parameter(np.zeros(features)), nn.Parameter(np.zeros(1))
opt = optim.AdaGradBNG([w, b], lr=0.5, delta=1e-8, blocks="tensor")


def loss_and_grad(wv, bv, rows):
    """Mean logistic loss over ``rows`` and its gradient (convex in (w, b))."""
    z = a[rows] @ wv + bv[0]
    p = 1 / (1 + np.exp(-z))
    loss = np.mean(np.logaddexp(0, z) - labels[rows] * z)
    return loss, a[rows].T @ (p - labels[rows]) / len(rows), np.array([np.mean(p - labels[rows])])


batches = []
with audit.BoundRecorder(opt) as recorder:
    for t in range(steps):
        rows = rng.choice(n, batch, replace=False)
        loss, gw, gb = loss_and_grad(w.data, b.data, rows)
        w.grad[...], b.grad[...] = gw, gb
        opt.step()                      # the recorder keeps x_t and g_t
        recorder.add_loss(loss)         # F_t(x_t)
        batches.append(rows)

u = np.concatenate([w.data, b.data])
comparator_losses = [loss_and_grad(u[:-1], u[-1:], rows)[0] for rows in batches]
verdict = recorder.verdict(u, comparator_losses)
print(f"T = {steps} steps, B = 2 blocks (d = {features + 1})")
print(verdict)
assert verdict.holds and verdict.regret <= verdict.bound.first <= verdict.bound.second
