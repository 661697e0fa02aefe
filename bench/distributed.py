"""Data-parallel training steps at 1 and 2 processes, and a cost model of ring all-reduce for 8–1,024 GPUs.

    python bench/distributed.py [--rounds 3] [--steps 8] [--models mlp,resnet20]   # needs the mpi extra
    python bench/distributed.py --model-only                                        # the cost model alone

Measured (CPU, one thread per process, each configuration in fresh processes, rounds interleaved, medians): the
training step of the paper's MLP (depth 18, sigmoid, batch 100, AdamNG) and of ResNet-20 (batch 128, SGDM-NG,
synchronized BatchNorm) on the same global batch, in 1 process and in 2 (``mpiexec -n 2``, half the batch each);
the gradient all-reduce's share of the 2-process step (its wall time inside the step, waiting for the slower rank
included), the same all-reduce timed alone after a barrier, BatchNorm's synchronizing all-reduces, and the bytes of
the gradient every step reduces.

On paper: ring all-reduce moves 2(N−1)/N × S bytes through every rank's link (S: the gradient's bytes) in 2(N−1)
steps, so t_comm(N) = 2(N−1)/N · S/β + 2(N−1)·α for link bandwidth β and per-step latency α; a step is
communication-bound once t_comm exceeds the step's compute, t_comp = 3 × forward FLOPs / R (R: the FLOP rate a GPU
sustains on these small layers).  Two regimes: weak scaling (every GPU keeps the paper's batch: t_comp fixed,
the large-batch regime of LARS and block normalization) and strong scaling (the paper's global batch split N ways:
t_comp shrinks as 1/N until one sample per GPU).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BATCH = {"mlp": 100, "resnet20": 128}
LINKS = {"NVLink (100 GB/s, α 5 µs)": (100e9, 5e-6), "InfiniBand EDR (12.5 GB/s, α 5 µs)": (12.5e9, 5e-6),
         "10 GbE (1.25 GB/s, α 25 µs)": (1.25e9, 25e-6)}
GPU_FLOPS = 4e12  # what a V100-class GPU sustains on these small layers (about a quarter of its fp32 peak)
GPUS = [8, 16, 32, 64, 128, 256, 512, 1024]


def build(name, batch):
    """(model, optimizer, x, y) of the paper's setting for ``name``, float32, random data."""
    import numpy as np

    from minibng import backend, models, optim

    backend.manual_seed(0)
    rng = np.random.default_rng(0)
    if name == "mlp":
        model, opt_name = models.mlp(18, input_grad=False), "adamng"
        x = rng.random((batch, 784), dtype=np.float32)
    elif name.startswith("resnet"):
        model, opt_name = models.resnet_cifar(int(name[6:]), input_grad=False), "sgdmng"
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    else:
        raise ValueError(name)
    return model, optim.create(opt_name, model), x, rng.integers(0, 10, batch)


def forward_flops(model, x):
    """2 × the multiply-adds of every Linear and Conv2d in one forward pass of ``x``."""
    from minibng import nn

    total, originals = [0], {cls: cls.forward for cls in (nn.Linear, nn.Conv2d)}

    def counting(cls):
        def forward(self, inputs):
            y = originals[cls](self, inputs)
            shape = self.weight.data.shape
            total[0] += 2 * y.size * (shape[0] if cls is nn.Linear else shape[1] * shape[2] * shape[3])
            return y
        return forward

    try:
        for cls in originals:
            cls.forward = counting(cls)
        model(x)
    finally:
        for cls, forward in originals.items():
            cls.forward = forward
    return total[0]


def worker(config):
    import numpy as np

    from minibng import distributed, nn

    world = distributed.world()
    model, opt, x, y = build(config["model"], config["batch"] // world.size)
    world.replicate(model, [], sync_batchnorm=True)
    loss_fn = nn.SoftmaxCrossEntropy(check=False)
    spent, calls, reduce = {}, {}, world.allreduce_sum

    def timed_sum(array, what):
        start = time.perf_counter()
        reduce(array, what)
        spent[what] = spent.get(what, 0.0) + time.perf_counter() - start
        calls[what] = calls.get(what, 0) + 1
        return array

    world.allreduce_sum = timed_sum
    steps = []
    for k in range(config["steps"] + 2):  # two warm-up steps
        spent.clear()
        calls.clear()
        start = time.perf_counter()
        loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(loss_fn.backward())
        world.allreduce_mean(opt.flat.g)
        opt.step()
        steps.append((time.perf_counter() - start, dict(spent), dict(calls)))
    steps = steps[2:]
    alone = []
    if world.size > 1:
        world.allreduce_sum = reduce
        buffer = opt.flat.g.copy()
        for _ in range(10):
            world.comm.Barrier()
            start = time.perf_counter()
            world.allreduce_mean(buffer)
            alone.append(time.perf_counter() - start)
    gradient, batchnorm = "the gradient", "BatchNorm's batch statistics"
    if world.rank:
        return None  # rank 0 reports
    return {"step": float(np.median([s for s, _, _ in steps])),
            "gradient": float(np.median([t.get(gradient, 0.0) for _, t, _ in steps])),
            "batchnorm": float(np.median([t.get(batchnorm, 0.0) for _, t, _ in steps])),
            "batchnorm_calls": steps[0][2].get(batchnorm, 0), "alone": float(np.median(alone)) if alone else 0.0,
            "gradient_bytes": int(opt.flat.g.nbytes)}


def launch(config, processes):
    """Run one worker configuration in ``processes`` fresh processes (mpiexec for more than one); rank 0's result."""
    command = [sys.executable, __file__, "--worker", json.dumps(config)]
    if processes > 1:
        mpiexec = shutil.which("mpiexec", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
        if mpiexec is None:
            raise SystemExit("mpiexec not found: pip install -e \".[mpi]\"")
        command = [mpiexec, "-n", str(processes), *command]
    env = {k: v for k, v in harness.thread_env(1).items() if not k.startswith(("PMI_", "OMPI_"))}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{config} on {processes} process(es) failed:\n{out.stderr[-3000:]}")
    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))


