"""The optimizer: one chain of links (:mod:`.chain`) over one flat parameter vector (:mod:`.flat`).

``Optimizer.step`` is the paper's Algorithm 1, numbered as its box (the paper writes F′_i(x_t, ξ_t) for the
gradient block this code calls g^i, and g^i_t for the normalized block this code calls ĝ^i):

    line 2   t ← t + 1
    line 3   g^i = F′_i(x_t, ξ_t), written by the layers' backward into the flat gradient g;
             ĝ^i_t = g^i / ‖g^i‖ by the chain's direction links (the measurement of ‖g^i‖, then NG; or NGadap,
             CLIP, LARS; weight decay λx)
    line 4   step sizes τ_t from the chain's rule (SGD-momentum, AdaGrad, RMSProp, Adam) fed ĝ_t: u = τ_t ∘ ĝ_t,
             then its update links (LAMB's trust ratio; AdaGradBNG's ‖g^i_t‖)
    line 5   x_{t+1} = x_t − τ_t ∘ ĝ_t

The chain is built once, by the constructor (:meth:`.chain.Chain.standard` for the named optimizers, or given
whole); ``repr(opt)`` prints every link.  Everything is whole-vector, in-place array code: no Python loop over
blocks, no host round-trip.
"""
from __future__ import annotations

from . import checks
from .chain import Chain
from .flat import Flat
from .partition import resolve
from .state import load_state, save_state

__all__ = ["Optimizer", "Iteration"]


class Iteration:
    """What the links of iteration t share: ``t`` (from 1), ``lr`` (η), ``x`` (x_t), ``partition``,
    ``block_norms`` (‖g^i_t‖ once :class:`~.transforms.BlockNorms` measured them, float64), ``param_norms``
    (‖x^i_t‖, measured on first use), ``direction`` (the buffer the transforms write into) and ``scratch`` (free
    between calls)."""

    def __init__(self, flat):
        self.t = 0
        self.lr = 0.0
        self.x = flat.x
        self.partition = flat.partition
        self.block_norms = None
        self.direction = flat.partition.xp.empty_like(flat.x)
        self.scratch = flat.partition.scratch
        self._param_norms = None

    def begin(self, t, lr):
        """Begin iteration ``t`` with learning rate ``lr``."""
        self.t = t
        self.lr = lr
        self._param_norms = None
        return self

    @property
    def param_norms(self):
        if self._param_norms is None:
            self._param_norms = self.partition.norms(self.x)
        return self._param_norms


