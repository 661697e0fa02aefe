"""Conv2d: naive-loop reference, gradient checks, chunking, purity, dtype discipline, initialization, errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minibng.nn.im2col as im2col_module
from minibng.audit import check_layer
from minibng.nn.containers import Sequential
from minibng.nn.conv import Conv2d
from support import host, on, run_forward_backward


@st.composite
def conv_geometries(draw):
    """Tiny (N, C, O, H, W, kernel, stride, padding) with the padded input at least as large as the kernel."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    height = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 6))
    width = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 6))
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 3)), o=draw(st.integers(1, 3)),
                hw=(height, width), kernel=kernel, stride=stride, padding=padding, seed=draw(st.integers(0, 2**31)))


def make_conv(g, dtype=np.float64, **kwargs):
    layer = Conv2d(g["c"], g["o"], g["kernel"], stride=g["stride"], padding=g["padding"], dtype=dtype,
                   rng=g["seed"], **kwargs)
    layer.bias.data[...] = np.random.default_rng(g["seed"] + 1).uniform(0.5, 1.5, g["o"]) * np.where(
        np.arange(g["o"]) % 2, -1, 1)  # non-zero biases of both signs
    return layer


def naive_conv(x, w, b, stride, padding):
    """y[n,o,h,w] = b[o] + Σ_{c,i,j} W[o,c,i,j] x̃[n,c,s_h h+i,s_w w+j], one output element at a time."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, hp, wp = xp.shape
    o, _, kh, kw = w.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    y = np.zeros((n, o, ho, wo))
    for a in range(n):
        for f in range(o):
            for h in range(ho):
                for v in range(wo):
                    y[a, f, h, v] = b[f] + np.sum(w[f] * xp[a, :, sh * h:sh * h + kh, sw * v:sw * v + kw])
    return y


def naive_conv_backward(x, w, dy, stride, padding):
    """(dx, dW, db) by adding each output's contribution to the pixels and weights it used."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    _, _, kh, kw = w.shape
    for a, f, h, v in np.ndindex(*dy.shape):
        dxp[a, :, sh * h:sh * h + kh, sw * v:sw * v + kw] += dy[a, f, h, v] * w[f]
        dw[f] += dy[a, f, h, v] * xp[a, :, sh * h:sh * h + kh, sw * v:sw * v + kw]
    dx = dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    return dx, dw, dy.sum(axis=(0, 2, 3))


@given(g=conv_geometries())
def test_conv_matches_naive_reference(device, g):
    layer = make_conv(g).to(device)
    x_host = np.random.default_rng(g["seed"]).standard_normal((g["n"], g["c"]) + g["hw"])
    y, dy, dx = run_forward_backward(layer, on(device, x_host), dy_seed=g["seed"] + 1)
    w, b = host(layer.weight.data), host(layer.bias.data)
    np.testing.assert_allclose(host(y), naive_conv(x_host, w, b, g["stride"], g["padding"]), rtol=0, atol=1e-8)
    dx_ref, dw_ref, db_ref = naive_conv_backward(x_host, w, host(dy), g["stride"], g["padding"])
    np.testing.assert_allclose(host(dx), dx_ref, rtol=0, atol=1e-8)
    np.testing.assert_allclose(host(layer.weight.grad), dw_ref, rtol=0, atol=1e-8)
    np.testing.assert_allclose(host(layer.bias.grad), db_ref, rtol=0, atol=1e-8)


@given(g=conv_geometries())
def test_conv_gradients(device, g):
    layer = make_conv(g).to(device)
    x = on(device, np.random.default_rng(g["seed"]).standard_normal((g["n"], g["c"]) + g["hw"]))
    check_layer(layer, x, seed=g["seed"] + 2)


@given(g=conv_geometries(), limit=st.integers(1, 200))
def test_chunked_columns_equal_one_buffer_and_stay_bounded(device, g, limit):
    x = on(device, np.random.default_rng(g["seed"]).standard_normal((g["n"] + 3, g["c"]) + g["hw"]))
    whole, chunked = make_conv(g).to(device), make_conv(g, max_columns_bytes=limit * 8).to(device)
    y_whole, dy, dx_whole = run_forward_backward(whole, x, dy_seed=g["seed"] + 1)
    sizes, real_im2col = [], im2col_module.im2col

    def recording_im2col(*args, **kwargs):
        cols = real_im2col(*args, **kwargs)
        sizes.append(cols.nbytes)
        return cols

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(im2col_module, "im2col", recording_im2col)
        y_chunked, _, dx_chunked = run_forward_backward(chunked, x, dy_seed=g["seed"] + 1)
    image_bytes = g["c"] * g["kernel"][0] * g["kernel"][1] * y_whole.shape[2] * y_whole.shape[3] * 8
    assert max(sizes) <= max(limit * 8, image_bytes)  # the limit, or one image when a single image exceeds it
    if image_bytes <= limit * 8 < x.shape[0] * image_bytes:
        assert len(sizes) >= 4  # at least two chunks in forward and two in backward
    for a, b in [(y_whole, y_chunked), (dx_whole, dx_chunked), (whole.weight.grad, chunked.weight.grad),
                 (whole.bias.grad, chunked.bias.grad)]:
        np.testing.assert_allclose(host(b), host(a), rtol=1e-12, atol=1e-12)


