"""A Trainer's checkpoint: the .npz format, and saving and restoring a run with it.

A checkpoint is one .npz file, pickle-free, whose keys are

- ``model/<name>``: every parameter and buffer of the model (``Module.state_dict``);
- ``optim/<key>``: the optimizer's state_dict (:mod:`minibng.optim.state`);
- ``rng/stream/<name>``: the state of every random stream (dropout masks, augmentation), by module path;
- ``rng/batches/<key>``: the data order's position (``Batches.state``);
- ``meta/epoch``, ``meta/history``, ``meta/config`` and ``meta/world_size``: JSON text (the finished epochs, their
  metrics, the run's settings, its number of processes).

It is written with :func:`~minibng.files.atomic_write` (temporary file, fsync, rename), so an interrupted write
never leaves a half-written checkpoint, and read with ``allow_pickle=False``.  A file that cannot be read as such a
checkpoint (truncated, corrupted, not an .npz, a member that is not plain JSON or a plain array) raises
:class:`~minibng.train.errors.CheckpointError` naming the file.

:func:`restore_checkpoint` first checks that the checkpoint belongs to the resuming run (:mod:`.resume`), then
restores the model, the optimizer, the random streams and the data order, all or nothing: if one of them refuses the
saved state (another model, another optimizer, a data-order position past the end of an epoch) or anything else
stops the restore (an exception of any kind, Ctrl-C), what was restored is put back.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
import zlib

import numpy as np

from .. import backend
from .errors import CheckpointError, what_to_do
from ..files import atomic_write
from .resume import check_resumable

__all__ = ["save_npz", "load_npz", "save_checkpoint", "restore_checkpoint", "random_streams"]


def save_npz(path, arrays: dict):
    """Write ``arrays`` (str -> array-like; dicts/lists under ``meta/`` are stored as JSON text) atomically."""
    stored = {}
    for key, value in arrays.items():
        if key.startswith("meta/"):
            value = np.array(json.dumps(value))
        stored[key] = np.asarray(value)
    buffer = io.BytesIO()
    np.savez(buffer, **stored)
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


def load_npz(path, source=None) -> dict:
    """The arrays of an .npz written by :func:`save_npz`, ``meta/`` entries decoded from JSON; read from ``source``
    (a file object holding its bytes) when given.

    Raises :class:`CheckpointError` (naming ``path`` and what to do) for a missing, truncated or corrupted file."""
    try:
        loaded = np.load(path if source is None else source, allow_pickle=False)
        if not hasattr(loaded, "files"):  # a bare array: an .npy file, not an .npz
            raise CheckpointError(f"checkpoint {path} is a single array (.npy), not a checkpoint (.npz); "
                                  + what_to_do(path), path)
        with loaded as data:
            return {key: json.loads(str(data[key])) if key.startswith("meta/") else data[key] for key in data.files}
    except FileNotFoundError:
        if os.path.islink(path):
            raise CheckpointError(f"checkpoint {path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                                  "restore the file it points to, or delete the link to start that run afresh",
                                  path) from None
        raise CheckpointError(f"checkpoint {path} does not exist", path) from None
    except CheckpointError:
        raise
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        # ValueError covers numpy's refusal of pickled data and JSON that does not decode; its advice to
        # unpickle is never passed on.
        reason = ("it holds pickled data, which minibng never loads" if "pickle" in str(e).lower()
                  else f"{type(e).__name__}: {e}")
        raise CheckpointError(f"checkpoint {path} is damaged or not a minibng checkpoint ({reason}); "
                              + what_to_do(path), path) from None


def random_streams(model, extra=None):
    """Every RandomStream of the model's modules (by dotted name, "model" for the root) and the ``extra`` ones."""
    streams = {name or "model": m.rng for name, m in model.named_modules()
               if isinstance(getattr(m, "rng", None), backend.RandomStream)}
    return {**streams, **dict(extra or {})}


def save_checkpoint(trainer, path):
    """Write ``trainer``'s model, optimizer, random streams, data order, history and config to ``path``."""
    arrays = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in trainer.optimizer.state_dict().items()})
    streams = random_streams(trainer.model, trainer.extra_streams)
    arrays.update({f"rng/stream/{k}": np.array(s.state(), dtype=np.int64) for k, s in streams.items()})
    arrays.update({f"rng/batches/{k}": v for k, v in trainer.train_batches.state().items()})
    arrays.update({"meta/epoch": len(trainer.history), "meta/history": trainer.history, "meta/config": trainer.config,
                   "meta/world_size": trainer.world.size})
    save_npz(path, arrays)


def _section(data, prefix):
    return {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}


def restore_checkpoint(trainer, path, source=None):
    """Check the checkpoint at ``path`` (:func:`.resume.check_resumable`) and restore ``trainer`` from it; returns
    its history.  On a refusal (a :class:`CheckpointError`) or an interruption the trainer's model, optimizer, streams
    and data order are as they were.  ``source``: the file's bytes (under MPI every rank restores from what rank 0
    read), else ``path`` is read."""
    data = load_npz(path, source)
    history = check_resumable(data, path, trainer)
    streams = random_streams(trainer.model, trainer.extra_streams)
    saved_streams = _section(data, "rng/stream/")
    if set(saved_streams) != set(streams):
        raise CheckpointError(f"checkpoint {path} has random streams {sorted(saved_streams)}, this run "
                              f"{sorted(streams)}; it was written by another model; " + what_to_do(path), path)
    undo = _snapshot(trainer, streams)
    try:
        trainer.model.load_state_dict(_section(data, "model/"))
        trainer.optimizer.load_state_dict(_section(data, "optim/"))
        for name, state in saved_streams.items():
            streams[name].set_state(state)
        trainer.train_batches.set_state(_section(data, "rng/batches/"))
    except BaseException as e:   # all or nothing: whatever stopped the restore, put back what it changed
        undo()
        if not isinstance(e, Exception):
            raise   # KeyboardInterrupt, SystemExit: the trainer is as it was, and the interruption goes on
        raise CheckpointError(f"checkpoint {path} does not fit this run ({type(e).__name__}: {e}); resume it with the "
                              "model, optimizer and data that wrote it, or " + what_to_do(path), path) from None
    return history


def _snapshot(trainer, streams):
    """A function that puts the trainer's model, optimizer, streams and data order back as they are now.

    The model's arrays and the optimizer's buffers are copied and written back as they are (they may hold the NaN of
    a diverged run that is going back to its checkpoint, which load_state_dict would refuse)."""
    opt = trainer.optimizer
    arrays = [(p.data, p.data.copy()) for p in trainer.model.parameters()]
    arrays += [(buffer, buffer.copy()) for buffer in opt.rule.state.values()]
    buffers = [(m, name, getattr(m, name).copy()) for m in trainer.model.modules() for name in m._buffers]
    scalars = opt.step_count, opt.lr, opt.base_lr
    stream_states = {name: s.state() for name, s in streams.items()}
    position = trainer.train_batches.state()

    def undo():
        for target, saved in arrays:
            target[...] = saved
        for m, name, saved in buffers:
            setattr(m, name, saved)
        opt.step_count, opt.lr, opt.base_lr = scalars
        for name, state in stream_states.items():
            streams[name].set_state(state)
        trainer.train_batches.set_state(position)

    return undo
