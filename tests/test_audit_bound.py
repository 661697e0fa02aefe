"""Theorem 1 on random convex problems: realized average regret of AdaGradBNG ≤ bound₁ ≤ bound₂.

Each run uses the real optimizer (optim.AdaGradBNG over a list of Parameters, one block per parameter) on
float64 data; the losses F_t are random quadratics or logistic losses over mini-batches (stochastic: a fresh
sample every step; full batch: the same F every step), and the comparator u is random.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng import audit, optim
from minibng.nn.module import Parameter
from support import host, on


def quadratic(rng, dim):
    """F(x) = ½ (x − c)ᵀ A (x − c), A = QᵀQ/dim ⪰ 0."""
    q = rng.standard_normal((dim, dim)) * rng.uniform(0.1, 3.0)
    a, c = q.T @ q / dim, rng.standard_normal(dim) * 2

    def loss_and_grad(x):
        r = x - c
        return 0.5 * r @ a @ r, a @ r
    return loss_and_grad


def logistic(rng, dim, batch=8):
    """F(x) = mean_n log(1 + exp(−y_n a_nᵀx)), labels y_n ∈ {−1, 1}."""
    features, labels = rng.standard_normal((batch, dim)) * 2, rng.choice([-1.0, 1.0], batch)

    def loss_and_grad(x):
        margins = labels * (features @ x)
        loss = np.mean(np.logaddexp(0, -margins))
        weights = -labels / (1 + np.exp(margins))
        return loss, features.T @ weights / batch
    return loss_and_grad


def run(device, sizes, make_loss, stochastic, steps, lr, delta, seed):
    rng = np.random.default_rng(seed)
    dim = sum(sizes)
    params = [Parameter(on(device, rng.standard_normal(n))) for n in sizes]
    opt = optim.AdaGradBNG(params, lr=lr, delta=delta)
    comparator = rng.standard_normal(dim) * rng.uniform(0.1, 3)
    fixed = make_loss(rng, dim)
    iterates, grads, losses, comparator_losses = [], [], [], []
    for _ in range(steps):
        loss_fn = make_loss(rng, dim) if stochastic else fixed
        x = host(opt.flat.x).copy()
        loss, grad = loss_fn(x)
        iterates.append(x), grads.append(grad), losses.append(loss), comparator_losses.append(loss_fn(comparator)[0])
        opt.zero_grad()
        for p, part in zip(params, np.split(grad, np.cumsum(sizes)[:-1])):
            p.grad[...] = on(device, part)
        opt.step()
    bound = audit.adagrad_bng_bound(np.array(iterates), np.array(grads), comparator, opt.blocks, lr, delta)
    return audit.average_regret(losses, comparator_losses), bound


@pytest.mark.parametrize("make_loss", [quadratic, logistic])
@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=4), stochastic=st.booleans(),
       steps=st.integers(1, 40), lr=st.floats(0.01, 2.0), delta=st.floats(1e-6, 1.0), seed=st.integers(0, 10**6))
def test_realized_regret_is_below_both_bounds(device, make_loss, sizes, stochastic, steps, lr, delta, seed):
    regret, bound = run(device, sizes, make_loss, stochastic, steps, lr, delta, seed)
    assert regret <= bound.first * (1 + 1e-9) + 1e-12
    assert bound.first <= bound.second * (1 + 1e-9) + 1e-12


def test_bound_terms_on_a_hand_computed_run():
    """Two steps on one block of size 2: every term of bound₁ and bound₂ by hand."""
    xs = np.array([[1.0, 0.0], [0.5, 1.0]])
    gs = np.array([[3.0, 4.0], [0.0, -2.0]])
    u = np.zeros(2)
    bound = audit.adagrad_bng_bound(xs, gs, u, [2], lr=0.5, delta=0.1)
    s_final = np.sqrt([0.6 ** 2, 0.8 ** 2 + 1.0])
    initial = ((0.1 + 0.6) * 1.0) / (2 * 0.5 * 2)
    np.testing.assert_allclose(bound.s_final, s_final)
    assert bound.d_inf == 1.0 and bound.block_grad_max == (5.0,)
    np.testing.assert_allclose(bound.first, initial + s_final.sum() / 2 + 0.5 / 2 * 25 * s_final.sum())
    np.testing.assert_allclose(bound.second, initial + np.sqrt(2) / (2 * 0.5 * np.sqrt(2)) + 0.5 * 25 * np.sqrt(2) / np.sqrt(2))
    assert audit.average_regret([3.0, 1.0], [1.0, 2.0]) == 0.5
    with pytest.raises(ValueError, match="shape"):
        audit.adagrad_bng_bound(xs, gs, u, [3], lr=0.5, delta=0.1)