class Optimizer:
    """Base of every optimizer (see the module docstring).

    ``rule``: the step rule, around which the chain is built from the options below (:meth:`.chain.Chain.standard`),
    or a whole :class:`~.chain.Chain` composed by hand (the options then keep their defaults: every link is in it).
    A rule, and so a chain, serves one optimizer: one that already holds another optimizer's state is a ValueError.
    Everything is checked before the parameters are packed, so a refused optimizer leaves the model as it was.

    - ``normalize``: None, ``"block"`` (NG), or one transform: a direction transform (``Adaptive(α)``,
      ``Clip(c)``, ``Lars(η, λ)``, your own) goes between the measurement of ‖g^i‖ and the rule; an update transform
      (``TrustRatio(λ)``) goes after the rule.
    - ``weight_decay`` λ adds λx to the direction after normalization, or before the norms are measured with
      ``decay="before"``.
    - ``track_norms`` measures ‖g^i‖ every step (``block_norms``) even when no link needs them.
    - ``update_transforms``: the optimizer's own links after the rule (AdaGradBNG's ‖g^i_t‖).
    - ``blocks``: the partition into blocks (:mod:`.partition`).

    Attributes: ``lr`` (settable), ``base_lr`` (the lr given at construction; schedules scale it), ``blocks``
    [(name, size)], ``block_norms`` (the last step's ‖g^i‖ on the parameters' device, None before a step),
    ``param_names``, ``step_count`` (t), ``chain``, ``rule`` (the chain's), ``flat``.
    """

    def __init__(self, params, rule, lr, *, normalize=None, blocks="layer", weight_decay=0.0, decay="after",
                 track_norms=True, update_transforms=()):
        self.lr = lr
        self.base_lr = self.lr
        if isinstance(rule, Chain):
            _require_defaults(normalize=normalize, weight_decay=weight_decay, decay=decay, track_norms=track_norms,
                              update_transforms=update_transforms)
            self.chain = rule
        else:
            self.chain = Chain.standard(rule, normalize, weight_decay, decay, track_norms, update_transforms)
        _require_unused(self.chain)
        self.partition_kind = blocks if isinstance(blocks, str) else "custom"
        groups = resolve(params, blocks)
        self.rule.check_dtype(_parameters_dtype(groups))   # every check before packing: a refusal leaves the model
        self.flat = Flat(groups)
        self.rule.init_state(self.flat.x)
        self._iteration = Iteration(self.flat)
        self.step_count = 0   # t: the number of steps taken (saved in state_dict)

    def step(self):
        """Lines 2–5 of Algorithm 1 (module docstring; docs/algorithm.md puts them beside the paper's box)."""
        self._live()
        self.step_count += 1                           # line 2: t ← t + 1
        it = self._iteration.begin(self.step_count, self.lr)
        g = self.flat.g                                # line 3: g = F′(x_t, ξ_t), written by the layers' backward
        u = self.chain(g, it)                          # lines 3–4: ĝ_t (‖g^i‖, NG …), then u = τ_t ∘ ĝ_t (the rule)
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
    def rule(self):
        """The chain's step rule (its ``state`` holds the rule's buffers)."""
        return self.chain.rule

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
        step or without a measurement in the chain.  With decay="before" these are the norms of g^i + λx^i."""
        norms = self._iteration.block_norms
        return None if norms is None else norms.astype(self.flat.partition.dtype)

    def __repr__(self):
        """The chain, applied right to left, then the partition: ``Adam(lr=0.001, …) ∘ BlockNormalize ∘ BlockNorms
        ∘ blocks=layer (6 blocks)``."""
        blocks = f"blocks={self.partition_kind} ({len(self.flat.partition.sizes)} blocks)"
        return f"{self.chain.describe(self.lr)} ∘ {blocks}"

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

        Keys: ``format``, ``optimizer``, ``chain`` (:meth:`.chain.Chain.signature`), ``step``, ``lr``, ``base_lr``,
        ``hyper.<link>.<name>``, ``block.<block name>.size``, ``param.<param name>.size`` and
        ``state.<param name>.<buffer>`` (the slice of each rule buffer that belongs to that parameter, in its
        shape).  Nothing is keyed by position.
        """
        return save_state(self)

    def load_state_dict(self, state):
        """Restore a state_dict, after checking everything in it (names, sizes, values) before changing anything."""
        load_state(self, state)
        return self


def _require_unused(chain):
    """A chain serves one optimizer: its rule's state (Adam's moments, the momentum buffer) is allocated for, and
    updated by, that optimizer's parameters.  A second optimizer built on it would share that state (mixing two
    models' moments, or failing at its first step when the sizes differ)."""
    if chain.rule.state is not None:
        raise ValueError(f"Optimizer: this chain already belongs to another optimizer: its step rule {chain.rule!r} "
                         "holds that optimizer's state, which a second one would share; build a new Chain, with new "
                         "links, for each optimizer")


def _parameters_dtype(groups):
    """The dtype of the parameters grouped into blocks (:func:`.partition.resolve`), as packing reads it: the first
    parameter's (packing refuses a mix)."""
    _, members = groups[0]
    _, first = members[0]
    return first.data.dtype


def _require_defaults(normalize, weight_decay, decay, track_norms, update_transforms):
    """With a whole Chain given, the options that would add links to it must keep their defaults."""
    changed = {"normalize": normalize is not None, "weight_decay": weight_decay != 0, "decay": decay != "after",
               "track_norms": track_norms is not True, "update_transforms": len(update_transforms) > 0}
    for option, differs in changed.items():
        if differs:
            raise ValueError(f"{option}: the optimizer was given a whole Chain, which holds every link; add it to "
                             "the chain instead")
