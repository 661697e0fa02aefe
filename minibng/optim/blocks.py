"""One flat parameter vector x, one flat gradient vector g, and the partition of both into blocks.

The paper writes the parameters as one vector split into blocks, x = (x^1, …, x^B) ∈ R^d, block i of size d_i.
:func:`pack` makes that literal: every parameter's ``.data`` and ``.grad`` become views into two contiguous
arrays ``x`` and ``g``, laid out block after block, so an optimizer step is a few whole-vector array calls.

Partitions (the ``blocks=`` argument of every optimizer):

- ``"layer"``: one block per module that owns parameters (a layer's weight and bias together), named by the
  module's dotted path (``"0"``, ``"layer1.0.conv1"``; a model that owns parameters itself gives ``"root"``).
  Given a plain list of Parameters there are no layers, so ``"layer"`` means ``"tensor"``.
- ``"tensor"``: one block per parameter array, named by the parameter's name.
- ``"global"``: one block ``"all"`` (B = 1: whole-gradient normalization, global clipping).
- a list of lists of Parameters: one block per inner list, named by its parameters' names joined with "+";
  every parameter must appear exactly once.

Parameter names are the dotted names of ``Module.named_parameters()`` when a Module is given (also for
explicit lists of a Module's parameters: pass the Module and ``blocks=[[...], ...]``). A list of
``(name, Parameter)`` pairs, e.g. ``list(model.named_parameters())``, keeps those names.  A bare list of
Parameters can only be named by position, ``"param0"``, ``"param1"``, …: saved optimizer state then depends on
that order, so prefer passing the Module.

A parameter belongs to one optimizer at a time.  Packing parameters that another optimizer already packed
*takes them over*: the earlier :class:`Blocks` hands every parameter it holds its own copy of its values and
gradient and is marked released, so the earlier optimizer raises a RuntimeError on its next step instead of
silently updating storage the model no longer reads (the failure Torch7's ``getParameters()`` had).
"""
from __future__ import annotations

from .. import backend

__all__ = ["Blocks", "pack", "resolve_partition", "PARTITIONS"]

PARTITIONS = ("layer", "tensor", "global")


def _named_params(params):
    """(name, Parameter) pairs and the Module they came from (or None)."""
    from ..nn.module import Module, Parameter

    if isinstance(params, Module):
        return list(params.named_parameters()), params
    if isinstance(params, Parameter):
        raise TypeError("params must be a Module or a list of Parameters, got a single Parameter; wrap it in a list")
    items = list(params)
    named = []
    for k, item in enumerate(items):
        if isinstance(item, Parameter):
            named.append((f"param{k}", item))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Parameter):
            named.append((str(item[0]), item[1]))
        else:
            raise TypeError(f"params[{k}] must be a Parameter or a (name, Parameter) pair, got {type(item).__name__}")
    return named, None


def _name_of(p, named):
    for name, q in named:
        if q is p:
            return name
    return None


def resolve_partition(params, blocks="layer"):
    """[(block name, [(parameter name, Parameter), ...]), ...] for ``params`` split by ``blocks``."""
    from ..nn.module import Parameter

    named, module = _named_params(params)
    if not named:
        raise ValueError("the optimizer got no parameters")
    seen_names = set()
    for name, _ in named:
        if name in seen_names:
            raise ValueError(f"params: parameter name '{name}' appears twice")
        seen_names.add(name)
    if isinstance(blocks, str):
        if blocks not in PARTITIONS:
            raise ValueError(f"blocks must be one of {PARTITIONS} or a list of lists of Parameters, got {blocks!r}")
        if blocks == "global":
            return [("all", named)]
        if blocks == "tensor" or module is None:
            return [(name, [(name, p)]) for name, p in named]
        partition, taken = [], []
        for module_name, owner in module.named_modules():
            owned = [p for p in owner._parameters.values() if not any(p is q for q in taken)]
            if owned:
                taken.extend(owned)
                partition.append((module_name or "root", [(_name_of(p, named), p) for p in owned]))
        return partition
    if not isinstance(blocks, (list, tuple)):
        raise ValueError(f"blocks must be one of {PARTITIONS} or a list of lists of Parameters, got {type(blocks).__name__}")
    partition, used = [], []
    for k, group in enumerate(blocks):
        group = list(group) if isinstance(group, (list, tuple)) else None
        if not group or not all(isinstance(p, Parameter) for p in group):
            raise ValueError(f"blocks[{k}] must be a non-empty list of Parameters")
        members = []
        for p in group:
            name = _name_of(p, named)
            if name is None:
                raise ValueError(f"blocks[{k}] holds a Parameter that is not among the optimizer's params")
            if any(p is q for q in used):
                raise ValueError(f"blocks: parameter '{name}' appears in more than one block")
            used.append(p)
            members.append((name, p))
        partition.append(("+".join(n for n, _ in members), members))
    missing = [name for name, p in named if not any(p is q for q in used)]
    if missing:
        raise ValueError(f"blocks: parameter '{missing[0]}' is in no block; every parameter needs one")
    return partition


