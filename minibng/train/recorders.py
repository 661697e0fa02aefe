"""Trainer callbacks that record what happens inside an epoch.

- :class:`BlockStepRecorder`: every N steps, each block's gradient norm ‖g^i_t‖ and the length of the step it took,
  ‖Δx^i_t‖ = ‖x^i_{t+1} − x^i_t‖, averaged over those N steps.  NG equalizes the second, not the first: in a deep
  sigmoid MLP under AdamNG the lower layers' ‖g^i‖ stay orders of magnitude below the top layer's while every
  layer's step has the same length.  Recorded at a resolution finer than an epoch, the records show AdamNG leave
  the plateau inside the first epoch (:func:`minibng.plot.block_steps` draws them).
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..backend import asnumpy
from ..files import write_jsonl

__all__ = ["BlockStepRecorder"]

RECORD_KEYS = {"step", "epoch", "steps", "gradient_norms", "step_norms"}


class BlockStepRecorder:
    """Record, every ``every`` optimizer steps, the mean over those steps of each block's

        ‖g^i_t‖                       the gradient norm (``opt.block_norms``; with ``decay="before"``, of g + λx)
        ‖Δx^i_t‖ = ‖u^i_t‖            the step: x_{t+1} = x_t − u_t, u_t the output of the chain's last link

    for every block i of the optimizer's partition.  ‖u^i_t‖ is the step the optimizer takes; the float32 parameters
    move by it up to the rounding of x_t − u_t (a coordinate whose step is below half the spacing of its value does
    not move).  Both norms are exact across the float range (:meth:`minibng.optim.Partition.norms`) and are summed on
    the parameters' device: a GPU run reads them back once per record, never per step.  Windows restart with every
    epoch (the last one of an epoch may be shorter), so a resumed run records what an uninterrupted one would.

    ``records``: one dict per window, ``{"step": t (the optimizer's step count at its end), "epoch": its position in
    epochs (2.5 = half-way through epoch 3), "steps": the steps it averages, "gradient_norms": [B floats],
    "step_norms": [B floats]}``; ``block_names``: the optimizer's blocks.  With ``filename`` (default
    ``block_steps.jsonl``) and the Trainer's ``out`` set, the records are written there after every epoch (rank 0,
    atomically), and a resumed run reads back those up to its checkpoint's step.  One recorder per Trainer::

        recorder = BlockStepRecorder(every=20)
        Trainer(model, loss_fn, opt, batches, epochs=1, callbacks=[recorder]).fit()
        plot.block_steps({"AdamNG": recorder}, "steps.png")
    """

    def __init__(self, every=20, filename="block_steps.jsonl"):
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"BlockStepRecorder: every must be a whole number of steps >= 1, got {every!r}")
        if filename is not None and (not isinstance(filename, str) or not filename or os.sep in filename):
            raise ValueError(f"BlockStepRecorder: filename must be a file name within the run's folder, or None; "
                             f"got {filename!r}")
        self.every, self.filename = int(every), filename
        self.records: list[dict] = []
        self.block_names: list[str] = []
        self.optimizer = None
        self._window = None   # device sums of the window in progress: (Σ‖g^i‖, Σ‖u^i‖), and its step count
        self._window_steps = 0
        self._epochs_done = 0       # epochs finished before the one in progress
        self._steps_in_epoch = 0

    # -- the Trainer's callbacks ----------------------------------------------------------------------------------
    def on_fit_start(self, trainer):
        """Hook into the optimizer's chain (and, for a resumed run, read back the records up to its step)."""
        optimizer = trainer.optimizer
        if self.optimizer is not None and self.optimizer is not optimizer:
            raise ValueError("BlockStepRecorder: this recorder already records another optimizer's run; "
                             "create one recorder per Trainer")
        if self.optimizer is None:
            self.optimizer = optimizer
            self.block_names = list(optimizer.flat.partition.names)
            optimizer.chain.observers.append(self._observe)
        self._window, self._window_steps, self._steps_in_epoch = None, 0, 0
        path = self._path(trainer)
        if trainer.history and path is not None and os.path.exists(path):
            self.records = _read_records(path)
        self.records = [record for record in self.records if record["step"] <= optimizer.step_count]

    def on_step_end(self, trainer):
        self._epochs_done = len(trainer.history)
        self._steps_in_epoch += 1
        if self._window_steps == self.every:
            self._record(trainer)

    def on_epoch_end(self, trainer, metrics):
        """Close the epoch's last window, and write the records to the run's folder."""
        if self._window_steps:
            self._record(trainer)
        self._steps_in_epoch = 0
        path = self._path(trainer)
        if path is not None and trainer.world.rank == 0:
            write_jsonl(path, self.records)

    def close(self):
        """Stop recording (the records stay)."""
        if self.optimizer is not None and self._observe in self.optimizer.chain.observers:
            self.optimizer.chain.observers.remove(self._observe)

    # -- what a step adds ---------------------------------------------------------------------------------------
    def _observe(self, link, v_in, v_out, it):
        """After the chain's last link: add this step's ‖g^i_t‖ and ‖u^i_t‖ to the window's sums, on the device."""
        if link is not self.optimizer.chain.links[-1]:
            return
        partition, measured = it.partition, it.block_norms   # ‖g^i‖, unless the chain has no BlockNorms link
        if measured is None:
            gradient_norms, step_norms = _block_norms(partition, [self.optimizer.flat.g, v_out])
        else:
            gradient_norms, (step_norms,) = measured, _block_norms(partition, [v_out])
        norms = partition.xp.stack([gradient_norms, step_norms])
        self._window = norms if self._window is None else self._window + norms
        self._window_steps += 1

    def _record(self, trainer):
        means = asnumpy(self._window) / self._window_steps   # the one device→host read of the window
        epoch = self._epochs_done + self._steps_in_epoch / len(trainer.train_batches)
        self.records.append({"step": int(self.optimizer.step_count), "epoch": epoch, "steps": self._window_steps,
                             "gradient_norms": [float(v) for v in means[0]],
                             "step_norms": [float(v) for v in means[1]]})
        self._window, self._window_steps = None, 0

    def _path(self, trainer):
        return None if self.filename is None or trainer.out is None else os.path.join(trainer.out, self.filename)

    # -- reading the records ------------------------------------------------------------------------------------
    def column(self, key):
        """``key`` of every record as an array: "step" and "epoch" (R,), "gradient_norms" and "step_norms" (R, B)."""
        return np.array([record[key] for record in self.records], dtype=float)

    def __repr__(self):
        return f"BlockStepRecorder(every={self.every}, {len(self.records)} records of {len(self.block_names)} blocks)"


def _block_norms(partition, vectors):
    """[‖v^i‖ for every block] of each vector, on the device.  The norms use the partition's scratch vector as their
    work space; an update held there (a link may return it in scratch) is measured on a copy and put back."""
    scratch = partition.scratch
    saved = scratch.copy() if any(v is scratch for v in vectors) else None
    norms = [partition.norms(saved if v is scratch else v) for v in vectors]
    if saved is not None:
        scratch[...] = saved
    return norms


def _read_records(path):
    """The records a recorder wrote to ``path``; a ValueError naming the file if it holds anything else."""
    try:
        with open(path, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    except ValueError as error:   # not JSON, or not UTF-8
        raise _not_records(path, error) from error
    for record in records:
        if not isinstance(record, dict) or not RECORD_KEYS <= record.keys():
            raise _not_records(path, f"a line holds {record!r:.80}")
    return records


def _not_records(path, why):
    return ValueError(f"BlockStepRecorder: {path} does not hold a BlockStepRecorder's records ({why}); remove it or "
                      "give the recorder another filename")
