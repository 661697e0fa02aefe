"""Finite-difference checking of any module's backward (``minibng.audit.check_layer``).

For a module f with inputs x (and parameters θ) and a random upstream gradient u, the scalar
    L(x, θ) = Σ u ∘ f(x; θ)
has ∂L/∂x = backward(u) and ∂L/∂θ = the accumulated ``.grad``.  Each coordinate is compared with the central
difference (L(· + ε e_k) − L(· − ε e_k)) / 2ε, in float64, on a copy of the module.  The error of a tensor is
    max_k |analytic_k − numeric_k| / max(max_k |analytic_k|, max_k |numeric_k|, floor, r / tolerance)
(the worst error relative to the tensor's scale), where r = 4 ε₆₄ Σ|u ∘ f| / ε is the resolution of central
differences: L is rounded at a few ε₆₄ ≈ 2.2e-16 of its terms, so a gradient smaller than r (a bias gradient
that is a sum of random u cancelling out, a saturated tanh's) is measured against the size at which r is the
tolerance.  Any randomness inside the module (dropout) is replayed
identically for every evaluation, and so is a carried recurrent state (an LSTM's ``.state``).  A second
forward/backward pair must leave every ``.grad`` at twice the first gradient (a backward adds, never replaces),
measured by the same relative error.  Before any difference is taken, the first forward and backward must leave x
and dy as they were given and return arrays that share no memory with them, and a second forward (randomness and
carried state replayed) must give the same output: a forward that is not deterministic (a dropout drawing from
NumPy's global generator) is reported as such, and its gradient is not checked.  Each failing tensor's report
names its worst coordinate with the analytic and numeric values and their ratio ("analytic/numeric = 0.25" for a
backward 4× too small).  Nothing is reported as passed that was not checked: integer inputs (labels, token ids)
and floating inputs after the first are listed as held fixed; an empty batch, an integer input to a module without
parameters, or a floating input whose gradient backward does not return is an error.

    report = mb.audit.check_layer(my_layer, x)   # raises GradcheckError if a tensor is off
    print(report)                                # worst relative error per tensor

(``minibng.gradcheck.check`` is the same function, under the name it had before the audit package.)
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from .layer_purity import changed, purity_problems, shares_memory
from .layer_report import GradcheckError, GradcheckReport, LayerArgumentError, WorstCoordinate

__all__ = ["check_layer", "GradcheckError", "GradcheckReport", "LayerArgumentError", "WorstCoordinate"]


def _streams(module):
    return [m.rng for m in module.modules() if isinstance(getattr(m, "rng", None), backend.RandomStream)]


def _carried(module):
    """Modules that carry state from one call to the next (they have ``reset_state`` and ``state``)."""
    return [m for m in module.modules() if hasattr(m, "reset_state") and hasattr(m, "state")]


def _is_real(value):
    """A real number (an int, float or NumPy scalar), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_arguments(module, inputs, eps, tolerance, floor, max_coordinates):
    for name, value in (("eps", eps), ("floor", floor)):
        if not (_is_real(value) and 0 < value < np.inf):
            raise LayerArgumentError(f"gradcheck: {name} must be a positive finite number, got {value!r}")
    if not (_is_real(tolerance) and 0 < tolerance < np.inf):
        raise LayerArgumentError(f"gradcheck: tolerance must be a positive finite number, got {tolerance!r} (each "
                                 "error is measured against at least r / tolerance, which 0 would make infinite: "
                                 "every layer would pass)")
    if max_coordinates is not None and not (isinstance(max_coordinates, numbers.Integral) and max_coordinates >= 1):
        raise LayerArgumentError(f"gradcheck: max_coordinates must be None or an integer >= 1, "
                                 f"got {max_coordinates!r}")
    if not inputs:
        raise LayerArgumentError("gradcheck: give the module's input(s): check_layer(module, x, ...)")
    for k, x in enumerate(inputs):
        if not backend.is_array(x):
            raise TypeError(f"gradcheck: input {k} must be a NumPy or CuPy array, got {type(x).__name__}")
        if x.size == 0:
            raise LayerArgumentError(f"gradcheck: input {k} has shape {tuple(x.shape)}, no values (an empty batch): "
                                     "nothing would be checked; pass at least one sample")
    if inputs[0].dtype.kind != "f" and not module.parameters():
        raise LayerArgumentError(f"gradcheck: the first input has dtype {inputs[0].dtype} and "
                                 f"{type(module).__name__} has no parameters, so there is no gradient to check; pass "
                                 "a floating-point input")


def _skips_input_gradient(module):
    """True when some layer was built with ``input_grad=False`` (a network's first layer returns no ∂L/∂x)."""
    return any(getattr(m, "input_grad", True) is False for m in module.modules())