class Blocks:
    """Flat storage ``x``, ``g`` and the block layout: names, starts, sizes, and per-coordinate block ids.

    ``norms(v)`` gives ‖v^i‖₂ for every block, exact across the dtype's whole range; ``expand(s)`` turns a
    per-block value s ∈ R^B into the per-coordinate vector (s_1 1_{d_1}, …, s_B 1_{d_B}) ∈ R^d; ``scale(v, a, b)``
    multiplies block i of v by a_i / b_i without ever forming a ratio that overflows.
    """

    def __init__(self, partition):
        first = partition[0][1][0][1]
        xp = backend.get_array_module(first.data)
        self.xp, self.dtype, self.device = xp, first.data.dtype, backend.device_of(first.data)
        self.names, self.sizes, self.starts, self.param_names, self.params, self.shapes = [], [], [], [], [], []
        for block_name, members in partition:
            self.names.append(block_name)
            self.starts.append(sum(self.sizes))
            size = 0
            for name, p in members:
                self._check_param(name, p)
                self.param_names.append(name)
                self.params.append(p)
                self.shapes.append(tuple(p.data.shape))
                size += int(p.data.size)
            if size == 0:
                raise ValueError(f"block '{block_name}' has no elements; drop its empty parameters")
            self.sizes.append(size)
        if len(set(self.names)) != len(self.names):
            raise ValueError("blocks: two blocks have the same name")
        self.size = sum(self.sizes)
        self.x = xp.empty(self.size, dtype=self.dtype)
        self.g = xp.empty(self.size, dtype=self.dtype)
        self.released = False
        for old in _distinct(p.packed_by for p in self.params):
            old.release()
        self._point_params_at_views()
        self.starts_array = xp.asarray(self.starts, dtype=xp.int64)
        self.sizes_array = xp.asarray(self.sizes, dtype=xp.int64)
        self._host = backend.array_library_name(self.x) == "NumPy"
        # block id of every coordinate, for the gather of expand() on CuPy (NumPy uses repeat instead)
        self.block_ids = None if self._host else xp.repeat(xp.arange(len(self.sizes), dtype=xp.int64), self.sizes)
        self._finfo = xp.finfo(self.dtype)
        # Σ_j (g^i_j)² ≥ d_i · (smallest normal) means the squares that underflowed lost less than half an ulp of it
        self._underflow_floor = self.sizes_array * self._finfo.tiny
        self._scratch = xp.empty_like(self.x)
        self._sums, self._largest = xp.empty(len(self.sizes), self.dtype), xp.empty(len(self.sizes), self.dtype)
        self._sums_wide = xp.empty(len(self.sizes), xp.float64)

    def norms(self, v):
        """‖v^i‖₂ for every block i, as float64 (B,), exact to a few ulps for every finite block of either dtype.

        Σ_j v_j² in v's dtype underflows when the entries are tiny (float32 squares below ~1e-45 vanish: the
        vanishing layers NG exists to rescue) and overflows when they are huge.  On the CPU that sum is taken
        first and kept when no block is at risk (the common case, one pass); otherwise, and always on the GPU,
        :meth:`_scaled_norms` computes every block exactly.  NaN and ∞ propagate.
        """
        xp = self.xp
        if self._host:
            with xp.errstate(over="ignore", under="ignore"):   # both are detected just below
                squares = xp.multiply(v, v, out=self._scratch)
                sums = backend.segment_sum(squares, self.starts_array, self._sums)
            if bool(xp.all((sums >= self._underflow_floor) & (sums <= self._finfo.max))):
                return xp.sqrt(sums.astype(xp.float64))
        return self._scaled_norms(v)

    def _scaled_norms(self, v):
        """‖v^i‖ = 2^{-k_i} ‖2^{k_i} v^i‖ with 2^{k_i} the power of two that brings the block's largest magnitude into
        [½, 1): the scaling is exact, no scaled square can overflow, and those that underflow are below 2^-126 of the
        largest (k_i is clipped so that 2^{k_i} stays a normal number; NaN and ∞ pass through)."""
        xp, finfo = self.xp, self._finfo
        largest = backend.segment_max_abs(v, self.starts_array, self._largest, self._scratch)
        _, exponent = xp.frexp(largest)
        shift = xp.clip(-exponent, finfo.minexp, finfo.maxexp - 1)
        scaled = xp.multiply(v, self.expand(xp.ldexp(xp.ones(1, self.dtype), shift)), out=self._scratch)
        sums = backend.segment_sum(xp.multiply(scaled, scaled, out=scaled), self.starts_array, self._sums_wide)
        return xp.ldexp(xp.sqrt(sums), -shift)

    def scale(self, v, numerator, denominator, out):
        """``out`` = block i of v times r_i = numerator_i / denominator_i (0 where denominator_i = 0), for all i.

        ``numerator`` and ``denominator`` are per-block values (B,) or scalars, such as 1 and ‖g^i‖ for NG.  When
        every r_i is 0 or a normal number of v's dtype (checked on the host: the common case) this is one multiply
        by expand(r); otherwise, and always on the GPU, it is formed in float64 as (v^i / denominator_i) ·
        numerator_i, so a tiny ‖g^i‖ cannot overflow 1/‖g^i‖ nor a huge one make c/‖g^i‖ subnormal.
        """
        xp = self.xp
        numerator, denominator = xp.asarray(numerator, xp.float64), xp.asarray(denominator, xp.float64)
        nonzero = denominator > 0
        numerator, denominator = xp.where(nonzero, numerator, 0), xp.where(nonzero, denominator, 1)
        if self._host:
            with xp.errstate(over="ignore", under="ignore"):   # a ratio out of the dtype's range takes the float64 path
                ratio = numerator / denominator
            magnitude = xp.abs(ratio)
            if bool(xp.all((numerator == 0) | ((magnitude >= self._finfo.tiny) & (magnitude <= self._finfo.max)))):
                return xp.multiply(v, self.expand(ratio.astype(self.dtype)), out=out)
        return xp.multiply(xp.divide(v, self.expand(denominator)), self.expand(numerator), out=out)

    def _check_param(self, name, p):
        if p.data.dtype != self.dtype:
            raise TypeError(f"parameter '{name}' has dtype {p.data.dtype}, but the first has {self.dtype}; "
                            "one optimizer packs parameters of one dtype")
        if backend.device_of(p.data) != self.device:
            raise TypeError(f"parameter '{name}' is on {backend.device_of(p.data)}, the first on {self.device}")
        if any(p is q for q in self.params):
            raise ValueError(f"parameter '{name}' appears twice")

    def _point_params_at_views(self):
        offset = 0
        for p in self.params:
            n = int(p.data.size)
            self.x[offset:offset + n] = p.data.reshape(-1)
            self.g[offset:offset + n] = p.grad.reshape(-1)
            p.data = self.x[offset:offset + n].reshape(p.data.shape)
            p.grad = self.g[offset:offset + n].reshape(p.grad.shape)
            p.packed_by = self
            offset += n

    def release(self):
        """Give every parameter still packed here its own storage and stop this layout from being used."""
        for p in self.params:
            if p.packed_by is self:
                p.data, p.grad, p.packed_by = p.data.copy(), p.grad.copy(), None
        self.released = True

    @property
    def num_blocks(self):
        return len(self.sizes)

    def expand(self, values):
        """The per-coordinate vector whose block i holds ``values[i]`` everywhere (d,), in the dtype of ``values``.

        NumPy's ``repeat``, ~10× faster there than a gather; CuPy gathers by block id.
        """
        if self._host:
            return self.xp.repeat(values, self.sizes_array)
        return self.xp.take(values, self.block_ids)

    def param_slices(self):
        """(parameter name, start, stop, shape) of every parameter inside x, in packing order."""
        offset = 0
        for name, shape in zip(self.param_names, self.shapes):
            n = 1
            for extent in shape:
                n *= extent
            yield name, offset, offset + n, shape
            offset += n


def _distinct(items):
    out = []
    for item in items:
        if item is not None and not any(item is o for o in out):
            out.append(item)
    return out


def pack(params, blocks="layer"):
    """A :class:`Blocks` holding ``params`` (a Module or a list of Parameters) split by ``blocks``."""
    return Blocks(resolve_partition(params, blocks))
