"""ResNets: the option-A shortcut against a naive loop and finite differences, the CIFAR and pre-activation
architectures (layer counts, parameter counts, shapes, initialization), and gradient checks of whole small nets."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng.audit import check_layer
from minibng.models.resnet import BasicBlock, PreActBlock, ZeroPadShortcut, preact_resnet, resnet_cifar
from minibng.nn.conv import Conv2d
from minibng.nn.norm import BatchNorm2d
from support import host, on, run_forward_backward


@st.composite
def shortcut_cases(draw):
    c_in = draw(st.integers(1, 4))
    return dict(n=draw(st.integers(1, 3)), c_in=c_in, c_out=c_in + draw(st.integers(0, 4)),
                stride=draw(st.integers(1, 3)), hw=(draw(st.integers(1, 7)), draw(st.integers(1, 7))),
                seed=draw(st.integers(0, 2**31)))


def naive_zero_pad_shortcut(x, c_out, s):
    n, c_in, h, w = x.shape
    y = np.zeros((n, c_out, -(-h // s), -(-w // s)))
    for a, c, i, j in np.ndindex(*y.shape):
        if c < c_in:
            y[a, c, i, j] = x[a, c, s * i, s * j]
    return y


@given(case=shortcut_cases())
def test_zero_pad_shortcut_matches_naive_loop_and_its_adjoint(device, case):
    layer = ZeroPadShortcut(case["c_in"], case["c_out"], case["stride"])
    x_host = np.random.default_rng(case["seed"]).standard_normal((case["n"], case["c_in"]) + case["hw"])
    y, dy, dx = run_forward_backward(layer, on(device, x_host), dy_seed=case["seed"] + 1)
    np.testing.assert_array_equal(host(y), naive_zero_pad_shortcut(x_host, case["c_out"], case["stride"]))
    # the adjoint: <S x, dy> = <x, S* dy> for every x, so dx is the transpose applied to dy
    dx_ref = np.zeros_like(x_host)
    for a, c, i, j in np.ndindex(*host(dy).shape):
        if c < case["c_in"]:
            dx_ref[a, c, case["stride"] * i, case["stride"] * j] += host(dy)[a, c, i, j]
    np.testing.assert_array_equal(host(dx), dx_ref)


@given(case=shortcut_cases())
def test_zero_pad_shortcut_gradients(device, case):
    x = on(device, np.random.default_rng(case["seed"]).standard_normal((case["n"], case["c_in"]) + case["hw"]))
    check_layer(ZeroPadShortcut(case["c_in"], case["c_out"], case["stride"]), x, seed=case["seed"])


def test_zero_pad_shortcut_keeps_float32_and_rejects_bad_input(device):
    layer = ZeroPadShortcut(2, 4, 2)
    y, _, dx = run_forward_backward(layer, on(device, np.ones((2, 2, 5, 5), np.float32)))
    assert y.dtype == dx.dtype == np.float32 and y.shape == (2, 4, 3, 3)
    with pytest.raises(ValueError, match="2 features on axis 1"):
        layer(on(device, np.ones((2, 3, 5, 5), np.float32)))
    with pytest.raises(ValueError, match="in_channels <= out_channels"):
        ZeroPadShortcut(4, 2)


def _randomize_batch_norms(model, seed):
    """Non-trivial γ and β (β ≠ 0 plays the role of the biases every gradient test needs)."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, BatchNorm2d):
            m.weight.data[...] = rng.uniform(0.5, 1.5, m.num_features)
            m.bias.data[...] = rng.uniform(-0.5, 0.5, m.num_features)
    return model


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_small_cifar_resnet_gradients(device, shortcut):
    model = resnet_cifar(8, num_classes=3, shortcut=shortcut, in_channels=2, widths=(2, 3, 4), dtype=np.float64, rng=0)
    model = _randomize_batch_norms(model, 1).to(device)
    model[-1].bias.data[...] = on(device, np.array([0.3, -0.2, 0.1]))
    x = on(device, np.random.default_rng(2).standard_normal((3, 2, 8, 8)))
    report = check_layer(model, x, seed=3, max_coordinates=6)
    assert len(report.errors) == 1 + len(model.parameters())


@pytest.mark.parametrize("preact,both,stride,c_out", [(True, False, 1, 3), (False, False, 1, 3), (True, True, 2, 5)])
def test_preact_block_gradients(device, preact, both, stride, c_out):
    block = _randomize_batch_norms(PreActBlock(3, c_out, stride, preact=preact, preact_both=both, dtype=np.float64,
                                               rng=4), 5).to(device)
    x = on(device, np.random.default_rng(6).standard_normal((3, 3, 5, 5)))
    check_layer(block, x, seed=7, max_coordinates=8)


def _conv_shapes(model):
    return [tuple(m.weight.shape) for m in model.modules() if isinstance(m, Conv2d)]


@pytest.mark.parametrize("depth", [8, 20, 32])
def test_cifar_resnet_layers_and_parameter_count(depth):
    n = (depth - 2) // 6
    model = resnet_cifar(depth)
    convs = _conv_shapes(model)
    assert len(convs) + 1 == depth  # 6n + 1 convolutions and the classifier
    assert convs[0] == (16, 3, 3, 3) and all(s[2:] == (3, 3) for s in convs)
    assert [s[0] for s in convs[1:]] == [16] * 2 * n + [32] * 2 * n + [64] * 2 * n
    conv_params = sum(int(np.prod(s)) for s in convs)
    bn_params = 2 * (16 + 2 * n * (16 + 32 + 64))
    assert sum(p.size for p in model.parameters()) == conv_params + bn_params + 64 * 10 + 10
    if depth == 20:
        assert sum(p.size for p in model.parameters()) == 269_722  # He et al. (2016a): "0.27M"
    assert all(p.size for p in model.parameters())  # no bias-less layer carries an empty parameter


