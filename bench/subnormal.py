"""What a float32 subnormal operand costs: the MLP's backward product dW = xᵀ dy, and one sigmoid slope, when the
upstream gradient dy is normal, subnormal (below 1.2e-38, as in the lower layers of a saturated sigmoid network)
or exactly 0.

    python bench/subnormal.py [--repeats 200]

The exact sigmoid keeps a saturated unit's slope (down to ~1e-38, and gradients below that as subnormals) where the
former one rounded it to 0. x86 processors handle a subnormal operand in microcode, many times slower than a normal
one, so a float32 network whose gradients sit in that range trains more slowly than one whose gradients are 0 or
normal. The same values in float64 are normal numbers. Shared machines are noisy: distrust a figure taken while
anything else ran.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

BATCH, FAN_IN, FAN_OUT = 100, 784, 100      # the first layer of the MNIST MLP: x is (100, 784), dy is (100, 100)
SCALES = {"~1": 1.0, "~1e-40": 1e-40, "0": 0.0}      # ~1e-40: subnormal in float32, normal in float64


def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, FAN_IN), dtype=np.float32)
    slope = rng.random((BATCH, FAN_OUT), dtype=np.float32)
    print(f"median of {args.repeats} calls: x ({BATCH}×{FAN_IN}) and σ′ uniform in [0, 1), dy ({BATCH}×{FAN_OUT}) "
          "normal draws scaled to entries of size")
    for dtype in (np.float32, np.float64):
        for name, scale in SCALES.items():
            dy = (rng.standard_normal((BATCH, FAN_OUT)) * scale).astype(dtype)
            if dtype == np.float32 and name == "~1e-40":
                assert 0 < np.abs(dy).max() < np.finfo(np.float32).tiny
            xd, sd = x.astype(dtype), slope.astype(dtype)
            product = median_seconds(lambda: xd.T @ dy, args.repeats)
            elementwise = median_seconds(lambda: dy * sd, args.repeats)
            print(f"  {np.dtype(dtype).name:8s} {name:10s} xᵀ dy {product * 1e3:8.3f} ms   dy · σ′ {elementwise * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
