"""σ, tanh and their slopes against exact math (Python's decimal, 50 digits) over the whole finite range of
float32 and float64: relative error in units of the dtype's ε where the true value is a normal number, absolute
error in units of the smallest subnormal below that.  Also the layers that use them (Sigmoid, Tanh)."""
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng import nn
from minibng.nn.activation import sigmoid, tanh
from support import host, on

DTYPES = [np.float32, np.float64]
ULPS = 6          # measured: at most 3.3 ε (float32, sech²), NumPy's and CUDA's exp and cosh are within 2 ulp
SATURATED = [0.0, 17.0, 20.0, 50.0, 87.0, 100.0, 700.0]


def exact_sigmoid_and_slope(x):
    """σ(x) and σ′(x) = e/(1 + e)², e = e^{−|x|}, as Decimals (50 digits: no rounding that float64 could see)."""
    with localcontext() as context:
        context.prec = 50
        d = Decimal(float(x))
        e = (-abs(d)).exp()
        return (1 / (1 + e) if d >= 0 else e / (1 + e)), e / (1 + e) ** 2


def exact_tanh_and_slope(x):
    """tanh x and sech²x = 4e/(1 + e)², e = e^{−2|x|}; tanh by its series where 1 − e would cancel."""
    with localcontext() as context:
        context.prec = 50
        d = Decimal(float(x))
        e = (-2 * abs(d)).exp()
        if abs(d) < Decimal("1e-3"):
            value = d - d ** 3 / 3 + 2 * d ** 5 / 15 - 17 * d ** 7 / 315 + 62 * d ** 9 / 2835
        else:
            value = (1 - e) / (1 + e) * (1 if d > 0 else -1)
        return value, 4 * e / (1 + e) ** 2


EXACT = {"sigmoid": exact_sigmoid_and_slope, "tanh": exact_tanh_and_slope}
COMPUTED = {"sigmoid": sigmoid, "tanh": tanh}


def whole_range(dtype):
    """Both signs of 600 magnitudes spread over every binade from the smallest subnormal to the largest number,
    the saturated points that tests name, and ±0."""
    info = np.finfo(dtype)
    exponents = np.linspace(np.log2(float(info.smallest_subnormal)), np.log2(float(info.max)), 600)
    magnitudes = np.concatenate([np.exp2(exponents[:-1]), [info.max], SATURATED]).astype(dtype)
    return np.concatenate([magnitudes, -magnitudes, np.array([-0.0], dtype)])


def errors(computed, exact, dtype, device):
    """Per value: the error in units of ε (relative) where the exact value is normal, else in units of the
    smallest subnormal (absolute) — except on a GPU in float32, whose kernels flush subnormals to 0 (CuPy compiles
    with -ftz=true): there the allowance below the smallest normal number is that number itself."""
    info = np.finfo(dtype)
    flushes = device != "cpu" and dtype == np.float32
    tiny, subnormal, eps = Decimal(float(info.tiny)), Decimal(float(info.smallest_subnormal)), Decimal(float(info.eps))
    out = []
    for got, true in zip(computed, exact):
        gap = abs(Decimal(float(got)) - true)
        if abs(true) >= tiny:
            out.append(float(gap / abs(true) / eps))
        else:
            out.append(float(gap / (tiny / ULPS if flushes else subnormal)))
    return np.array(out)


def values_and_slopes(name, device, x_host):
    x = on(device, x_host)
    slope = x.copy()
    value = COMPUTED[name](x, slope=slope)
    return host(value), host(slope)


def where_exp_is_finite(x):
    """The values x ≤ ⌊ln max⌋ of ``x`` (88 in float32, 709 in float64): an array of only those takes σ's form from
    eˣ on the host; an array with any larger value takes its form from e^{−|x|}."""
    return x[x <= np.floor(np.log(np.finfo(x.dtype).max))]


