"""The errors a training run raises, each carrying its data as attributes (which setting, which values, which file).

Their messages speak of settings and folders, never of a command line: a script that turns them into advice about
its own flags reads the attributes (``minibng.examples.session.advice`` does).

- :class:`NonFiniteError`: the loss, a gradient, a parameter or a buffer became NaN or infinite.
- :class:`CheckpointError`: a checkpoint cannot be read or does not belong to the run; the refusals of a resume
  that could be fixed by running differently are its subclasses :class:`ChangedSettingsError`,
  :class:`OtherWorldSizeError` and :class:`FewerEpochsError`.
- :class:`FolderLockedError`: another run is writing into the output folder.
"""
from __future__ import annotations

import json
from typing import Any, NamedTuple

__all__ = ["NonFiniteError", "CheckpointError", "SettingDifference", "ChangedSettingsError", "OtherWorldSizeError",
           "FewerEpochsError", "FolderLockedError", "NOT_RECORDED"]


class _NotRecorded:
    """The value of a setting one side of a comparison does not record."""

    def __repr__(self):
        return "NOT_RECORDED"


NOT_RECORDED = _NotRecorded()


class NonFiniteError(RuntimeError):
    """The loss, a gradient, a parameter or a buffer became NaN or infinite; the last good checkpoint was kept.

    Attributes: ``epoch``; ``step``, the step by which it was seen (None when it was seen at the end of the epoch,
    in a parameter or buffer); ``names``, the parameters and buffers holding NaN or ∞, by dotted name (empty when the
    loss or a gradient was); ``checkpoint``, the path of the checkpoint kept (None if there is none); and
    ``finished_epochs``, the epochs that checkpoint holds."""

    def __init__(self, message, *, epoch, step, names=(), checkpoint=None, finished_epochs=0):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.names = tuple(names)
        self.checkpoint = checkpoint
        self.finished_epochs = finished_epochs


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not belong to the run that tries to resume from it (``path``)."""

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = path


def what_to_do(path) -> str:
    """The advice a CheckpointError about a damaged or foreign checkpoint ends with."""
    return (f"delete {path} to start that run afresh, or resume from another folder "
            "(the checkpoint that run wrote)")


class SettingDifference(NamedTuple):
    """One setting whose value in a checkpoint's config differs from the resuming run's (``NOT_RECORDED`` where a
    side lacks it)."""

    setting: str
    saved: Any
    given: Any

    def __str__(self):
        return f"{self.setting}: {_shown(self.saved)} in the checkpoint, {_shown(self.given)} now"


def _shown(value):
    return "not recorded" if value is NOT_RECORDED else json.dumps(value)


class ChangedSettingsError(CheckpointError):
    """The resuming run's settings differ from those the checkpoint was written with.

    ``differences``: a list of :class:`SettingDifference`; ``changeable``: the settings that may change on resume.
    Resuming would train on the checkpoint's values while recording the new ones."""

    def __init__(self, path, differences, changeable):
        self.differences = list(differences)
        self.changeable = tuple(changeable)
        super().__init__(
            f"cannot resume from {path}: it was written with other settings than this run's:\n  "
            + "\n  ".join(map(str, self.differences))
            + f"\nOnly {' and '.join(self.changeable)} may change on resume. Rerun with the checkpoint's settings to "
            "continue that run, or start the new settings in another output folder", path)


class OtherWorldSizeError(CheckpointError):
    """The checkpoint was written by a run of ``saved_world_size`` processes, this run has ``world_size``."""

    def __init__(self, path, saved_world_size, world_size):
        self.saved_world_size = saved_world_size
        self.world_size = world_size
        super().__init__(
            f"checkpoint {path} was written by a run of {saved_world_size} process(es), this run has {world_size}: "
            "the data shards, every rank's random streams and the effective batch depend on it; resume it with "
            f"{saved_world_size} process(es), or start afresh in another output folder", path)


class FewerEpochsError(CheckpointError):
    """The checkpoint holds ``finished_epochs`` epochs, more than the ``epochs`` the resuming run asks for."""

    def __init__(self, path, finished_epochs, epochs):
        self.finished_epochs = finished_epochs
        self.epochs = epochs
        super().__init__(
            f"checkpoint {path} holds {finished_epochs} finished epochs, more than the {epochs} this run asks for; "
            f"ask for at least {finished_epochs} epochs to use it, or start afresh in another output folder", path)


class FolderLockedError(ValueError):
    """Another run is writing into ``folder``; ``holder`` describes it (process id, host, start time)."""

    def __init__(self, folder, holder):
        self.folder = folder
        self.holder = holder
        super().__init__(
            f"{folder} is in use by another run (lock held by {holder}): two runs writing into one folder would "
            "overwrite each other's checkpoints and logs. Wait for that run to finish, or choose another output "
            "folder")
