"""Pooling over NCHW images: MaxPool2d, AvgPool2d, GlobalAvgPool2d and GlobalMaxPool2d.

Notation as in :mod:`minibng.nn.im2col`: window (h, w) covers x̃[n, c, s_h·h + i, s_w·w + j] for kernel
positions (i, j); x̃ is x padded by (p_h, p_w).  Each pass loops over the k_h·k_w kernel positions, every
iteration being one array operation over all N·C·H_o·W_o windows.
"""
from __future__ import annotations

from ..backend import errors_ignored, get_array_module
from .im2col import kernel_window, output_size, pad_images, pair
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "GlobalMaxPool2d"]


class _Pool2d(Module):
    """Shared checks and geometry of the windowed pools."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = pair(kernel_size, f"{name} kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, f"{name} stride", 1)
        self.padding = pair(padding, f"{name} padding", 0)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{name}: padding must be at most half the kernel size, got padding {self.padding} "
                             f"for kernel {self.kernel_size}")

    def _padded(self, x, fill):
        """(x̃, (H_o, W_o)): x padded with ``fill``, and the output size; remembers x's shape for backward."""
        self.check_input(x, ndim=4)
        self._input_shape = x.shape
        return pad_images(x, self.padding, fill), output_size(*x.shape[2:], self.kernel_size, self.stride, self.padding)

    def _positions(self):
        return [(i, j) for i in range(self.kernel_size[0]) for j in range(self.kernel_size[1])]

    def _scatter(self, dy, contribution):
        """∂L/∂x = crop(Σ_{i,j} place_{i,j}(contribution(p, i, j))): each kernel position's share of dy added
        back onto the pixels its windows read."""
        n, c, h, w = self._input_shape
        (ph, pw), out_hw = self.padding, dy.shape[2:]
        xp = get_array_module(dy)
        padded_grad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dy.dtype)
        for p, (i, j) in enumerate(self._positions()):
            window = kernel_window(padded_grad, i, j, self.stride, out_hw)
            window += contribution(p)
        if ph == pw == 0:
            return padded_grad
        return padded_grad[:, :, ph:ph + h, pw:pw + w].copy()

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """y[n, c, h, w] = max_{i,j} x̃[n, c, s_h·h + i, s_w·w + j], with x̃ padded by −∞ (so padding never wins).

    Backward: the whole of dy[n, c, h, w] goes to the window's argmax position (i*, j*); windows that overlap
    add their contributions.  Ties: the first maximal position in row-major kernel order (i, then j) wins,
    as PyTorch's CPU kernel; a NaN counts as larger than any number (the output is NaN, as PyTorch).
    Padding may be at most half the kernel, so every window holds a real pixel.
    """

    _cached = ("_argmax",)  # index p = i·k_w + j of the winning kernel position, per output element

    def forward(self, x):
        xp = get_array_module(x)
        padded, out_hw = self._padded(x, float("-inf"))
        positions = self._positions()
        y = kernel_window(padded, 0, 0, self.stride, out_hw).copy()
        index_dtype = "uint8" if len(positions) <= 256 else "int32"
        argmax = xp.zeros(y.shape, dtype=index_dtype)
        indices = xp.arange(len(positions), dtype=index_dtype)  # 0-d device views, no host scalar per step
        for p, (i, j) in enumerate(positions[1:], start=1):
            candidate = kernel_window(padded, i, j, self.stride, out_hw)
            wins = candidate > y
            wins |= candidate != candidate  # NaN
            xp.copyto(y, candidate, where=wins)
            xp.copyto(argmax, indices[p], where=wins)
        self._argmax = argmax if self.training else None
        return y

    def backward(self, dy):
        return self._scatter(dy, lambda p: dy * (self._argmax == p))


def _any_infinite(y):
    """True if ``y`` holds ±∞: where an average of finite values is infinite, its sum overflowed.  One pass over
    ``y`` and one host read (on a GPU, a device synchronization) per call."""
    return bool(get_array_module(y).isinf(y).any())


def _where_infinite(y, recomputed):
    """``y`` with every ±∞ entry replaced by the same entry of ``recomputed()`` (computed only when needed).

    An average (1/k) Σ x_i is summed first and divided after: exact down to the smallest subnormal number.  Its
    sum overflows where Σ x_i exceeds the largest number though the average does not (k values near 2e38 in
    float32); there ``recomputed`` sums the terms x_i/k instead, which cannot overflow.  An infinite x gives an
    infinite average either way."""
    if _any_infinite(y):
        xp = get_array_module(y)
        xp.copyto(y, recomputed(), where=xp.isinf(y))
    return y


