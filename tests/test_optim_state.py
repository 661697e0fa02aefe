"""state_dict / load_state_dict: name-keyed, pickle-free, validated, and a resumed run is bit-identical."""
import io

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng import nn, optim
from support import host, on


def model_on(device, seed=0):
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Tanh(), nn.Linear(4, 2, rng=rng))
    return model.to(device)


def feed(device, model, grads):
    for (_, p), g in zip(model.named_parameters(), grads):
        p.grad[...] = on(device, g.astype(np.float32))


def gradient_stream(seed, steps, model):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(p.shape) * 10.0 ** rng.uniform(-2, 2) for p in model.parameters()]
            for _ in range(steps)]


def save_npz(state):
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as loaded:
        return {k: loaded[k] for k in loaded.files}


@pytest.mark.parametrize("name", ["sgdm", "adamng", "rmspropng", "adagradbng", "lamb", "sgdmngadap"])
@given(split=st.integers(1, 5), seed=st.integers(0, 1000))
def test_resume_mid_run_continues_bit_identically(device, name, split, seed):
    model = model_on(device)
    grads = gradient_stream(seed, 7, model)
    opt = optim.create(name, model, nesterov=True) if name == "sgdm" else optim.create(name, model)
    schedule = optim.MultiStep([3], 0.5)
    saved = None
    for t, g in enumerate(grads, start=1):
        schedule.apply(opt, t)
        opt.zero_grad()
        feed(device, model, g)
        opt.step()
        if t == split:
            saved = (save_npz(model.state_dict()), save_npz(opt.state_dict()))
    straight = [host(p.data).copy() for p in model.parameters()]

    resumed_model = model_on(device, seed=99)          # different initial values: everything must come from the save
    resumed = optim.create(name, resumed_model, nesterov=True) if name == "sgdm" else optim.create(name, resumed_model)
    resumed_model.load_state_dict(saved[0])
    resumed.load_state_dict(saved[1])
    for t, g in enumerate(grads[split:], start=split + 1):
        schedule.apply(resumed, t)
        resumed.zero_grad()
        feed(device, resumed_model, g)
        resumed.step()
    for a, b in zip(straight, resumed_model.parameters()):
        assert np.array_equal(a, host(b.data))


def test_state_is_keyed_by_names_and_plain_values(device):
    opt = optim.Adam(model_on(device), normalize="block")
    state = opt.state_dict()
    assert state["optimizer"] == "Adam" and state["normalize"] == "block" and state["step"] == 0
    assert "state.0.weight.exp_avg" in state and state["state.0.weight.exp_avg"].shape == (3, 4)
    assert state["block.0.size"] == 16 and state["param.2.bias.size"] == 2
    assert all(isinstance(v, (int, float, str, np.ndarray)) for v in state.values())


def test_load_rejects_a_different_model_naming_the_first_difference(device):
    state = optim.Adam(model_on(device)).state_dict()
    other = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), nn.Linear(2, 2)).to(device)
    with pytest.raises(ValueError, match="this optimizer has block '3'"):
        optim.Adam(other).load_state_dict(state)
    wider = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).to(device)
    with pytest.raises(ValueError, match="block '0' has size 16, here 20"):
        optim.Adam(wider).load_state_dict(state)
    with pytest.raises(ValueError, match="tensor|block '0.weight'"):
        optim.Adam(model_on(device), blocks="tensor").load_state_dict(state)
    with pytest.raises(ValueError, match="for Adam, not SGD"):
        optim.SGD(model_on(device), lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="normalize"):
        optim.Adam(model_on(device), normalize="block").load_state_dict(state)
    with pytest.raises(ValueError, match="rule.beta1"):
        optim.Adam(model_on(device), betas=(0.8, 0.999)).load_state_dict(state)
    broken = dict(state)
    del broken["state.2.weight.exp_avg_sq"]
    with pytest.raises(ValueError, match="buffer '2.weight.exp_avg_sq'"):
        optim.Adam(model_on(device)).load_state_dict(broken)


@pytest.mark.parametrize("key, value, message", [
    ("state.2.weight.exp_avg_sq", -1.0, "negative values"),
    ("state.0.bias.exp_avg", np.nan, "NaN or infinite"),
    ("step", -1, "'step' must be a finite number ≥ 0"),
    ("step", 2.5, "whole number of steps"),
    ("lr", np.inf, "'lr' must be a finite number"),
])
def test_load_checks_every_value_before_writing_any(device, key, value, message):
    model = model_on(device)
    source = optim.Adam(model)
    feed(device, model, gradient_stream(0, 1, model)[0])
    source.step()
    state = source.state_dict()
    state["state.0.weight.exp_avg"] = state["state.0.weight.exp_avg"] + 1.0   # a value that would be written first
    if key.startswith("state."):
        state[key] = np.full_like(state[key], value)
    else:
        state[key] = value
    target = optim.Adam(model_on(device))
    before = {name: host(buffer).copy() for name, buffer in target.rule.state.items()}
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(state)
    for name, buffer in target.rule.state.items():
        np.testing.assert_array_equal(host(buffer), before[name])
    assert target.step_count == 0 and target.lr == 1e-3


def test_a_state_saved_before_the_chain_of_transforms_still_loads(device):
    """Format 1 (no 'format' key) named AdaGradBNG's δ 'hyper.rule.delta'; every other key is unchanged."""
    model = model_on(device)
    source = optim.AdaGradBNG(model, lr=0.1, delta=1e-6)
    for grads in gradient_stream(1, 3, model):
        feed(device, model, grads)
        source.step()
    old = save_npz(source.state_dict())
    del old["format"]
    old["hyper.rule.delta"] = old.pop("hyper.rule.eps")
    target = optim.AdaGradBNG(model_on(device), lr=0.1, delta=1e-6).load_state_dict(old)
    assert target.step_count == 3
    np.testing.assert_array_equal(host(target.rule.state["sum"]), host(source.rule.state["sum"]))
    newer = dict(source.state_dict(), format=99)
    with pytest.raises(ValueError, match="format newer than"):
        optim.AdaGradBNG(model_on(device), lr=0.1, delta=1e-6).load_state_dict(newer)
