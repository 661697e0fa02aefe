"""Fault table, layers, modules and parameters: backward out of turn, bad sizes, bad state, rebound gradients."""
import re

import numpy as np
import pytest

import minibng as mb
from minibng import nn, optim
from minibng.audit import GradcheckError, check_layer
from promise_table import registry
from support import host, on

SECTION = "Layers, modules and parameters"
PROMISES, promise = registry()


def small_model(device):
    mb.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)).to(device)


def batch(device, rows=5, features=4, seed=0):
    return on(device, np.random.default_rng(seed).standard_normal((rows, features)).astype(np.float32))


def grads(model):
    return [host(p.grad).copy() for p in model.parameters()]


def values(model):
    return [host(p.data).copy() for p in model.parameters()]


@promise("backward-twice", "a second `backward` after one `forward`",
         "`BackwardOrderError`: run forward before each backward; every `.grad` is left as the first backward "
         "made it (gradients add up over forward/backward pairs, never within one)")
def _backward_twice(device):
    model = small_model(device)
    dy = on(device, np.random.default_rng(1).standard_normal((5, 2)).astype(np.float32))
    model(batch(device))
    model.backward(dy)
    once = grads(model)
    with pytest.raises(nn.BackwardOrderError, match="Sequential.backward called twice after one forward"):
        model.backward(dy)
    for g, h in zip(grads(model), once):
        np.testing.assert_array_equal(g, h)
    model(batch(device))
    model.backward(dy)                                         # a fresh pair accumulates
    for g, h in zip(grads(model), once):
        np.testing.assert_allclose(g, 2 * h, rtol=1e-6)


@promise("backward-before-forward", "`backward` on a Sigmoid, ReLU or model that never ran forward",
         "`BackwardOrderError` naming the layer: run forward (in training mode) first")
def _backward_before_forward(device):
    dy = on(device, np.ones((2, 3), np.float32))
    for layer in (nn.Sigmoid(), nn.ReLU(), nn.Tanh(), small_model(device)):
        with pytest.raises(nn.BackwardOrderError, match=f"{type(layer).__name__}.backward called without a "
                                                        "forward pass in training mode: run forward"):
            layer.backward(dy)


@promise("backward-after-eval-forward", "`backward` after a forward in evaluation mode (which caches nothing)",
         "`BackwardOrderError`: call .train() and run forward again")
def _backward_after_eval_forward(device):
    model = small_model(device).eval()
    model(batch(device))
    with pytest.raises(nn.BackwardOrderError, match=r"evaluation mode.*call \.train\(\)"):
        model.backward(on(device, np.ones((5, 2), np.float32)))
    inner = small_model(device)
    inner[1].eval()                                            # one layer left in evaluation mode
    inner(batch(device))
    with pytest.raises(RuntimeError, match="Sigmoid.backward called without a forward pass in training mode"):
        inner.backward(on(device, np.ones((5, 2), np.float32)))


@promise("non-integer-size", "`nn.Linear(4.5, 3)` (also Conv2d, Embedding, BatchNorm sizes)",
         "`TypeError`: Linear: in_features must be an integer, got 4.5 (never silently 4)")
def _non_integer_size():
    with pytest.raises(TypeError, match="Linear: in_features must be an integer, got 4.5"):
        nn.Linear(4.5, 3)
    with pytest.raises(TypeError, match="Conv2d: out_channels must be an integer, got 2.0"):
        nn.Conv2d(1, 2.0, 3)
    with pytest.raises(TypeError, match="Embedding: embedding_dim must be an integer"):
        nn.Embedding(10, "8")
    with pytest.raises(TypeError, match="BatchNorm1d: num_features must be an integer"):
        nn.BatchNorm1d(True)
    assert nn.Linear(np.int64(4), 3).in_features == 4          # NumPy integers are integers


@promise("batchnorm-eps-too-small", "`nn.BatchNorm2d(3, eps=1e-80)` in float32 (or a float64 layer with that eps "
         "cast to float32)", "`ValueError`: 1/√eps, which normalizes a channel whose values are all equal, would "
         "exceed float32's largest number; the message gives the smallest eps that works (8.6e-78) and dtype='float64'")
