"""The chain of links: composed by hand in any order, it equals the named optimizers, checks itself, never changes
the gradient, and saves and loads by its links' names."""
import numpy as np
import pytest

from minibng import nn, optim
from support import host, on


def model_on(device):
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Tanh(), nn.Linear(4, 2, rng=rng)).to(device)


def trained(device, make, steps=5):
    """The parameters after ``steps`` steps of the optimizer ``make(model)`` on a fixed stream of gradients whose
    scales span ten orders of magnitude."""
    model = model_on(device)
    opt = make(model)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        for p in model.parameters():
            p.grad[...] = on(device, (rng.standard_normal(p.shape) * 10.0 ** rng.uniform(-5, 5)).astype(np.float32))
        opt.step()
    return [host(p.data) for p in model.parameters()]


@pytest.mark.parametrize("named, links", [
    (lambda m: optim.create("adamng", m),
     lambda: [optim.BlockNorms(), optim.BlockNormalize(), optim.AdamRule()]),
    (lambda m: optim.SGD(m, lr=0.1, momentum=0.9, weight_decay=1e-3, decay="before", normalize=optim.Clip(0.5)),
     lambda: [optim.WeightDecay(1e-3), optim.BlockNorms(), optim.Clip(0.5), optim.SGDRule(momentum=0.9)]),
    (lambda m: optim.create("lamb", m),
     lambda: [optim.AdamRule(eps=1e-6), optim.TrustRatio(0.01)]),
    (lambda m: optim.create("adagradbng", m, lr=0.1, delta=1e-6),
     lambda: [optim.BlockNorms(), optim.BlockNormalize(), optim.AdaGradRule(eps=1e-6), optim.GradientNormScale()]),
])
def test_a_chain_composed_by_hand_equals_the_named_optimizer(device, named, links):
    expected = trained(device, named)
    lr = named(model_on(device)).lr
    composed = trained(device, lambda m: optim.Optimizer(m, optim.Chain(*links()), lr))
    for a, b in zip(expected, composed):
        np.testing.assert_array_equal(a, b)


def test_links_in_an_order_of_ones_choosing(device):
    """Weight decay after Adam's rule (decoupled from the adaptive scaling): x ← x − (u_Adam + λx), with u_Adam the
    update of plain Adam from the same state."""
    decay = 0.05
    model = model_on(device)
    opt = optim.Optimizer(model, optim.Chain(optim.AdamRule(), optim.WeightDecay(decay)), lr=0.01)
    plain_model = model_on(device)
    plain = optim.Adam(plain_model, lr=0.01, track_norms=False)
    rng = np.random.default_rng(2)
    for _ in range(3):
        before = [host(p.data).astype(np.float64) for p in model.parameters()]
        plain_model.load_state_dict(model.state_dict())
        for p, q in zip(model.parameters(), plain_model.parameters()):
            p.grad[...] = q.grad[...] = on(device, rng.standard_normal(p.shape).astype(np.float32))
        plain.step()
        opt.step()
        for p, q, x in zip(model.parameters(), plain_model.parameters(), before):
            adam_update = x - host(q.data).astype(np.float64)
            np.testing.assert_allclose(host(p.data), x - adam_update - decay * x, rtol=1e-5, atol=1e-7)
    assert repr(opt) == ("WeightDecay(weight_decay=0.05) ∘ Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-08) "
                         "∘ blocks=layer (2 blocks)")
    assert opt.block_norms is None   # nothing measures them in this chain


