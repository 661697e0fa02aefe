"""Step-size rules: whole-vector, in-place array code over the flat direction d, with preallocated state.

A rule turns the direction d_t (the normalized gradient ĝ_t, plus weight decay) into a step u_t; the optimizer
then sets x_{t+1} = x_t − lr · step_scale · u_t (step_scale is a scalar the rule may set, e.g. Adam's bias
correction, so that no full-vector pass is spent on it).  So τ_t ∘ ĝ_t of Algorithm 1 is lr · u_t.  Each rule matches the
torch.optim rule of the same name when the direction is the raw gradient (normalize=None).

``update(d, t, out, g)``: d the direction, t the step number (1 for the first step), ``out`` a free (d,)
buffer the rule may write its step into, g the raw gradient (only AdaGradBNG reads it).  It returns u_t,
which may be ``d``, ``out`` or a state array; it must not modify d or g.
"""
from __future__ import annotations

import math

from .. import backend

__all__ = ["Rule", "SGDRule", "AdaGradRule", "RMSPropRule", "AdamRule", "AdaGradBNGRule"]


class Rule:
    """Base class.  ``state`` maps a name to a flat (d,) array; ``init_state(x)`` allocates it as zeros."""

    name = "rule"
    state_names = ()
    step_scale = 1.0   # a scalar the optimizer folds into lr: x ← x − (lr · step_scale) · u

    def init_state(self, x):
        self.state = {name: backend.get_array_module(x).zeros_like(x) for name in self.state_names}

    def config(self):
        """Hyperparameters, saved in the optimizer's state_dict and checked on load."""
        return {}

    def update(self, d, t, out, g):
        raise NotImplementedError


class SGDRule(Rule):
    """Momentum SGD as Torch7 and PyTorch: v_1 = d_1, v_t = μ v_{t−1} + (1 − dampening) d_t;
    u = v, or u = d + μ v (Nesterov); with μ = 0, u = d."""

    name = "sgd"

    def __init__(self, momentum=0.0, dampening=0.0, nesterov=False):
        self.momentum, self.dampening, self.nesterov = momentum, dampening, nesterov
        self.state_names = ("momentum_buffer",) if momentum > 0 else ()

    def config(self):
        return {"momentum": self.momentum, "dampening": self.dampening, "nesterov": float(self.nesterov)}

    def update(self, d, t, out, g):
        if self.momentum == 0:
            return d
        v = self.state["momentum_buffer"]
        if t == 1:
            v[...] = d
        else:
            v *= self.momentum
            if self.dampening == 0:
                v += d
            else:
                v += _scaled(d, 1 - self.dampening, out)
        if not self.nesterov:
            return v
        _scaled(v, self.momentum, out)
        out += d
        return out


class AdaGradRule(Rule):
    """AdaGrad: s_t = s_{t−1} + d_t²;  u = d_t / (√s_t + ε)  (ε = 1e-10 as torch.optim.Adagrad)."""

    name = "adagrad"
    state_names = ("sum",)

    def __init__(self, eps=1e-10):
        self.eps = eps

    def config(self):
        return {"eps": self.eps}

    def update(self, d, t, out, g):
        acc = self.state["sum"]
        _square(d, out)
        acc += out
        _sqrt(acc, out)
        out += self.eps
        return _divide(d, out, out)


class RMSPropRule(Rule):
    """RMSProp as torch.optim.RMSprop: a_t = α a_{t−1} + (1 − α) d²;  centered: m_t = α m_{t−1} + (1 − α) d,
    a_t ← a_t − m_t²;  r = d / (√a_t + ε);  with momentum μ > 0: b_t = μ b_{t−1} + r and u = b_t, else u = r."""

    name = "rmsprop"

    def __init__(self, alpha=0.99, eps=1e-8, momentum=0.0, centered=False):
        self.alpha, self.eps, self.momentum, self.centered = alpha, eps, momentum, centered
        self.state_names = ("square_avg",) + (("grad_avg",) if centered else ()) + (
            ("momentum_buffer",) if momentum > 0 else ())

    def config(self):
        return {"alpha": self.alpha, "eps": self.eps, "momentum": self.momentum, "centered": float(self.centered)}

    def update(self, d, t, out, g):
        square_avg = self.state["square_avg"]
        square_avg *= self.alpha
        _square(d, out)
        out *= 1 - self.alpha
        square_avg += out
        if self.centered:
            grad_avg = self.state["grad_avg"]
            grad_avg *= self.alpha
            grad_avg += _scaled(d, 1 - self.alpha, out)
            _square(grad_avg, out)
            _subtract(square_avg, out, out)
            _sqrt(out, out)
        else:
            _sqrt(square_avg, out)
        out += self.eps
        _divide(d, out, out)
        if self.momentum == 0:
            return out
        buffer = self.state["momentum_buffer"]
        buffer *= self.momentum
        buffer += out
        return buffer


class AdamRule(Rule):
    """Adam as torch.optim.Adam: m_t = β₁m + (1 − β₁)d;  v_t = β₂v + (1 − β₂)d²;
    u = (m_t / c₁) / (√v_t / √c₂ + ε),  c_k = 1 − β_k^t (bias correction)."""

    name = "adam"
    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, betas=(0.9, 0.999), eps=1e-8):
        self.beta1, self.beta2 = betas
        self.eps = eps

    def config(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def update(self, d, t, out, g):
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        m *= self.beta1
        m += _scaled(d, 1 - self.beta1, out)
        v *= self.beta2
        _square(d, out)
        out *= 1 - self.beta2
        v += out
        c1, c2 = 1 - self.beta1 ** t, 1 - self.beta2 ** t
        # (m/c₁) / (√v/√c₂ + ε) = (√c₂/c₁) · m / (√v + ε√c₂): the scalar goes to step_scale, saving two passes.
        _sqrt(v, out)
        out += self.eps * math.sqrt(c2)
        _divide(m, out, out)
        self.step_scale = math.sqrt(c2) / c1
        return out


class AdaGradBNGRule(Rule):
    """Algorithm 2 (AdaGradBNG): s_t = √(Σ_{τ≤t} ĝ_τ²) from the normalized directions d = ĝ, and
    u^i = ‖g^i_t‖ ĝ^i_t / (δ + s^i_t) = g^i_t / (δ + s^i_t), so x_{t+1} = x_t − η u."""

    name = "adagradbng"
    state_names = ("sum",)

    def __init__(self, delta=1e-10):
        self.delta = delta

    def config(self):
        return {"delta": self.delta}

    def update(self, d, t, out, g):
        acc = self.state["sum"]
        _square(d, out)
        acc += out
        _sqrt(acc, out)
        out += self.delta
        return _divide(g, out, out)


# In-place helpers: each writes into ``out`` so that no step allocates a full-size temporary.
def _xp(a):
    return backend.get_array_module(a)


def _scaled(a, factor, out):
    return _xp(a).multiply(a, factor, out=out)


def _square(a, out):
    return _xp(a).multiply(a, a, out=out)


def _sqrt(a, out):
    return _xp(a).sqrt(a, out=out)


def _divide(a, b, out):
    return _xp(a).divide(a, b, out=out)


def _subtract(a, b, out):
    return _xp(a).subtract(a, b, out=out)
