"""The partition of the parameters into blocks, x = (x^1, …, x^B), and arithmetic over all blocks at once.

Partitions (the ``blocks=`` argument of every optimizer):

- ``"layer"``: one block per module that owns parameters (a layer's weight and bias together), named by the
  module's dotted path (``"0"``, ``"layer1.0.conv1"``; a model that owns parameters itself gives ``"root"``).
  Given a plain list of Parameters there are no layers, so ``"layer"`` means ``"tensor"``.
- ``"tensor"``: one block per parameter array, named by the parameter's name.
- ``"global"``: one block ``"all"`` (B = 1: whole-gradient normalization, global clipping).
- a list of lists of Parameters: one block per inner list, named by its parameters' names joined with "+";
  every parameter must appear exactly once.

Parameter names are the dotted names of ``Module.named_parameters()`` when a Module is given (also for
explicit lists of a Module's parameters: pass the Module and ``blocks=[[...], ...]``).  A list of
``(name, Parameter)`` pairs, e.g. ``list(model.named_parameters())``, keeps those names.  A bare list of
Parameters can only be named by position, ``"param0"``, ``"param1"``, …: saved optimizer state then depends on
that order, so prefer passing the Module.
"""
from __future__ import annotations

from .. import backend

__all__ = ["Partition", "resolve", "PARTITIONS"]

PARTITIONS = ("layer", "tensor", "global")


def _named_params(params):
    """(name, Parameter) pairs and the Module they came from (or None)."""
    from ..nn.module import Module, Parameter

    if isinstance(params, Module):
        return list(params.named_parameters()), params
    if isinstance(params, Parameter):
        raise TypeError("params must be a Module or a list of Parameters, got a single Parameter; wrap it in a list")
    named = []
    for k, item in enumerate(params):
        if isinstance(item, Parameter):
            named.append((f"param{k}", item))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Parameter):
            named.append((str(item[0]), item[1]))
        else:
            raise TypeError(f"params[{k}] must be a Parameter or a (name, Parameter) pair, got {type(item).__name__}")
    return named, None


def resolve(params, blocks="layer"):
    """[(block name, [(parameter name, Parameter), ...]), ...] for ``params`` split by ``blocks``."""
    named, module = _named_params(params)
    if not named:
        raise ValueError("the optimizer got no parameters")
    for k, (name, p) in enumerate(named):
        if any(name == other or p is q for other, q in named[:k]):
            raise ValueError(f"params: parameter '{name}' appears twice")
    name_of = lambda p: next((name for name, q in named if q is p), None)  # noqa: E731 - identity, never hashing
    if isinstance(blocks, str) and blocks in PARTITIONS:
        if blocks == "global":
            return [("all", named)]
        if blocks == "tensor" or module is None:
            return [(name, [(name, p)]) for name, p in named]
        partition, taken = [], []
        for module_name, owner in module.named_modules():
            owned = [p for p in owner._parameters.values() if not any(p is q for q in taken)]
            taken += owned
            if owned:
                partition.append((module_name or "root", [(name_of(p), p) for p in owned]))
        return partition
    if not isinstance(blocks, (list, tuple)):
        raise ValueError(f"blocks must be one of {PARTITIONS} or a list of lists of Parameters, got {blocks!r}")
    partition, used = [], []
    for k, group in enumerate(blocks):
        members = [(name_of(p), p) for p in group] if isinstance(group, (list, tuple)) else []
        if not members:
            raise ValueError(f"blocks[{k}] must be a non-empty list of the optimizer's Parameters")
        for name, p in members:
            if name is None:
                raise ValueError(f"blocks[{k}] holds something that is not one of the optimizer's Parameters")
            if any(p is q for q in used):
                raise ValueError(f"blocks: parameter '{name}' appears in more than one block")
            used.append(p)
        partition.append(("+".join(name for name, _ in members), members))
    missing = [name for name, p in named if not any(p is q for q in used)]
    if missing:
        raise ValueError(f"blocks: parameter '{missing[0]}' is in no block; every parameter needs one")
    return partition