def adamw_reference(x, gradients, lrs, weight_decay, beta1=0.9, beta2=0.999, eps=1e-8):
    """torch.optim.AdamW's equations in float64, for one flat vector: x ← (1 − ηλ)x, then Adam's step."""
    m, v = np.zeros_like(x), np.zeros_like(x)
    for t, (g, lr) in enumerate(zip(gradients, lrs), start=1):
        x = x * (1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        x = x - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    return x


def test_decoupled_weight_decay_after_adam_is_adamw(device):
    """DecoupledWeightDecay after the rule adds ηλx to Adam's update: AdamW, the decay following the learning rate
    when it changes (a plain WeightDecay there would subtract λx whatever η is)."""
    model = model_on(device).astype(np.float64)
    opt = optim.Optimizer(model, optim.Chain(optim.AdamRule(), optim.DecoupledWeightDecay(0.1)), lr=0.01)
    start = host(opt.flat.x).copy()
    rng = np.random.default_rng(4)
    gradients = [rng.standard_normal(start.shape) * 10.0 ** rng.uniform(-3, 3) for _ in range(6)]
    lrs = [0.01, 0.01, 0.01, 0.5, 0.5, 0.001]
    for gradient, lr in zip(gradients, lrs):
        opt.lr = lr
        opt.flat.g[...] = on(device, gradient)
        opt.step()
    np.testing.assert_allclose(host(opt.flat.x), adamw_reference(start, gradients, lrs, 0.1), rtol=1e-13, atol=1e-16)
    assert repr(opt).startswith("DecoupledWeightDecay(weight_decay=0.1) ∘ Adam(lr=0.001")


def test_the_two_weight_decays_refuse_a_decay_that_is_not_positive():
    for make in (optim.WeightDecay, optim.DecoupledWeightDecay):
        with pytest.raises(ValueError, match=f"{make.__name__}: weight_decay must be > 0"):
            make(0.0)


@pytest.mark.parametrize("make", [lambda m: optim.create(name, m) for name in optim.preset_names()] + [
    lambda m: optim.Optimizer(m, optim.Chain(optim.TrustRatio(0.1), optim.BlockNorms(), optim.GradientNormScale(),
                                             optim.SGDRule()), lr=0.1),
    lambda m: optim.SGD(m, lr=0.1, weight_decay=0.01, decay="before", normalize="block"),
], ids=[*optim.preset_names(), "trust-ratio-first", "decay-before"])
def test_a_step_never_changes_the_gradient(device, make):
    """A link writes its output into the shared direction buffer or its own, never into its input: g stays as the
    layers wrote it, wherever a link stands."""
    model = model_on(device)
    opt = make(model)
    rng = np.random.default_rng(3)
    for p in model.parameters():
        p.grad[...] = on(device, rng.standard_normal(p.shape).astype(np.float32))
    gradient = host(opt.flat.g).copy()
    opt.step()
    np.testing.assert_array_equal(host(opt.flat.g), gradient)


@pytest.mark.parametrize("links, error, message", [
    (lambda: [optim.BlockNorms(), optim.BlockNormalize()], ValueError, "exactly one step rule .* got 0"),
    (lambda: [optim.SGDRule(), optim.AdamRule()], ValueError, "exactly one step rule .* got 2"),
    (lambda: [optim.Clip(0.1), optim.BlockNorms(), optim.SGDRule()], ValueError,
     r"Clip\(threshold=0.1\) reads the block norms .*put optim.BlockNorms\(\) before it"),
    (lambda: [optim.AdamRule(), optim.BlockNorms(), optim.GradientNormScale(), optim.WeightDecay(0.1),
              optim.WeightDecay(0.2)], ValueError, "two links named 'weight_decay'"),
    (lambda: [optim.SGDRule(), "block"], TypeError, "link 1 must be a transform or a step rule, got str"),
])
def test_a_chain_that_cannot_work_is_refused(links, error, message):
    with pytest.raises(error, match=message):
        optim.Chain(*links())


def test_a_whole_chain_takes_no_options_that_would_add_links():
    chain = optim.Chain(optim.SGDRule())
    for option, value in (("normalize", "block"), ("weight_decay", 0.1), ("decay", "before"), ("track_norms", False),
                          ("update_transforms", [optim.GradientNormScale()])):
        with pytest.raises(ValueError, match=f"{option}: the optimizer was given a whole Chain"):
            optim.Optimizer(model_on("cpu"), chain, 0.1, **{option: value})


def decayed_clipped_adam():
    """A new chain (new links: a rule serves one optimizer) of weight decay, CLIP and Adam."""
    return optim.Chain(optim.WeightDecay(1e-3), optim.BlockNorms(), optim.Clip(0.5), optim.AdamRule())


def test_the_state_of_a_composed_chain_is_keyed_by_its_links():
    opt = optim.Optimizer(model_on("cpu"), decayed_clipped_adam(), 1e-3)
    state = opt.state_dict()
    assert state["chain"] == "weight_decay,norms,clip,adam" and state["optimizer"] == "Optimizer"
    assert (state["hyper.weight_decay.weight_decay"], state["hyper.clip.threshold"]) == (1e-3, 0.5)
    again = optim.Optimizer(model_on("cpu"), decayed_clipped_adam(), 1e-3).load_state_dict(state)
    assert again.chain.hyperparameter_values() == opt.chain.hyperparameter_values()
    reordered = optim.Chain(optim.BlockNorms(), optim.Clip(0.5), optim.WeightDecay(1e-3), optim.AdamRule())
    with pytest.raises(ValueError, match="it holds the chain 'weight_decay,norms,clip,adam', this optimizer "
                                         "'norms,clip,weight_decay,adam'"):
        optim.Optimizer(model_on("cpu"), reordered, 1e-3).load_state_dict(state)
