"""Step-size rules (Algorithm 1, line 4): from the direction d_t to the update τ_t ∘ d_t, whole-vector and in place.

A rule holds its state (flat (d,) buffers, allocated once by ``init_state(x)``, which first calls ``check_dtype``:
a hyperparameter that vanishes in x's dtype is a ValueError naming it) and one output buffer;
``rule(d, it)`` returns the update u_t = τ_t ∘ d_t for the iteration ``it`` (its ``t`` counts from 1, its ``lr``
is η) and never modifies d.  Fed the raw gradient (normalize=None), each rule matches the torch.optim rule of
the same name.
"""
from __future__ import annotations

import math

from .. import backend
from . import checks

__all__ = ["Rule", "SGDRule", "AdaGradRule", "RMSPropRule", "AdamRule"]


class Rule(checks.Hyperparameters):
    """Base class.  ``state`` maps a buffer name to a flat (d,) array, zeros at the start; it is None until an
    optimizer allocates it (``init_state``), and from then on belongs to that optimizer: a rule serves one optimizer.
    ``hyperparameters`` names the attributes saved in the optimizer's state_dict and checked on load."""

    name = "rule"
    state_names = ()
    state = None

    def init_state(self, x):
        self.check_dtype(x.dtype)
        xp = backend.get_array_module(x)
        self.state = {name: xp.zeros_like(x) for name in self.state_names}
        self.update = xp.empty_like(x)

    def check_dtype(self, dtype):
        """A ValueError naming the option if a hyperparameter vanishes in ``dtype``, the parameters' dtype: an ε that
        rounds to 0 there (:func:`.checks.addend_kept`), a momentum or β that rounds to 1
        (:func:`.checks.factor_kept_below_one`).  Nothing to check by default."""

    def __repr__(self):
        return super().__repr__().replace("Rule", "", 1)


class SGDRule(Rule):
    """Momentum SGD as Torch7 and PyTorch: v_1 = d_1, v_t = μ v_{t−1} + (1 − dampening) d_t;
    u_t = η v_t, or η (d_t + μ v_t) with Nesterov; with μ = 0, u_t = η d_t."""

    name = "sgd"
    hyperparameters = ("momentum", "dampening", "nesterov")

    def __init__(self, momentum=0.0, dampening=0.0, nesterov=False):
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.state_names = ("momentum_buffer",) if momentum > 0 else ()

    def check_dtype(self, dtype):
        checks.factor_kept_below_one("momentum", self.momentum, dtype, "the momentum buffer")

    def __call__(self, d, it):
        xp, u, mu = backend.get_array_module(d), self.update, self.momentum
        if mu == 0:
            return xp.multiply(d, it.lr, out=u)
        v = self.state["momentum_buffer"]
        if it.t == 1:
            v[...] = d
        else:
            v *= mu
            v += d if self.dampening == 0 else xp.multiply(d, 1 - self.dampening, out=u)
        if not self.nesterov:
            return xp.multiply(v, it.lr, out=u)
        xp.multiply(v, mu, out=u)
        u += d
        u *= it.lr
        return u


class AdaGradRule(Rule):
    """AdaGrad (Duchi et al. 2011): s_t = s_{t−1} + d_t²;  u_t = η d_t / (√s_t + ε)."""

    name = "adagrad"
    state_names = ("sum",)
    hyperparameters = ("eps",)

    def __init__(self, eps=1e-10, option="eps"):
        self.eps = eps
        self.option = option   # the name the user gave ε by (AdaGradBNG calls it delta)

    def check_dtype(self, dtype):
        checks.addend_kept(self.option, self.eps, dtype, self.eps, f"the step adds {self.option} = {{}} to √s")

    def __call__(self, d, it):
        xp, u, s = backend.get_array_module(d), self.update, self.state["sum"]
        s += xp.multiply(d, d, out=u)
        xp.sqrt(s, out=u)
        u += self.eps
        xp.divide(d, u, out=u)
        u *= it.lr
        return u


