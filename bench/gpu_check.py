"""The Python parts of bench/gpu_check.sh, one per command; each prints lines a reader can judge and exits 1 when a
check fails.

    python3 bench/gpu_check.py kernels     segment reductions, scale, draws, scatter-add: equal to their host twins
                                           (tests/gpu_twins.py) bit for bit, and to float64 NumPy to rounding
    python3 bench/gpu_check.py partition   Partition.norms/scale and one step of every preset: GPU against NumPy
    python3 bench/gpu_check.py nccl        NCCL on one rank: communicator, all-reduce, broadcast, BatchNorm sync
    python3 bench/gpu_check.py timing      random draws, block norms, one MLP step (and PyTorch's, when installed)

``--cpu`` tries a part without a GPU: on NumPy, and for ``kernels`` through tests/fake_cupy.py (launches run on the
host twins, so "equal to the twin" there checks only the launches' arguments); ``nccl`` needs a GPU.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

failures = []


def check(ok, line):
    """Print one judged line; remember a failure."""
    print(f"{'ok  ' if ok else 'FAIL'} {line}", flush=True)
    if not ok:
        failures.append(line)


def test_values(dtype, sizes, rng):
    """Entries across the dtype's exponent range (a block of subnormal numbers first), with zeros."""
    finfo = np.finfo(dtype)
    values = rng.standard_normal(sum(sizes)) / 8 * 2.0 ** rng.integers(finfo.minexp, finfo.maxexp - 3, sum(sizes))
    values[:sizes[0]] = rng.standard_normal(sizes[0]) * float(finfo.smallest_subnormal) * 100
    values[5::11] = 0.0
    return values.astype(dtype)


def host(array):
    return array.get() if hasattr(array, "get") else np.asarray(array)


def part_kernels(args):
    if args.cpu:
        import fake_cupy

        fake_cupy.install()
    import cupy

    import gpu_twins
    from minibng.gpu import kernels

    rng = np.random.default_rng(0)
    sizes = [3, 1, 255, 256, 257, kernels.TILE + 1, 10**6, 2]
    for dtype in (np.float32, np.float64):
        values = test_values(dtype, sizes, rng)
        segments, device_values = kernels.Segments(sizes, cupy), cupy.asarray(values)
        starts = np.cumsum(sizes) - sizes
        for op in ("sum", "sum_of_squares", "max_abs"):
            scales = 2.0 ** rng.integers(-3, 3, len(sizes)) if op == "sum_of_squares" and dtype == np.float64 else None
            out = cupy.full(len(sizes), np.nan)
            kernels.segment_reduce(op, device_values, segments, out, None if scales is None else cupy.asarray(scales))
            got, twin = host(out), gpu_twins.segment_reduce(op, values, sizes, scales)
            wide = values.astype(np.float64) * (1 if scales is None else np.repeat(scales, sizes))
            loaded = {"sum": wide, "sum_of_squares": wide * wide, "max_abs": np.abs(wide)}[op]
            reference = (np.maximum if op == "max_abs" else np.add).reduceat(loaded, starts)
            finite = np.isfinite(reference)    # float64 squares of entries near 1e300 overflow, in both
            error = np.max(np.abs(got - reference)[finite] / np.maximum(np.abs(reference[finite]), 1e-300))
            check(np.array_equal(got.view(np.uint64), twin.view(np.uint64)),
                  f"{op:<15}{np.dtype(dtype).name}: segments of {sizes} equal the twin bit for bit")
            same_non_finite = np.array_equal(got[~finite], reference[~finite], equal_nan=True)
            check(error < (1e-9 if op == "sum" else 1e-12) and same_non_finite,
                  f"{op:<15}{np.dtype(dtype).name}: largest relative error against float64 NumPy {error:.1e} "
                  f"({int((~finite).sum())} segment(s) ∞ or NaN in both)")
        if dtype == np.float32:
            squares = kernels.segment_reduce("sum_of_squares", device_values[:3], kernels.Segments([3], cupy),
                                             cupy.zeros(1))[0]
            norm = math.sqrt(squares)
            check(norm > 0 and math.isclose(norm, math.hypot(*map(float, values[:3])), rel_tol=1e-15),
                  f"a float32 block of subnormal numbers has norm {norm:.6e} (Σ v² = {squares:.3e}), not 0")
        block_ids = np.repeat(np.arange(len(sizes)), sizes)
        divisor, multiplier = 2.0 ** rng.integers(-60, 60, len(sizes)), rng.standard_normal(len(sizes)) * 1e-30
        out = cupy.empty_like(device_values)
        kernels.scale_blocks(device_values, cupy.asarray(divisor), cupy.asarray(multiplier), cupy.asarray(block_ids),
                             out)
        twin = gpu_twins.scale_blocks(values, divisor, multiplier, block_ids)
        check(np.array_equal(host(out).view(np.uint8), twin.view(np.uint8)),
              f"scale          {np.dtype(dtype).name}: equal to the twin bit for bit (subnormal results kept)")
        draws = host(kernels.uniform((1001, 7), dtype, (123, 456))).ravel()
        check(np.array_equal(draws, gpu_twins.uniform(7007, dtype, (123, 456))),
              f"uniform        {np.dtype(dtype).name}: Philox draws equal the twin's")
        ids = rng.integers(0, 50, 3000)
        rows = rng.standard_normal((3000, 16)).astype(dtype)
        target = rng.standard_normal((50, 16)).astype(dtype)
        results = [host(kernels.scatter_add(cupy.array(target), cupy.asarray(ids), cupy.asarray(rows)))
                   for _ in range(3)]
        check(all(np.array_equal(r, gpu_twins.scatter_add(target, ids, rows)) for r in results),
              f"scatter_add    {np.dtype(dtype).name}: three runs equal the twin bit for bit")


