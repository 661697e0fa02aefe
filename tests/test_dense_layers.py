"""Linear, activations, Flatten and Dropout: gradient checks, references, purity and dtype discipline."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minibng as mb
from minibng import nn
from minibng.gradcheck import check
from support import host, on, run_forward_backward

seeds = st.integers(0, 2**31 - 1)
sizes = st.integers(1, 5)


def linear_with_nonzero_bias(n_in, n_out, seed):
    layer = nn.Linear(n_in, n_out, rng=seed)
    layer.bias.data[...] = np.random.default_rng(seed + 1).uniform(0.5, 1.5, n_out) * np.sign(
        np.random.default_rng(seed + 2).standard_normal(n_out))
    return layer


@given(n=sizes, n_in=sizes, n_out=sizes, seed=seeds, sequence=st.booleans())
def test_linear_gradients_and_reference(device, n, n_in, n_out, seed, sequence):
    layer = linear_with_nonzero_bias(n_in, n_out, seed).astype(np.float64).to(device)
    shape = (2, n, n_in) if sequence else (n, n_in)
    x_host = np.random.default_rng(seed).standard_normal(shape)
    x = on(device, x_host)
    check(layer, x)
    y, dy, dx = run_forward_backward(layer, x, dy_seed=seed)
    w, b = host(layer.weight.data), host(layer.bias.data)
    expected = np.zeros(shape[:-1] + (n_out,))
    for index in np.ndindex(*shape[:-1]):
        for j in range(n_out):
            expected[index + (j,)] = sum(x_host[index + (i,)] * w[i, j] for i in range(n_in)) + b[j]
    np.testing.assert_allclose(host(y), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(dx), host(dy) @ w.T, rtol=1e-12, atol=1e-12)


ACTIVATIONS = {
    "relu": (nn.ReLU, lambda x: np.maximum(x, 0)),
    "sigmoid": (nn.Sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (nn.Tanh, np.tanh),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(shape=st.lists(sizes, min_size=1, max_size=3), seed=seeds)
def test_activation_gradients_and_reference(device, name, shape, seed):
    make, reference = ACTIVATIONS[name]
    x_host = np.random.default_rng(seed).standard_normal(shape) * 3
    if name == "relu":  # keep finite differences away from the kink at 0
        x_host[np.abs(x_host) < 1e-3] = 0.5
    layer, x = make(), on(device, x_host)
    check(layer, x)
    y, _, _ = run_forward_backward(layer, x, dy_seed=seed)
    np.testing.assert_allclose(host(y), reference(x_host), rtol=1e-12, atol=1e-15)


def test_sigmoid_never_overflows(device):
    y = nn.Sigmoid()(on(device, np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32)))
    np.testing.assert_allclose(host(y), [0, 1 / (1 + np.exp(50.0)), 0.5, 1, 1], atol=1e-7)


@given(shape=st.lists(sizes, min_size=2, max_size=4), seed=seeds)
def test_flatten(device, shape, seed):
    x = on(device, np.random.default_rng(seed).standard_normal(shape))
    layer = nn.Flatten()
    check(layer, x)
    y, dy, dx = run_forward_backward(layer, x)
    assert y.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(host(dx), host(dy).reshape(shape))


@given(p=st.sampled_from([0.0, 0.2, 0.5, 0.9]), seed=seeds)
def test_dropout_gradients_replay_the_same_mask(device, p, seed):
    x = on(device, np.random.default_rng(seed).standard_normal((4, 6)))
    check(nn.Dropout(p, seed=seed), x)


def test_dropout_keeps_the_expectation_and_drops_a_fraction_p(device):
    layer = nn.Dropout(0.3, seed=1)
    x = on(device, np.ones((200, 500), np.float32))
    y, dy, dx = run_forward_backward(layer, x)
    kept = host(y) != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(host(y)[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_allclose(host(dx), host(dy) * host(y), rtol=1e-6)  # same mask, same scale


def test_dropout_is_the_identity_in_eval_mode(device):
    x = on(device, np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32))
    layer = nn.Dropout(0.5).eval()
    np.testing.assert_array_equal(host(layer(x)), host(x))


def test_dropout_rejects_p_outside_unit_interval():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        nn.Dropout(1.0)


@pytest.mark.parametrize("make", [lambda: nn.Linear(4, 3), nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Flatten,
                                  lambda: nn.Dropout(0.5)])
def test_float32_in_float32_out(device, make):
    layer = make().to(device)
    x = on(device, np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    y, _, dx = run_forward_backward(layer, x)
    assert y.dtype == np.float32 and dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())


def test_backward_accumulates_into_grad(device):
    layer = linear_with_nonzero_bias(3, 2, 0).to(device)
    x = on(device, np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    dy = on(device, np.random.default_rng(1).standard_normal((4, 2)).astype(np.float32))
    layer(x)
    layer.backward(dy)
    once = host(layer.weight.grad).copy()
    layer(x)                                       # every backward needs its own forward
    layer.backward(dy)
    np.testing.assert_allclose(host(layer.weight.grad), 2 * once, rtol=1e-6)


def test_linear_without_input_gradient_returns_none_and_the_same_parameter_gradients(device):
    x = on(device, np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    dy = on(device, np.random.default_rng(1).standard_normal((4, 2)).astype(np.float32))
    full, first = linear_with_nonzero_bias(3, 2, 0).to(device), linear_with_nonzero_bias(3, 2, 0).to(device)
    first.input_grad = False
    full(x), first(x)
    assert full.backward(dy) is not None and first.backward(dy) is None
    for p, q in zip(full.parameters(), first.parameters()):
        np.testing.assert_array_equal(host(p.grad), host(q.grad))
