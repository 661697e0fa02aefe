"""Layers and containers (see docs/layers.md for each layer's forward and backward math)."""
from .activation import ReLU, Sigmoid, Tanh
from .containers import Concat, Residual, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .embedding import Embedding
from .linear import Flatten, Linear
from .loss import NonFiniteValueError, SoftmaxCrossEntropy
from .module import BackwardOrderError, Module, Parameter
from .norm import BatchNorm1d, BatchNorm2d
from .pool import AvgPool2d, GlobalAvgPool2d, GlobalMaxPool2d, MaxPool2d
from .recurrent import LSTM

__all__ = [
    "Module", "Parameter", "Sequential", "Residual", "Concat", "Linear", "Flatten", "Conv2d", "MaxPool2d",
    "AvgPool2d", "GlobalAvgPool2d", "GlobalMaxPool2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "Sigmoid", "Tanh", "Dropout",
    "Embedding", "LSTM", "SoftmaxCrossEntropy", "NonFiniteValueError", "BackwardOrderError",
]
