"""Embedding: lookup and scatter-add backward against naive loops (repeated ids), gradient check, dtypes,
purity, initialization and errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng.audit import check_layer
from minibng.nn.containers import Sequential
from minibng.nn.embedding import Embedding
from support import aliases, host, on

seeds = st.integers(0, 2**31 - 1)


@given(num=st.integers(1, 6), dim=st.integers(1, 4), shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
       seed=seeds)
def test_lookup_and_scatter_add_equal_naive_loops(device, num, dim, shape, seed):
    rng = np.random.default_rng(seed)
    emb = Embedding(num, dim, dtype=np.float64, rng=seed).to(device)
    table = host(emb.weight.data).copy()
    ids_host = rng.integers(0, num, shape)
    ids = on(device, ids_host)
    y = emb(ids)
    assert y.shape == tuple(shape) + (dim,)
    for index in np.ndindex(*shape):
        np.testing.assert_array_equal(host(y)[index], table[ids_host[index]])
    dys = [rng.standard_normal(tuple(shape) + (dim,)) for _ in range(2)]
    for k, dy in enumerate(dys):                    # two forward/backward pairs accumulate
        if k:
            emb(ids)
        assert emb.backward(on(device, dy)) is None  # ids have no gradient
    expected = np.zeros((num, dim))
    for dy in dys:
        for index in np.ndindex(*shape):
            expected[ids_host[index]] += dy[index]
    np.testing.assert_allclose(host(emb.weight.grad), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(host(ids), ids_host)          # ids not modified


def test_repeated_ids_accumulate(device):
    emb = Embedding(4, 2, dtype=np.float64, rng=0).to(device)
    ids = on(device, np.array([[3, 3, 3], [3, 0, 3]]))
    emb(ids)
    dy = np.random.default_rng(1).standard_normal((2, 3, 2))
    emb.backward(on(device, dy))
    grad = host(emb.weight.grad)
    np.testing.assert_allclose(grad[3], dy[0].sum(axis=0) + dy[1, 0] + dy[1, 2], rtol=1e-14)
    np.testing.assert_allclose(grad[0], dy[1, 1], rtol=1e-14)
    assert not grad[1:3].any()


def test_gradcheck(device):
    emb = Embedding(5, 3, rng=2).to(device)
    report = check_layer(emb, on(device, np.array([[0, 4, 4], [2, 4, 0]])))
    assert list(report.errors) == ["weight"]


def test_float32_pure_and_unaliased(device):
    emb = Embedding(6, 3, rng=3).to(device)
    ids = on(device, np.array([[1, 5], [5, 2]], dtype=np.int32))
    y = emb(ids)
    assert y.dtype == np.float32
    assert not aliases(y, emb.weight.data)
    before = host(emb.weight.data).copy()
    y[...] = 100                                     # writing into the output never touches the table
    np.testing.assert_array_equal(host(emb.weight.data), before)
    dy = on(device, np.random.default_rng(4).standard_normal((2, 2, 3)).astype(np.float32))
    dy_before = host(dy).copy()
    emb.backward(dy)
    assert emb.weight.grad.dtype == np.float32
    np.testing.assert_array_equal(host(dy), dy_before)


def test_initialization():
    table = Embedding(400, 50, rng=0).weight.data
    assert abs(table.mean()) < 0.01 and abs(table.std() - 1) < 0.01      # N(0, 1)
    bounded = Embedding(400, 50, init=0.1, rng=0).weight.data
    assert bounded.min() >= -0.1 and bounded.max() <= 0.1 and bounded.max() > 0.099
    with pytest.raises(ValueError, match="Embedding: init must be 'normal' or a positive float"):
        Embedding(3, 2, init="he")
    with pytest.raises(ValueError, match="Embedding: num_embeddings and embedding_dim must be positive"):
        Embedding(0, 2)


def test_errors_name_the_layer(device):
    net = Sequential(Embedding(10, 3)).to(device)
    with pytest.raises(TypeError, match=r"in layer '0' \(Embedding\) during forward: ids must be integers"):
        net(on(device, np.array([1.0, 2.0])))
    with pytest.raises(ValueError, match=r"in layer '0' \(Embedding\) during forward: ids must lie in \[0, 10\), "
                                         r"got out-of-range values \[-1, 10, 12\] \(4 of 6 ids\)"):
        net(on(device, np.array([[3, 10, -1], [12, 10, 9]])))
    emb = Embedding(10, 3).eval().to(device)
    emb(on(device, np.array([1])))
    with pytest.raises(RuntimeError, match="without a forward pass in training mode"):
        emb.backward(on(device, np.zeros((1, 3), np.float32)))
