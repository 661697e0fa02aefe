"""Shared pieces of the optimizer tests: Hypothesis strategies and plain per-block reference loops.

The references below loop over blocks in Python and write each equation of the paper (or of torch.optim)
literally; the vectorized optimizers must agree with them.
"""
from dataclasses import dataclass

import numpy as np
from hypothesis import given, strategies as st

from minibng.nn.module import Parameter
from support import host, on


@dataclass
class BlockProblem:
    sizes: list       # d_i
    x: np.ndarray     # initial parameters, flat, float64
    grads: list       # gradients for successive steps, each flat (d,)

    def split(self, v):
        return np.split(np.asarray(v), np.cumsum(self.sizes)[:-1])


@st.composite
def block_gradients(draw, max_blocks=5, max_size=6, steps=1, zero_blocks=True):
    """Block sizes, initial parameters and ``steps`` gradients whose block magnitudes span 1e-3 … 1e3;
    with ``zero_blocks`` some blocks of some gradients are exactly zero."""
    sizes = draw(st.lists(st.integers(1, max_size), min_size=1, max_size=max_blocks))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(sum(sizes))
    grads = []
    for _ in range(steps):
        parts = [rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3) for n in sizes]
        if zero_blocks:
            for i in range(len(sizes)):
                if draw(st.integers(0, 4)) == 0:
                    parts[i] = np.zeros(sizes[i])
        grads.append(np.concatenate(parts))
    return BlockProblem(sizes, x, grads)


@st.composite
def positive_per_block_scalars(draw, num_blocks, max_exponent=3):
    """One positive factor m · 2^k per block, m ∈ [1, 2), k ∈ [−max_exponent, max_exponent]."""
    return [draw(st.floats(1.0, 2.0, exclude_max=True)) * 2.0 ** draw(st.integers(-max_exponent, max_exponent))
            for _ in range(num_blocks)]


def make_params(device, problem, dtype=np.float64):
    """One Parameter per block (a list of Parameters gives one block per tensor)."""
    return [Parameter(on(device, part.astype(dtype))) for part in problem.split(problem.x)]


def run_steps(opt, params, problem, grads=None, lr_changes=None):
    """Feed each gradient of ``problem`` to ``opt`` and step; returns the flat parameters on the host."""
    for t, g in enumerate(problem.grads if grads is None else grads):
        opt.zero_grad()
        for p, part in zip(params, problem.split(g)):
            p.grad[...] = on_like(p.grad, part)
        if lr_changes and t in lr_changes:
            opt.lr = lr_changes[t]
        opt.step()
    return np.concatenate([host(p.data).reshape(-1) for p in params])


def on_like(target, values):
    from minibng import backend

    return backend.to_device(np.asarray(values, dtype=target.dtype), backend.device_of(target))


# ----- plain per-block references ------------------------------------------------------------------------------

def ref_direction(g_blocks, x_blocks, normalize, alpha=0.02, threshold=0.1):
    """Algorithm 1, step 2, block by block."""
    out = []
    for g, x in zip(g_blocks, x_blocks):
        n = np.sqrt(np.sum(g * g))
        if normalize is None:
            out.append(g.copy())
        elif n == 0:
            out.append(np.zeros_like(g))
        elif normalize == "block":
            out.append(g / n)
        elif normalize == "adaptive":
            w = np.sqrt(np.sum(x * x))
            out.append(alpha * w * g / n if w > 0 else g / n)
        elif normalize == "clip":
            out.append(g * min(1.0, threshold / n))
    return out


def reference_run(rule, problem, lr, normalize=None, weight_decay=0.0, decay="after", alpha=0.02,
                  threshold=0.1, **hyper):
    """The whole run, one block at a time, one equation per line (torch.optim's rules fed the direction)."""
    xs = [b.copy() for b in problem.split(problem.x)]
    state = [dict() for _ in xs]
    for t, g_flat in enumerate(problem.grads, start=1):
        gs = problem.split(g_flat)
        if decay == "before":
            gs = [g + weight_decay * x for g, x in zip(gs, xs)]
        ds = ref_direction(gs, xs, normalize, alpha, threshold)
        for i, (x, d, g, s) in enumerate(zip(xs, ds, gs, state)):
            if decay == "after":
                d = d + weight_decay * x
            if rule == "sgd":
                mu, damp, nesterov = hyper.get("momentum", 0.0), hyper.get("dampening", 0.0), hyper.get("nesterov", False)
                if mu:
                    s["v"] = d.copy() if t == 1 else mu * s["v"] + (1 - damp) * d
                    d = d + mu * s["v"] if nesterov else s["v"]
                x -= lr * d
            elif rule == "adagrad":
                s["sum"] = s.get("sum", 0) + d * d
                x -= lr * d / (np.sqrt(s["sum"]) + hyper.get("eps", 1e-10))
            elif rule == "rmsprop":
                a, eps, mu = hyper.get("rms_alpha", 0.99), hyper.get("eps", 1e-8), hyper.get("momentum", 0.0)
                s["sq"] = a * s.get("sq", 0) + (1 - a) * d * d
                avg = s["sq"]
                if hyper.get("centered", False):
                    s["m"] = a * s.get("m", 0) + (1 - a) * d
                    avg = avg - s["m"] ** 2
                r = d / (np.sqrt(avg) + eps)
                if mu:
                    s["b"] = mu * s.get("b", 0) + r
                    r = s["b"]
                x -= lr * r
            elif rule == "adam":
                b1, b2 = hyper.get("betas", (0.9, 0.999))
                eps = hyper.get("eps", 1e-8)
                s["m"] = b1 * s.get("m", 0) + (1 - b1) * d
                s["v"] = b2 * s.get("v", 0) + (1 - b2) * d * d
                m_hat, v_hat = s["m"] / (1 - b1 ** t), s["v"] / (1 - b2 ** t)
                x -= lr * m_hat / (np.sqrt(v_hat) + eps)
            else:
                raise AssertionError(rule)
    return np.concatenate(xs)


def algorithm2(problem, lr, delta):
    """Algorithm 2 (AdaGradBNG) exactly as printed, block by block and coordinate by coordinate."""
    xs = [b.copy() for b in problem.split(problem.x)]
    sums = [np.zeros_like(b) for b in xs]          # Σ_τ ĝ_τ²  (s_t = √ of it)
    for g_flat in problem.grads:
        for i, g in enumerate(problem.split(g_flat)):
            n = np.sqrt(np.sum(g * g))
            g_hat = g / n if n > 0 else np.zeros_like(g)
            for j in range(g.size):
                sums[i][j] += g_hat[j] ** 2
                tau = lr * n / (delta + np.sqrt(sums[i][j]))
                xs[i][j] -= tau * g_hat[j]
    return np.concatenate(xs)


@given(problem=block_gradients())
def test_reference_direction_is_unit_per_nonzero_block(problem):
    """The reference NG itself: each nonzero block has norm 1 (guards the oracle the other tests trust)."""
    for g, d in zip(problem.split(problem.grads[0]), ref_direction(problem.split(problem.grads[0]),
                                                                   problem.split(problem.x), "block")):
        if not g.any():
            assert not d.any()
        else:
            np.testing.assert_allclose(np.linalg.norm(d), 1.0, rtol=1e-12)
