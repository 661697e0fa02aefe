"""Table 4 of the paper: Kim's sentence CNN on Rotten Tomatoes, normalized-gradient optimizers against plain ones.

    python -m minibng.examples.rt_cnn                              # SGDM, SGDMNG, Adam, AdamNG: 3 epochs, one split
    python -m minibng.examples.rt_cnn --paper                      # Table 4: six optimizers, 150 epochs
    python -m minibng.examples.rt_cnn --epochs 20 --seeds 0,1,2    # mean ± std over 3 seeds (and splits)
    python -m minibng.examples.rt_cnn --cv --epochs 20             # Kim's 10-fold cross-validation instead

Protocol (the paper's §4.5): a seeded random 90 % / 10 % train / validation split of the 10,662 sentences
(``--cv``: each of 10 folds held out in turn), the CNN of :mod:`minibng.models.text_cnn` (random 128-d word
vectors, filters 3/4/5 × 100, dropout 0.5, Kim's max-norm s = 3 on the output layer), batch 50, and for each
optimizer the best validation accuracy over the epochs.  Learning rates are the presets' (the paper's): Adam
1e-3, AdaGrad 1e-2, SGDM 0.1 with momentum 0.9 (the paper gives none for this experiment).  Seed k draws the
split, the initial weights, the batch order and the dropout masks; every optimizer sees the same ones.
``--limit N`` trains on the first N sentences of the training split in the seed's random order.

Writes ``DIR/metrics.csv`` (optimizer, seed, epoch, train_loss, val_accuracy, seconds; with ``--cv`` a fold
column after seed), ``DIR/best.csv`` (each run's best validation accuracy and its epoch), ``DIR/curves.png``
(training objective and validation accuracy per optimizer, mean and range over runs) and one folder per run with
its checkpoint; ``--resume`` continues every run from its last finished epoch.
"""
from __future__ import annotations


import numpy as np

from .. import backend, models, optim
from ..data import Batches, rt_polarity
from ..train import MaxNorm
from . import common

PAPER = {"adamng": 77.11, "adam": 74.02, "adagradng": 71.95, "adagrad": 69.89, "sgdmng": 71.95, "sgdm": 64.35}
KIM_CNN_RAND = 76.1  # Kim (2014), Table 2, MR, 10-fold cross-validation
FOLDS = 10


def parse_args(argv=None):
    p = common.parser("rt_cnn", __doc__, datasets=["rt-polarity"], optimizers="sgdm,sgdmng,adam,adamng", epochs=3,
                      batch_size=50, threads=1, limit="sentences of the training split (of 9,596)",
                      paper={"optimizers": "paper", "epochs": 150},
                      paper_help=f"Table 4: optimizers {','.join(PAPER)}, 150 epochs; about 5 h on a 2-core CPU")
    p.add_argument("--cv", action="store_true", help=f"{FOLDS}-fold cross-validation (as Kim) instead of 90/10")
    p.add_argument("--max-norm", type=float, default=3.0, help="Kim's s for the output layer; 0 turns it off")
    args = common.parse(p, argv, list(PAPER))
    if not args.max_norm >= 0:
        p.error(f"--max-norm must be >= 0, got {args.max_norm}")
    return args


def splits(n, args):
    """[(seed, fold or None, train indices, validation indices)] for every run of the protocol."""
    runs = []
    for seed in args.seed_list:
        if args.cv:
            runs += [(seed, f, tr, va) for f, (tr, va) in enumerate(rt_polarity.kfold_splits(n, FOLDS, seed))]
        else:
            runs.append((seed, None, *rt_polarity.train_val_split(n, 0.1, seed)))
    return runs


def run_one(experiment, name, data, seed, fold, train_index, val_index):
    """Train one optimizer on one split."""
    args = experiment.args
    if args.limit is not None:  # a random subset: the sorted indices put every positive sentence first
        train_index = np.sort(np.random.default_rng([seed, 1]).permutation(train_index)[:args.limit])
    train = Batches(data.ids[train_index], data.labels[train_index], args.batch_size, shuffle=True, seed=seed,
                    device=args.device)
    val = Batches(data.ids[val_index], data.labels[val_index], 500, shuffle=False, device=args.device)
    backend.manual_seed(seed)
    model = models.text_cnn(len(data.vocab)).to(args.device)
    opt = optim.create(name, model, **({} if args.lr is None else {"lr": args.lr}))
    experiment.run({"optimizer": name, "seed": seed, "fold": fold}, model, opt, train, {"val": val},
                   config={"max_norm": args.max_norm, "train": len(train_index), "val": len(val_index)},
                   callbacks=[MaxNorm(model[-1], args.max_norm)] if args.max_norm > 0 else [])


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
    count = len(args.optimizer_names) * len(args.seed_list) * (FOLDS if args.cv else 1)
    runs = f"{count} × {common.epochs(args.epochs)}: {', '.join(args.optimizer_names)}, seed {args.seeds}" \
           + (f", {FOLDS} folds each" if args.cv else "")
    with common.session(args, runs, draw) as experiment:
        data = rt_polarity.load(data_dir=args.data_dir)
        for seed, fold, train_index, val_index in splits(len(data.labels), args):
            for name in args.optimizer_names:
                run_one(experiment, name, data, seed, fold, train_index, val_index)
        table(experiment)


def best_rows(experiment):
    """Each run's best validation accuracy, its epoch and its note."""
    best = []
    for index, history in experiment.histories.items():
        if history:
            key, top = dict(index), max(history, key=lambda h: h["val_accuracy"])
            best.append({**key, "best_val_accuracy": top["val_accuracy"], "best_epoch": top["epoch"],
                         "epochs": len(history), "note": experiment.notes.get(index, "")})
    return best


def draw(experiment):
    """metrics.csv, best.csv and the curves (mean and range over seeds and folds) from every finished epoch."""
    args, rows = experiment.args, experiment.rows()
    where = ["seed"] + (["fold"] if args.cv else [])
    best = experiment.write_table("best.csv", best_rows(experiment),
                                  ["optimizer", *where, "best_val_accuracy", "best_epoch", "epochs", "note"])
    return [best] + experiment.write_curves(
        rows, ["optimizer", *where, "epoch", "train_loss", "val_accuracy", "seconds"],
        f"Kim's CNN on RT polarity, {f'{FOLDS}-fold CV' if args.cv else '90/10 split'}, batch {args.batch_size}",
        metrics=("train_loss", "val_accuracy"), group=None)


def table(experiment):
    args, best = experiment.args, best_rows(experiment)
    runs = f"{len(args.seed_list)} seed(s)" + (f" × {FOLDS} folds" if args.cv else ", 90/10 split")
    diverged = {b["optimizer"] for b in best if b["note"]}
    cells = {"measured %": lambda n: summary(best, n) + ("!" if n in diverged else ""),
             "paper %": lambda n: f"{PAPER[n]:.2f}" if n in PAPER else "—"}
    common.print_table(f"best validation accuracy over {common.epochs(args.epochs)} ({runs}; ! = diverged in some run)",
                       args.optimizer_names, list(cells), lambda n, c: cells[c](n), width=18)
    print(f"{'Kim CNN-rand':<12}{'—':>18}{KIM_CNN_RAND:>18.2f}   (Kim 2014, Table 2, MR, 10-fold CV)")


if __name__ == "__main__":
    main()
