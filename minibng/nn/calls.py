"""What happens around every ``forward`` and ``backward`` call of a Module (installed by ``Module.__init_subclass__``).

- The outermost call names the layer that raised a ValueError/TypeError by its dotted path: ``in layer '2.0'
  (Linear) during forward: ...``.
- ``backward`` checks that dy is an array of the shape and dtype ``forward`` returned (a scalar loss takes any
  number).
- Every ``backward`` needs a training-mode ``forward`` of its module before it.  Each module records where it
  stands (``_pass``): "ready" after a training-mode forward, "eval" after an evaluation-mode one, "spent" after
  its backward, None before any forward or after its arrays moved.  A backward that finds anything but "ready"
  raises :class:`BackwardOrderError` — except a second backward of a module without parameters, which has nothing
  to add twice.  Gradients add up over forward/backward pairs until ``zero_grad()``.
"""
from __future__ import annotations

import functools
import threading

__all__ = ["BackwardOrderError", "annotated"]


class BackwardOrderError(RuntimeError):
    """``backward`` without a training-mode ``forward`` of its own before it."""


_call_depth = threading.local()


def annotated(method, phase):
    """``method`` (a Module's forward or backward) wrapped as the module docstring says."""
    forward = phase == "forward"

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        depth = getattr(_call_depth, "value", 0)
        _call_depth.value = depth + 1
        record = self.__dict__
        try:
            if forward:
                record["_pass"] = None
                result = method(self, *args, **kwargs)
                record["_pass"] = "ready" if self.training else "eval"
                record["_output"] = _layout(result)
                return result
            if record.get("_pass") != "ready":
                _check_pass(self)
            _check_upstream(record.get("_output"), args[0] if args else kwargs.get("dy"))
            dx = method(self, *args, **kwargs)
            record["_pass"] = "spent"
            return dx
        except (ValueError, TypeError) as e:
            if getattr(e, "_minibng_module", None) is None:
                e._minibng_module = self
            if depth == 0 and not getattr(e, "_minibng_named", False):
                raise _named_error(self, e, phase) from e
            raise
        finally:
            _call_depth.value = depth

    wrapper._minibng_annotated = True
    return wrapper


def _layout(output):
    """(shape, dtype) of an array output with at least one axis, which its upstream gradient must share; None for a
    scalar (a loss, whose dL may be any number) or a tuple (an LSTM layer's (y, h, c))."""
    return (tuple(output.shape), output.dtype) if getattr(output, "ndim", 0) else None


def _check_upstream(expected, dy):
    """A TypeError or ValueError unless ``dy`` is an array of the ``expected`` (shape, dtype) (see :func:`_layout`)."""
    if expected is None:
        return
    shape, dtype = expected
    if not hasattr(dy, "shape") or not hasattr(dy, "dtype"):
        raise TypeError(f"expected an upstream gradient array of shape {shape} (what forward returned), "
                        f"got {type(dy).__name__}")
    if tuple(dy.shape) != shape:
        raise ValueError(f"expected an upstream gradient of shape {shape} (what forward returned), "
                         f"got {tuple(dy.shape)}")
    if dy.dtype != dtype:
        raise TypeError(f"expected an upstream gradient of dtype {dtype} (what forward returned), got {dy.dtype}")


def _check_pass(module):
    """One backward per training-mode forward: a second backward would add every gradient into .grad again."""
    state, name = module.__dict__.get("_pass"), type(module).__name__
    if state == "spent" and not module.parameters():  # nothing to add twice
        return
    if state == "spent":
        raise BackwardOrderError(
            f"{name}.backward called twice after one forward: the second would add every gradient into .grad "
            "again. Run forward before each backward (gradients add up over forward/backward pairs until zero_grad())")
    problem = ("the last forward ran in evaluation mode, which caches nothing for backward; call .train() and run "
               "forward again" if state == "eval" else "run forward (in training mode) first")
    raise BackwardOrderError(f"{name}.backward called without a forward pass in training mode: {problem}")


def _named_error(root, error, phase):
    culprit = error._minibng_module
    path = next((name for name, m in root.named_modules() if m is culprit), None)
    where = type(culprit).__name__ if not path else f"'{path}' ({type(culprit).__name__})"
    named = type(error)(f"in layer {where} during {phase}: {error}")
    named._minibng_named = True
    named._minibng_module = culprit
    return named
