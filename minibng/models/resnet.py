"""Residual networks of the paper's §4.2 and §4.3, built from minibng.nn modules.

- :func:`resnet_cifar`: He et al. (2016a, §4.2) CIFAR ResNets of depth 6n + 2 (20, 32, 44, 56, 110), as
  fb.resnet.torch builds them (the implementation the paper used): a 3×3 convolution to 16 channels, three
  stages of n basic blocks with 16, 32 and 64 channels (the first block of stages 2 and 3 halves the image
  with stride 2), global average pooling and a linear classifier.
- :func:`preact_resnet`: the pre-activation ImageNet network of He et al. (2016b) used in §4.3 (ResNet-34).

A basic block computes y = ReLU(F(x) + S(x)) with F = conv3×3 → BN → ReLU → conv3×3 → BN and the shortcut S
the identity, or where the shape changes either option A, :class:`ZeroPadShortcut` (parameter-free), or
option B, a 1×1 convolution with stride 2 followed by BN.  Convolutions carry no bias (BN follows each) and
are initialized as He et al. (2015) and fb.resnet.torch: W ~ N(0, 2/(k_h·k_w·out_channels)); BN starts at
γ = 1, β = 0; the classifier has Torch's uniform(±1/√64) weights and a zero bias.
"""
from __future__ import annotations

import numpy as np

from .. import backend, nn

__all__ = ["resnet_cifar", "preact_resnet", "ZeroPadShortcut", "BasicBlock", "PreActBlock"]


class ZeroPadShortcut(nn.Module):
    """Option A of He et al. (2016a): subsample by ``stride`` and append zero channels, no parameters.

        y[n, c, h, w] = x[n, c, s·h, s·w]  for c < C_in,        y[n, c, h, w] = 0  for C_in ≤ c < C_out

    Shapes: x (N, C_in, H, W), y (N, C_out, ⌈H/s⌉, ⌈W/s⌉) — the output size of the block's 3×3, padding-1,
    stride-s convolution.  (fb.resnet.torch appends the zero channels after the input's, as here.)
    Backward, the adjoint: ∂L/∂x[n, c, s·h, s·w] = dy[n, c, h, w] for c < C_in, and 0 at the skipped pixels.
    """

    def __init__(self, in_channels, out_channels, stride=2):
        super().__init__()
        if not 0 < int(in_channels) <= int(out_channels):
            raise ValueError(f"ZeroPadShortcut: need 0 < in_channels <= out_channels, got {in_channels}, {out_channels}")
        if int(stride) < 1:
            raise ValueError(f"ZeroPadShortcut: stride must be >= 1, got {stride}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.stride = int(stride)

    def forward(self, x):
        self.check_input(x, ndim=4, features=self.in_channels, axis=1)
        s = self.stride
        sampled = x[:, :, ::s, ::s]
        # zeros_like keeps x's memory layout (a convolution's channels-last output stays channels-last)
        y = backend.get_array_module(x).zeros_like(x, shape=(x.shape[0], self.out_channels) + sampled.shape[2:])
        y[:, :self.in_channels] = sampled
        self._input_shape = x.shape
        return y

    def backward(self, dy):
        s = self.stride
        dx = backend.get_array_module(dy).zeros_like(dy, shape=self._input_shape)
        dx[:, :, ::s, ::s] = dy[:, :self.in_channels]
        return dx

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def _conv(c_in, c_out, kernel, stride, dtype, rng):
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False, init="he", dtype=dtype,
                     rng=rng)


def _projection(c_in, c_out, stride, dtype, rng):
    """Option B: S(x) = BN(W_s * x) with a 1×1, stride-s convolution W_s."""
    return nn.Sequential(_conv(c_in, c_out, 1, stride, dtype, rng), nn.BatchNorm2d(c_out, dtype=dtype))


def _shortcut(c_in, c_out, stride, kind, dtype, rng):
    if c_in == c_out and stride == 1:
        return None  # identity
    if kind == "A":
        return ZeroPadShortcut(c_in, c_out, stride)
    return _projection(c_in, c_out, stride, dtype, rng)


class BasicBlock(nn.Sequential):
    """y = ReLU(F(x) + S(x)),  F = conv3×3(stride) → BN → ReLU → conv3×3 → BN  (post-activation, 2016a)."""

    def __init__(self, c_in, c_out, stride=1, shortcut="A", dtype=np.float32, rng=None):
        branch = nn.Sequential(_conv(c_in, c_out, 3, stride, dtype, rng), nn.BatchNorm2d(c_out, dtype=dtype),
                               nn.ReLU(), _conv(c_out, c_out, 3, 1, dtype, rng), nn.BatchNorm2d(c_out, dtype=dtype))
        super().__init__(nn.Residual(branch, _shortcut(c_in, c_out, stride, shortcut, dtype, rng)), nn.ReLU())


