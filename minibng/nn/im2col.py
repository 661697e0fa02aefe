"""Window machinery shared by convolution and pooling: sizes, padding, the im2col view and col2im.

Notation (NCHW): x (N, C, H, W), kernel (k_h, k_w), stride (s_h, s_w), padding (p_h, p_w), padded input
x̃ (N, C, H + 2p_h, W + 2p_w), output size H_o = ⌊(H + 2p_h − k_h)/s_h⌋ + 1 (likewise W_o).  Window
(h, w) of the output reads x̃[n, c, s_h·h + i, s_w·w + j] for kernel position (i, j), 0 ≤ i < k_h, 0 ≤ j < k_w.

im2col arranges those reads as a matrix with one row per (c, i, j) and one column per (n, h, w):

    cols[(c, i, j), (n, h, w)] = x̃[n, c, s_h·h + i, s_w·w + j]          cols (C·k_h·k_w, N·H_o·W_o)

built from an ``as_strided`` *view* of x̃ (no Python loop over pixels) and copied once into contiguous
memory for the GEMM.  col2im is its adjoint: it adds every column entry back onto the input pixel it was
read from, looping over the k_h·k_w kernel positions only (each iteration is one strided array addition).
"""
from __future__ import annotations

import operator

from ..backend import get_array_module

__all__ = ["pair", "output_size", "pad_images", "kernel_window", "im2col", "col2im_add", "batch_chunks"]


def pair(value, name, minimum):
    """``value`` (an int or a pair of ints) as a tuple (a, b), each ≥ ``minimum``, else a ValueError naming ``name``."""
    try:
        values = (operator.index(value),) * 2 if not isinstance(value, (tuple, list)) else tuple(
            operator.index(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(values) != 2 or min(values) < minimum:
        raise ValueError(f"{name} must be an int or a pair of ints, each >= {minimum}, got {value!r}")
    return values


def output_size(height, width, kernel, stride, padding):
    """(H_o, W_o), or a ValueError when the padded input is smaller than the kernel."""
    padded = (height + 2 * padding[0], width + 2 * padding[1])
    if padded[0] < kernel[0] or padded[1] < kernel[1]:
        raise ValueError(f"input of spatial size {(height, width)} padded to {padded} is smaller than the "
                         f"kernel {tuple(kernel)}")
    return (padded[0] - kernel[0]) // stride[0] + 1, (padded[1] - kernel[1]) // stride[1] + 1


def pad_images(x, padding, value=0):
    """x̃: ``x`` (N, C, H, W) surrounded by ``value`` (a new array); ``x`` itself when there is no padding."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    xp = get_array_module(x)
    shape = (n, c, h + 2 * ph, w + 2 * pw)
    padded = xp.zeros(shape, dtype=x.dtype) if value == 0 else xp.full(shape, value, dtype=x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    return padded


def kernel_window(padded, i, j, stride, out_hw):
    """The view x̃[:, :, s_h·h + i, s_w·w + j] over all output positions (h, w): shape (N, C, H_o, W_o)."""
    (sh, sw), (ho, wo) = stride, out_hw
    return padded[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def _window_view(padded, kernel, stride, out_hw):
    """The im2col view of x̃ with axes (C, k_h, k_w, N, H_o, W_o); no data is copied."""
    xp = get_array_module(padded)
    sn, sc, sh, sw = padded.strides
    n, c = padded.shape[:2]
    shape = (c, kernel[0], kernel[1], n, out_hw[0], out_hw[1])
    strides = (sc, sh, sw, sn, sh * stride[0], sw * stride[1])
    return xp.lib.stride_tricks.as_strided(padded, shape=shape, strides=strides)


def im2col(padded, kernel, stride, out_hw):
    """cols (C·k_h·k_w, N·H_o·W_o), contiguous, from the padded images x̃ (N, C, H̃, W̃)."""
    xp = get_array_module(padded)
    view = _window_view(padded, kernel, stride, out_hw)
    return xp.ascontiguousarray(view).reshape(view.shape[0] * kernel[0] * kernel[1], -1)


def col2im_add(padded_grad, cols_grad, kernel, stride, out_hw):
    """padded_grad[n, c, s_h·h + i, s_w·w + j] += cols_grad[(c, i, j), (n, h, w)], the adjoint of :func:`im2col`.

    ``padded_grad`` (N, C, H̃, W̃) is updated in place; one strided addition per kernel position (i, j)
    (windows of different (i, j) overlap when the stride is smaller than the kernel, so they are added in turn).
    """
    n, c = padded_grad.shape[:2]
    per_position = cols_grad.reshape(c, kernel[0], kernel[1], n, out_hw[0], out_hw[1])
    channels_first = padded_grad.transpose(1, 0, 2, 3)  # (C, N, H̃, W̃) view, to match the column layout
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            window = kernel_window(channels_first, i, j, stride, out_hw)
            window += per_position[:, i, j]  # on a name, not window[...] +=, which would copy it back onto itself
    return padded_grad


def batch_chunks(batch, bytes_per_image, max_bytes):
    """[(start, stop), …] covering range(batch), each chunk's buffer ≤ ``max_bytes`` (but at least one image)."""
    per_chunk = max(1, int(max_bytes // max(bytes_per_image, 1)))
    return [(start, min(start + per_chunk, batch)) for start in range(0, batch, per_chunk)]