def measure(args):
    configs = [(m, n) for m in args.models.split(",") for n in (1, 2)]
    results = {c: [] for c in configs}
    for r in range(args.rounds):
        for model, n in configs:
            results[model, n].append(launch({"model": model, "batch": BATCH[model], "steps": args.steps}, n))
        print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    median = lambda model, n, key: harness.median([r[key] for r in results[model, n]])  # noqa: E731
    print(f"\nmeasured: CPU, 1 thread per process, median of {args.rounds} rounds × {args.steps} steps; "
          f"load average before: {args.load}, after: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(f"{'model':<10}{'global':>7}{'1 proc ms':>11}{'2 procs ms':>12}{'speed-up':>10}{'all-reduce ms':>15}"
          f"{'share':>7}{'alone ms':>10}{'BN sync ms':>12}{'gradient':>10}{'sent/rank':>11}")
    for model in args.models.split(","):
        one, two = median(model, 1, "step"), median(model, 2, "step")
        grad, size = median(model, 2, "gradient"), results[model, 2][0]["gradient_bytes"]
        bn = f"{median(model, 2, 'batchnorm') * 1e3:.1f} ({results[model, 2][0]['batchnorm_calls']})"
        print(f"{model:<10}{BATCH[model]:>7}{one * 1e3:>11.1f}{two * 1e3:>12.1f}{one / two:>10.2f}{grad * 1e3:>15.2f}"
              f"{grad / two:>7.1%}{median(model, 2, 'alone') * 1e3:>10.2f}{bn:>12}{size / 2**20:>8.2f} MB"
              f"{size / 2**20:>8.2f} MB")


def cost_model():
    """The ring all-reduce model of the module docstring for the paper's networks."""
    from minibng import models, nn

    networks = {}  # name: (gradient bytes S, FLOPs per sample of a training step, samples per batch, layer passes)
    for name, batch in (("mlp", 100), ("resnet20", 128), ("resnet110", 128)):
        model, opt, x, _ = build(name, 1)
        layers = sum(1 for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.BatchNorm2d)))
        networks[name] = (opt.flat.g.nbytes, 3 * forward_flops(model, x), batch, layers)
    lstm = models.lstm_lm(10000)  # PTB 2 × 200, BPTT 40, 100 streams: the embedding's gradient is dense in g
    params = sum(p.data.size for p in lstm.parameters())
    networks["ptb lstm"] = (4 * params, 6 * (params - lstm[0].weight.data.size) * 40, 100, 2 * 40 + 2)

    def compute(name, samples):  # FLOPs at GPU_FLOPS, plus 30 µs of kernel launches per layer pass
        _, flops, _, layers = networks[name]
        return flops * samples / GPU_FLOPS + layers * 30e-6

    print(f"\ncost model: ring all-reduce, t_comm = 2(N−1)/N·S/β + 2(N−1)·α; t_comp = 3 × forward FLOPs / "
          f"{GPU_FLOPS / 1e12:g} TFLOP/s + 30 µs per layer pass")
    print(f"{'network':<11}{'S (gradient)':>14}{'batch':>7}{'step GFLOP':>12}{'t_comp ms':>11}")
    for name, (size, flops, batch, layers) in networks.items():
        print(f"{name:<11}{size / 2**20:>11.2f} MB{batch:>7}{flops * batch / 1e9:>12.2f}"
              f"{compute(name, batch) * 1e3:>11.2f}")
    for link, (beta, alpha) in LINKS.items():
        ring = lambda n, size, beta=beta, alpha=alpha: 2 * (n - 1) / n * size / beta + 2 * (n - 1) * alpha  # noqa
        print(f"\n{link}: t_comm in ms for N GPUs, * where it exceeds t_comp with every GPU at the paper's batch "
              "(weak scaling); 'strong': the first N at which the paper's global batch split N ways is bound")
        print(f"{'network':<11}" + "".join(f"{n:>8}" for n in GPUS) + f"{'weak from':>11}{'strong from':>13}")
        for name, (size, flops, batch, layers) in networks.items():
            bound = [n for n in GPUS if ring(n, size) > compute(name, batch)]
            strong = next((n for n in range(2, batch + 1) if ring(n, size) > compute(name, batch / n)), None)
            cells = "".join(f"{ring(n, size) * 1e3:>7.2f}{'*' if n in bound else ' '}" for n in GPUS)
            print(f"{name:<11}{cells}{bound[0] if bound else '> 1024':>11}{strong or f'> {batch}':>13}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--models", default="mlp,resnet20")
    p.add_argument("--model-only", action="store_true", help="print the cost model only (nothing is timed)")
    args = p.parse_args()
    args.load = f"{os.getloadavg()[0]:.2f}"
    if not args.model_only:
        measure(args)
    cost_model()


if __name__ == "__main__":
    harness.entry(worker, main)
