"""The runs of one experiment: :class:`Experiment` trains each configuration into its own folder of ``--out`` and
keeps every run's history, keyed by the run's key (a dict such as ``{"depth": 18, "optimizer": "adamng", "seed":
0}``).  As the Trainer's callback it prints one line per epoch and redraws the script's tables and figures; the
script's ``draw`` and ``table`` read the histories by key.
"""
from __future__ import annotations

import os
import shlex
import sys
import time

from .. import nn, optim, plot
from ..optim.presets import preset_defaults
from ..train import CheckpointError, NonFiniteError, Trainer, load_npz, write_table
from .out_folder import run_checkpoints

__all__ = ["Experiment"]


class Experiment:
    """The runs of one script under ``settings``.  :meth:`fit` trains one configuration; the script's ``draw(self)``
    writes its tables and figures from :meth:`rows` and :meth:`history` and returns the names of the files it wrote.
    Drawing happens after an epoch once ten drawings' time has passed since the last one (after every epoch but the
    shortest: drawing takes at most a tenth of the time), at the end of every run and on Ctrl-C, so an interrupted
    experiment has its figures.  Under MPI rank 0 alone draws."""

    def __init__(self, settings, script, world):
        self.settings = settings
        self.script = script
        self.world = world
        self.histories = {}   # every run's epochs, keyed by its key's items
        self.diverged = set()   # the keys of the runs that diverged
        self.recorders = {}   # per-run callbacks a script keeps for its figures, keyed as the histories
        self.ready = False   # True once the folder is made, locked and recorded: the runs may write into it
        self.trainer = None   # the run in progress: its Trainer, its label and its key's items
        self.label = None
        self.index = None
        self.drawn_at = 0.0   # when the figures were last drawn (time.perf_counter), and how long that took
        self.draw_seconds = 0.0
        self.started = 0.0   # when the epoch in progress started

    # -- building a run ----------------------------------------------------------------------------------------
    def learning_rate(self, name):
        """The learning rate optimizer ``name`` starts with: --lr, else the preset's, times the number of processes
        under --lr-scaling linear (Goyal et al.'s rule: lr ∝ the global batch)."""
        lr = self.settings.lr if self.settings.lr is not None else preset_defaults(name)["lr"]
        return lr * self.world.size if self.settings.lr_scaling == "linear" else lr

    def optimizer(self, name, model, **protocol):
        """Preset ``name`` over ``model``, with the script's ``protocol`` (weight decay, Nesterov …) and its final
        learning rate (:meth:`learning_rate`)."""
        return optim.create(name, model, **protocol, lr=self.learning_rate(name))

    def run_folder(self, key):
        """``--out/depth18-adamng-seed0`` for key {"depth": 18, "optimizer": "adamng", "seed": 0} (None left out)."""
        named = [(k, v) for k, v in key.items() if v is not None]
        return os.path.join(self.settings.out, "-".join(str(v) if k == "optimizer" else f"{k}{v}" for k, v in named))

    def fit(self, key, model, optimizer, train, evaluate, epochs=None, config=None, callbacks=(), **options):
        """Train configuration ``key`` into its folder, recording in its checkpoint's config every setting that
        shapes it (the shared ones, ``config``, the world under MPI); a run that diverges is noted and the next one
        starts.  ``options`` go to the :class:`~minibng.train.Trainer` (schedule, bn_batches …)."""
        settings = self.settings
        self.index = tuple(key.items())
        self.label = " ".join(str(v) if k == "optimizer" else f"{k} {v}" for k, v in key.items() if v is not None)
        epochs = epochs or settings.epochs
        run_config = {**key, "dataset": settings.dataset, "epochs": epochs, "batch_size": settings.batch_size,
                      "lr": optimizer.lr, "limit": settings.limit, "threads": settings.threads,
                      "dtype": settings.dtype, **(config or {})}
        if self.world.size > 1:   # a data-parallel run records its world (a run of one process keeps its config)
            run_config.update(world_size=self.world.size, global_batch=self.world.size * settings.batch_size,
                              lr_scaling=settings.lr_scaling)
        self.trainer = Trainer(model, nn.SoftmaxCrossEntropy(), optimizer, train, epochs, evaluate=evaluate,
                               out=self.run_folder(key), config=run_config, progress=settings.progress,
                               description=self.label, callbacks=[*callbacks, self], lock=False, **options)
        try:
            self.trainer.fit(resume=settings.resume)
        except NonFiniteError as e:
            print(f"  {e}", file=sys.stderr)
            self.diverged.add(self.index)
        self.histories[self.index] = self.trainer.history
        self.trainer = None

    # -- Trainer callbacks ---------------------------------------------------------------------------------------
    def on_fit_start(self, trainer):
        """Say where a resumed run continues."""
        self.histories[self.index] = trainer.history
        self.started = time.perf_counter()
        if trainer.history:
            print(f"{self.label}: resumed from {trainer.checkpoint_path} after epoch {len(trainer.history)} of "
                  f"{trainer.epochs}", flush=True)

    def on_epoch_end(self, trainer, metrics):
        """One line for the epoch, then the figures."""
        print(f"{self.label}  epoch {metrics['epoch']}/{trainer.epochs}  {self.script.describe_epoch(metrics)}  "
              f"({time.perf_counter() - self.started:.1f} s)", flush=True)
        if metrics["epoch"] == trainer.epochs or time.perf_counter() - self.drawn_at > 10 * self.draw_seconds:
            self.redraw()
        self.started = time.perf_counter()   # the next epoch's seconds leave the drawing out

    # -- what the runs produced ----------------------------------------------------------------------------------
    def redraw(self):
        """The script's tables and figures from every finished epoch; the names of the files written (rank 0)."""
        if self.world.rank or not self.ready:
            return []
        start = time.perf_counter()
        written = self.script.draw(self)
        self.drawn_at = time.perf_counter()
        self.draw_seconds = self.drawn_at - start
        return written

    def history(self, **key):
        """The epochs of the run whose key is ``key``."""
        return self.histories.get(tuple(key.items()), [])

    def recorder(self, **key):
        """The recorder the script kept for the run whose key is ``key`` (None if it kept none)."""
        return self.recorders.get(tuple(key.items()))

    def finals(self, **key):
        """The last epochs of the runs whose keys hold ``key`` (over seeds, folds), and "!" if one diverged."""
        runs = [index for index in self.histories if key.items() <= dict(index).items()]
        return [self.histories[i][-1] for i in runs if self.histories[i]], "!" * any(i in self.diverged for i in runs)

    def rows(self):
        """One dict per finished epoch of every run: the run's key, then its metrics."""
        return [{**dict(index), **h} for index, history in self.histories.items() for h in history]

    def write_table(self, name, rows, columns):
        write_table(os.path.join(self.settings.out, name), rows, columns)
        return name

    def write_curves(self, rows, columns, title, **curves):
        """metrics.csv (``columns`` of ``rows``) and, unless every run diverged in its first epoch, curves.png:
        :func:`minibng.plot.curves` of ``rows`` with ``curves``, titled ``title`` and the runs averaged."""
        written = [self.write_table("metrics.csv", rows, columns)]
        if rows:
            runs = sorted({(r["seed"], r.get("fold")) for r in rows}, key=str)
            title += f", {len(runs)} runs each (mean and range)" if len(runs) > 1 else f", seed {runs[0][0]}"
            plot.curves(rows, os.path.join(self.settings.out, "curves.png"), title=title, **curves)
            written.append("curves.png")
        return written

    def interruption(self):
        """What Ctrl-C leaves: the run in progress, its last checkpoint, and the command that continues (under MPI
        with ``mpiexec -n N``); where no run has a checkpoint yet, the command that starts again."""
        settings = self.settings
        where = "before the first run"
        if self.trainer is not None:
            path = self.trainer.checkpoint_path
            done = _epochs_in(path)
            where = (f"in {self.label}, epoch {done + 1}; its last checkpoint is {path} (after epoch {done})" if done
                     else f"in {self.label}, epoch 1 (no checkpoint of it yet)")
        command = [*settings.command]
        if self.world.size > 1:
            command = ["mpiexec", "-n", str(self.world.size), *command]
        resumable = bool(run_checkpoints(settings.out))
        if resumable and not settings.resume:
            command.append("--resume")
        kept = f"finished epochs and runs are kept in {settings.out}"
        what = "To continue" if resumable else "No run finished an epoch; to start again"
        return f"\ninterrupted {where}; {kept}.\n{what}: {shlex.join(command)}"


def _epochs_in(checkpoint) -> int:
    """The finished epochs the checkpoint at ``checkpoint`` holds (0 when there is none, or none readable)."""
    try:
        return len(load_npz(checkpoint)["meta/history"]) if os.path.exists(checkpoint) else 0
    except (CheckpointError, KeyError):
        return 0
