"""Optimizers over one flat parameter vector: direction transforms → step rule → update transforms.

See docs/algorithm.md for Algorithms 1 and 2 beside the code that computes them.
"""
from .algorithms import SGD, AdaGrad, AdaGradBNG, Adam, RMSProp
from .flat import Flat, pack
from .optimizer import Iteration, Optimizer
from .partition import Partition
from .presets import create, preset_names
from .rules import Rule
from .schedules import Exponential, MultiStep, Schedule
from .transforms import (Adaptive, BlockNormalize, Clip, GradientNorms, GradientNormScale, Lars, Transform,
                         TrustRatio, UpdateTransform, WeightDecay)

__all__ = [
    "SGD", "AdaGrad", "RMSProp", "Adam", "AdaGradBNG", "Optimizer", "create", "preset_names",
    "BlockNormalize", "Adaptive", "Clip", "Lars", "TrustRatio", "WeightDecay", "GradientNorms", "GradientNormScale",
    "Transform", "UpdateTransform", "Rule", "Iteration", "MultiStep", "Exponential", "Schedule", "Flat", "Partition",
    "pack",
]
