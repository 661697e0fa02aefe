"""Optimizers over one flat parameter vector: a chain of links, direction transforms → step rule → update transforms.

See docs/algorithm.md for Algorithms 1 and 2 beside the code that computes them.
"""
from .algorithms import SGD, AdaGrad, AdaGradBNG, Adam, RMSProp
from .chain import Chain
from .flat import Flat, pack
from .optimizer import Iteration, Optimizer
from .partition import Partition
from .presets import create, preset_names
from .rules import AdaGradRule, AdamRule, RMSPropRule, Rule, SGDRule
from .schedules import Exponential, MultiStep, Schedule
from .transforms import (Adaptive, BlockNormalize, BlockNorms, Clip, DecoupledWeightDecay, GradientNormScale, Lars,
                         Transform, TrustRatio, UpdateTransform, WeightDecay)

__all__ = [
    "SGD", "AdaGrad", "RMSProp", "Adam", "AdaGradBNG", "Optimizer", "create", "preset_names",
    "Chain", "BlockNorms", "BlockNormalize", "Adaptive", "Clip", "Lars", "TrustRatio", "WeightDecay",
    "DecoupledWeightDecay", "GradientNormScale", "Transform", "UpdateTransform", "Rule", "SGDRule", "AdaGradRule",
    "RMSPropRule", "AdamRule",
    "Iteration", "MultiStep", "Exponential", "Schedule", "Flat", "Partition", "pack",
]
