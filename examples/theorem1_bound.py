"""Theorem 1 on a real run: AdaGradBNG on a convex problem, its realized average regret against both bounds.

A logistic regression with two blocks (weights and bias) trained by AdaGradBNG (Algorithm 2) on mini-batches;
we record every iterate x_t, gradient g_t and mini-batch loss F_t(x_t), pick a comparator u (the final iterate,
which is near-optimal), and evaluate

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


iterates, gradients, batches, losses = [], [], [], []
for t in range(steps):
    rows = rng.choice(n, batch, replace=False)
    loss, gw, gb = loss_and_grad(w.data, b.data, rows)
    iterates.append(np.concatenate([w.data, b.data]))
    gradients.append(np.concatenate([gw, gb]))
    batches.append(rows)
    losses.append(loss)
    w.grad[...], b.grad[...] = gw, gb
    opt.step()

u = np.concatenate([w.data, b.data])
comparator_losses = [loss_and_grad(u[:-1], u[-1:], rows)[0] for rows in batches]
regret = audit.average_regret(losses, comparator_losses)
bound = audit.adagrad_bng_bound(np.array(iterates), np.array(gradients), u, [features, 1], lr=0.5, delta=1e-8)
print(f"T = {steps} steps, B = 2 blocks (d = {features + 1})")
print(f"realized average regret R_T = {regret:.4f}")
print(f"bound₁ (data-dependent)     = {bound.first:.4f}")
print(f"bound₂ (worst case)         = {bound.second:.4f}")
assert regret <= bound.first <= bound.second
print("R_T ≤ bound₁ ≤ bound₂ holds, as Theorem 1 says.")
