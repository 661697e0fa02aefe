"""Embedding: a lookup table of learned vectors, indexed by integer ids."""
from __future__ import annotations

from .. import backend
from .checks import check_dtype, check_flag, check_rng, check_sizes
from .init import check_init
from .module import Module, Parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """y[..., :] = W[ids[...], :]  — row ids[k] of the table W for every id k.

    Shapes: ids integer array of any shape S, W (num_embeddings, embedding_dim), y S + (embedding_dim,).
    Backward, for upstream gradient dy = ∂L/∂y:
        ∂L/∂W_v = Σ_{k : ids[k] = v} dy[k]
    a scatter-add (``minibng.backend.scatter_add``), so an id that occurs several times in the batch receives
    the sum of its gradients, on NumPy and CuPy alike.  The ids are discrete and have no gradient:
    ``backward`` returns None, and an Embedding is therefore the first layer of a model.

    Initialization (``init``): ``"normal"`` N(0, 1) by default, as Torch7's LookupTable and PyTorch's
    nn.Embedding; a float a gives uniform(±a) (Zaremba et al. use 0.1 for PTB).  Drawn from the host generator
    (``rng``: a numpy Generator, an int seed, or None for :func:`minibng.backend.manual_seed`'s).

    ``forward`` checks that ids are integers (TypeError) in [0, num_embeddings) (ValueError naming the range
    and the offending values); the range check costs one device→host transfer per call, ``check=False``
    skips it.
    """

    _cached = ("_ids",)

    def __init__(self, num_embeddings, embedding_dim, init="normal", dtype="float32", rng=None, check=True):
        super().__init__()
        check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        shape = (self.num_embeddings, self.embedding_dim)
        dtype = check_dtype("Embedding", dtype)
        self.check = check_flag("Embedding", "check", check)
        host = backend.host_rng(check_rng("Embedding", rng))
        init = check_init("Embedding", init, ("normal",))
        table = host.standard_normal(shape) if init == "normal" else host.uniform(-init, init, shape)
        self.weight = Parameter(table.astype(dtype))

    def forward(self, ids):
        if not backend.is_array(ids):
            raise TypeError(f"ids must be an integer array, got {type(ids).__name__}")
        xp = backend.get_array_module(self.weight.data, ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers (row indices), got dtype {ids.dtype}")
        check = self.check and ids.size
        lo, hi = (int(v) for v in backend.asnumpy(xp.stack([ids.min(), ids.max()]))) if check else (0, 0)
        if lo < 0 or hi >= self.num_embeddings:
            bad = ids[(ids < 0) | (ids >= self.num_embeddings)]
            shown = sorted({int(v) for v in backend.asnumpy(bad)[:1000]})[:10]
            raise ValueError(f"ids must lie in [0, {self.num_embeddings}), got out-of-range values {shown} "
                             f"({int(bad.size)} of {int(ids.size)} ids)")
        self._ids = ids.copy() if self.training else None
        return self.weight.data[ids]  # advanced indexing: a new array, never a view of the table

    def backward(self, dy):
        """Accumulate ∂L/∂W by scatter-add; returns None (integer ids have no gradient)."""
        grad = self.weight.grad
        backend.scatter_add(grad, self._ids.reshape(-1), dy.reshape(-1, self.embedding_dim).astype(grad.dtype, copy=False))
        return None

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"