PARTS = {"all at once": lambda x: x, "where e^x is finite": where_exp_is_finite}


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_values_and_slopes_are_exact_over_the_whole_finite_range(device, name, dtype, part):
    x = PARTS[part](whole_range(dtype))
    value, slope = values_and_slopes(name, device, x)
    exact = [EXACT[name](v) for v in x]
    for what, got, true in (("value", value, [e[0] for e in exact]), ("slope", slope, [e[1] for e in exact])):
        worst = errors(got, true, dtype, device)
        assert worst.max() <= ULPS, f"{name} {what} at x = {x[worst.argmax()]!r}: {worst.max():.2f} units off"
        assert got.dtype == dtype


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@given(x=st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_values_and_slopes_are_exact_anywhere(device, name, x):
    value, slope = values_and_slopes(name, device, np.array([x], np.float32))
    true_value, true_slope = EXACT[name](np.float32(x))
    assert errors(value, [true_value], np.float32, device)[0] <= ULPS
    assert errors(slope, [true_slope], np.float32, device)[0] <= ULPS


@pytest.mark.parametrize("dtype", DTYPES)
def test_saturated_units_keep_a_non_zero_slope_wherever_it_is_representable(dtype):
    """What y(1 − y) and 1 − y² lost: in float32 σ(x) rounds to 1 from x ≈ 17 and tanh x to 1 from x ≈ 9.0, so
    those slopes were 0, while σ′(17) = 4.14e-8, σ′(±100) = 3.7e-44 and sech²10 = 8.24e-9.  (On the CPU: a GPU
    flushes float32 subnormals to 0.)"""
    x = np.array([17, -17, 20, -20, 50, -50, 87, -87, 100, -100], dtype)
    _, slope = values_and_slopes("sigmoid", "cpu", x)
    assert (slope > 0).all()
    assert abs(float(slope[0]) / 4.1399375473e-8 - 1) < 1e-6 and abs(float(slope[-1]) / 3.720076e-44 - 1) < 0.03
    x = np.array([9.5, -9.5, 10, 20, -30, 50, 51], dtype)
    _, slope = values_and_slopes("tanh", "cpu", x)
    assert (slope > 0).all()
    assert abs(float(slope[2]) / 8.24461455e-9 - 1) < 1e-6


@pytest.mark.filterwarnings("error")   # cosh's overflow to ∞ is intended there, and NumPy must not warn of it
def test_beyond_the_range_of_the_slope_the_values_are_exact_limits():
    x = np.array([np.inf, -np.inf, 200, -200, 1e38, -1e38], np.float32)
    value, slope = values_and_slopes("sigmoid", "cpu", x)
    np.testing.assert_array_equal(value, [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(slope, 0)
    value, slope = values_and_slopes("tanh", "cpu", x)
    np.testing.assert_array_equal(value, [1, -1, 1, -1, 1, -1])
    np.testing.assert_array_equal(slope, 0)
    for name in ("sigmoid", "tanh"):
        value, slope = values_and_slopes(name, "cpu", np.array([np.nan], np.float32))
        assert np.isnan(value).all() and np.isnan(slope).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_the_functions_write_in_place_and_leave_the_input_alone_otherwise(device, name, dtype):
    x_host = np.linspace(-30, 30, 13).astype(dtype)
    expected_value, expected_slope = values_and_slopes(name, device, x_host)
    x = on(device, x_host)
    slope = x.copy()
    assert COMPUTED[name](x, out=x, slope=slope) is x                    # the LSTM's gates are computed so
    np.testing.assert_array_equal(host(x), expected_value)
    np.testing.assert_array_equal(host(slope), expected_slope)
    x = on(device, x_host)
    COMPUTED[name](x)
    np.testing.assert_array_equal(host(x), x_host)


LAYERS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_layers_pass_the_exact_slope_backward_in_both_tails(device, name, dtype):
    """dx = dy · f′(x) for saturated inputs too (a random dy; an eval-mode forward caches nothing)."""
    x_host = np.array([-100, -50, -20, -17, -9, 0.5, 9, 17, 20, 50, 100], dtype)
    dy_host = np.random.default_rng(0).uniform(0.5, 2, x_host.shape).astype(dtype)
    layer = LAYERS[name]()
    y = layer(on(device, x_host))
    dx = host(layer.backward(on(device, dy_host)))
    value, slope = values_and_slopes(name, device, x_host)
    np.testing.assert_array_equal(host(y), value)
    np.testing.assert_array_equal(dx, dy_host * slope)
    assert dx.dtype == dtype
    layer.eval()
    layer(on(device, x_host))
    assert layer._saved is None
