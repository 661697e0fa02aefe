"""Conv2d forward+backward on ResNet-20's layer shapes, and a whole ResNet-20 training step, minibng vs PyTorch.

    python bench/conv.py [--rounds 3] [--steps 5] [--threads 1] [--batch 128] [--skip-layers]
    python bench/conv.py --device gpu        # the ResNet-20 step on CuPy against PyTorch on CUDA (time only)

Every measurement runs in its own process (bench/harness.py), rounds interleaved, medians reported.
Time: median wall time of ``steps`` calls after 2 warm-up calls.  Peak memory: the rise of the process's
resident-set high-water mark (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) over the first forward+backward
of a fresh process, taken after the inputs, dy and the layer exist and a two-image warm-up pass has done the
one-time lazy set-up; measured the same way for both frameworks (the high-water mark is what the pass needed).  For NumPy the
worker also reports ``tracemalloc``'s peak of traced allocations (NumPy registers its buffers with it), a
cross-check that does not depend on the allocator.
Kind ``floor`` times the step's convolution GEMMs alone, as minibng chunks them.  Targets, and every benchmark in one
table: bench/report.py and docs/performance.md.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# (in, out, size, stride): every distinct 3×3 convolution of ResNet-20 (padding 1), and option B's projections
LAYERS = [(3, 16, 32, 1), (16, 16, 32, 1), (16, 32, 32, 2), (32, 32, 16, 1), (32, 64, 16, 2), (64, 64, 8, 1)]


# ResNet-20's convolutions: (in, out, output size, stride, how many, input gradient needed)
RESNET20_CONVS = [(3, 16, 32, 1, 1, False), (16, 16, 32, 1, 6, True), (16, 32, 16, 2, 1, True),
                  (32, 32, 16, 1, 5, True), (32, 64, 8, 2, 1, True), (64, 64, 8, 1, 5, True)]


def _floor_step(config, x, y):
    """The matrix products of one ResNet-20 step as minibng's im2col convolutions chunk them, and nothing else: per
    convolution and chunk of images, the forward X Wᶜ, the weight gradient Xᵀ dYᵀ and (but for the first layer) the
    input gradient — the rotated-kernel product for stride 1, dYᵀ Wᶜᵀ for stride 2 — on preallocated buffers: no
    im2col copies, no batch norm, activations, loss or optimizer.  What an im2col framework on this BLAS cannot
    go below."""
    import numpy as np
    from minibng.nn.conv import _CPU_CHUNK_BYTES
    from minibng.nn.im2col import batch_chunks

    rng, n, products = np.random.default_rng(0), x.shape[0], []

    def add(rows, k, cols, bytes_per_image, count, transposed=False):
        chunks = batch_chunks(n, bytes_per_image, _CPU_CHUNK_BYTES)
        a = rng.random((chunks[0][1] * rows, k), dtype=np.float32)
        b = rng.random((rows * chunks[0][1], cols) if transposed else (k, cols), dtype=np.float32)
        for start, stop in chunks * count:
            products.append((a[:(stop - start) * rows].T if transposed else a[:(stop - start) * rows],
                             b[:(stop - start) * rows] if transposed else b))

    for c_in, c_out, size, stride, count, input_grad in RESNET20_CONVS:
        rows, in_rows, item = size * size, (size * stride) ** 2, 4
        add(rows, 9 * c_in, c_out, 9 * c_in * rows * item, count)                   # forward
        add(rows, 9 * c_in, c_out, 9 * c_in * rows * item, count, transposed=True)  # weight gradient
        if input_grad and stride == 1:
            add(in_rows, 9 * c_out, c_in, 9 * c_out * in_rows * item, count)        # rotated kernel
        elif input_grad:
            add(rows, c_out, 9 * c_in, 9 * c_in * rows * item, count)                # dYᵀ Wᶜᵀ before col2im

    def run():
        for a, b in products:
            a @ b
    return run


def _rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _torch_resnet20(torch):
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)
            self.c2, self.b2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
            self.extra = c_out - c_in

        def forward(self, x):
            y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
            skip = x if not self.extra else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 0, self.extra))  # option A
            return F.relu(y + skip)

    layers, c_in = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for stage, width in enumerate((16, 32, 64)):
        for b in range(3):
            layers.append(Block(c_in, width, 2 if b == 0 and stage else 1))
            c_in = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def _minibng_step(config, x, y):
    from minibng import models, nn, optim

    model = models.resnet_cifar(20, input_grad=False).to(config["device"])  # no gradient for the images, as PyTorch
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.create("sgdm", model, nesterov=True, weight_decay=1e-4, **harness.no_norm_logging("sgdm"))
    return harness.training_step(model, loss_fn, opt, *_on(config["device"], x, y))


def _on(device, *arrays):
    from minibng import backend

    return [backend.to_device(a, device) for a in arrays]


def _sync(config):
    """A function that waits for the configuration's device to finish its queued work."""
    if config["device"] == "cpu":
        return lambda: None
    if config["kind"] == "torch":
        import torch

        return torch.cuda.synchronize
    import cupy

    return cupy.cuda.Device().synchronize


