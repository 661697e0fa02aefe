"""lstm_lm: the layer stack and its parameters, equality with a plain per-step reference (also across windows with
the carried state), gradient checks through two windows with dropout, initialization, seeds, dtype, errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minibng import optim
from minibng.audit import check_layer
from minibng.models.lstm_lm import lstm_lm
from minibng.nn import Dropout, Embedding, Linear, LSTM, SoftmaxCrossEntropy
from support import host, on


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def reference_logits(params, ids, layers, hidden):
    """The language model written plainly: look-up, then every layer one time step at a time from zero state,
    then the output layer; no dropout (evaluation mode)."""
    H = hidden
    x = np.stack([[params["0.weight"][w] for w in row] for row in ids])            # (T, N, E)
    for l in range(layers):
        W_ih, W_hh, b = (params[f"2.layers.{l}.{k}"] for k in ("weight_ih", "weight_hh", "bias"))
        h = np.zeros((ids.shape[1], H))
        c = np.zeros((ids.shape[1], H))
        out = []
        for t in range(ids.shape[0]):
            a = x[t] @ W_ih + h @ W_hh + b
            i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            out.append(h)
        x = np.stack(out)
    return x @ params["4.weight"] + params["4.bias"]


def host_params(model):
    return {name: host(p.data) for name, p in model.named_parameters()}


def test_layers_names_and_blocks(device):
    model = lstm_lm(50, embed=6, hidden=5, layers=3, dropout=0.25, rng=0).to(device)
    kinds = [type(m) for m in model]
    assert kinds == [Embedding, Dropout, LSTM, Dropout, Linear]
    assert model[1].p == model[3].p == model[2].dropout == 0.25
    shapes = {name: tuple(p.data.shape) for name, p in model.named_parameters()}
    assert shapes == {"0.weight": (50, 6), "2.layers.0.weight_ih": (6, 20), "2.layers.0.weight_hh": (5, 20),
                      "2.layers.0.bias": (20,), "2.layers.1.weight_ih": (5, 20), "2.layers.1.weight_hh": (5, 20),
                      "2.layers.1.bias": (20,), "2.layers.2.weight_ih": (5, 20), "2.layers.2.weight_hh": (5, 20),
                      "2.layers.2.bias": (20,), "4.weight": (5, 50), "4.bias": (50,)}
    # The paper's layer partition: the table, each LSTM layer, the output layer.
    blocks = optim.create("adamng", model).blocks
    assert [name for name, _ in blocks] == ["0", "2.layers.0", "2.layers.1", "2.layers.2", "4"]
    assert [size for _, size in blocks] == [300, 6 * 20 + 5 * 20 + 20, 220, 220, 5 * 50 + 50]


def test_paper_setup_initialization_is_uniform_within_a_tenth():
    model = lstm_lm(10_000, rng=1)
    params = host_params(model)
    assert params["0.weight"].shape == (10_000, 200) and params["4.weight"].shape == (200, 10_000)
    assert model[2].num_layers == 2 and model[2].hidden_size == 200 and model[1].p == 0.5
    for name, value in params.items():
        assert value.dtype == np.float32, name
        assert np.abs(value).max() <= 0.1, name
        assert np.abs(value).max() > 0.09, name                    # spread over the whole interval, not N(0, σ)
        assert abs(float(value.mean())) < 0.01, name
        assert abs(float(value.std()) - 0.1 / np.sqrt(3)) < 0.01, name   # uniform(±a) has std a/√3


@given(steps=st.integers(1, 4), batch=st.integers(1, 3), vocab=st.integers(2, 9), embed=st.integers(1, 4),
       hidden=st.integers(1, 4), layers=st.integers(1, 3), seed=st.integers(0, 2**31 - 1))
def test_equals_plain_reference_across_windows(device, steps, batch, vocab, embed, hidden, layers, seed):
    """Two consecutive windows with the carried state give the logits of one long window from zero state."""
    model = lstm_lm(vocab, embed, hidden, layers, dropout=0.5, dtype=np.float64, rng=seed).to(device)
    model.eval()
    ids = np.random.default_rng(seed).integers(0, vocab, (2 * steps, batch))
    expected = reference_logits(host_params(model), ids, layers, hidden)
    first, second = model(on(device, ids[:steps])), model(on(device, ids[steps:]))
    np.testing.assert_allclose(np.concatenate([host(first), host(second)]), expected, rtol=1e-10, atol=1e-12)
    model[2].reset_state()
    fresh = reference_logits(host_params(model), ids[steps:], layers, hidden)
    np.testing.assert_allclose(host(model(on(device, ids[steps:]))), fresh, rtol=1e-10, atol=1e-12)


def test_training_without_dropout_is_the_evaluation_function(device):
    model = lstm_lm(11, 4, 3, 2, dropout=0.0, dtype=np.float64, rng=5).to(device)
    ids = on(device, np.random.default_rng(5).integers(0, 11, (6, 2)))
    train_logits = host(model(ids))
    model.eval()
    model[2].reset_state()
    np.testing.assert_array_equal(train_logits, host(model(ids)))


def test_dropout_is_active_in_training_and_drawn_from_the_seed(device):
    ids = on(device, np.random.default_rng(6).integers(0, 13, (5, 4)))
    a, b = (lstm_lm(13, 4, 3, 2, dropout=0.5, rng=6).to(device) for _ in range(2))
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(host(p.data), host(q.data), err_msg=name)
    ya, yb = host(a(ids)), host(b(ids))
    np.testing.assert_array_equal(ya, yb)                      # same seed: same masks
    a.eval()
    a[2].reset_state()
    assert not np.allclose(ya, host(a(ids)))                   # masks change the training-mode output
    c = lstm_lm(13, 4, 3, 2, dropout=0.5, rng=7).to(device)
    assert not np.allclose(host(c.parameters()[0].data), host(a.parameters()[0].data))


def test_gradient_check_through_a_carried_state_with_dropout(device):
    """Every parameter of the whole model, the loss summed over a window that starts from the state the previous
    window left (gradcheck replays the dropout masks and the carried state)."""
    model = lstm_lm(7, 3, 4, 2, dropout=0.3, dtype=np.float64, rng=8).to(device)
    rng = np.random.default_rng(8)
    for name, p in model.named_parameters():        # larger than ±0.1, so that every term matters
        p.data[...] = on(device, rng.uniform(-0.8, 0.8, p.data.shape))
    model(on(device, rng.integers(0, 7, (3, 2))))    # the first window leaves a non-zero state
    assert np.abs(host(model[2].state[0])).min() > 0
    report = check_layer(model, on(device, rng.integers(0, 7, (4, 2))), seed=8)
    assert set(report.errors) == {name for name, _ in model.named_parameters()}
    assert report.ok


def test_loss_gradient_reaches_every_parameter_in_float32(device):
    model = lstm_lm(20, 5, 6, 2, rng=9).to(device)
    rng = np.random.default_rng(9)
    ids, targets = (on(device, rng.integers(0, 20, (4, 3))) for _ in range(2))
    loss_fn = SoftmaxCrossEntropy()
    logits = model(ids)
    assert logits.shape == (4, 3, 20) and logits.dtype == np.float32
    loss = loss_fn(logits, targets)
    assert loss.dtype == np.float32 and abs(float(loss) - np.log(20)) < 0.05    # small init: near uniform
    assert model.backward(loss_fn.backward()) is None                          # ids have no gradient
    for name, p in model.named_parameters():
        assert p.grad.dtype == np.float32, name
        assert np.abs(host(p.grad)).max() > 0, name
    rows = host(model[0].weight.grad)
    unused = sorted(set(range(20)) - set(host(ids).ravel().tolist()))
    assert not rows[unused].any()                                              # only looked-up rows move


@pytest.mark.parametrize("kwargs", [{"vocab_size": 0}, {"vocab_size": 5, "hidden": 2.5}, {"vocab_size": 5, "layers": 0},
                                    {"vocab_size": 5, "dropout": 1.0}, {"vocab_size": 5, "init": -0.1},
                                    {"vocab_size": 5, "init": "he"}])
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError, match="lstm_lm"):
        lstm_lm(**kwargs)


def test_torch_init_uses_each_layers_default():
    params = host_params(lstm_lm(30, 8, 16, 1, init="torch", rng=2))
    assert np.abs(params["0.weight"]).max() > 1.5                              # N(0, 1) table
    assert np.abs(params["2.layers.0.weight_hh"]).max() <= 0.25                # uniform(±1/√16)
    assert np.abs(params["4.weight"]).max() <= 0.25 and np.abs(params["4.weight"]).max() > 0.2
