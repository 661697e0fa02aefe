"""Figure 3 of the paper: a 2 × 200 LSTM language model on Penn Treebank, block-normalized optimizers against
their plain versions, for several truncated-BPTT lengths.

    python -m minibng.examples.ptb_lstm                        # BPTT 40, Adam vs AdamNG: 100,000 words, 2 epochs
    python -m minibng.examples.ptb_lstm --limit all --eval-limit all --epochs 4   # the whole texts, 4 epochs
    python -m minibng.examples.ptb_lstm --bptt 40,400,1000 --optimizers adam,adamng,sgdm,sgdmng --device gpu
    python -m minibng.examples.ptb_lstm --paper                # Figure 3: BPTT 40/400/1000, six optimizers, 50 epochs

The paper's setup (§4.4): vocabulary 10,000, word vectors of 200 trained from scratch, 2 LSTM layers of 200
units, dropout 0.5, batch 100 (100 parallel streams), parameters uniform(±0.1) (Zaremba et al.), the optimizers'
default learning rates (Adam 1e-3, AdaGrad 1e-2; SGD+momentum 0.1 with momentum 0.9, the presets'), no gradient
clipping beyond the CLIP variants' and no learning-rate decay (the paper mentions neither for PTB).
Evaluation reads the validation and test texts as 10 streams, window by window with the state carried, keeping
the last shorter window, so every token but the first of each stream is predicted.  ``--limit N`` trains on the
first N words of the training text (cut into the 100 streams), ``--eval-limit N`` evaluates on the first N words
of the validation and test texts (the default run: 20,000 of each, so that evaluating takes less time than
training; ``--paper``: all); seed k draws the weights and dropout masks.

Writes ``DIR/metrics.csv`` (optimizer, bptt, seed, epoch, train_ppl, valid_ppl, test_ppl, seconds),
``DIR/curves.png`` (Figure 3's layout: training and test objective, log perplexity, one column per BPTT length),
``DIR/experiment.json`` (the settings) and one folder per run with its checkpoint and logs; ``--resume``
continues every run from its last finished epoch.  Training perplexity is exp of the epoch's mean mini-batch
loss, measured with dropout on.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from .. import backend, models
from ..data import ptb
from . import session
from .flags import Flag, UsageError, count_or_all, integer_list
from .report import epochs, print_table
from .script import Data, Script, cpu_threads, shared_defaults
from .settings import Settings

PAPER_OPTIMIZERS = ("sgdm", "sgdmng", "adagrad", "adagradng", "adam", "adamng")
COLUMNS = ["optimizer", "bptt", "seed", "epoch", "train_ppl", "valid_ppl", "test_ppl", "seconds"]
SIZES = {"train": 929_589, "valid": 73_760, "test": 82_430}   # tokens of Mikolov's texts, <eos> included
EVALUATED = ("valid", "test")
TEXT_NAMES = {"train": "training", "valid": "validation", "test": "test"}


@dataclass(frozen=True, kw_only=True)
class PtbSettings(Settings):
    bptts: tuple[int, ...]
    eval_batch_size: int
    eval_limit: int          # words of each evaluation text read (a text holding fewer is read whole)


def perplexity(loss):
    """exp(mean cross-entropy per token); inf once it overflows, nan for nan."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def judge(flags, shared, world_size):
    """The BPTT lengths, and the streams every text is cut into (world size × batch): each must hold a window."""
    bptts = integer_list("--bptt", flags.bptt, 1)
    if flags.eval_batch_size < 1:
        raise UsageError(f"--eval-batch-size must be >= 1, got {flags.eval_batch_size}")
    if flags.eval_limit != "all" and flags.eval_limit < 1:
        raise UsageError(f"--eval-limit must be >= 1 or 'all', got {flags.eval_limit}")
    longest_text = max(SIZES[split] for split in EVALUATED)
    eval_limit = longest_text if flags.eval_limit == "all" else min(flags.eval_limit, longest_text)
    streams = world_size * shared["batch_size"]
    needed = streams * (max(bptts) + 1)
    if shared["limit"] < needed:
        given = f"all ({shared['limit']:,})" if flags.limit in (None, "all") else f"{shared['limit']:,}"
        raise UsageError(f"--limit {given} words are too few for one window: {streams} streams ({world_size} "
                         f"process(es) × --batch-size {shared['batch_size']}) × (--bptt {max(bptts)} + 1) words = "
                         f"{needed:,}")
    eval_streams = world_size * flags.eval_batch_size
    for split in EVALUATED:
        words = min(eval_limit, SIZES[split])
        if words < 2 * eval_streams:
            raise UsageError(f"--eval-batch-size {flags.eval_batch_size}: the {words:,} words of the "
                             f"{TEXT_NAMES[split]} text read (--eval-limit) give fewer than 2 words to each of its "
                             f"{eval_streams:,} streams "
                             f"({world_size} process(es) × --eval-batch-size); give --eval-batch-size "
                             f"{max(1, words // (2 * world_size))} or less")
    return PtbSettings(**shared, bptts=bptts, eval_batch_size=flags.eval_batch_size, eval_limit=eval_limit)