def part_partition(args):
    from minibng import backend, optim
    from minibng.nn.module import Parameter
    from minibng.optim.flat import pack

    device = "cpu" if args.cpu else "gpu"
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        finfo = np.finfo(dtype)
        blocks = [np.full(4, finfo.smallest_subnormal * 3), np.full(300, 1e-30), np.array([finfo.max / 8] * 3),
                  rng.standard_normal(20000), np.array([np.nan, 1.0]), np.array([np.inf, 2.0]), np.zeros(5)]
        blocks = [b.astype(dtype) for b in blocks]
        flats = [pack([Parameter(backend.to_device(b, where)) for b in blocks]) for where in ("cpu", device)]
        host_norms, device_norms = (backend.asnumpy(f.partition.norms(f.x)) for f in flats)
        expected = [math.hypot(*map(float, b)) for b in blocks]
        check(np.allclose(device_norms, host_norms, rtol=8 * finfo.eps, equal_nan=True)
              and np.allclose(device_norms, expected, rtol=8 * finfo.eps, equal_nan=True),
              f"Partition.norms {np.dtype(dtype).name}: subnormal, tiny, huge, long, NaN, ∞ and zero blocks: "
              f"{np.array2string(device_norms, precision=3)}")
        ratios = [rng.standard_normal(len(blocks)) * 1e30, np.abs(rng.standard_normal(len(blocks))) * 1e-30]
        outs = [backend.asnumpy(f.partition.scale(f.x, *[backend.to_device(r, w) for r in ratios], out=f.x.copy()))
                for f, w in zip(flats, ("cpu", device))]
        check(np.array_equal(outs[0], outs[1], equal_nan=True),
              f"Partition.scale {np.dtype(dtype).name}: equal to NumPy's")
    for name in optim.preset_names():
        results = []
        for where in ("cpu", device):
            params = [Parameter(backend.to_device(rng_values(i, n), where)) for i, n in enumerate([6, 40, 3])]
            opt = optim.create(name, [(f"p{i}", p) for i, p in enumerate(params)], lr=0.01)
            for step in range(3):
                for i, p in enumerate(params):
                    p.grad[...] = backend.to_device(rng_values(10 * step + i, p.data.size, grad=True), where)
                opt.step()
            results.append(np.concatenate([backend.asnumpy(p.data) for p in params]))
        error = np.max(np.abs(results[0] - results[1]))
        check(error <= 1e-6, f"preset {name:<12} 3 steps on float32 (a subnormal block included): GPU − NumPy "
                             f"≤ {error:.1e}")


def rng_values(seed, n, grad=False):
    values = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    if grad and n == 3:
        values = values * np.float32(1e-44)   # a block of subnormal gradients
    return values