class Partition:
    """Block i holds coordinates ``starts[i] … starts[i] + sizes[i] − 1`` of a flat vector of d numbers.

    Everything here acts on all B blocks at once (a constant number of array calls, whatever B):
    ``norms(v)`` gives ‖v^i‖₂ for every block, exact across the dtype's whole range; ``expand(s)`` turns
    per-block values s ∈ R^B into the per-coordinate vector (s_1 1_{d_1}, …, s_B 1_{d_B}) ∈ R^d; and
    ``scale(v, a, b, out)`` multiplies block i of v by a_i / b_i without ever forming a ratio that overflows.
    ``scratch`` is one work vector of d numbers, free between calls.
    """

    def __init__(self, names, sizes, xp, dtype):
        self.names, self.sizes = list(names), [int(n) for n in sizes]
        self.xp, self.dtype, self.size = xp, xp.dtype(dtype), sum(self.sizes)
        self.segments = backend.Segments(self.sizes, xp)
        self.sizes_array = xp.asarray(self.sizes, dtype=xp.int64)
        self.on_host = xp.__name__ == "numpy"
        # block id of every coordinate, for the gather of expand() and the scale kernel on CuPy (NumPy repeats)
        self.block_ids = None if self.on_host else xp.repeat(xp.arange(len(self.sizes)), self.sizes)
        self.finfo = xp.finfo(self.dtype)
        self.scratch = xp.empty(self.size, self.dtype)
        self._sums, self._largest, self._wide_sums = (xp.empty(len(self.sizes), t) for t in (dtype, dtype, xp.float64))

    def norms(self, v, work=None):
        """‖v^i‖₂ for every block i, as float64 (B,), exact to a few ulps for every finite block of either dtype.

        Σ_j v_j² in v's dtype underflows when the entries are tiny (float32 squares below ~1e-45 vanish: the
        vanishing layers NG exists to rescue) and overflows when they are huge.  On the CPU that sum is taken
        first and kept when no block is at risk (the common case, one pass); otherwise :meth:`scaled_norms`
        computes every block exactly.  The GPU checks nothing on the host: a float32 block sums its squares in
        float64, where every square is exact, subnormal numbers included (one pass), and a float64 block is scaled
        by :meth:`scaled_norms`.  NaN and ∞ propagate.  ``work`` (d,), not v, receives the CPU's squares (default
        ``scratch``; a buffer about to be overwritten anyway keeps fewer vectors in the cache).
        """
        xp = self.xp
        if not self.on_host:
            if self.dtype == xp.float32:
                return xp.sqrt(backend.segment_sum_of_squares(v, self.segments, self._wide_sums))
            return self.scaled_norms(v)
        with backend.errors_ignored(xp, "over", "under"):   # under- and overflow are detected just below
            squares = xp.multiply(v, v, out=self.scratch if work is None else work)
            sums = backend.segment_sum(squares, self.segments, self._sums)
        # Σ_j (v^i_j)² ≥ d_i · (smallest normal): the squares that underflowed lost < half an ulp of the sum
        if bool(xp.all((sums >= self.sizes_array * float(self.finfo.tiny)) & (sums <= self.finfo.max))):
            return xp.sqrt(sums.astype(xp.float64))
        return self.scaled_norms(v)

    def scaled_norms(self, v):
        """‖v^i‖ = 2^{-k_i} ‖2^{k_i} v^i‖, with 2^{k_i} the power of two that brings the block's largest magnitude
        into [½, 1): the scaling is exact, no scaled square overflows, and those that underflow are below 2^-126 of
        the largest (k_i is clipped so that 2^{k_i} stays a normal number; NaN and ∞ pass through).  The CPU scales
        into ``scratch`` and sums the squares in v's dtype; the GPU scales and squares inside its kernel, in float64."""
        xp, finfo = self.xp, self.finfo
        largest = backend.segment_max_abs(v, self.segments, self._largest, self.scratch)
        _, exponent = xp.frexp(largest)
        shift = xp.clip(-exponent, finfo.minexp, finfo.maxexp - 1)
        if not self.on_host:
            powers = xp.ldexp(xp.ones(len(self.sizes)), shift)
            return xp.ldexp(xp.sqrt(backend.segment_sum_of_squares(v, self.segments, self._wide_sums, powers)), -shift)
        scaled = xp.multiply(v, self.expand(xp.ldexp(xp.ones(1, self.dtype), shift)), out=self.scratch)
        sums = backend.segment_sum(xp.multiply(scaled, scaled, out=scaled), self.segments, self._wide_sums)
        return xp.ldexp(xp.sqrt(sums), -shift)

    def scale(self, v, numerator, denominator, out):
        """``out``: block i of v times r_i = numerator_i / denominator_i (0 where denominator_i = 0), for all i.

        ``numerator`` and ``denominator`` are per-block values (B,) or scalars, such as 1 and ‖g^i‖ for NG; r is
        formed in float64.  When every r_i is 0 or a normal number of v's dtype (checked on the host: the common
        case) this is one multiply by expand(r) in v's dtype.  Otherwise, and always on the GPU, the product is
        formed in float64: v^i · r_i where r_i is 0 or a normal float64 number (so a block within CLIP's threshold,
        r_i = 1, comes out exactly as it went in), and (v^i / denominator_i) · numerator_i where r_i itself would
        overflow or underflow (NG of a float64 block of subnormal numbers).  So a tiny ‖g^i‖ never overflows
        1/‖g^i‖, nor does a huge one make c/‖g^i‖ subnormal.
        """
        xp = self.xp
        numerator, denominator = (xp.broadcast_to(xp.asarray(a, xp.float64), (len(self.sizes),))
                                  for a in (numerator, denominator))
        nonzero = denominator > 0
        numerator, denominator = xp.where(nonzero, numerator, 0), xp.where(nonzero, denominator, 1)
        with backend.errors_ignored(xp, "over", "under"):   # a ratio out of range is detected just below
            ratio = numerator / denominator
        if self.on_host and self._fit_the_dtype(numerator, ratio):
            return xp.multiply(v, self.expand(ratio.astype(self.dtype)), out=out)
        usable = _zero_or_normal_float64(xp, numerator, ratio)
        divisor, multiplier = xp.where(usable, 1.0, denominator), xp.where(usable, ratio, numerator)
        if self.on_host:
            return xp.multiply(xp.divide(v, self.expand(divisor)), self.expand(multiplier), out=out)
        return backend.scale_blocks(v, divisor, multiplier, self.block_ids, out)

    def _fit_the_dtype(self, numerator, ratio):
        """True when every ratio r_i is 0 or a normal number of the parameters' dtype (one read on the host)."""
        magnitude = self.xp.abs(ratio)
        return bool(self.xp.all((numerator == 0) | ((magnitude >= self.finfo.tiny) & (magnitude <= self.finfo.max))))

    def expand(self, values):
        """The per-coordinate vector whose block i holds ``values[i]`` everywhere (d,), in the dtype of ``values``
        (NumPy's ``repeat``, ~10× faster there than a gather; CuPy gathers by block id)."""
        if self.on_host:
            return self.xp.repeat(values, self.sizes_array)
        return self.xp.take(values, self.block_ids)


def _zero_or_normal_float64(xp, numerator, ratio):
    """Where v^i · r_i can be formed as it stands in float64: r_i is 0 or a normal float64 number."""
    magnitude = xp.abs(ratio)
    return (numerator == 0) | ((magnitude >= xp.finfo(xp.float64).tiny) & xp.isfinite(ratio))
