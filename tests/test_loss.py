"""SoftmaxCrossEntropy: reference values, gradients, stability, sequences."""
import numpy as np
import pytest
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


def exact_loss_and_gradient(logits, labels):
    """The mean loss and ∂L/∂z of (M, C) logits in 50-digit decimal arithmetic, every difference formed so that
    nothing cancels or overflows: with t_c = e^{z_c − max z} ≤ 1, ℓ = log Σ_c t_c + (max z − z_y), the log taken
    from the sum of the terms other than the label's by its series where the label holds the max and that sum is
    tiny, and p_y − 1 = −Σ_{c≠y} p_c."""
    from decimal import Decimal, localcontext

    with localcontext() as context:
        context.prec = 50
        total, gradient = Decimal(0), []
        for row, label in zip(logits, labels):
            z = [Decimal(float(v)) for v in row]
            top = max(z)
            terms = [(v - top).exp() for v in z]                        # e^{z_c − max z}
            others = sum(t for c, t in enumerate(terms) if c != label)
            norm = terms[label] + others
            tiny_rest = terms[label] == 1 and others < Decimal("1e-15")
            total += (others - others ** 2 / 2 + others ** 3 / 3 if tiny_rest else norm.ln()) + (top - z[label])
            gradient.append([(t / norm if c != label else -others / norm) / len(logits) for c, t in enumerate(terms)])
        return total / len(logits), gradient


def relative_errors(got, exact, dtype):
    """|got − exact| / max(|exact|, the dtype's smallest normal number), per value."""
    from decimal import Decimal

    tiny = Decimal(float(np.finfo(dtype).tiny))
    return [float(abs(Decimal(float(g)) - e) / max(abs(e), tiny)) for g, e in zip(got, exact)]


CONFIDENT = [([20.0, 0.0, 0.0], 0), ([40.0, -3.0], 0), ([1e4, -1e4, 0.0], 0), ([1e4, -1e4, 0.0], 1),
             ([0.0, 30.0, 0.0], 1), ([-1e38, 1e38, 0.0], 1), ([87.0, 0.0, -87.0], 0)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("row, label", CONFIDENT)
def test_confident_and_huge_rows_get_their_exact_loss_and_gradient(device, dtype, row, label):
    """A label that wins by 20 costs 4.1e-9, not log(1 + 4.1e-9) = 0, and its gradient is −4.1e-9, not
    1/(1 + r) − 1 = 0 (float32 rounds 1 + r to 1 once r < 6e-8); logits of ±1e4 and ±1e38 stay exact."""
    logits = np.array([row], dtype)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = float(loss_fn(on(device, logits), on(device, np.array([label]))))
    gradient = host(loss_fn.backward())[0]
    exact_loss, exact_gradient = exact_loss_and_gradient(logits, [label])
    eps = np.finfo(dtype).eps
    assert relative_errors([loss], [exact_loss], dtype)[0] <= 4 * eps
    assert max(relative_errors(gradient, exact_gradient[0], dtype)) <= 4 * eps


@pytest.mark.parametrize("dtype, logit", [(np.float32, 1e38), (np.float64, 5e307)])
def test_the_mean_of_row_losses_near_the_largest_number_does_not_overflow(device, dtype, logit):
    """Rows paying 2·logit each (2e38 in float32, 1e308 in float64) sum beyond the dtype's largest number, but their
    mean, with a confident row and an ordinary one beside them, is representable: it is that mean, not ∞."""
    logits = np.array([[logit, -logit], [logit, -logit], [-logit, logit], [20.0, 0.0], [0.5, -1.0]], dtype)
    labels = np.array([1, 1, 0, 0, 1])
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn(on(device, logits), on(device, labels))
    gradient = host(loss_fn.backward())
    exact_loss, exact_gradient = exact_loss_and_gradient(logits, labels)
    assert loss.dtype == dtype and loss.shape == ()
    assert relative_errors([float(loss)], [exact_loss], dtype)[0] <= 4 * np.finfo(dtype).eps
    exact_gradient = [g for row in exact_gradient for g in row]
    assert max(relative_errors(gradient.ravel(), exact_gradient, dtype)) <= 4 * np.finfo(dtype).eps


@given(rows=st.integers(1, 4), classes=st.integers(2, 6), seed=seeds, spread=st.sampled_from([1, 30, 100, 1e4]))
def test_float32_loss_and_gradient_are_exact_for_integer_logits(device, rows, classes, seed, spread):
    """Integer logits, so that z − max is exact in float32 and every error is the loss's own."""
    rng = np.random.default_rng(seed)
    logits = np.round(rng.uniform(-spread, spread, (rows, classes))).astype(np.float32)
    labels = rng.integers(0, classes, rows)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = float(loss_fn(on(device, logits), on(device, labels)))
    gradient = host(loss_fn.backward())
    exact_loss, exact_gradient = exact_loss_and_gradient(logits, labels)
    eps = float(np.finfo(np.float32).eps)
    assert relative_errors([loss], [exact_loss], np.float32)[0] <= 4 * eps * rows
    for got, exact in zip(gradient, exact_gradient):
        assert max(relative_errors(got, exact, np.float32)) <= 6 * eps