def part_nccl(args):
    import cupy

    import fake_ranks
    from minibng import nn
    from minibng.distributed import BatchNormSync

    world = fake_ranks.world(fake_ranks.Job(1, ["this node"]), 0)   # one rank; NCCL's calls are real
    check(world._host_staging_because is None, f"this rank has a GPU and NCCL ({world._host_staging_because or 'yes'})")
    g = cupy.arange(10, dtype=cupy.float32)
    world.allreduce_mean(g)
    check(world._nccl is not False and bool((g == cupy.arange(10)).all()),
          f"NCCL communicator made ({type(getattr(world, '_nccl_comm', None)).__name__}); all-reduce (mean) of one rank"
          " leaves g as it was")
    weights = cupy.full(5, 3.0)
    world.broadcast([weights], "the parameters")
    check(bool((weights == 3.0).all()), "NCCL broadcast from rank 0")
    x = cupy.asarray(np.random.default_rng(2).standard_normal((8, 3, 4, 4)).astype(np.float32))
    plain, synced = nn.BatchNorm2d(3).to("gpu"), nn.BatchNorm2d(3).to("gpu")
    synced.sync = BatchNormSync(world)
    difference = float(cupy.abs(plain(x) - synced(x)).max())
    check(difference == 0.0,
          f"BatchNorm synchronized over one rank equals plain BatchNorm (largest difference {difference})")


def part_timing(args):
    from minibng import backend, models, nn, optim

    device = "cpu" if args.cpu else "gpu"
    xp = backend.array_module_for(device)
    sync = (lambda: None) if args.cpu else xp.cuda.Device().synchronize

    def per_call(function, calls):
        function()
        sync()
        start = time.perf_counter()
        for _ in range(calls):
            function()
        sync()
        return (time.perf_counter() - start) / calls * 1e3

    stream = backend.RandomStream(0)
    draw = per_call(lambda: stream.random((128, 1024), xp, np.float32), 50)
    print(f"random draw (128, 1024) float32, RandomStream: {draw:.3f} ms")
    if not args.cpu:
        old = per_call(lambda: xp.random.default_rng(7).random((128, 1024), dtype=np.float32), 10)
        print(f"random draw (128, 1024) float32, a fresh CuPy default_rng (XORWOW) per draw, as before: {old:.3f} ms")
    for blocks, size in ((100, 10**4), (1, 10**6), (1, 10**7)):
        for dtype in (np.float32, np.float64):
            p = optim.Partition([f"b{i}" for i in range(blocks)], [size] * blocks, xp, dtype)
            v = xp.asarray(np.random.default_rng(3).standard_normal(blocks * size).astype(dtype))
            milliseconds = per_call(lambda: p.norms(v), 20)
            print(f"Partition.norms, {blocks} block(s) of {size:,} {np.dtype(dtype).name}: {milliseconds:.3f} ms")
    backend.manual_seed(0)
    model = models.mlp(18, input_grad=False).to(device)
    loss_fn, opt = nn.SoftmaxCrossEntropy(check=False), optim.create("adamng", model)
    x = backend.to_device(np.random.default_rng(4).random((100, 784), dtype=np.float32), device)
    y = backend.to_device(np.random.default_rng(5).integers(0, 10, 100), device)

    def step():
        loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()

    print(f"one training step, MLP depth 18, batch 100, AdamNG (minibng on {device}): {per_call(step, 30):.3f} ms")


def part_timing_torch(args):
    import torch

    where = "cpu" if args.cpu else "cuda"
    layers = []
    for i, (a, b) in enumerate(zip([784] + [100] * 17, [100] * 17 + [10])):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.Sigmoid()] if i < 17 else [])
    model = torch.nn.Sequential(*layers).to(where)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(100, 784, device=where), torch.randint(0, 10, (100,), device=where)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    torch.cuda.synchronize() if where == "cuda" else None
    start = time.perf_counter()
    for _ in range(30):
        step()
    torch.cuda.synchronize() if where == "cuda" else None
    print(f"one training step, MLP depth 18, batch 100, Adam (PyTorch {torch.__version__} on {where}): "
          f"{(time.perf_counter() - start) / 30 * 1e3:.3f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["kernels", "partition", "nccl", "timing", "timing-torch"])
    parser.add_argument("--cpu", action="store_true", help="run the part on NumPy where it can (a dry run)")
    args = parser.parse_args()
    with np.errstate(over="ignore", invalid="ignore"):   # values near the ends of the range overflow on purpose
        globals()["part_" + args.part.replace("-", "_")](args)
    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
