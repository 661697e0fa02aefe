"""Time one optimizer step: Adam, AdamNG, SGDM and SGDM-NG on 10, 100 and 1,000 blocks of the same total size.

    python bench/optim_step.py [--size 1000000] [--repeats 7] [--steps 20]

Each configuration runs in its own subprocess (NumPy's and PyTorch's thread pools collide inside one process),
the subprocesses are interleaved over ``--repeats`` rounds, and the medians are reported, together with the
ratios the design asks for: AdamNG / Adam (target ≤ 1.3), SGDM-NG / SGDM (target ≤ 1.6), the plain rules
without block-norm logging (``track_norms=False``), and each method's 1,000-block / 10-block time (target ≤ 1.5).
The floor of NG's cost is timed too: its passes alone in bare NumPy — squares, one segment sum, the per-block
scale repeated over the coordinates, one multiply — so Adam + floor is the fastest AdamNG separate NumPy passes
allow.  torch.optim.Adam(foreach=True) is timed the same way when PyTorch is installed.
Shared machines are noisy: distrust a figure taken while anything else ran.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys

BLOCK_COUNTS = (10, 100, 1000)
METHODS = ("adam", "adamng", "sgdm", "sgdmng")

WORKER = r"""
import json, sys, time
import numpy as np
kind, method, blocks, size, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(0)
sizes = [size // blocks] * blocks
values = [rng.standard_normal(n).astype(np.float32) for n in sizes]
grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
if kind == "minibng":
    from minibng import optim
    from minibng.nn.module import Parameter
    params = [Parameter(v) for v in values]
    kwargs = {"track_norms": False} if method in ("adam", "sgdm") else {}
    opt = optim.create(method, params, **kwargs)
    for p, g in zip(params, grads):
        p.grad[...] = g
    step = opt.step
elif kind == "floor":  # NG's passes alone, in bare NumPy: Σ g² per block, then g^i / ‖g^i‖
    g = np.concatenate(grads)
    squares, d = np.empty_like(g), np.empty_like(g)
    starts, counts = np.cumsum([0] + sizes[:-1]), np.array(sizes)
    def step():
        sums = np.add.reduceat(np.multiply(g, g, out=squares), starts)
        np.multiply(g, np.repeat((1 / np.sqrt(sums)).astype(np.float32), counts), out=d)
else:
    import torch
    torch.set_num_threads(1)
    params = [torch.tensor(v) for v in values]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    opt = torch.optim.Adam(params, lr=1e-3, foreach=True)
    def step():
        with torch.no_grad():
            opt.step()
for _ in range(3):
    step()
times = []
for _ in range(steps):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
print(json.dumps(sorted(times)[len(times) // 2]))
"""


def time_once(kind, method, blocks, size, steps):
    env_threads = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    import os

    out = subprocess.run([sys.executable, "-c", WORKER, kind, method, str(blocks), str(size), str(steps)],
                         capture_output=True, text=True, check=True, env={**os.environ, **env_threads})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="total number of parameters")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (medians are reported)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process (their median is one sample)")
    args = parser.parse_args()
    configs = [("minibng", m, b) for b in BLOCK_COUNTS for m in METHODS] + [("floor", "ng", b) for b in BLOCK_COUNTS]
    if importlib.util.find_spec("torch") is not None:
        configs += [("torch", "adam", b) for b in BLOCK_COUNTS]
    samples = {c: [] for c in configs}
    for _ in range(args.repeats):
        for config in configs:
            samples[config].append(time_once(*config, args.size, args.steps))
    median = {c: statistics.median(v) for c, v in samples.items()}
    print(f"one step, {args.size:,} float32 parameters, single thread, median of {args.repeats} interleaved runs")
    print(f"{'method':18s}" + "".join(f"{b:>6d} blocks " for b in BLOCK_COUNTS) + "  1000/10")
    for kind, method in [("minibng", m) for m in METHODS] + ([("torch", "adam")] if ("torch", "adam", 10) in median else []):
        row = [median[(kind, method, b)] for b in BLOCK_COUNTS]
        label = f"{kind}:{method}" if kind == "minibng" else "torch foreach adam"
        print(f"{label:18s}" + "".join(f"{t * 1e3:10.3f} ms " for t in row) + f"  {row[-1] / row[0]:6.2f}x")
    for b in BLOCK_COUNTS:
        adam, sgdm, floor = (median[("minibng", "adam", b)], median[("minibng", "sgdm", b)],
                             median[("floor", "ng", b)])
        line = (f"{b:5d} blocks: adamng/adam {median[('minibng', 'adamng', b)] / adam:.2f}x "
                f"(floor {(adam + floor) / adam:.2f}x), sgdmng/sgdm {median[('minibng', 'sgdmng', b)] / sgdm:.2f}x "
                f"(floor {(sgdm + floor) / sgdm:.2f}x; NG's passes alone {floor * 1e3:.3f} ms)")
        if ("torch", "adam", b) in median:
            line += (f", minibng adam/torch adam {median[('minibng', 'adam', b)] / median[('torch', 'adam', b)]:.2f}x"
                     f", adamng/torch adam {median[('minibng', 'adamng', b)] / median[('torch', 'adam', b)]:.2f}x")
        print(line)


if __name__ == "__main__":
    main()
