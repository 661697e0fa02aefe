"""An optimizer's chain: the ordered links that turn the gradient g into the update u, then x_{t+1} = x_t − u.

    u = (T_k ∘ … ∘ T_1)(g)

The links are block transforms (:mod:`.transforms`) and exactly one step rule (:mod:`.rules`).  Transforms before
the rule act on the direction it is fed (Algorithm 1, line 3: the measurement of ‖g^i‖, NG, NGadap, CLIP, LARS,
weight decay), transforms after it on its update τ_t ∘ ĝ_t (LAMB's trust ratio, AdaGradBNG's ‖g^i_t‖).  Every named
optimizer builds its chain from its arguments (:meth:`Chain.standard`); a chain composed by hand, in any order, is
an optimizer too:

    chain = optim.Chain(optim.WeightDecay(1e-4), optim.BlockNorms(), optim.Clip(1.0), AdamRule(), optim.TrustRatio())
    opt = optim.Optimizer(model, chain, lr=1e-3)

A chain serves one optimizer (its rule holds that optimizer's state): build a new chain, with new links, for each.

:class:`~.transforms.BlockNorms` is a link of its own: it measures ‖v^i‖ of the vector it is given into
``it.block_norms`` (what ``opt.block_norms`` reports), for the links after it that read them.  A link that reads
block norms before any measurement is an error.

A link ``link(v, it)`` never writes into its input ``v`` unless ``v`` is ``it.direction`` (the buffer the transforms
share; a rule writes its own ``update`` buffer), so a link behaves the same wherever it stands and the gradient g
is never changed by a step.

``chain.observers`` is a list of callables ``observe(link, v_in, v_out, it)``, each called after every link of every
step (empty by default): how :class:`minibng.audit.ChainTrace` records what each link made, without a copy of this
loop or of ``Optimizer.step``.
"""
from __future__ import annotations

from . import checks
from .rules import Rule
from .transforms import BlockNorms, Transform, UpdateTransform, WeightDecay, as_transform

__all__ = ["Chain"]


def _reads_block_norms(link):
    return getattr(link, "needs_block_norms", False)


class Chain:
    """The links of one optimizer, in the order they are applied (see the module docstring).

    ``links``: the tuple of links; ``rule``: the step rule among them; ``direction_links`` and ``update_links``: the
    links before and after it."""

    def __init__(self, *links):
        for k, link in enumerate(links):
            if not isinstance(link, (Transform, Rule)):
                raise TypeError(f"Chain: link {k} must be a transform or a step rule, got {type(link).__name__}")
        rules = [k for k, link in enumerate(links) if isinstance(link, Rule)]
        if len(rules) != 1:
            raise ValueError(f"Chain: expected exactly one step rule among the links, got {len(rules)}")
        measured = False
        for link in links:
            if _reads_block_norms(link) and not measured:
                raise ValueError(f"Chain: {link!r} reads the block norms ‖g^i‖; put optim.BlockNorms() before it")
            measured = measured or isinstance(link, BlockNorms)
        named = [link.name for link in links if link.hyperparameters]
        repeated = sorted({name for name in named if named.count(name) > 1})
        if repeated:
            raise ValueError(f"Chain: two links named {repeated[0]!r} hold hyperparameters; a state_dict saves them "
                             "under the link's name, so it must be unique")
        self.links = tuple(links)
        self._rule_index = rules[0]
        self.observers = []   # observe(link, v_in, v_out, it) after every link: see the module docstring

    @classmethod
    def standard(cls, rule, normalize=None, weight_decay=0.0, decay="after", track_norms=True, update_transforms=()):
        """The chain of a named optimizer (SGD, AdaGrad, RMSProp, Adam, AdaGradBNG) around ``rule``:

            [WeightDecay]? BlockNorms? normalize? [WeightDecay]?  rule  update_transforms [normalize]?

        ``normalize``: None, ``"block"`` (NG, :class:`~.transforms.BlockNormalize`) or one transform; a direction
        transform (Adaptive, Clip, Lars, your own) goes before the rule, an :class:`~.transforms.UpdateTransform`
        (TrustRatio) after it.  ``weight_decay`` λ > 0 adds a :class:`~.transforms.WeightDecay`, after the
        normalization (``decay="after"``, Torch7's order) or before the norms are measured (``decay="before"``:
        the block norms are then those of g + λx).  ``BlockNorms`` is measured when ``track_norms`` (for
        ``opt.block_norms`` and the logs) or when a link reads the norms.  ``update_transforms``: the optimizer's
        own links after the rule (AdaGradBNG's ‖g^i_t‖), before an update normalizer."""
        weight_decay = checks.non_negative("weight_decay", weight_decay)
        decay = checks.choice("decay", decay, ("after", "before"))
        track_norms = checks.flag("track_norms", track_norms)
        normalizer = as_transform(normalize)
        if normalizer is not None and normalizer.weight_decay and weight_decay:
            raise ValueError(f"weight_decay: {type(normalizer).__name__} adds its own weight decay; "
                             "give it there and leave the optimizer's weight_decay at 0")
        after_rule = isinstance(normalizer, UpdateTransform)
        direction = [] if normalizer is None or after_rule else [normalizer]
        update = [*update_transforms, *([normalizer] if after_rule else [])]
        if track_norms or any(_reads_block_norms(link) for link in direction + update):
            direction.insert(0, BlockNorms())
        if weight_decay:
            decay_link = WeightDecay(weight_decay)
            direction = [decay_link, *direction] if decay == "before" else [*direction, decay_link]
        return cls(*direction, rule, *update)

    @property
    def rule(self):
        return self.links[self._rule_index]

    @property
    def direction_links(self):
        return self.links[:self._rule_index]

    @property
    def update_links(self):
        return self.links[self._rule_index + 1:]

    def __call__(self, g, it):
        """u = (T_k ∘ … ∘ T_1)(g) for the iteration ``it``: each link in turn, fed the output of the one before."""
        v = g
        for link in self.links:
            output = link(v, it)
            for observe in self.observers:
                observe(link, v, output, it)
            v = output
        return v

    def hyperparameter_values(self):
        """{"<link name>.<hyperparameter>": float} of every link (``adam.beta1``, ``clip.threshold``), as a state_dict
        records them and checks them on load."""
        return {f"{link.name}.{name}": float(value) for link in self.links for name, value in link.config().items()}

    def signature(self):
        """The names of the links that shape the update, in order ("norms,block,adam"): what a saved state must
        match.  A measurement of block norms that no later link reads only logs, and is left out."""
        names = []
        for k, link in enumerate(self.links):
            logs_only = isinstance(link, BlockNorms) and not any(map(_reads_block_norms, self.links[k + 1:]))
            if not logs_only:
                names.append(link.name)
        return ",".join(names)

    def describe(self, lr):
        """The links applied right to left, as composition reads, the rule with its learning rate:
        ``Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08) ∘ BlockNormalize ∘ BlockNorms``."""
        return " ∘ ".join(_rule_repr(link, lr) if link is self.rule else repr(link) for link in reversed(self.links))

    def __repr__(self):
        return f"Chain({', '.join(map(repr, self.links))})"


def _rule_repr(rule, lr):
    """Adam(lr=0.001, beta1=0.9, …): the rule's name and hyperparameters, led by the learning rate it is fed."""
    settings = {"lr": lr, **rule.config()}
    name = type(rule).__name__.removesuffix("Rule")
    return f"{name}({', '.join(f'{key}={value!r}' for key, value in settings.items())})"
