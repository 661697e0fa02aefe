"""Table 4 of the paper: Kim's sentence CNN on Rotten Tomatoes, normalized-gradient optimizers against plain ones.

    python -m minibng.examples.rt_cnn                              # Table 4: 150 epochs, six optimizers, one split
    python -m minibng.examples.rt_cnn --epochs 20 --seeds 3        # shorter, mean ± std over 3 seeds (and splits)
    python -m minibng.examples.rt_cnn --cv --epochs 20             # Kim's 10-fold cross-validation instead
    python -m minibng.examples.rt_cnn --optimizers adamng,adam --epochs 5 --device gpu

Protocol (the paper's §4.5): a seeded random 90 % / 10 % train / validation split of the 10,662 sentences
(``--cv``: each of 10 folds held out in turn), the CNN of :mod:`minibng.models.text_cnn` (random 128-d word
vectors, filters 3/4/5 × 100, dropout 0.5, Kim's max-norm s = 3 on the output layer), batch 50, and for each
optimizer the best validation accuracy over the epochs.  Learning rates are the presets' (the paper's): Adam
1e-3, AdaGrad 1e-2, SGDM 0.1 with momentum 0.9 (the paper gives none for this experiment).  Seed k draws the
split, the initial weights, the batch order and the dropout masks; every optimizer sees the same ones.

Writes ``DIR/metrics.csv`` (optimizer, seed, epoch, train_loss, val_accuracy, seconds; with ``--cv`` a fold
column after seed), ``DIR/best.csv`` (each run's best validation accuracy and its epoch), ``DIR/curves.png``
(mean training objective and validation accuracy per optimizer) and one folder per run with its checkpoint;
``--resume`` continues every run from its last finished epoch.
"""
from __future__ import annotations

import os

import numpy as np

from .. import backend, models, nn, optim, plot
from ..checkpoint import write_table
from ..data import Batches, rt_polarity
from ..models.text_cnn import MaxNorm
from .common import (add_common_flags, load_or_exit, locked_output, optimizer_list, parser, print_table,
                     run_folder, train_run)

PAPER = {"adamng": 77.11, "adam": 74.02, "adagradng": 71.95, "adagrad": 69.89, "sgdmng": 71.95, "sgdm": 64.35}
KIM_CNN_RAND = 76.1  # Kim (2014), Table 2, MR, 10-fold cross-validation
PAPER_EPOCHS = 150
FOLDS = 10


def parse_args(argv=None):
    p = parser("rt_cnn", __doc__)
    p.add_argument("--optimizers", default="paper",
                   help=f"comma list of preset names, or 'paper' for {','.join(PAPER)} (default)")
    p.add_argument("--epochs", type=int, default=PAPER_EPOCHS, help=f"epochs per run (default {PAPER_EPOCHS})")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds 0…N−1, each its own split (default 1)")
    p.add_argument("--cv", action="store_true", help=f"{FOLDS}-fold cross-validation (as Kim) instead of 90/10")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--max-norm", type=float, default=3.0, help="Kim's s for the output layer; 0 turns it off")
    p.add_argument("--lr", type=float, default=None, help="override every optimizer's learning rate")
    p.add_argument("--limit", type=int, default=None, help="train on N random training sentences (quick trials)")
    add_common_flags(p, "runs/rt_cnn")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.epochs < 1 or args.batch_size < 1 or args.max_norm < 0:
        p.error("--seeds, --epochs and --batch-size must be >= 1 and --max-norm >= 0")
    args.optimizer_names = optimizer_list(p, args.optimizers, list(PAPER))
    return args


def splits(n, args):
    """[(seed, fold or None, train indices, validation indices)] for every run of the protocol."""
    runs = []
    for seed in range(args.seeds):
        if args.cv:
            runs += [(seed, f, tr, va) for f, (tr, va) in enumerate(rt_polarity.kfold_splits(n, FOLDS, seed))]
        else:
            runs.append((seed, None, *rt_polarity.train_val_split(n, 0.1, seed)))
    return runs


