"""Fault table, optimizers: hyperparameters that would give NaN, state that would break the next step, names."""
import numpy as np
import pytest

import minibng as mb
from minibng import nn, optim
from minibng.nn.parameter import Parameter
from promise_table import registry
from support import host, on

SECTION = "Optimizers"
PROMISES, promise = registry()


def small_model(device):
    mb.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)).to(device)


def stepped(device, make, steps=2):
    """An optimizer built by ``make`` over a small model, after ``steps`` steps on fixed gradients."""
    model = small_model(device)
    opt = make(model)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        for p in model.parameters():
            p.grad[...] = on(device, rng.standard_normal(p.shape).astype(np.float32))
        opt.step()
    return opt


def unchanged_by(device, state, message):
    """Loading ``state`` into a fresh Adam raises ``message`` and changes none of its buffers, its step count or its
    learning rate (the state's buffers hold the values of two steps, so a buffer written before the check would
    show)."""
    target = optim.Adam(small_model(device))
    before = {name: host(b).copy() for name, b in target.rule.state.items()}
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(state)
    assert target.step_count == 0 and target.lr == 1e-3
    assert all(np.array_equal(host(b), before[n]) for n, b in target.rule.state.items())


@promise("eps-zero", "`Adam`, `AdaGrad` or `RMSProp` with `eps=0`",
         "`ValueError` naming `eps` (ε = 0 divides 0 by 0 on a coordinate whose gradient has always been 0, "
         "such as MNIST's border pixels)")
def _eps_zero(device):
    for make in (optim.Adam, optim.AdaGrad, optim.RMSProp):
        with pytest.raises(ValueError, match="eps must be > 0"):
            make(small_model(device), eps=0)


@promise("eps-vanishes-in-dtype", "`Adam(eps=1e-300)` on float32 parameters (also `AdaGrad`, `RMSProp`, "
         "`AdaGradBNG`'s `delta`, and an `optim.Optimizer` given a hand-built `Chain` whose rule has such an ε): an ε "
         "that float32 rounds to 0", "`ValueError` naming the option, its value and float32, and the smallest value "
         "that works (it would round to 0, and a coordinate whose gradient has always been 0 would become NaN after "
         "one step); the model's parameters are left as they were, not packed")
def _eps_vanishes(device):
    def by_hand(model, eps):
        return optim.Optimizer(model, optim.Chain(optim.BlockNorms(), optim.AdamRule(eps=eps)), lr=1e-3)

    cases = [(optim.Adam, "eps", r"eps=1e-300 vanishes in float32: at step 1 the step adds eps·√\(1 − β₂\) = "
                                 r"3\.16e-302 to √v.*give eps ≥ 3\.7e-37, or float64 parameters"),
             (optim.AdaGrad, "eps", "eps=1e-300 vanishes in float32"), (optim.RMSProp, "eps", "eps=1e-300 vanishes"),
             (optim.AdaGradBNG, "delta", r"delta=1e-300 vanishes in float32.*give delta ≥ 1\.2e-38"),
             (by_hand, "eps", "eps=1e-300 vanishes in float32")]
    for make, option, message in cases:
        model = small_model(device)
        with pytest.raises(ValueError, match=message):
            make(model, **{option: 1e-300})
        assert all(p.packed_by is None for p in model.parameters())
        model.astype(np.float64)                                  # what the message offers: it works there
        make(model, **{option: 1e-300})


@promise("chain-of-another-optimizer", "one `optim.Chain` given to two optimizers (or two chains sharing one step "
         "rule), for models of the same or of different sizes", "`ValueError` at the second: the chain already "
         "belongs to another optimizer, build a new Chain with new links for each (its rule holds the first one's "
         "moments, which the second would share and mix); the second model is not packed, the first optimizer steps "
         "as before")
