"""BatchNorm across the float32 range: activations of 1e-30 … 1e30 normalize, forward and backward, as those of 1
do, against float64 math; the statistics of a data-parallel batch do not depend on how it is split; running
statistics beyond float32 overflow loudly; an ε whose 1/√ε is beyond the dtype is refused."""
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng.nn.norm import BatchNorm1d, BatchNorm2d
from support import host, on

SCALES = [1e-30, 1e-20, 1e-10, 1.0, 1e10, 1e19, 1e20, 1e30]
EPS = 1e-5


def layer_with_affine(make, channels, eps, dtype=np.float32):
    layer = make(channels, eps=eps, dtype=dtype)
    layer.weight.data[...] = np.linspace(0.5, 2.0, channels) * np.where(np.arange(channels) % 2, -1, 1)
    layer.bias.data[...] = np.linspace(-1.0, 1.5, channels)
    return layer


def float64_batch_norm(x, dy, gamma, beta, eps):
    """y, ∂L/∂x, ∂L/∂γ, ∂L/∂β, μ and the biased σ² of the training-mode map, in float64, from the definitions."""
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    count = x.size // x.shape[1]
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    gamma, beta = gamma.astype(np.float64).reshape(shape), beta.astype(np.float64).reshape(shape)
    beta_grad, gamma_grad = dy.sum(axis=axes, keepdims=True), (dy * x_hat).sum(axis=axes, keepdims=True)
    dx = gamma * inv_std * (dy - beta_grad / count - x_hat * gamma_grad / count)
    return gamma * x_hat + beta, dx, gamma_grad.ravel(), beta_grad.ravel(), mean.ravel(), var.ravel()


def assert_close_per_channel(got, expected, rtol, what):
    """Every channel of ``got`` within ``rtol`` of ``expected``, relative to that channel's norm."""
    for c in range(expected.shape[1]):
        mine, theirs = np.take(got, c, axis=1).astype(np.float64), np.take(expected, c, axis=1).astype(np.float64)
        assert np.linalg.norm(mine - theirs) <= rtol * np.linalg.norm(theirs), f"{what}, channel {c}"


def batch(shape, scale, seed, channels_last=False):
    """scale · (z + per-channel offsets of a few spreads), float32; channels-last memory as a convolution gives."""
    rng = np.random.default_rng(seed)
    offsets = np.array([0.0, 3.0, -1.0, 2.0])[:shape[1]].reshape((1, -1) + (1,) * (len(shape) - 2))
    x = ((rng.standard_normal(shape) + offsets) * scale).astype(np.float32)
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return x


CASES = [(BatchNorm1d, (16, 4), False), (BatchNorm1d, (6, 3, 5), False), (BatchNorm2d, (4, 3, 3, 5), False),
         (BatchNorm2d, (4, 4, 3, 3), True)]


