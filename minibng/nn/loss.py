"""Softmax cross-entropy, numerically stable, for (N, C) or (T, N, C) logits."""
from __future__ import annotations

from .. import backend
from .checks import check_flag
from .module import Module

__all__ = ["SoftmaxCrossEntropy", "NonFiniteValueError"]


class NonFiniteValueError(ValueError):
    """An input holds NaN or infinity (the training loop turns it into a stop that keeps the last checkpoint)."""


class SoftmaxCrossEntropy(Module):
    """L = (1/M) Σ_m [log Σ_c exp z_mc − z_m,y_m] over the M = N (or T·N) rows of the logits z.

    Backward: ∂L/∂z = dL · (softmax(z) − onehot(y)) / M.

    Exact for logits of any size, and for confident rows: with ĉ the largest logit's class and
    r = Σ_{c ≠ ĉ} e^{z_c − z_ĉ} (the max subtracted, so nothing overflows),
        log Σ_c e^{z_c} − z_y = log1p(r) + (z_ĉ − z_y)        p_ĉ − 1 = −r/(1 + r)
    so a row whose loss is 1e-9 gets the loss 1e-9 and the gradient −1e-9 on its label, never log(1 + r) = 0
    and p − 1 = 0, which float32 gives once r < 6e-8.  The mean of the row losses is finite whenever it is
    representable, even where their sum is not (:func:`_mean_of_row_losses`).

    ``forward(logits, labels)`` returns a 0-d array on the logits' device; ``labels`` are integers in [0, C) of
    shape logits.shape[:-1].  Bad labels and non-finite logits raise (one device→host check per call; set
    ``check=False`` to skip it in a hot loop you trust).
    """

    _cached = ("_grad",)

    def __init__(self, check=True):
        super().__init__()
        self.check = check_flag("SoftmaxCrossEntropy", "check", check)

    def forward(self, logits, labels):
        self.check_input(logits, ndim=(2, 3))
        if logits.size == 0:   # a mean over no rows, or a softmax over no classes, has no value
            raise ValueError(f"expected logits of shape (N, C) or (T, N, C) with at least one row and one class, "
                             f"got {tuple(logits.shape)}")
        if not backend.is_array(labels):
            raise TypeError(f"labels must be an integer array, got {type(labels).__name__}")
        xp = backend.get_array_module(logits, labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers (class indices), got dtype {labels.dtype}")
        if tuple(labels.shape) != tuple(logits.shape[:-1]):
            raise ValueError(f"labels must have shape {tuple(logits.shape[:-1])} (the logits' leading axes), got {tuple(labels.shape)}")
        classes = logits.shape[-1]
        z = logits.reshape(-1, classes)
        y = labels.reshape(-1)
        if self.check:
            flags = backend.asnumpy(xp.stack([y.min() < 0, y.max() >= classes, ~xp.isfinite(z).all()]))
            if flags[0] or flags[1]:
                lo, hi = int(y.min()), int(y.max())
                raise ValueError(f"labels must lie in [0, {classes}), got values in [{lo}, {hi}]")
            if flags[2]:
                raise NonFiniteValueError("logits contain NaN or infinity")
        rows = xp.arange(z.shape[0])
        top = z.argmax(axis=1)                  # ĉ_m, the largest logit's class; e^{z_mĉ − max} = 1 exactly
        shifted = z - z[rows, top][:, None]
        picked = shifted[rows, y]
        exp = xp.exp(shifted, out=shifted)      # in place: the logits of a language model are large
        exp[rows, top] = 0
        rest = exp.sum(axis=1)                  # r_m = Σ_{c ≠ ĉ} e^{z_mc − max}
        loss = _mean_of_row_losses(xp.log1p(rest) - picked)
        if self.training:
            exp[rows, top] = 1
            exp *= (1 / ((1 + rest) * z.shape[0]))[:, None]   # softmax / M, one pass over the (M, C) logits
            # p_y − 1: −r/(1 + r) where y is the top class (1/(1 + r) − 1 would be 0 once r < ε), else p_y − 1
            exp[rows, y] = xp.where(y == top, -rest / ((1 + rest) * z.shape[0]), exp[rows, y] - 1 / z.shape[0])
            self._grad = exp.reshape(logits.shape)
        return loss

    def backward(self, dy=1.0):
        """∂L/∂logits, scaled by the upstream gradient ``dy`` of the scalar loss (1 by default)."""
        xp = backend.get_array_module(self._grad)
        return self._grad * xp.asarray(dy, dtype=self._grad.dtype)


def _mean_of_row_losses(row_losses):
    """L = (1/M) Σ_m ℓ_m, in the dtype of the row losses ℓ, never ∞ when L is representable.

    Summed, then divided (as ``mean``: exact down to the smallest losses); where that sum overflows though L does
    not (rows whose losses near the dtype's largest number, 2e38 each for logits of ±1e38 in float32), L is
    Σ_m (ℓ_m / M) instead, whose terms cannot add up beyond the largest number.  The choice is an ``xp.where``
    (one more pass over the M row losses, none over the logits), so a GPU never waits for the host.
    """
    xp = backend.get_array_module(row_losses)
    rows = row_losses.size
    with backend.errors_ignored(xp, "over"):   # an overflowed sum is replaced just below
        total = row_losses.sum(dtype=row_losses.dtype)
    return xp.where(xp.isinf(total), (row_losses / rows).sum(dtype=row_losses.dtype), total / rows)
