"""Time one training step of the paper's PTB language model (2 × 200 LSTM, embedding 200, vocabulary 10,000,
batch 100, BPTT 40, dropout 0.5, Adam) in minibng and in PyTorch, and the two parts that carry the work.

    python bench/lstm.py [--rounds 3] [--steps 5] [--threads 1] [--parts step,output,lstm]

Parts, each timed in its own process per framework, interleaved, medians over rounds:
- ``step``: embedding → dropout → LSTM (state carried from the previous step, detached) → dropout → Linear →
  softmax cross-entropy, backward, Adam step (minibng with Adam and AdamNG);
- ``output``: the output layer and the loss alone, forward and backward, on (40, 100, 200) hidden states —
  a (4000 × 200) × (200 × 10,000) product and a softmax over 10,000 words per token;
- ``lstm``: the two LSTM layers alone, forward and backward with a random upstream gradient.
Targets, and every benchmark in one table: bench/report.py and docs/performance.md.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

VOCAB, EMBED, HIDDEN, LAYERS, BATCH, BPTT, DROPOUT = 10_000, 200, 200, 2, 100, 40, 0.5


def minibng_part(part, optimizer, ids, targets, hidden, dy):
    from minibng import backend, models, nn, optim

    backend.manual_seed(0)
    if part == "step":
        model, loss_fn = models.lstm_lm(VOCAB, EMBED, HIDDEN, LAYERS, DROPOUT), nn.SoftmaxCrossEntropy()
        opt = optim.create(optimizer, model, **harness.no_norm_logging(optimizer))

        step = harness.training_step(model, loss_fn, opt, ids, targets)
    elif part == "output":
        layer, loss_fn = nn.Linear(HIDDEN, VOCAB, init=0.1), nn.SoftmaxCrossEntropy()

        def step():
            loss_fn(layer(hidden), targets)
            layer.backward(loss_fn.backward())
    else:
        lstm = nn.LSTM(EMBED, HIDDEN, LAYERS, dropout=DROPOUT, init=0.1)

        def step():
            lstm(hidden)
            lstm.backward(dy)
    return step


def torch_part(part, threads, ids, targets, hidden, dy):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ids, targets, hidden, dy = (torch.from_numpy(a) for a in (ids, targets, hidden, dy))
    if part == "step":
        embedding, lstm = torch.nn.Embedding(VOCAB, EMBED), torch.nn.LSTM(EMBED, HIDDEN, LAYERS, dropout=DROPOUT)
        output, drop = torch.nn.Linear(HIDDEN, VOCAB), torch.nn.Dropout(DROPOUT)
        params = [*embedding.parameters(), *lstm.parameters(), *output.parameters()]
        opt = torch.optim.Adam(params, lr=1e-3)
        state = [None]

        def step():
            opt.zero_grad()
            y, (h, c) = lstm(drop(embedding(ids)), state[0])
            state[0] = (h.detach(), c.detach())
            torch.nn.functional.cross_entropy(output(drop(y)).view(-1, VOCAB), targets.view(-1)).backward()
            opt.step()
    elif part == "output":
        output = torch.nn.Linear(HIDDEN, VOCAB)
        hidden.requires_grad_(True)

        def step():
            torch.nn.functional.cross_entropy(output(hidden).view(-1, VOCAB), targets.view(-1)).backward()
    else:
        lstm = torch.nn.LSTM(EMBED, HIDDEN, LAYERS, dropout=DROPOUT)
        hidden.requires_grad_(True)

        def step():
            y, _ = lstm(hidden)
            y.backward(dy)
    return step


def worker(config):
    import numpy as np

    rng = np.random.default_rng(0)
    ids, targets = (rng.integers(0, VOCAB, (BPTT, BATCH)) for _ in range(2))
    hidden = rng.uniform(-1, 1, (BPTT, BATCH, HIDDEN)).astype(np.float32)
    dy = rng.standard_normal((BPTT, BATCH, HIDDEN)).astype(np.float32)
    if config["kind"] == "minibng":
        step = minibng_part(config["part"], config.get("optimizer"), ids, targets, hidden, dy)
    else:
        step = torch_part(config["part"], config["threads"], ids, targets, hidden, dy)
    return harness.time_steps(step, config["steps"], warmup=config["warmup"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="step,output,lstm")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    parts = args.parts.split(",")
    configs = []
    for part in parts:
        configs.append({"kind": "minibng", "part": part, "optimizer": "adam"})
        if part == "step":
            configs.append({"kind": "minibng", "part": part, "optimizer": "adamng"})
        if harness.torch_available():
            configs.append({"kind": "torch", "part": part})
    for c in configs:
        c.update(steps=args.steps, warmup=args.warmup)
    results = harness.measure(__file__, configs, args.rounds, args.threads)
    times = {(c["kind"], c["part"], c.get("optimizer")): harness.median(r) for c, r in zip(configs, results)}
    tokens = BPTT * BATCH
    print(f"\nPTB LSTM (2 × {HIDDEN}, vocabulary {VOCAB}, batch {BATCH}, BPTT {BPTT}), {args.threads} thread(s), "
          f"median of {args.rounds} rounds × {args.steps} steps")
    print(f"{'part':<8}{'minibng ms':>12}{'torch ms':>10}{'ratio':>8}{'minibng tok/s':>15}{'torch tok/s':>13}")
    for part in parts:
        mine, theirs = times["minibng", part, "adam"], times.get(("torch", part, None))
        ratio = f"{mine / theirs:>8.2f}" if theirs else f"{'—':>8}"
        torch_rate = f"{tokens / theirs:>13.0f}" if theirs else f"{'—':>13}"
        print(f"{part:<8}{mine * 1e3:>12.1f}{(theirs or float('nan')) * 1e3:>10.1f}{ratio}{tokens / mine:>15.0f}{torch_rate}")
    if "step" in parts:
        ng, adam = times["minibng", "step", "adamng"], times["minibng", "step", "adam"]
        print(f"AdamNG step {ng * 1e3:.1f} ms, {ng / adam:.2f}× Adam's")


if __name__ == "__main__":
    harness.entry(worker, main)