class RMSPropRule(Rule):
    """RMSProp as torch.optim.RMSprop: a_t = α a_{t−1} + (1 − α) d_t²;  centered: m_t = α m_{t−1} + (1 − α) d_t
    and a_t − m_t² (clipped at 0: rounding can take it below) in place of a_t;  r_t = d_t / (√a_t + ε);
    u_t = η r_t, or with momentum μ > 0: b_t = μ b_{t−1} + r_t and u_t = η b_t."""

    name = "rmsprop"
    hyperparameters = ("alpha", "eps", "momentum", "centered")

    def __init__(self, alpha=0.99, eps=1e-8, momentum=0.0, centered=False):
        self.alpha = alpha
        self.eps = eps
        self.momentum = momentum
        self.centered = centered
        self.state_names = ("square_avg",)
        if centered:
            self.state_names += ("grad_avg",)
        if momentum > 0:
            self.state_names += ("momentum_buffer",)

    def check_dtype(self, dtype):
        checks.factor_kept_below_one("alpha", self.alpha, dtype, "the average of squares")
        checks.factor_kept_below_one("momentum", self.momentum, dtype, "the momentum buffer")
        checks.addend_kept("eps", self.eps, dtype, self.eps, "the step adds eps = {} to √a")

    def __call__(self, d, it):
        xp, u, a = backend.get_array_module(d), self.update, self.state["square_avg"]
        a *= self.alpha
        a += xp.multiply(xp.multiply(d, d, out=u), 1 - self.alpha, out=u)
        if self.centered:
            m = self.state["grad_avg"]
            m *= self.alpha
            m += xp.multiply(d, 1 - self.alpha, out=u)
            xp.maximum(xp.subtract(a, xp.multiply(m, m, out=u), out=u), 0, out=u)
            xp.sqrt(u, out=u)
        else:
            xp.sqrt(a, out=u)
        u += self.eps
        xp.divide(d, u, out=u)
        if self.momentum == 0:
            u *= it.lr
            return u
        b = self.state["momentum_buffer"]
        b *= self.momentum
        b += u
        return xp.multiply(b, it.lr, out=u)


class AdamRule(Rule):
    """Adam as torch.optim.Adam: m_t = β₁m + (1 − β₁)d;  v_t = β₂v + (1 − β₂)d²;
    u_t = η (m_t / c₁) / (√v_t / √c₂ + ε),  c_k = 1 − β_kᵗ (bias correction)."""

    name = "adam"
    state_names = ("exp_avg", "exp_avg_sq")
    hyperparameters = ("beta1", "beta2", "eps")

    def __init__(self, betas=(0.9, 0.999), eps=1e-8):
        self.beta1, self.beta2 = betas   # (β₁, β₂): one pair, as torch.optim.Adam takes them
        self.eps = eps

    def check_dtype(self, dtype):
        checks.factor_kept_below_one("betas[0]", self.beta1, dtype, "the average of gradients")
        checks.factor_kept_below_one("betas[1]", self.beta2, dtype, "the average of squares")
        checks.addend_kept("eps", self.eps, dtype, self.eps * math.sqrt(1 - self.beta2),
                           "at step 1 the step adds eps·√(1 − β₂) = {} to √v")

    def __call__(self, d, it):
        xp, u = backend.get_array_module(d), self.update
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        m *= self.beta1
        m += xp.multiply(d, 1 - self.beta1, out=u)
        v *= self.beta2
        v += xp.multiply(xp.multiply(d, d, out=u), 1 - self.beta2, out=u)
        c1, c2 = 1 - self.beta1 ** it.t, 1 - self.beta2 ** it.t
        # η (m/c₁) / (√v/√c₂ + ε) = (η√c₂/c₁) · m / (√v + ε√c₂): one pass fewer than dividing v by c₂
        xp.sqrt(v, out=u)
        u += self.eps * math.sqrt(c2)
        xp.divide(m, u, out=u)
        u *= it.lr * math.sqrt(c2) / c1
        return u
