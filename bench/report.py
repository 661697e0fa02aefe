"""Every benchmark in one run and one table: the work, minibng, PyTorch, the floor, the ratios, threads and device.

    python bench/report.py [--rounds 3] [--steps N] [--threads 1] [--only mlp,resnet,lstm,textcnn,optim]
                           [--clock wall|cpu] [--blas native|inherit]

Each measurement runs a benchmark script's own worker (bench/mlp.py, conv.py, lstm.py, textcnn.py through
bench/harness.py, and bench/optim_step.py's) in a fresh process with the same thread count; every configuration of
every benchmark runs once per round, interleaved, and the median over rounds is reported.  ``--steps`` overrides
each benchmark's number of timed steps per process.

- ``--clock cpu`` times with the workers' CPU time (MINIBNG_BENCH_CLOCK=cpu): on a loaded machine a one-thread
  worker is then not charged for the time it waited for a core.  The optimizer rows always use wall time.
- ``--blas native`` (default) removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the workers' environment, so
  NumPy's OpenBLAS runs the kernel it picks for this processor (some machines set OPENBLAS_CORETYPE=Haswell, which
  runs AVX2 kernels on an AVX-512 processor and makes every matrix product ~1.7× slower, while PyTorch picks its
  own); ``--blas inherit`` keeps the environment as it is.  The header says which kernel the workers got.

The header also names the processor, the cores, and the load average at the start and at the end: a figure taken
while anything else ran is not a figure for an idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import optim_step  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = ("mlp", "resnet", "lstm", "textcnn", "optim")


def jobs(only, threads, steps):
    """(key, script, config) of every measurement; script None for bench/optim_step.py's worker."""
    def with_steps(config, default):
        return {**config, "steps": steps or default}

    out = []
    if "mlp" in only:
        for depth in (6, 18):
            for kind, optimizer in (("minibng", "adam"), ("minibng", "adamng"), ("torch", None), ("floor", None)):
                out.append((("mlp", depth, kind, optimizer), "mlp.py",
                            with_steps({"kind": kind, "optimizer": optimizer, "depth": depth}, 50)))
    if "resnet" in only:
        for kind in ("minibng", "torch", "floor"):
            out.append((("resnet", kind), "conv.py",
                        with_steps({"what": "step", "kind": kind, "device": "cpu", "batch": 128}, 5)))
    if "lstm" in only:
        for part in ("step", "lstm", "output"):
            for kind, optimizer in (("minibng", "adam"), ("torch", None)) + ((("minibng", "adamng"),)
                                                                             if part == "step" else ()):
                out.append((("lstm", part, kind, optimizer), "lstm.py",
                            with_steps({"kind": kind, "part": part, "optimizer": optimizer, "warmup": 2}, 3)))
    if "textcnn" in only:
        for kind, optimizer in (("minibng", "adam"), ("minibng", "adamng"), ("torch-conv1d", None),
                                ("torch-kim", None), ("floor", None)):
            out.append((("textcnn", kind, optimizer), "textcnn.py",
                        with_steps({"kind": kind, "optimizer": optimizer}, 20)))
    if "optim" in only:
        for blocks in optim_step.BLOCK_COUNTS:
            for kind, method in (("minibng", "adam"), ("minibng", "adamng"), ("minibng", "sgdm"),
                                 ("minibng", "sgdmng"), ("floor", "ng"), ("torch", "adam")):
                out.append((("optim", blocks, kind, method), None, {"kind": kind, "method": method,
                                                                   "blocks": blocks, "steps": steps or 20}))
    return [(key, script, {**config, "threads": threads}) for key, script, config in out
            if harness.torch_available() or not config["kind"].startswith("torch")]


