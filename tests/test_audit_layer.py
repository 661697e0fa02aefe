"""The layer audit (finite-difference checking) itself: it must catch a wrong backward and report every tensor."""
import numpy as np
import pytest

from minibng import nn
from minibng.audit import GradcheckError, check_layer
from support import on


class WrongBiasGradient(nn.Linear):
    def backward(self, dy):
        dx = super().backward(dy)
        self.bias.grad *= 1.01  # a 1 % bug
        return dx


class WrongInputGradient(nn.Sigmoid):
    def backward(self, dy):
        return dy * self.slope(self._saved) * 2  # twice the slope σ′(x) that forward saved


def test_a_wrong_parameter_gradient_is_caught(device):
    layer = WrongBiasGradient(3, 2).to(device)
    with pytest.raises(GradcheckError, match=r"bias .* FAIL"):
        check_layer(layer, on(device, np.random.default_rng(0).standard_normal((4, 3))))


def test_a_wrong_input_gradient_is_caught(device):
    with pytest.raises(GradcheckError, match=r"input .* FAIL"):
        check_layer(WrongInputGradient(), on(device, np.random.default_rng(0).standard_normal((4, 3))))


def test_report_lists_every_tensor_and_leaves_the_module_untouched(device):
    layer = nn.Linear(3, 2).to(device)
    before = layer.weight.data.copy()
    report = check_layer(layer, on(device, np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)))
    assert list(report.errors) == ["input", "weight", "bias"] and report.ok
    assert layer.weight.data.dtype == np.float32 and (layer.weight.data == before).all()


def test_subsampled_coordinates_still_catch_a_bug(device):
    layer = WrongBiasGradient(30, 20).to(device)
    with pytest.raises(GradcheckError):
        check_layer(layer, on(device, np.random.default_rng(0).standard_normal((4, 30))), max_coordinates=50)


def test_a_carried_recurrent_state_is_replayed(device):
    """A bare LSTM continues from the state of its previous call; the checker must start every evaluation there."""
    lstm = nn.LSTM(3, 4, num_layers=2).astype(np.float64).to(device)
    rng = np.random.default_rng(0)
    lstm(on(device, rng.standard_normal((3, 2, 3))))  # leaves a non-zero carried state
    assert lstm.state is not None
    report = check_layer(lstm, on(device, rng.standard_normal((4, 2, 3))))
    assert report.ok and len(report.errors) == 1 + 3 * 2


def test_a_channels_last_input_is_checked_in_place(device):
    """A convolution's output is channels-last (NCHW shape, NHWC strides); feeding it to the checker must perturb
    the very array the layer reads, not a copy of it."""
    import minibng as mb
    from minibng import nn

    mb.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1, dtype="float64").to(device)
    x = conv(on(device, np.random.default_rng(0).standard_normal((2, 2, 5, 5))))
    assert not x.flags.c_contiguous
    for layer in (nn.Tanh(), nn.BatchNorm2d(3, dtype="float64").to(device)):
        report = check_layer(layer, x)
        assert report.errors["input"] < 1e-6, report


def test_the_names_from_before_the_audit_package_are_the_same_objects():
    """Code written against minibng.gradcheck and minibng.theory keeps running unchanged."""
    import minibng as mb

    assert mb.gradcheck.check is mb.audit.check_layer and mb.gradcheck.GradcheckError is mb.audit.GradcheckError
    assert mb.gradcheck.GradcheckReport is mb.audit.GradcheckReport
    assert mb.theory.adagrad_bng_bound is mb.audit.adagrad_bng_bound
    assert mb.theory.average_regret is mb.audit.average_regret


class QuarterTanh(nn.Tanh):
    def backward(self, dy):
        return super().backward(dy) * 0.25   # a 4× error


class ReturnsItsInput(nn.Module):
    def forward(self, x):
        return x                             # the output aliases x

    def backward(self, dy):
        return dy


def test_the_worst_coordinate_gives_the_ratio_of_analytic_to_numeric(device):
    report = check_layer(QuarterTanh(), on(device, np.random.default_rng(0).standard_normal((3, 4))),
                         raise_on_failure=False)
    worst = report.worst["input"]
    assert worst.ratio == pytest.approx(0.25, rel=1e-6) and len(worst.index) == 2
    assert "analytic/numeric = 0.25" in str(report) and "tolerance 1e-06" in str(report)
    assert report.as_json()["worst"]["input"]["ratio"] == pytest.approx(0.25, rel=1e-6)


def test_an_output_aliasing_the_input_fails(device):
    report = check_layer(ReturnsItsInput(), on(device, np.random.default_rng(0).standard_normal((3, 4))),
                         raise_on_failure=False)
    assert not report.ok
    assert any("forward of ReturnsItsInput returned an array that shares memory with its input x" in p
               for p in report.problems)
    assert any("backward of ReturnsItsInput returned an array that shares memory with its input dy" in p
               for p in report.problems)


def test_integer_inputs_are_reported_as_held_fixed(device):
    rng = np.random.default_rng(0)
    report = check_layer(nn.SoftmaxCrossEntropy(), on(device, rng.standard_normal((4, 3))),
                         on(device, rng.integers(0, 3, 4)))
    assert report.ok and report.held_fixed == ["input 1 (int64, shape (4,)): integers such as labels or token ids"]
    assert "held fixed (not checked): input 1" in str(report)
