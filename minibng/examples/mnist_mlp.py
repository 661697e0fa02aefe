"""Figure 1 of the paper: deep sigmoid MLPs on MNIST, block-normalized optimizers against their plain versions.

    python -m minibng.examples.mnist_mlp                       # depth 18, Adam vs AdamNG (under a minute on 2 cores)
    python -m minibng.examples.mnist_mlp --device gpu
    python -m minibng.examples.mnist_mlp --paper               # Figure 1: depths 6/12/18, six optimizers
    python -m minibng.examples.mnist_mlp --depth 12 --optimizers adam,adamng --epochs 3
    python -m minibng.examples.mnist_mlp --seeds 0,1,2         # three runs each: mean and spread

Writes ``DIR/metrics.csv`` (optimizer, depth, seed, epoch, train_loss, test_loss, test_accuracy, seconds),
``DIR/curves.png`` (Figure 1's layout; with several seeds the mean and a band from the lowest to the highest
seed), ``DIR/gradnorms.png`` (per-layer gradient norms, first seed) and one folder per run with its checkpoint
and logs; ``--resume`` continues every run from its last finished epoch.
"""
from __future__ import annotations

import os

import numpy as np

from .. import backend, models, nn, optim, plot
from ..checkpoint import write_table
from ..data import Batches, mnist
from .common import (add_common_flags, load_or_exit, locked_output, optimizer_list, parser, print_table,
                     run_folder, seed_list, train_run)

PAPER_OPTIMIZERS = ["sgdm", "sgdmng", "adagrad", "adagradng", "adam", "adamng"]
PAPER_EPOCHS = {6: 20, 12: 30, 18: 50}  # Figure 1's x axes
DEFAULT_EPOCHS = 8
COLUMNS = ["optimizer", "depth", "seed", "epoch", "train_loss", "test_loss", "test_accuracy", "seconds"]


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
    p.add_argument("--seeds", default="0", help="comma list of seeds, one run each (weights and data order)")
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
    args.seed_list = seed_list(p, args.seeds)
    return args


def load_data(args):
    """Pixels scaled to [0, 1] and flattened to 784 features (host arrays; each run moves them to the device once)."""
    train_x, train_y, test_x, test_y = load_or_exit(mnist.load, args.dataset, data_dir=args.data_dir)
    train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    scale = lambda images: (images.reshape(len(images), 28 * 28) / np.float32(255)).astype(np.float32)  # noqa: E731
    return (scale(train_x), train_y.astype(np.int64)), (scale(test_x), test_y.astype(np.int64))


def run_one(args, depth, name, seed, train_set, test_set):
    """Train one (depth, optimizer, seed): every optimizer of a seed starts from the same weights and sees the same
    data order; returns (history, note)."""
    train = Batches(*train_set, args.batch_size, shuffle=True, seed=seed, device=args.device)
    test = Batches(*test_set, 1000, shuffle=False, device=args.device)
    backend.manual_seed(seed)
    model = models.mlp(depth, input_grad=False).to(args.device)
    opt = optim.create(name, model, **({} if args.lr is None else {"lr": args.lr}))
    epochs = args.epochs or (PAPER_EPOCHS.get(depth, 20) if args.paper else DEFAULT_EPOCHS)
    config = {"depth": depth, "optimizer": name, "epochs": epochs, "batch_size": args.batch_size, "lr": opt.lr,
              "seed": seed, "dataset": args.dataset, "limit": args.limit}
    return train_run(model, nn.SoftmaxCrossEntropy(), opt, train, epochs, {"test": test},
                     run_folder(args.out, f"depth{depth}", name, f"seed{seed}"), config, args,
                     f"depth {depth} {name} seed {seed}")


def main(argv=None):
    args = parse_args(argv)
    with locked_output(args.out):
        experiment(args)


def experiment(args):
    """Every (depth, optimizer) run, then the table and the figures."""
    train_set, test_set = load_data(args)
    rows, histories, notes = [], {}, {}
    for depth in args.depths:
        for name in args.optimizer_names:
            for seed in args.seed_list:
                history, note = run_one(args, depth, name, seed, train_set, test_set)
                histories[depth, name, seed], notes[depth, name, seed] = history, note
                rows += [{"optimizer": name, "depth": depth, "seed": seed, **h} for h in history]
                if history:
                    h = history[-1]
                    print(f"depth {depth:>2} {name:<10} seed {seed:>2} epoch {h['epoch']:>3}  train {h['train_loss']:.4f}  "
                          f"test {h['test_loss']:.4f}  accuracy {h['test_accuracy']:.4f}  {note or ''}", flush=True)
    write_table(os.path.join(args.out, "metrics.csv"), rows, COLUMNS)
    seeds = f"{len(args.seed_list)} seeds, mean and range" if len(args.seed_list) > 1 else f"seed {args.seed_list[0]}"
    if rows:  # every run may have diverged in its first epoch: nothing to draw
        plot.curves(rows, os.path.join(args.out, "curves.png"), metrics=("train_loss", "test_loss"),
                    title=f"{args.dataset}: sigmoid MLP, batch {args.batch_size}, {seeds}")
    deepest, first_seed = max(args.depths), args.seed_list[0]
    drawn = {n: histories[deepest, n, first_seed] for n in args.optimizer_names if histories[deepest, n, first_seed]}
    if drawn:
        plot.block_norm_map(drawn, os.path.join(args.out, "gradnorms.png"),
                            title=f"depth {deepest}, seed {first_seed}: mean $\\|g^i\\|$ per layer "
                                  "(bottom = first layer)")

    def cell(name, depth):
        finals = [histories[depth, name, s][-1]["train_loss"] for s in args.seed_list if histories[depth, name, s]]
        diverged = "!" if any(notes[depth, name, s] for s in args.seed_list) else ""
        if not finals:
            return "—" + diverged
        if len(args.seed_list) == 1:
            h = histories[depth, name, args.seed_list[0]][-1]
            return f"{h['train_loss']:.3f}/{h['test_loss']:.3f}" + diverged
        return f"{np.mean(finals):.3f} [{min(finals):.3f}, {max(finals):.3f}]" + diverged

    what = ("training/test objective" if len(args.seed_list) == 1
            else f"training objective, mean [lowest, highest] over seeds {','.join(map(str, args.seed_list))}")
    print_table(f"final {what} ({args.dataset}; ! = diverged, stopped early)",
                args.optimizer_names, [f"depth {d}" for d in args.depths],
                lambda name, column: cell(name, int(column.split()[1])), width=26 if len(args.seed_list) > 1 else 16)
    figures = " and ".join(f for f, made in (("curves.png", rows), ("gradnorms.png", drawn)) if made)
    print(f"\nwrote {os.path.join(args.out, 'metrics.csv')}"
          + (f" and {figures}" if figures else " (no figure: no run finished an epoch)"))


if __name__ == "__main__":
    main()
