"""BatchNorm1d and BatchNorm2d: per-channel loop references, gradient checks, running statistics, eval, state."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng.gradcheck import check
from minibng.nn.containers import Sequential
from minibng.nn.norm import BatchNorm1d, BatchNorm2d
from support import host, on, run_forward_backward

EPS, MOMENTUM = 1e-5, 0.1


@st.composite
def batch_norm_cases(draw, min_values=2):
    """(layer class, input shape, seed) with at least ``min_values`` values per channel."""
    layer_class, rank = draw(st.sampled_from([(BatchNorm1d, 2), (BatchNorm1d, 3), (BatchNorm2d, 4)]))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    if shape[0] * int(np.prod(shape[2:])) < min_values:
        shape = (min_values,) + shape[1:]
    return layer_class, shape, draw(st.integers(0, 2**31))


def make_batch_norm(layer_class, channels, seed, dtype=np.float64):
    layer = layer_class(channels, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    layer.weight.data[...] = rng.uniform(0.5, 2.0, channels) * np.where(np.arange(channels) % 2, -1, 1)
    layer.bias.data[...] = rng.uniform(0.5, 1.5, channels) * np.where(np.arange(channels) % 3, 1, -1)
    return layer


def channel_values(a, c):
    """The values of channel c, in a fixed order, as a flat vector (loops; no reshaping tricks)."""
    return np.array([a[index] for index in np.ndindex(*a.shape) if index[1] == c])


def reference(x, dy, gamma, beta):
    """Per channel: y from the definition, dx = Jᵀ dy with the Jacobian J of y w.r.t. the channel's M values,
    J = (γ/σ̃) (I − 11ᵀ/M − x̂ x̂ᵀ/M), σ̃ = √(σ² + ε); also the batch mean and biased variance."""
    y, dx = np.zeros_like(x), np.zeros_like(x)
    means, variances = [], []
    for c in range(x.shape[1]):
        v, g = channel_values(x, c), channel_values(dy, c)
        m = len(v)
        mean = sum(v) / m
        var = sum((v - mean) ** 2) / m
        std = np.sqrt(var + EPS)
        x_hat = (v - mean) / std
        jacobian = gamma[c] / std * (np.eye(m) - np.ones((m, m)) / m - np.outer(x_hat, x_hat) / m)
        positions = [index for index in np.ndindex(*x.shape) if index[1] == c]
        for k, index in enumerate(positions):
            y[index] = gamma[c] * x_hat[k] + beta[c]
            dx[index] = jacobian[:, k] @ g
        means.append(mean)
        variances.append(var)
    return y, dx, np.array(means), np.array(variances)


@given(case=batch_norm_cases())
def test_training_mode_matches_reference(device, case):
    layer_class, shape, seed = case
    layer = make_batch_norm(layer_class, shape[1], seed).to(device)
    x_host = np.random.default_rng(seed).standard_normal(shape) * 3 + 1
    y, dy, dx = run_forward_backward(layer, on(device, x_host), dy_seed=seed + 1)
    gamma, beta = host(layer.weight.data), host(layer.bias.data)
    y_ref, dx_ref, _, _ = reference(x_host, host(dy), gamma, beta)
    np.testing.assert_allclose(host(y), y_ref, rtol=0, atol=1e-8)
    np.testing.assert_allclose(host(dx), dx_ref, rtol=0, atol=1e-8)
    x_hat = (y_ref - beta.reshape((1, -1) + (1,) * (len(shape) - 2))) / gamma.reshape((1, -1) + (1,) * (len(shape) - 2))
    for c in range(shape[1]):
        np.testing.assert_allclose(host(layer.bias.grad)[c], channel_values(host(dy), c).sum(), atol=1e-8)
        np.testing.assert_allclose(host(layer.weight.grad)[c],
                                   channel_values(host(dy), c) @ channel_values(x_hat, c), atol=1e-8)


# With M = 2 values per channel x̂ = ±1 up to ε, so ∂L/∂x is of order ε and central differences cannot resolve
# it to a relative 1e-6; M = 2 is covered by the reference test above.
@given(case=batch_norm_cases(min_values=3))
def test_training_mode_gradients(device, case):
    layer_class, shape, seed = case
    layer = make_batch_norm(layer_class, shape[1], seed).to(device)
    check(layer, on(device, np.random.default_rng(seed).standard_normal(shape) * 3 + 1), seed=seed + 1)


@given(case=batch_norm_cases(), steps=st.integers(1, 3))
def test_running_statistics_follow_pytorchs_update_and_serve_eval(device, case, steps):
    layer_class, shape, seed = case
    layer = make_batch_norm(layer_class, shape[1], seed).to(device)
    rng = np.random.default_rng(seed)
    running_mean, running_var = np.zeros(shape[1]), np.ones(shape[1])
    for _ in range(steps):
        x_host = rng.standard_normal(shape) * 2 - 1
        layer(on(device, x_host))
        _, _, mean, var = reference(x_host, x_host, np.ones(shape[1]), np.zeros(shape[1]))
        count = x_host.size // shape[1]
        running_mean = (1 - MOMENTUM) * running_mean + MOMENTUM * mean
        running_var = (1 - MOMENTUM) * running_var + MOMENTUM * var * count / (count - 1)
    np.testing.assert_allclose(host(layer.running_mean), running_mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(host(layer.running_var), running_var, rtol=0, atol=1e-12)
    layer.eval()
    x_host = rng.standard_normal((1,) + shape[1:])  # a batch of one is fine in evaluation
    y = layer(on(device, x_host))
    gamma, beta = host(layer.weight.data), host(layer.bias.data)
    for index in np.ndindex(*x_host.shape):
        c = index[1]
        expected = gamma[c] * (x_host[index] - running_mean[c]) / np.sqrt(running_var[c] + EPS) + beta[c]
        np.testing.assert_allclose(host(y)[index], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(host(layer.running_mean), running_mean, atol=1e-12)  # eval leaves them alone
    with pytest.raises(RuntimeError, match="without a forward pass in training mode"):
        layer.backward(y)


def test_state_dict_round_trip_of_the_buffers(device):
    source = make_batch_norm(BatchNorm2d, 3, 0, dtype=np.float32).to(device)
    x = on(device, np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32) * 5 + 2)
    source(x)
    state = source.state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var"]
    target = BatchNorm2d(3).to(device).load_state_dict(state)
    for name in state:
        np.testing.assert_array_equal(host(target.state_dict()[name]), state[name])
    np.testing.assert_array_equal(host(target.eval()(x)), host(source.eval()(x)))
    assert target.running_mean.dtype == np.float32


@pytest.mark.parametrize("layer_class, shape", [(BatchNorm1d, (5, 3)), (BatchNorm1d, (2, 3, 4)), (BatchNorm2d, (2, 3, 2, 2))])
def test_float32_in_float32_out(device, layer_class, shape):
    layer = make_batch_norm(layer_class, 3, 0, dtype=np.float32).to(device)
    x = on(device, np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    y, _, dx = run_forward_backward(layer, x)
    assert y.dtype == dx.dtype == layer.running_var.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())
    assert layer.eval()(x).dtype == np.float32


def test_without_affine_parameters(device):
    layer = BatchNorm1d(2, affine=False).astype(np.float64).to(device)
    assert layer.parameters() == []
    x_host = np.random.default_rng(0).standard_normal((5, 2))
    y, dy, dx = run_forward_backward(layer, on(device, x_host))
    y_ref, dx_ref, _, _ = reference(x_host, host(dy), np.ones(2), np.zeros(2))
    np.testing.assert_allclose(host(y), y_ref, atol=1e-12)
    np.testing.assert_allclose(host(dx), dx_ref, atol=1e-12)


@pytest.mark.parametrize("make, shape, dtype, error, message", [
    (lambda: BatchNorm2d(3), (2, 4, 2, 2), np.float32, ValueError,
     r"BatchNorm2d\).*expected input of shape \(N, 3, H, W\), got \(2, 4, 2, 2\)"),
    (lambda: BatchNorm1d(3), (2, 3, 2, 2), np.float32, ValueError,
     r"BatchNorm1d\).*expected input of shape \(N, 3\) or \(N, 3, L\), got \(2, 3, 2, 2\)"),
    (lambda: BatchNorm1d(3), (4, 3), np.float64, TypeError, r"BatchNorm1d\).*expected float32 input .*got float64"),
    (lambda: BatchNorm1d(3), (1, 3), np.float32, ValueError,
     r"BatchNorm1d\).*more than 1 value per channel in training mode, got input shape \(1, 3\)"),
])
def test_bad_inputs_name_the_layer(device, make, shape, dtype, error, message):
    model = Sequential(make()).to(device)
    with pytest.raises(error, match=r"layer '0' \(" + message):
        model(on(device, np.zeros(shape, dtype)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_features=0), "num_features must be positive"), (dict(num_features=2, eps=0), "eps must be > 0"),
    (dict(num_features=2, momentum=1.5), r"momentum must be in \[0, 1\]"),
])
def test_invalid_hyperparameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchNorm2d(**kwargs)
