"""The arithmetic of the CUDA kernels, checked on any machine through their host twins (tests/gpu_twins.py: the same
algorithm in NumPy, bit decoding included; bench/gpu_check.sh checks that each kernel equals its twin bit for bit).

Float32 values are decoded from their bits (CuPy compiles with -ftz=true, which would flush subnormal numbers);
block norms sum exact float64 squares in one pass; references are ``math.fsum`` (correctly rounded)."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import gpu_twins
from minibng import backend
from minibng.gpu.kernels import THREADS, TILE

F32 = np.finfo(np.float32)


@given(bits=st.integers(0, 2**32 - 1))
def test_decoding_a_float32_from_its_bits_is_exact_for_every_bit_pattern(bits):
    value = np.array([bits], dtype=np.uint32).view(np.float32)
    decoded = gpu_twins.exact_double(value)
    expected = value.astype(np.float64)       # the CPU's conversion flushes nothing
    assert decoded.dtype == np.float64
    np.testing.assert_array_equal(decoded, expected)
    assert np.signbit(decoded[0]) == np.signbit(expected[0])


@given(value=st.one_of(st.floats(allow_nan=False), st.floats(-2.0 ** -120, 2.0 ** -120),
                       st.integers(0, 2**24).map(lambda k: (k + 0.5) * 2.0 ** -149)))   # ties between subnormals
def test_storing_a_double_as_float32_rounds_once_to_nearest_even_subnormal_results_kept(value):
    with np.errstate(over="ignore"):
        expected = np.array([value]).astype(np.float32)
    np.testing.assert_array_equal(gpu_twins.stored(np.array([value]), np.float32), expected)
    assert np.signbit(gpu_twins.stored(np.array([value]), np.float32)[0]) == np.signbit(expected[0])


def fsum_norm(block):
    return math.sqrt(math.fsum(float(v) ** 2 for v in block))   # each float32 square is exact in a float64


def summation_depth(n):
    """The most roundings one square meets in the two-level sum: its thread's run, the tree, and level 2's."""
    ranges = max(1, -(-n // TILE))
    return -(-min(n, TILE) // THREADS) + 8 + -(-ranges // THREADS) + 8


SIZES = [1, 255, 256, 257, TILE - 1, TILE + 1, 10**6]


@pytest.mark.parametrize("kind", ["normal", "subnormal", "huge", "mixed"])
def test_sums_of_squares_of_float32_segments_are_exact_to_float64_rounding(kind):
    """Segments of 1, 255–257 and a million entries: ‖v^i‖ within (depth · 2^-53) of the correctly rounded norm,
    for subnormal blocks (every square below the smallest float32), huge ones (squares above the largest) and
    blocks mixing both with zeros."""
    rng = np.random.default_rng(len(kind))
    values = rng.standard_normal(sum(SIZES))
    if kind == "subnormal":
        values = values * 2.0 ** -140
    elif kind == "huge":
        values = values * 2.0 ** 120
    elif kind == "mixed":
        values = values / 8 * 2.0 ** rng.integers(-149, 125, values.size)
        values[3::7] = 0.0
    values = values.astype(np.float32)
    assert not kind == "subnormal" or np.abs(values).max() < F32.tiny
    norms = np.sqrt(gpu_twins.segment_reduce("sum_of_squares", values, SIZES))
    start = 0
    for n, norm in zip(SIZES, norms):
        expected = fsum_norm(values[start:start + n])
        assert expected > 0 and abs(norm - expected) <= summation_depth(n) * 2.0 ** -53 * expected, (kind, n)
        start += n


def test_sums_of_squares_propagate_nan_and_infinity_and_give_zero_for_zero_or_empty_segments():
    values = np.array([1.0, np.nan, 2.0, np.inf, -np.inf, 0.0, -0.0, F32.smallest_subnormal], dtype=np.float32)
    sums = gpu_twins.segment_reduce("sum_of_squares", values, [2, 1, 2, 0, 2, 1])
    np.testing.assert_array_equal(sums, [np.nan, 4.0, np.inf, 0.0, 0.0, 2.0 ** -298])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_abs_and_sum_equal_numpy_and_fsum_across_ranges(dtype):
    sizes = [1, 257, TILE + 3, 3 * TILE]
    values = (np.random.default_rng(2).standard_normal(sum(sizes)) * 1e3).astype(dtype)
    values[300] = np.nan
    starts = np.cumsum(sizes) - sizes
    np.testing.assert_array_equal(gpu_twins.segment_reduce("max_abs", values, sizes),
                                  np.maximum.reduceat(np.abs(values).astype(np.float64), starts))
    sums = gpu_twins.segment_reduce("sum", values, sizes)
    exact = [math.fsum(values[a:a + n].astype(np.float64)) for a, n in zip(starts, sizes)]
    np.testing.assert_allclose(sums, exact, rtol=1e-12)


def test_scaled_squares_of_float64_blocks_near_the_ends_of_the_range():
    """The GPU's float64 norms: 2^{k_i} brings the largest magnitude into [½, 1), the kernel squares in float64."""
    blocks = [np.full(300, 1e-300), np.array([1e300, -1e300, 3e299]), np.full(TILE + 5, 3e-309)]   # 3e-309: subnormal
    values = np.concatenate(blocks)
    largest = gpu_twins.segment_reduce("max_abs", values, [len(b) for b in blocks])
    finfo = np.finfo(np.float64)
    shift = np.clip(-np.frexp(largest)[1], finfo.minexp, finfo.maxexp - 1)     # as Partition.scaled_norms
    sums = gpu_twins.segment_reduce("sum_of_squares", values, [len(b) for b in blocks], np.ldexp(1.0, shift))
    norms = np.ldexp(np.sqrt(sums), -shift)
    expected = [math.sqrt(300) * 1e-300, math.hypot(1e300, 1e300, 3e299), math.sqrt(TILE + 5) * 3e-309]
    np.testing.assert_allclose(norms, expected, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_scale_kernel_equals_the_float64_product_numpy_forms(dtype):
    """(v / q_b) · m_b in float64, rounded once: bit for bit what NumPy's float64 branch of Partition.scale gives,
    for subnormal, normal, huge, zero, NaN and ∞ entries and ratios that make results subnormal."""
    rng = np.random.default_rng(3)
    finfo = np.finfo(dtype)
    values = (rng.standard_normal(2000) * 2.0 ** rng.integers(finfo.minexp - finfo.nmant, finfo.maxexp, 2000))
    values = values.astype(dtype)
    values[:4] = [0.0, np.nan, np.inf, finfo.smallest_subnormal]
    block_ids = np.repeat(np.arange(4), 500)
    divisor = np.array([1.0, 3.0, 1e-300, 1.0])
    multiplier = np.array([1.0, 2.0 ** -20, 7.0, 1e30])
    with np.errstate(all="ignore"):
        expected = np.multiply(np.divide(values, divisor[block_ids]), multiplier[block_ids],
                               out=np.empty_like(values))
        twin = gpu_twins.scale_blocks(values, divisor, multiplier, block_ids)
    np.testing.assert_array_equal(twin.view(np.uint8), expected.view(np.uint8))


def test_the_philox_twin_gives_random123s_known_answers():
    cases = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
             ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
              (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for counter, key, expected in cases:
        words = gpu_twins.philox4x32_10([np.array([w], dtype=np.uint32) for w in counter], key)
        assert [int(w[0]) for w in words] == list(expected)


@pytest.mark.parametrize("dtype, bits", [(np.float32, 24), (np.float64, 53)])
def test_uniform_draws_are_in_the_unit_interval_on_a_grid_of_2_to_the_minus_bits(dtype, bits):
    draws = gpu_twins.uniform(100_001, dtype, (12345, 678))
    assert draws.dtype == dtype and draws.shape == (100_001,)
    assert draws.min() >= 0 and draws.max() < 1 and abs(draws.mean() - 0.5) < 0.005
    np.testing.assert_array_equal(draws * 2.0 ** bits, np.floor(draws * 2.0 ** bits))
    np.testing.assert_array_equal(gpu_twins.uniform(5, dtype, (12345, 678)), draws[:5])   # a prefix of the stream


def test_every_seed_counter_and_rank_keys_its_own_gpu_stream():
    """The GPU's key is two words of NumPy's seed sequence of (seed, counter[, rank]): the old key,
    seed · 1,000,003 + counter + rank · 2^40, made (s, c + 1,000,003) draw what (s + 1, c) drew."""
    def key(seed, counter, rank=0):
        return tuple(np.random.SeedSequence([seed, counter] + ([rank] if rank else [])).generate_state(2))

    triples = [(s, c, r) for s in (0, 1, 2, 2**62) for c in (1, 2, 1_000_004) for r in (0, 1, 3)]
    assert len({key(*t) for t in triples}) == len(triples)
    assert key(5, 1 + 1_000_003) != key(6, 1)
    first, second = (gpu_twins.uniform(1000, np.float32, key(*t)) for t in [(5, 1_000_004), (6, 1)])
    assert not np.array_equal(first, second)


def test_cpu_draws_did_not_change():
    """RandomStream on NumPy is PCG64 seeded by the seed sequence of [seed, counter]: default_rng's draws, pinned."""
    stream = backend.RandomStream(seed=7)
    draws = stream.random((3,), np, np.float64)
    np.testing.assert_array_equal(draws, np.random.default_rng([7, 1]).random(3))
    np.testing.assert_array_equal(stream.random((2,), np, np.float32),
                                  np.random.default_rng([7, 2]).random(2, np.float32))
    assert draws.tolist() == [0.7701409510034741, 0.1119272443176843, 0.18909773329712753]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_deterministic_scatter_add_equals_add_at(dtype):
    rng = np.random.default_rng(4)
    indices = rng.integers(0, 7, 60)
    values = rng.standard_normal((60, 3)).astype(dtype)
    values[0, 0] = np.finfo(dtype).smallest_subnormal
    target = rng.standard_normal((7, 3)).astype(dtype)
    expected = target.astype(np.float64)
    np.add.at(expected, indices, values.astype(np.float64))
    magnitude = np.abs(target).astype(np.float64)
    np.add.at(magnitude, indices, np.abs(values).astype(np.float64))
    error = np.abs(gpu_twins.scatter_add(target, indices, values) - expected)
    assert np.all(error <= 2 * np.finfo(dtype).eps * magnitude)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_partitions_gpu_branch_run_on_numpy_gives_the_kernels_norms(dtype):
    """Partition's GPU branch (no host checks; float32: one float64 sum of squares, float64: scaled in the
    kernel), run on NumPy arrays, against the twin of the kernels it launches and against fsum: subnormal, tiny,
    huge and one-entry blocks, and a block longer than one level-1 range."""
    from minibng.optim.partition import Partition

    finfo = np.finfo(dtype)
    blocks = [np.full(3, finfo.smallest_subnormal), np.full(257, 1e-30), np.array([finfo.max / 4] * 2),
              np.array([2.5]), np.random.default_rng(5).standard_normal(TILE + 9) * 1e-3]
    sizes, values = [len(b) for b in blocks], np.concatenate(blocks).astype(dtype)
    partition = Partition([f"b{i}" for i in range(len(sizes))], sizes, np, dtype)
    partition.on_host, partition.block_ids = False, np.repeat(np.arange(len(sizes)), sizes)
    norms = partition.norms(values)
    if dtype == np.float32:
        twin = np.sqrt(gpu_twins.segment_reduce("sum_of_squares", values, sizes))
    else:
        largest = gpu_twins.segment_reduce("max_abs", values, sizes)
        shift = np.clip(-np.frexp(largest)[1], finfo.minexp, finfo.maxexp - 1)
        sums = gpu_twins.segment_reduce("sum_of_squares", values, sizes, np.ldexp(1.0, shift))
        twin = np.ldexp(np.sqrt(sums), -shift)
    np.testing.assert_allclose(norms, twin, rtol=1e-15)
    expected = [math.hypot(*map(float, b)) for b in np.split(values, np.cumsum(sizes)[:-1])]
    np.testing.assert_allclose(norms, expected, rtol=1e-13)