def check_layer(module, *inputs, dy=None, eps=1e-6, tolerance=1e-6, floor=1e-7, seed=0, raise_on_failure=True,
                max_coordinates=None):
    """Compare ``module``'s backward with central differences for every floating input and every parameter, and
    check that a second forward/backward pair adds to ``.grad`` (twice the first gradient).

    ``inputs`` are passed to ``module`` as ``module(*inputs)``; integer inputs (labels, token ids) are held fixed.
    Only the first input receives ∂L/∂x from ``backward`` (the framework's convention); other floating inputs
    are not checked.  A backward that returns None for a floating first input fails, unless a layer was built with
    ``input_grad=False``.  ``dy`` is the upstream gradient (random normal by default, never all ones);
    ``max_coordinates`` checks a random subset of each tensor's coordinates for large tensors.
    Inputs that leave nothing to check (an empty batch; an integer input to a module without parameters),
    ``eps <= 0`` and ``tolerance <= 0`` raise :class:`LayerArgumentError` (a ValueError).  Returns a
    :class:`GradcheckReport`; raises :class:`GradcheckError` when an error exceeds ``tolerance``.
    """
    _check_arguments(module, inputs, eps, tolerance, floor, max_coordinates)
    model = module.copy().astype(np.float64)
    model.train(module.training)
    xp = backend.get_array_module(*inputs)
    xs = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs]
    rng = np.random.default_rng(seed)
    streams, carriers = _streams(model), _carried(model)
    saved = [s.state() for s in streams]
    carried = [m.state for m in carriers]

    def run():
        for s, state in zip(streams, saved):
            s.set_state(state)
        for m, state in zip(carriers, carried):
            m.state = state
        return model(*xs)

    saved_inputs = [x.copy() for x in xs]
    y = run()
    report = GradcheckReport(tolerance=tolerance, held_fixed=_held_fixed(inputs))
    layer_name = type(module).__name__
    report.problems += purity_problems(layer_name, xs, saved_inputs, [y], "forward")
    for x, before in zip(xs, saved_inputs):
        if changed(before, x):
            x[...] = before             # the differences are taken around the input as given
    again = run()                       # also the forward whose cache the first backward below uses
    if changed(y, again):
        report.problems.append(_not_deterministic(layer_name, y, again))
        if raise_on_failure:
            raise GradcheckError(f"{layer_name}: {report.problems[-1]}")
        return report
    if dy is None:
        dy = xp.asarray(rng.standard_normal(np.shape(y)))
    dy = xp.asarray(dy, dtype=np.float64)
    if dy.size == 0:
        raise LayerArgumentError(f"gradcheck: {type(module).__name__} returned an output of shape "
                                 f"{tuple(np.shape(y))}, no values: nothing would be checked")
    resolution = 4 * np.finfo(np.float64).eps * float(xp.abs(y * dy).sum()) / eps   # see the module docstring
    floor = max(floor, resolution / tolerance)

    def objective():
        return float((run() * dy).sum())

    model.zero_grad()
    given = dy.copy()
    dx = model.backward(given)
    report.problems += purity_problems(layer_name, [given], [dy], [dx] if dx is not None else [], "backward")
    if dx is not None and any(shares_memory(dx, x) for x in xs):
        report.problems.append(f"backward of {layer_name} returned an array that shares memory with its input x")
    checked = []
    if xs[0].dtype.kind == "f":
        if dx is None and not _skips_input_gradient(model):
            raise GradcheckError(f"input: backward of {type(module).__name__} returned None for a floating-point "
                                 "input; return ∂L/∂x (or build the first layer with input_grad=False)")
        if dx is not None:
            checked.append(("input", xs[0], dx))
    once = {name: backend.asnumpy(p.grad).copy() for name, p in model.named_parameters()}
    checked += [(name, p.data, once[name]) for name, p in model.named_parameters()]

    run()
    model.backward(dy.copy())  # a second forward/backward pair: every .grad must now hold twice the first
    for name, p in model.named_parameters():
        expected = 2 * once[name]
        scale = max(np.abs(expected).max(initial=0), floor)
        report.accumulation[name] = float(np.abs(backend.asnumpy(p.grad) - expected).max(initial=0) / scale)
    for name, values, analytic in checked:
        if analytic is None or tuple(analytic.shape) != tuple(values.shape):
            raise GradcheckError(f"{name}: backward gave shape {None if analytic is None else tuple(analytic.shape)}, "
                                 f"expected {tuple(values.shape)}")
        coordinates = np.arange(values.size)
        if max_coordinates is not None and values.size > max_coordinates:
            coordinates = rng.choice(values.size, max_coordinates, replace=False)
        analytic_flat = backend.asnumpy(analytic).reshape(-1)[coordinates]
        numeric = np.empty(len(coordinates))
        for j, k in enumerate(coordinates):
            index = np.unravel_index(k, values.shape)   # in place, whatever the memory layout (channels-last too)
            original = float(values[index])
            values[index] = original + eps
            plus = objective()
            values[index] = original - eps
            minus = objective()
            values[index] = original
            numeric[j] = (plus - minus) / (2 * eps)
        scale = max(np.abs(analytic_flat).max(initial=0), np.abs(numeric).max(initial=0), floor)
        gaps = np.abs(analytic_flat - numeric)
        report.errors[name] = float(gaps.max(initial=0) / scale)
        if gaps.size:
            worst = int(np.argmax(gaps))
            index = tuple(int(i) for i in np.unravel_index(coordinates[worst], values.shape))
            report.worst[name] = WorstCoordinate(index, float(analytic_flat[worst]), float(numeric[worst]))
    if raise_on_failure and not report.ok:
        raise GradcheckError(f"{type(module).__name__} fails the layer audit (its backward disagrees with finite "
                             f"differences, does not accumulate, or touches its inputs):\n{report}")
    return report


def _held_fixed(inputs):
    """The inputs the check leaves alone, said in words."""
    held = []
    for k, x in enumerate(inputs):
        if x.dtype.kind != "f":
            held.append(f"input {k} ({x.dtype}, shape {tuple(x.shape)}): integers such as labels or token ids")
        elif k > 0:
            held.append(f"input {k} ({x.dtype}, shape {tuple(x.shape)}): only the first input receives ∂L/∂x")
    return held


def _not_deterministic(name, first, second):
    gap = float(np.nanmax(np.abs(backend.asnumpy(first) - backend.asnumpy(second)), initial=0))
    return (f"forward of {name} is not deterministic: two forwards of the same input, with the module's random "
            f"streams and carried state replayed, differ by up to {gap:.3g}; it draws from a generator the audit "
            "cannot replay (NumPy's global one?): draw from a backend.RandomStream kept on the module (self.rng), as "
            "nn.Dropout does. The gradient was not checked")
