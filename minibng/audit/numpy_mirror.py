"""The optimizer audit's NumPy side: a step function over dicts of arrays.

The candidate is ``FACTORY()``, returning a callable ``step(params, grads)``:

- ``params`` and ``grads`` are dicts {parameter name: numpy array} in the model's order (``"0.weight"``,
  ``"0.bias"``, ``"2.weight"`` …), in minibng's layout (a Linear's weight is (in, out)) and the audited dtype;
- it updates ``params`` in place and returns None, or returns a new dict of the same names (it may also keep its
  own state: a closure or an object with ``__call__``, called once per step, t = 1, 2, …);
- a parameter's block (layer) is its name up to the last dot.

The parameters are read back after every step.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .mirror import CandidateError, Mirror
from .trajectory import collect

__all__ = ["NumpyMirror"]


class NumpyMirror(Mirror):
    name = "numpy"
    install = "pip install numpy"
    call = "FACTORY() returning a step(params, grads) function"

    def module(self):
        return np

    def build(self, factory, model, dtype):
        step = self.call_factory(factory)
        if not callable(step):
            raise CandidateError(f"FACTORY() returned {type(step).__name__}, which is not callable; return a "
                                 "function step(params, grads)")
        return step

    def run(self, factory, model, stream, gradients, dtype):
        step = self.build(factory, model, dtype)
        params = {name: np.array(p.data, dtype=dtype) for name, p in model.named_parameters()}
        names = list(params)

        def run_step(t, gradient):
            grads = {name: np.array(values, dtype=dtype) for name, values in stream.split(gradient).items()}
            returned = step(params, grads)
            if returned is not None:
                if not isinstance(returned, Mapping) or sorted(returned) != sorted(names):
                    raise TypeError(f"step returned {type(returned).__name__}; return None (params updated in place) "
                                    f"or a dict with the keys {names}")
                params.update({name: np.asarray(returned[name]) for name in names})
            return stream.flatten(params)

        return collect(gradients, stream.flatten(params), run_step, catch=True)