def _chain_of_another_optimizer(device):
    rule = optim.AdamRule()
    chain = optim.Chain(optim.BlockNorms(), optim.BlockNormalize(), rule)
    first = optim.Optimizer(small_model(device), chain, lr=1e-3)
    alone = stepped(device, lambda m: optim.Optimizer(m, optim.Chain(optim.BlockNorms(), optim.BlockNormalize(),
                                                                     optim.AdamRule()), lr=1e-3))
    wider = nn.Sequential(nn.Linear(4, 5), nn.Sigmoid(), nn.Linear(5, 2)).to(device)
    for model, shared in [(small_model(device), chain), (wider, chain), (small_model(device), optim.Chain(rule))]:
        with pytest.raises(ValueError, match=r"this chain already belongs to another optimizer: its step rule "
                                             r"Adam\(.*\) holds that optimizer's state.*build a new Chain, with new "
                                             "links, for each optimizer"):
            optim.Optimizer(model, shared, lr=1e-3)
        assert all(p.packed_by is None for p in model.parameters())
    rng = np.random.default_rng(0)                    # the first steps as an optimizer that never had a rival
    for _ in range(2):
        for p in first.flat.params:
            p.grad[...] = on(device, rng.standard_normal(p.shape).astype(np.float32))
        first.step()
    np.testing.assert_array_equal(host(first.flat.x), host(alone.flat.x))
    np.testing.assert_array_equal(host(first.rule.state["exp_avg"]), host(alone.rule.state["exp_avg"]))


@promise("factor-rounds-to-one", "`SGD(momentum=0.99999999)` on float32 parameters (also Adam's `betas`, RMSProp's "
         "`alpha` and `momentum`): a decay factor that float32 rounds to 1", "`ValueError` naming the option, its "
         "value and float32, and the largest value that works (the average would never forget)")
def _factor_rounds_to_one(device):
    cases = [(lambda m: optim.SGD(m, lr=0.1, momentum=0.99999999), r"momentum=0\.99999999 rounds to 1 in float32, "
              r"so the momentum buffer would never forget; give momentum ≤ 0\.99999994, or float64 parameters"),
             (lambda m: optim.Adam(m, betas=(0.9, 1 - 1e-9)), r"betas\[1\]=0\.999999999 rounds to 1 in float32"),
             (lambda m: optim.RMSProp(m, alpha=1 - 1e-9), "alpha=0.999999999 rounds to 1"),
             (lambda m: optim.RMSProp(m, momentum=1 - 1e-9), "momentum=0.999999999 rounds to 1")]
    for make, message in cases:
        model = small_model(device)
        with pytest.raises(ValueError, match=message):
            make(model)
        assert all(p.packed_by is None for p in model.parameters())
    optim.SGD(small_model(device), lr=0.1, momentum=0.99999994)


@promise("centered-rmsprop-constant-gradient", "centered `RMSProp` fed the same gradient for thousands of steps",
         "finite steps: a_t − m_t², which rounding takes below 0 after ~1,100 steps, is clipped at 0 before its "
         "square root")
def _centered_rmsprop(device):
    p = Parameter(on(device, np.zeros(64, np.float32)))
    opt = optim.RMSProp([p], lr=1e-6, centered=True)
    gradient = on(device, np.linspace(0.01, 3, 64, dtype=np.float32))
    for _ in range(1500):
        p.grad[...] = gradient
        opt.step()
    assert np.isfinite(host(p.data)).all()


@promise("state-negative-moment", "an optimizer state whose second moment (`exp_avg_sq`, `sum`, `square_avg`) is "
         "negative", "`ValueError` naming the buffer; nothing is loaded")
def _negative_moment(device):
    state = stepped(device, optim.Adam).state_dict()
    state["state.0.weight.exp_avg_sq"] = -state["state.0.weight.exp_avg_sq"] - 1
    unchanged_by(device, state, r"buffer '0.weight.exp_avg_sq' \(a sum or average of squares\) holds negative")


@promise("state-nan", "an optimizer state holding NaN or ∞", "`ValueError` naming the buffer; nothing is loaded")
def _nan_state(device):
    state = stepped(device, optim.Adam).state_dict()
    state["state.2.bias.exp_avg"] = np.full_like(state["state.2.bias.exp_avg"], np.nan)
    unchanged_by(device, state, "buffer '2.bias.exp_avg' holds NaN or infinite values")


@promise("state-negative-step", "an optimizer state with step −1 (or 2.5), or an lr of ∞",
         "`ValueError` naming `step` (or `lr`); nothing is loaded")
def _negative_step(device):
    state = stepped(device, optim.Adam).state_dict()
    unchanged_by(device, {**state, "step": -1}, "'step' must be a finite number ≥ 0")
    unchanged_by(device, {**state, "step": 2.5}, "whole number of steps")
    unchanged_by(device, {**state, "lr": np.inf}, "'lr' must be a finite number ≥ 0")