def run_one(script, config, threads):
    """Seconds (and, for the ResNet step, peak memory) of one worker process."""
    if script is None:
        return {"seconds": optim_step.time_once(config["kind"], config["method"], config["blocks"], 1_000_000,
                                                config["steps"])}
    out = subprocess.run([sys.executable, os.path.join(HERE, script), "--worker", json.dumps(config)],
                         capture_output=True, text=True, env=harness.thread_env(threads), check=False)
    if out.returncode != 0:
        raise RuntimeError(f"worker {script} {config} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result if isinstance(result, dict) else {"seconds": result}


def machine():
    """Processor, cores, Python, NumPy (and its BLAS kernel as the workers see it), PyTorch."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    probe = ("import numpy, json\ntry:\n import threadpoolctl\n info = [i for i in threadpoolctl.threadpool_info() "
             "if i.get('user_api') == 'blas']\n blas = ', '.join(f\"{i['internal_api']} {i['version']} "
             "{i.get('architecture', '')}\" for i in info)\nexcept ImportError:\n blas = 'unknown (pip install "
             "threadpoolctl)'\nprint(json.dumps([numpy.__version__, blas]))")
    numpy_version, blas = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                                    env=harness.thread_env(1), check=True).stdout)
    torch = "not installed"
    if harness.torch_available():
        torch = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                               text=True, check=False).stdout.strip()
    return (f"{model}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy {numpy_version} "
            f"(BLAS: {blas}), PyTorch {torch}")


def load():
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def table(medians, threads):
    """Markdown rows: work | minibng | PyTorch | floor | minibng/PyTorch | minibng/floor | target | threads | device."""
    def ms(seconds):
        return "—" if seconds is None else f"{seconds * 1e3:.3f}" if seconds < 0.01 else f"{seconds * 1e3:.1f}"

    def ratio(a, b):
        return "—" if a is None or b is None else f"{a / b:.2f}"

    def t(key):
        return medians.get(key, {}).get("seconds")

    rows = []

    def row(work, mine, torch=None, floor=None, target="", device="cpu"):
        if mine is not None:
            rows.append(f"| {work} | {ms(mine)} | {ms(torch)} | {ms(floor)} | {ratio(mine, torch)} | "
                        f"{ratio(mine, floor)} | {target} | {threads} | {device} |")

    for depth in (6, 18):
        adam = t(("mlp", depth, "minibng", "adam"))
        row(f"MLP step, depth {depth}, batch 100, Adam", adam, t(("mlp", depth, "torch", None)),
            t(("mlp", depth, "floor", None)), "≤ 2.0× floor")
        ng = t(("mlp", depth, "minibng", "adamng"))
        row(f"MLP step, depth {depth}, AdamNG (ratio: AdamNG/Adam)", ng, adam, None, "")
    resnet = medians.get(("resnet", "minibng"), {})
    row("ResNet-20 step, batch 128, SGD Nesterov", t(("resnet", "minibng")), t(("resnet", "torch")),
        t(("resnet", "floor")), "≤ 1.2× PyTorch")
    if resnet.get("peak_mb") is not None:
        theirs = medians.get(("resnet", "torch"), {}).get("peak_mb")
        rows.append(f"| ResNet-20 step: peak memory, MB (rise of peak RSS) | {resnet['peak_mb']:.0f} | "
                    f"{'—' if theirs is None else f'{theirs:.0f}'} | — | {ratio(resnet['peak_mb'], theirs)} | — | "
                    f"≤ 1.0× PyTorch | {threads} | cpu |")
    adam = t(("lstm", "step", "minibng", "adam"))
    row("PTB LSTM step (2 × 200, batch 100, BPTT 40), Adam", adam, t(("lstm", "step", "torch", None)), None,
        "≤ 0.9× PyTorch")
    row("PTB LSTM step, AdamNG (ratio: AdamNG/Adam)", t(("lstm", "step", "minibng", "adamng")), adam)
    row("PTB: the two LSTM layers, forward + backward", t(("lstm", "lstm", "minibng", "adam")),
        t(("lstm", "lstm", "torch", None)))
    row("PTB: output layer + softmax loss, forward + backward", t(("lstm", "output", "minibng", "adam")),
        t(("lstm", "output", "torch", None)))
    torch_cnn = [s for s in (t(("textcnn", "torch-conv1d", None)), t(("textcnn", "torch-kim", None))) if s]
    adam = t(("textcnn", "minibng", "adam"))
    row("Text CNN step (batch 50, 3 widths × 100 maps), Adam", adam, min(torch_cnn) if torch_cnn else None,
        t(("textcnn", "floor", None)), "≤ 0.8× PyTorch")
    row("Text CNN step, AdamNG (ratio: AdamNG/Adam)", t(("textcnn", "minibng", "adamng")), adam)
    for blocks in optim_step.BLOCK_COUNTS:
        adam, sgdm = t(("optim", blocks, "minibng", "adam")), t(("optim", blocks, "minibng", "sgdm"))
        ng = t(("optim", blocks, "floor", "ng"))   # NG's passes alone in bare NumPy
        if None in (adam, sgdm, ng):
            continue
        row(f"Optimizer step, 10⁶ parameters, {blocks} blocks: Adam (vs torch foreach Adam)", adam,
            t(("optim", blocks, "torch", "adam")))
        row(f"… AdamNG (ratio: AdamNG/Adam; floor: Adam + NG's bare NumPy passes, {ratio(adam + ng, adam)}× Adam)",
            t(("optim", blocks, "minibng", "adamng")), adam, adam + ng, "≤ 1.3× Adam")
        row(f"… SGDM-NG (ratio: SGDM-NG/SGDM; SGDM {ms(sgdm)} ms; floor {ratio(sgdm + ng, sgdm)}× SGDM)",
            t(("optim", blocks, "minibng", "sgdmng")), sgdm, sgdm + ng, "≤ 1.6× SGDM")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="timed steps per process (default: each benchmark's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", default=",".join(BENCHMARKS), help=f"a subset of {','.join(BENCHMARKS)}")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    p.add_argument("--blas", choices=("native", "inherit"), default="native")
    args = p.parse_args()
    only = set(args.only.split(","))
    if only - set(BENCHMARKS):
        p.error(f"--only takes {','.join(BENCHMARKS)}, got {args.only}")
    if args.blas == "native":  # the workers inherit os.environ (harness.thread_env and optim_step.time_once)
        for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            os.environ.pop(name, None)
    os.environ["MINIBNG_BENCH_CLOCK"] = args.clock
    started, load_start = time.strftime("%Y-%m-%d %H:%M %Z"), load()
    print(f"machine: {machine()}", flush=True)
    todo = jobs(only, args.threads, args.steps)
    results = {key: [] for key, _, _ in todo}
    for r in range(args.rounds):
        for key, script, config in todo:
            results[key].append(run_one(script, config, args.threads))
        print(f"  round {r + 1}/{args.rounds} done (load {load()})", file=sys.stderr, flush=True)
    medians = {key: {field: statistics.median(v[field] for v in values) if values[0].get(field) is not None else None
                     for field in values[0]} for key, values in results.items()}
    print(f"started {started}, load average (1, 5, 15 min) {load_start} at the start, {load()} at the end; "
          f"{args.clock} clock; median of {args.rounds} interleaved rounds; times in ms\n")
    print("| work | minibng | PyTorch | floor | minibng/PyTorch | minibng/floor | target | threads | device |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |")
    print("\n".join(table(medians, args.threads)))
    print("\nfloor: the step's matrix products alone in NumPy (MLP, text CNN: bench/mlp.py, bench/textcnn.py; "
          "ResNet-20: as minibng's im2col chunks them, bench/conv.py). Ratio rows compare two minibng runs. "
          "Optimizer rows: bench/optim_step.py's worker, one thread, wall clock.")


if __name__ == "__main__":
    main()
