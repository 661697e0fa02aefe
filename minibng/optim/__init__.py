"""Optimizers over one flat parameter vector: block partition ∘ direction transform ∘ step rule.

See docs/algorithm.md for Algorithms 1 and 2 beside the code that computes them.
"""
from .algorithms import SGD, AdaGrad, AdaGradBNG, Adam, RMSProp
from .blocks import Blocks, pack
from .normalizers import Adaptive, BlockNormalize, Clip, Lars, Normalizer, TrustRatio
from .optimizer import Optimizer
from .presets import create, preset_names
from .rules import Rule
from .schedules import Exponential, MultiStep, Schedule

__all__ = [
    "SGD", "AdaGrad", "RMSProp", "Adam", "AdaGradBNG", "Optimizer", "create", "preset_names",
    "Adaptive", "Clip", "Lars", "TrustRatio", "BlockNormalize", "Normalizer", "Rule",
    "MultiStep", "Exponential", "Schedule", "Blocks", "pack",
]
