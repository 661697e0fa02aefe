"""MaxPool2d, AvgPool2d, GlobalAvgPool2d: naive-loop references, gradient checks, ties, purity, dtypes, errors, and
averages at both ends of the float32 range."""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng.gradcheck import check
from minibng.nn.containers import Sequential
from minibng.nn.pool import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from support import host, on, run_forward_backward


@st.composite
def pool_geometries(draw):
    """Tiny shapes, kernels, strides (None = the kernel) and paddings ≤ kernel/2, the input at least one window."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    height = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 6))
    width = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 6))
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), height, width), kernel=kernel,
                stride=stride, padding=padding, seed=draw(st.integers(0, 2**31)))


def distinct_values(shape, seed):
    """Values at least 0.1 apart, so no window has a tie within a finite-difference step."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))) * 0.1 + rng.uniform(-0.01, 0.01, shape).ravel()).reshape(shape)


def windows(x, kernel, stride, padding, fill):
    """Yield (h, w, window, origin) for every output position of a pool over x padded with ``fill``."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride or kernel, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    for h in range((xp.shape[2] - kh) // sh + 1):
        for w in range((xp.shape[3] - kw) // sw + 1):
            yield h, w, xp[:, :, sh * h:sh * h + kh, sw * w:sw * w + kw], (sh * h - ph, sw * w - pw)


def naive_max_pool(x, dy, kernel, stride, padding):
    """Forward and backward one window at a time; the gradient goes to the first maximum in row-major order."""
    y = np.zeros(dy.shape if dy is not None else (0,))
    dx = np.zeros_like(x)
    for h, w, win, (top, left) in windows(x, kernel, stride, padding, -np.inf):
        for n, c in np.ndindex(*x.shape[:2]):
            flat = win[n, c].ravel()
            first = int(np.argmax(flat))
            y[n, c, h, w] = flat[first]
            i, j = divmod(first, kernel[1])
            dx[n, c, top + i, left + j] += dy[n, c, h, w]
    return y, dx


def naive_avg_pool(x, dy, kernel, stride, padding):
    y = np.zeros(dy.shape)
    dxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]))
    (kh, kw), (sh, sw) = kernel, stride or kernel
    for h, w, win, _ in windows(x, kernel, stride, padding, 0.0):
        y[:, :, h, w] = win.sum(axis=(2, 3)) / (kh * kw)
        dxp[:, :, sh * h:sh * h + kh, sw * w:sw * w + kw] += dy[:, :, h, w, None, None] / (kh * kw)
    return y, dxp[:, :, padding[0]:padding[0] + x.shape[2], padding[1]:padding[1] + x.shape[3]]


@pytest.mark.parametrize("layer_class, reference", [(MaxPool2d, naive_max_pool), (AvgPool2d, naive_avg_pool)])
@given(g=pool_geometries())
def test_pool_matches_naive_reference_and_finite_differences(device, layer_class, reference, g):
    layer = layer_class(g["kernel"], g["stride"], g["padding"])
    x_host = distinct_values(g["shape"], g["seed"])
    x = on(device, x_host)
    y, dy, dx = run_forward_backward(layer, x, dy_seed=g["seed"] + 1)
    y_ref, dx_ref = reference(x_host, host(dy), g["kernel"], g["stride"], g["padding"])
    np.testing.assert_allclose(host(y), y_ref, rtol=0, atol=1e-8)
    np.testing.assert_allclose(host(dx), dx_ref, rtol=0, atol=1e-8)
    check(layer, x, seed=g["seed"] + 2)


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
       seed=st.integers(0, 2**31))
def test_global_avg_pool(device, shape, seed):
    x_host = np.random.default_rng(seed).standard_normal(shape)
    layer = GlobalAvgPool2d()
    y, dy, dx = run_forward_backward(layer, on(device, x_host), dy_seed=seed + 1)
    n, c, h, w = shape
    expected = np.array([[sum(x_host[a, b, i, j] for i in range(h) for j in range(w)) / (h * w)
                          for b in range(c)] for a in range(n)])
    np.testing.assert_allclose(host(y), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(host(dx), np.broadcast_to(host(dy)[:, :, None, None] / (h * w), shape), atol=1e-15)
    check(layer, on(device, x_host), seed=seed + 2)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum(device):
    x = on(device, np.array([[[[1.0, 3.0, 3.0, 0.0],
                               [3.0, 2.0, 0.0, 3.0]]]]))
    layer = MaxPool2d(2)
    y = layer(x)
    dx = layer.backward(on(device, np.array([[[[5.0, 7.0]]]])))
    np.testing.assert_array_equal(host(y), [[[[3.0, 3.0]]]])
    np.testing.assert_array_equal(host(dx), [[[[0, 5.0, 7.0, 0], [0, 0, 0, 0]]]])


def test_max_pool_propagates_nan_and_ignores_the_padding(device):
    x = on(device, np.array([[[[-5.0, np.nan], [-7.0, -6.0]]]]))
    y = host(MaxPool2d(3, stride=1, padding=1)(x))
    assert np.isnan(y).all()
    y = host(MaxPool2d(2, stride=1, padding=1)(on(device, np.full((1, 1, 2, 2), -5.0))))
    np.testing.assert_array_equal(y, -5.0)  # -inf padding never wins, even over negative values


def test_avg_pool_counts_the_padding(device):
    y = host(AvgPool2d(3, stride=1, padding=1)(on(device, np.ones((1, 1, 2, 2)))))
    np.testing.assert_allclose(y, 4 / 9)  # PyTorch's count_include_pad=True


AVERAGES = [(lambda: AvgPool2d(2), ((2, 2), None, (0, 0))), (lambda: AvgPool2d(3, 1, 1), ((3, 3), (1, 1), (1, 1))),
            (GlobalAvgPool2d, None)]


def float64_average(x, y, geometry):
    """What a pool with ``geometry`` (kernel, stride, padding; None for the global mean) that gave ``y`` computes,
    in float64."""
    x = x.astype(np.float64)
    return x.mean(axis=(2, 3)) if geometry is None else naive_avg_pool(x, np.zeros(y.shape), *geometry)[0]


@pytest.mark.parametrize("make, geometry", AVERAGES)
@given(exponent=st.floats(37.0, 38.5), seed=st.integers(0, 2**31 - 1))
def test_averages_of_values_near_the_largest_float32_do_not_overflow(device, make, geometry, exponent, seed):
    """k values near 2e38 sum beyond float32's largest number (3.4e38) although their mean does not: the mean
    is finite and exact to float32 precision (the padded pool also averages in zeros), without a warning."""
    rng = np.random.default_rng(seed)
    x = (rng.uniform(0.5, 1.0, (2, 2, 4, 4)) * 10 ** exponent * rng.choice([-1, 1], (2, 2, 1, 1)))
    x = np.clip(x, -3.4e38, 3.4e38).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = host(make()(on(device, x)))
    expected = float64_average(x, y, geometry)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    np.testing.assert_allclose(y, expected, rtol=4e-7)


@pytest.mark.parametrize("make, geometry", AVERAGES)
def test_averages_of_subnormal_values_are_summed_before_they_are_divided(make, geometry):
    """The sum of subnormal numbers is exact, so the mean is rounded once (on the CPU; a GPU flushes them)."""
    smallest = float(np.finfo(np.float32).smallest_subnormal)
    x = (np.arange(1, 17, dtype=np.float64).reshape(1, 1, 4, 4) * smallest).astype(np.float32)
    y = host(make()(x))
    expected = float64_average(x, y, geometry).astype(np.float32)                  # one rounding
    np.testing.assert_array_equal(y, expected)


def test_an_infinite_value_still_makes_an_infinite_average(device):
    x = np.full((1, 1, 2, 4), 3e38, np.float32)
    x[0, 0, 0, 0] = np.inf
    y = host(AvgPool2d(2)(on(device, x)))
    assert y[0, 0, 0, 0] == np.inf and y[0, 0, 0, 1] == np.float32(3e38)
    assert host(GlobalAvgPool2d()(on(device, x)))[0, 0] == np.inf


def test_global_average_of_an_empty_image_is_refused(device):
    with pytest.raises(ValueError, match=r"expected a non-empty spatial extent, got input of shape \(2, 3, 0, 4\)"):
        GlobalAvgPool2d()(on(device, np.zeros((2, 3, 0, 4), np.float32)))


@pytest.mark.parametrize("make", [lambda: MaxPool2d(2), lambda: AvgPool2d(3, 2, 1), GlobalAvgPool2d])
def test_float32_in_float32_out(device, make):
    x = on(device, np.random.default_rng(0).standard_normal((2, 3, 6, 5)).astype(np.float32))
    y, _, dx = run_forward_backward(make(), x)
    assert y.dtype == dx.dtype == np.float32


@pytest.mark.parametrize("make", [lambda: MaxPool2d(2), lambda: AvgPool2d(2), GlobalAvgPool2d])
def test_backward_needs_a_training_forward(device, make):
    layer = make().eval()
    y = layer(on(device, np.zeros((1, 1, 4, 4))))
    with pytest.raises(RuntimeError, match="without a forward pass in training mode"):
        layer.backward(y + 1)


@pytest.mark.parametrize("make, shape, message", [
    (lambda: MaxPool2d(3), (2, 3, 2, 8), r"spatial size \(2, 8\) padded to \(2, 8\) is smaller than the kernel"),
    (lambda: AvgPool2d(2), (3, 4, 4), r"expected input of rank 4, got shape \(3, 4, 4\)"),
    (GlobalAvgPool2d, (3, 4), r"expected input of rank 4, got shape \(3, 4\)"),
])
def test_bad_inputs_name_the_layer(device, make, shape, message):
    model = Sequential(make())
    with pytest.raises(ValueError, match=r"layer '0' \(\w+Pool2d\).*" + message):
        model(on(device, np.zeros(shape, np.float32)))


def test_wrong_upstream_gradient_shape_is_rejected(device):
    layer = MaxPool2d(2)
    layer(on(device, np.zeros((1, 2, 4, 4))))
    with pytest.raises(ValueError, match=r"upstream gradient of shape \(1, 2, 2, 2\).*got \(1, 2, 4, 4\)"):
        layer.backward(on(device, np.zeros((1, 2, 4, 4))))


@pytest.mark.parametrize("make, message", [
    (lambda: MaxPool2d(3, padding=2), "padding must be at most half the kernel size"),
    (lambda: AvgPool2d(0), "kernel_size must be"),
    (lambda: MaxPool2d(2, stride=0), "stride must be"),
])
def test_invalid_hyperparameters_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()
