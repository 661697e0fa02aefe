"""Figure 1 of the paper: deep sigmoid MLPs on MNIST, block-normalized optimizers against their plain versions.

    python -m minibng.examples.mnist_mlp                       # depth 18, Adam vs AdamNG (under a minute on 2 cores)
    python -m minibng.examples.mnist_mlp --device gpu
    python -m minibng.examples.mnist_mlp --paper               # Figure 1: depths 6/12/18, six optimizers
    python -m minibng.examples.mnist_mlp --depth 12 --optimizers adam,adamng --epochs 3

Writes ``DIR/metrics.csv`` (optimizer, depth, epoch, train_loss, test_loss, test_accuracy, seconds),
``DIR/curves.png`` (Figure 1's layout), ``DIR/gradnorms.png`` (per-layer gradient norms) and one folder per run
with its checkpoint and logs; ``--resume`` continues every run from its last finished epoch.
"""
from __future__ import annotations

import os

import numpy as np

from .. import backend, models, nn, optim, plot
from ..checkpoint import write_table
from ..data import Batches, mnist
from .common import add_common_flags, load_or_exit, optimizer_list, parser, print_table, run_folder, train_run

PAPER_OPTIMIZERS = ["sgdm", "sgdmng", "adagrad", "adagradng", "adam", "adamng"]
PAPER_EPOCHS = {6: 20, 12: 30, 18: 50}  # Figure 1's x axes
DEFAULT_EPOCHS = 8
COLUMNS = ["optimizer", "depth", "epoch", "train_loss", "test_loss", "test_accuracy", "seconds"]


def parse_args(argv=None):
    p = parser("mnist_mlp", __doc__)
    p.add_argument("--depth", default=None,
                   help="number of weight layers, one or a comma list (default 18; --paper: 6,12,18)")
    p.add_argument("--optimizers", default="adam,adamng",
                   help=f"comma list of preset names, or 'paper' for {','.join(PAPER_OPTIMIZERS)}")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs per run (default {DEFAULT_EPOCHS}; --paper: 20/30/50 for depth 6/12/18)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=None, help="override every optimizer's learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images only (quick trials)")
    p.add_argument("--paper", action="store_true",
                   help="Figure 1's protocol: six optimizers, depths 6,12,18 (or --depth), 20/30/50 epochs")
    add_common_flags(p, "runs/mnist_mlp")
    args = p.parse_args(argv)
    if args.paper:
        args.depth, args.optimizers = args.depth or "6,12,18", "paper"
    args.depths = [int(d) for d in str(args.depth or 18).split(",")]
    args.optimizer_names = optimizer_list(p, args.optimizers, PAPER_OPTIMIZERS)
    return args


def load_data(args):
    """Pixels scaled to [0, 1] and flattened to 784 features (host arrays; each run moves them to the device once)."""
    train_x, train_y, test_x, test_y = load_or_exit(mnist.load, args.dataset, data_dir=args.data_dir)
    train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    scale = lambda images: (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32)  # noqa: E731
    return (scale(train_x), train_y.astype(np.int64)), (scale(test_x), test_y.astype(np.int64))


def run_one(args, depth, name, train_set, test_set):
    """Train one (depth, optimizer) pair from the same seed and the same data order; returns (history, note)."""
    train = Batches(*train_set, args.batch_size, shuffle=True, seed=args.seed, device=args.device)
    test = Batches(*test_set, 1000, shuffle=False, device=args.device)
    backend.manual_seed(args.seed)
    model = models.mlp(depth, input_grad=False).to(args.device)
    opt = optim.create(name, model, **({} if args.lr is None else {"lr": args.lr}))
    epochs = args.epochs or (PAPER_EPOCHS.get(depth, 20) if args.paper else DEFAULT_EPOCHS)
    config = {"depth": depth, "optimizer": name, "epochs": epochs, "batch_size": args.batch_size, "lr": opt.lr,
              "seed": args.seed, "dataset": args.dataset}
    return train_run(model, nn.SoftmaxCrossEntropy(), opt, train, epochs, {"test": test},
                     run_folder(args.out, f"depth{depth}", name), config, args, f"depth {depth} {name}")


def main(argv=None):
    args = parse_args(argv)
    train_set, test_set = load_data(args)
    rows, histories, notes = [], {}, {}
    for depth in args.depths:
        for name in args.optimizer_names:
            history, notes[depth, name] = run_one(args, depth, name, train_set, test_set)
            histories[depth, name] = history
            rows += [{"optimizer": name, "depth": depth, **h} for h in history]
            if history:
                h = history[-1]
                print(f"depth {depth:>2} {name:<10} epoch {h['epoch']:>3}  train {h['train_loss']:.4f}  "
                      f"test {h['test_loss']:.4f}  accuracy {h['test_accuracy']:.4f}  {notes[depth, name] or ''}",
                      flush=True)
    write_table(os.path.join(args.out, "metrics.csv"), rows, COLUMNS)
    plot.curves(rows, os.path.join(args.out, "curves.png"), metrics=("train_loss", "test_loss"),
                title=f"{args.dataset}: sigmoid MLP, batch {args.batch_size}")
    deepest = max(args.depths)
    plot.block_norm_map({n: histories[deepest, n] for n in args.optimizer_names if histories[deepest, n]},
                        os.path.join(args.out, "gradnorms.png"),
                        title=f"depth {deepest}: mean $\\|g^i\\|$ per layer (bottom = first layer)")

    def cell(name, depth):
        h = histories[depth, name]
        text = f"{h[-1]['train_loss']:.3f}/{h[-1]['test_loss']:.3f}" if h else "—"
        return text + ("!" if notes[depth, name] else "")

    print_table(f"final training/test objective ({args.dataset}; ! = diverged, stopped early)",
                args.optimizer_names, [f"depth {d}" for d in args.depths],
                lambda name, column: cell(name, int(column.split()[1])), width=16)
    print(f"\nwrote {os.path.join(args.out, 'metrics.csv')}, curves.png and gradnorms.png")


if __name__ == "__main__":
    main()
