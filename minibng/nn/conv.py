"""Two-dimensional convolution (cross-correlation, as every framework computes it) over NCHW images."""
from __future__ import annotations

from .. import backend
from .im2col import batch_chunks, col2im_add, im2col, output_size, pad_images, pair
from .init import check_init, init_bias, init_weight
from .module import Module, Parameter

__all__ = ["Conv2d"]

# On the CPU, columns for a few images at a time stay in cache between the copy and the GEMM, which is
# faster than one huge buffer (ResNet-20's 16-channel 32x32 layer at batch 128, forward + backward, one thread:
# ~76 ms with 4 MB chunks against ~117 ms with one buffer); GPUs prefer big GEMMs, so only NumPy is capped.
_CPU_CHUNK_BYTES = 4 * 2**20


class Conv2d(Module):
    """y[n, o, h, w] = b[o] + Σ_{c,i,j} W[o, c, i, j] · x̃[n, c, s_h·h + i, s_w·w + j]

    Shapes: x (N, C, H, W), W (O, C, k_h, k_w), b (O,), y (N, O, H_o, W_o) with x̃ = x zero-padded by
    (p_h, p_w) and H_o = ⌊(H + 2p_h − k_h)/s_h⌋ + 1, W_o likewise.  With the im2col matrix
    X = cols(x̃) of shape (C·k_h·k_w, N·H_o·W_o) (see :mod:`minibng.nn.im2col`) and W̄ = W reshaped to
    (O, C·k_h·k_w), the forward pass is one GEMM, Ȳ = W̄ X (+ b), and for the upstream gradient dy = ∂L/∂y
    reshaped to dȲ (O, N·H_o·W_o):
        ∂L/∂W̄ = dȲ Xᵀ       ∂L/∂b = Σ_{n,h,w} dy[n, :, h, w]       ∂L/∂x = crop(col2im(W̄ᵀ dȲ))
    The columns are recomputed in backward (only x is cached), and images are processed in chunks so that
    the column buffer (X, and in backward W̄ᵀdȲ after X is freed) never exceeds ``max_columns_bytes`` —
    except that a chunk always holds at least one image.

    Initialization (``init``): "torch" (default) uniform(±1/√(C·k_h·k_w)) for W and b; "he" as
    fb.resnet.torch, W ~ N(0, 2/(k_h·k_w·O)) and b = 0; "xavier" with fan_in = C·k_h·k_w and
    fan_out = O·k_h·k_w; a float a for uniform(±a).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, init="torch",
                 dtype="float32", rng=None, max_columns_bytes=256 * 2**20):
        super().__init__()
        if int(in_channels) <= 0 or int(out_channels) <= 0:
            raise ValueError(f"Conv2d: in_channels and out_channels must be positive, got {in_channels}, "
                             f"{out_channels}")
        if max_columns_bytes <= 0:
            raise ValueError(f"Conv2d: max_columns_bytes must be positive, got {max_columns_bytes}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "Conv2d kernel_size", 1)
        self.stride = pair(stride, "Conv2d stride", 1)
        self.padding = pair(padding, "Conv2d padding", 0)
        self.max_columns_bytes = int(max_columns_bytes)
        init = check_init(init)
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        fan_in, fan_out = self.in_channels * kh * kw, self.out_channels * kh * kw
        # init_weight draws "he" as N(0, 2/fan); fb.resnet.torch (and the paper) use the output fan for convs.
        weight_fan = fan_out if init == "he" else fan_in
        self.weight = Parameter(init_weight(shape, weight_fan, fan_out, init, rng, dtype))
        self.bias = Parameter(init_bias((self.out_channels,), fan_in, init, rng, dtype)) if bias else None
        self._x = None

    # -- helpers ----------------------------------------------------------------------------------------------
    def _check(self, x):
        self.check_input(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if x.dtype != self.weight.data.dtype:
            raise TypeError(f"expected {self.weight.data.dtype} input (the layer's dtype), got {x.dtype}")
        return output_size(x.shape[2], x.shape[3], self.kernel_size, self.stride, self.padding)

    def _chunks(self, x, out_hw):
        """Chunks of the batch whose column buffer stays within the byte limit."""
        limit = self.max_columns_bytes
        if backend.array_library_name(x) == "NumPy":
            limit = min(limit, _CPU_CHUNK_BYTES)
        rows = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        return batch_chunks(x.shape[0], rows * out_hw[0] * out_hw[1] * x.dtype.itemsize, limit)

    # -- forward and backward ---------------------------------------------------------------------------------
    def forward(self, x):
        ho, wo = out_hw = self._check(x)
        xp = backend.get_array_module(x)
        w_mat = self.weight.data.reshape(self.out_channels, -1)
        y = xp.empty((x.shape[0], self.out_channels, ho, wo), dtype=x.dtype)
        for start, stop in self._chunks(x, out_hw):
            cols = im2col(pad_images(x[start:stop], self.padding), self.kernel_size, self.stride, out_hw)
            y_chunk = (w_mat @ cols).reshape(self.out_channels, stop - start, ho, wo).transpose(1, 0, 2, 3)
            if self.bias is not None:
                xp.add(y_chunk, self.bias.data.reshape(-1, 1, 1), out=y[start:stop])
            else:
                y[start:stop] = y_chunk
        self._x = x if self.training else None
        return y

    def backward(self, dy):
        x = self._x
        if x is None:
            raise RuntimeError("Conv2d.backward called without a forward pass in training mode")
        out_hw = output_size(x.shape[2], x.shape[3], self.kernel_size, self.stride, self.padding)
        expected = (x.shape[0], self.out_channels) + out_hw
        if tuple(dy.shape) != expected:
            raise ValueError(f"expected upstream gradient of shape {expected}, got {tuple(dy.shape)}")
        xp = backend.get_array_module(x, dy)
        (ph, pw), (h, w) = self.padding, x.shape[2:]
        w_mat = self.weight.data.reshape(self.out_channels, -1)
        w_grad = xp.zeros_like(w_mat)
        dx = xp.zeros_like(x) if ph == pw == 0 else xp.empty_like(x)
        for start, stop in self._chunks(x, out_hw):
            cols = im2col(pad_images(x[start:stop], self.padding), self.kernel_size, self.stride, out_hw)
            dy_mat = xp.ascontiguousarray(dy[start:stop].transpose(1, 0, 2, 3)).reshape(self.out_channels, -1)
            w_grad += dy_mat @ cols.T
            del cols  # so that the column buffer and its gradient never coexist
            cols_grad = w_mat.T @ dy_mat
            if ph == pw == 0:
                col2im_add(dx[start:stop], cols_grad, self.kernel_size, self.stride, out_hw)
            else:
                padded_grad = xp.zeros((stop - start, self.in_channels, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
                col2im_add(padded_grad, cols_grad, self.kernel_size, self.stride, out_hw)
                dx[start:stop] = padded_grad[:, :, ph:ph + h, pw:pw + w]
        self.weight.grad += w_grad.reshape(self.weight.data.shape)
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=(0, 2, 3))
        return dx

    def _clear_cache(self):
        self._x = None

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")
