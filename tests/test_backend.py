import math
import types
import warnings

import numpy as np
import pytest

from minibng import backend


class FakeCupyArray(np.ndarray):
    """A NumPy array that reports itself as a CuPy array (to test mixing without a GPU)."""


FakeCupyArray.__module__ = "cupy._core.core"


def test_numpy_arrays_select_numpy():
    assert backend.get_array_module(np.zeros(2), 3.0, None) is np


def test_mixing_numpy_and_cupy_is_a_type_error_naming_both():
    fake = np.zeros(2).view(FakeCupyArray)
    with pytest.raises(TypeError, match=r"argument 0: NumPy, argument 1: CuPy"):
        backend.get_array_module(np.zeros(2), fake)


@pytest.mark.parametrize("text, parsed", [("cpu", ("cpu", None)), ("gpu", ("gpu", None)), ("gpu:3", ("gpu", 3)),
                                          ("cuda:1", ("gpu", 1))])
def test_device_strings(text, parsed):
    assert backend.parse_device(text) == parsed


@pytest.mark.parametrize("bad", ["tpu", "gpu:x", "cpu:0", ""])
def test_unknown_device_strings_are_rejected(bad):
    with pytest.raises(ValueError, match="unknown device"):
        backend.parse_device(bad)


def test_gpu_without_cupy_says_what_to_install(monkeypatch):
    monkeypatch.setattr(backend, "cupy_or_none", lambda: None)
    with pytest.raises(RuntimeError, match=r"pip install .*minibng\[gpu\]"):
        backend.to_device(np.zeros(3), "gpu")


def test_transfers_round_trip(device):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    moved = backend.to_device(a, device)
    assert backend.device_of(moved).startswith(device)
    np.testing.assert_array_equal(backend.asnumpy(moved), a)


def test_scatter_add_accumulates_repeated_indices(device):
    target = backend.to_device(np.zeros((4, 2)), device)
    indices = backend.to_device(np.array([1, 3, 1, 1]), device)
    values = backend.to_device(np.arange(8.0).reshape(4, 2), device)
    backend.scatter_add(target, indices, values)
    expected = np.zeros((4, 2))
    for i, k in enumerate([1, 3, 1, 1]):
        expected[k] += np.arange(8.0).reshape(4, 2)[i]
    np.testing.assert_array_equal(backend.asnumpy(target), expected)


def segments_on(device, sizes):
    return backend.Segments(sizes, backend.array_module_for(device))


@pytest.mark.parametrize("dtype, eps", [(np.float64, 2.0 ** -52), (np.float32, 2.0 ** -23)])
def test_segment_sum_equals_a_loop_over_segments(device, dtype, eps):
    """Segments shorter and far longer than a GPU thread block's 256 threads and than one level-1 range, a large one
    before small ones; every sum within 64·eps·Σ|v| of the float64 sum (a summation order's rounding, however the
    terms are grouped; the GPU sums in float64)."""
    sizes = [1, 5000, 3, 257, 1, 40000, 2]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    scales = np.repeat(10.0 ** np.arange(-3, 4), sizes)
    values = (np.random.default_rng(0).standard_normal(sum(sizes)) * scales).astype(dtype)
    out = backend.to_device(np.full(len(sizes), np.nan, dtype=dtype if device == "cpu" else np.float64), device)
    result = backend.segment_sum(backend.to_device(values, device), segments_on(device, sizes), out=out)
    assert result is out
    exact = np.array([values[a:a + n].astype(np.float64).sum() for a, n in zip(starts, sizes)])
    magnitude = np.array([np.abs(values[a:a + n]).astype(np.float64).sum() for a, n in zip(starts, sizes)])
    assert np.all(np.abs(backend.asnumpy(out) - exact) <= 64 * eps * magnitude)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_segment_max_abs_and_the_sum_of_squares(device, dtype):
    """max |v| per segment (NaN wins), and Σ (s_i v)² in float64, both against per-segment loops."""
    sizes = [1, 5000, 3, 257, 2, 9000]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    values = (np.random.default_rng(1).standard_normal(sum(sizes)) * 1e3).astype(dtype)
    values[starts[3] + 5] = np.nan
    device_values, segments = backend.to_device(values, device), segments_on(device, sizes)
    largest = backend.to_device(np.zeros(len(sizes), dtype if device == "cpu" else np.float64), device)
    backend.segment_max_abs(device_values, segments, largest, backend.to_device(np.empty_like(values), device))
    expected = [np.abs(values[a:a + n]).max() for a, n in zip(starts, sizes)]
    np.testing.assert_array_equal(backend.asnumpy(largest), expected)
    powers = 2.0 ** np.arange(-len(sizes), 0)
    squares = backend.to_device(np.zeros(len(sizes)), device)
    backend.segment_sum_of_squares(device_values, segments, squares, backend.to_device(powers, device))
    exact = [math.fsum((float(v) * s) ** 2 for v in values[a:a + n]) for a, n, s in zip(starts, sizes, powers)]
    np.testing.assert_allclose(backend.asnumpy(squares), exact, rtol=1e-13)
    assert backend.asnumpy(squares).dtype == np.float64


def test_random_stream_replays_from_its_state(device):
    xp = backend.get_array_module(backend.to_device(np.zeros(1), device))
    stream = backend.RandomStream(seed=7)
    first = backend.asnumpy(stream.random((3, 4), xp, np.float32))
    state = stream.state()
    second = backend.asnumpy(stream.random((3, 4), xp, np.float32))
    assert first.dtype == np.float32 and not np.array_equal(first, second)
    stream.set_state(state)
    np.testing.assert_array_equal(backend.asnumpy(stream.random((3, 4), xp, np.float32)), second)


def test_manual_seed_makes_initialization_reproducible():
    from minibng import nn

    backend.manual_seed(3)
    a = nn.Linear(4, 5).weight.data.copy()
    backend.manual_seed(3)
    b = nn.Linear(4, 5).weight.data.copy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(6,), (6, 3)])
def test_scatter_add_equals_add_at_for_random_repeats_and_no_indices(device, shape):
    rng = np.random.default_rng(0)
    indices = rng.integers(0, shape[0], 40)
    values = rng.standard_normal((40,) + shape[1:])
    expected = rng.standard_normal(shape)
    target = backend.to_device(expected.copy(), device)
    np.add.at(expected, indices, values)
    backend.scatter_add(target, backend.to_device(indices, device), backend.to_device(values, device))
    np.testing.assert_allclose(backend.asnumpy(target), expected, rtol=1e-12, atol=1e-12)
    backend.scatter_add(target, backend.to_device(indices[:0], device), backend.to_device(values[:0], device))
    np.testing.assert_allclose(backend.asnumpy(target), expected, rtol=1e-12, atol=1e-12)


def test_errors_ignored_silences_only_the_kinds_named():
    huge, zero = np.float32(3e38), np.float32(0)
    with pytest.warns(RuntimeWarning, match="divide by zero"), backend.errors_ignored(np, "over"):
        assert np.isinf(huge * huge)                   # overflow: silenced
        assert np.isinf(np.float32(1) / zero)          # division by zero: still warns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with backend.errors_ignored(np):               # no kind named: all four
            assert np.isnan(zero / zero) and np.isinf(huge * huge)


def test_errors_ignored_is_a_context_that_does_nothing_where_the_library_has_no_errstate():
    """CuPy has no errstate (it warns of nothing): the same code runs there."""
    without_errstate = types.SimpleNamespace()
    with backend.errors_ignored(without_errstate, "over") as entered:
        assert entered is None
