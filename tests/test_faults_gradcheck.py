"""Fault table, the gradient checker: broken layers it must fail, and inputs it must refuse rather than pass."""
import numpy as np
import pytest

from audit_candidates.layer_candidates import FourfoldWeightGradient
from audit_support import spec
from minibng import nn
from minibng.audit import GradcheckError, check_layer
from minibng.audit import cli as audit_cli
from promise_table import registry
from support import on

SECTION = "The gradient checker"
PROMISES, promise = registry()


def inputs(device, *shape):
    return on(device, np.random.default_rng(0).standard_normal(shape or (4, 3)))


class NoInputGradient(nn.Linear):
    def backward(self, dy):
        super().backward(dy)
        return None                                      # forgot ∂L/∂x


class AssigningLinear(nn.Linear):
    def backward(self, dy):
        self.weight.grad[...] = self._x.T @ dy           # `=` where `+=` belongs
        self.bias.grad[...] = dy.sum(axis=0)
        return dy @ self.weight.data.T


class RebindingLinear(nn.Linear):
    def backward(self, dy):
        self.weight.grad = self._x.T @ dy                # a new array each time: no accumulation
        self.bias.grad = self.bias.grad + dy.sum(axis=0)  # this one accumulates, and is accepted
        return dy @ self.weight.data.T


class Square(nn.Module):
    """y = x²; no parameters."""

    def forward(self, x):
        self._x = x
        return x * x

    def backward(self, dy):
        return 2 * self._x * dy


@promise("gradcheck-no-input-gradient", "a layer whose backward returns None for a floating-point input",
         "`GradcheckError`: backward returned None for a floating-point input (allowed only for a layer built "
         "with input_grad=False)")
def _no_input_gradient(device):
    with pytest.raises(GradcheckError, match="input: backward of NoInputGradient returned None"):
        check_layer(NoInputGradient(3, 2).to(device), inputs(device))
    report = check_layer(nn.Linear(3, 2, input_grad=False).to(device), inputs(device))
    assert list(report.errors) == ["weight", "bias"]


@promise("gradcheck-assigning-backward", "a layer whose backward assigns `.grad[...] = …` instead of adding",
         "`GradcheckError` naming each such parameter: a second backward did not add to .grad")
def _assigning_backward(device):
    with pytest.raises(GradcheckError, match=r"(?s)weight .*did not add to .grad.*bias .*did not add to .grad"):
        check_layer(AssigningLinear(3, 2).to(device), inputs(device))


@promise("gradcheck-rebinding-backward", "a layer whose backward rebinds `self.weight.grad = …`",
         "`GradcheckError` naming that parameter (a rebinding that adds, `p.grad = p.grad + g`, passes)")
def _rebinding_backward(device):
    report = check_layer(RebindingLinear(3, 2).to(device), inputs(device), raise_on_failure=False)
    assert report.accumulation["weight"] > 0.1 and report.accumulation["bias"] < 1e-12 and not report.ok
    assert "weight  a second backward did not add" in str(report) and "bias  a second" not in str(report)


@promise("gradcheck-integer-input", "an integer input to a module without parameters",
         "`ValueError`: there is no gradient to check (never reported as passed)")
def _integer_input(device):
    with pytest.raises(ValueError, match="dtype int64 and Square has no parameters"):
        check_layer(Square(), on(device, np.arange(6).reshape(2, 3)))


@promise("gradcheck-empty-batch", "an empty batch, e.g. shape (0, 3)",
         "`ValueError`: no values, nothing would be checked")
def _empty_batch(device):
    with pytest.raises(ValueError, match=r"input 0 has shape \(0, 3\), no values"):
        check_layer(nn.Linear(3, 2).to(device), inputs(device, 0, 3))


@promise("gradcheck-eps-0", "`audit.check_layer(..., eps=0)` (or negative, or NaN)",
         "`ValueError`: eps must be a positive finite number")
def _eps_0(device):
    for eps in (0, -1e-6, float("nan")):
        with pytest.raises(ValueError, match="eps must be a positive finite number"):
            check_layer(Square(), inputs(device), eps=eps)


@promise("gradcheck-tolerance-0", "`audit.check_layer(..., tolerance=0)` (or negative, NaN, ∞), or `python -m "
         "minibng.audit layer … --tolerance 0`",
         "`ValueError` (the command: usage error, exit status 2): tolerance must be a positive finite number; 0 would "
         "measure every error against an infinite floor and pass every layer, one whose weight gradient is 4× too "
         "large included")
def _tolerance_0(device, capsys):
    layer = FourfoldWeightGradient(3, 2).to(device)
    x = inputs(device)
    with pytest.raises(GradcheckError, match=r"weight .* FAIL .*analytic/numeric = 4\b"):
        check_layer(layer, x)
    for tolerance in (0, -1e-6, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tolerance must be a positive finite number"):
            check_layer(layer, x, tolerance=tolerance)
    assert audit_cli.main(["layer", spec("layer", "fourfold"), "--input-shape", "4,3", "--tolerance", "0"]) == 2
    assert "--tolerance: expected a positive finite number" in capsys.readouterr().err
    assert audit_cli.main(["layer", spec("layer", "fourfold"), "--input-shape", "4,3"]) == 1


class InPlaceSigmoid(nn.Sigmoid):
    def backward(self, dy):
        dy *= self._saved                                # writes into dy: inside a Residual, dy feeds the shortcut too
        return dy


class GlobalGeneratorDropout(nn.Module):
    def forward(self, x):
        self._mask = np.random.random(x.shape) >= 0.5    # NumPy's global generator: the checker cannot replay it
        return x * self._mask * 2

    def backward(self, dy):
        return dy * self._mask * 2


@promise("gradcheck-backward-writes-dy", "a layer whose backward writes into dy (`dy *= …`), e.g. inside a `Residual`",
         "`GradcheckError`: backward wrote into its input dy (the residual's input gradient is wrong, and the report "
         "says why)")
def _backward_writes_dy(device):
    layer = nn.Residual(nn.Sequential(nn.Linear(4, 4, dtype="float64"), InPlaceSigmoid())).to(device)
    with pytest.raises(GradcheckError, match="backward of Residual wrote into its input dy"):
        check_layer(layer, inputs(device, 3, 4))


@promise("gradcheck-global-generator-dropout", "a dropout that draws its mask from NumPy's global generator",
         "`GradcheckError`: the forward is not deterministic (not a gradient mismatch), with how to draw from a "
         "replayable stream")
def _global_generator_dropout(device):
    with pytest.raises(GradcheckError, match="forward of GlobalGeneratorDropout is not deterministic") as caught:
        check_layer(GlobalGeneratorDropout(), inputs(device, 3, 4))
    assert "backend.RandomStream" in str(caught.value) and "FAIL" not in str(caught.value)


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, device, request):
    case.run(request, device=device)
