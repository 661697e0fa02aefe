"""Hyperparameters that would vanish in the parameters' dtype are refused before anything is packed; the smallest
accepted ones keep every step finite."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng import optim
from minibng.nn.module import Parameter
from minibng.optim.rules import AdamRule
from support import host, on

EPS_OPTIONS = [(optim.Adam, "eps"), (optim.AdaGrad, "eps"), (optim.RMSProp, "eps"), (optim.AdaGradBNG, "delta")]


def smallest_accepted(make, dtype):
    """The bound the refusal names: ε·√(1 − β₂) for Adam, ε itself for the others, at the smallest normal number."""
    tiny = float(np.finfo(dtype).tiny)
    return tiny / math.sqrt(1 - 0.999) if make is optim.Adam else tiny


def parameters(device, dtype):
    return [Parameter(on(device, np.linspace(-1, 1, 12, dtype=dtype).reshape(3, 4))),
            Parameter(on(device, np.ones(5, dtype)))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make, option", EPS_OPTIONS)
def test_an_eps_just_below_the_bound_is_refused_and_one_at_it_accepted(device, make, option, dtype):
    bound = smallest_accepted(make, dtype)
    with pytest.raises(ValueError, match=fr"{option}=.* vanishes in {np.dtype(dtype).name}"):
        make(parameters(device, dtype), **{option: bound * 0.99})
    make(parameters(device, dtype), **{option: bound * 1.01})


@pytest.mark.parametrize("make, option", EPS_OPTIONS)
@given(exponent=st.floats(0.0, 30.0), steps=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_an_accepted_eps_keeps_zero_gradient_coordinates_in_place(device, make, option, exponent, steps, seed):
    """With any ε the check lets through (from the bound up), a coordinate whose gradient has always been 0 moves
    by exactly 0 (0/ε), and every step is finite, in float32."""
    params = parameters(device, np.float32)
    before = [host(p.data).copy() for p in params]
    opt = make(params, **{option: smallest_accepted(make, np.float32) * 10 ** exponent})
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        gradient = rng.standard_normal((3, 4)).astype(np.float32)
        gradient[:, 0] = 0                                               # column 0 of the first: always 0
        params[0].grad[...] = on(device, gradient)
        params[1].grad[...] = 0
        opt.step()
    after = [host(p.data) for p in params]
    assert all(np.isfinite(a).all() for a in after)
    np.testing.assert_array_equal(after[0][:, 0], before[0][:, 0])
    np.testing.assert_array_equal(after[1], before[1])


def test_the_largest_float32_factor_below_1_is_accepted_and_one_that_rounds_to_1_refused(device):
    largest = float(np.nextafter(np.float32(1), np.float32(0)))              # 0.99999994
    optim.SGD(parameters(device, np.float32), lr=0.1, momentum=largest)
    with pytest.raises(ValueError, match="momentum=0.99999998 rounds to 1 in float32.*momentum ≤ 0.99999994"):
        optim.SGD(parameters(device, np.float32), lr=0.1, momentum=0.99999998)
    optim.SGD(parameters(device, np.float64), lr=0.1, momentum=0.99999998)


def test_a_rule_checks_its_hyperparameters_when_it_allocates_its_state(device):
    """Any optimizer built on a rule (not only the named ones) refuses: Rule.init_state calls check_dtype."""
    with pytest.raises(ValueError, match="eps=1e-300 vanishes in float32"):
        optim.Optimizer(parameters(device, np.float32), AdamRule(eps=1e-300), lr=0.1)
    optim.Optimizer(parameters(device, np.float64), AdamRule(eps=1e-300), lr=0.1)
