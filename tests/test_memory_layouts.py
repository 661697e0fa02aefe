"""Memory layouts: convolutions return channels-last arrays, and every image layer gives the same numbers for a
C-ordered and a channels-last input or upstream gradient (only the strides differ, never the values)."""
import numpy as np
import pytest

from minibng import nn
from minibng.backend import get_array_module
from support import host, on


def channels_last(a):
    """The same (N, C, H, W) values in channels-last memory (strides of (N, H, W, C))."""
    xp = get_array_module(a)
    return xp.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def is_channels_last(a):
    return a.transpose(0, 2, 3, 1).flags.c_contiguous


LAYERS = {
    "conv": lambda: nn.Conv2d(3, 4, 3, padding=1, dtype=np.float64, rng=0),
    "conv-stride-2": lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1, dtype=np.float64, rng=0),
    "batch-norm": lambda: nn.BatchNorm2d(3, dtype=np.float64),
    "relu": nn.ReLU,
    "max-pool": lambda: nn.MaxPool2d(2),
    "global-max-pool": nn.GlobalMaxPool2d,
    "global-avg-pool": nn.GlobalAvgPool2d,
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("x_last, dy_last", [(False, True), (True, False), (True, True)])
def test_layout_changes_no_value(device, name, x_last, dy_last):
    rng = np.random.default_rng(0)
    x = on(device, rng.standard_normal((4, 3, 6, 6)) * 2 + 1)
    reference = LAYERS[name]().to(device)
    if reference.parameters():  # non-zero biases of both signs, as every layer test
        for p in reference.parameters():
            signs = np.where(np.arange(p.size) % 2, -1, 1).reshape(p.shape)
            p.data[...] = on(device, rng.uniform(0.5, 1.5, p.shape) * signs)
    layer = reference.copy()
    y_ref = reference(x)
    dy = on(device, rng.standard_normal(y_ref.shape))
    dx_ref = reference.backward(dy)
    y = layer(channels_last(x) if x_last else x)
    dx = layer.backward(channels_last(dy) if dy_last and dy.ndim == 4 else dy)
    np.testing.assert_allclose(host(y), host(y_ref), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(dx), host(dx_ref), rtol=1e-12, atol=1e-12)
    for p, q in zip(layer.parameters(), reference.parameters()):
        np.testing.assert_allclose(host(p.grad), host(q.grad), rtol=1e-12, atol=1e-12)


def test_a_convolution_returns_channels_last_and_the_layers_after_it_keep_it(device):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU()).to(device)
    x = on(device, np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32))
    for layer in model:
        x = layer(x)
        assert is_channels_last(x), f"{type(layer).__name__} returned strides {x.strides}"
    dy = channels_last(x * 0 + 1)
    for layer in reversed(list(model)):
        dy = layer.backward(dy)
        assert is_channels_last(dy), f"{type(layer).__name__}.backward returned strides {dy.strides}"


def test_moving_a_model_between_forward_and_backward_needs_a_new_forward(device):
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    model(np.zeros((2, 3), np.float32))
    model.astype(np.float64).to(device)
    with pytest.raises(nn.BackwardOrderError, match="run forward"):
        model.backward(on(device, np.ones((2, 2))))
