"""state_dict / load_state_dict: name-keyed, pickle-free, validated, and a resumed run is bit-identical."""
import io
import json
from pathlib import Path

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
    assert state["optimizer"] == "Adam" and state["chain"] == "norms,block,adam" and state["step"] == 0
    assert state["hyper.adam.beta1"] == 0.9 and state["format"] == 3
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
    with pytest.raises(ValueError, match="it holds the chain 'adam', this optimizer 'norms,block,adam'"):
        optim.Adam(model_on(device), normalize="block").load_state_dict(state)
    with pytest.raises(ValueError, match="adam.beta1"):
        optim.Adam(model_on(device), betas=(0.8, 0.999)).load_state_dict(state)
    broken = dict(state)
    del broken["state.2.weight.exp_avg_sq"]
    with pytest.raises(ValueError, match="buffer '2.weight.exp_avg_sq'"):
        optim.Adam(model_on(device)).load_state_dict(broken)


FORMAT_2 = json.loads((Path(__file__).parent / "optimizer_states_format2.json").read_text(encoding="utf-8"))
BUILT_AS = {   # how each state of the file was made, by the code of format 2
    "adamng": lambda m: optim.create("adamng", m),
    "sgdm-clip-decay-before": lambda m: optim.SGD(m, lr=0.1, momentum=0.9, weight_decay=1e-3, decay="before",
                                                  normalize=optim.Clip(0.5)),
    "sgdm-nesterov-adaptive-decay-after": lambda m: optim.SGD(m, lr=0.1, momentum=0.9, nesterov=True,
                                                              weight_decay=1e-3, normalize=optim.Adaptive(0.02)),
    "adagradbng": lambda m: optim.create("adagradbng", m, lr=0.1, delta=1e-6),
    "lamb": lambda m: optim.create("lamb", m),
    "lars": lambda m: optim.create("lars", m, weight_decay=1e-4),
    "rmsprop-centered-untracked": lambda m: optim.RMSProp(m, centered=True, momentum=0.5, track_norms=False),
    "rmspropng": lambda m: optim.create("rmspropng", m),
    "adagrad-tensor": lambda m: optim.AdaGrad(m, blocks="tensor"),
}


def decoded(entries):
    """The file's entries as a state holds them: arrays ({dtype, shape, values}) and plain values."""
    return {key: np.asarray(v["values"], dtype=v["dtype"]).reshape(v["shape"]) if isinstance(v, dict) else v
            for key, v in entries.items()}


def continues_as_saved(case, state):
    """Load ``case``'s parameters and ``state`` into the optimizer that wrote it, take the recorded step: the
    parameters equal those the old code computed, bit for bit."""
    model = model_on("cpu")
    model.load_state_dict(decoded(FORMAT_2[case]["parameters"]))
    opt = BUILT_AS[case](model).load_state_dict(state)
    for name, p in model.named_parameters():
        p.grad[...] = decoded(FORMAT_2[case]["gradient"])[name]
    opt.step()
    for name, expected in decoded(FORMAT_2[case]["parameters_after_one_step"]).items():
        np.testing.assert_array_equal(model.state_dict()[name], expected, err_msg=f"{case}: {name}")
    return opt


@pytest.mark.parametrize("case", sorted(BUILT_AS))
def test_a_state_saved_in_format_2_loads_and_continues_bit_identically(case):
    """States written before the chain named its links (format 2: the optimizer's class, its normalizer, its weight
    decay) load into the optimizer that wrote them and continue exactly as the old code did."""
    state = decoded(FORMAT_2[case]["state"])
    assert state["format"] == 2 and "chain" not in state
    opt = continues_as_saved(case, state)
    assert opt.step_count == 4


def test_a_format_2_state_is_refused_by_another_chain():
    """The chain format 2 describes is compared link by link: weight decay after the clip is not weight decay before."""
    state = decoded(FORMAT_2["sgdm-clip-decay-before"]["state"])
    after = optim.SGD(model_on("cpu"), lr=0.1, momentum=0.9, weight_decay=1e-3, normalize=optim.Clip(0.5))
    with pytest.raises(ValueError, match="'weight_decay,norms,clip,sgd', this optimizer 'norms,clip,weight_decay,sgd'"):
        after.load_state_dict(state)


def test_a_state_saved_before_the_chain_of_transforms_still_loads():
    """Format 1 (no 'format' key) named AdaGradBNG's δ 'hyper.rule.delta'; every other key is format 2's."""
    old = decoded(FORMAT_2["adagradbng"]["state"])
    del old["format"]
    old["hyper.rule.delta"] = old.pop("hyper.rule.eps")
    continues_as_saved("adagradbng", old)
    newer = dict(optim.AdaGradBNG(model_on("cpu"), lr=0.1, delta=1e-6).state_dict(), format=99)
    with pytest.raises(ValueError, match="format newer than"):
        optim.AdaGradBNG(model_on("cpu"), lr=0.1, delta=1e-6).load_state_dict(newer)