def _batchnorm_eps_too_small(device):
    with pytest.raises(ValueError, match=r"BatchNorm2d: eps=1e-80 is too small for float32.*eps ≥ 8\.6e-78"):
        nn.BatchNorm2d(3, eps=1e-80)
    narrowed = nn.BatchNorm1d(3, eps=1e-80, dtype="float64").astype(np.float32).to(device)
    with pytest.raises(ValueError, match=r"in layer BatchNorm1d during forward: BatchNorm1d: eps=1e-80 is too small"):
        narrowed(batch(device, features=3))


@promise("global-average-of-nothing", "`nn.GlobalAvgPool2d` on images of 0 rows or 0 columns",
         "`ValueError` naming the shape (never a division by 0 or a NaN average)")
def _global_average_of_nothing(device):
    with pytest.raises(ValueError, match=r"expected a non-empty spatial extent, got input of shape \(2, 3, 0, 4\)"):
        nn.GlobalAvgPool2d()(on(device, np.zeros((2, 3, 0, 4), np.float32)))


@promise("empty-batch-into-the-loss", "an empty batch into `SoftmaxCrossEntropy`: logits of shape (0, C), or (N, 0) "
         "with no class", "`ValueError` naming the layer and the shape, with `check=False` too: a mean over no rows "
         "has no value (never a ZeroDivisionError or a NaN loss)")
def _empty_batch_into_the_loss(device):
    for check in (True, False):
        for shape in ((0, 10), (4, 0), (3, 0, 10)):
            labels = on(device, np.zeros(shape[:-1], np.int64))
            message = ("in layer SoftmaxCrossEntropy during forward: expected logits of shape (N, C) or (T, N, C) "
                       f"with at least one row and one class, got {shape}")
            with pytest.raises(ValueError, match=re.escape(message)):
                nn.SoftmaxCrossEntropy(check=check)(on(device, np.zeros(shape, np.float32)), labels)


@promise("input-without-the-expected-axes", "a 0-d array into `Linear` (or any layer); a 1-d array into `Flatten`, "
         "`Conv2d` or `BatchNorm1d`; a `Concat` axis its branches' outputs lack", "`ValueError` naming the layer, the "
         "expected and the given shape (never an IndexError, nor a NumPy scalar returned for an array)")
def _input_without_the_expected_axes(device):
    scalar, vector = on(device, np.array(0.5, np.float32)), on(device, np.ones(3, np.float32))
    cases = [(nn.Linear(3, 2), scalar, "in layer Linear during forward: expected input of rank 1 or more, got "
                                       "shape ()"),
             (nn.Sigmoid(), scalar, "in layer Sigmoid during forward: expected input of rank 1 or more"),
             (nn.Sequential(nn.Linear(3, 2)), scalar, "in layer '0' (Linear) during forward: expected input of rank"),
             (nn.Flatten(), vector, "in layer Flatten during forward: expected input of shape (N, d₁, …), rank 2 or "
                                    "more, got (3,)"),
             (nn.Conv2d(3, 2, 2), vector, "in layer Conv2d during forward: expected input of shape (N, 3, H, W), "
                                          "got (3,)"),
             (nn.BatchNorm1d(3), vector, "in layer BatchNorm1d during forward: expected input of shape (N, 3) or "
                                         "(N, 3, L), got (3,)"),
             (nn.Concat(nn.ReLU(), nn.Tanh(), axis=1), vector, "in layer Concat during forward: expected branch "
                                                                "outputs with an axis 1, got shape (3,)")]
    for layer, x, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            layer.to(device)(x)
    assert nn.Linear(3, 2).to(device)(vector).shape == (2,)      # one sample without a batch axis is an input


@promise("empty-batch-through-layers", "an empty batch (N = 0) into `Conv2d`, `Linear`, `Flatten`, a pool, an "
         "activation, or `BatchNorm` in evaluation mode; into `BatchNorm` in training mode", "an empty output of the "
         "right shape and gradients of 0, as PyTorch gives (no IndexError, no “cannot reshape”); `BatchNorm` in "
         "training: `ValueError` naming the shape (its statistics need more than 1 value per channel)")
