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
