"""Figure 3 of the paper: a 2 × 200 LSTM language model on Penn Treebank, block-normalized optimizers against
their plain versions, for several truncated-BPTT lengths.

    python -m minibng.examples.ptb_lstm                        # BPTT 40, Adam vs AdamNG, 10 epochs
    python -m minibng.examples.ptb_lstm --bptt 40,400,1000 --optimizers adam,adamng,sgdm,sgdmng
    python -m minibng.examples.ptb_lstm --paper                # Figure 3: BPTT 40/400/1000, six optimizers, 50 epochs
    python -m minibng.examples.ptb_lstm --limit 5 --epochs 1   # a quick trial: 5 windows per split

The paper's setup (§4.4): vocabulary 10,000, word vectors of 200 trained from scratch, 2 LSTM layers of 200
units, dropout 0.5, batch 100 (100 parallel streams), parameters uniform(±0.1) (Zaremba et al.), the optimizers'
default learning rates (Adam 1e-3, AdaGrad 1e-2; SGD+momentum 0.1 with momentum 0.9, the presets'), no gradient
clipping beyond the CLIP variants' and no learning-rate decay (the paper mentions neither for PTB).
Evaluation reads the validation and test texts as 10 streams, window by window with the state carried, keeping
the last shorter window, so every token but the first of each stream is predicted.

Writes ``DIR/metrics.csv`` (optimizer, bptt, epoch, train_ppl, valid_ppl, test_ppl, seconds), ``DIR/curves.png``
(Figure 3's layout: training and test objective, log perplexity, one column per BPTT length) and one folder per
run with its checkpoint and logs; ``--resume`` continues every run from its last finished epoch.  Training
perplexity is exp of the epoch's mean mini-batch loss, measured with dropout on.  On a shared CPU, run with
OPENBLAS_NUM_THREADS=1 (multi-threaded BLAS stalls when the cores are busy elsewhere).
"""
from __future__ import annotations

import math
import os

from .. import backend, models, nn, optim, plot
from ..checkpoint import write_table
from ..data import ptb
from .common import (add_common_flags, load_or_exit, locked_output, optimizer_list, parser, print_table,
                     run_folder, train_run)

PAPER_OPTIMIZERS = ["sgdm", "sgdmng", "adagrad", "adagradng", "adam", "adamng"]
PAPER_BPTT, PAPER_EPOCHS, DEFAULT_EPOCHS = "40,400,1000", 50, 10
COLUMNS = ["optimizer", "bptt", "epoch", "train_ppl", "valid_ppl", "test_ppl", "seconds"]


