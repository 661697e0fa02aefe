"""Shared benchmark machinery: each measurement in its own subprocess, configurations interleaved, medians.

NumPy's and PyTorch's thread pools collide inside one process (small matrix products become ~100× slower), so
every framework runs in a fresh interpreter with the same thread count.  Rounds interleave the
configurations so that a burst of load elsewhere on the machine hits all of them alike; the median over
rounds is reported.  A worker is a module in bench/ with a ``worker(config) -> seconds`` function; it is run
as ``python bench/<module>.py --worker '<json config>'`` and prints its time as JSON.
"""
from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def thread_env(threads: int) -> dict:
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
    return {**os.environ, **{name: str(threads) for name in names}}


def measure(script: str, configs: list[dict], rounds: int, threads: int) -> list[list]:
    """Run every config once per round, interleaved; returns each config's list of results (one per round)."""
    results = [[] for _ in configs]
    for r in range(rounds):
        for i, config in enumerate(configs):
            out = subprocess.run([sys.executable, script, "--worker", json.dumps({**config, "threads": threads})],
                                 capture_output=True, text=True, env=thread_env(threads), check=False)
            if out.returncode != 0:
                raise RuntimeError(f"worker {config} failed:\n{out.stderr[-3000:]}")
            results[i].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return results


def median(values):
    return statistics.median(values)


def entry(worker, main):
    """A benchmark script's entry point: a worker process when called with ``--worker``, else the driver."""
    if "--worker" in sys.argv:
        worker_main(worker)
    else:
        main()


def worker_main(worker):
    """Entry point of a worker process: ``worker(config)`` and print its JSON result."""
    config = json.loads(sys.argv[sys.argv.index("--worker") + 1])
    print(json.dumps(worker(config)))


def no_norm_logging(name):
    """Options of optim.create for a timed baseline: no block norms logged by a rule without a normalizer (PyTorch's
    optimizers compute none; a normalizer needs them anyway)."""
    return {} if name.endswith(("ng", "ngadap", "clip")) else {"track_norms": False}


def training_step(model, loss_fn, opt, x, y):
    """A closure running one minibng training step: forward, loss, backward, optimizer step."""
    def step():
        loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
    return step


def torch_training_step(model, opt, x, y):
    """The same closure for PyTorch: forward, cross-entropy, backward, optimizer step."""
    import torch

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def clock():
    """The clock the workers time with: wall time, or with MINIBNG_BENCH_CLOCK=cpu the process's CPU time, which a
    one-thread worker accrues only while it runs (on a loaded machine, time spent waiting for a core is left out;
    contention for caches and memory bandwidth is not)."""
    import time

    return time.process_time if os.environ.get("MINIBNG_BENCH_CLOCK") == "cpu" else time.perf_counter


def time_steps(step, steps: int, warmup: int = 3, sync=lambda: None) -> float:
    """Median time (:func:`clock`) of ``step()`` over ``steps`` calls after ``warmup`` calls; ``sync()`` waits for
    the device (a GPU step returns before its kernels finish)."""
    now = clock()
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        start = now()
        step()
        sync()
        times.append(now() - start)
    return statistics.median(times)
