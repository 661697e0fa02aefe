"""The training loop, one for every experiment: epochs of forward / loss / backward / step, evaluation, a schedule,
per-block gradient norms, logs, atomic checkpoints, exact resume, and a guard against non-finite values.

    trainer = Trainer(model, nn.SoftmaxCrossEntropy(), opt, train_batches, epochs=20,
                      evaluate={"test": test_batches}, out="runs/adamng")
    history = trainer.fit(resume=True)   # list of per-epoch metric dicts

Per epoch the history holds ``epoch``, ``train_loss`` (the mean of the epoch's mini-batch losses),
``<name>_loss`` and ``<name>_accuracy`` for every evaluation set, ``lr``, ``seconds`` (training time so far) and
``block_norms``: the mean over the epoch's steps of each block's ‖g^i‖ (read from ``opt.block_norms`` on the
device every step, summarised once per epoch).  With ``out`` set, the loop writes ``out/metrics.csv``,
``out/metrics.jsonl`` and ``out/checkpoint.npz`` after every epoch; ``fit(resume=True)`` continues from that
checkpoint and, because the model, the optimizer, the data order and every random stream are restored,
produces the same numbers as an uninterrupted run.  With ``bn_batches`` set, every BatchNorm's running statistics
are re-estimated for the epoch's final weights (:func:`update_batchnorm`) before evaluation and the checkpoint.

Under MPI (``mpiexec -n N``; :mod:`minibng.distributed`) every rank runs the same loop on its shard of each global
batch; the mean gradient is all-reduced before each optimizer step, metrics are summed over the ranks, and rank 0
alone locks ``out`` and writes it.  See docs/distributed.md.
"""
from __future__ import annotations

import math
import numbers
import os
import time
from pathlib import Path

import numpy as np

from .. import backend, distributed
from ..nn import NonFiniteValueError
from .checkpoint import restore_checkpoint, save_checkpoint
from .errors import NonFiniteError
from .evaluation import evaluate, reset_carried_state, update_batchnorm
from ..files import write_jsonl, write_table
from .lock import folder_lock

__all__ = ["Trainer"]


