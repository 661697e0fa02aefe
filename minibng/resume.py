"""A Trainer's checkpoint: what it holds, and the checks before a run resumes from it.

Keys of the .npz (see :mod:`minibng.checkpoint`): ``model/<name>`` (parameters and buffers),
``optim/<key>`` (the optimizer's state_dict), ``rng/stream/<name>`` (every random stream),
``rng/batches/<key>`` (the data order's position), ``meta/epoch``, ``meta/history`` and ``meta/config``.

Before anything is restored, a checkpoint must

- be readable, and hold ``meta/history``: a list of per-epoch dicts numbered 1, 2, …, n, with n no larger than
  the epochs the resuming run asks for;
- have been written by a run of as many processes as this one (``meta/world_size``, 1 when absent): the data shards,
  the ranks' random streams and the effective batch depend on it (docs/distributed.md);
- have been written with the same ``config`` as the resuming run, except for the keys that are safe to change on
  resume (:data:`CHANGEABLE_ON_RESUME`: more epochs, and the CPU thread count, which changes only the last digits
  of the arithmetic).  Otherwise the run would train on the checkpoint's values while recording the new ones;
- hold a non-negative optimizer step count.

Then the model, the optimizer, the random streams and the data order are restored.  If one of them refuses the
saved state (another model, another optimizer, a data-order position past the end of an epoch), what was restored
is put back.  Every refusal is a :class:`~minibng.checkpoint.CheckpointError` that names the file, the difference,
and what to do.
"""
from __future__ import annotations

import json

import numpy as np

from . import backend
from .checkpoint import CheckpointError, load_npz, save_npz, what_to_do

__all__ = ["CHANGEABLE_ON_RESUME", "save_checkpoint", "restore_checkpoint", "config_differences", "random_streams"]

CHANGEABLE_ON_RESUME = ("epochs", "threads")
_ABSENT = object()


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


def _describe(value):
    return "not recorded" if value is _ABSENT else json.dumps(value)


def config_differences(saved: dict, given: dict, changeable=CHANGEABLE_ON_RESUME) -> list[str]:
    """One line per key whose value differs between the checkpoint's config and the resuming run's (compared as
    JSON, so a tuple equals the list it was saved as), keys in ``changeable`` excepted."""
    given = json.loads(json.dumps(given))
    lines = []
    for key in sorted(set(saved) | set(given), key=str):
        old, new = saved.get(key, _ABSENT), given.get(key, _ABSENT)
        if key not in changeable and old != new:
            lines.append(f"{key}: {_describe(old)} in the checkpoint, {_describe(new)} now")
    return lines


def _section(data, prefix):
    return {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}


def _check_meta(data, path, trainer):
    history, config = data.get("meta/history"), data.get("meta/config")
    missing = [k for k, v in (("meta/history", history), ("meta/config", config)) if v is None]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}: it was not written by a Trainer, or "
                              "is damaged; " + what_to_do(path))
    if (not isinstance(history, list) or not all(isinstance(h, dict) for h in history)
            or [h.get("epoch") for h in history] != list(range(1, len(history) + 1))):
        raise CheckpointError(f"checkpoint {path}: meta/history is not a list of epochs 1, 2, …; " + what_to_do(path))
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path}: meta/config is not a dict; " + what_to_do(path))
    world_size = data.get("meta/world_size", 1)
    if world_size != trainer.world.size:
        raise CheckpointError(f"checkpoint {path} was written by a run of {world_size} process(es), this run has "
                              f"{trainer.world.size}: the data shards, every rank's random streams and the effective "
                              f"batch depend on it; resume with mpiexec -n {world_size}, or start afresh in another "
                              "folder (--out)")
    if len(history) > trainer.epochs:
        raise CheckpointError(f"checkpoint {path} holds {len(history)} finished epochs, more than the {trainer.epochs} "
                              f"this run asks for; ask for at least {len(history)} epochs (--epochs) to use it, or "
                              "start afresh in another folder")
    differences = config_differences(config, trainer.config)
    if differences:
        raise CheckpointError(
            f"cannot resume from {path}: it was written with other settings than this run's:\n  "
            + "\n  ".join(differences)
            + f"\nOnly {' and '.join(CHANGEABLE_ON_RESUME)} may change on resume. Rerun with the checkpoint's settings "
            "to continue that run, or start the new settings in another folder (--out)")
    step = data.get("optim/step")
    if step is not None and not (np.ndim(step) == 0 and np.asarray(step).dtype.kind in "iuf" and float(step) >= 0):
        raise CheckpointError(f"checkpoint {path}: optimizer step count {step} is not a count (>= 0); "
                              + what_to_do(path))
    return history


def restore_checkpoint(trainer, path, source=None):
    """Check the checkpoint at ``path`` (see the module docstring) and restore ``trainer`` from it; returns its
    history.  On a refusal the trainer's model, optimizer, streams and data order are as they were.  ``source``:
    the file's bytes (under MPI every rank restores from what rank 0 read), else ``path`` is read."""
    data = load_npz(path, source)
    history = _check_meta(data, path, trainer)
    streams = random_streams(trainer.model, trainer.extra_streams)
    saved_streams = _section(data, "rng/stream/")
    if set(saved_streams) != set(streams):
        raise CheckpointError(f"checkpoint {path} has random streams {sorted(saved_streams)}, this run "
                              f"{sorted(streams)}; it was written by another model; " + what_to_do(path))
    undo = _snapshot(trainer, streams)
    try:
        trainer.model.load_state_dict(_section(data, "model/"))
        trainer.optimizer.load_state_dict(_section(data, "optim/"))
        for name, state in saved_streams.items():
            streams[name].set_state(state)
        trainer.train_batches.set_state(_section(data, "rng/batches/"))
    except (ValueError, TypeError, KeyError) as e:
        undo()
        raise CheckpointError(f"checkpoint {path} does not fit this run ({e}); resume it with the model, optimizer "
                              "and data that wrote it, or " + what_to_do(path)) from None
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
