"""SoftmaxCrossEntropy: reference values, gradients, stability, sequences."""
import numpy as np
from hypothesis import given, strategies as st

from minibng import nn
from minibng.gradcheck import check
from support import host, on

seeds = st.integers(0, 2**31 - 1)


def reference_loss(logits, labels):
    z = logits.reshape(-1, logits.shape[-1])
    total = 0.0
    for row, label in zip(z, labels.reshape(-1)):
        total += -np.log(np.exp(row[label]) / np.exp(row).sum())
    return total / len(z)


@given(n=st.integers(1, 6), classes=st.integers(2, 5), seq=st.sampled_from([None, 1, 3]), seed=seeds)
def test_loss_value_and_gradient(device, n, classes, seq, seed):
    rng = np.random.default_rng(seed)
    shape = (n,) if seq is None else (seq, n)
    logits_host = rng.standard_normal(shape + (classes,)) * 2
    labels_host = rng.integers(0, classes, shape)
    logits, labels = on(device, logits_host), on(device, labels_host)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn(logits, labels)
    assert loss.shape == () and type(loss).__module__.split(".")[0] == type(logits).__module__.split(".")[0]
    np.testing.assert_allclose(float(loss), reference_loss(logits_host, labels_host), rtol=1e-12)
    check(loss_fn, logits, labels, dy=rng.uniform(0.5, 2.0))


def test_backward_scales_with_the_upstream_gradient(device):
    logits = on(device, np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32))
    labels = on(device, np.array([0, 3, 1]))
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn(logits, labels)
    one, two = loss_fn.backward(), loss_fn.backward(2.0)
    assert one.dtype == np.float32
    np.testing.assert_allclose(host(two), 2 * host(one), rtol=1e-6)
    np.testing.assert_allclose(host(one).sum(axis=1), 0, atol=1e-7)  # softmax − onehot sums to zero per row


def test_huge_logits_stay_finite(device):
    logits = on(device, np.array([[1e4, -1e4, 0.0], [3e30, 0.0, -3e30]], np.float32))
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn(logits, on(device, np.array([1, 0])))
    np.testing.assert_allclose(float(loss), 1e4, rtol=1e-6)  # row 0 pays 2e4, row 1 pays nothing
    assert np.isfinite(host(loss_fn.backward())).all()
