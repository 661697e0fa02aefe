"""Every step rule, with every normalizer, equals a plain per-block reference loop written in the tests."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng import optim
from minibng.nn.module import Parameter
from support import host, on
from test_optim_helpers import BlockProblem, algorithm2, block_gradients, make_params, reference_run, run_steps

pytestmark = pytest.mark.usefixtures("partition_path")   # NumPy's path and the GPU's, on NumPy

NORMALIZE = {None: None, "block": "block", "adaptive": optim.Adaptive(0.3), "clip": optim.Clip(0.5)}
NORMALIZE_ARGS = {"alpha": 0.3, "threshold": 0.5}

RULES = [
    ("sgd", lambda p, **kw: optim.SGD(p, lr=0.05, **kw), {}),
    ("sgd", lambda p, **kw: optim.SGD(p, lr=0.05, momentum=0.9, **kw), {"momentum": 0.9}),
    ("sgd", lambda p, **kw: optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3, **kw),
     {"momentum": 0.8, "dampening": 0.3}),
    ("sgd", lambda p, **kw: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, **kw),
     {"momentum": 0.9, "nesterov": True}),
    ("adagrad", lambda p, **kw: optim.AdaGrad(p, lr=0.05, **kw), {}),
    ("rmsprop", lambda p, **kw: optim.RMSProp(p, lr=0.01, **kw), {}),
    ("rmsprop", lambda p, **kw: optim.RMSProp(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, **kw),
     {"rms_alpha": 0.9, "momentum": 0.5, "centered": True}),
    ("adam", lambda p, **kw: optim.Adam(p, lr=0.01, **kw), {}),
    ("adam", lambda p, **kw: optim.Adam(p, lr=0.01, betas=(0.5, 0.9), eps=1e-6, **kw),
     {"betas": (0.5, 0.9), "eps": 1e-6}),
]
LR = {"sgd": 0.05, "adagrad": 0.05, "rmsprop": 0.01, "adam": 0.01}


@pytest.mark.parametrize("normalize", list(NORMALIZE))
@pytest.mark.parametrize("case", range(len(RULES)))
@given(problem=block_gradients(steps=4), weight_decay=st.sampled_from([0.0, 0.01]),
       decay=st.sampled_from(["after", "before"]))
def test_rule_equals_per_block_reference(device, case, normalize, problem, weight_decay, decay):
    rule, make, hyper = RULES[case]
    params = make_params(device, problem)
    opt = make(params, normalize=NORMALIZE[normalize], weight_decay=weight_decay, decay=decay)
    got = run_steps(opt, params, problem)
    expected = reference_run(rule, problem, LR[rule], normalize, weight_decay, decay, **NORMALIZE_ARGS, **hyper)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


@given(problem=block_gradients(steps=4))
def test_momentum_zero_equals_plain_sgd(device, problem):
    a, b = make_params(device, problem), make_params(device, problem)
    with_zero = run_steps(optim.SGD(a, lr=0.1, momentum=0.0, dampening=0.5, normalize="block"), a, problem)
    plain = run_steps(optim.SGD(b, lr=0.1, normalize="block"), b, problem)
    np.testing.assert_array_equal(with_zero, plain)
    x = problem.x.copy()
    for g in problem.grads:
        x -= 0.1 * np.concatenate([gi / np.linalg.norm(gi) if gi.any() else gi for gi in problem.split(g)])
    np.testing.assert_allclose(plain, x, rtol=1e-10, atol=1e-12)


@given(problem=block_gradients(steps=5), lr=st.floats(1e-3, 1.0), delta=st.floats(1e-8, 1.0))
def test_adagrad_bng_equals_algorithm_2(device, problem, lr, delta):
    params = make_params(device, problem)
    got = run_steps(optim.AdaGradBNG(params, lr=lr, delta=delta), params, problem)
    np.testing.assert_allclose(got, algorithm2(problem, lr, delta), rtol=1e-9, atol=1e-10)


@given(problem=block_gradients(steps=3), weight_decay=st.sampled_from([0.0, 0.05]))
def test_lars_preset_equals_its_formula(device, problem, weight_decay):
    """d^i = (g^i + λx^i)·η‖x^i‖/(‖g^i‖ + λ‖x^i‖) (ratio 1 if either norm is 0), then momentum SGD on d."""
    params = make_params(device, problem)
    got = run_steps(optim.create("lars", params, lr=0.5, trust_coefficient=0.02, weight_decay=weight_decay),
                    params, problem)
    xs, vs = problem.split(problem.x.copy()), None
    for t, g_flat in enumerate(problem.grads):
        ds = []
        for g, x in zip(problem.split(g_flat), xs):
            gn, xn = np.linalg.norm(g), np.linalg.norm(x)
            ratio = 0.02 * xn / (gn + weight_decay * xn) if gn > 0 and xn > 0 else 1.0
            ds.append((g + weight_decay * x) * ratio)
        vs = ds if t == 0 else [0.9 * v + d for v, d in zip(vs, ds)]
        xs = [x - 0.5 * v for x, v in zip(xs, vs)]
    np.testing.assert_allclose(got, np.concatenate(xs), rtol=1e-9, atol=1e-12)


@given(problem=block_gradients(steps=3), weight_decay=st.sampled_from([0.0, 0.01]))
def test_lamb_preset_equals_its_formula(device, problem, weight_decay):
    """u^i = Adam step + λx^i, then x^i ← x^i − lr (‖x^i‖/‖u^i‖) u^i (ratio 1 if either norm is 0)."""
    params = make_params(device, problem)
    got = run_steps(optim.create("lamb", params, lr=0.01, weight_decay=weight_decay), params, problem)
    xs = problem.split(problem.x.copy())
    m = [np.zeros_like(x) for x in xs]
    v = [np.zeros_like(x) for x in xs]
    for t, g_flat in enumerate(problem.grads, start=1):
        for i, g in enumerate(problem.split(g_flat)):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            u = (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-6) + weight_decay * xs[i]
            un, xn = np.linalg.norm(u), np.linalg.norm(xs[i])
            xs[i] = xs[i] - 0.01 * (xn / un if un > 0 and xn > 0 else 1.0) * u
    np.testing.assert_allclose(got, np.concatenate(xs), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", optim.preset_names())
def test_every_preset_keeps_float32_end_to_end(device, name):
    rng = np.random.default_rng(0)
    problem = BlockProblem([3, 2], rng.standard_normal(5), [rng.standard_normal(5) for _ in range(2)])
    params = make_params(device, problem, dtype=np.float32)
    opt = optim.create(name, params)
    after = run_steps(opt, params, problem)
    assert all(p.data.dtype == np.float32 and p.grad.dtype == np.float32 for p in params)
    assert all(buffer.dtype == np.float32 for buffer in opt.rule.state.values())
    assert host(opt.block_norms).dtype == np.float32
    assert np.all(np.isfinite(after)) and not np.array_equal(after, problem.x.astype(np.float32))


def test_centered_rmsprop_survives_a_constant_gradient(device):
    """a_t − m_t² of a constant gradient is 0 up to rounding, which takes it below 0 after ~1,000 steps (√ of it:
    NaN); clipped at 0, the update stays finite."""
    p = Parameter(on(device, np.zeros(64, dtype=np.float32)))
    opt = optim.RMSProp([p], lr=1e-6, centered=True)
    gradient = on(device, np.linspace(0.01, 3, 64, dtype=np.float32))     # 2.05 goes below 0 at step 1,129
    for _ in range(2000):
        p.grad[...] = gradient
        opt.step()
    assert np.isfinite(host(p.data)).all()