@pytest.mark.parametrize("make, shape, channels_last", CASES)
@pytest.mark.parametrize("scale", SCALES)
def test_activations_from_1e_minus_30_to_1e30_normalize_as_those_of_1(device, make, shape, channels_last, scale):
    """ε scaled with the activations (ε·s², a float64 number the layer keeps) makes the normalized batch the same
    at every scale s, so every scale is held to float32's precision against float64 math, not only those above
    √ε: forward, ∂L/∂x, ∂L/∂γ, ∂L/∂β and the running mean."""
    eps = EPS * scale * scale
    layer = layer_with_affine(make, shape[1], eps).to(device)
    x = batch(shape, scale, seed=shape[0], channels_last=channels_last)
    dy = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = host(layer(on(device, x)))
        dx = host(layer.backward(on(device, dy)))
    y_ref, dx_ref, gamma_grad, beta_grad, mean, var = float64_batch_norm(x, dy, host(layer.weight.data),
                                                                        host(layer.bias.data), eps)
    assert y.dtype == dx.dtype == np.float32
    assert_close_per_channel(y, y_ref, 2e-6, "y")
    assert_close_per_channel(dx, dx_ref, 1e-5, "dx")
    np.testing.assert_allclose(host(layer.weight.grad), gamma_grad, rtol=1e-4)
    np.testing.assert_allclose(host(layer.bias.grad), beta_grad, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(host(layer.running_mean), 0.1 * mean, rtol=1e-5, atol=1e-45)
    count = x.size // shape[1]
    if scale < 1e20:
        np.testing.assert_allclose(host(layer.running_var), 0.9 + 0.1 * count / (count - 1) * var, rtol=1e-5)
        assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    else:   # σ² ≈ 1e40 is beyond float32: running_var overflows, loudly, and the Trainer's guard stops the run
        assert np.isinf(host(layer.running_var)).all()
        assert device != "cpu" or any("overflow" in str(w.message) for w in caught)   # NumPy warns, CuPy cannot


@pytest.mark.parametrize("make, shape, channels_last", CASES)
@pytest.mark.parametrize("low, high", [(1e37, 3.4e38), (-3.4e38, -1e37), (-1.7e38, 1.7e38)])
def test_activations_up_to_the_largest_float32_normalize_when_within_its_range_of_their_mean(device, make, shape,
                                                                                            channels_last, low, high):
    """Σx of 16 to 60 values near 1e38 overflows float32 though their mean does not (the sum is accumulated in
    float64): values of one sign up to float32's largest number, or of both signs within half of it, lie within
    float32's range of their channel's mean, and normalize against float64 math as those of 1 do."""
    rng = np.random.default_rng(shape[0])
    x = rng.uniform(low, high, shape).astype(np.float32)
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    dy = rng.standard_normal(shape).astype(np.float32)
    layer = layer_with_affine(make, shape[1], EPS).to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the running σ² ≈ 1e76 overflows float32, as tested above
        y = host(layer(on(device, x)))
        dx = host(layer.backward(on(device, dy)))
    y_ref, dx_ref, gamma_grad, beta_grad, mean, _ = float64_batch_norm(x, dy, host(layer.weight.data),
                                                                      host(layer.bias.data), EPS)
    assert_close_per_channel(y, y_ref, 2e-6, "y")
    assert_close_per_channel(dx, dx_ref, 1e-5, "dx")
    np.testing.assert_allclose(host(layer.weight.grad), gamma_grad, rtol=1e-4)
    np.testing.assert_allclose(host(layer.running_mean), 0.1 * mean, rtol=1e-5)


@given(exponent=st.integers(-30, 30), seed=st.integers(0, 2**31 - 1), rows=st.integers(2, 9),
       channels=st.integers(1, 4))
def test_rescaling_the_batch_and_eps_together_rescales_nothing_but_the_input_gradient(device, exponent, seed, rows,
                                                                                     channels):
    """BN(s·x; s²ε) = BN(x; ε) and ∂L/∂x scales by 1/s, for s = 10^k across float32's range (in float32)."""
    scale = 10.0 ** exponent
    x = np.random.default_rng(seed).standard_normal((rows, channels, 3)).astype(np.float32) + 2
    dy = np.random.default_rng(seed + 1).standard_normal(x.shape).astype(np.float32)
    outputs = []
    for s in (1.0, scale):
        layer = layer_with_affine(BatchNorm1d, channels, EPS * s * s).to(device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # a running σ² beyond float32: tested above
            y = host(layer(on(device, (x.astype(np.float64) * s).astype(np.float32))))
        outputs.append((y, host(layer.backward(on(device, dy))) * s, host(layer.weight.grad)))
    for unit, scaled, what in zip(*outputs, ("y", "dx·s", "∂L/∂γ")):
        np.testing.assert_allclose(scaled, unit, rtol=1e-4, atol=1e-5, err_msg=what)


def test_a_constant_channel_normalizes_to_0_at_any_scale(device):
    """σ² = 0: x̂ = 0, y = β, and ∂L/∂x = (γ/√ε)(dy − mean dy), finite, even for a channel of 1e30s."""
    x = np.stack([np.full(5, 1e30), np.full(5, -3e-30), np.full(5, 0.0)], axis=1).astype(np.float32)
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    layer = layer_with_affine(BatchNorm1d, 3, EPS).to(device)
    y, dx = host(layer(on(device, x))), host(layer.backward(on(device, dy)))
    np.testing.assert_array_equal(y, np.broadcast_to(host(layer.bias.data), y.shape))
    expected = host(layer.weight.data) / np.sqrt(EPS) * (dy - dy.mean(axis=0))
    np.testing.assert_allclose(dx, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e18])
def test_evaluation_uses_running_statistics_exactly_where_they_are_representable(device, scale):
    layer = layer_with_affine(BatchNorm2d, 3, EPS * scale * scale).to(device)
    layer.running_mean[...] = on(device, np.array([1.0, -2.0, 0.5], np.float32) * scale)
    layer.running_var[...] = on(device, (np.array([4.0, 0.25, 1.0]) * scale * scale).astype(np.float32))
    x = batch((2, 3, 2, 2), scale, seed=3)
    y = host(layer.eval()(on(device, x)))
    mean, var = host(layer.running_mean).astype(np.float64), host(layer.running_var).astype(np.float64)
    x_hat = (x - mean.reshape(1, 3, 1, 1)) / np.sqrt(var + layer.eps).reshape(1, 3, 1, 1)
    expected = host(layer.weight.data).reshape(1, 3, 1, 1) * x_hat + host(layer.bias.data).reshape(1, 3, 1, 1)
    assert y.dtype == np.float32
    assert_close_per_channel(y, expected, 1e-6, "y")


class ThreadedWorld:
    """BatchNorm's ``sync`` hook for ``ranks`` ranks run as threads of this process: each posts its per-channel
    sums and count, and all get the totals (as the MPI all-reduce gives them)."""

    def __init__(self, ranks):
        self.barrier, self.posted = threading.Barrier(ranks, timeout=30), [None] * ranks

    def hook(self, rank):
        def sync(sums, count):
            self.posted[rank] = (sums, count)
            self.barrier.wait()
            totals = [sum(posted[0][k] for posted in self.posted) for k in range(len(sums))]
            total_count = sum(posted[1] for posted in self.posted)
            self.barrier.wait()                 # everyone has read before anyone posts again
            return totals, total_count
        return sync


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e15])
def test_a_batch_split_over_ranks_normalizes_as_the_whole_batch_at_every_scale(scale):
    """The two ranks' spreads s differ (one holds the larger values), yet what they all-reduce (Σx, Σ(x − μ)² in
    float64, Σdy, Σdy·x̂) does not depend on s: the halves normalize exactly as the whole batch."""
    x = batch((8, 3, 2, 2), scale, seed=4)
    x[4:] *= 1000                                           # rank 1's values are 1000× rank 0's
    dy = np.random.default_rng(5).standard_normal(x.shape).astype(np.float32)
    whole = layer_with_affine(BatchNorm2d, 3, EPS * scale * scale)
    expected_y, expected_dx = whole(x), whole.backward(dy)
    world, ranks = ThreadedWorld(2), [layer_with_affine(BatchNorm2d, 3, EPS * scale * scale) for _ in range(2)]
    results = [None, None]

    def run(rank):
        ranks[rank].sync = world.hook(rank)
        part = slice(4 * rank, 4 * rank + 4)
        results[rank] = ranks[rank](x[part]), ranks[rank].backward(dy[part])

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results[0] is not None and results[1] is not None
    assert_close_per_channel(np.concatenate([results[0][0], results[1][0]]), expected_y, 1e-6, "y")
    assert_close_per_channel(np.concatenate([results[0][1], results[1][1]]), expected_dx, 1e-5, "dx")
    np.testing.assert_allclose(ranks[0].weight.grad + ranks[1].weight.grad, whole.weight.grad, rtol=1e-4)
    np.testing.assert_allclose(ranks[0].running_var, whole.running_var, rtol=1e-5)


def test_an_eps_whose_inverse_square_root_is_beyond_the_dtype_is_refused():
    with pytest.raises(ValueError, match=r"BatchNorm2d: eps=1e-80 is too small for float32: 1/√eps.*"
                                         r"give eps ≥ 8\.6e-78, or build the layer with dtype='float64'"):
        BatchNorm2d(3, eps=1e-80)
    BatchNorm2d(3, eps=1e-77)
    wide = BatchNorm1d(3, eps=1e-80, dtype="float64")         # 1/√eps = 1e40 is a float64 number
    wide(np.random.default_rng(0).standard_normal((4, 3)))
    narrowed = wide.astype(np.float32)
    with pytest.raises(ValueError, match="eps=1e-80 is too small for float32"):
        narrowed(np.zeros((4, 3), np.float32))
