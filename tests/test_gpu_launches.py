"""minibng.gpu.kernels' launches (the ranges of the two-level reductions, grids, argument order, dtype checks) run on
the CPU through tests/fake_cupy.py, whose kernels read their arguments as the .cu files declare them and compute
with the host twins: every launch must give its twin's result bit for bit."""
import numpy as np
import pytest

import fake_cupy
import gpu_twins
from minibng import backend
from minibng.gpu import kernels

TILE = kernels.TILE


@pytest.fixture(autouse=True)
def cupy(monkeypatch):
    fake_cupy.install(monkeypatch)
    kernels._module.cache_clear()
    yield
    kernels._module.cache_clear()


@pytest.mark.parametrize("sizes", [[3, 1, 255, 256, 257], [1, TILE + 1, 0, 3 * TILE + 5, 2]],
                         ids=["one level", "two levels"])
@pytest.mark.parametrize("op", ["sum", "sum_of_squares", "max_abs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segment_reductions_equal_their_twin(sizes, op, dtype):
    rng = np.random.default_rng(0)
    values = (rng.standard_normal(sum(sizes)) * 2.0 ** rng.integers(-140, 100, sum(sizes))).astype(dtype)
    scales = 2.0 ** rng.integers(-5, 5, len(sizes)) if op == "sum_of_squares" else None
    out = np.full(len(sizes), np.nan)
    segments = kernels.Segments(sizes, fake_cupy.module())
    assert kernels.segment_reduce(op, values, segments, out, scales) is out
    np.testing.assert_array_equal(out, gpu_twins.segment_reduce(op, values, sizes, scales))


def test_segment_reductions_refuse_an_out_that_is_not_float64_or_values_they_cannot_decode():
    segments = kernels.Segments([2, 2], fake_cupy.module())
    with pytest.raises(TypeError, match="contiguous float64 array of 2 elements"):
        kernels.segment_reduce("sum", np.ones(4, np.float32), segments, np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="float32 or float64 arrays only, got float16"):
        kernels.segment_reduce("sum", np.ones(4, np.float16), segments, np.zeros(2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_scale_launch_equals_its_twin_in_place_too(dtype):
    rng = np.random.default_rng(1)
    values = (rng.standard_normal(1000) * 1e-38).astype(dtype)
    block_ids = np.repeat(np.arange(3), [1, 600, 399])
    divisor, multiplier = np.array([1.0, 1e-10, 3.0]), np.array([2.0, 1e-30, 1e40])
    expected = gpu_twins.scale_blocks(values, divisor, multiplier, block_ids)
    np.testing.assert_array_equal(kernels.scale_blocks(values, divisor, multiplier, block_ids, values), expected)
    np.testing.assert_array_equal(values, expected)
    with pytest.raises(TypeError, match="out must be contiguous like v"):
        kernels.scale_blocks(values, divisor, multiplier, block_ids, np.empty(1000, np.float16))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_streams_on_the_gpu_draw_philox_keyed_by_their_seed_sequence(dtype, monkeypatch):
    """RandomStream's GPU branch: draw k of rank r is Philox under two words of the seed sequence of (seed, k, r)."""
    cupy = fake_cupy.module()
    stream = backend.RandomStream(seed=11)
    first, second = stream.random((3, 5), cupy, dtype), stream.random((7,), cupy, dtype)
    assert first.shape == (3, 5) and first.dtype == dtype
    key = lambda *entropy: np.random.SeedSequence(list(entropy)).generate_state(2)  # noqa: E731
    np.testing.assert_array_equal(first.ravel(), gpu_twins.uniform(15, dtype, key(11, 1)))
    np.testing.assert_array_equal(second, gpu_twins.uniform(7, dtype, key(11, 2)))
    monkeypatch.setattr(backend.RandomStream, "rank", 2)
    stream.set_state((11, 0))
    np.testing.assert_array_equal(stream.random((4,), cupy, dtype), gpu_twins.uniform(4, dtype, key(11, 1, 2)))
    with pytest.raises(TypeError, match="random draws on the GPU: float32 or float64 arrays only"):
        stream.random((2,), cupy, np.float16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_scatter_add_launch_equals_its_twin(dtype):
    rng = np.random.default_rng(2)
    ids, rows = rng.integers(0, 9, 200), rng.standard_normal((200, 4)).astype(dtype)
    target = rng.standard_normal((9, 4)).astype(dtype)
    expected = gpu_twins.scatter_add(target, ids, rows)
    np.testing.assert_array_equal(kernels.scatter_add(target, ids, rows), expected)
    with pytest.raises(TypeError, match="values of its dtype"):
        kernels.scatter_add(target, ids, rows.astype(np.float16))
