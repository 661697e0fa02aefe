"""LSTM: equal to the per-step reference (forward, backward, multi-layer, dropout, carried state), gradient
checks through several time steps from a carried state, truncated BPTT, state handling, dtypes, purity, errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from lstm_reference import LSTMReference
from minibng import backend
from minibng.gradcheck import check
from minibng.nn.containers import Sequential
from minibng.nn.module import Module
from minibng.nn.recurrent import LSTM
from support import aliases, host, on, run_forward_backward

seeds = st.integers(0, 2**31 - 1)
small = st.integers(1, 4)


class FixedState(Module):
    """Starts every forward of ``lstm`` from the same (h0, c0), so that finite differences, which call forward
    many times, see one function (the LSTM itself would carry its state from call to call)."""

    def __init__(self, lstm, h0, c0):
        super().__init__()
        self.lstm = lstm
        self.register_buffer("h0", h0)
        self.register_buffer("c0", c0)

    def forward(self, x):
        self.lstm.state = (self.h0, self.c0)
        return self.lstm(x)

    def backward(self, dy):
        return self.lstm.backward(dy)


def fast_and_reference(device, n_in, hidden, layers, dropout, seed):
    fast = LSTM(n_in, hidden, layers, dropout=dropout, dtype=np.float64, rng=seed, seed=seed + 1).to(device)
    ref = LSTMReference(n_in, hidden, layers, dropout=dropout, dtype=np.float64, rng=seed + 2).to(device)
    ref.load_state_dict(fast.state_dict())
    ref.rng.set_state(fast.rng.state())
    return fast, ref


@given(steps=small, batch=small, n_in=small, hidden=small, layers=st.integers(1, 3),
       dropout=st.sampled_from([0.0, 0.4]), seed=seeds)
def test_equals_per_step_reference_over_two_windows(device, steps, batch, n_in, hidden, layers, dropout, seed):
    fast, ref = fast_and_reference(device, n_in, hidden, layers, dropout, seed)
    rng = np.random.default_rng(seed)
    start = tuple(on(device, rng.standard_normal((layers, batch, hidden))) for _ in range(2))
    fast.state, ref.state = start, start
    for window in range(2):  # the second window starts from the state the first one left
        x = on(device, rng.standard_normal((steps, batch, n_in)))
        dy = on(device, rng.standard_normal((steps, batch, hidden)))
        np.testing.assert_allclose(host(fast(x)), host(ref(x)), rtol=1e-12, atol=1e-12)
        for mine, theirs in zip(fast.state, ref.state):
            np.testing.assert_allclose(host(mine), host(theirs), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(host(fast.backward(dy)), host(ref.backward(dy)), rtol=1e-10, atol=1e-12)
        for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
            np.testing.assert_allclose(host(p.grad), host(q.grad), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("layers, dropout", [(1, 0.0), (2, 0.0), (3, 0.5)])
def test_gradcheck_through_time_from_a_carried_state(device, layers, dropout):
    lstm = LSTM(3, 3, layers, dropout=dropout, dtype=np.float64, rng=7, seed=8).to(device)
    rng = np.random.default_rng(layers)
    lstm(on(device, rng.standard_normal((3, 2, 3))))          # a previous window leaves a nonzero state
    h0, c0 = lstm.state
    assert np.abs(host(h0)).min() > 0 and np.abs(host(c0)).min() > 0
    report = check(FixedState(lstm, h0, c0), on(device, rng.standard_normal((5, 2, 3))), tolerance=1e-6)
    assert set(report.errors) == {"input"} | {f"lstm.layers.{l}.{p}" for l in range(layers)
                                              for p in ("weight_ih", "weight_hh", "bias")}


def test_state_is_carried_and_detached(device):
    """Two windows equal one long sequence forward; backward of the second window is the gradient of a fresh
    LSTM started from the carried state (nothing flows back into the first window)."""
    rng = np.random.default_rng(0)
    x = on(device, rng.standard_normal((6, 3, 4)))
    dy = on(device, rng.standard_normal((3, 3, 5)))
    whole = LSTM(4, 5, 2, dtype=np.float64, rng=1).to(device)
    windows = whole.copy()
    y_whole = host(whole(x))
    y_first = host(windows(x[:3]))
    carried = windows.state
    windows.zero_grad()
    y_second = windows(x[3:])
    np.testing.assert_allclose(np.concatenate([y_first, host(y_second)]), y_whole, rtol=1e-12, atol=1e-13)
    dx = windows.backward(dy)
    fresh = windows.copy()
    fresh.zero_grad()
    fresh.state = carried
    fresh(x[3:])
    np.testing.assert_allclose(host(fresh.backward(dy)), host(dx), rtol=1e-12, atol=1e-13)
    for p, q in zip(windows.parameters(), fresh.parameters()):
        np.testing.assert_allclose(host(p.grad), host(q.grad), rtol=1e-12, atol=1e-13)


def test_reset_and_batch_size_change_start_from_zeros(device):
    rng = np.random.default_rng(1)
    lstm = LSTM(2, 3, 2, rng=3).to(device)
    zeros_start = lstm.copy()
    x = on(device, rng.standard_normal((4, 2, 2)).astype(np.float32))
    first = host(lstm(x))
    assert not np.allclose(host(lstm(x)), first)               # carried state changes the output
    lstm.reset_state()
    assert lstm.state is None
    np.testing.assert_array_equal(host(lstm(x)), first)
    wider = on(device, rng.standard_normal((4, 5, 2)).astype(np.float32))
    np.testing.assert_array_equal(host(lstm(wider)), host(zeros_start(wider)))   # N changed: reset
    assert lstm.state[0].shape == (2, 5, 3)


def test_state_setter_validates_and_getter_copies(device):
    lstm = LSTM(2, 3, 2).to(device)
    with pytest.raises(ValueError, match=r"LSTM state must be \(h, c\) of shape \(2, N, 3\)"):
        lstm.state = (on(device, np.zeros((1, 4, 3))), on(device, np.zeros((1, 4, 3))))
    lstm.state = (np.ones((2, 4, 3)), np.ones((2, 4, 3)))      # host float64 arrays, as from a checkpoint
    h, _ = lstm.state
    assert h.dtype == np.float32 and backend.device_of(h) == lstm.device
    h[...] = 5
    assert float(lstm.state[0].max()) == 1.0


def test_dropout_masks_replay_and_eval_has_none(device):
    lstm = LSTM(3, 4, 3, dropout=0.5, rng=0, seed=1).to(device)
    x = on(device, np.random.default_rng(2).standard_normal((4, 2, 3)).astype(np.float32))
    saved = lstm.rng.state()
    y1 = host(lstm(x))
    lstm.reset_state()
    y2 = host(lstm(x))                                          # next masks differ
    lstm.reset_state()
    lstm.rng.set_state(saved)
    np.testing.assert_array_equal(host(lstm(x)), y1)            # replayed masks: same output
    assert not np.array_equal(y1, y2)
    lstm.eval()
    lstm.reset_state()
    no_dropout = LSTM(3, 4, 3, rng=0).to(device).eval()
    np.testing.assert_array_equal(host(lstm(x)), host(no_dropout(x)))
    with pytest.raises(RuntimeError, match="without a forward pass in training mode"):
        lstm.backward(on(device, np.zeros((4, 2, 4), np.float32)))


def test_float32_end_to_end_pure_and_unaliased(device):
    lstm = LSTM(3, 4, 2, dropout=0.3, rng=5).to(device)
    x = on(device, np.random.default_rng(3).standard_normal((5, 2, 3)).astype(np.float32))
    lstm.state = tuple(on(device, np.random.default_rng(4).standard_normal((2, 2, 4))) for _ in range(2))
    y, dy, dx = run_forward_backward(lstm, x, dy_seed=6)      # checks: inputs unchanged, outputs not aliased
    assert y.dtype == dx.dtype == np.float32 and y.shape == (5, 2, 4) and dx.shape == x.shape
    assert all(p.grad.dtype == np.float32 for p in lstm.parameters())
    assert all(a.dtype == np.float32 for a in lstm.state)
    assert not aliases(dx, x) and not aliases(y, dy)
    y_again = lstm(x)
    assert not aliases(y, y_again)                               # a second call never reuses returned arrays
    assert lstm.astype(np.float64).state[0].dtype == np.float64  # casting the model casts its carried state


def test_parameters_names_shapes_and_init():
    lstm = LSTM(3, 25, 2, rng=0)
    names = [(n, p.shape) for n, p in lstm.named_parameters()]
    assert names == [("layers.0.weight_ih", (3, 100)), ("layers.0.weight_hh", (25, 100)), ("layers.0.bias", (100,)),
                     ("layers.1.weight_ih", (25, 100)), ("layers.1.weight_hh", (25, 100)), ("layers.1.bias", (100,))]
    assert [m for m in lstm.modules() if m._parameters] == list(lstm.layers)   # one owner per layer
    values = np.concatenate([p.data.ravel() for p in lstm.parameters()])
    assert np.abs(values).max() <= 0.2 and np.abs(values).max() > 0.19      # uniform(±1/√25)
    assert not np.array_equal(lstm.layers[0].weight_hh.data, lstm.layers[1].weight_hh.data)
    bounded = LSTM(3, 25, init=0.05, rng=0)
    assert np.abs(np.concatenate([p.data.ravel() for p in bounded.parameters()])).max() <= 0.05


def test_errors_name_the_layer(device):
    net = Sequential(LSTM(3, 4)).to(device)
    with pytest.raises(ValueError, match=r"in layer '0' \(LSTM\) during forward: expected input of shape \(T, N, 3\)"):
        net(on(device, np.zeros((2, 5, 2), np.float32)))
    with pytest.raises(TypeError, match=r"in layer '0' \(LSTM\) during forward: expected float32 input"):
        net(on(device, np.zeros((2, 5, 3), np.float64)))
    lstm = net[0]
    lstm(on(device, np.zeros((2, 5, 3), np.float32)))
    with pytest.raises(ValueError, match=r"in layer LSTM during backward: expected an upstream gradient of shape "
                                         r"\(2, 5, 4\) \(what forward returned\), got \(2, 5, 3\)"):
        lstm.backward(on(device, np.zeros((2, 5, 3), np.float32)))
    for bad in (dict(dropout=1.0), dict(num_layers=0), dict(init="he")):
        with pytest.raises(ValueError, match="LSTM: "):
            LSTM(3, 4, **bad)


def saturated(lstm, gate_bias):
    """``lstm`` with small weights and per-gate biases ``gate_bias`` (i, f, g, o): every gate saturates."""
    hidden, rng = lstm.hidden_size, np.random.default_rng(0)
    for name, p in lstm.named_parameters():                     # the same names in LSTM and LSTMReference
        if name.endswith("bias"):
            p.data[...] = np.repeat(np.asarray(gate_bias), hidden)
            p.data[2 * hidden:3 * hidden] *= np.where(np.arange(hidden) % 2, -1, 1)   # g = ±1
        else:
            p.data[...] = rng.uniform(-0.1, 0.1, p.shape)
    return lstm


def gate_blocks(a, hidden):
    return [a[..., k * hidden:(k + 1) * hidden] for k in range(4)]


@pytest.mark.parametrize("gate_bias", [(20.0, 20.0, 12.0, -20.0), (-20.0, 20.0, 12.0, 20.0)])
def test_saturated_gates_keep_their_exact_gradient_in_float32(device, gate_bias):
    """Gates at σ(±20), tanh(±12) and a cell that grows to ±12: in float32 σ(20) and tanh(12) round to 1, so
    i(1 − i) and 1 − g² were 0 and so was every gradient through them.  The float32 fast path now matches the
    per-step reference in float64 (whose slopes at these points are good to ~1e-6) gate by gate."""
    fast = saturated(LSTM(2, 3, dtype=np.float32), gate_bias).to(device)
    ref = saturated(LSTMReference(2, 3, dtype=np.float64), gate_bias).to(device)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 3, 2)).astype(np.float32)
    dy = rng.standard_normal((12, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(host(fast(on(device, x))), host(ref(on(device, x.astype(np.float64)))), rtol=1e-5,
                               atol=1e-30)
    dx, dx_ref = host(fast.backward(on(device, dy))), host(ref.backward(on(device, dy.astype(np.float64))))
    assert np.linalg.norm(dx - dx_ref) <= 1e-4 * np.linalg.norm(dx_ref)
    for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
        for k, (mine, theirs) in enumerate(zip(gate_blocks(host(p.grad), 3), gate_blocks(host(q.grad), 3))):
            assert np.linalg.norm(theirs) > 0
            assert np.linalg.norm(mine - theirs) <= 1e-4 * np.linalg.norm(theirs), f"{name}, gate {'ifgo'[k]}"