class AvgPool2d(_Pool2d):
    """y[n, c, h, w] = (1/(k_h·k_w)) Σ_{i,j} x̃[n, c, s_h·h + i, s_w·w + j], x̃ zero-padded; the divisor is
    always k_h·k_w (PyTorch's count_include_pad=True).  Summed, then divided; where the sum overflows (values
    near the dtype's largest number), the terms are divided first (see :func:`_where_infinite`).

    Backward: ∂L/∂x̃[n, c, s_h·h + i, s_w·w + j] += dy[n, c, h, w] / (k_h·k_w) for every window and position.
    """

    def forward(self, x):
        padded, out_hw = self._padded(x, 0)
        share = 1.0 / len(self._positions())
        with errors_ignored(get_array_module(x), "over"):   # an overflowed sum is redone by _where_infinite
            y = self._window_sum(padded, out_hw)
        y *= share
        return _where_infinite(y, lambda: self._window_sum(padded, out_hw, share))

    def _window_sum(self, padded, out_hw, scale=None):
        """Σ_{i,j} of the kernel windows of ``padded``, each multiplied by ``scale`` first if given."""
        windows = (kernel_window(padded, i, j, self.stride, out_hw) for i, j in self._positions())
        first = next(windows)
        total = first.copy() if scale is None else first * scale
        for window in windows:
            total += window if scale is None else window * scale
        return total

    def backward(self, dy):
        share = dy * (1.0 / (self.kernel_size[0] * self.kernel_size[1]))
        return self._scatter(dy, lambda p: share)


class GlobalAvgPool2d(Module):
    """y[n, c] = (1/(H·W)) Σ_{h,w} x[n, c, h, w]: (N, C, H, W) → (N, C).  Summed, then divided; where the sum
    overflows, the terms are divided first (see :func:`_where_infinite`).
    Backward: ∂L/∂x[n, c, h, w] = dy[n, c] / (H·W)."""

    def forward(self, x):
        self.check_input(x, ndim=4)
        n, c, h, w = x.shape
        if h * w == 0:
            raise ValueError(f"expected a non-empty spatial extent, got input of shape {tuple(x.shape)}")
        self._input_shape = x.shape
        share = 1.0 / (h * w)
        with errors_ignored(get_array_module(x), "over"):   # an overflowed sum is redone by _where_infinite
            y = x.sum(axis=(2, 3))
        y *= share
        return _where_infinite(y, lambda: (x * share).sum(axis=(2, 3)))

    def backward(self, dy):
        n, c, h, w = self._input_shape
        dx = get_array_module(dy).empty((n, h, w, c), dtype=dy.dtype).transpose(0, 3, 1, 2)  # channels-last, as Conv2d
        dx[...] = (dy * (1.0 / (h * w)))[:, :, None, None]
        return dx


class GlobalMaxPool2d(Module):
    """y[n, c] = max_{h,w} x[n, c, h, w]: (N, C, H, W) → (N, C).  Over a (N, C, T, 1) feature map this is the
    max-over-time pooling of Kim (2014): ĉ = max_t c_t, one value per filter.

    Backward: the whole of dy[n, c] goes to the argmax (h*, w*) of x[n, c]; every other position gets 0.
    Ties: the first maximal position in row-major order (h, then w), as MaxPool2d; a NaN counts as the
    maximum (the output is NaN).  Works on x viewed as (N, H·W, C) (free for a convolution's channels-last
    output) and returns ∂L/∂x channels-last.
    """

    _cached = ("_argmax",)

    def forward(self, x):
        self.check_input(x, ndim=4)
        n, c, h, w = x.shape
        if h * w == 0:
            raise ValueError(f"expected a non-empty spatial extent, got input of shape {tuple(x.shape)}")
        xp = get_array_module(x)
        pixels = x.transpose(0, 2, 3, 1).reshape(n, h * w, c)
        argmax = pixels.argmax(axis=1)  # NumPy and CuPy both return the first maximum, NaN first
        self._input_shape, self._argmax = x.shape, (argmax if self.training else None)
        return pixels[xp.arange(n)[:, None], argmax, xp.arange(c)]

    def backward(self, dy):
        n, c, h, w = self._input_shape
        xp = get_array_module(dy)
        dx = xp.zeros((n, h * w, c), dtype=dy.dtype)
        dx[xp.arange(n)[:, None], self._argmax, xp.arange(c)] = dy
        return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2)