def _torch_step(config, x, y):
    import torch

    where = "cpu" if config["device"] == "cpu" else "cuda"
    model = _torch_resnet20(torch).to(where)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    tx, ty = torch.from_numpy(x).to(where), torch.from_numpy(y).to(where)
    return harness.torch_training_step(model, opt, tx, ty)


def _conv_pass(config, x, dy):
    c_in, c_out, _, stride = config["layer"]
    if config["kind"] == "minibng":
        from minibng.nn.conv import Conv2d

        layer = Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)

        def run():
            layer(x)
            layer.backward(dy)
        return run
    import torch

    layer = torch.nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
    tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

    def run():
        layer(tx).backward(tdy)
        tx.grad = None
    return run


def worker(config):
    import numpy as np

    if config["kind"] == "torch":
        import torch

        torch.set_num_threads(config["threads"])
    rng = np.random.default_rng(0)
    batch = config["batch"]
    if config["what"] == "step":
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, batch)
        make = {"minibng": _minibng_step, "torch": _torch_step, "floor": _floor_step}[config["kind"]]
        run = make(config, x, y)
        if config["device"] != "cpu":  # host memory says nothing of the device's: time only
            return {"seconds": harness.time_steps(run, config["steps"], warmup=2, sync=_sync(config)),
                    "peak_mb": None, "traced_mb": None}
        warm_up = lambda n: make(config, x[:n], y[:n])()  # noqa: E731
    else:
        c_in, c_out, size, stride = config["layer"]
        x = rng.standard_normal((batch, c_in, size, size)).astype(np.float32)
        dy = rng.standard_normal((batch, c_out, (size - 1) // stride + 1, (size - 1) // stride + 1)).astype(np.float32)
        run = _conv_pass(config, x, dy)
        warm_up = lambda n: _conv_pass(config, x[:n], dy[:n])()  # noqa: E731
    # ru_maxrss is a high-water mark since the process started: a warm-up on two images does the one-time lazy
    # set-up (thread pools, kernel caches) at almost no memory, then the first full pass is the one measured
    warm_up(2)
    before, traced = _rss_mb(), None
    if config["kind"] == "minibng":
        import tracemalloc

        tracemalloc.start()
        run()
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    else:
        run()
    peak = _rss_mb() - before
    seconds = harness.time_steps(run, config["steps"], warmup=2)
    return {"seconds": seconds, "peak_mb": peak, "traced_mb": traced}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--skip-layers", action="store_true", help="time only the whole training step")
    p.add_argument("--device", default="cpu", help="cpu (default) or gpu: the training step only, on the GPU")
    args = p.parse_args()
    args.skip_layers |= args.device != "cpu"
    kinds = ["minibng"] + (["torch"] if harness.torch_available() else [])
    configs = [] if args.skip_layers else [{"what": "conv", "layer": list(layer), "kind": k} for layer in LAYERS
                                           for k in kinds]
    configs += [{"what": "step", "kind": k} for k in kinds]
    for c in configs:
        c.update(steps=args.steps, batch=args.batch, device=args.device)
    results = harness.measure(__file__, configs, args.rounds, args.threads)
    summary = {}
    for c, rs in zip(configs, results):
        key = (c["what"], tuple(c.get("layer", ())), c["kind"])
        summary[key] = {field: harness.median([r[field] for r in rs]) if rs[0][field] is not None else None
                        for field in ("seconds", "peak_mb", "traced_mb")}
    print(f"\n{args.device}, batch {args.batch}, {args.threads} thread(s), median of {args.rounds} rounds × {args.steps} calls; "
          f"memory: rise of peak RSS over one pass (tracemalloc peak for minibng in brackets)")
    print(f"{'what':<24}{'minibng ms':>11}{'torch ms':>10}{'ratio':>7}{'minibng MB':>18}{'torch MB':>10}{'ratio':>7}")
    for what, layer in dict.fromkeys((k[0], k[1]) for k in summary):
        mine, theirs = summary[what, layer, "minibng"], summary.get((what, layer, "torch"))
        name = "ResNet-20 training step" if what == "step" else "conv {}→{} {}² s{}".format(*layer)
        t_ms = f"{theirs['seconds'] * 1e3:>10.1f}" if theirs else f"{'—':>10}"
        t_ratio = f"{mine['seconds'] / theirs['seconds']:>7.2f}" if theirs else f"{'—':>7}"
        measured = mine["peak_mb"] is not None
        mem = f"{mine['peak_mb']:.0f} [{mine['traced_mb']:.0f}]" if measured else "—"
        t_mem = f"{theirs['peak_mb']:>10.0f}" if theirs and measured else f"{'—':>10}"
        m_ratio = f"{mine['peak_mb'] / max(theirs['peak_mb'], 1e-9):>7.2f}" if theirs and measured else f"{'—':>7}"
        print(f"{name:<24}{mine['seconds'] * 1e3:>11.1f}{t_ms}{t_ratio}{mem:>18}{t_mem}{m_ratio}")


if __name__ == "__main__":
    harness.entry(worker, main)
