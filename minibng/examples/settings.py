"""The settings of one experiment: its flags judged into one :class:`Settings` value, before any data is read or
any folder made (:func:`judge` reads the system — its cores, a GPU, the environment — and changes nothing).

Judging turns text into values and values into what the run will use:

- lists (``--optimizers``, ``--seeds``, ``--depth`` …) hold no empty and no repeated item;
- ``--limit`` becomes the number of training examples used: at most the data set's (``--limit all``, or more than
  there are: the data set's size, said in a note), and at least one per rank;
- ``--threads`` becomes at most the cores this process may use (more would spin and stall; said in a note);
- ``--data-dir`` must be a folder that exists (it is never made), ``--device`` one that CuPy can use, and
  ``MINIBNG_DOWNLOAD_TIMEOUT`` a number of seconds.

The output folder is judged apart, by the one rank that writes it (:mod:`.out_folder`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field

from .. import backend, optim
from ..data import download
from .flags import UsageError, integer_list, name_list, parse

__all__ = ["Settings", "judge", "NOT_IN_THE_RECORD", "usable_cores"]

NOT_IN_THE_RECORD = {"recorded": False}   # a field's metadata: the experiment's record leaves it out (see Settings)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What one experiment runs, as its flags decided it.  Every field but those marked ``NOT_IN_THE_RECORD`` shapes
    the runs: :meth:`recorded` gives them, as the experiment's record in its folder keeps them (a resume checks
    them).  The ranks of an MPI job compare :meth:`shared_by_every_rank`.  Each script adds its own fields (a
    subclass: ``depths``, ``bptts`` …)."""

    script: str
    dataset: str
    optimizers: tuple[str, ...]
    epochs: int | None               # None: the paper's, per configuration (MNIST's 20/30/50 by depth)
    seeds: tuple[int, ...]
    lr: float | None                 # None: each preset's
    batch_size: int
    limit: int                       # training examples used (the data set's size when all of it is)
    data_sizes: dict                 # the data set's examples per split ("train", "test" …), as published
    threads: int                     # as used (capped at the usable cores)
    dtype: str
    lr_scaling: str
    world_size: int
    device: str = field(metadata=NOT_IN_THE_RECORD)
    data_dir: str | None = field(metadata=NOT_IN_THE_RECORD)
    out: str = field(metadata=NOT_IN_THE_RECORD)
    resume: bool = field(metadata=NOT_IN_THE_RECORD)
    progress: bool = field(metadata=NOT_IN_THE_RECORD)
    command: tuple[str, ...] = field(metadata=NOT_IN_THE_RECORD)   # the command as typed: python -m … and its flags
    notes: tuple[str, ...] = field(metadata=NOT_IN_THE_RECORD)     # what judging decided that the user should hear

    def recorded(self) -> dict:
        """The settings that shape the runs, as JSON values (tuples as lists)."""
        chosen = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata != NOT_IN_THE_RECORD}
        return json.loads(json.dumps(chosen))

    def shared_by_every_rank(self) -> dict:
        """What every rank of an MPI job must hold alike, as JSON values: every recorded setting but ``threads`` (a
        node's own: it changes only the last digits); beside them, ``resume`` (a rank that resumes reads rank 0's
        checkpoint in collectives the others would never call) and the kind of ``device``, cpu or gpu (which way
        arrays travel; the GPU's index is each rank's own).  Left out: threads, progress, data_dir, out, command and
        notes."""
        shared = {name: value for name, value in self.recorded().items() if name != "threads"}
        device_kind, _ = backend.parse_device(self.device)
        return {**shared, "resume": self.resume, "device": device_kind}

    @property
    def limited(self) -> bool:
        """True when --limit leaves out some training examples."""
        return self.limit < self.data_sizes["train"]


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the system says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def judge(script, argv, world_size, cores=None):
    """The :class:`Settings` of ``script`` for the command line ``argv`` (a list) under ``world_size`` processes;
    ``cores``: the usable cores (default: :func:`usable_cores`).  Raises :class:`UsageError`."""
    flags = parse(script, argv)
    shared = _shared(script, flags, world_size, usable_cores() if cores is None else cores)
    shared["command"] = ("python", "-m", f"minibng.examples.{script.name}", *argv)
    return script.judge(flags, shared, world_size)


def _shared(script, flags, world_size, cores) -> dict:
    """The fields of :class:`Settings` every script has, judged (but ``command``)."""
    dataset = flags.dataset or script.datasets[0]
    sizes = dict(script.data_sizes[dataset])
    optimizers = (tuple(script.paper_optimizers) if flags.optimizers == "paper"
                  else name_list("--optimizers", flags.optimizers, optim.preset_names(), "optimizer"))
    for flag in ("epochs", "batch_size", "threads"):
        value = getattr(flags, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if flags.lr is not None and not (math.isfinite(flags.lr) and flags.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {flags.lr}")
    _check_device(flags.device)
    _check_data_dir(flags.data_dir, dataset)
    _check_download_timeout()
    limit, limit_notes = _limit(flags.limit, sizes["train"], script.limit_unit, dataset, world_size)
    threads, thread_notes = _threads(flags.threads, cores)
    return {"script": script.name, "dataset": dataset, "optimizers": optimizers, "epochs": flags.epochs,
            "seeds": integer_list("--seeds", flags.seeds, 0), "lr": flags.lr, "batch_size": flags.batch_size,
            "limit": limit, "data_sizes": sizes, "threads": threads, "dtype": flags.dtype,
            "lr_scaling": flags.lr_scaling, "world_size": world_size, "device": flags.device,
            "data_dir": flags.data_dir, "out": flags.out, "resume": flags.resume, "progress": not flags.no_progress,
            "notes": limit_notes + thread_notes}


def _limit(value, available, unit, dataset, world_size):
    """(examples used, notes) for ``--limit value`` of a training set of ``available`` examples."""
    if value is None or value == "all":
        used, notes = available, ()
    elif value < 1:
        raise UsageError(f"--limit must be >= 1, got {value}")
    elif value > available:
        used = available
        notes = (f"--limit {value:,} is more than the {available:,} {unit} of {dataset}: all {available:,} are "
                 f"used, and recorded as --limit {available}",)
    else:
        used, notes = value, ()
    if used < world_size:
        raise UsageError(f"--limit {used} is fewer than the {world_size} processes of this run: each rank needs at "
                         f"least one of the {unit} of every step; give --limit {world_size} or more")
    return used, notes


def _threads(value, cores):
    """(threads used, notes): at most ``cores``."""
    if value <= cores:
        return value, ()
    return cores, (f"--threads {value} is more than the {cores} core(s) this process may use: {cores} thread(s) are "
                   "used (threads beyond free cores spin and stall the others)",)


def _check_device(device):
    try:
        backend.array_module_for(device)
    except (RuntimeError, ValueError, TypeError) as e:
        raise UsageError(f"--device {device}: {e}") from None


def _check_data_dir(data_dir, dataset):
    """--data-dir must name a folder that exists: it is looked in, never made."""
    if data_dir is None:
        return
    if not os.path.exists(data_dir):
        raise UsageError(f"--data-dir {data_dir} does not exist; give an existing folder that holds '{dataset}/' (or "
                         "that it may be downloaded into), or leave --data-dir out to search the usual places "
                         "(docs/data.md)")
    if not os.path.isdir(data_dir):
        raise UsageError(f"--data-dir {data_dir} is a file; it must name a folder")


def _check_download_timeout():
    try:
        download.default_timeout()
    except ValueError as e:
        raise UsageError(str(e), show_usage=False) from None
