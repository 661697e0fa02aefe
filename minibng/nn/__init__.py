"""Layers and containers (see docs/layers.md for each layer's forward and backward math)."""
from .activation import ReLU, Sigmoid, Tanh
from .containers import Concat, Residual, Sequential
from .dropout import Dropout
from .linear import Flatten, Linear
from .loss import NonFiniteValueError, SoftmaxCrossEntropy
from .module import Module, Parameter

__all__ = [
    "Module", "Parameter", "Sequential", "Residual", "Concat", "Linear", "Flatten",
    "ReLU", "Sigmoid", "Tanh", "Dropout", "SoftmaxCrossEntropy", "NonFiniteValueError",
]