class PreActBlock(nn.Sequential):
    """Pre-activation block (2016b), as fb.resnet.torch's preresnet: y = F(a) + S(a') with
    F = BN → ReLU → conv3×3(stride) → BN → ReLU → conv3×3.  When ``preact_both`` (first block of a stage whose
    shape changes) the BN → ReLU runs before the split, so the shortcut sees the activated input; otherwise the
    shortcut sees the raw x.  ``preact=False`` drops the leading BN → ReLU (the first block after the stem)."""

    def __init__(self, c_in, c_out, stride=1, preact=True, preact_both=False, shortcut="B", dtype=np.float32,
                 rng=None):
        layers, branch = [], []
        if preact and preact_both:
            layers += [nn.BatchNorm2d(c_in, dtype=dtype), nn.ReLU()]
        elif preact:
            branch += [nn.BatchNorm2d(c_in, dtype=dtype), nn.ReLU()]
        branch += [_conv(c_in, c_out, 3, stride, dtype, rng), nn.BatchNorm2d(c_out, dtype=dtype), nn.ReLU(),
                   _conv(c_out, c_out, 3, 1, dtype, rng)]
        layers.append(nn.Residual(nn.Sequential(*branch), _shortcut(c_in, c_out, stride, shortcut, dtype, rng)))
        super().__init__(*layers)


def _classifier(features, classes, dtype, rng):
    linear = nn.Linear(features, classes, init="torch", dtype=dtype, rng=rng)
    linear.bias.data[...] = 0  # fb.resnet.torch zeroes the classifier's bias
    return linear


def resnet_cifar(depth=20, num_classes=10, shortcut="A", in_channels=3, widths=(16, 32, 64), dtype=np.float32,
                 rng=None, input_grad=True):
    """He et al.'s CIFAR ResNet with ``depth`` = 6n + 2 weight layers (see the module docstring).

    Input (N, ``in_channels``, 32, 32) (any size divisible by 4 works); output logits (N, ``num_classes``).
    ``shortcut`` "A" (zero-padding identity, the paper's CIFAR choice) or "B" (1×1 projection + BN).
    ``input_grad=False`` makes backward skip the gradient with respect to the images (returning None), which
    training never uses — PyTorch skips it as well; the examples and benchmarks build it so.
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"resnet_cifar: depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, …), got {depth!r}")
    if shortcut not in ("A", "B"):
        raise ValueError(f"resnet_cifar: shortcut must be 'A' or 'B', got {shortcut!r}")
    n = (depth - 2) // 6
    stem = _conv(in_channels, widths[0], 3, 1, dtype, rng)
    stem.input_grad = bool(input_grad)
    layers = [stem, nn.BatchNorm2d(widths[0], dtype=dtype), nn.ReLU()]
    c_in = widths[0]
    for stage, width in enumerate(widths):
        residual_blocks = [BasicBlock(c_in if b == 0 else width, width, 2 if (b == 0 and stage > 0) else 1, shortcut,
                                      dtype, rng) for b in range(n)]
        layers.append(nn.Sequential(*residual_blocks))
        c_in = width
    layers += [nn.GlobalAvgPool2d(), _classifier(c_in, num_classes, dtype, rng)]
    return nn.Sequential(*layers)


_PREACT_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def preact_resnet(depth=34, num_classes=1000, shortcut="B", in_channels=3, dtype=np.float32, rng=None):
    """Pre-activation ResNet for ImageNet (He et al. 2016b; §4.3 uses depth 34), as fb.resnet.torch's preresnet:
    conv7×7/2 (64) → BN → ReLU → max-pool 3×3/2 → four stages of basic pre-activation blocks (64, 128, 256, 512
    channels; 3, 4, 6, 3 blocks for depth 34, 2, 2, 2, 2 for 18) → BN → ReLU → global average pool → linear.
    ``shortcut`` "B" (default: 1×1 projection + BN where the shape changes, He et al. 2016a's ImageNet choice)
    or "A" (zero padding; what fb.resnet.torch builds when no -shortcutType is given).  A 224×224 input gives
    7×7 maps before the pool; any input of at least 32×32 runs.
    """
    if shortcut not in ("A", "B"):
        raise ValueError(f"preact_resnet: shortcut must be 'A' or 'B', got {shortcut!r}")
    if depth not in _PREACT_STAGES:
        raise ValueError(f"preact_resnet: depth must be one of {sorted(_PREACT_STAGES)} (basic blocks), got {depth!r}")
    layers = [nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False, init="he", dtype=dtype, rng=rng),
              nn.BatchNorm2d(64, dtype=dtype), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)]
    c_in = 64
    for stage, (width, count) in enumerate(zip((64, 128, 256, 512), _PREACT_STAGES[depth])):
        residual_blocks = []
        for b in range(count):
            first = b == 0
            residual_blocks.append(PreActBlock(c_in, width, 2 if (first and stage > 0) else 1,
                                               preact=not (first and stage == 0), preact_both=first and stage > 0,
                                               shortcut=shortcut, dtype=dtype, rng=rng))
            c_in = width
        layers.append(nn.Sequential(*residual_blocks))
    layers += [nn.BatchNorm2d(c_in, dtype=dtype), nn.ReLU(), nn.GlobalAvgPool2d(),
               _classifier(c_in, num_classes, dtype, rng)]
    return nn.Sequential(*layers)
