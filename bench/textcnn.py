"""Time one training step of Kim's sentence CNN (the paper's §4.5) in minibng and in PyTorch.

    python bench/textcnn.py [--rounds 5] [--steps 20] [--threads 1] [--optimizer adam]

The step: batch 50 sentences of 56 word ids, vocabulary 18,765 (RT polarity's), 128-dimensional word vectors,
filters of widths 3, 4, 5 with 100 maps each, ReLU, max over time, dropout 0.5, a linear layer to 2 classes,
softmax cross-entropy, then an Adam (or AdamNG) step over every parameter, the dense 18,765 × 128 word table
included.  Configurations: minibng with the chosen optimizer (and AdamNG beside Adam), PyTorch with Adam and
its convolution as nn.Conv1d over the word vectors as channels (the same layout as minibng's) and as Kim's
nn.Conv2d(1, 100, (h, 128)) over the (N, 1, L, k) view; and the floor: the step's matrix products alone in
NumPy.  Each runs in its own process (bench/harness.py), rounds interleaved, medians reported.
Targets, and every benchmark in one table: bench/report.py and docs/performance.md.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BATCH, LENGTH, VOCAB, EMBED, WIDTHS, MAPS, CLASSES = 50, 56, 18765, 128, (3, 4, 5), 100, 2


def _minibng_step(config, ids, labels):
    from minibng import backend, nn, optim
    from minibng.models.text_cnn import text_cnn

    backend.manual_seed(0)
    model = text_cnn(VOCAB, EMBED, WIDTHS, MAPS)
    loss_fn = nn.SoftmaxCrossEntropy(check=False)
    opt = optim.create(config["optimizer"], model, **harness.no_norm_logging(config["optimizer"]))

    step = harness.training_step(model, loss_fn, opt, ids, labels)
    return step


def _torch_step(config, ids, labels):
    import torch

    torch.set_num_threads(config["threads"])
    torch.manual_seed(0)
    kim = config["kind"] == "torch-kim"

    class TextCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, EMBED)
            self.convs = torch.nn.ModuleList(
                torch.nn.Conv2d(1, MAPS, (h, EMBED)) if kim else torch.nn.Conv1d(EMBED, MAPS, h) for h in WIDTHS)
            self.drop, self.out = torch.nn.Dropout(0.5), torch.nn.Linear(MAPS * len(WIDTHS), CLASSES)

        def forward(self, x):
            e = self.embed(x)
            e = e.unsqueeze(1) if kim else e.transpose(1, 2)
            pooled = [torch.relu(c(e)).flatten(2).amax(dim=2) for c in self.convs]
            return self.out(self.drop(torch.cat(pooled, dim=1)))

    model = TextCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(ids), torch.from_numpy(labels)
    return harness.torch_training_step(model, opt, tx, ty)


def _floor_step(rng):
    """Per width h: forward (N·T_h, h·k) @ (h·k, maps), backward Xᵀ dY and dY Wᵀ; then the 300 × 2 layer."""
    import numpy as np

    mats = []
    for h in WIDTHS:
        rows = BATCH * (LENGTH - h + 1)
        mats.append((rng.random((rows, h * EMBED), dtype=np.float32), rng.random((h * EMBED, MAPS), dtype=np.float32),
                     rng.random((rows, MAPS), dtype=np.float32)))

    def step():
        for x, w, dy in mats:
            x @ w
            x.T @ dy
            dy @ w.T
    return step


def worker(config):
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (BATCH, LENGTH))
    labels = rng.integers(0, CLASSES, BATCH)
    if config["kind"] == "minibng":
        step = _minibng_step(config, ids, labels)
    elif config["kind"].startswith("torch"):
        step = _torch_step(config, ids, labels)
    else:
        step = _floor_step(rng)
    return harness.time_steps(step, config["steps"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    configs = [{"kind": "minibng", "optimizer": "adam"}, {"kind": "minibng", "optimizer": "adamng"}, {"kind": "floor"}]
    if harness.torch_available():
        configs += [{"kind": "torch-conv1d"}, {"kind": "torch-kim"}]
    for c in configs:
        c["steps"] = args.steps
    results = harness.measure(__file__, configs, args.rounds, args.threads)
    times = {(c["kind"], c.get("optimizer")): harness.median(r) for c, r in zip(configs, results)}
    print(f"\ntext CNN training step: batch {BATCH}, length {LENGTH}, vocabulary {VOCAB}, embed {EMBED}, widths "
          f"{WIDTHS}, {MAPS} maps; {args.threads} thread(s), median of {args.rounds} rounds × {args.steps} steps")
    adam = times["minibng", "adam"]
    for (kind, name), seconds in times.items():
        label = f"{kind} {name}" if name else kind
        print(f"  {label:<16} {seconds * 1e3:8.2f} ms   {seconds / adam:5.2f}× minibng adam")
    torch_times = [v for (k, _), v in times.items() if k.startswith("torch")]
    if torch_times:
        print(f"minibng adam / fastest PyTorch: {adam / min(torch_times):.2f} (target ≤ 2)")


if __name__ == "__main__":
    harness.entry(worker, main)
