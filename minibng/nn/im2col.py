"""Window machinery shared by convolution and pooling: sizes, padding, the im2col view and col2im.

Notation (NCHW): x (N, C, H, W), kernel (k_h, k_w), stride (s_h, s_w), padding (p_h, p_w), padded input
x̃ (N, C, H + 2p_h, W + 2p_w), output size H_o = ⌊(H + 2p_h − k_h)/s_h⌋ + 1 (likewise W_o).  Window
(h, w) of the output reads x̃[n, c, s_h·h + i, s_w·w + j] for kernel position (i, j), 0 ≤ i < k_h, 0 ≤ j < k_w.

Convolution works on channels-last copies x̃ᵀ[n, h, w, c] = x̃[n, c, h, w] of a few images at a time
(:func:`column_chunks`), and im2col arranges the window reads as a matrix with one *row* per output pixel (n, h, w)
and one column per (i, j, c):

    X[(n, h, w), (i, j, c)] = x̃[n, c, s_h·h + i, s_w·w + j]          X (N·H_o·W_o, k_h·k_w·C)

built from an ``as_strided`` *view* of x̃ᵀ (no Python loop over pixels; the innermost axis c is contiguous) and
copied once into contiguous memory for the GEMM.  This pixel-major orientation makes every GEMM of a layer
with few channels a tall-skinny product, which BLAS runs about twice as fast as the wide one (measured with
OpenBLAS on ResNet-20's 16-channel layers).  col2im is the adjoint of im2col: it adds every entry back onto
the pixel it was read from, looping over the k_h·k_w kernel positions only (each one strided array addition).
"""
from __future__ import annotations

import operator

from ..backend import get_array_module

__all__ = ["pair", "output_size", "pad_images", "kernel_window", "window_view", "im2col", "column_chunks", "col2im_add",
           "batch_chunks"]


def pair(value, name, minimum):
    """``value`` (an int or a pair of ints) as a tuple (a, b), each ≥ ``minimum``, else a TypeError (not integers:
    3.0, '3', True) or ValueError (too small, or not a pair) naming ``name``."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    not_ints = TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(isinstance(v, bool) for v in items):   # True is an int to Python, never a size here
        raise not_ints
    try:
        values = tuple(operator.index(v) for v in items)
    except TypeError:
        raise not_ints from None
    if len(values) != 2 or min(values) < minimum:
        raise ValueError(f"{name} must be an int or a pair of ints, each >= {minimum}, got {value!r}")
    return values


def output_size(height, width, kernel, stride, padding):
    """(H_o, W_o), or a ValueError when the padded input is smaller than the kernel."""
    padded = (height + 2 * padding[0], width + 2 * padding[1])
    if padded[0] < kernel[0] or padded[1] < kernel[1]:
        raise ValueError(f"input of spatial size {(height, width)} padded to {padded} is smaller than the "
                         f"kernel {tuple(kernel)}: expected a padded size of at least {tuple(kernel)}, got {padded}")
    return (padded[0] - kernel[0]) // stride[0] + 1, (padded[1] - kernel[1]) // stride[1] + 1


def pad_images(x, padding, value=0):
    """x̃: ``x`` (N, C, H, W) surrounded by ``value`` (a new array); ``x`` itself when there is no padding."""
    (ph, pw), xp = padding, get_array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value) if ph or pw else x


def kernel_window(padded, i, j, stride, out_hw):
    """The view x̃[:, :, s_h·h + i, s_w·w + j] over all output positions (h, w): shape (N, C, H_o, W_o)."""
    (sh, sw), (ho, wo) = stride, out_hw
    return padded[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def window_view(padded_last, kernel, stride, out_hw):
    """The im2col view of x̃ᵀ (N, H̃, W̃, C) with axes (N, H_o, W_o, k_h, k_w, C); no data is copied."""
    xp = get_array_module(padded_last)
    sn, sh, sw, sc = padded_last.strides
    n, c = padded_last.shape[0], padded_last.shape[3]
    shape = (n, out_hw[0], out_hw[1], kernel[0], kernel[1], c)
    strides = (sn, sh * stride[0], sw * stride[1], sh, sw, sc)
    return xp.lib.stride_tricks.as_strided(padded_last, shape=shape, strides=strides)


def im2col(windows, out):
    """X (N·H_o·W_o, k_h·k_w·C): the window view (N, H_o, W_o, k_h, k_w, C) of :func:`window_view`, copied into
    ``out``."""
    get_array_module(out).copyto(out.reshape(windows.shape), windows)
    return out


def column_chunks(x, kernel, stride, padding, out_hw, max_bytes):
    """(start, stop, X) for chunks of the images x (N, C, H, W) — any strides — each X the im2col matrix of images
    start…stop − 1 and at most ``max_bytes`` (but at least one image).  Each chunk is padded into a channels-last
    buffer x̃ᵀ and copied into a column buffer, both reused from chunk to chunk (so a chunk stays in cache between
    the copy and the GEMM, and no padded copy of the whole batch is ever made): use X before asking for the next."""
    xp = get_array_module(x)
    (n, c, h, w), (ph, pw), rows = x.shape, padding, out_hw[0] * out_hw[1]
    chunks = batch_chunks(n, kernel[0] * kernel[1] * c * rows * x.dtype.itemsize, max_bytes)
    if not chunks:   # an empty batch: no columns, and an empty output
        return
    per_chunk = chunks[0][1]
    padded = xp.zeros((per_chunk, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)  # the border stays zero
    windows = window_view(padded, kernel, stride, out_hw)
    columns = xp.empty((per_chunk * rows, kernel[0] * kernel[1] * c), dtype=x.dtype)
    for start, stop in chunks:
        images = stop - start
        padded[:images, ph:ph + h, pw:pw + w] = x[start:stop].transpose(0, 2, 3, 1)
        yield start, stop, im2col(windows[:images], columns[:images * rows])


def col2im_add(padded_grad_last, cols_grad, kernel, stride, out_hw):
    """x̃ᵀ_grad[n, s_h·h + i, s_w·w + j, c] += cols_grad[(n, h, w), (i, j, c)], the adjoint of :func:`im2col`.

    ``padded_grad_last`` (N, H̃, W̃, C) is updated in place; one strided addition per kernel position (i, j)
    (windows of different (i, j) overlap when the stride is smaller than the kernel, so they are added in turn).
    """
    n, c = padded_grad_last.shape[0], padded_grad_last.shape[3]
    (sh, sw), (ho, wo) = stride, out_hw
    per_position = cols_grad.reshape(n, ho, wo, kernel[0], kernel[1], c)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            window = padded_grad_last[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]
            window += per_position[:, :, :, i, j]  # on a name, not window[...] +=, which would copy it back onto itself
    return padded_grad_last


def batch_chunks(batch, bytes_per_image, max_bytes):
    """[(start, stop), …] covering range(batch), each chunk's buffer ≤ ``max_bytes`` (but at least one image)."""
    per_chunk = max(1, int(max_bytes // max(bytes_per_image, 1)))
    return [(start, min(start + per_chunk, batch)) for start in range(0, batch, per_chunk)]
