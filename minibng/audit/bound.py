"""Theorem 1 of the paper (AdaGradBNG on convex F) evaluated on a recorded run (``minibng.audit.adagrad_bng_bound``).

A run of Algorithm 2 records, for t = 1 … T, the iterate x_t, the stochastic gradient g_t = F'(x_t, ξ_t), and
the losses F_t(x_t) = F(x_t, ξ_t) and F_t(u) at a comparator u.  With ĝ^i_t = g^i_t/‖g^i_t‖ (0 for a zero
block), s_{T,j} = √(Σ_{t≤T} ĝ_{t,j}²), H_1 = δI + diag(s_1), M_i = max_t ‖g^i_t‖, D∞ = max_t ‖x_t − u‖∞,
B blocks of sizes d_i and d = Σ d_i:

    bound₁ = ‖x_1 − u‖²_{H_1} / (2ηT) + D∞² Σ_j s_{T,j} / (2ηT) + (η/T) Σ_i M_i² Σ_{j∈i} s_{T,j}
    bound₂ = ‖x_1 − u‖²_{H_1} / (2ηT) + D∞² √(B d) / (2η√T)  + η Σ_i M_i² √d_i / √T

The proof's per-step inequality holds on every sample path and for every comparator u, so the realized
average regret R_T = (1/T) Σ_t [F_t(x_t) − F_t(u)] ≤ bound₁ ≤ bound₂ (and E[f(x̄_T) − f(x*)] ≤ E[bound₁]).
Why bound₁ ≤ bound₂: ‖ĝ^i_t‖ ≤ 1, so Σ_j s_{T,j} ≤ √(d Σ_j s²_{T,j}) ≤ √(d B T) and Σ_{j∈i} s_{T,j} ≤ √(d_i T).

Everything here runs on the host in float64 (it audits a run; it is not in the training loop).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend
from ..optim.partition import Partition

__all__ = ["TheoremOneBound", "adagrad_bng_bound", "average_regret", "block_sizes_of"]


@dataclass(frozen=True)
class TheoremOneBound:
    """The two right-hand sides of Theorem 1 and the quantities they are made of."""

    first: float            # bound₁
    second: float           # bound₂
    initial_term: float     # ‖x_1 − u‖²_{H_1} / (2ηT)
    d_inf: float            # D∞ = max_t ‖x_t − u‖∞
    block_grad_max: tuple   # M_i = max_t ‖g^i_t‖, per block
    s_final: np.ndarray     # s_T, per coordinate
    steps: int              # T
    distance_term: float = 0.0          # D∞² Σ_j s_{T,j} / (2ηT)            (bound₁)
    gradient_term: float = 0.0          # (η/T) Σ_i M_i² Σ_{j∈i} s_{T,j}     (bound₁)
    distance_term_worst: float = 0.0    # D∞² √(B d) / (2η√T)                (bound₂)
    gradient_term_worst: float = 0.0    # η Σ_i M_i² √d_i / √T               (bound₂)


def block_sizes_of(blocks):
    """Block sizes d_i from a list of sizes, an optimizer's ``opt.blocks`` [(name, size)], or a Partition."""
    if hasattr(blocks, "sizes"):
        return [int(s) for s in blocks.sizes]
    return [int(b[1]) if isinstance(b, tuple) else int(b) for b in blocks]


def _block_norms(vectors, partition):
    """‖v^i‖₂ for every row of ``vectors`` (T, d) and block i (T, B), exact across the float range
    (:meth:`minibng.optim.Partition.norms`)."""
    return np.stack([partition.norms(row) for row in vectors]) if len(vectors) else np.zeros((0, len(partition.sizes)))


def adagrad_bng_bound(iterates, gradients, comparator, blocks, lr, delta):
    """Theorem 1's two right-hand sides for a run of AdaGradBNG with η = ``lr`` and δ = ``delta``.

    ``iterates`` (T, d): x_1 … x_T (the point each gradient was taken at); ``gradients`` (T, d): g_1 … g_T;
    ``comparator`` (d,): u; ``blocks``: block sizes in the order of the flat vector (see block_sizes_of).
    """
    xs = np.asarray(backend.asnumpy(iterates), dtype=np.float64)
    gs = np.asarray(backend.asnumpy(gradients), dtype=np.float64)
    u = np.asarray(backend.asnumpy(comparator), dtype=np.float64).reshape(-1)
    sizes = block_sizes_of(blocks)
    if xs.ndim != 2 or xs.shape != gs.shape or xs.shape[1] != u.size or sum(sizes) != u.size:
        raise ValueError(f"expected iterates and gradients of shape (T, d) and a comparator of size d = Σ d_i = "
                         f"{sum(sizes)}; got {xs.shape}, {gs.shape}, {u.shape}")
    if not lr > 0 or not delta > 0:
        raise ValueError(f"lr (η) and delta (δ) must be > 0, got {lr}, {delta}")
    steps, dim = xs.shape
    starts = np.cumsum([0] + sizes[:-1])
    partition = Partition([str(i) for i in range(len(sizes))], sizes, np, np.float64)
    norms = _block_norms(gs, partition)                                      # ‖g^i_t‖, (T, B)
    normalized = np.stack([partition.scale(g, 1.0, n, out=np.empty_like(g)) for g, n in zip(gs, norms)])   # ĝ_t
    s_final = np.sqrt((normalized ** 2).sum(axis=0))                         # s_T
    h1 = delta + np.abs(normalized[0])                                        # diag(H_1): s_1 = |ĝ_1|
    initial_term = float(((xs[0] - u) ** 2 * h1).sum() / (2 * lr * steps))
    d_inf = float(np.abs(xs - u).max())
    m = norms.max(axis=0)                                                     # M_i
    s_per_block = np.add.reduceat(s_final, starts)                            # Σ_{j∈i} s_{T,j}
    distance_term = float(d_inf ** 2 * s_final.sum() / (2 * lr * steps))
    gradient_term = float(lr / steps * (m ** 2 * s_per_block).sum())
    distance_term_worst = float(d_inf ** 2 * np.sqrt(len(sizes) * dim) / (2 * lr * np.sqrt(steps)))
    gradient_term_worst = float(lr * (m ** 2 * np.sqrt(sizes)).sum() / np.sqrt(steps))
    first = initial_term + distance_term + gradient_term
    second = initial_term + distance_term_worst + gradient_term_worst
    return TheoremOneBound(float(first), float(second), initial_term, d_inf, tuple(float(v) for v in m),
                           s_final, steps, distance_term, gradient_term, distance_term_worst, gradient_term_worst)


def average_regret(losses, comparator_losses):
    """R_T = (1/T) Σ_t [F_t(x_t) − F_t(u)] from the per-step losses at the iterates and at the comparator."""
    losses = np.asarray([float(backend.asnumpy(v)) for v in losses], dtype=np.float64)
    comparator_losses = np.asarray([float(backend.asnumpy(v)) for v in comparator_losses], dtype=np.float64)
    if losses.shape != comparator_losses.shape or losses.size == 0:
        raise ValueError(f"expected two equal, non-empty sequences of losses, got {losses.shape} and "
                         f"{comparator_losses.shape}")
    return float((losses - comparator_losses).mean())
