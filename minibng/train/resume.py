"""The checks before a run resumes from a checkpoint (:func:`check_resumable`).

A checkpoint must

- hold ``meta/history`` and ``meta/config``: a list of per-epoch dicts numbered 1, 2, …, n, and a dict;
- have been written by a run of as many processes as this one (``meta/world_size``, 1 when absent): the data shards,
  the ranks' random streams and the effective batch depend on it (docs/distributed.md) — else
  :class:`~.errors.OtherWorldSizeError`;
- hold no more finished epochs n than the resuming run asks for — else :class:`~.errors.FewerEpochsError`;
- have been written with the same ``config`` as the resuming run, except for the settings that are safe to change on
  resume (:data:`CHANGEABLE_ON_RESUME`: more epochs, and the CPU thread count, which changes only the last digits of
  the arithmetic) — else :class:`~.errors.ChangedSettingsError` listing every difference.  Otherwise the run would
  train on the checkpoint's values while recording the new ones;
- hold a non-negative optimizer step count, and random-stream states of two non-negative integers.

Each refusal is a :class:`~.errors.CheckpointError` naming the file, and is raised before anything is restored.
"""
from __future__ import annotations

import json

import numpy as np

from .errors import (NOT_RECORDED, ChangedSettingsError, CheckpointError, FewerEpochsError, OtherWorldSizeError,
                     SettingDifference, what_to_do)

__all__ = ["CHANGEABLE_ON_RESUME", "check_resumable", "config_differences"]

CHANGEABLE_ON_RESUME = ("epochs", "threads")


def config_differences(saved: dict, given: dict, changeable=CHANGEABLE_ON_RESUME) -> list[SettingDifference]:
    """Every setting whose value differs between the checkpoint's config and the resuming run's (compared as JSON,
    so a tuple equals the list it was saved as), sorted by name, the settings in ``changeable`` excepted."""
    given = json.loads(json.dumps(given))
    differences = []
    for setting in sorted(set(saved) | set(given), key=str):
        old, new = saved.get(setting, NOT_RECORDED), given.get(setting, NOT_RECORDED)
        if setting not in changeable and old != new:
            differences.append(SettingDifference(setting, old, new))
    return differences


def check_resumable(data, path, trainer):
    """Check a loaded checkpoint (``data``, from ``path``) against ``trainer`` (see the module docstring); returns its
    history."""
    history, config = data.get("meta/history"), data.get("meta/config")
    missing = [k for k, v in (("meta/history", history), ("meta/config", config)) if v is None]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}: it was not written by a Trainer, or "
                              "is damaged; " + what_to_do(path), path)
    if (not isinstance(history, list) or not all(isinstance(h, dict) for h in history)
            or [h.get("epoch") for h in history] != list(range(1, len(history) + 1))):
        raise CheckpointError(f"checkpoint {path}: meta/history is not a list of epochs 1, 2, …; " + what_to_do(path),
                              path)
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path}: meta/config is not a dict; " + what_to_do(path), path)
    world_size = data.get("meta/world_size", 1)
    if world_size != trainer.world.size:
        raise OtherWorldSizeError(path, world_size, trainer.world.size)
    if len(history) > trainer.epochs:
        raise FewerEpochsError(path, len(history), trainer.epochs)
    differences = config_differences(config, trainer.config)
    if differences:
        raise ChangedSettingsError(path, differences, CHANGEABLE_ON_RESUME)
    step = data.get("optim/step")
    if step is not None and not (np.ndim(step) == 0 and np.asarray(step).dtype.kind in "iuf" and float(step) >= 0):
        raise CheckpointError(f"checkpoint {path}: optimizer step count {step} is not a count (>= 0); "
                              + what_to_do(path), path)
    for key in sorted(k for k in data if k.startswith("rng/stream/")):
        if not _is_stream_state(data[key]):
            raise CheckpointError(f"checkpoint {path}: {key} is not a random stream's state (two integers >= 0, its "
                                  f"seed and counter), got {data[key]!r}; " + what_to_do(path), path)
    return history


def _is_stream_state(state) -> bool:
    """True for what ``RandomStream.state()`` saves: two integers ≥ 0 (seed, counter)."""
    state = np.asarray(state)
    return state.shape == (2,) and state.dtype.kind in "iu" and bool((state >= 0).all())