def test_option_b_adds_two_projections():
    a, b = resnet_cifar(20, shortcut="A"), resnet_cifar(20, shortcut="B")
    extra = [s for s in _conv_shapes(b) if s[2:] == (1, 1)]
    assert extra == [(32, 16, 1, 1), (64, 32, 1, 1)]
    assert sum(p.size for p in b.parameters()) - sum(p.size for p in a.parameters()) == 16 * 32 + 32 * 64 + 2 * (32 + 64)


def test_cifar_resnet_forward_backward_shapes_and_dtype(device):
    model = resnet_cifar(8, num_classes=100, in_channels=1).to(device)
    x = on(device, np.random.default_rng(0).standard_normal((4, 1, 32, 32)).astype(np.float32))
    y, _, dx = run_forward_backward(model, x)
    assert y.shape == (4, 100) and y.dtype == dx.dtype == np.float32 and dx.shape == x.shape
    assert all(p.grad.dtype == np.float32 and np.isfinite(host(p.grad)).all() for p in model.parameters())


def test_he_initialization_and_zero_classifier_bias():
    model = resnet_cifar(56, rng=0)
    weights = np.concatenate([m.weight.data.ravel() for m in model.modules()
                              if isinstance(m, Conv2d) and m.weight.shape[:2] == (64, 64)])
    assert abs(weights.std() - np.sqrt(2 / (9 * 64))) < 0.02 * np.sqrt(2 / (9 * 64))  # N(0, 2/(k·k·out))
    assert abs(weights.mean()) < 0.01 * weights.std() * 10
    assert all(m.bias is None for m in model.modules() if isinstance(m, Conv2d))
    assert np.all(model[-1].bias.data == 0) and np.abs(model[-1].weight.data).max() <= 1 / 8
    first = resnet_cifar(20, rng=1)[0].weight.data
    np.testing.assert_array_equal(first, resnet_cifar(20, rng=1)[0].weight.data)  # a seed gives the same model


def test_basic_block_is_relu_of_branch_plus_shortcut(device):
    block = _randomize_batch_norms(BasicBlock(2, 4, stride=2, shortcut="A", dtype=np.float64, rng=0), 1).to(device)
    x = on(device, np.random.default_rng(2).standard_normal((3, 2, 6, 6)))
    residual = block[0]
    expected = np.maximum(host(residual.branch(x)) + naive_zero_pad_shortcut(host(x), 4, 2), 0)
    np.testing.assert_allclose(host(block(x)), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("depth,blocks", [(18, (2, 2, 2, 2)), (34, (3, 4, 6, 3))])
def test_preact_resnet_structure_and_small_input(device, depth, blocks):
    model = preact_resnet(depth, num_classes=7, rng=0)
    convs = _conv_shapes(model)
    three_by_three = [s for s in convs if s[2:] == (3, 3)]
    assert convs[0] == (64, 3, 7, 7) and len(three_by_three) == 2 * sum(blocks)
    assert [s for s in convs if s[2:] == (1, 1)] == [(128, 64, 1, 1), (256, 128, 1, 1), (512, 256, 1, 1)]
    assert len(three_by_three) + 2 == depth  # the stem convolution, the 3×3s and the classifier
    model.to(device)
    x = on(device, np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32))
    y, _, dx = run_forward_backward(model, x)
    assert y.shape == (2, 7) and dx.shape == x.shape and np.isfinite(host(dx)).all()


def test_preact_resnet34_parameter_count():
    """3×3 convs, the stem, three projections (with BN), every BN's γ and β, and the 1000-way classifier."""
    model = preact_resnet(34)
    stages, widths = (3, 4, 6, 3), (64, 128, 256, 512)
    convs, c_in = 64 * 3 * 49, 64
    bn = 64 + 512  # the stem's BN and the final one
    for count, width in zip(stages, widths):
        for b in range(count):
            convs += 9 * c_in * width + 9 * width * width
            bn += width + (c_in if not (b == 0 and width == 64) else 0)  # the block's inner BN and its pre-activation
            if c_in != width:
                convs += c_in * width
                bn += width
            c_in = width
    assert sum(p.size for p in model.parameters()) == convs + 2 * bn + 512 * 1000 + 1000


@pytest.mark.parametrize("kwargs,message", [({"depth": 21}, "6n \\+ 2"), ({"depth": 2}, "6n \\+ 2"),
                                            ({"shortcut": "C"}, "'A' or 'B'")])
def test_bad_cifar_resnet_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resnet_cifar(**{"depth": 20, **kwargs})


def test_bad_preact_arguments():
    with pytest.raises(ValueError, match="18, 34"):
        preact_resnet(50)
    with pytest.raises(ValueError, match="'A' or 'B'"):
        preact_resnet(34, shortcut="C")


def test_preact_resnet_option_a_has_no_projections(device):
    model = preact_resnet(18, num_classes=5, shortcut="A", rng=0)
    assert not [s for s in _conv_shapes(model) if s[2:] == (1, 1)]
    y = model.to(device)(on(device, np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)))
    assert y.shape == (2, 5)
