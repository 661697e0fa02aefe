"""Image augmentation on the batch's own device, and MNIST-to-32×32 padding.

``random_crop_flip`` is the CIFAR recipe of He et al. (2016), as fb.resnet.torch applies it: pad each image of
x (N, C, H, W) with p zeros on every side, cut an H×W window at a uniformly random offset
(a_n, b_n) ∈ {0, …, 2p}², and mirror it left-right with probability ½:

    y[n, c, i, j] = x̃[n, c, a_n + i, b_n + j']      j' = W−1−j if flipped_n else j,   x̃ = zero-padded x

It is one gather over the whole batch — no loop over images — written with ``xp`` of the input, so it runs on
NumPy or CuPy wherever the batch lives.  Offsets and flips come from a :class:`minibng.backend.RandomStream`,
whose (seed, counter) state makes a run reproducible and resumable.
"""
from __future__ import annotations

from ..backend import RandomStream, get_array_module

__all__ = ["random_crop_flip", "RandomCropFlip", "pad_to_32", "Compose"]


def random_crop_flip(x, stream: RandomStream, padding: int = 4, flip: bool = True):
    """Randomly shifted (±padding, zero fill) and, if ``flip``, randomly mirrored copy of NCHW batch ``x``."""
    xp = get_array_module(x)
    if x.ndim != 4:
        raise ValueError(f"random_crop_flip expects NCHW images, got shape {x.shape}")
    n, _, h, w = x.shape
    p = int(padding)
    padded = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    draws = stream.random((n, 3), xp, xp.float64)
    offsets = xp.floor(draws[:, :2] * (2 * p + 1)).astype(xp.int64)          # a_n, b_n in 0..2p
    rows = offsets[:, 0:1] + xp.arange(h)                                      # (N, H)
    cols = xp.arange(w)
    if flip:
        flipped = draws[:, 2:3] < 0.5
        cols = xp.where(flipped, w - 1 - cols, cols)                           # (N, W)
    cols = offsets[:, 1:2] + cols
    batch = xp.arange(n)[:, None, None, None]
    channels = xp.arange(x.shape[1])[None, :, None, None]
    return padded[batch, channels, rows[:, None, :, None], cols[:, None, None, :]]


class RandomCropFlip:
    """``random_crop_flip`` as a batch transform with its own seeded stream: ``state()`` / ``set_state()``."""

    def __init__(self, padding: int = 4, flip: bool = True, seed: int | None = None):
        self.padding, self.flip = padding, flip
        self.stream = RandomStream(seed)

    def __call__(self, x):
        return random_crop_flip(x, self.stream, self.padding, self.flip)

    def state(self) -> tuple[int, ...]:
        return self.stream.state()

    def set_state(self, state) -> None:
        self.stream.set_state(state)


class Compose:
    """Apply transforms in order; ``state()`` concatenates the states of the stateful ones (plain ints)."""

    def __init__(self, *transforms):
        self.transforms = transforms

    def __call__(self, x):
        for transform in self.transforms:
            x = transform(x)
        return x

    def _stateful(self):
        return [t for t in self.transforms if hasattr(t, "state")]

    def state(self) -> tuple[int, ...]:
        return tuple(int(v) for t in self._stateful() for v in t.state())

    def set_state(self, state) -> None:
        state = [int(v) for v in state]
        for t in self._stateful():
            size = len(t.state())
            t.set_state(tuple(state[:size]))
            state = state[size:]


def pad_to_32(images, channels: int = 1, size: int = 32):
    """MNIST-family images (N, 28, 28) or (N, 1, 28, 28) zero-padded evenly to (N, channels, size, size).

    ``channels=3`` repeats the grey plane into three identical channels (for networks built for RGB input).
    """
    xp = get_array_module(images)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"pad_to_32 expects (N, 28, 28) or (N, 1, H, W) images, got shape {images.shape}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    h, w = images.shape[2:]
    if h > size or w > size:
        raise ValueError(f"images of {h}×{w} do not fit in {size}×{size}")
    top, left = (size - h) // 2, (size - w) // 2
    padded = xp.pad(images, ((0, 0), (0, 0), (top, size - h - top), (left, size - w - left)))
    return xp.repeat(padded, channels, axis=1) if channels > 1 else padded