def _empty_batch_through_layers(device):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(16, 5), nn.Sigmoid()).to(device)
    empty = on(device, np.zeros((0, 3, 4, 4), np.float32))
    y = model(empty)
    assert y.shape == (0, 5)
    assert model.backward(on(device, np.zeros((0, 5), np.float32))).shape == (0, 3, 4, 4)
    assert all(not host(p.grad).any() for p in model.parameters())
    normalize = nn.BatchNorm2d(3).to(device)
    assert normalize.eval()(empty).shape == (0, 3, 4, 4)
    with pytest.raises(ValueError, match=r"in layer BatchNorm2d during forward: expected more than 1 value per channel "
                                         r"in training mode, got input shape \(0, 3, 4, 4\)"):
        normalize.train()(empty)


@promise("layer-option-of-another-kind", "`Dropout('0.5')`, `BatchNorm1d(3, momentum='0.1')`: a string, None, a "
         "bool, NaN or ∞ for any argument of any layer", "`TypeError` (another kind) or `ValueError` (out of range) "
         "naming the layer and the option, before any weight is drawn: True is never taken for 1, nor ∞ for a bound, "
         "nor None for float64 (never “'<=' not supported between …”)")
def _layer_option_of_another_kind():
    inf = float("inf")
    cases = [(lambda: nn.Dropout("0.5"), TypeError, r"Dropout: p must be a number, got '0\.5' \(str\)"),
             (lambda: nn.BatchNorm1d(3, momentum="0.1"), TypeError, "BatchNorm1d: momentum must be a number, got '0"),
             (lambda: nn.BatchNorm2d(3, eps=inf), ValueError, "BatchNorm2d: eps must be a finite number, got inf"),
             (lambda: nn.Linear(3, 2, init=inf), ValueError, "Linear: init must be .*a positive float bound"),
             (lambda: nn.Linear(3, 2, dtype=None), TypeError, "Linear: dtype must be float32 or float64, got None"),
             (lambda: nn.Conv2d(3, 2, kernel_size=True), TypeError, "Conv2d kernel_size must be an int or a pair"),
             (lambda: nn.LSTM(3, 4, dropout=None), TypeError, "LSTM: dropout must be a number, got None"),
             (lambda: nn.Embedding(5, 3, check="no"), TypeError, "Embedding: check must be True or False, got 'no'")]
    generator = mb.backend.host_rng()
    for build, error, message in cases:
        before = generator.bit_generator.state
        with pytest.raises(error, match=message):
            build()
        assert generator.bit_generator.state == before


@promise("upstream-gradient-of-another-kind", "`backward` given a list, or a dy of another dtype than the output of "
         "`forward`", "`TypeError` naming the layer, the expected and the given kind (never a silent float64 "
         "upcast); the forward's cache stays usable")
def _upstream_gradient_of_another_kind(device):
    model = small_model(device)
    model(batch(device))
    with pytest.raises(TypeError, match=r"in layer Sequential during backward: expected an upstream gradient array of "
                                        r"shape \(5, 2\) \(what forward returned\), got list"):
        model.backward([[0.0, 0.0]] * 5)
    with pytest.raises(TypeError, match=r"expected an upstream gradient of dtype float32 \(what forward returned\), "
                                        "got float64"):
        model.backward(on(device, np.ones((5, 2))))
    assert model.backward(on(device, np.ones((5, 2), np.float32))).dtype == np.float32


def _refused_state(device, key, value, error, match):
    """``load_state_dict`` with one bad entry (the last one) raises and leaves every entry as it was."""
    model = small_model(device)
    before = values(model)
    state = {name: v + 1 for name, v in model.state_dict().items()}
    state[key] = value
    with pytest.raises(error, match=match):
        model.load_state_dict(state)
    for v, w in zip(values(model), before):
        np.testing.assert_array_equal(v, w)


@promise("state-entry-list", "`load_state_dict` with a Python list as one entry",
         "`TypeError` naming the entry; no entry of the model is changed")
def _state_entry_list(device):
    _refused_state(device, "2.bias", [0.0, 1.0], TypeError, r"entry '2\.bias': expected a NumPy or CuPy array, "
                                                              "got list")


