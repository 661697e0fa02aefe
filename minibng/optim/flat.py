"""One flat parameter vector x and one flat gradient vector g: every parameter's ``.data`` and ``.grad`` are views.

The paper writes the parameters as one vector split into blocks, x = (x^1, …, x^B) ∈ R^d, block i of size d_i.
:func:`pack` makes that literal: every parameter's ``.data`` and ``.grad`` become views into two contiguous
arrays ``x`` and ``g``, laid out block after block (:mod:`.partition`), so an optimizer step is a few
whole-vector array calls.  Layers write their gradients into those views in place (``p.grad += ...``).

A parameter belongs to one optimizer at a time.  Packing parameters that another optimizer already packed
*takes them over*: the earlier :class:`Flat` hands every parameter it holds its own copy of its values and
gradient and is marked released, so the earlier optimizer raises a RuntimeError on its next step instead of
silently updating storage the model no longer reads (the failure Torch7's ``getParameters()`` had).
"""
from __future__ import annotations

from .. import backend
from .partition import Partition, resolve

__all__ = ["Flat", "pack"]


class Flat:
    """``x`` and ``g`` (d,), the ``partition`` into blocks, and the packed parameters with their names, in order."""

    def __init__(self, groups):
        """``groups``: the parameters grouped into blocks, [(block name, [(parameter name, Parameter), ...]), ...],
        as :func:`.partition.resolve` gives them."""
        first = groups[0][1][0][1].data
        xp = backend.get_array_module(first)
        dtype, device = first.dtype, backend.device_of(first)
        self.param_names = []   # in packing order, as self.params
        self.params = []
        sizes = []              # d_i, block by block
        for block_name, members in groups:
            for name, p in members:
                if p.data.dtype != dtype:
                    raise TypeError(f"parameter '{name}' has dtype {p.data.dtype}, but the first has {dtype}; "
                                    "one optimizer packs parameters of one dtype")
                if backend.device_of(p.data) != device:
                    raise TypeError(f"parameter '{name}' is on {backend.device_of(p.data)}, the first on {device}")
                self.param_names.append(name)
                self.params.append(p)
            sizes.append(sum(int(p.data.size) for _, p in members))
            if sizes[-1] == 0:
                raise ValueError(f"block '{block_name}' has no elements; drop its empty parameters")
        names = [name for name, _ in groups]
        if len(set(names)) != len(names):
            raise ValueError("blocks: two blocks have the same name")
        self.partition = Partition(names, sizes, xp, dtype)
        self.x, self.g = xp.empty(self.partition.size, dtype), xp.empty(self.partition.size, dtype)
        self.released = False
        for p in self.params:
            if p.packed_by is not None:
                p.packed_by.release()       # takes over: the earlier Flat gives all its parameters their own copies
        offset = 0
        for p in self.params:
            n, shape = int(p.data.size), p.data.shape
            self.x[offset:offset + n], self.g[offset:offset + n] = p.data.reshape(-1), p.grad.reshape(-1)
            p._rebind(self.x[offset:offset + n].reshape(shape), self.g[offset:offset + n].reshape(shape), packed_by=self)
            offset += n

    def release(self):
        """Give every parameter still packed here its own storage and stop this layout from being used."""
        for p in self.params:
            if p.packed_by is self:
                p._rebind(p.data.copy(), p.grad.copy(), packed_by=None)
        self.released = True

    def param_slices(self):
        """(parameter name, start, stop, shape) of every parameter inside x, in packing order."""
        offset = 0
        for name, p in zip(self.param_names, self.params):
            yield name, offset, offset + int(p.data.size), tuple(p.data.shape)
            offset += int(p.data.size)


def pack(params, blocks="layer"):
    """A :class:`Flat` holding ``params`` (a Module or a list of Parameters) split by ``blocks``."""
    return Flat(resolve(params, blocks))
