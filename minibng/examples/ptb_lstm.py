"""Figure 3 of the paper: a 2 × 200 LSTM language model on Penn Treebank, block-normalized optimizers against
their plain versions, for several truncated-BPTT lengths.

    python -m minibng.examples.ptb_lstm                        # BPTT 40, Adam vs AdamNG, first 200,000 words, 2 epochs
    python -m minibng.examples.ptb_lstm --limit all --epochs 4 # the whole training text (929,589 words), 4 epochs
    python -m minibng.examples.ptb_lstm --bptt 40,400,1000 --optimizers adam,adamng,sgdm,sgdmng --device gpu
    python -m minibng.examples.ptb_lstm --paper                # Figure 3: BPTT 40/400/1000, six optimizers, 50 epochs

The paper's setup (§4.4): vocabulary 10,000, word vectors of 200 trained from scratch, 2 LSTM layers of 200
units, dropout 0.5, batch 100 (100 parallel streams), parameters uniform(±0.1) (Zaremba et al.), the optimizers'
default learning rates (Adam 1e-3, AdaGrad 1e-2; SGD+momentum 0.1 with momentum 0.9, the presets'), no gradient
clipping beyond the CLIP variants' and no learning-rate decay (the paper mentions neither for PTB).
Evaluation reads the whole validation and test texts as 10 streams, window by window with the state carried,
keeping the last shorter window, so every token but the first of each stream is predicted.  ``--limit N`` trains
on the first N words of the training text (cut into the 100 streams); seed k draws the weights and dropout masks.

Writes ``DIR/metrics.csv`` (optimizer, bptt, seed, epoch, train_ppl, valid_ppl, test_ppl, seconds),
``DIR/curves.png`` (Figure 3's layout: training and test objective, log perplexity, one column per BPTT length)
and one folder per run with its checkpoint and logs; ``--resume`` continues every run from its last finished
epoch.  Training perplexity is exp of the epoch's mean mini-batch loss, measured with dropout on.
"""
from __future__ import annotations

import itertools
import math

from .. import backend, models, optim
from ..data import ptb
from . import common

PAPER_OPTIMIZERS = ["sgdm", "sgdmng", "adagrad", "adagradng", "adam", "adamng"]
COLUMNS = ["optimizer", "bptt", "seed", "epoch", "train_ppl", "valid_ppl", "test_ppl", "seconds"]


def perplexity(loss):
    """exp(mean cross-entropy per token); inf once it overflows, nan for nan."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def parse_args(argv=None):
    p = common.parser("ptb_lstm", __doc__, datasets=["ptb"], optimizers="adam,adamng", epochs=2, batch_size=100,
                      threads=common.cpu_threads(), limit="words of the training text (of 929,589)",
                      paper={"bptt": "40,400,1000", "optimizers": "paper", "epochs": 50, "limit": None},
                      paper_help="Figure 3: BPTT 40,400,1000, six optimizers, 50 epochs of the whole text; about 4 "
                                 "days on a 2-core CPU (not timed on a GPU)")
    p.set_defaults(limit=200_000)
    p.add_argument("--bptt", default="40", help="truncated-BPTT length T, one or a comma list")
    p.add_argument("--eval-batch-size", type=int, default=10, help="parallel evaluation streams")
    args = common.parse(p, argv, PAPER_OPTIMIZERS)
    args.bptts = common.int_list(p, "--bptt", args.bptt, 1)
    if args.eval_batch_size < 1:
        p.error(f"--eval-batch-size must be >= 1, got {args.eval_batch_size}")
    shortest = args.batch_size * (max(args.bptts) + 1)
    if args.limit is not None and args.limit < shortest:
        p.error(f"--limit {args.limit} words is too few for one window: {args.batch_size} streams (--batch-size) "
                f"× ({max(args.bptts)} + 1) words (--bptt) = {shortest}")
    return args


def describe(metrics):
    """An epoch's line: perplexity of every split."""
    return "perplexity " + "  ".join(f"{split} {perplexity(metrics[f'{split}_loss']):.1f}"
                                     for split in ("train", "valid", "test"))


def run_one(experiment, corpus, bptt, name, seed):
    """Train one (BPTT length, optimizer, seed)."""
    args = experiment.args
    windows = lambda ids, n, drop_last: ptb.Windows(ids, n, bptt, drop_last, args.device)  # noqa: E731
    train = windows(corpus.train[:args.limit], args.batch_size, True)
    evaluate = {split: windows(getattr(corpus, split), args.eval_batch_size, False) for split in ("valid", "test")}
    backend.manual_seed(seed)
    model = models.lstm_lm(len(corpus.vocab)).to(args.device)
    opt = optim.create(name, model, **({} if args.lr is None else {"lr": args.lr}))
    experiment.run({"bptt": bptt, "optimizer": name, "seed": seed}, model, opt, train, evaluate,
                   config={"eval_batch_size": args.eval_batch_size}, describe=describe)


def main(argv=None):
    args = parse_args(argv)
    runs = list(itertools.product(args.bptts, args.optimizer_names, args.seed_list))
    with common.session(args, f"{len(runs)} × {common.epochs(args.epochs)}: bptt {args.bptt}, "
                              f"{', '.join(args.optimizer_names)}, seed {args.seeds}", draw) as experiment:
        corpus = ptb.load(data_dir=args.data_dir)
        for bptt, name, seed in runs:
            run_one(experiment, corpus, bptt, name, seed)
        table(experiment)


def draw(experiment):
    """metrics.csv and Figure 3's curves from every finished epoch; returns the names written."""
    args = experiment.args
    rows = [{**r, **{f"{split}_ppl": perplexity(r[f"{split}_loss"]) for split in ("train", "valid", "test")}}
            for r in experiment.rows()]
    return experiment.write_curves(rows, COLUMNS, f"PTB: 2 × 200 LSTM, batch {args.batch_size}, dropout 0.5",
                                   metrics=("train_loss", "test_loss"), group="bptt",
                                   labels={"train_loss": "training objective (log perplexity)",
                                           "test_loss": "test objective (log perplexity)"})


def table(experiment):
    args = experiment.args

    def cell(name, column):
        finals, diverged = experiment.finals(bptt=int(column.split()[1]), optimizer=name)
        mean = lambda split: sum(perplexity(h[f"{split}_loss"]) for h in finals) / len(finals)  # noqa: E731
        return (f"{mean('valid'):.1f}/{mean('test'):.1f}" if finals else "—") + diverged

    seeds = f", mean over seeds {args.seeds}" if len(args.seed_list) > 1 else ""
    common.print_table(f"validation/test perplexity after epoch {args.epochs}{seeds} (! = diverged, stopped early; "
                       "the paper shows Figure 3 only, no table)",
                       args.optimizer_names, [f"bptt {b}" for b in args.bptts], cell, width=16)


if __name__ == "__main__":
    main()
