"""Presets with the paper's defaults, hyperparameter validation, lr and schedules."""
import numpy as np
import pytest

from minibng import nn, optim

PAPER_NAMES = ["sgd", "sgdm", "sgdmng", "sgdmngadap", "sgdmclip", "adagrad", "adagradng", "adagradbng", "rmsprop",
               "rmspropng", "adam", "adamng", "adamngadap", "adamclip", "lars", "lamb"]


def model():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def link(opt, kind):
    """The optimizer's link of class ``kind``."""
    return next(each for each in opt.chain.links if isinstance(each, kind))


def test_preset_names_and_the_papers_defaults():
    assert optim.preset_names() == PAPER_NAMES
    adam = optim.create("adam", model())
    assert isinstance(adam, optim.Adam) and adam.lr == 1e-3 and adam.chain.signature() == "adam"
    assert (adam.rule.beta1, adam.rule.beta2, adam.rule.eps) == (0.9, 0.999, 1e-8)
    assert optim.create("adagrad", model()).lr == 0.01 and optim.create("adagrad", model()).rule.eps == 1e-10
    assert optim.create("adagradng", model()).chain.signature() == "norms,block,adagrad"
    assert link(optim.create("sgdmngadap", model()), optim.Adaptive).alpha == 0.02
    assert link(optim.create("adamclip", model()), optim.Clip).threshold == 0.1
    sgdm = optim.create("SGDMNG", model(), lr=0.5, blocks="tensor")
    assert isinstance(sgdm, optim.SGD) and sgdm.rule.momentum == 0.9 and sgdm.lr == 0.5
    assert len(sgdm.blocks) == 4
    assert link(optim.create("sgdmclip", model(), threshold=0.5), optim.Clip).threshold == 0.5
    assert isinstance(optim.create("adagradbng", model()), optim.AdaGradBNG)


@pytest.mark.parametrize("make, option", [
    (lambda m: optim.SGD(m, lr=-0.1), "lr"),
    (lambda m: optim.SGD(m, lr=0.1, momentum=1.5), "momentum"),
    (lambda m: optim.SGD(m, lr=0.1, nesterov=True), "nesterov"),
    (lambda m: optim.SGD(m, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda m: optim.SGD(m, lr=float("nan")), "lr"),
    (lambda m: optim.Adam(m, betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda m: optim.Adam(m, betas=(-0.1, 0.9)), r"betas\[0\]"),
    (lambda m: optim.Adam(m, normalize=optim.Adaptive(0)), "alpha"),
    (lambda m: optim.Adam(m, normalize=optim.Adaptive(-1)), "alpha"),
    (lambda m: optim.Adam(m, normalize=optim.Clip(0)), "threshold"),
    (lambda m: optim.Adam(m, normalize="layer"), "normalize"),
    (lambda m: optim.RMSProp(m, alpha=1.0), "alpha"),
    (lambda m: optim.AdaGradBNG(m, delta=0), "delta"),
    (lambda m: optim.AdaGradBNG(m, normalize=None), "normalize"),
    (lambda m: optim.SGD(m, lr=0.1, blocks="layers"), "blocks"),
    (lambda m: optim.SGD(m, lr=0.1, decay="during"), "decay"),
    (lambda m: optim.create("adamw", m), "unknown optimizer name"),
    (lambda m: optim.create("lars", m, weight_decay=-1), "weight_decay"),
])
def test_invalid_hyperparameters_raise_value_error_naming_the_option(make, option):
    with pytest.raises(ValueError, match=option):
        make(model())


def test_lr_is_settable_and_validated():
    opt = optim.Adam(model())
    opt.lr = 0.5
    assert opt.lr == 0.5 and opt.base_lr == 1e-3
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0


def test_multistep_drops_at_each_milestone_and_exponential_decays_per_epoch():
    schedule = optim.MultiStep([81, 122], 0.1)
    rates = [schedule.lr_at(e, 0.1) for e in (1, 80, 81, 121, 122, 160)]
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-12)
    opt = optim.SGD(model(), lr=0.1, momentum=0.9)
    assert schedule.apply(opt, 100) == pytest.approx(0.01) and opt.lr == pytest.approx(0.01)
    assert optim.Exponential(0.5).lr_at(3, 1.0) == 0.25 and optim.Exponential(0.5).lr_at(1, 1.0) == 1.0
    with pytest.raises(ValueError, match="milestones"):
        optim.MultiStep([5, 3], 0.1)
    with pytest.raises(ValueError, match="gamma"):
        optim.Exponential(0)
    with pytest.raises(ValueError, match="epoch"):
        schedule.lr_at(0, 0.1)


def test_repr_prints_every_link_of_the_chain_right_to_left():
    assert repr(optim.create("adamng", model())) == \
        "Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08) ∘ BlockNormalize ∘ BlockNorms ∘ blocks=layer (2 blocks)"
    assert repr(optim.create("adagradbng", model(), blocks="global")) == \
        "GradientNormScale ∘ AdaGrad(lr=0.01, eps=1e-10) ∘ BlockNormalize ∘ BlockNorms ∘ blocks=global (1 blocks)"
    decayed = optim.SGD(model(), lr=0.1, weight_decay=1e-4, decay="before", normalize=optim.Clip(0.5))
    assert [type(t).__name__ for t in decayed.chain.direction_links] == ["WeightDecay", "BlockNorms", "Clip"]
    assert repr(decayed) == ("SGD(lr=0.1, momentum=0.0, dampening=0.0, nesterov=False) ∘ Clip(threshold=0.5) "
                             "∘ BlockNorms ∘ WeightDecay(weight_decay=0.0001) ∘ blocks=layer (2 blocks)")
    assert optim.SGD(model(), lr=0.1, track_norms=False).chain.direction_links == ()