def perplexity(loss):
    """exp(mean cross-entropy per token); inf once it overflows, nan for nan."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def parse_args(argv=None):
    p = parser("ptb_lstm", __doc__)
    p.add_argument("--bptt", default=None, help="truncated-BPTT length T, one or a comma list (default 40; --paper: "
                                               f"{PAPER_BPTT})")
    p.add_argument("--optimizers", default="adam,adamng",
                   help=f"comma list of preset names, or 'paper' for {','.join(PAPER_OPTIMIZERS)}")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs per run (default {DEFAULT_EPOCHS}; --paper: {PAPER_EPOCHS})")
    p.add_argument("--batch-size", type=int, default=100, help="parallel training streams N (default 100)")
    p.add_argument("--eval-batch-size", type=int, default=10, help="parallel evaluation streams (default 10)")
    p.add_argument("--lr", type=float, default=None, help="override every optimizer's learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None,
                   help="at most N windows per epoch of every split (quick trials)")
    p.add_argument("--paper", action="store_true",
                   help=f"Figure 3's protocol: BPTT {PAPER_BPTT} (or --bptt), six optimizers, {PAPER_EPOCHS} epochs")
    add_common_flags(p, "runs/ptb_lstm")
    args = p.parse_args(argv)
    if args.paper:
        args.bptt, args.optimizers = args.bptt or PAPER_BPTT, "paper"
    try:
        args.bptts = [int(b) for b in str(args.bptt or 40).split(",")]
    except ValueError:
        p.error(f"--bptt must be a comma list of integers, got {args.bptt!r}")
    counts = {"--bptt": args.bptts, "--batch-size": [args.batch_size], "--eval-batch-size": [args.eval_batch_size],
              "--limit": [] if args.limit is None else [args.limit]}
    for name, values in counts.items():
        if values and min(values) < 1:
            p.error(f"{name} must be positive, got {values}")
    args.epochs = args.epochs if args.epochs is not None else (PAPER_EPOCHS if args.paper else DEFAULT_EPOCHS)
    args.optimizer_names = optimizer_list(p, args.optimizers, PAPER_OPTIMIZERS)
    return args


class EpochReport:
    """Trainer callback: one printed line of perplexities per finished epoch."""

    def __init__(self, label):
        self.label = label

    def on_epoch_end(self, trainer, metrics):
        ppl = {k: perplexity(metrics[f"{k}_loss"]) for k in ("train", "valid", "test")}
        print(f"{self.label:<16} epoch {metrics['epoch']:>3}  perplexity train {ppl['train']:8.2f}  "
              f"valid {ppl['valid']:8.2f}  test {ppl['test']:8.2f}  ({metrics['seconds']:.0f} s)", flush=True)


def run_one(args, bptt, name, corpus):
    """Train one (BPTT length, optimizer) pair from the same seed; returns (history, note)."""
    windows = lambda ids, n, drop_last: ptb.Windows(ids, n, bptt, drop_last, args.device, args.limit)  # noqa: E731
    train = windows(corpus.train, args.batch_size, True)
    evaluate = {split: windows(getattr(corpus, split), args.eval_batch_size, False) for split in ("valid", "test")}
    backend.manual_seed(args.seed)
    model = models.lstm_lm(len(corpus.vocab)).to(args.device)
    opt = optim.create(name, model, **({} if args.lr is None else {"lr": args.lr}))
    config = {"bptt": bptt, "optimizer": name, "epochs": args.epochs, "batch_size": args.batch_size,
              "eval_batch_size": args.eval_batch_size, "lr": opt.lr, "seed": args.seed, "limit": args.limit or 0}
    label = f"bptt {bptt} {name}"
    return train_run(model, nn.SoftmaxCrossEntropy(), opt, train, args.epochs, evaluate,
                     run_folder(args.out, f"bptt{bptt}", name), config, args, label, callbacks=[EpochReport(label)])


def main(argv=None):
    args = parse_args(argv)
    with locked_output(args.out):
        experiment(args)


def experiment(args):
    """Every (BPTT length, optimizer) run, then the table and the figure."""
    corpus = load_or_exit(ptb.load, data_dir=args.data_dir)
    rows, histories, notes = [], {}, {}
    for bptt in args.bptts:
        for name in args.optimizer_names:
            histories[bptt, name], notes[bptt, name] = run_one(args, bptt, name, corpus)
            rows += [{"optimizer": name, "bptt": bptt, **h, "train_ppl": perplexity(h["train_loss"]),
                      "valid_ppl": perplexity(h["valid_loss"]), "test_ppl": perplexity(h["test_loss"])}
                     for h in histories[bptt, name]]
            if notes[bptt, name]:
                print(f"bptt {bptt} {name}: {notes[bptt, name]}, stopped after epoch {len(histories[bptt, name])}")
    write_table(os.path.join(args.out, "metrics.csv"), rows, COLUMNS)
    if rows:  # every run may have diverged in its first epoch: nothing to draw
        plot.curves(rows, os.path.join(args.out, "curves.png"), metrics=("train_loss", "test_loss"), group="bptt",
                    title=f"PTB: 2 × 200 LSTM, batch {args.batch_size}, dropout 0.5 (objective: log perplexity)")

    def cell(name, column):
        h = histories[int(column.split()[1]), name]
        text = f"{perplexity(h[-1]['valid_loss']):.1f}/{perplexity(h[-1]['test_loss']):.1f}" if h else "—"
        return text + ("!" if notes[int(column.split()[1]), name] else "")

    print_table(f"validation/test perplexity after epoch {args.epochs} (! = diverged, stopped early; "
                "the paper shows Figure 3 only, no table)",
                args.optimizer_names, [f"bptt {b}" for b in args.bptts], cell, width=16)
    figure = " and curves.png" if rows else " (no figure: no run finished an epoch)"
    print(f"\nwrote {os.path.join(args.out, 'metrics.csv')}{figure}")


if __name__ == "__main__":
    main()