class Trainer:
    """The loop; see the module docstring.  ``epochs``: a whole number ≥ 0; ``out``: a folder (made when the first
    file is written) or None for no files.  ``callbacks`` receive ``on_fit_start(trainer)`` once the checkpoint (if
    any) is restored, ``on_step_end(trainer)`` after every optimizer step (e.g. a max-norm constraint) and
    ``on_epoch_end(trainer, metrics)``; each method is optional.  ``bn_batches``: an unshuffled set of
    batches on which BatchNorm statistics are re-estimated after every epoch, or None (a shuffled set would draw
    a different order after a resume).  Under MPI the batch sets are sharded across the ranks and, with
    ``sync_batchnorm`` (default), BatchNorm normalizes with the statistics of the global batch.  ``lock``: hold
    ``out``'s run lock during :meth:`fit`; False where the caller holds a lock that covers ``out`` (the experiment
    scripts lock their ``--out``, which holds every run's folder)."""

    def __init__(self, model, loss_fn, optimizer, train_batches, epochs, evaluate=None, schedule=None,
                 callbacks=(), out=None, config=None, progress=True, description="train", check_every=25,
                 extra_streams=None, bn_batches=None, sync_batchnorm=True, lock=True):
        self.epochs = _epoch_count(epochs)
        self.out = _output_folder(out)
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.train_batches = train_batches
        self.evaluate_sets = dict(evaluate or {})
        if "train" in self.evaluate_sets:
            raise ValueError("Trainer: an evaluation set named 'train' would replace train_loss, the mean of the "
                             "epoch's mini-batch losses; give it another name, such as 'train_eval'")
        self.schedule = schedule
        self.callbacks = list(callbacks)
        self.lock = bool(lock)
        self.config = dict(config or {})   # the run's settings, saved in its checkpoint and checked on resume
        self.progress = progress
        self.description = description
        self.check_every = max(1, int(check_every))
        self.extra_streams = dict(extra_streams or {})  # e.g. augmentation: name -> RandomStream
        if getattr(bn_batches, "shuffle", False):
            raise ValueError("bn_batches must not shuffle (Batches(..., shuffle=False)): a resumed run must "
                             "re-estimate BatchNorm statistics on the same batches")
        self.bn_batches = bn_batches
        self.world = distributed.world()
        sets = [train_batches, *self.evaluate_sets.values(), *([bn_batches] if bn_batches else [])]
        self.world.replicate(model, sets, sync_batchnorm)
        _require_batches("train_batches", train_batches)
        for name, batches in self.evaluate_sets.items():
            _require_batches(f"evaluate['{name}']", batches)
        self.history: list[dict] = []

    # -- files ----------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self):
        return None if self.out is None else os.path.join(self.out, "checkpoint.npz")

    def save_checkpoint(self, path=None):
        """Write the model, optimizer, random streams, data order, history and config (:mod:`.checkpoint`)."""
        save_checkpoint(self, path or self.checkpoint_path)

    def load_checkpoint(self, path=None, source=None):
        """Restore all of it, after checking the checkpoint fits this run (:mod:`.resume`); a refusal is a
        :class:`~minibng.train.CheckpointError` and leaves the trainer as it was.  ``source``: the file's bytes, as
        rank 0 read them (:meth:`minibng.distributed.World.root_file`), in place of reading ``path``."""
        self.history = restore_checkpoint(self, path or self.checkpoint_path, source)

    def _write_logs(self):
        if self.out is None or self.world.rank != 0:
            return
        scalar_rows = [{k: v for k, v in row.items() if not isinstance(v, list)} for row in self.history]
        write_table(os.path.join(self.out, "metrics.csv"), scalar_rows)
        write_jsonl(os.path.join(self.out, "metrics.jsonl"), self.history)

    # -- the loop -------------------------------------------------------------------------------------------
    def fit(self, resume=False):
        """Train until ``epochs`` epochs are done; returns the history (one dict per epoch).

        With ``out`` set, the folder is locked for the whole fit (:func:`.lock.folder_lock`: a second run into it is
        refused; unless ``lock`` is False), and ``resume=True`` continues from its checkpoint, rewriting the logs from
        the checkpoint's history (a run killed between writing its checkpoint and its logs left them short).  Under MPI
        only rank 0 locks and writes; every rank resumes from the checkpoint rank 0 reads."""
        if self.out is None or self.world.rank != 0 or not self.lock:
            return self._fit(resume)
        with folder_lock(self.out):
            return self._fit(resume)

    def _fit(self, resume):
        source = self.world.root_file(self.checkpoint_path) if resume and self.checkpoint_path else None
        if source is not None:
            self.load_checkpoint(source=source)
            self._write_logs()
        self.world.broadcast([p.data for p in self.model.parameters()] + _buffers(self.model), "rank 0's parameters")
        for callback in self.callbacks:
            if hasattr(callback, "on_fit_start"):
                callback.on_fit_start(self)
        while len(self.history) < self.epochs:
            epoch = len(self.history) + 1
            if self.schedule is not None:
                self.schedule.apply(self.optimizer, epoch)
            metrics = self._train_epoch(epoch)
            if self.bn_batches is not None:
                update_batchnorm(self.model, self.bn_batches)
            self.world.broadcast(_buffers(self.model), "rank 0's BatchNorm statistics")  # equal when synchronized
            self._guard_state(epoch)
            for name, batches in self.evaluate_sets.items():
                for key, value in evaluate(self.model, self.loss_fn, batches, self.world).items():
                    metrics[f"{name}_{key}"] = value
            self.history.append(metrics)
            for callback in self.callbacks:
                if hasattr(callback, "on_epoch_end"):
                    callback.on_epoch_end(self, metrics)
            if self.out is not None and self.world.rank == 0:
                self.save_checkpoint()
                self._write_logs()
        return self.history

    def _train_epoch(self, epoch):
        model, opt = self.model, self.optimizer
        model.train()
        reset_carried_state(model)
        previous_seconds = self.history[-1]["seconds"] if self.history else 0.0
        start = time.perf_counter()
        bar = _progress_bar(len(self.train_batches), f"{self.description} epoch {epoch}/{self.epochs}",
                            self.progress and self.world.rank == 0)
        try:
            loss_sum, norm_sum, steps = self._run_steps(epoch, bar)
        finally:
            if bar is not None:
                bar.close()
        if not steps:
            raise ValueError(f"{self.description}: epoch {epoch} got no batch from train_batches; an epoch must train "
                             "on something (is the data set empty?)")
        self._guard(loss_sum, norm_sum, epoch, steps)
        seconds = time.perf_counter() - start
        tracked = backend.is_array(norm_sum)  # False when the optimizer does not track norms
        mean_norms = backend.asnumpy(norm_sum / steps) if tracked else np.full(len(opt.blocks), math.nan)
        train_loss = self.world.sum(loss_sum)[0] / (steps * self.world.size)
        return {"epoch": epoch, "train_loss": train_loss, "lr": opt.lr,
                "seconds": previous_seconds + seconds, "block_norms": [float(v) for v in np.atleast_1d(mean_norms)]}

    def _run_steps(self, epoch, bar):
        """One pass over the training batches; sums stay on the device (read every ``check_every`` steps, and for the
        progress bar every step on the CPU).

        Under MPI the gradient g is averaged over the ranks before the optimizer's step; each rank's loss gradient is
        first scaled by its ``loss_scale`` (1 but for an unevenly split last batch; :mod:`minibng.data.batching`).  A
        rank whose logits are not finite sends a NaN gradient, which stops every rank at the next check."""
        model, opt = self.model, self.optimizer
        loss_sum, norm_sum, steps = 0, 0, 0
        for x, y in self.train_batches:
            loss_scale = getattr(self.train_batches, "loss_scale", 1.0)
            try:
                loss = self.loss_fn(model(x), y)
            except NonFiniteValueError:
                if self.world.size == 1:
                    self._raise_non_finite(epoch, steps + 1)
                loss = None
            opt.zero_grad()
            if loss is None:   # another rank may be fine: send NaN through the all-reduce, so every rank stops
                opt.flat.g[...] = math.nan
                loss = opt.flat.g[0].copy()   # NaN on g's device: a Python float and a CuPy sum do not mix
            else:
                dy = self.loss_fn.backward()
                model.backward(dy if loss_scale == 1 else dy * loss_scale)
                loss = loss if loss_scale == 1 else loss * loss_scale
            if self.world.size > 1:
                self.world.allreduce_mean(opt.flat.g)
            opt.step()
            for callback in self.callbacks:
                if hasattr(callback, "on_step_end"):
                    callback.on_step_end(self)
            loss_sum = loss_sum + loss   # a new sum each step: never an alias of a loss array
            steps += 1
            norms = opt.block_norms          # None when the optimizer was built with track_norms=False
            if norms is not None:
                norm_sum = norm_sum + norms
            if steps % self.check_every == 0:
                self._guard(loss_sum, norm_sum, epoch, steps)
            if bar is not None and (steps % self.check_every == 0 or backend.device_of(loss) == "cpu"):
                bar.set_postfix(loss=f"{float(loss_sum) / steps:.4f}", refresh=False)   # a GPU's is read rarely
            if bar is not None:
                bar.update()
        return loss_sum, norm_sum, steps

    def _guard(self, loss_sum, norm_sum, epoch, step):
        """Stop if any loss or block norm since the epoch began (their running sums) is NaN/∞; one device→host
        read."""
        xp = backend.get_array_module(loss_sum)
        finite = xp.isfinite(loss_sum) & xp.isfinite(xp.asarray(norm_sum)).all()
        if not self.world.agree(bool(finite)):  # every rank stops, or none
            self._raise_non_finite(epoch, step)

    def _guard_state(self, epoch):
        """Before the epoch is recorded and checkpointed: stop if any parameter or floating buffer (BatchNorm's running
        statistics) holds NaN/∞, naming them.  A checkpoint holding them could not be resumed (``load_state_dict``
        refuses them), and they can escape the check of the loss: a float32 running variance overflows to ∞ while
        the batch statistics keep the loss finite, and the epoch's last step can make a parameter ∞ after its loss
        was taken.  One device→host read, and a second one to name the culprits."""
        arrays = _floating_state(self.model)
        xp = backend.get_array_module(arrays[0][2])
        finite = xp.stack([xp.isfinite(array).all() for _, _, array in arrays])
        if not self.world.agree(bool(finite.all())):  # every rank stops, or none
            culprits = [(kind, name) for (kind, name, _), ok in zip(arrays, backend.asnumpy(finite)) if not ok]
            self._raise_non_finite(epoch, None, culprits)

    def _raise_non_finite(self, epoch, step, culprits=()):
        """Raise NonFiniteError for ``epoch`` (by ``step``, or by its end), naming the ``culprits`` ((kind, dotted
        name): ("buffer", "1.running_var")), or the loss or a gradient when there are none."""
        saved = self.out is not None and os.path.exists(self.checkpoint_path)
        kept = (f"the last good checkpoint ({self.checkpoint_path}, after epoch {len(self.history)}) was kept"
                if saved else "no checkpoint was written")
        what = ", ".join(f"{kind} '{name}'" for kind, name in culprits) if culprits else "the loss or a gradient"
        when = f"in epoch {epoch} by step {step}" if step is not None else f"by the end of epoch {epoch}"
        raise NonFiniteError(f"{self.description}: {what} became NaN/infinite {when} (lr {self.optimizer.lr}); {kept}",
                             epoch=epoch, step=step, names=[name for _, name in culprits],
                             checkpoint=self.checkpoint_path if saved else None, finished_epochs=len(self.history))


