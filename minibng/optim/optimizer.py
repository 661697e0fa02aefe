"""Optimizer = block partition ∘ direction transform ∘ step rule, over one flat parameter vector.

One step of Algorithm 1 (generic BNG), with λ the weight decay:

    1. g = ∇F(x_t, ξ_t)                      already in the flat vector g (layers' backward filled it)
    2. n_i = ‖g^i‖₂ for every block          blocks.norms(g)            one segment sum
       ĝ^i = g^i · a_i / b_i                   normalizer.block_ratio      NG, NGadap, CLIP, LARS
       d = ĝ + λx                              weight decay after normalization (decay="before": d = s(g + λx))
    3. u = rule(d)                             step rule fed d instead of g: SGD, AdaGrad, RMSProp, Adam
    4. x_{t+1} = x_t − lr · c · u              (c: the rule's scalar step_scale; τ_t ∘ ĝ_t = lr · c · u)

A transform with stage "step" (LAMB's trust ratio) scales u between 3 and 4.  Everything is whole-vector,
in-place array code: no Python loop over blocks, no host round-trip.
"""
from __future__ import annotations

from .. import backend
from . import checks
from .blocks import pack
from .normalizers import as_normalizer
from .state import load_state, save_state

__all__ = ["Optimizer"]


class Optimizer:
    """Base of every optimizer.  See the module docstring for the step; subclasses only choose the rule.

    Attributes: ``lr`` (settable), ``base_lr`` (the lr given at construction; schedules scale it),
    ``blocks`` [(name, size)], ``block_norms`` (device array of the last step's ‖g^i‖, None before the first
    step), ``param_names``, ``step_count``.
    """

    def __init__(self, params, rule, lr, *, normalize=None, blocks="layer", weight_decay=0.0, decay="after",
                 track_norms=True):
        self.lr = lr
        self.base_lr = self.lr
        self.weight_decay = checks.non_negative("weight_decay", weight_decay)
        if decay not in ("after", "before"):
            raise ValueError(f"decay must be 'after' or 'before' (normalization), got {decay!r}")
        self.decay = decay
        self.track_norms = checks.flag("track_norms", track_norms)
        self.normalizer = as_normalizer(normalize)
        if self.normalizer is not None and self.normalizer.weight_decay and self.weight_decay:
            raise ValueError(f"weight_decay: {type(self.normalizer).__name__} adds its own weight decay; "
                             "give it there and leave the optimizer's weight_decay at 0")
        self.rule = rule
        self.packed = pack(params, blocks)
        xp, x = self.packed.xp, self.packed.x
        self.rule.init_state(x)
        self._direction, self._step = xp.empty_like(x), xp.empty_like(x)
        self._scratch = self.packed._scratch   # shared: fewer buffers, less cache traffic
        num_blocks = self.packed.num_blocks
        self._grad_norms = None
        self.step_count = 0

    # -- hyperparameters and logging ------------------------------------------------------------------------
    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = checks.non_negative("lr", value)

    @property
    def blocks(self):
        """[(block name, size d_i)] in the order of the flat vector."""
        return list(zip(self.packed.names, self.packed.sizes))

    @property
    def param_names(self):
        return list(self.packed.param_names)

    @property
    def block_norms(self):
        """‖g^i‖₂ of the last step for every block (a copy, on the parameters' device); None before a step.

        With decay="before" these are the norms of g^i + λx^i, the vector that was normalized.
        """
        return None if self._grad_norms is None else self._grad_norms.astype(self.packed.dtype)

    def __repr__(self):
        normalize = "None" if self.normalizer is None else repr(self.normalizer)
        return (f"{type(self).__name__}(lr={self.lr}, normalize={normalize}, blocks={self.packed.num_blocks}, "
                f"size={self.packed.size}, {self.rule.config()})")

    # -- the step --------------------------------------------------------------------------------------------
    def zero_grad(self):
        """g ← 0 (one call for every parameter's gradient)."""
        self.packed.g[...] = 0

    def step(self):
        """x_{t+1} = x_t − lr · rule(normalize(g) + λx)  (module docstring)."""
        packed = self._live()
        xp, x, g = packed.xp, packed.x, packed.g
        normalizer, decay = self.normalizer, self.weight_decay
        self.step_count += 1
        direction = g
        if decay and self.decay == "before":
            direction = self._add_decay(g, x, decay, self._direction)
        if self.track_norms or (normalizer is not None and normalizer.stage == "direction"):
            self._grad_norms = packed.norms(direction)
        if normalizer is not None and normalizer.stage == "direction":
            param_norms = packed.norms(x) if normalizer.needs_param_norms else None
            numerator, denominator = normalizer.block_ratio(self._grad_norms, param_norms)
            if normalizer.weight_decay:
                direction = self._add_decay(direction, x, normalizer.weight_decay, self._direction)
            direction = packed.scale(direction, numerator, denominator, out=self._direction)
        if decay and self.decay == "after":
            direction = self._add_decay(direction, x, decay, self._direction)
        step = self.rule.update(direction, self.step_count, self._step, g)
        step_scale = self.rule.step_scale
        if normalizer is not None and normalizer.stage == "step":
            step, step_scale = self._trust_ratio(step, x, normalizer, step_scale), 1.0
        x -= xp.multiply(step, self.lr * step_scale, out=self._scratch)

    def _add_decay(self, direction, x, decay, out):
        """direction + λx, written to ``out`` (which may be ``direction`` itself)."""
        xp = self.packed.xp
        if direction is out:
            direction += xp.multiply(x, decay, out=self._scratch)
            return direction
        xp.multiply(x, decay, out=out)
        out += direction
        return out

    def _trust_ratio(self, step, x, normalizer, step_scale):
        packed, xp = self.packed, self.packed.xp
        step = xp.multiply(step, step_scale, out=self._step)
        if normalizer.weight_decay:
            step = self._add_decay(step, x, normalizer.weight_decay, step)
        numerator, denominator = normalizer.block_ratio(packed.norms(step), packed.norms(x))
        return packed.scale(step, numerator, denominator, out=step)

    def _live(self):
        if self.packed.released:
            raise RuntimeError(f"this {type(self).__name__} no longer owns its parameters: another optimizer packed "
                               "them later (or release() was called); create one optimizer per model")
        return self.packed

    def release(self):
        """Give the parameters back their own storage; this optimizer cannot step afterwards."""
        self.packed.release()

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self):
        """A flat {str: host array or Python scalar/str} dict (saves with numpy.savez, loads without pickle).

        Keys: ``optimizer``, ``normalize``, ``step``, ``lr``, ``base_lr``, ``hyper.<name>``,
        ``block.<block name>.size``, ``param.<param name>.size`` and ``state.<param name>.<buffer>`` (the slice
        of each rule buffer that belongs to that parameter, in its shape).  Nothing is keyed by position.
        """
        return save_state(self)

    def load_state_dict(self, state):
        """Restore a state_dict, after checking it names the same blocks, parameters and buffers."""
        load_state(self, state)
        return self

    def hyperparameters(self):
        """Rule and transform hyperparameters as {name: float}, recorded in state_dict and checked on load."""
        hyper = {f"rule.{k}": float(v) for k, v in self.rule.config().items()}
        if self.normalizer is not None:
            hyper.update({f"normalize.{k}": float(v) for k, v in self.normalizer.config().items()})
        hyper["weight_decay"] = self.weight_decay
        hyper["decay_before"] = float(self.decay == "before")
        return hyper

    def to_host_norms(self):
        """The last step's block norms as a host NumPy array (forces a device sync; for logging only)."""
        norms = self.block_norms
        return None if norms is None else backend.asnumpy(norms)
