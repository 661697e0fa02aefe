"""Packing: one flat x and g, parameters as views, block names, segment norms, and ownership."""
import numpy as np
import pytest
from hypothesis import given

from minibng import nn, optim
from minibng.nn.module import Parameter
from minibng.optim.flat import pack
from support import host, on
from test_optim_helpers import block_gradients, make_params

pytestmark = pytest.mark.usefixtures("partition_path")   # NumPy's path and the GPU's, on NumPy


def small_model(device):
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.ReLU(),
                          nn.Sequential(nn.Linear(4, 2, dtype=np.float64), nn.Linear(2, 2, bias=False, dtype=np.float64)))
    return model.to(device)


def test_layer_partition_names_blocks_by_module_path_and_views_share_storage(device):
    model = small_model(device)
    values = {n: host(p.data).copy() for n, p in model.named_parameters()}
    opt = optim.SGD(model, lr=0.1)
    assert opt.blocks == [("0", 16), ("2.0", 10), ("2.1", 4)]
    assert opt.param_names == ["0.weight", "0.bias", "2.0.weight", "2.0.bias", "2.1.weight"]
    x, g = opt.flat.x, opt.flat.g
    assert host(x).tolist() == np.concatenate([v.reshape(-1) for v in values.values()]).tolist()
    weight = model._modules["0"].weight
    weight.data[1, 2] = 7.5                       # writing through the layer's view writes into x
    assert host(x)[1 * 4 + 2] == 7.5
    weight.grad[...] = on(device, np.arange(12.0).reshape(3, 4) + 1)
    assert host(g)[:12].tolist() == list(np.arange(12.0) + 1)
    assert all(p.packed_by is opt.flat for p in model.parameters())


def test_tensor_global_and_explicit_partitions(device):
    model = small_model(device)
    assert [n for n, _ in optim.SGD(model, lr=0.1, blocks="tensor").blocks] == \
        ["0.weight", "0.bias", "2.0.weight", "2.0.bias", "2.1.weight"]
    assert optim.SGD(model, lr=0.1, blocks="global").blocks == [("all", 30)]
    first, inner = model._modules["0"], model._modules["2"]
    groups = [[first.weight, inner._modules["1"].weight], [first.bias, inner._modules["0"].weight, inner._modules["0"].bias]]
    opt = optim.SGD(model, lr=0.1, blocks=groups)
    assert opt.blocks == [("0.weight+2.1.weight", 16), ("0.bias+2.0.weight+2.0.bias", 14)]


def test_list_of_parameters_named_by_position_or_by_given_names(device):
    a, b = Parameter(on(device, np.ones((2, 2)))), Parameter(on(device, np.full(3, 2.0)))
    assert optim.Adam([a, b]).blocks == [("param0", 4), ("param1", 3)]
    model = small_model(device)
    opt = optim.Adam(list(model.named_parameters()))
    assert opt.param_names[0] == "0.weight" and opt.blocks[0] == ("0.weight", 12)


@given(problem=block_gradients())
def test_norms_and_expand_equal_a_loop_over_blocks(device, problem):
    params = make_params(device, problem)
    flat = pack(params)
    flat.g[...] = on(device, problem.grads[0])
    norms = flat.partition.norms(flat.g)
    expected = [np.sqrt(np.sum(b * b)) for b in problem.split(problem.grads[0])]
    np.testing.assert_allclose(host(norms), expected, rtol=1e-12)
    scale = on(device, np.arange(len(problem.sizes), dtype=np.float64) + 0.5)
    expanded = host(flat.partition.expand(scale))
    assert expanded.tolist() == [i + 0.5 for i, n in enumerate(problem.sizes) for _ in range(n)]


def test_second_optimizer_takes_over_and_the_first_refuses_to_step(device):
    model = small_model(device)
    first = optim.SGD(model, lr=0.1)
    second = optim.Adam(model)
    assert all(p.packed_by is second.flat for p in model.parameters())
    with pytest.raises(RuntimeError, match="no longer owns its parameters"):
        first.step()
    second.step()                                  # the new owner works
    second.release()
    assert all(p.packed_by is None for p in model.parameters())
    with pytest.raises(RuntimeError, match="no longer owns"):
        second.step()


def test_takeover_of_some_parameters_gives_the_rest_their_own_storage(device):
    a, b = Parameter(on(device, np.ones(2))), Parameter(on(device, np.full(3, 2.0)))
    first = optim.SGD([a, b], lr=0.1)
    optim.SGD([a], lr=0.1)
    assert b.packed_by is None and host(b.data).tolist() == [2.0] * 3
    b.data[...] = 5.0                              # b no longer writes into the released vector
    assert host(first.flat.x)[2:].tolist() == [2.0] * 3


def test_invalid_partitions_and_params_are_value_or_type_errors(device):
    model = small_model(device)
    with pytest.raises(ValueError, match="blocks must be one of"):
        optim.SGD(model, lr=0.1, blocks="layers")
    with pytest.raises(ValueError, match="in no block"):
        optim.SGD(model, lr=0.1, blocks=[[model._modules["0"].weight]])
    with pytest.raises(ValueError, match="more than one block"):
        w = model._modules["0"].weight
        optim.SGD(model, lr=0.1, blocks=[[w], [w]])
    with pytest.raises(TypeError, match="dtype"):
        optim.SGD([Parameter(on(device, np.ones(2))), Parameter(on(device, np.ones(2, np.float32)))], lr=0.1)
    with pytest.raises(ValueError, match="no parameters"):
        optim.SGD([], lr=0.1)
