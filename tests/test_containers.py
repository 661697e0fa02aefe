"""Sequential, Residual and Concat: gradient checks and composition rules."""
import numpy as np
from hypothesis import given, strategies as st

from minibng import nn
from minibng.audit import check_layer
from support import host, on, run_forward_backward

seeds = st.integers(0, 2**31 - 1)


def randomize_biases(module, seed):
    rng = np.random.default_rng(seed)
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            p.data[...] = rng.uniform(-1, 1, p.shape)
    return module


@given(seed=seeds, width=st.integers(1, 4))
def test_sequential(device, seed, width):
    model = randomize_biases(nn.Sequential(nn.Linear(3, width, rng=seed), nn.Sigmoid(), nn.Linear(width, 2, rng=seed + 1)),
                             seed).astype(np.float64).to(device)
    check_layer(model, on(device, np.random.default_rng(seed).standard_normal((4, 3))))


@given(seed=seeds, with_shortcut=st.booleans())
def test_residual(device, seed, with_shortcut):
    branch = nn.Sequential(nn.Linear(3, 3, rng=seed), nn.Tanh())
    shortcut = nn.Linear(3, 3, rng=seed + 1) if with_shortcut else None
    model = randomize_biases(nn.Residual(branch, shortcut), seed).astype(np.float64).to(device)
    x_host = np.random.default_rng(seed).standard_normal((5, 3))
    x = on(device, x_host)
    check_layer(model, x)
    y, _, _ = run_forward_backward(model, x)
    skip = host(shortcut(x)) if with_shortcut else x_host
    np.testing.assert_allclose(host(y), host(branch(x)) + skip, rtol=1e-12)


def test_residual_identity_backward_adds_dy(device):
    model = nn.Residual(nn.Sequential()).astype(np.float64).to(device)  # y = x + x
    x = on(device, np.random.default_rng(0).standard_normal((2, 3)))
    _, dy, dx = run_forward_backward(model, x)
    np.testing.assert_allclose(host(dx), 2 * host(dy))


@given(seed=seeds, axis=st.sampled_from([1, -1]))
def test_concat(device, seed, axis):
    model = randomize_biases(nn.Concat(nn.Linear(3, 2, rng=seed), nn.Sequential(nn.Linear(3, 4, rng=seed + 1), nn.ReLU()),
                                       axis=axis), seed).astype(np.float64).to(device)
    x = on(device, np.random.default_rng(seed).standard_normal((3, 3)))
    check_layer(model, x)
    y, _, _ = run_forward_backward(model, x)
    assert y.shape == (3, 6)
    np.testing.assert_allclose(host(y)[:, :2], host(getattr(model, "0")(x)))
