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

import itertools
import os

import numpy as np

from .. import backend, models, optim, plot
from ..data import Batches, mnist
from . import common

PAPER_OPTIMIZERS = ["sgdm", "sgdmng", "adagrad", "adagradng", "adam", "adamng"]
PAPER_EPOCHS = {6: 20, 12: 30, 18: 50}  # Figure 1's x axes
COLUMNS = ["optimizer", "depth", "seed", "epoch", "train_loss", "test_loss", "test_accuracy", "seconds"]


def parse_args(argv=None):
    p = common.parser("mnist_mlp", __doc__, datasets=["mnist", "fashion-mnist"], optimizers="adam,adamng", epochs=8,
                      batch_size=100, threads=1, limit="training images (of 60,000)",
                      paper={"depth": "6,12,18", "optimizers": "paper", "epochs": None},
                      paper_help="Figure 1: depths 6,12,18, six optimizers, 20/30/50 epochs by depth (or --epochs); "
                                 "about 20 min on a 2-core CPU")
    p.add_argument("--depth", default="18", help="number of weight layers, one or a comma list")
    args = common.parse(p, argv, PAPER_OPTIMIZERS)
    args.depths = common.int_list(p, "--depth", args.depth, 2)
    return args


def load_data(args):
    """Pixels scaled to [0, 1] and flattened to 784 features (host arrays; each run moves them to the device once)."""
    train_x, train_y, test_x, test_y = mnist.load(args.dataset, data_dir=args.data_dir)
    train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    scale = lambda images: (images.reshape(len(images), 28 * 28) / np.float32(255)).astype(np.float32)  # noqa: E731
    return (scale(train_x), train_y.astype(np.int64)), (scale(test_x), test_y.astype(np.int64))


def run_one(experiment, depth, name, seed, train_set, test_set):
    """Train one (depth, optimizer, seed): every optimizer of a seed starts from the same weights and sees the same
    data order."""
    args = experiment.args
    train = Batches(*train_set, args.batch_size, shuffle=True, seed=seed, device=args.device)
    test = Batches(*test_set, 1000, shuffle=False, device=args.device)
    backend.manual_seed(seed)
    model = models.mlp(depth, input_grad=False).to(args.device)
    opt = optim.create(name, model, **({} if args.lr is None else {"lr": args.lr}))
    experiment.run({"depth": depth, "optimizer": name, "seed": seed}, model, opt, train, {"test": test},
                   epochs=args.epochs or PAPER_EPOCHS.get(depth, 20))


def main(argv=None):
    args = parse_args(argv)
    runs = list(itertools.product(args.depths, args.optimizer_names, args.seed_list))
    epochs = args.epochs or "/".join(str(PAPER_EPOCHS.get(d, 20)) for d in args.depths)
    with common.session(args, f"{len(runs)} × {common.epochs(epochs)}: depth {args.depth}, "
                              f"{', '.join(args.optimizer_names)}, seed {args.seeds}", draw) as experiment:
        train_set, test_set = load_data(args)
        for depth, name, seed in runs:
            run_one(experiment, depth, name, seed, train_set, test_set)
        table(experiment)


def draw(experiment):
    """metrics.csv, Figure 1's curves and the first seed's gradient norms at the largest depth, from every finished
    epoch; returns the names written."""
    args = experiment.args
    written = experiment.write_curves(experiment.rows(), COLUMNS, f"{args.dataset}: sigmoid MLP, batch "
                                      f"{args.batch_size}", metrics=("train_loss", "test_loss"))
    deepest, first_seed = max(args.depths), args.seed_list[0]
    drawn = {name: history for name in args.optimizer_names
             if (history := experiment.history(depth=deepest, optimizer=name, seed=first_seed))}
    if drawn:
        plot.block_norm_map(drawn, os.path.join(args.out, "gradnorms.png"),
                            title=f"depth {deepest}, seed {first_seed}: mean $\\|g^i\\|$ per layer")
        written.append("gradnorms.png")
    return written


def table(experiment):
    args = experiment.args

    def cell(name, column):
        finals, diverged = experiment.finals(depth=int(column.split()[1]), optimizer=name)
        losses = [h["train_loss"] for h in finals]
        if not finals:
            return "—" + diverged
        if len(args.seed_list) == 1:
            return f"{losses[0]:.3f}/{finals[0]['test_loss']:.3f}" + diverged
        return f"{np.mean(losses):.3f} [{min(losses):.3f}, {max(losses):.3f}]" + diverged

    what = ("training/test objective" if len(args.seed_list) == 1
            else f"training objective, mean [lowest, highest] over seeds {args.seeds}")
    common.print_table(f"final {what} ({args.dataset}; ! = diverged, stopped early)", args.optimizer_names,
                       [f"depth {d}" for d in args.depths], cell, width=26 if len(args.seed_list) > 1 else 16)


if __name__ == "__main__":
    main()
