"""The experiment's output folder (``--out``), and every rule for starting or resuming one: judged by reading only,
before any data is read or anything is made, and judged again once the folder is locked.

An experiment's folder holds one folder per run (``depth18-adamng-seed0/``, each with its checkpoint), the
tables and figures, and ``experiment.json``, the record of which script wrote it and with what settings
(:meth:`Settings.recorded`).  :func:`judge` refuses, naming what is wrong:

- a path with a file on the way, or whose nearest existing folder cannot be written into (read-only);
- a run's own folder as ``--out`` (it holds a checkpoint.npz of its own);
- a folder whose record names another script, or other settings (any but ``epochs`` and ``threads``, which may
  change on resume; the difference is named, with both values);
- a folder that holds files but no record: not an experiment's folder, or one written by an earlier minibng (before
  the record existed; its runs cannot be resumed, since their script and settings cannot be checked) — its files
  (metrics.csv …) would be overwritten.  Hidden files (minibng's lock, a killed write's temporary file) don't count;
- a folder holding checkpoints, without ``--resume`` (a fresh start would overwrite them);
- ``--resume`` where there is nothing to resume (no folder, no checkpoint).

A checkpoint counts whether it is a file or a symbolic link, even one that points nowhere: resuming such a run is an
error that says so (:func:`minibng.train.load_npz`), never a fresh start.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..train import CHANGEABLE_ON_RESUME, atomic_write
from ..train.resume import config_differences
from .flags import UsageError

__all__ = ["RECORD_NAME", "Judgement", "judge", "run_checkpoints", "write_record"]

RECORD_NAME = "experiment.json"
_RUN_FILES = ("checkpoint.npz", "metrics.jsonl")   # what a run's own folder holds


@dataclass(frozen=True)
class Judgement:
    """What :func:`judge` found: whether ``--out`` exists yet, and the checkpoints in it."""

    exists: bool
    checkpoints: tuple[Path, ...]


def run_checkpoints(out) -> tuple[Path, ...]:
    """The checkpoint of every run folder in ``out`` (files and symbolic links, even dangling ones), sorted."""
    try:
        folders = [entry for entry in os.scandir(out) if entry.is_dir()]
    except OSError:
        return ()
    found = [Path(entry.path) / "checkpoint.npz" for entry in folders]
    return tuple(sorted(path for path in found if os.path.lexists(path)))


def judge(settings) -> Judgement:
    """Judge ``settings.out`` for this experiment (the module docstring's rules); raises :class:`UsageError`."""
    out = Path(settings.out)
    place = _nearest_existing(out)
    if not place.is_dir():
        raise UsageError(f"--out {settings.out}: {place} is not a folder")
    if not _writable(place):
        what = "is on a read-only file system" if _read_only_file_system(place) else "is not writable"
        raise UsageError(f"--out {settings.out}: {place} {what}; give another --out" if place == out
                         else f"--out {settings.out}: cannot create it: {place} {what}")
    if place != out:
        if settings.resume:
            raise UsageError(f"--resume: --out {settings.out} does not exist, so there is nothing to resume (a typo?); "
                             "to start these runs, leave out --resume")
        return Judgement(exists=False, checkpoints=())
    own = [name for name in _RUN_FILES if os.path.lexists(out / name)]
    if own:
        raise UsageError(f"--out {settings.out} is the folder of one run (it holds {own[0]}); give the experiment's "
                         f"folder, {out.absolute().parent}, or another --out")
    record = _read_record(out)
    if record is None:
        _check_unrecorded_folder(out, settings)
    else:
        _check_record(record, settings)
    checkpoints = run_checkpoints(out)
    if checkpoints and not settings.resume:
        names = ", ".join(c.parent.name for c in checkpoints[:3]) + (", …" if len(checkpoints) > 3 else "")
        raise UsageError(f"--out {settings.out} holds the checkpoints of earlier runs ({names}); pass --resume to "
                         "continue them, or choose another --out (a fresh start would overwrite them)")
    if settings.resume and not checkpoints:
        raise UsageError(f"--resume: --out {settings.out} holds no checkpoint (no run of it finished an epoch), so "
                         "there is nothing to resume; to start these runs, leave out --resume")
    return Judgement(exists=True, checkpoints=checkpoints)


def _check_unrecorded_folder(out: Path, settings):
    """Refuse a folder without a record that holds anything but hidden files (minibng's lock and the temporary files
    of killed writes are hidden): its files would be overwritten, or its runs could not be checked for a resume."""
    visible = sorted(name for name in os.listdir(out) if not name.startswith("."))
    if not visible:
        return
    shown = ", ".join(visible[:3]) + (", …" if len(visible) > 3 else "")
    raise UsageError(f"--out {settings.out} holds files ({shown}) but no {RECORD_NAME}, the record of the script and "
                     "settings that wrote an experiment's folder: it was written by an earlier minibng, or is not an "
                     "experiment's folder. Its files would be overwritten, and runs without a record cannot be "
                     "resumed (their settings cannot be checked): give an empty or new folder as --out")


def write_record(settings):
    """Write ``experiment.json`` into ``settings.out`` (which exists): the script, minibng's version, the settings."""
    record = {"example": settings.script, "minibng": __version__, "settings": settings.recorded()}
    with atomic_write(Path(settings.out) / RECORD_NAME, "w") as f:
        f.write(json.dumps(record, indent=1, sort_keys=True) + "\n")


def _nearest_existing(path: Path) -> Path:
    """``path`` if it exists, else its nearest ancestor that does (a file there means no folder can be made)."""
    for place in (path, *path.absolute().parents):
        if os.path.lexists(place):
            return place
    return Path(path.absolute().anchor)


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK) and not _read_only_file_system(folder)


def _read_only_file_system(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):   # no statvfs (Windows): os.access has the say
        return False


def _read_record(out: Path):
    path = out / RECORD_NAME
    if not os.path.lexists(path):
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"--out {out}: {path} cannot be read as an experiment's record ({e}); it was not written by "
                         "minibng, or is damaged: give another --out") from None
    if not (isinstance(record, dict) and isinstance(record.get("settings"), dict) and "example" in record):
        raise UsageError(f"--out {out}: {path} is not an experiment's record (no example and settings); give another "
                         "--out")
    return record


def _check_record(record, settings):
    """Refuse a folder whose record names another script, or settings other than ``settings`` (but those that may
    change on resume)."""
    out = settings.out
    if record["example"] != settings.script:
        raise UsageError(f"--out {out} holds an experiment of {record['example']}, not of {settings.script}; its "
                         "files would be replaced: give another --out")
    differences = config_differences(record["settings"], settings.recorded(), CHANGEABLE_ON_RESUME)
    if not differences:
        return
    shown = "; ".join(f"{d.setting}: {_shown(d.saved)} there, {_shown(d.given)} now" for d in differences)
    world = next((d for d in differences if d.setting == "world_size" and isinstance(d.saved, int)), None)
    advice = (f"resume it with mpiexec -n {world.saved}" if world is not None and world.saved > 1
              else "resume it with one process" if world is not None else "continue it with the flags that started it")
    raise UsageError(f"--out {out} holds an experiment with other settings ({shown}); only "
                     f"{' and '.join(CHANGEABLE_ON_RESUME)} may change: {advice}, or give another --out for these "
                     "settings")


def _shown(value):
    return "not recorded" if not isinstance(value, (int, float, str, list, dict, type(None))) else json.dumps(value)