@promise("state-text-for-a-number", "an optimizer state holding text or None where a number belongs: its `format`, a "
         "hyperparameter, a block or parameter size, `step` or `lr` (or a size of 15.5)", "`ValueError` naming the key "
         "and the value given (never a bare int() or float() error, and the text '0.9' is not read as 0.9); nothing is "
         "loaded")
def _text_for_a_number(device):
    state = stepped(device, optim.Adam).state_dict()
    for key in ("format", "hyper.adam.beta1", "block.0.size", "param.2.bias.size", "step", "lr", "base_lr"):
        for text in ("x", np.array("0.9"), None):
            unchanged_by(device, {**state, key: text}, f"optimizer state_dict: '{key}' must be a number, got")
    unchanged_by(device, {**state, "block.0.size": 15.5}, "'block.0.size' must be a whole number, got 15.5")


@promise("state-value-beyond-dtype", "an optimizer state for float32 parameters holding a value beyond float32's "
         "range, saved in float64 (a buffer entry or an lr of 1e39), or a step count of 2⁶³", "`ValueError` naming the "
         "key, the value and float32: values are checked in the dtype they will be stored in (never loaded as ∞), the "
         "step count in a checkpoint's int64; nothing is loaded")
def _value_beyond_dtype(device):
    state = stepped(device, optim.Adam).state_dict()
    huge = state["state.0.weight.exp_avg"].astype(np.float64)
    huge[1, 2] = 1e39
    unchanged_by(device, {**state, "state.0.weight.exp_avg": huge},
                 r"buffer '0\.weight\.exp_avg' holds 1e\+39, beyond the range of float32 \(largest 3\.4e\+38\)")
    unchanged_by(device, {**state, "lr": 1e39}, r"'lr' = 1e\+39 is beyond the range of float32")
    unchanged_by(device, {**state, "step": 2**63}, "exceeds 9223372036854775807, the largest step count")
    wide = optim.Adam(small_model(device).astype(np.float64))        # float64 parameters hold 1e39
    wide.load_state_dict({**state, "state.0.weight.exp_avg": huge, "lr": 1e39})
    assert host(wide.rule.state["exp_avg"]).max() == 1e39 and wide.lr == 1e39


@promise("state-other-model", "an optimizer state saved for another model, kind, transform or hyperparameters",
         "`ValueError` naming the first difference (block, parameter, buffer, hyperparameter); nothing is loaded")
def _other_model(device):
    state = stepped(device, optim.Adam).state_dict()
    wider = nn.Sequential(nn.Linear(4, 5), nn.Sigmoid(), nn.Linear(5, 2)).to(device)
    with pytest.raises(ValueError, match="block '0' has size 15, here 25"):
        optim.Adam(wider).load_state_dict(state)
    unchanged_by(device, {**state, "hyper.adam.beta1": 0.5}, "hyperparameter 'adam.beta1'")


@promise("create-non-string", "`optim.create([\"adam\"], model)` or another name that is not a string",
         "`TypeError`: the optimizer name must be a string such as 'adamng'")
def _create_non_string(device):
    with pytest.raises(TypeError, match="optimizer name must be a string such as 'adamng', got list"):
        optim.create(["adam"], small_model(device))


@promise("tiny-or-huge-gradients", "gradient blocks whose entries are ~1e-30 or ~1e30 (float32), where Σ g² "
         "underflows to 0 or overflows to ∞", "exact block norms and unit NG directions (no silent 0 step, no "
         "NaN); see docs/algorithm.md")
def _tiny_gradients(device):
    params = [Parameter(on(device, np.zeros(1000, np.float32))) for _ in range(2)]
    opt = optim.SGD(params, lr=1.0, normalize="block")
    params[0].grad[...] = on(device, np.full(1000, 1e-30, np.float32))
    params[1].grad[...] = on(device, np.full(1000, 1e30, np.float32))
    opt.step()
    np.testing.assert_allclose(host(opt.block_norms), [1e-30 * 1000 ** 0.5, 1e30 * 1000 ** 0.5], rtol=1e-6)
    for p in params:
        np.testing.assert_allclose(np.linalg.norm(host(p.data).astype(np.float64)), 1.0, rtol=1e-6)


@pytest.mark.parametrize("case", PROMISES, ids=lambda c: c.id)
def test_promise(case, request, device):
    case.run(request, device=device)