def test_float32_in_float32_out(device):
    layer = Conv2d(3, 4, 3, stride=2, padding=1).to(device)
    x = on(device, np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float32))
    y, _, dx = run_forward_backward(layer, x)
    assert y.dtype == dx.dtype == np.float32
    assert layer.weight.grad.dtype == layer.bias.grad.dtype == np.float32


def test_backward_accumulates_into_grad(device):
    layer = Conv2d(2, 3, 3, padding=1).to(device)
    x = on(device, np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32))
    dy = on(device, np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32))
    layer(x)
    layer.backward(dy)
    once = host(layer.weight.grad).copy()
    layer(x)                                       # every backward needs its own forward
    layer.backward(dy)
    np.testing.assert_allclose(host(layer.weight.grad), 2 * once, rtol=1e-6)


def test_eval_mode_caches_nothing(device):
    layer = Conv2d(2, 3, 3).to(device).eval()
    layer(on(device, np.zeros((1, 2, 4, 4), np.float32)))
    with pytest.raises(RuntimeError, match="without a forward pass in training mode"):
        layer.backward(on(device, np.ones((1, 3, 2, 2), np.float32)))


def test_torch_initialization_bounds():
    layer = Conv2d(4, 8, (3, 2), rng=0)
    bound = 1 / np.sqrt(4 * 3 * 2)
    assert layer.weight.shape == (8, 4, 3, 2)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.abs(layer.bias.data).max() <= bound


def test_he_initialization_uses_the_output_fan_as_fb_resnet_torch():
    layer = Conv2d(32, 64, 3, init="he", rng=0)
    assert abs(layer.weight.data.std() / np.sqrt(2 / (3 * 3 * 64)) - 1) < 0.03
    np.testing.assert_array_equal(layer.bias.data, 0)
    assert Conv2d(2, 2, 1, bias=False).bias is None


@pytest.mark.parametrize("shape, dtype, error, message", [
    ((2, 4, 5, 5), np.float32, ValueError, r"expected input of shape \(N, 3, H, W\), got \(2, 4, 5, 5\)"),
    ((3, 5, 5), np.float32, ValueError, r"expected input of shape \(N, 3, H, W\), got \(3, 5, 5\)"),
    ((2, 3, 5, 5), np.float64, TypeError, "expected float32 input .*got float64"),
    ((2, 3, 1, 5), np.float32, ValueError, r"spatial size \(1, 5\) padded to \(1, 5\) is smaller than the kernel"),
])
def test_bad_inputs_name_the_layer(device, shape, dtype, error, message):
    model = Sequential(Conv2d(3, 2, 3)).to(device)
    with pytest.raises(error, match=r"layer '0' \(Conv2d\).*" + message):
        model(on(device, np.zeros(shape, dtype)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(kernel_size=0), "kernel_size must be"), (dict(kernel_size=(2, 2, 2)), "kernel_size must be"),
    (dict(kernel_size=2, stride=0), "stride must be"), (dict(kernel_size=2, padding=-1), "padding must be"),
    (dict(kernel_size=2, max_columns_bytes=0), "max_columns_bytes must be ≥ 1"),
])
def test_invalid_hyperparameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv2d(2, 3, **kwargs)


def test_conv_without_input_gradient_returns_none_and_the_same_parameter_gradients(device):
    rng = np.random.default_rng(0)
    x = on(device, rng.standard_normal((2, 3, 6, 6)).astype(np.float32))
    dy = on(device, rng.standard_normal((2, 4, 6, 6)).astype(np.float32))
    full = Conv2d(3, 4, 3, padding=1, rng=1).to(device)
    first = Conv2d(3, 4, 3, padding=1, rng=1, input_grad=False).to(device)
    full(x), first(x)
    assert full.backward(dy) is not None and first.backward(dy) is None
    for p, q in zip(full.parameters(), first.parameters()):
        np.testing.assert_array_equal(host(p.grad), host(q.grad))
