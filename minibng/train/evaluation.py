"""What a training run does besides its steps: evaluation, and re-estimating BatchNorm's running statistics.

- :func:`evaluate`: the mean loss per row and the accuracy of a model over a set of batches, in evaluation mode.
- :func:`update_batchnorm`: every BatchNorm's running mean and variance re-estimated for the current weights.
"""
from __future__ import annotations

import itertools
import math

from ..nn import BatchNorm1d, BatchNorm2d
from .checkpoint import random_streams

__all__ = ["evaluate", "update_batchnorm", "reset_carried_state"]


def reset_carried_state(model):
    """Reset the state an LSTM carries from one batch to the next (a new pass over data starts from zero)."""
    for m in model.modules():
        if hasattr(m, "reset_state"):
            m.reset_state()


def evaluate(model, loss_fn, batches, world=None):
    """Mean loss per row and accuracy (argmax of the last axis) over ``batches``, in evaluation mode.

    Sums stay on the device and are read once at the end; with a ``world`` (:mod:`minibng.distributed`) they are
    added over its ranks, each of which evaluated its shard."""
    was_training = model.training
    model.eval()
    loss_fn.train(False)
    reset_carried_state(model)
    loss_sum = correct = rows = 0
    for x, y in batches:
        logits = model(x)
        loss_sum = loss_sum + loss_fn(logits, y) * y.size
        correct = correct + (logits.argmax(axis=-1) == y).sum()
        rows += y.size
    model.train(was_training)
    loss_fn.train(True)
    if world is not None:
        loss_sum, correct, rows = world.sum(loss_sum, correct, rows)
    if rows == 0:
        return {"loss": math.nan, "accuracy": math.nan}
    return {"loss": float(loss_sum) / rows, "accuracy": float(correct) / rows}


def update_batchnorm(model, batches, max_batches=None):
    """Re-estimate every BatchNorm's running mean and variance for the model's current weights ("precise BN",
    as PyTorch's ``torch.optim.swa_utils.update_bn``); returns the number of batches used.

    During training the running statistics are exponential averages with momentum m (0.1) of batch statistics
    taken under weights that kept changing.  Here they are reset (mean 0, variance 1) and replaced by the
    equal-weight mean, over the first ``max_batches`` (default: all) batches of ``batches``, of the train-mode
    batch statistics under the current weights: batch k is folded in with momentum 1/k.  Only forward passes: no
    gradient, no step.  Dropout is active during them, as in PyTorch; random streams are restored afterwards, and
    if a forward pass fails the running statistics are restored too.  Carried LSTM state is reset.
    """
    layers = [m for m in model.modules() if isinstance(m, (BatchNorm1d, BatchNorm2d))]
    if not layers:
        return 0
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"update_batchnorm: max_batches must be >= 1, got {max_batches}")
    saved = [(m.momentum, m.running_mean.copy(), m.running_var.copy()) for m in layers]
    streams = random_streams(model)
    stream_states = {name: s.state() for name, s in streams.items()}
    was_training, used = model.training, 0
    model.train()
    reset_carried_state(model)
    try:
        for m in layers:
            m.running_mean[...] = 0
            m.running_var[...] = 1
        for x, _ in itertools.islice(batches, max_batches):
            used += 1
            for m in layers:
                m.momentum = 1.0 / used
            model(x)
    except BaseException:
        for m, (_, mean, var) in zip(layers, saved):
            m.running_mean[...], m.running_var[...] = mean, var
        raise
    finally:
        for m, (momentum, _, _) in zip(layers, saved):
            m.momentum = momentum
        for name, s in streams.items():
            s.set_state(stream_states[name])
        model.train(was_training)
    if used == 0:
        raise ValueError("update_batchnorm: no batches to estimate the BatchNorm statistics from")
    return used
