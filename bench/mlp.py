"""Time one training step of the paper's MLP (sigmoid, 100 units, batch 100) in minibng and in PyTorch.

    python bench/mlp.py [--depths 6,18] [--rounds 5] [--steps 50] [--threads 1]

Per depth: minibng with Adam and AdamNG, PyTorch with Adam (when installed, same thread count), and the
floor: the step's matrix products alone in NumPy (forward x W, backward xᵀ dy per layer and dy Wᵀ for every
layer but the first, whose input is data).
Targets, and every benchmark in one table: bench/report.py and docs/performance.md.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BATCH, HIDDEN, INPUTS, CLASSES = 100, 100, 784, 10


def worker(config):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((BATCH, INPUTS), dtype=np.float32)
    y = rng.integers(0, CLASSES, BATCH)
    depth, kind = config["depth"], config["kind"]
    widths = [INPUTS] + [HIDDEN] * (depth - 1) + [CLASSES]
    if kind == "minibng":
        from minibng import models, nn, optim

        model = models.mlp(depth, input_grad=False)  # as PyTorch's step: no gradient for the images
        loss_fn = nn.SoftmaxCrossEntropy(check=False)
        opt = optim.create(config["optimizer"], model, **harness.no_norm_logging(config["optimizer"]))

        step = harness.training_step(model, loss_fn, opt, x, y)
    elif kind == "torch":
        import torch

        torch.set_num_threads(config["threads"])
        layers = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < depth - 1:
                layers.append(torch.nn.Sigmoid())
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        step = harness.torch_training_step(model, opt, torch.from_numpy(x), torch.from_numpy(y))
    else:  # the floor: the matrix products of one step, nothing else
        weights = [rng.standard_normal((a, b)).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]
        acts = [rng.random((BATCH, a), dtype=np.float32) for a in widths[:-1]]
        grads = [rng.random((BATCH, b), dtype=np.float32) for b in widths[1:]]

        def step():
            for a, w in zip(acts, weights):
                a @ w
            for k, (a, g, w) in enumerate(zip(acts, grads, weights)):
                a.T @ g
                if k:  # the first layer's input gradient is not needed (neither framework computes it)
                    g @ w.T
    return harness.time_steps(step, config["steps"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depths", default="6,18")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    configs = []
    for depth in (int(d) for d in args.depths.split(",")):
        configs += [{"kind": "minibng", "optimizer": "adam", "depth": depth}, {"kind": "minibng", "optimizer": "adamng", "depth": depth},
                    {"kind": "floor", "depth": depth}]
        if harness.torch_available():
            configs.append({"kind": "torch", "depth": depth})
    for c in configs:
        c["steps"] = args.steps
    results = harness.measure(__file__, configs, args.rounds, args.threads)
    times = {(c["kind"], c.get("optimizer"), c["depth"]): harness.median(r) for c, r in zip(configs, results)}
    print(f"\nMLP training step, batch {BATCH}, {args.threads} thread(s), median of {args.rounds} rounds × {args.steps} steps")
    print(f"{'depth':>5} {'adam ms':>9} {'adamng ms':>10} {'floor ms':>9} {'torch ms':>9} "
          f"{'adam/torch':>11} {'adam/floor':>11} {'ng/adam':>8}")
    for depth in (int(d) for d in args.depths.split(",")):
        adam, ng = times["minibng", "adam", depth], times["minibng", "adamng", depth]
        floor, torch_time = times["floor", None, depth], times.get(("torch", None, depth))
        versus = f"{adam / torch_time:>11.2f}" if torch_time else f"{'—':>11}"
        print(f"{depth:>5} {adam * 1e3:>9.3f} {ng * 1e3:>10.3f} {floor * 1e3:>9.3f} "
              f"{(torch_time or float('nan')) * 1e3:>9.3f} {versus} {adam / floor:>11.2f} {ng / adam:>8.2f}")


if __name__ == "__main__":
    harness.entry(worker, main)