def run_one(args, name, data, seed, fold, train_index, val_index):
    """Train one optimizer on one split; returns (history, note)."""
    if args.limit is not None:  # a random subset: the sorted indices put every positive sentence first
        train_index = np.sort(np.random.default_rng([seed, 1]).permutation(train_index)[:args.limit])
    train = Batches(data.ids[train_index], data.labels[train_index], args.batch_size, shuffle=True, seed=seed,
                    device=args.device)
    val = Batches(data.ids[val_index], data.labels[val_index], 500, shuffle=False, device=args.device)
    backend.manual_seed(seed)
    model = models.text_cnn(len(data.vocab)).to(args.device)
    opt = optim.create(name, model, **({} if args.lr is None else {"lr": args.lr}))
    callbacks = [MaxNorm(model[-1], args.max_norm)] if args.max_norm > 0 else []
    config = {"optimizer": name, "seed": seed, "fold": -1 if fold is None else fold, "epochs": args.epochs,
              "batch_size": args.batch_size, "lr": opt.lr, "max_norm": args.max_norm, "train": len(train_index),
              "val": len(val_index)}
    parts = [name, f"seed{seed}"] + ([] if fold is None else [f"fold{fold}"])
    label = " ".join(parts)
    return train_run(model, nn.SoftmaxCrossEntropy(), opt, train, args.epochs, {"val": val},
                     run_folder(args.out, *parts), config, args, label, callbacks=callbacks)


def mean_curves(rows, label):
    """Mean training objective and validation accuracy per (optimizer, epoch) over seeds and folds."""
    groups = {}
    for r in rows:
        groups.setdefault((r["optimizer"], r["epoch"]), []).append(r)
    return [{"optimizer": o, "epoch": e, "data": label, "train_loss": float(np.mean([r["train_loss"] for r in g])),
             "val_accuracy": float(np.mean([r["val_accuracy"] for r in g]))} for (o, e), g in groups.items()]


def summary(best, name):
    """'mean ± std' (sample std over runs) of the best validation accuracies in percent."""
    values = [100 * b["best_val_accuracy"] for b in best if b["optimizer"] == name]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"


def main(argv=None):
    args = parse_args(argv)
    with locked_output(args.out):
        experiment(args)


def experiment(args):
    """Every (split, optimizer) run, then the tables and the figure."""
    data = load_or_exit(rt_polarity.load, data_dir=args.data_dir)
    rows, best = [], []
    for seed, fold, train_index, val_index in splits(len(data.labels), args):
        for name in args.optimizer_names:
            history, note = run_one(args, name, data, seed, fold, train_index, val_index)
            where = {"seed": seed} if fold is None else {"seed": seed, "fold": fold}
            rows += [{"optimizer": name, **where, "epoch": h["epoch"], "train_loss": h["train_loss"],
                      "val_accuracy": h["val_accuracy"], "seconds": h["seconds"]} for h in history]
            if history:
                top = max(history, key=lambda h: h["val_accuracy"])
                best.append({"optimizer": name, **where, "best_val_accuracy": top["val_accuracy"],
                             "best_epoch": top["epoch"], "epochs": len(history), "note": note or ""})
                print(f"{name:<10} seed {seed}{'' if fold is None else f' fold {fold}'}  best validation accuracy "
                      f"{100 * top['val_accuracy']:.2f} % (epoch {top['epoch']} of {len(history)})  "
                      f"final train loss {history[-1]['train_loss']:.4f}  {note or ''}", flush=True)
    where_columns = ["seed"] + (["fold"] if args.cv else [])
    write_table(os.path.join(args.out, "metrics.csv"), rows,
                ["optimizer", *where_columns, "epoch", "train_loss", "val_accuracy", "seconds"])
    write_table(os.path.join(args.out, "best.csv"), best,
                ["optimizer", *where_columns, "best_val_accuracy", "best_epoch", "epochs", "note"])
    if rows:
        label = f"RT polarity, {f'{FOLDS}-fold CV' if args.cv else '90/10 split'}"
        runs_each = len(best) // max(1, len(args.optimizer_names))
        plot.curves(mean_curves(rows, label), os.path.join(args.out, "curves.png"),
                    metrics=("train_loss", "val_accuracy"), group="data",
                    title=f"Kim's CNN, batch {args.batch_size}, mean over {runs_each} run(s)")
    runs = f"{args.seeds} seed(s)" + (f" × {FOLDS} folds" if args.cv else ", 90/10 split")
    diverged = {b["optimizer"] for b in best if b["note"]}
    cells = {"measured %": lambda n: summary(best, n) + ("!" if n in diverged else ""),
             "paper %": lambda n: f"{PAPER[n]:.2f}" if n in PAPER else "—"}
    print_table(f"best validation accuracy over {args.epochs} epochs ({runs}; ! = diverged in some run)",
                args.optimizer_names, list(cells), lambda n, c: cells[c](n), width=18)
    print(f"{'Kim CNN-rand':<12}{'—':>18}{KIM_CNN_RAND:>18.2f}   (Kim 2014, Table 2, MR, 10-fold CV)")
    print(f"\nwrote {os.path.join(args.out, 'metrics.csv')}, best.csv and curves.png")


if __name__ == "__main__":
    main()
