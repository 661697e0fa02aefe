"""Hand-written NumPy optimizers for the optimizer audit's tests: correct ones and deliberately wrong ones.

Each factory follows the NumPy mirror's contract: ``FACTORY()`` returns ``step(params, grads)`` over dicts
{"0.weight": (in, out), "0.bias": …}, updating ``params`` in place; a parameter's block is its name up to the last
dot.
"""
import numpy as np


def blocks_of(names, per_tensor=False):
    """[[names of one block], …]: by layer (the prefix before the last dot), or one per tensor."""
    if per_tensor:
        return [[name] for name in names]
    groups = {}
    for name in names:
        groups.setdefault(name.rsplit(".", 1)[0], []).append(name)
    return list(groups.values())


def block_norm(arrays, naive=False):
    """‖g^i‖: naive √Σg² in the arrays' dtype, or exact (scaled by the largest magnitude first)."""
    if naive:
        return np.sqrt(sum((a * a).sum() for a in arrays))
    largest = max(float(np.abs(a).max()) for a in arrays)
    if largest == 0:
        return 0.0
    return largest * float(np.sqrt(sum(((a / largest) ** 2).sum() for a in arrays)))


def normalize(grads, naive=False, per_tensor=False, guard=True):
    out = {}
    for names in blocks_of(list(grads), per_tensor):
        norm = block_norm([grads[n] for n in names], naive)
        for n in names:
            with np.errstate(all="ignore"):
                out[n] = np.zeros_like(grads[n]) if (guard and norm == 0) else grads[n] / grads[n].dtype.type(norm)
    return out


def adam(lr=1e-3, ng=True, naive=False, per_tensor=False, bias_correction=True, eps_in_sqrt=False, guard=True,
         beta1=0.9, beta2=0.999, eps=1e-8):
    state = {"t": 0, "m": {}, "v": {}}

    def step(params, grads):
        state["t"] += 1
        t = state["t"]
        d = normalize(grads, naive, per_tensor, guard) if ng else grads
        for name, g in d.items():
            m = state["m"].setdefault(name, np.zeros_like(g))
            v = state["v"].setdefault(name, np.zeros_like(g))
            m[...] = beta1 * m + (1 - beta1) * g
            v[...] = beta2 * v + (1 - beta2) * g * g
            c1, c2 = (1 - beta1 ** t, 1 - beta2 ** t) if bias_correction else (1.0, 1.0)
            denominator = np.sqrt(v / c2 + eps) if eps_in_sqrt else np.sqrt(v / c2) + eps
            params[name] -= (lr * (m / c1) / denominator).astype(g.dtype)
    return step


def sgdm(lr=0.1, momentum=0.9, ng=True, normalize_velocity=False, nesterov=False):
    state = {"v": {}}

    def step(params, grads):
        d = normalize(grads) if ng and not normalize_velocity else grads
        for name, g in d.items():
            if name not in state["v"]:
                state["v"][name] = g.copy()
            else:
                state["v"][name] = momentum * state["v"][name] + g
        velocity = normalize(state["v"]) if normalize_velocity else state["v"]
        for name in params:
            u = d[name] + momentum * velocity[name] if nesterov else velocity[name]
            params[name] -= (lr * u).astype(params[name].dtype)
    return step


def adamng():
    return adam()


def adamng_naive():
    return adam(naive=True)


def adamng_per_tensor():
    return adam(per_tensor=True)


def adamng_without_bias_correction():
    return adam(bias_correction=False)


def adamng_unguarded():
    return adam(guard=False)


def adam_eps_in_sqrt():
    return adam(ng=False, eps_in_sqrt=True)


def sgdmng():
    return sgdm()


def sgdmng_velocity_normalized():
    return sgdm(normalize_velocity=True)


def sgdmng_nesterov():
    return sgdm(nesterov=True)


def returns_a_new_dict():
    """A functional step: returns new arrays instead of updating in place (the mirror accepts both)."""
    inner = adam()

    def step(params, grads):
        fresh = {name: value.copy() for name, value in params.items()}
        inner(fresh, grads)
        return fresh
    return step


def raises_at_step_two():
    calls = []

    def step(params, grads):
        calls.append(1)
        if len(calls) == 2:
            raise FloatingPointError("overflow in my update")
        for name in params:
            params[name] -= 0.1 * grads[name]
    return step


def not_callable():
    return 42
