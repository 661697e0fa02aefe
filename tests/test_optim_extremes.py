"""Block norms and every per-block transform across the whole exponent range of float32 and float64.

Blocks are scaled by 2^k with k anywhere from the dtype's smallest normal exponent to its largest, so entries
sit near 1e-38 / 1e38 in float32 and 1e-308 / 1e308 in float64: where a plain Σ g² underflows to 0 (the deep
sigmoid layers NG exists to rescue) or overflows to ∞.  References are computed per block in Python with
``math.hypot`` (correctly rounded to within an ulp, without overflow or underflow) on the stored values.

Directions are read back from one step of SGD with lr = 1 from x = 0 (x_1 = −d exactly), or, where a transform
needs ‖x^i‖, as x_0 − x_1 with a tolerance for that subtraction.
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng import optim
from minibng.nn.module import Parameter
from minibng.optim.flat import pack
from support import host, on

pytestmark = pytest.mark.usefixtures("partition_path")   # NumPy's path and the GPU's, on NumPy

DTYPES = [np.float32, np.float64]


def eps(dtype):
    return float(np.finfo(dtype).eps)


@st.composite
def extreme_blocks(draw, dtype, sizes=None, headroom=0, max_blocks=5, max_size=8):
    """Block sizes and values: block i holds N(0, 1) draws rescaled so that its largest magnitude is 2^{k_i}, k_i
    anywhere in the dtype's normal exponent range (leaving ``headroom`` binary orders below the largest), every
    entry at least 2^-6 of the largest, so all entries are normal numbers and every block norm is finite."""
    finfo = np.finfo(dtype)
    if sizes is None:
        sizes = draw(st.lists(st.integers(1, max_size), min_size=1, max_size=max_blocks))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    top = finfo.maxexp - 3 - headroom                      # 2^top · √8 stays below the largest finite number
    blocks = []
    for n in sizes:
        v = rng.standard_normal(n)
        v = np.sign(v) * np.maximum(np.abs(v) / np.abs(v).max(), 2.0 ** -6)
        k = draw(st.integers(finfo.minexp + 7, top))
        blocks.append(np.ldexp(v, k).astype(dtype))
    return sizes, blocks


def reference_norm(block):
    return math.hypot(*(float(v) for v in block))


def params_of(device, blocks, dtype, values=None):
    """One Parameter per block (one block per tensor), holding ``values`` (default zeros) with .grad = blocks."""
    params = []
    for i, g in enumerate(blocks):
        p = Parameter(on(device, np.zeros_like(g) if values is None else values[i].astype(dtype)))
        params.append((p, g))
    return params


def one_update(device, blocks, dtype, make_optimizer, values=None):
    """x_0 − x_1 per block after one step of the optimizer from x_0 = ``values`` (default 0), as float64 arrays."""
    pairs = params_of(device, blocks, dtype, values)
    params = [p for p, _ in pairs]
    opt = make_optimizer(params)
    before = [host(p.data).astype(np.float64) for p in params]
    for p, g in pairs:
        p.grad[...] = on(device, g)
    opt.step()
    return [b - host(p.data).astype(np.float64) for b, p in zip(before, params)], opt


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_block_norms_are_exact_from_the_smallest_normal_to_the_largest(device, dtype, data):
    sizes, blocks = data.draw(extreme_blocks(dtype))
    flat = pack([Parameter(on(device, b)) for b in blocks])
    norms = host(flat.partition.norms(flat.x))
    assert norms.dtype == np.float64
    np.testing.assert_allclose(norms, [reference_norm(b) for b in blocks], rtol=8 * eps(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_block_norms_of_tiny_huge_zero_and_non_finite_blocks(device, dtype):
    """Squares of 1e-30 vanish in float32 (and of 1e-170 in float64), squares of 1e20 (1e160) overflow: the norm
    is still exact.  A zero block has norm 0; NaN and ∞ propagate to their own block only."""
    finfo = np.finfo(dtype)
    tiny, huge = (1e-30, 1e20) if dtype == np.float32 else (1e-170, 1e160)
    subnormal = float(finfo.smallest_subnormal)
    blocks = [np.full(1000, tiny), np.array([huge, -huge, huge]), np.zeros(4), np.array([1.0, np.nan]),
              np.array([np.inf, 1.0]), np.array([finfo.tiny, -finfo.tiny]), np.array([3.0, 4.0])]
    if dtype == np.float32:        # a float32 block of subnormal numbers: the exact norm is a float64 number
        blocks.append(np.array([subnormal, subnormal]))
    blocks = [b.astype(dtype) for b in blocks]
    flat = pack([Parameter(on(device, b)) for b in blocks])
    norms = host(flat.partition.norms(flat.x))
    expected = [math.sqrt(1000) * float(dtype(tiny)), math.sqrt(3) * float(dtype(huge)), 0.0, np.nan, np.inf,
                math.sqrt(2) * float(finfo.tiny), 5.0] + ([math.sqrt(2) * subnormal] if dtype == np.float32 else [])
    np.testing.assert_allclose(norms, expected, rtol=8 * eps(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_ng_direction_has_unit_blocks_and_ignores_per_block_scale_across_the_range(device, dtype, data):
    """The NG direction of blocks at 2^{k_i} equals that of the same blocks at 1, and every block has unit norm."""
    sizes, blocks = data.draw(extreme_blocks(dtype))
    unit_blocks = [(b.astype(np.float64) / np.abs(b.astype(np.float64)).max()).astype(dtype) for b in blocks]
    make = lambda p: optim.SGD(p, lr=1.0, normalize="block")  # noqa: E731
    directions, _ = one_update(device, blocks, dtype, make)
    unscaled, _ = one_update(device, unit_blocks, dtype, make)
    for d, u in zip(directions, unscaled):
        assert np.isfinite(d).all()
        np.testing.assert_allclose(np.linalg.norm(d), 1.0, rtol=8 * eps(dtype))
        np.testing.assert_allclose(d, u, rtol=8 * eps(dtype), atol=8 * eps(dtype))


def test_ng_direction_of_a_float32_block_of_subnormal_numbers_has_unit_norm(device):
    """‖g‖ ≈ 1e-45 · √2: forming 1/‖g‖ first would overflow float32; the direction is still (1, 1)/√2."""
    subnormal = np.finfo(np.float32).smallest_subnormal
    blocks = [np.array([subnormal, subnormal], dtype=np.float32), np.array([1.0, 2.0], dtype=np.float32)]
    (d, e), _ = one_update(device, blocks, np.float32, lambda p: optim.SGD(p, lr=1.0, normalize="block"))
    np.testing.assert_allclose(d, [2 ** -0.5, 2 ** -0.5], rtol=4 * eps(np.float32))
    np.testing.assert_allclose(e, np.array([1.0, 2.0]) / math.sqrt(5), rtol=4 * eps(np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data(), threshold=st.floats(1e-3, 1e3))
def test_clip_keeps_blocks_within_the_threshold_and_clips_the_rest_to_it_across_the_range(device, dtype, data,
                                                                                          threshold):
    """c/‖g‖ for ‖g‖ ≈ 1e38 is a float32 subnormal (bits lost); the clipped block still has norm c."""
    sizes, blocks = data.draw(extreme_blocks(dtype))
    directions, _ = one_update(device, blocks, dtype, lambda p: optim.SGD(p, lr=1.0, normalize=optim.Clip(threshold)))
    for g, d in zip(blocks, directions):
        n = reference_norm(g)
        if n <= threshold * (1 - 1e-5):
            np.testing.assert_array_equal(d, g.astype(np.float64))
        elif n >= threshold * (1 + 1e-5):
            np.testing.assert_allclose(np.linalg.norm(d), threshold, rtol=8 * eps(dtype))
            np.testing.assert_allclose(d / threshold * n, g.astype(np.float64), rtol=8 * eps(dtype))


def readback(weights, expected, dtype):
    """How far x_0 − x_1 may be from the update d: x_1 = x_0 − d is rounded by up to ½ eps·|x_1| per entry."""
    return eps(dtype) * (np.abs(weights.astype(np.float64)).max() + np.abs(expected).max())


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data(), alpha=st.floats(0.5, 2.0))
def test_adaptive_direction_has_norm_alpha_times_weight_norm_across_the_range(device, dtype, data, alpha):
    """NGadap: d^i = α‖x^i‖ g^i/‖g^i‖, for gradients and weights each anywhere in the exponent range."""
    sizes, blocks = data.draw(extreme_blocks(dtype))
    _, weights = data.draw(extreme_blocks(dtype, sizes, headroom=3))
    directions, _ = one_update(device, blocks, dtype, lambda p: optim.SGD(p, lr=1.0, normalize=optim.Adaptive(alpha)),
                               values=weights)
    for g, w, d in zip(blocks, weights, directions):
        expected = g.astype(np.float64) / reference_norm(g) * (alpha * reference_norm(w))
        np.testing.assert_allclose(d, expected, rtol=8 * eps(dtype), atol=readback(w, expected, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data(), coefficient=st.floats(0.5, 2.0), decay=st.one_of(st.just(0.0), st.floats(1e-6, 1.0)))
def test_lars_follows_its_formula_across_the_range(device, dtype, data, coefficient, decay):
    """LARS: d^i = (g^i + λx^i) · η‖x^i‖ / (‖g^i‖ + λ‖x^i‖), whatever the magnitudes of g^i and x^i."""
    sizes, blocks = data.draw(extreme_blocks(dtype, headroom=3))
    _, weights = data.draw(extreme_blocks(dtype, sizes, headroom=3))
    directions, _ = one_update(device, blocks, dtype, lambda p: optim.create(
        "lars", p, lr=1.0, momentum=0.0, trust_coefficient=coefficient, weight_decay=decay), values=weights)
    for g, w, d in zip(blocks, weights, directions):
        p = reference_norm(w)
        expected = (g.astype(np.float64) + decay * w.astype(np.float64)) / (reference_norm(g) + decay * p) * (coefficient * p)
        # g + λx is rounded in the dtype before it is scaled: up to eps·(|g| + λ|x|) per entry
        rounding = eps(dtype) * coefficient * p
        np.testing.assert_allclose(d, expected, rtol=8 * eps(dtype), atol=readback(w, expected, dtype) + rounding)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data(), decay=st.one_of(st.just(0.0), st.floats(1e-6, 1.0)))
def test_lamb_moves_every_block_by_lr_times_its_weight_norm_across_the_range(device, dtype, data, decay):
    """LAMB's trust ratio: ‖x^i_1 − x^i_0‖ = lr ‖x^i_0‖, whatever the magnitudes of x^i and of Adam's step."""
    # Adam's second moment holds d²: gradients stay within the square root of the dtype's range, as in PyTorch
    finfo = np.finfo(dtype)
    sizes, blocks = data.draw(extreme_blocks(dtype, headroom=finfo.maxexp // 2 + 2))
    _, weights = data.draw(extreme_blocks(dtype, sizes, headroom=3))
    lr = 0.5
    updates, _ = one_update(device, blocks, dtype, lambda p: optim.create("lamb", p, lr=lr, weight_decay=decay),
                            values=weights)
    for w, u in zip(weights, updates):
        target = lr * reference_norm(w)
        assert abs(reference_norm(u) - target) <= 8 * eps(dtype) * target + math.sqrt(len(w)) * readback(w, u, dtype)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # NaN and ∞ in, on purpose
@pytest.mark.parametrize("name", optim.preset_names())
def test_every_preset_steps_on_subnormal_nan_and_infinite_blocks(device, name):
    """A float32 block of subnormal numbers gets a finite step; a NaN or ∞ in one block is reported in
    ``block_norms`` (for the Trainer's guard) and never raises, whatever the preset (AdaGradBNG included)."""
    tiny = float(np.finfo(np.float32).smallest_subnormal) * 4
    for bad in (tiny, np.nan, np.inf):
        params = [Parameter(on(device, np.full(3, 0.5, np.float32))), Parameter(on(device, np.ones(2, np.float32)))]
        opt = optim.create(name, params)
        params[0].grad[...] = on(device, np.array([bad, -bad, bad], np.float32))
        params[1].grad[...] = on(device, np.array([1.0, 2.0], np.float32))
        opt.step()
        norms = host(opt.block_norms)
        assert np.isfinite(host(params[1].data)).all()
        if bad == tiny:
            assert np.isfinite(host(params[0].data)).all() and norms[0] > 0
        else:
            assert not np.isfinite(norms[0])