def runs(settings):
    return [{"bptt": b, "optimizer": o, "seed": s}
            for b, o, s in itertools.product(settings.bptts, settings.optimizers, settings.seeds)]


def describe_runs(settings):
    evaluated = [f"{min(settings.eval_limit, SIZES[split]):,} words of the {TEXT_NAMES[split]} text"
                 for split in EVALUATED]
    return (f"{len(runs(settings))} × {epochs(settings.epochs)}: bptt {','.join(map(str, settings.bptts))}, "
            f"{', '.join(settings.optimizers)}, seed {','.join(map(str, settings.seeds))}; evaluated on "
            + " and ".join(evaluated))


def describe_epoch(metrics):
    """An epoch's line: perplexity of every split."""
    return "perplexity " + "  ".join(f"{split} {perplexity(metrics[f'{split}_loss']):.1f}"
                                     for split in ("train", *EVALUATED))


def load_data(settings):
    corpus = ptb.load(data_dir=settings.data_dir)
    sizes = {split: len(getattr(corpus, split)) for split in ("train", *EVALUATED)}
    texts = {"train": corpus.train[:settings.limit],
             **{split: getattr(corpus, split)[:settings.eval_limit] for split in EVALUATED}}
    return Data(sets=(texts, len(corpus.vocab)), sizes=sizes)


def train(experiment, sets, key):
    """Train one (BPTT length, optimizer, seed)."""
    settings, (texts, vocabulary) = experiment.settings, sets
    windows = lambda ids, n, drop_last: ptb.Windows(ids, n, key["bptt"], drop_last, settings.device)  # noqa: E731
    train_windows = windows(texts["train"], settings.batch_size, True)
    evaluate = {split: windows(texts[split], settings.eval_batch_size, False) for split in EVALUATED}
    backend.manual_seed(key["seed"])
    model = models.lstm_lm(vocabulary, dtype=settings.dtype).to(settings.device)
    experiment.fit(key, model, experiment.optimizer(key["optimizer"], model), train_windows, evaluate,
                   config={"eval_batch_size": settings.eval_batch_size, "eval_limit": settings.eval_limit})


def draw(experiment):
    """metrics.csv and Figure 3's curves from every finished epoch; returns the names written."""
    settings = experiment.settings
    rows = [{**r, **{f"{split}_ppl": perplexity(r[f"{split}_loss"]) for split in ("train", *EVALUATED)}}
            for r in experiment.rows()]
    return experiment.write_curves(rows, COLUMNS, f"PTB: 2 × 200 LSTM, batch {settings.batch_size}, dropout 0.5",
                                   metrics=("train_loss", "test_loss"), group="bptt",
                                   labels={"train_loss": "training objective (log perplexity)",
                                           "test_loss": "test objective (log perplexity)"})


def table(experiment):
    settings = experiment.settings

    def cell(name, bptt):
        finals, diverged = experiment.finals(bptt=bptt, optimizer=name)
        mean = lambda split: sum(perplexity(h[f"{split}_loss"]) for h in finals) / len(finals)  # noqa: E731
        return (f"{mean('valid'):.1f}/{mean('test'):.1f}" if finals else "—") + diverged

    seeds = f", mean over seeds {','.join(map(str, settings.seeds))}" if len(settings.seeds) > 1 else ""
    print_table(f"validation/test perplexity after epoch {settings.epochs}{seeds} (! = diverged, stopped early; the "
                "paper shows Figure 3 only, no table)", {name: name for name in settings.optimizers},
                {f"bptt {b}": b for b in settings.bptts}, cell, width=16)


SCRIPT = Script(
    name="ptb_lstm", doc=__doc__, datasets=("ptb",), data_sizes={"ptb": SIZES},
    limit_unit="words of the training text",
    defaults={**shared_defaults("ptb_lstm"), "bptt": "40", "eval_batch_size": 10, "eval_limit": 20_000,
              "optimizers": "adam,adamng", "epochs": 2, "batch_size": 100, "limit": 100_000,
              "threads": cpu_threads()},
    paper={"bptt": "40,400,1000", "optimizers": "paper", "epochs": 50, "limit": "all", "eval_limit": "all"},
    paper_optimizers=PAPER_OPTIMIZERS,
    paper_help="Figure 3: BPTT 40,400,1000, six optimizers, 50 epochs of the whole texts; about 4 days on a 2-core "
               "CPU (not timed on a GPU)",
    own_flags=(Flag("--bptt", "truncated-BPTT length T, one or a comma list"),
               Flag("--eval-batch-size", "parallel evaluation streams", type=int),
               Flag("--eval-limit", "evaluate on the first N words of the validation and test texts, or 'all'",
                    type=count_or_all, metavar="N|all")),
    judge=judge, runs=runs, describe_runs=describe_runs, load_data=load_data, train=train,
    describe_epoch=describe_epoch, draw=draw, table=table)


def main(argv=None):
    session.run(SCRIPT, argv)


if __name__ == "__main__":
    main()
