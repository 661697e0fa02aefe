"""The paper's networks, built from minibng.nn modules."""
from __future__ import annotations

from .. import nn

__all__ = ["mlp"]

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(depth, hidden=100, activation="sigmoid", inputs=784, classes=10, init="torch", dtype="float32", rng=None,
        input_grad=True):
    """The multi-layer perceptron of the paper's §4.1: ``depth`` weight layers L, i.e. L − 1 hidden layers of
    ``hidden`` units with ``activation``, then a linear output layer: inputs → h → … → h → classes.

    With Torch7's default initialization (the paper's) a deep sigmoid MLP starts with vanishing gradients in its
    lower layers: the case block normalization is built for.  ``input_grad=False`` makes backward skip the
    gradient with respect to the images (returning None), which training never uses.
    """
    if depth < 1:
        raise ValueError(f"mlp: depth must be at least 1 weight layer, got {depth}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"mlp: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    widths = [inputs] + [hidden] * (depth - 1) + [classes]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(n_in, n_out, init=init, dtype=dtype, rng=rng, input_grad=input_grad or i > 0))
        if i < depth - 1:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)
