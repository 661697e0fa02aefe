"""Two-dimensional convolution (cross-correlation, as every framework computes it) over NCHW images."""
from __future__ import annotations

from .. import backend
from .im2col import batch_chunks, col2im_add, column_chunks, output_size, pair
from .checks import check_dtype, check_flag, check_integer, check_rng, check_sizes
from .init import check_init, init_weight
from .module import Module, Parameter

__all__ = ["Conv2d"]

# On the CPU, a chunk of a few images stays in cache between the im2col copy and the GEMM, which is faster than one
# huge buffer (ResNet-20's 16-channel 32x32 layer at batch 128, forward + backward, one thread: ~23 ms with 2 MB
# chunks against ~117 ms with one buffer); GPUs prefer big GEMMs, so only NumPy is capped.
_CPU_CHUNK_BYTES = 2 * 2**20


class Conv2d(Module):
    """y[n, o, h, w] = b[o] + Σ_{c,i,j} W[o, c, i, j] · x̃[n, c, s_h·h + i, s_w·w + j]

    Shapes: x (N, C, H, W), W (O, C, k_h, k_w), b (O,), y (N, O, H_o, W_o) with x̃ = x zero-padded by
    (p_h, p_w) and H_o = ⌊(H + 2p_h − k_h)/s_h⌋ + 1, W_o likewise.  With the pixel-major im2col matrix
    X (N·H_o·W_o, k_h·k_w·C) of :mod:`minibng.nn.im2col`, Wᶜ = W arranged as (k_h·k_w·C, O) (row (i, j, c),
    column o) and the outputs as rows Yᵀ[(n, h, w), o] = y[n, o, h, w], the forward pass is one GEMM,
    Yᵀ = X Wᶜ (+ b), and for the upstream gradient dy = ∂L/∂y arranged the same way as dYᵀ:
        ∂L/∂Wᶜ = Xᵀ dYᵀ        ∂L/∂b = Σ_{n,h,w} dy[n, :, h, w]
        ∂L/∂x̃ = col2im(dYᵀ Wᶜᵀ)                      (any stride), or, for stride 1 with p ≤ k − 1,
        ∂L/∂x[n, c, h, w] = Σ_{o,i,j} dỹ[n, o, h + i, w + j] · W[o, c, k_h−1−i, k_w−1−j]
    the second form being a stride-1 convolution of dy zero-padded by (k_h−1−p_h, k_w−1−p_w) with the kernel
    rotated by 180° and its channel axes swapped — one more im2col and GEMM, and no scattered additions.
    Training forward caches x itself (no copy); backward recomputes the columns.  Images are processed in chunks
    so that a column buffer never exceeds ``max_columns_bytes`` — except that a chunk always holds at least one
    image (the rotated-kernel form is used only when one image's columns of dy fit).  y and ∂L/∂x come back in
    channels-last memory (NCHW arrays with the strides of (N, H, W, C), PyTorch's channels_last): the rows of the
    GEMM, never transposed; element-wise layers keep that layout, and the next convolution reads it directly.

    Initialization (``init``): "torch" (default) uniform(±1/√(C·k_h·k_w)) for W and b; "he" as
    fb.resnet.torch, W ~ N(0, 2/(k_h·k_w·O)) and b = 0; "xavier" with fan_in = C·k_h·k_w and
    fan_out = O·k_h·k_w; a float a for uniform(±a).

    ``input_grad=False`` (for a network's first layer, whose input is data) skips ∂L/∂x: backward then returns
    None, as PyTorch skips the gradient of an input that does not require one.
    """

    _cached = ("_x",)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, init="torch",
                 dtype="float32", rng=None, max_columns_bytes=256 * 2**20, input_grad=True):
        super().__init__()
        check_sizes("Conv2d", in_channels=in_channels, out_channels=out_channels)
        bias = check_flag("Conv2d", "bias", bias)
        self.input_grad = check_flag("Conv2d", "input_grad", input_grad)
        dtype = check_dtype("Conv2d", dtype)
        rng = check_rng("Conv2d", rng)
        self.max_columns_bytes = check_integer("Conv2d", "max_columns_bytes", max_columns_bytes, minimum=1)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "Conv2d kernel_size", 1)
        self.stride = pair(stride, "Conv2d stride", 1)
        self.padding = pair(padding, "Conv2d padding", 0)
        init = check_init("Conv2d", init)
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        fan_in, fan_out = self.in_channels * kh * kw, self.out_channels * kh * kw
        # init_weight draws "he" as N(0, 2/fan); fb.resnet.torch (and the paper) use the output fan for convs.
        weight_fan = fan_out if init == "he" else fan_in
        self.weight = Parameter(init_weight(shape, weight_fan, fan_out, init, rng, dtype))
        self.bias = (Parameter(init_weight((self.out_channels,), fan_in, 0, init, rng, dtype, bias=True))
                     if bias else None)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _check(self, x):
        self.check_input(x, dtype=self.weight.data.dtype)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return output_size(x.shape[2], x.shape[3], self.kernel_size, self.stride, self.padding)

    def _column_limit(self, x):
        on_host = backend.array_library_name(x) == "NumPy"
        return min(self.max_columns_bytes, _CPU_CHUNK_BYTES) if on_host else self.max_columns_bytes

    def _weight_columns(self):
        """Wᶜ (k_h·k_w·C, O): Wᶜ[(i, j, c), o] = W[o, c, i, j]."""
        return self.weight.data.transpose(2, 3, 1, 0).reshape(-1, self.out_channels)

    def _correlate(self, x, weight_columns, stride, padding, out_hw):
        """y (N, O, H_o, W_o) = the rows X Wᶜ of every chunk of images (no bias), in channels-last memory."""
        xp = backend.get_array_module(x)
        n, rows = x.shape[0], out_hw[0] * out_hw[1]
        y_rows = xp.empty((n * rows, weight_columns.shape[1]), dtype=x.dtype)
        for start, stop, cols in column_chunks(x, self.kernel_size, stride, padding, out_hw, self._column_limit(x)):
            xp.matmul(cols, weight_columns, out=y_rows[start * rows:stop * rows])
        return y_rows.reshape(n, out_hw[0], out_hw[1], weight_columns.shape[1]).transpose(0, 3, 1, 2)

    # -- forward and backward ---------------------------------------------------------------------------------
    def forward(self, x):
        out_hw = self._check(x)
        y = self._correlate(x, self._weight_columns(), self.stride, self.padding, out_hw)
        if self.bias is not None:
            y += self.bias.data.reshape(-1, 1, 1)
        self._x = x if self.training else None
        return y

    def backward(self, dy):
        x = self._x
        xp = backend.get_array_module(x, dy)
        (n, c, h, w), (ph, pw), (kh, kw) = x.shape, self.padding, self.kernel_size
        out_hw, rows, limit = dy.shape[2:], dy.shape[2] * dy.shape[3], self._column_limit(x)
        dy_rows = xp.ascontiguousarray(dy.transpose(0, 2, 3, 1)).reshape(-1, self.out_channels)  # dYᵀ
        weight_cols_grad = xp.zeros((kh * kw * c, self.out_channels), dtype=dy.dtype)
        for start, stop, cols in column_chunks(x, self.kernel_size, self.stride, self.padding, out_hw, limit):
            weight_cols_grad += cols.T @ dy_rows[start * rows:stop * rows]
        self.weight.grad += weight_cols_grad.reshape(kh, kw, c, self.out_channels).transpose(3, 2, 0, 1)
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=(0, 2, 3))
        if not self.input_grad:
            return None
        dy_columns_bytes = kh * kw * self.out_channels * h * w * dy.dtype.itemsize  # one image's columns of dỹ
        if self.stride == (1, 1) and ph < kh and pw < kw and dy_columns_bytes <= limit:
            flipped = self.weight.data[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(-1, c)
            return self._correlate(dy, flipped, (1, 1), (kh - 1 - ph, kw - 1 - pw), (h, w))
        # ∂L/∂x = crop(col2im(dYᵀ Wᶜᵀ)), chunk by chunk, in channels-last memory
        weight_rows = self._weight_columns().T
        dx = xp.empty((n, h, w, c), dtype=dy_rows.dtype)
        for start, stop in batch_chunks(n, weight_rows.shape[1] * rows * dy_rows.dtype.itemsize, limit):
            padded_grad = xp.zeros((stop - start, h + 2 * ph, w + 2 * pw, c), dtype=dy_rows.dtype)
            cols_grad = dy_rows[start * rows:stop * rows] @ weight_rows
            col2im_add(padded_grad, cols_grad, self.kernel_size, self.stride, out_hw)
            dx[start:stop] = padded_grad[:, ph:ph + h, pw:pw + w]
        return dx.transpose(0, 3, 1, 2)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")