def _epoch_count(epochs) -> int:
    """``epochs`` as an int: a whole number ≥ 0 (an int or a NumPy integer; never a float, a text or a bool)."""
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral):
        raise TypeError(f"Trainer: epochs must be a whole number of epochs (an int), got {type(epochs).__name__} "
                        f"{epochs!r}")
    if epochs < 0:
        raise ValueError(f"Trainer: epochs must be >= 0, got {epochs}")
    return int(epochs)


def _output_folder(out):
    """``out`` as given (None, or a path naming a folder that exists or can be made); a file on the way is a
    ValueError."""
    if out is None:
        return None
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"Trainer: out must be a folder's path (str or os.PathLike) or None, got {type(out).__name__} "
                        f"{out!r}")
    for place in (Path(out), *Path(out).absolute().parents):
        if place.exists():
            if not place.is_dir():
                raise ValueError(f"Trainer: out must be a folder, but {place} is a file; give the path of a folder "
                                 "(it is made if missing)")
            break
    return out


def _buffers(model):
    return [getattr(m, name) for m in model.modules() for name in m._buffers]


def _floating_state(model):
    """(kind, dotted name, array) of every parameter and every floating buffer of ``model``."""
    arrays = [("parameter", name, p.data) for name, p in model.named_parameters()]
    arrays += [("buffer", name, b) for name, b in model.named_buffers() if b.dtype.kind == "f"]
    return arrays


def _require_batches(what, batches):
    if hasattr(batches, "__len__") and len(batches) == 0:
        raise ValueError(f"Trainer: {what} holds no batches (0 samples); an epoch would train or evaluate on nothing "
                         "and report NaN. Give it data (at least one sample)")


def _progress_bar(total, description, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm  # noqa: PLC0415 - imported only when a bar is shown

    return tqdm(total=total, desc=description, unit="step", leave=False, dynamic_ncols=True)
