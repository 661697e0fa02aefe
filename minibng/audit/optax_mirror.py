"""The optimizer audit's optax side: the audit model's parameters as a pytree and a GradientTransformation over it.

The candidate is ``FACTORY()``, returning an ``optax.GradientTransformation``.  The parameters are the pytree
``{"0": {"weight": W, "bias": b}, "2": {...}, …}``: one entry per Linear layer, named as in the model (so the
top-level keys are the layers, minibng's default blocks), weights in minibng's (and flax's) layout (in, out), as
``jax.numpy`` arrays of the audited dtype (float64 runs inside ``jax.enable_x64(True)``).  Each step:
``updates, state = tx.update(grads, state, params)`` then ``params = optax.apply_updates(params, updates)``.
State entries shaped like the parameters are read where optax names them as minibng's rules do: ``mu`` (Adam's
``exp_avg``), ``nu`` (``exp_avg_sq``, RMSProp's ``square_avg``), ``trace`` (``momentum_buffer``), ``sum_of_squares``
(``sum``).
"""
from __future__ import annotations

import contextlib

import numpy as np

from .mirror import CandidateError, Mirror
from .trajectory import collect

__all__ = ["OptaxMirror", "parameter_tree"]

_STATE_NAMES = {"mu": ("exp_avg",), "nu": ("exp_avg_sq", "square_avg"), "trace": ("momentum_buffer",),
                "sum_of_squares": ("sum",)}


def parameter_tree(arrays, convert):
    """{"layer": {"leaf": convert(array)}} from {"layer.leaf": array}."""
    tree = {}
    for name, values in arrays.items():
        layer, leaf = name.rsplit(".", 1)
        tree.setdefault(layer, {})[leaf] = convert(values)
    return tree


def _flat_tree(tree):
    """{"layer.leaf": host array} from a parameter tree."""
    return {f"{layer}.{leaf}": np.asarray(values) for layer, leaves in tree.items() for leaf, values in leaves.items()}


class OptaxMirror(Mirror):
    name = "optax"
    install = "pip install optax jax, or pip install -e \".[audit]\""
    call = "FACTORY() returning an optax.GradientTransformation"

    def module(self):
        import jax
        import optax
        return jax, optax

    def precision(self, dtype):
        jax, _ = self.module()
        return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()

    def build(self, factory, model, dtype):
        transformation = self.call_factory(factory)
        if not (callable(getattr(transformation, "init", None)) and callable(getattr(transformation, "update", None))):
            raise CandidateError(f"FACTORY() returned {type(transformation).__name__}, not an optax "
                                 "GradientTransformation (an object with init and update)")
        return transformation

    def run(self, factory, model, stream, gradients, dtype):
        jax, optax = self.module()
        with self.precision(dtype):
            transformation = self.build(factory, model, dtype)
            as_jax = lambda values: jax.numpy.asarray(values, dtype=dtype)   # noqa: E731
            params = parameter_tree({n: p.data for n, p in model.named_parameters()}, as_jax)
            structure = jax.tree_util.tree_structure(params)
            carried = {}

            def start():
                carried["params"] = params
                carried["state"] = transformation.init(params)
                return stream.flatten(_flat_tree(params))

            def run_step(t, gradient):
                grads = parameter_tree(stream.split(gradient), as_jax)
                updates, carried["state"] = transformation.update(grads, carried["state"], carried["params"])
                carried["params"] = optax.apply_updates(carried["params"], updates)
                return stream.flatten(_flat_tree(carried["params"]))

            def states_of():
                found = {}
                _named_states(carried["state"], structure, jax, found)
                return {name: stream.flatten(_flat_tree(tree)) for name, tree in found.items()}

            try:
                first = start()
            except Exception as error:
                raise CandidateError(f"tx.init(params) raised {type(error).__name__}: {error}") from None
            return collect(gradients, first, run_step, states_of, catch=True)


def _named_states(node, structure, jax, found, field=None):
    """Fill ``found`` {minibng buffer name: tree} with the state's fields shaped like the parameters."""
    if field is not None and jax.tree_util.tree_structure(node) == structure:
        for name in _STATE_NAMES.get(field, (field,)):
            found.setdefault(name, node)
        return
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        for name in node._fields:
            _named_states(getattr(node, name), structure, jax, found, name)
    elif isinstance(node, (tuple, list)):
        for item in node:
            _named_states(item, structure, jax, found)
