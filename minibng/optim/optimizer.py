"""The optimizer: one ordered chain, direction transforms → step rule → update transforms, over one flat vector.

``Optimizer.step`` is the paper's Algorithm 1, numbered as its box (the paper writes F′_i(x_t, ξ_t) for the
gradient block this code calls g^i, and g^i_t for the normalized block this code calls ĝ^i):

    line 2   t ← t + 1
    line 3   g^i = F′_i(x_t, ξ_t), written by the layers' backward into the flat gradient;
             ĝ^i_t = g^i / ‖g^i‖ by the direction transforms (or NGadap, CLIP, LARS; weight decay λx)
    line 4   step sizes τ_t from the rule (SGD-momentum, AdaGrad, RMSProp, Adam) fed ĝ_t: u = τ_t ∘ ĝ_t,
             then the update transforms (LAMB's trust ratio; AdaGradBNG's ‖g^i_t‖)
    line 5   x_{t+1} = x_t − τ_t ∘ ĝ_t

The chain is built once, by the constructor of each optimizer (:mod:`.algorithms`); ``repr(opt)`` prints it.
Everything is whole-vector, in-place array code: no Python loop over blocks, no host round-trip.
"""
from __future__ import annotations

from . import checks
from .flat import pack
from .state import load_state, save_state
from .transforms import GradientNorms, UpdateTransform, WeightDecay, as_transform

__all__ = ["Optimizer", "Iteration"]


class Iteration:
    """What the transforms of iteration t share: ``t`` (from 1), ``lr`` (η), ``x`` (x_t), ``partition``,
    ``grad_norms`` (‖g^i_t‖ once :class:`GradientNorms` measured them, float64), ``param_norms`` (‖x^i_t‖, measured
    on first use), ``direction`` (the buffer direction transforms write into) and ``scratch`` (free between calls)."""

    def __init__(self, flat):
        self.t = 0
        self.lr = 0.0
        self.x = flat.x
        self.partition = flat.partition
        self.grad_norms = None
        self.direction = flat.partition.xp.empty_like(flat.x)
        self.scratch = flat.partition.scratch
        self._param_norms = None

    def begin(self, t, lr):
        """Begin iteration ``t`` with learning rate ``lr``."""
        self.t, self.lr, self._param_norms = t, lr, None
        return self

    @property
    def param_norms(self):
        if self._param_norms is None:
            self._param_norms = self.partition.norms(self.x)
        return self._param_norms


