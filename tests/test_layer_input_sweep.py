"""Every layer, fed arrays of every rank from 0 to 5, with and without empty axes: each call either gives a result of
the right shape (forward and backward) or stops with a ValueError/TypeError that names the layer and says what it
got; never an IndexError, a ZeroDivisionError, NumPy's "cannot reshape", a scalar for an array, or a NaN."""
import numpy as np
import pytest

from minibng import backend, nn
from support import host, on

SHAPES = [(), (0,), (3,), (0, 3), (2, 3), (2, 0), (0, 3, 4), (2, 3, 4), (1, 0, 3), (0, 3, 4, 4), (2, 3, 4, 4),
          (2, 3, 0, 4), (2, 0, 4, 4), (2, 3, 4, 4, 1)]

LAYERS = {
    "Linear": lambda: nn.Linear(3, 2),
    "Conv2d": lambda: nn.Conv2d(3, 2, 2),
    "Conv2d-strided": lambda: nn.Conv2d(3, 2, 2, stride=2, padding=1),
    "MaxPool2d": lambda: nn.MaxPool2d(2),
    "AvgPool2d": lambda: nn.AvgPool2d(2),
    "GlobalAvgPool2d": nn.GlobalAvgPool2d,
    "GlobalMaxPool2d": nn.GlobalMaxPool2d,
    "BatchNorm1d": lambda: nn.BatchNorm1d(3),
    "BatchNorm1d-eval": lambda: nn.BatchNorm1d(3).eval(),
    "BatchNorm2d": lambda: nn.BatchNorm2d(3),
    "BatchNorm2d-eval": lambda: nn.BatchNorm2d(3).eval(),
    "ReLU": nn.ReLU,
    "Sigmoid": nn.Sigmoid,
    "Tanh": nn.Tanh,
    "Dropout": lambda: nn.Dropout(0.5, seed=0),
    "Flatten": nn.Flatten,
    "LSTM": lambda: nn.LSTM(3, 4, num_layers=2, dropout=0.5, seed=0),
    "Sequential": lambda: nn.Sequential(nn.Linear(3, 3), nn.Tanh()),
    "Residual": lambda: nn.Residual(nn.Linear(3, 3)),
    "Concat": lambda: nn.Concat(nn.ReLU(), nn.Sigmoid(), axis=1),
}


def layer_name(layer):
    return type(layer).__name__


def refused(error):
    """A clear refusal: a ValueError or TypeError that names the layer (as every error raised inside a module is
    named) and says what it got, as minibng's own messages do ("expected …, got …"); NumPy's and Python's own
    messages ("cannot reshape array of size 0 …", "return arrays must be of ArrayType") never say "got"."""
    message = str(error)
    return isinstance(error, (ValueError, TypeError)) and message.startswith("in layer ") and " got " in message


def run_both_ways(layer, inputs, device):
    """forward(*inputs), then backward of a random dy of the output's shape and dtype; returns (y, dx) or the
    refusal."""
    try:
        y = layer(*inputs)
    except Exception as error:  # noqa: BLE001 - the point is to see which kind
        assert refused(error), f"{layer_name(layer)}{[x.shape for x in inputs]}: {error!r}"
        return None
    assert backend.is_array(y), f"{layer_name(layer)} returned a {type(y).__name__}"
    if not layer.training:
        return y, None
    dy = on(device, np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype))
    try:
        dx = layer.backward(dy)
    except Exception as error:  # noqa: BLE001
        assert refused(error), f"{layer_name(layer)}.backward {tuple(y.shape)}: {error!r}"
        return None
    return y, dx


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_any_rank_and_empty_axes_give_a_result_or_a_named_error(make, shape, device):
    layer = make().to(device)
    x = on(device, np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    result = run_both_ways(layer, [x], device)
    if result is None:
        return
    y, dx = result
    assert dx is None or (dx.shape == x.shape and dx.dtype == x.dtype)
    assert np.isfinite(host(y)).all(), f"NaN or ∞ in the output for finite input of shape {shape}"
    for name, p in layer.named_parameters():
        assert np.isfinite(host(p.grad)).all(), f"{name}: NaN or ∞ in its gradient after {shape}"


@pytest.mark.parametrize("shape", [(), (0,), (3,), (0, 3), (2, 0), (0, 2, 3), (2, 0, 3), (2, 2, 0), (2, 2, 3, 1)],
                         ids=str)
def test_the_loss_gives_a_result_or_a_named_error(shape, device):
    for check in (True, False):
        loss_fn = nn.SoftmaxCrossEntropy(check=check)
        logits = on(device, np.random.default_rng(0).standard_normal(shape).astype(np.float32))
        labels = on(device, np.zeros(shape[:-1], np.int64))
        try:
            loss = loss_fn(logits, labels)
        except Exception as error:  # noqa: BLE001
            assert refused(error), f"{shape}: {error!r}"
            continue
        assert np.isfinite(host(loss)) and loss_fn.backward().shape == shape


@pytest.mark.parametrize("ids_shape", [(), (0,), (2, 0), (3, 2)], ids=str)
def test_embedding_takes_ids_of_any_shape(ids_shape, device):
    layer = nn.Embedding(5, 3).to(device)
    ids = on(device, np.arange(np.prod(ids_shape, dtype=int)).reshape(ids_shape) % 5)
    y = layer(ids)
    assert y.shape == ids_shape + (3,)
    assert layer.backward(on(device, np.ones(y.shape, np.float32))) is None
    assert np.isfinite(host(layer.weight.grad)).all()


def test_an_empty_batch_gives_the_shapes_pytorch_gives(device):
    """Where an empty batch has a result, it is PyTorch's: an empty output, and parameter gradients of 0."""
    cases = [(nn.Linear(3, 2), (0, 3), (0, 2)), (nn.Conv2d(3, 2, 2), (0, 3, 4, 4), (0, 2, 3, 3)),
             (nn.Flatten(), (0, 3, 4), (0, 12)), (nn.BatchNorm1d(3).eval(), (0, 3), (0, 3)),
             (nn.MaxPool2d(2), (0, 3, 4, 4), (0, 3, 2, 2)), (nn.GlobalAvgPool2d(), (0, 3, 4, 4), (0, 3))]
    for layer, shape, expected in cases:
        layer.to(device)
        y = layer(on(device, np.zeros(shape, np.float32)))
        assert y.shape == expected, type(layer).__name__
        if layer.training:
            assert layer.backward(y).shape == shape
            assert all(not host(p.grad).any() for p in layer.parameters())


def test_batch_norm_refuses_an_empty_batch_in_training(device):
    with pytest.raises(ValueError, match=r"in layer BatchNorm1d during forward: expected more than 1 value per "
                                         r"channel in training mode, got input shape \(0, 3\)"):
        nn.BatchNorm1d(3).to(device)(on(device, np.zeros((0, 3), np.float32)))


def test_upstream_gradient_of_another_kind_is_refused(device):
    layer = nn.Linear(3, 2).to(device)
    layer(on(device, np.zeros((4, 3), np.float32)))
    with pytest.raises(TypeError, match=r"in layer Linear during backward: expected an upstream gradient array of "
                                        r"shape \(4, 2\) \(what forward returned\), got list"):
        layer.backward([[0.0, 0.0]] * 4)
    with pytest.raises(TypeError, match="expected an upstream gradient of dtype float32 .*got float64"):
        layer.backward(on(device, np.zeros((4, 2))))
    layer.backward(on(device, np.zeros((4, 2), np.float32)))   # the refusals left the forward's cache usable