@promise("state-entry-text", "`load_state_dict` with an array of strings as one entry",
         "`TypeError` naming the entry and its dtype; no entry is changed")
def _state_entry_text(device):
    _refused_state(device, "2.bias", np.array(["a", "b"]), TypeError, r"entry '2\.bias': expected numbers")


@promise("state-entry-nan", "`load_state_dict` whose last entry holds NaN",
         "`ValueError` naming the entry; the entries before it are not overwritten (everything is checked "
         "before anything is written)")
def _state_entry_nan(device):
    _refused_state(device, "2.bias", np.array([0.0, np.nan], np.float32), ValueError,
                   r"entry '2\.bias' holds NaN or infinite values")


@promise("state-entry-shape", "`load_state_dict` whose last entry has the wrong shape",
         "`ValueError` naming the entry, the expected and the given shape; no entry is changed")
def _state_entry_shape(device):
    _refused_state(device, "2.bias", np.zeros(3, np.float32), ValueError,
                   r"entry '2\.bias': expected shape \(2,\), got \(3,\)")


class RebindingLinear(nn.Linear):
    """A layer written as `self.weight.grad = …` instead of `+=` (no accumulation, and a rebinding)."""

    def backward(self, dy):
        x2, dy2 = self._x.reshape(-1, self.in_features), dy.reshape(-1, self.out_features)
        self.weight.grad = x2.T @ dy2
        self.bias.grad = dy2.sum(axis=0)
        return dy @ self.weight.data.T


@promise("rebound-gradient", "a layer that rebinds `self.weight.grad = …` while an optimizer packs its "
         "parameters", "the values are copied into the optimizer's flat gradient, so the model moves exactly as "
         "with `+=` after `zero_grad()`; gradcheck flags the missing accumulation")
def _rebound_gradient(device):
    def trained(layer_class):
        mb.manual_seed(0)
        model = nn.Sequential(layer_class(4, 3)).to(device)
        opt = optim.SGD(model, lr=0.1)
        for seed in range(3):
            opt.zero_grad()
            loss_fn = nn.SoftmaxCrossEntropy()
            loss_fn(model(batch(device, seed=seed)), on(device, np.array([0, 1, 2, 0, 1])))
            model.backward(loss_fn.backward())
            opt.step()
        return model, opt

    rebinding, opt = trained(RebindingLinear)
    reference, _ = trained(nn.Linear)
    for p, q in zip(rebinding.parameters(), reference.parameters()):
        np.testing.assert_allclose(host(p.data), host(q.data), rtol=1e-6)
        assert p.packed_by is opt.flat
    np.testing.assert_array_equal(host(opt.flat.g[:12]), host(rebinding[0].weight.grad).reshape(-1))
    with pytest.raises(GradcheckError, match="weight .*did not add to .grad"):
        check_layer(RebindingLinear(4, 3).to(device), batch(device))


@promise("rebound-data", "`p.data = new_array` (not `p.data[...] = …`) on a parameter an optimizer packs",
         "the values are copied into the optimizer's flat vector; model and optimizer keep agreeing")
def _rebound_data(device):
    model = small_model(device)
    opt = optim.SGD(model, lr=0.1)
    weight = model[0].weight
    weight.data = on(device, np.full((4, 3), 0.5, np.float32))
    assert weight.packed_by is opt.flat
    assert host(opt.flat.x[:12]).tolist() == [0.5] * 12 and host(weight.data).tolist() == [[0.5] * 3] * 4


@promise("parameter-wrong-shape", "`p.grad = array_of_another_shape` (or `p.data = …`)",
         "`ValueError`: a parameter keeps its shape; nothing is changed")
def _parameter_wrong_shape(device):
    weight = small_model(device)[0].weight
    with pytest.raises(ValueError, match=r"Parameter\.grad: got an array of shape \(3, 4\), the parameter has "
                                         r"shape \(4, 3\)"):
        weight.grad = on(device, np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match=r"Parameter\.data must be a NumPy or CuPy array, got list"):
        weight.data = [[0.0] * 3] * 4
    assert weight.grad.shape == weight.data.shape == (4, 3)


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, device, request):
    case.run(request, device=device)
