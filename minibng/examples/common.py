"""What every experiment script shares, so that a flag means the same thing in all four: the shared flags, checked
before any work (a bad value is a usage error, exit status 2), the run header, and :class:`Experiment`, which
trains each configuration into its own folder, prints one line per epoch, redraws the script's figures after
every epoch and turns Ctrl-C into the command that resumes (exit status 130).  docs/experiments.md lists the
flags.  Under ``mpiexec -n N`` (docs/distributed.md) the header names the world and the global batch, rank 0 alone
locks --out, prints and draws, and an error on any rank stops every rank."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from .. import __version__, backend, distributed, nn, optim, plot
from ..data import DatasetError, search_roots
from ..train import (LOCK_NAME, ChangedSettingsError, CheckpointError, FewerEpochsError, FolderLockedError,
                     NonFiniteError, OtherWorldSizeError, Trainer, folder_lock, load_npz, write_table)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The script's docstring as written, and every flag's default (none for switches and unset values)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def cpu_threads(share=2, most=4):
    """A default for --threads where matrices are large enough to share: 1/``share`` of the cores this process
    may use, at most ``most`` (threads beyond free cores spin and stall the others)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(most, cores // share))


def parser(name, doc, *, datasets, optimizers, epochs, batch_size, threads, limit, paper, paper_help):
    """The parser of script ``name`` with the shared flags and their defaults (the quick run's); ``paper`` holds
    the defaults that --paper switches to (flags given on the command line keep their values), ``limit`` says what
    --limit counts in this script's data."""
    p = argparse.ArgumentParser(prog=f"python -m minibng.examples.{name}", description=doc,
                                formatter_class=_HelpFormatter)
    p.paper_defaults, p.limit_unit = paper, limit
    add = p.add_argument_group("flags of every experiment (the same meaning in all four)").add_argument
    add("--dataset", choices=datasets, default=datasets[0], help="data set")
    add("--optimizers", default=optimizers, help="comma list of optimizer presets, or 'paper' for the paper's set; "
        f"presets: {', '.join(optim.preset_names())}")
    add("--epochs", type=int, default=epochs, help="epochs per run")
    add("--seeds", default="0", help="comma list of seeds, one run each: initial weights, data order, dropout")
    add("--lr", type=float, help="learning rate of every optimizer (default: each preset's, the paper's)")
    add("--batch-size", type=int, default=batch_size, help="mini-batch size")
    add("--limit", type=_count_or_all, metavar="N|all", help=f"train on the first N {limit} only, or on 'all'")
    add("--threads", type=int, default=threads, help="CPU threads of BLAS and OpenMP (more than free cores stall); "
        "the last digits of a run depend on it")
    add("--device", default="cpu", help="cpu, gpu or gpu:N (CuPy)")
    add("--lr-scaling", choices=["none", "linear"], default="none", help="under mpiexec -n N: keep the learning "
        "rate (none: N ranks equal one process with N × --batch-size) or multiply it by N (linear)")
    add("--data-dir", metavar="DIR", help="folder holding the data set's folder (default: searched, see "
        "docs/data.md; downloaded if missing)")
    add("--out", default=f"runs/{name}", help="output folder: one folder per run, the table's metrics.csv, figures")
    add("--resume", action="store_true", help="continue every run from its checkpoint in --out")
    add("--no-progress", action="store_true", help="hide the progress bars (the lines per epoch remain)")
    add("--paper", action="store_true", help=paper_help)
    add("--version", action="version", version=f"minibng {__version__}")
    return p


def _count_or_all(text):
    """--limit's value: an integer, or 'all' (None)."""
    try:
        return None if text == "all" else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'all', got {text!r}") from None


def parse(p, argv, paper_optimizers):
    """Parse ``argv`` and check every shared flag, before any work; --paper switches the defaults.  Under MPI a
    usage error stops every rank, and only rank 0 (the one that writes) checks --out."""
    with distributed.world().stop_all_on_error():
        return _parse(p, argv, paper_optimizers)


def _parse(p, argv, paper_optimizers):
    args = p.parse_args(argv)
    if args.paper:
        p.set_defaults(**p.paper_defaults)
        args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.script, args.limit_unit = p.prog.rsplit(".", 1)[1], p.limit_unit
    args.optimizer_names = optimizer_list(p, args.optimizers, paper_optimizers)
    args.seed_list = int_list(p, "--seeds", args.seeds, 0, distinct=True)
    for flag in ("epochs", "batch_size", "limit", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        p.error(f"--lr must be a positive number, got {args.lr}")
    if args.data_dir and os.path.exists(args.data_dir) and not os.path.isdir(args.data_dir):
        p.error(f"--data-dir {args.data_dir} is a file; it must name a folder")
    try:
        backend.array_module_for(args.device)
    except (RuntimeError, ValueError, TypeError) as e:
        p.error(f"--device {args.device}: {e}")
    if distributed.world().rank:
        return args
    existing = Path(args.out).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        p.error(f"--out {args.out}: {existing} is {'not a folder' if not existing.is_dir() else 'not writable'}")
    args.usage_error = p.error   # for --out, which only the session creates: checking flags creates nothing
    checkpoints = sorted(Path(args.out).glob("*/checkpoint.npz"))
    if checkpoints and not args.resume:
        names = ", ".join(c.parent.name for c in checkpoints[:3]) + (", …" if len(checkpoints) > 3 else "")
        p.error(f"--out {args.out} holds the checkpoints of earlier runs ({names}); pass --resume to continue them, "
                "or choose another --out (a fresh start would overwrite them)")
    return args


def epochs(n):
    """'1 epoch', '8 epochs'."""
    return f"{n} epoch{'s' * (n != 1)}"


def optimizer_list(p, text, paper):
    """Parse a comma list of preset names ('paper' → ``paper``); unknown names are a usage error."""
    names = list(paper) if text == "paper" else [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in optim.preset_names()]
    if unknown or not names:
        p.error(f"unknown optimizer(s) {unknown}; choose from {', '.join(optim.preset_names())}")
    return names


def int_list(p, flag, text, minimum, distinct=False):
    """Parse a comma list of integers ≥ ``minimum`` given to ``flag`` (``--seeds 0,1,2``); anything else is a usage
    error."""
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < minimum or (distinct and len(set(values)) < len(values)):
        p.error(f"{flag} must be a comma list of {'distinct ' * distinct}integers >= {minimum}, such as "
                f"{minimum},{minimum + 1}; got {text!r}")
    return values


@contextlib.contextmanager
def session(args, runs, draw):
    """The experiment's frame: --threads, the lock of --out, the header, then the :class:`Experiment` for the
    ``with`` block and, after it, the figures.  A folder in use, a checkpoint that cannot be resumed and a missing
    data set end the script with their message; Ctrl-C with the command that resumes.  Under MPI rank 0 alone locks,
    prints and draws, and an error on any rank ends every rank."""
    with distributed.world().stop_all_on_error(), _session(args, runs, draw) as experiment:
        yield experiment


@contextlib.contextmanager
def _session(args, runs, draw):
    experiment, world = Experiment(args, draw), distributed.world()
    found = [root / args.dataset for root in search_roots(args.data_dir) if (root / args.dataset).is_dir()]
    header = {"runs": runs, "device": f"{args.device}, {args.threads} CPU thread(s)",
              "data": f"{args.dataset} " + (f"from {found[0]}" if found else "(in no data folder yet: downloaded first)")
              + (f"; --limit: the first {args.limit:,} {args.limit_unit}" if args.limit else ""),
              "output": args.out + (" (--resume: each run continues from its checkpoint)" if args.resume else ""),
              "world": _world_line(world, args)}
    quiet = contextlib.redirect_stdout(open(os.devnull, "w")) if world.rank else contextlib.nullcontext()  # noqa
    out_was_new = not Path(args.out).exists()
    if not world.rank:
        try:
            os.makedirs(args.out, exist_ok=True)
        except OSError as e:
            args.usage_error(f"--out {args.out}: cannot create it ({e.strerror})")
    lock = contextlib.nullcontext() if world.rank else folder_lock(args.out)
    try:
        with quiet, threadpool_limits(limits=args.threads), lock:
            print(f"python -m minibng.examples.{args.script} (minibng {__version__})")
            print("".join(f"  {name:<8}{text}\n" for name, text in header.items()), end="", flush=True)
            try:
                yield experiment
            except KeyboardInterrupt:
                experiment.redraw()
                print(experiment.interruption(), file=sys.stderr, flush=True)
                raise SystemExit(130) from None
            written = experiment.redraw()
            print(f"\nwrote {', '.join(written)} in {args.out}"
                  + ("" if any(n.endswith(".png") for n in written) else " (no figure: no run finished an epoch)"))
    except (FolderLockedError, CheckpointError, DatasetError) as e:
        out = Path(args.out)
        if out_was_new and [f.name for f in out.iterdir()] == [LOCK_NAME]:
            (out / LOCK_NAME).unlink()   # nothing ran: leave no folder behind
            out.rmdir()
        raise SystemExit("\n".join(filter(None, [f"error: {e}", flag_advice(e)]))) from None


def flag_advice(error):
    """What to do about a refusal of the library, in this script's flags, from the data the error carries ("" when
    its message says it all)."""
    if isinstance(error, ChangedSettingsError):
        return ("To continue those runs, rerun with the flags that started them (the checkpoint's values above); to "
                "start the new settings, give another --out.")
    if isinstance(error, OtherWorldSizeError):
        return (f"To continue, resume with mpiexec -n {error.saved_world_size}; to start afresh, give another "
                "--out.")
    if isinstance(error, FewerEpochsError):
        return f"To continue, pass --epochs {error.finished_epochs} or more; to start afresh, give another --out."
    if isinstance(error, FolderLockedError):
        return "To run now, give another --out."
    return ""


def _world_line(world, args):
    """The header's line on the processes: their number, the global batch and the learning-rate rule."""
    if world.size == 1:
        return "1 process (mpiexec -n N trains data-parallel: docs/distributed.md)"
    rule = f"× {world.size}" if args.lr_scaling == "linear" else "as given"
    return (f"{world.size} processes (MPI; rank 0 writes): global batch {world.size} × {args.batch_size} = "
            f"{world.size * args.batch_size}, learning rate {rule} (--lr-scaling {args.lr_scaling})")


class Experiment:
    """The runs of one script.  :meth:`run` trains one configuration into ``--out/<its key>`` and prints a line per
    epoch; ``draw(experiment)`` writes the script's table and figures from :meth:`rows` and returns the names of the
    files it wrote.  It is called after an epoch once ten drawings' time has passed since the last one (after every
    epoch but the shortest: drawing takes at most a tenth of the time), at the end of every run and on Ctrl-C, so
    an interrupted experiment has its figures."""

    def __init__(self, args, draw):
        self.args, self.draw = args, draw
        self.histories, self.notes = {}, {}
        self.trainer = self.label = self.index = None   # the run in progress
        self.drawn_at, self.draw_seconds = 0.0, 0.0

    def run(self, key, model, opt, train, evaluate, epochs=None, config=None, callbacks=(), describe=None, **options):
        """Train configuration ``key`` (a dict such as depth, optimizer, seed), recording every flag that shapes
        it in its checkpoint's config; a run that diverges is noted ("diverged") and the next one starts."""
        args, self.index, self.describe = self.args, tuple(key.items()), describe or describe_metrics
        named = [(k, v) for k, v in self.index if v is not None]
        self.label = " ".join(str(v) if k == "optimizer" else f"{k} {v}" for k, v in named)
        folder = os.path.join(args.out, "-".join(str(v) if k == "optimizer" else f"{k}{v}" for k, v in named))
        epochs = epochs or args.epochs
        world = distributed.world()
        if args.lr_scaling == "linear":  # Goyal et al.'s rule: lr ∝ the global batch
            opt.lr = opt.base_lr = opt.base_lr * world.size
        config = {**key, "dataset": args.dataset, "epochs": epochs, "batch_size": args.batch_size, "lr": opt.lr,
                  "limit": args.limit, "threads": args.threads, **(config or {})}
        if world.size > 1:  # a data-parallel run records its world (a run of one process keeps its config)
            config.update(world_size=world.size, global_batch=world.size * args.batch_size, lr_scaling=args.lr_scaling)
        self.trainer = Trainer(model, nn.SoftmaxCrossEntropy(), opt, train, epochs, evaluate=evaluate, out=folder,
                               config=config, progress=not args.no_progress, description=self.label,
                               callbacks=[*callbacks, self], **options)
        try:
            self.trainer.fit(resume=args.resume)
        except NonFiniteError as e:
            print(f"  {e}", file=sys.stderr)
            self.notes[self.index] = "diverged"
        self.histories[self.index], self.trainer = self.trainer.history, None

    def on_fit_start(self, trainer):
        """Trainer callback: say where a resumed run continues."""
        self.histories[self.index], self.start = trainer.history, time.perf_counter()
        if trainer.history:
            print(f"{self.label}: resumed from {trainer.checkpoint_path} after epoch {len(trainer.history)} of "
                  f"{trainer.epochs}", flush=True)

    def on_epoch_end(self, trainer, metrics):
        """Trainer callback: one line for the epoch, then the figures."""
        print(f"{self.label}  epoch {metrics['epoch']}/{trainer.epochs}  {self.describe(metrics)}  "
              f"({time.perf_counter() - self.start:.1f} s)", flush=True)
        if metrics["epoch"] == trainer.epochs or time.perf_counter() - self.drawn_at > 10 * self.draw_seconds:
            self.redraw()
        self.start = time.perf_counter()   # the next epoch's seconds leave the drawing out

    def redraw(self):
        if distributed.world().rank:
            return []  # rank 0 draws
        start = time.perf_counter()
        written = self.draw(self)
        self.drawn_at = time.perf_counter()
        self.draw_seconds = self.drawn_at - start
        return written

    def history(self, **key):
        return self.histories.get(tuple(key.items()), [])

    def finals(self, **key):
        """The last epochs of the runs whose keys hold ``key`` (over seeds, folds), and "!" if one diverged."""
        runs = [index for index in self.histories if key.items() <= dict(index).items()]
        return [self.histories[i][-1] for i in runs if self.histories[i]], "!" * any(i in self.notes for i in runs)

    def rows(self):
        """One dict per finished epoch of every run: the run's key, then its metrics."""
        return [{**dict(index), **h} for index, history in self.histories.items() for h in history]

    def write_table(self, name, rows, columns):
        write_table(os.path.join(self.args.out, name), rows, columns)
        return name

    def write_curves(self, rows, columns, title, **curves):
        """metrics.csv (``columns`` of ``rows``) and, unless every run diverged in its first epoch, curves.png:
        :func:`minibng.plot.curves` of ``rows`` with ``curves``, titled ``title`` and the runs averaged."""
        written = [self.write_table("metrics.csv", rows, columns)]
        if rows:
            runs = sorted({(r["seed"], r.get("fold")) for r in rows}, key=str)
            title += f", {len(runs)} runs each (mean and range)" if len(runs) > 1 else f", seed {runs[0][0]}"
            plot.curves(rows, os.path.join(self.args.out, "curves.png"), title=title, **curves)
            written.append("curves.png")
        return written

    def interruption(self):
        """What Ctrl-C leaves: the run in progress, its last checkpoint, and the command that continues."""
        where = "before the first run"
        if self.trainer is not None:
            path = self.trainer.checkpoint_path
            try:
                done = len(load_npz(path)["meta/history"]) if os.path.exists(path) else 0
            except (CheckpointError, KeyError):
                done = 0
            where = (f"in {self.label}, epoch {done + 1}; its last checkpoint is {path} (after epoch {done})" if done
                     else f"in {self.label}, epoch 1 (no checkpoint of it yet)")
        command = shlex.join(["python", "-m", f"minibng.examples.{self.args.script}", *self.args.argv]
                             + ([] if self.args.resume else ["--resume"]))
        return f"\ninterrupted {where}; finished epochs and runs are kept in {self.args.out}.\nTo continue: {command}"


def describe_metrics(metrics):
    """'train 0.1234  test 0.2345 (accuracy 91.20 %)' from an epoch's metrics."""
    parts = [f"train {metrics['train_loss']:.4f}"]
    for key, value in metrics.items():
        if key.endswith("_loss") and key != "train_loss":
            name, accuracy = key[:-5], metrics.get(f"{key[:-5]}_accuracy")
            parts.append(f"{name} {value:.4f}" + ("" if accuracy is None else f" (accuracy {100 * accuracy:.2f} %)"))
    return "  ".join(parts)


def print_table(title, row_names, column_names, cell, row_header="optimizer", width=12):
    """Print a table: one row per ``row_names``, one column per ``column_names``, text from ``cell(row, column)``."""
    print(f"\n{title}")
    print(f"{row_header:<12}" + "".join(f"{str(c):>{width}}" for c in column_names))
    for r in row_names:
        print(f"{r:<12}" + "".join(f"{cell(r, c):>{width}}" for c in column_names))