class Optimizer:
    """Base of every optimizer; subclasses choose the rule and its update transforms (see the module docstring).

    ``normalize``: None, ``"block"`` (NG), or a :class:`.transforms.Transform` (Adaptive, Clip, Lars; an
    :class:`.transforms.UpdateTransform` such as TrustRatio goes after the rule).  ``weight_decay`` λ adds λx to the
    direction after normalization, or before it with ``decay="before"``.  ``track_norms`` measures ‖g^i‖ every step
    (``block_norms``) even when no transform needs them.

    Attributes: ``lr`` (settable), ``base_lr`` (the lr given at construction; schedules scale it), ``blocks``
    [(name, size)], ``block_norms`` (the last step's ‖g^i‖ on the parameters' device, None before a step),
    ``param_names``, ``step_count`` (t), ``direction_transforms``, ``rule``, ``update_transforms``, ``flat``.
    """

    def __init__(self, params, rule, lr, *, normalize=None, blocks="layer", weight_decay=0.0, decay="after",
                 track_norms=True, update_transforms=()):
        self.lr = lr
        self.base_lr = self.lr
        self.weight_decay = checks.non_negative("weight_decay", weight_decay)
        self.decay = checks.choice("decay", decay, ("after", "before"))
        norm = self.normalizer = as_transform(normalize)
        if norm is not None and norm.weight_decay and self.weight_decay:
            raise ValueError(f"weight_decay: {type(norm).__name__} adds its own weight decay; "
                             "give it there and leave the optimizer's weight_decay at 0")
        after_rule = isinstance(norm, UpdateTransform)
        self.update_transforms = list(update_transforms) + ([norm] if after_rule else [])
        direction = [] if norm is None or after_rule else [norm]
        if checks.flag("track_norms", track_norms) or any(t.needs_grad_norms for t in direction + self.update_transforms):
            direction.insert(0, GradientNorms())
        decay_step = [WeightDecay(self.weight_decay)] if self.weight_decay else []
        self.direction_transforms = decay_step + direction if decay == "before" else direction + decay_step
        self.rule = rule
        self.partition_kind = blocks if isinstance(blocks, str) else "custom"
        self.flat = pack(params, blocks)
        self.rule.init_state(self.flat.x)
        self._iteration = Iteration(self.flat)
        self.step_count = 0   # t: the number of steps taken (saved in state_dict)

    def step(self):
        """Lines 2–5 of Algorithm 1 (module docstring; docs/algorithm.md puts them beside the paper's box)."""
        self._live()
        self.step_count += 1                           # line 2: t ← t + 1
        it = self._iteration.begin(self.step_count, self.lr)
        d = self.flat.g                                # line 3: g = F′(x_t, ξ_t), written by the layers' backward,
        for transform in self.direction_transforms:    #         then ĝ^i_t = g^i/‖g^i‖ (NG; or NGadap, CLIP,
            d = transform(d, it)                       #         LARS), + λx
        u = self.rule(d, it)                           # line 4: τ_t from the rule fed ĝ_t; u = τ_t ∘ ĝ_t
        for transform in self.update_transforms:       #         (LAMB's trust ratio, AdaGradBNG's ‖g^i_t‖)
            u = transform(u, it)
        self.flat.x -= u                               # line 5: x_{t+1} = x_t − τ_t ∘ ĝ_t

    def zero_grad(self):
        """g ← 0 (one call for every parameter's gradient)."""
        self.flat.g[...] = 0

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
        return list(zip(self.flat.partition.names, self.flat.partition.sizes))

    @property
    def param_names(self):
        return list(self.flat.param_names)

    @property
    def block_norms(self):
        """‖g^i‖₂ of the last step for every block (on the parameters' device, in their dtype); None before a
        step or without norm tracking.  With decay="before" these are the norms of g^i + λx^i."""
        norms = self._iteration.grad_norms
        return None if norms is None else norms.astype(self.flat.partition.dtype)

    def __repr__(self):
        """The chain, applied right to left: update transforms ∘ rule ∘ direction transforms ∘ partition."""
        rule = repr(self.rule).replace("(", f"(lr={self.lr}, ", 1).replace(", )", ")")
        shown = [repr(t) for t in reversed(self.update_transforms)] + [rule] + [
            repr(t) for t in reversed(self.direction_transforms) if not isinstance(t, GradientNorms)]
        return " ∘ ".join(shown + [f"blocks={self.partition_kind} ({len(self.flat.partition.sizes)} blocks)"])

    def hyperparameters(self):
        """Rule and transform hyperparameters as {name: float}, recorded in state_dict and checked on load."""
        normalize = {} if self.normalizer is None else self.normalizer.config()
        return {**{f"rule.{k}": float(v) for k, v in self.rule.config().items()},
                **{f"normalize.{k}": float(v) for k, v in normalize.items()},
                "weight_decay": self.weight_decay, "decay_before": float(self.decay == "before")}

    # -- ownership and state --------------------------------------------------------------------------------
    def _live(self):
        if self.flat.released:
            raise RuntimeError(f"this {type(self).__name__} no longer owns its parameters: another optimizer packed "
                               "them later (or release() was called); create one optimizer per model")

    def release(self):
        """Give the parameters back their own storage; this optimizer cannot step afterwards."""
        self.flat.release()

    def state_dict(self):
        """A flat {str: host array or Python scalar/str} dict (saves with numpy.savez, loads without pickle).

        Keys: ``optimizer``, ``normalize``, ``step``, ``lr``, ``base_lr``, ``hyper.<name>``,
        ``block.<block name>.size``, ``param.<param name>.size`` and ``state.<param name>.<buffer>`` (the slice
        of each rule buffer that belongs to that parameter, in its shape).  Nothing is keyed by position.
        """
        return save_state(self)

    def load_state_dict(self, state):
        """Restore a state_dict, after checking everything in it (names, sizes, values) before changing anything."""
        load_state(self, state)
        return self
