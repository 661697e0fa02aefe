"""Figure 1 of the paper: deep sigmoid MLPs on MNIST, block-normalized optimizers against their plain versions.

    python -m minibng.examples.mnist_mlp                       # depth 18, Adam vs AdamNG (~3 min on a laptop CPU)
    python -m minibng.examples.mnist_mlp --device gpu
    python -m minibng.examples.mnist_mlp --paper               # Figure 1: depths 6/12/18, six optimizers
    python -m minibng.examples.mnist_mlp --depth 12 --optimizers adam,adamng --epochs 3

Writes ``DIR/metrics.csv`` (optimizer, depth, epoch, train_loss, test_loss, test_accuracy, seconds),
``DIR/curves.png`` (Figure 1's layout), ``DIR/gradnorms.png`` (per-layer gradient norms) and one folder per run
with its checkpoint and logs; ``--resume`` continues every run from its last finished epoch.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .. import backend, models, nn, optim, plot
from ..checkpoint import write_table
from ..data import Batches, DatasetError, mnist
from ..train import NonFiniteError, Trainer

PAPER_OPTIMIZERS = ["sgdm", "sgdmng", "adagrad", "adagradng", "adam", "adamng"]
PAPER_EPOCHS = {6: 20, 12: 30, 18: 50}  # Figure 1's x axes
COLUMNS = ["optimizer", "depth", "epoch", "train_loss", "test_loss", "test_accuracy", "seconds"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m minibng.examples.mnist_mlp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depth", default="18", help="number of weight layers, one or a comma list (default 18)")
    p.add_argument("--optimizers", default="adam,adamng",
                   help=f"comma list of preset names, or 'paper' for {','.join(PAPER_OPTIMIZERS)}")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default 8; --paper: 20/30/50 by depth)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=None, help="override every optimizer's learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ or fashion-mnist/ (default: search)")
    p.add_argument("--out", default="runs/mnist_mlp", help="output folder (default runs/mnist_mlp)")
    p.add_argument("--resume", action="store_true", help="continue each run from its last checkpoint")
    p.add_argument("--paper", action="store_true", help="Figure 1's protocol: depths 6,12,18, six optimizers")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images only (quick trials)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = p.parse_args(argv)
    if args.paper:
        args.depth, args.optimizers = "6,12,18", "paper"
    args.depths = [int(d) for d in str(args.depth).split(",")]
    args.optimizer_names = PAPER_OPTIMIZERS if args.optimizers == "paper" else args.optimizers.split(",")
    unknown = [n for n in args.optimizer_names if n not in optim.preset_names()]
    if unknown:
        p.error(f"unknown optimizer(s) {unknown}; choose from {', '.join(optim.preset_names())}")
    return args


def load_data(args):
    try:
        train_x, train_y, test_x, test_y = mnist.load(args.dataset, data_dir=args.data_dir)
    except DatasetError as e:
        raise SystemExit(f"error: {e}") from None
    train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    scale = lambda images: (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32)  # noqa: E731
    train = Batches(scale(train_x), train_y.astype(np.int64), args.batch_size, shuffle=True, seed=args.seed,
                    device=args.device)
    test = Batches(scale(test_x), test_y.astype(np.int64), 1000, shuffle=False, device=args.device)
    return train, test


def run_one(args, depth, name, train, test):
    """Train one (depth, optimizer) pair; returns its history (possibly cut short by divergence)."""
    backend.manual_seed(args.seed)
    model = models.mlp(depth).to(args.device)
    overrides = {} if args.lr is None else {"lr": args.lr}
    opt = optim.create(name, model, **overrides)
    epochs = args.epochs or (PAPER_EPOCHS.get(depth, 20) if args.paper else 8)
    config = {"depth": depth, "optimizer": name, "epochs": epochs, "batch_size": args.batch_size, "lr": opt.lr,
              "seed": args.seed, "dataset": args.dataset}
    trainer = Trainer(model, nn.SoftmaxCrossEntropy(), opt, train, epochs, evaluate={"test": test},
                      out=os.path.join(args.out, f"depth{depth}-{name}"), config=config,
                      progress=not args.no_progress, description=f"depth {depth} {name}")
    try:
        return trainer.fit(resume=args.resume), None
    except NonFiniteError as e:
        print(f"  {e}", file=sys.stderr)
        return trainer.history, "diverged"


def main(argv=None):
    args = parse_args(argv)
    train, test = load_data(args)
    rows, histories, notes = [], {}, {}
    for depth in args.depths:
        for name in args.optimizer_names:
            history, note = run_one(args, depth, name, train, test)
            histories[(depth, name)], notes[(depth, name)] = history, note
            rows += [{"optimizer": name, "depth": depth, **h} for h in history]
            last = history[-1] if history else {}
            print(f"depth {depth:>2} {name:<10} epoch {last.get('epoch', 0):>3}  train {last.get('train_loss', float('nan')):.4f}  "
                  f"test {last.get('test_loss', float('nan')):.4f}  acc {last.get('test_accuracy', float('nan')):.4f}"
                  + (f"  ({note})" if note else ""), flush=True)
    os.makedirs(args.out, exist_ok=True)
    write_table(os.path.join(args.out, "metrics.csv"), rows, COLUMNS)
    plot.curves(rows, os.path.join(args.out, "curves.png"), metrics=("train_loss", "test_loss"),
                title=f"{args.dataset}: sigmoid MLP, batch {args.batch_size}")
    deepest = max(args.depths)
    plot.block_norm_map({name: histories[(deepest, name)] for name in args.optimizer_names if histories[(deepest, name)]},
                        os.path.join(args.out, "gradnorms.png"),
                        title=f"depth {deepest}: mean $\\|g^i\\|$ per layer (bottom = first layer)")
    print_table(rows, args, notes)
    print(f"\nwrote {os.path.join(args.out, 'metrics.csv')}, curves.png and gradnorms.png")


def print_table(rows, args, notes):
    print(f"\nfinal epoch ({args.dataset}):")
    print(f"{'depth':>5}  {'optimizer':<11} {'epochs':>6} {'train loss':>10} {'test loss':>10} {'test acc':>9}")
    for depth in args.depths:
        for name in args.optimizer_names:
            mine = [r for r in rows if r["depth"] == depth and r["optimizer"] == name]
            if not mine:
                print(f"{depth:>5}  {name:<11} {'—':>6}  {notes.get((depth, name)) or ''}")
                continue
            r = mine[-1]
            print(f"{depth:>5}  {name:<11} {r['epoch']:>6} {r['train_loss']:>10.4f} {r['test_loss']:>10.4f} "
                  f"{r['test_accuracy']:>9.4f}  {notes.get((depth, name)) or ''}")


if __name__ == "__main__":
    main()
