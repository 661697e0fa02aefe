"""Normalizers' defining properties: unit blocks, scale invariance of NG updates, clipping, partitions."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng import nn, optim
from support import host, on
from test_optim_helpers import block_gradients, make_params, positive_per_block_scalars, ref_direction, run_steps

pytestmark = pytest.mark.usefixtures("partition_path")   # NumPy's path and the GPU's, on NumPy


def one_direction(device, problem, normalize):
    """The direction d = normalize(g) the optimizer feeds its rule, read back through SGD with lr = 1.

    Transforms that do not read ‖x^i‖ start from x = 0, where x_1 = −d exactly; reading d as x_0 − x_1 from other
    weights would cost up to eps·|x_0| per entry, far more than the transform's own rounding when d is small."""
    if not isinstance(normalize, (optim.Adaptive, optim.Lars, optim.TrustRatio)):
        problem = type(problem)(problem.sizes, np.zeros_like(problem.x), problem.grads)
    params = make_params(device, problem)
    opt = optim.SGD(params, lr=1.0, normalize=normalize)
    after = run_steps(opt, params, problem)
    return problem.x - after, opt


@given(problem=block_gradients())
def test_ng_blocks_have_unit_norm_zero_blocks_stay_zero_direction_kept(device, problem):
    d, _ = one_direction(device, problem, "block")
    for g, di in zip(problem.split(problem.grads[0]), problem.split(d)):
        n = np.linalg.norm(g)
        if n == 0:
            assert not di.any()
        else:
            np.testing.assert_allclose(np.linalg.norm(di), 1.0, rtol=1e-12)
            np.testing.assert_allclose(di * n, g, rtol=1e-10, atol=1e-12 * n)   # same direction within the block


# tolerances: a few eps of the dtype times the steps' magnitudes (x ~ N(0, 1): rounding x − lr·u costs eps·|x|)
@pytest.mark.parametrize("dtype, max_exponent, rtol, atol", [(np.float64, 1000, 1e-9, 1e-12),
                                                             (np.float32, 100, 1e-5, 1e-6)])
@given(problem=block_gradients(steps=3), data=st.data())
def test_sgdm_ng_and_adam_ng_ignore_positive_per_block_gradient_scale(device, problem, data, dtype, max_exponent,
                                                                      rtol, atol):
    """The NG step is the same whatever each layer's gradient magnitude: the paper's point.  Per-block factors
    span 2^±1000 in float64 (entries from ~1e-307 to ~1e304) and 2^±100 (~1e±30) in float32."""
    scales = np.repeat(data.draw(positive_per_block_scalars(len(problem.sizes), max_exponent)), problem.sizes)
    scaled = [g * scales for g in problem.grads]
    for make in (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, normalize="block"),
                 lambda p: optim.Adam(p, lr=0.01, normalize="block")):
        plain_params, scaled_params = make_params(device, problem, dtype), make_params(device, problem, dtype)
        plain = run_steps(make(plain_params), plain_params, problem)
        rescaled = run_steps(make(scaled_params), scaled_params, problem, grads=scaled)
        np.testing.assert_allclose(rescaled, plain, rtol=rtol, atol=atol)


@given(problem=block_gradients(), threshold=st.floats(1e-2, 1e2))
def test_clip_never_increases_norms_keeps_small_blocks_and_is_idempotent(device, problem, threshold):
    d, _ = one_direction(device, problem, optim.Clip(threshold))
    for g, di in zip(problem.split(problem.grads[0]), problem.split(d)):
        n = np.linalg.norm(g)
        assert np.linalg.norm(di) <= n * (1 + 1e-12) + 1e-300
        if n <= threshold:
            np.testing.assert_allclose(di, g, rtol=1e-13, atol=1e-300)
        else:
            np.testing.assert_allclose(np.linalg.norm(di), threshold, rtol=1e-12)
    twice, _ = one_direction(device, type(problem)(problem.sizes, problem.x, [d]), optim.Clip(threshold))
    np.testing.assert_allclose(twice, d, rtol=1e-12, atol=1e-300)


@given(problem=block_gradients(), alpha=st.floats(1e-3, 1.0))
def test_adaptive_scales_ng_by_alpha_times_weight_norm(device, problem, alpha):
    problem.x[: problem.sizes[0]] = 0          # the first block's weights are zero: NG fallback
    d, _ = one_direction(device, problem, optim.Adaptive(alpha))
    expected = ref_direction(problem.split(problem.grads[0]), problem.split(problem.x), "adaptive", alpha=alpha)
    np.testing.assert_allclose(d, np.concatenate(expected), rtol=1e-10, atol=1e-13)


@given(problem=block_gradients())
def test_global_partition_equals_whole_vector_normalization(device, problem):
    params = make_params(device, problem)
    opt = optim.SGD(params, lr=1.0, normalize="block", blocks="global")
    d = problem.x - run_steps(opt, params, problem)
    g = problem.grads[0]
    expected = g / np.linalg.norm(g) if g.any() else np.zeros_like(g)
    np.testing.assert_allclose(d, expected, rtol=1e-10, atol=1e-13)
    assert opt.blocks == [("all", sum(problem.sizes))]


def test_tensor_partition_equals_per_tensor_and_layer_partition_per_layer(device):
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Linear(4, 3, dtype=np.float64), nn.Tanh(), nn.Linear(3, 2, dtype=np.float64)).to(device)
    grads = {name: rng.standard_normal(p.shape) * 10.0 ** rng.uniform(-2, 2) for name, p in model.named_parameters()}
    for partition, groups in (("tensor", [["0.weight"], ["0.bias"], ["2.weight"], ["2.bias"]]),
                              ("layer", [["0.weight", "0.bias"], ["2.weight", "2.bias"]])):
        m = model.copy()
        before = {n: host(p.data).copy() for n, p in m.named_parameters()}
        opt = optim.SGD(m, lr=1.0, normalize="block", blocks=partition)
        for n, p in m.named_parameters():
            p.grad[...] = on(device, grads[n])
        opt.step()
        for group in groups:
            norm = np.sqrt(sum(np.sum(grads[n] ** 2) for n in group))
            for n in group:
                moved = before[n] - host(dict(m.named_parameters())[n].data)
                np.testing.assert_allclose(moved, grads[n] / norm, rtol=1e-10)


@given(problem=block_gradients())
def test_block_norms_report_each_blocks_gradient_norm(device, problem):
    _, opt = one_direction(device, problem, None)
    expected = [np.linalg.norm(g) for g in problem.split(problem.grads[0])]
    np.testing.assert_allclose(host(opt.block_norms), expected, rtol=1e-12)
