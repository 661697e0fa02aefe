"""The chain trace: every link's output per block and step, through the chain's observers, without changing a step."""
import numpy as np
import pytest

from minibng import audit, nn, optim


def model():
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Linear(3, 2, dtype="float64", rng=rng), nn.Sigmoid(), nn.Linear(2, 2, dtype="float64",
                                                                                         rng=rng))


def step(opt, net, gradient_scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    opt.zero_grad()
    for p in net.parameters():
        p.grad[...] = rng.standard_normal(p.grad.shape)
    net[0].weight.grad[...] *= gradient_scale
    net[0].bias.grad[...] *= gradient_scale
    opt.step()


def test_a_traced_step_equals_an_untraced_one_and_records_every_link():
    traced, plain = model(), model()
    opt_traced, opt_plain = optim.create("adamng", traced, weight_decay=0.01), optim.create("adamng", plain,
                                                                                           weight_decay=0.01)
    with audit.ChainTrace(opt_traced) as trace:
        for t in range(3):
            step(opt_traced, traced, seed=t)
            step(opt_plain, plain, seed=t)
    np.testing.assert_array_equal(opt_traced.flat.x, opt_plain.flat.x)
    assert trace.links == ["norms", "block", "weight_decay", "adam"] and len(trace.steps) == 3
    assert opt_traced.chain.observers == []
    second = trace.step(2)
    np.testing.assert_allclose(trace.norms_of(trace.output(2, "block")), [1.0, 1.0])
    assert trace.block_norms(2) == pytest.approx(dict(zip(["0", "2"], opt_plain.flat.partition.norms(second.gradient))))
    assert not np.array_equal(trace.step(1).state["exp_avg"], trace.step(3).state["exp_avg"])
    assert trace.output(1, "adam", block="2").shape == (6,)
    assert "weight_decay" in trace.table(1) and "g (input)" in trace.table(1)


def test_the_trace_shows_the_exact_norm_of_a_vanishing_block():
    net = model().astype(np.float32)
    opt = optim.create("sgdmng", net)
    with audit.ChainTrace(opt) as trace:
        step(opt, net, gradient_scale=1e-30)
    assert 0 < trace.block_norms(1)["0"] < 1e-28
    assert trace.norms_of(trace.output(1, "block"))[0] == pytest.approx(1.0, rel=1e-6)


def test_asking_for_what_was_not_recorded_says_so():
    opt = optim.create("sgd", model())
    trace = audit.ChainTrace(opt)
    with pytest.raises(KeyError, match="no step 1 recorded"):
        trace.step(1)
    with pytest.raises(TypeError, match="expected a minibng optimizer"):
        audit.ChainTrace(object())
