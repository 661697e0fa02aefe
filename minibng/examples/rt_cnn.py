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

import math
from dataclasses import dataclass

import numpy as np

from .. import backend, models
from ..data import Batches, rt_polarity
from ..train import MaxNorm
from . import session
from .flags import Flag, UsageError
from .report import epochs, print_table
from .script import Data, Script, shared_defaults
from .settings import Settings

PAPER = {"adamng": 77.11, "adam": 74.02, "adagradng": 71.95, "adagrad": 69.89, "sgdmng": 71.95, "sgdm": 64.35}
KIM_CNN_RAND = 76.1  # Kim (2014), Table 2, MR, 10-fold cross-validation
FOLDS = 10
SENTENCES = 10_662
VALIDATION = round(SENTENCES * 0.1)   # the 90/10 split's; a fold of --cv holds 1,066 or 1,067
SIZES = {"train": SENTENCES - VALIDATION, "sentences": SENTENCES}


@dataclass(frozen=True, kw_only=True)
class RtSettings(Settings):
    cv: bool
    max_norm: float


def judge(flags, shared, world_size):
    if not (math.isfinite(flags.max_norm) and flags.max_norm >= 0):
        raise UsageError(f"--max-norm must be a number >= 0, got {flags.max_norm}")
    return RtSettings(**shared, cv=flags.cv, max_norm=flags.max_norm)


def runs(settings):
    """Every (optimizer, seed, fold) in the order they train: the splits of a seed, each with every optimizer."""
    folds = range(FOLDS) if settings.cv else [None]
    return [{"optimizer": o, "seed": s, "fold": f} for s in settings.seeds for f in folds for o in settings.optimizers]


def describe_runs(settings):
    return (f"{len(runs(settings))} × {epochs(settings.epochs)}: {', '.join(settings.optimizers)}, seed "
            f"{','.join(map(str, settings.seeds))}" + (f", {FOLDS} folds each" if settings.cv else ""))


def split(n, seed, fold):
    """(training, validation) indices of one run: the seeded 90/10 split, or fold ``fold`` of Kim's 10."""
    if fold is None:
        return rt_polarity.train_val_split(n, 0.1, seed)
    return rt_polarity.kfold_splits(n, FOLDS, seed)[fold]


def load_data(settings):
    data = rt_polarity.load(data_dir=settings.data_dir)
    n = len(data.labels)
    return Data(sets=data, sizes={"train": n - round(n * 0.1), "sentences": n})


def train(experiment, data, key):
    """Train one optimizer on one split."""
    settings, seed = experiment.settings, key["seed"]
    train_index, val_index = split(len(data.labels), seed, key["fold"])
    if settings.limited:  # a random subset: the sorted indices put every positive sentence first
        train_index = np.sort(np.random.default_rng([seed, 1]).permutation(train_index)[:settings.limit])
    train_batches = Batches(data.ids[train_index], data.labels[train_index], settings.batch_size, shuffle=True,
                            seed=seed, device=settings.device)
    val = Batches(data.ids[val_index], data.labels[val_index], 500, shuffle=False, device=settings.device)
    backend.manual_seed(seed)
    model = models.text_cnn(len(data.vocab), dtype=settings.dtype).to(settings.device)
    experiment.fit(key, model, experiment.optimizer(key["optimizer"], model), train_batches, {"val": val},
                   config={"max_norm": settings.max_norm, "train": len(train_index), "val": len(val_index)},
                   callbacks=[MaxNorm(model[-1], settings.max_norm)] if settings.max_norm > 0 else [])


def summary(best, name):
    """'mean ± std' (sample std over runs) of the best validation accuracies in percent."""
    values = [100 * b["best_val_accuracy"] for b in best if b["optimizer"] == name]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"


def best_rows(experiment):
    """Each run's best validation accuracy, its epoch and its note."""
    best = []
    for index, history in experiment.histories.items():
        if history:
            key, top = dict(index), max(history, key=lambda h: h["val_accuracy"])
            best.append({**key, "best_val_accuracy": top["val_accuracy"], "best_epoch": top["epoch"],
                         "epochs": len(history), "note": "diverged" if index in experiment.diverged else ""})
    return best


def draw(experiment):
    """metrics.csv, best.csv and the curves (mean and range over seeds and folds) from every finished epoch."""
    settings, rows = experiment.settings, experiment.rows()
    where = ["seed"] + (["fold"] if settings.cv else [])
    best = experiment.write_table("best.csv", best_rows(experiment),
                                  ["optimizer", *where, "best_val_accuracy", "best_epoch", "epochs", "note"])
    return [best] + experiment.write_curves(
        rows, ["optimizer", *where, "epoch", "train_loss", "val_accuracy", "seconds"],
        f"Kim's CNN on RT polarity, {f'{FOLDS}-fold CV' if settings.cv else '90/10 split'}, batch "
        f"{settings.batch_size}", metrics=("train_loss", "val_accuracy"), group=None)


def table(experiment):
    settings, best = experiment.settings, best_rows(experiment)
    runs_text = f"{len(settings.seeds)} seed(s)" + (f" × {FOLDS} folds" if settings.cv else ", 90/10 split")
    diverged = {b["optimizer"] for b in best if b["note"]}
    cells = {"measured": lambda n: summary(best, n) + ("!" if n in diverged else ""),
             "paper": lambda n: f"{PAPER[n]:.2f}" if n in PAPER else "—"}
    print_table(f"best validation accuracy over {epochs(settings.epochs)} ({runs_text}; ! = diverged in some run)",
                {name: name for name in settings.optimizers}, {"measured %": "measured", "paper %": "paper"},
                lambda name, column: cells[column](name), width=18)
    print(f"{'Kim CNN-rand':<12}{'—':>18}{KIM_CNN_RAND:>18.2f}   (Kim 2014, Table 2, MR, 10-fold CV)")


SCRIPT = Script(
    name="rt_cnn", doc=__doc__, datasets=("rt-polarity",), data_sizes={"rt-polarity": SIZES},
    limit_unit="sentences of the training split",
    defaults={**shared_defaults("rt_cnn"), "max_norm": 3.0, "optimizers": "sgdm,sgdmng,adam,adamng", "epochs": 3,
              "batch_size": 50, "limit": "all", "threads": 1},
    paper={"optimizers": "paper", "epochs": 150}, paper_optimizers=tuple(PAPER),
    paper_help=f"Table 4: optimizers {','.join(PAPER)}, 150 epochs; about 5 h on a 2-core CPU",
    own_flags=(Flag("--cv", f"{FOLDS}-fold cross-validation (as Kim) instead of 90/10", switch=True),
               Flag("--max-norm", "Kim's s for the output layer; 0 turns it off", type=float)),
    judge=judge, runs=runs, describe_runs=describe_runs, load_data=load_data, train=train, draw=draw, table=table)


def main(argv=None):
    session.run(SCRIPT, argv)


if __name__ == "__main__":
    main()
