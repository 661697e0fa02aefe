import numpy as np
import pytest

import minibng as mb
from minibng import nn


def small_model():
    mb.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Residual(nn.Sequential(nn.Linear(4, 4), nn.ReLU())),
                         nn.Linear(4, 2))


def test_named_parameters_are_dotted_and_in_definition_order():
    names = [name for name, _ in small_model().named_parameters()]
    assert names == ["0.weight", "0.bias", "2.branch.0.weight", "2.branch.0.bias", "3.weight", "3.bias"]


def test_parameter_order_never_depends_on_hashing():
    # Same structure built twice with different attribute insertion histories gives the same order.
    class Net(nn.Module):
        def __init__(self, swap):
            super().__init__()
            if swap:
                self.head = None
            self.body = nn.Linear(2, 2)
            self.head = nn.Linear(2, 2)

    assert [n for n, _ in Net(False).named_parameters()] == ["body.weight", "body.bias", "head.weight", "head.bias"]
    assert [n for n, _ in Net(True).named_parameters()] == ["body.weight", "body.bias", "head.weight", "head.bias"]


def test_a_shared_parameter_is_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(model.parameters()) == 2


def test_train_and_eval_reach_every_module():
    model = small_model()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_clears_every_gradient():
    model = small_model()
    for p in model.parameters():
        p.grad[...] = 1.5
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_state_dict_round_trip_restores_values_exactly():
    source, target = small_model(), small_model()
    rng = np.random.default_rng(1)
    for p in source.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    target.load_state_dict(source.state_dict())
    for (name, p), (_, q) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_state_dict_is_a_copy():
    model = small_model()
    state = model.state_dict()
    state["0.weight"][...] = 99
    assert not (model[0].weight.data == 99).any()


def test_load_state_dict_names_the_missing_entry():
    state = small_model().state_dict()
    del state["3.bias"]
    with pytest.raises(ValueError, match=r"missing \['3.bias'\]"):
        small_model().load_state_dict(state)


def test_copy_has_independent_storage():
    model = small_model()
    clone = model.copy()
    clone[0].weight.data[...] = 0
    assert model[0].weight.data.any()


def test_astype_casts_parameters_and_gradients():
    model = small_model().astype(np.float64)
    assert all(p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in model.parameters())


def test_to_moves_every_parameter(device):
    model = small_model().to(device)
    assert model.device.startswith(device)
    assert all(mb.backend.device_of(p.grad).startswith(device) for p in model.parameters())


def test_parameter_writes_in_place_are_seen_by_forward(device):
    layer = nn.Linear(2, 1).to(device)
    layer.weight.data[...] = 0
    layer.bias.data[...] = 2.5
    x = mb.backend.to_device(np.ones((3, 2), np.float32), device)
    np.testing.assert_array_equal(mb.backend.asnumpy(layer(x)), np.full((3, 1), 2.5, np.float32))


def test_assigning_before_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(RuntimeError, match="super"):
        Broken()
