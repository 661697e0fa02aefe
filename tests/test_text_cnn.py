"""Kim's sentence CNN: GlobalMaxPool2d, WordsToChannels, text_cnn and MaxNorm against naive loops, gradient
checks, purity, dtypes, errors, and learning a generated corpus."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng import backend, optim
from minibng.audit import check_layer
from minibng.nn.loss import SoftmaxCrossEntropy
from minibng.nn.pool import GlobalMaxPool2d
from minibng.models.text_cnn import WordsToChannels, text_cnn
from minibng.train import MaxNorm
from support import host, on, run_forward_backward


def distinct_values(shape, seed):
    """Values at least 0.1 apart, so the maximum is unique and stays so within a finite-difference step."""
    rng, size = np.random.default_rng(seed), int(np.prod(shape))
    return (rng.permutation(size) * 0.1 - 1 + rng.uniform(-0.01, 0.01, size)).reshape(shape)


def naive_global_max(x, dy):
    n, c, h, w = x.shape
    y, dx = np.zeros((n, c)), np.zeros_like(x)
    for i in range(n):
        for j in range(c):
            best = (0, 0)
            for a in range(h):
                for b in range(w):
                    if x[i, j, a, b] > x[i, j][best]:  # strictly greater: the first maximum wins
                        best = (a, b)
            y[i, j] = x[i, j][best]
            dx[i, j][best] += dy[i, j]
    return y, dx


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 3)),
       seed=st.integers(0, 2**31))
def test_global_max_pool_equals_naive_loop(device, shape, seed):
    x = on(device, distinct_values(shape, seed))
    y, dy, dx = run_forward_backward(GlobalMaxPool2d(), x, dy_seed=seed)
    y_ref, dx_ref = naive_global_max(host(x), host(dy))
    np.testing.assert_array_equal(host(y), y_ref)
    np.testing.assert_array_equal(host(dx), dx_ref)


def test_global_max_pool_gradcheck_ties_and_dtype(device):
    check_layer(GlobalMaxPool2d(), on(device, distinct_values((2, 3, 5, 2), 7)))
    tied = on(device, np.array([[[[1.0], [3.0], [3.0], [-2.0]]]], dtype=np.float32))  # two maxima: the first wins
    pool = GlobalMaxPool2d()
    y = pool(tied)
    dx = pool.backward(on(device, np.array([[0.7]], dtype=np.float32)))
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_array_equal(host(dx).ravel(), np.array([0, 0.7, 0, 0], dtype=np.float32))


def test_global_max_pool_errors(device):
    pool = GlobalMaxPool2d()
    with pytest.raises(ValueError, match="4"):
        pool(on(device, np.zeros((2, 3, 4))))
    pool(on(device, distinct_values((2, 3, 4, 1), 0)))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        pool.backward(on(device, np.zeros((2, 4))))
    pool.eval()
    pool(on(device, distinct_values((2, 3, 4, 1), 0)))
    with pytest.raises(RuntimeError, match="without a forward pass"):
        pool.backward(on(device, np.zeros((2, 3))))


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 4)), seed=st.integers(0, 2**31))
def test_words_to_channels_equals_naive_loop(device, shape, seed):
    x = on(device, np.random.default_rng(seed).standard_normal(shape))
    y, dy, dx = run_forward_backward(WordsToChannels(), x, dy_seed=seed)
    xh, dyh = host(x), host(dy)
    n, length, k = shape
    for i, t, c in np.ndindex(n, length, k):
        assert host(y)[i, c, t, 0] == xh[i, t, c] and host(dx)[i, t, c] == dyh[i, c, t, 0]
    check_layer(WordsToChannels(), x)


def small_model(seed=3, vocab=11, embed=4, widths=(1, 2, 3), maps=3, dropout=0.5, classes=3):
    model = text_cnn(vocab, embed=embed, widths=widths, maps=maps, dropout=dropout, classes=classes,
                     rng=np.random.default_rng(seed))
    for p in model.parameters():  # non-zero biases, distinct values
        p.data[...] += np.random.default_rng(seed + 1).uniform(-0.2, 0.2, p.shape).astype(p.dtype)
    return model


def naive_text_cnn(model, ids):
    """Kim's equations, one sentence, filter and window at a time, from the model's own parameters."""
    table = host(model[0].weight.data)
    convs = [m for name, m in model[2].named_modules() if name.endswith(".0")]  # each branch's Conv2d
    out_w, out_b = host(model[4].weight.data), host(model[4].bias.data)
    scores = []
    for sentence in host(ids):
        words = table[sentence]                                    # x_1 … x_L, each in R^k
        features = []
        for conv in convs:
            w, b = host(conv.weight.data), host(conv.bias.data)    # (maps, k, h, 1), (maps,)
            h = w.shape[2]
            for o in range(w.shape[0]):
                c = [max(0.0, sum(w[o, :, i, 0] @ words[t + i] for i in range(h)) + b[o])
                     for t in range(len(words) - h + 1)]
                features.append(max(c))                            # max over time
        scores.append(np.array(features) @ out_w + out_b)
    return np.array(scores)


def test_forward_equals_kims_equations(device):
    model = small_model().astype(np.float64).to(device)
    model.eval()
    ids = on(device, np.random.default_rng(0).integers(0, 11, (3, 6)))
    np.testing.assert_allclose(host(model(ids)), naive_text_cnn(model, ids), rtol=1e-12, atol=1e-12)


def test_whole_model_gradcheck_with_dropout(device):
    model = small_model().astype(np.float64).to(device)
    ids = on(device, np.random.default_rng(1).integers(0, 11, (2, 5)))
    report = check_layer(model, ids)
    assert set(report.errors) == {name for name, _ in model.named_parameters()}


def test_float32_end_to_end_and_shapes(device):
    backend.manual_seed(0)
    model = text_cnn(50, embed=8, maps=5).to(device)
    ids = on(device, np.random.default_rng(2).integers(0, 50, (4, 9)))
    y, _, dx = run_forward_backward(model, ids)
    assert dx is None and y.shape == (4, 2) and y.dtype == np.float32
    assert all(p.grad.dtype == np.float32 and float(abs(p.grad).sum()) > 0 for p in model.parameters())
    assert [n for n, _ in model.named_parameters()] == [
        "0.weight", "2.0.0.weight", "2.0.0.bias", "2.1.0.weight", "2.1.0.bias", "2.2.0.weight", "2.2.0.bias",
        "4.weight", "4.bias"]


def test_errors(device):
    with pytest.raises(ValueError, match="widths"):
        text_cnn(10, widths=())
    with pytest.raises(ValueError, match="classes"):
        text_cnn(10, classes=1)
    model = text_cnn(10, embed=4, widths=(3, 5), maps=2).to(device)
    with pytest.raises(ValueError, match=r"layer '2\.1\.0'.*smaller than the kernel"):
        model(on(device, np.zeros((2, 4), dtype=np.int64)))     # shorter than the widest filter
    with pytest.raises(TypeError, match="MaxNorm"):
        MaxNorm(model[2])
    with pytest.raises(ValueError, match="positive"):
        MaxNorm(model[-1], s=0)


def test_max_norm_rescales_long_columns_only(device):
    model = small_model(classes=4).to(device)
    opt = optim.create("adam", model)                # weights now live in the optimizer's flat vector
    out = model[-1]
    rng = np.random.default_rng(5)
    w = rng.standard_normal(out.weight.shape) * np.array([0.1, 3.0, 0.5, 2.0])
    out.weight.data[...] = on(device, w.astype(np.float32))
    bias_before = host(out.bias.data).copy()
    s = 1.5
    MaxNorm(out, s).on_step_end(trainer=None)
    expected = w.copy()
    for j in range(w.shape[1]):
        norm = np.sqrt(sum(v * v for v in w[:, j]))
        if norm > s:
            expected[:, j] *= s / norm
    np.testing.assert_allclose(host(out.weight.data), expected, rtol=1e-6)
    assert np.linalg.norm(host(out.weight.data), axis=0).max() <= s * (1 + 1e-6)
    np.testing.assert_array_equal(host(out.bias.data), bias_before)
    size = out.weight.size + out.bias.size           # the output layer is the flat vector's last block
    np.testing.assert_array_equal(host(opt.flat.x)[-size:-out.bias.size], host(out.weight.data).ravel())


def test_learns_a_generated_corpus(device):
    """Label = whether word 1 ('great') occurs: the max over time finds it wherever it sits."""
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 30, (400, 12))
    labels = rng.integers(0, 2, 400)
    where = rng.integers(0, 12, 400)
    ids[labels == 1, where[labels == 1]] = 1
    backend.manual_seed(0)
    model = text_cnn(30, embed=8, widths=(2, 3), maps=6, dropout=0.2).to(device)
    opt, loss_fn, max_norm = optim.create("adamng", model, lr=0.01), SoftmaxCrossEntropy(), MaxNorm(model[-1])
    x, y = on(device, ids), on(device, labels)
    for epoch in range(6):
        for k in range(0, 300, 25):
            loss_fn(model(x[k:k + 25]), y[k:k + 25])
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
            max_norm.on_step_end(None)
    model.eval()
    accuracy = float((model(x[300:]).argmax(axis=1) == y[300:]).mean())
    assert accuracy >= 0.95
