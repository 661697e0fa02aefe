"""What every experiment script shares: its common flags, one writer per output folder, loading data with a clear
error, one training run that survives divergence, and the printed table."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

from .. import optim
from ..checkpoint import CheckpointError
from ..data import DatasetError
from ..runlock import FolderLockedError, folder_lock
from ..train import NonFiniteError, Trainer


def parser(prog, doc):
    return argparse.ArgumentParser(prog=f"python -m minibng.examples.{prog}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_common_flags(p, default_out):
    """--device, --data-dir, --out, --resume, --no-progress."""
    p.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N (default cpu)")
    p.add_argument("--data-dir", default=None, help="folder holding the data set's folder (default: search)")
    p.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")
    p.add_argument("--resume", action="store_true", help="continue each run from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def optimizer_list(p, text, paper):
    """Parse a comma list of preset names ('paper' → ``paper``); unknown names are a usage error."""
    names = list(paper) if text == "paper" else [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in optim.preset_names()]
    if unknown:
        p.error(f"unknown optimizer(s) {unknown}; choose from {', '.join(optim.preset_names())}")
    return names


@contextlib.contextmanager
def locked_output(out):
    """Hold the lock of the experiment's folder ``out`` for the ``with`` block (taken before any data is loaded):
    a second experiment writing there at the same time would overwrite this one's tables and figures.  A folder
    in use, and a run that cannot resume (see :mod:`minibng.resume`), end the script with the message."""
    try:
        with folder_lock(out):
            yield
    except (FolderLockedError, CheckpointError) as e:
        raise SystemExit(f"error: {e}") from None


def load_or_exit(load, *args, **kwargs):
    """``load(*args, **kwargs)``, turning a missing or corrupt data set into a clean exit with its instructions."""
    try:
        return load(*args, **kwargs)
    except DatasetError as e:
        raise SystemExit(f"error: {e}") from None


def train_run(model, loss_fn, opt, train, epochs, evaluate, out, config, args, description, **trainer_options):
    """Train one configuration into ``out``; returns (history, note) where note is "diverged" or None."""
    trainer = Trainer(model, loss_fn, opt, train, epochs, evaluate=evaluate, out=out, config=config,
                      progress=not args.no_progress, description=description, **trainer_options)
    try:
        return trainer.fit(resume=args.resume), None
    except NonFiniteError as e:
        print(f"  {e}", file=sys.stderr)
        return trainer.history, "diverged"


def print_table(title, row_names, column_names, cell, row_header="optimizer", width=12):
    """Print a table: one row per ``row_names``, one column per ``column_names``, text from ``cell(row, column)``."""
    print(f"\n{title}")
    print(f"{row_header:<12}" + "".join(f"{str(c):>{width}}" for c in column_names))
    for r in row_names:
        print(f"{r:<12}" + "".join(f"{cell(r, c):>{width}}" for c in column_names))


def run_folder(out, *parts):
    folder = os.path.join(out, "-".join(str(p) for p in parts))
    os.makedirs(folder, exist_ok=True)
    return folder


def seed_list(p, text):
    """Parse ``--seeds 0,1,2`` (a comma list of integers ≥ 0, each run once); anything else is a usage error."""
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        p.error(f"--seeds must be a comma list of distinct integers >= 0, such as 0,1,2; got {text!r}")
    return seeds
