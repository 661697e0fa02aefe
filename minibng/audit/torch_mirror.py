"""The optimizer audit's PyTorch side: the audit model as a ``torch.nn.Sequential`` and a candidate stepping it.

The candidate is ``FACTORY(model)``: it is given a ``torch.nn.Sequential`` whose ``nn.Linear`` layers hold the audit
model's parameters in the same order, in PyTorch's layout (a Linear's weight is (out, in): minibng's (in, out)
transposed), in the audited dtype, and returns anything with a ``step()`` — a ``torch.optim.Optimizer``, or your own.
Before every step each parameter's ``.grad`` is set to the stream's g_t (transposed for weights); after it the
parameters are read back.  A ``torch.optim.Optimizer``'s ``state`` is read too: buffers of a parameter's shape under
PyTorch's names (``exp_avg``, ``exp_avg_sq``, ``momentum_buffer``, ``sum``, ``square_avg``), which are minibng's.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import nn
from .mirror import CandidateError, Mirror
from .trajectory import collect

__all__ = ["TorchMirror"]

_ACTIVATIONS = {nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh", nn.ReLU: "ReLU"}


class TorchMirror(Mirror):
    name = "torch"
    install = "pip install torch==2.13.0 (the CPU wheel), or pip install -e \".[audit]\""
    call = "FACTORY(model) with model a torch.nn.Sequential"

    def module(self):
        import torch
        return torch

    def model(self, model, dtype):
        """The torch.nn.Sequential twin of ``model`` (Linear and activations), same parameters, PyTorch's layout."""
        torch = self.module()
        precision = getattr(torch, dtype)
        layers = []
        for layer in model:
            if isinstance(layer, nn.Linear):
                twin = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                                       dtype=precision)
                with torch.no_grad():
                    twin.weight.copy_(torch.from_numpy(np.asarray(layer.weight.data, dtype=np.float64).T))
                    if layer.bias is not None:
                        twin.bias.copy_(torch.from_numpy(np.asarray(layer.bias.data, dtype=np.float64)))
                layers.append(twin)
            elif type(layer) in _ACTIVATIONS:
                layers.append(getattr(torch.nn, _ACTIVATIONS[type(layer)])())
            else:
                raise TypeError(f"torch mirror: cannot mirror {type(layer).__name__}; the audit model holds Linear "
                                "layers and Sigmoid, Tanh or ReLU activations")
        return torch.nn.Sequential(*layers)

    def build(self, factory, model, dtype):
        twin = self.model(model, dtype)
        candidate = self.call_factory(factory, twin)
        if not callable(getattr(candidate, "step", None)):
            raise CandidateError(f"FACTORY(model) returned {type(candidate).__name__}, which has no step(); return a "
                                 "torch.optim.Optimizer or an object with step()")
        return twin, candidate

    def run(self, factory, model, stream, gradients, dtype):
        torch = self.module()
        twin, candidate = self.build(factory, model, dtype)
        params = dict(twin.named_parameters())

        def minibng_layout(tensor):
            values = tensor.detach().cpu().numpy()
            return values.T if values.ndim == 2 else values

        def run_step(t, gradient):
            for name, values in stream.split(gradient).items():
                params[name].grad = torch.from_numpy(np.ascontiguousarray(
                    (values.T if values.ndim == 2 else values).astype(dtype)))
            candidate.step()
            return stream.flatten({name: minibng_layout(p) for name, p in params.items()})

        def states_of():
            state = getattr(candidate, "state", None)
            if not isinstance(state, Mapping):
                return {}
            buffers = {}
            for name, p in params.items():
                for key, value in (state.get(p) or {}).items():
                    if torch.is_tensor(value) and tuple(value.shape) == tuple(p.shape):
                        buffers.setdefault(key, {})[name] = minibng_layout(value)
            return {key: stream.flatten(found) for key, found in buffers.items() if len(found) == len(params)}

        with torch.no_grad():
            start = stream.flatten({name: minibng_layout(p) for name, p in params.items()})
            return collect(gradients, start, run_step, states_of, catch=True)
