"""Running an experiment script, from its command line to its table: ``session.run(SCRIPT, argv)`` is every
script's ``main``.

1. The flags are judged into :class:`~.settings.Settings` (nothing read, nothing made).  A usage error is printed
   once and exits with status 2.  Under ``mpiexec`` every rank compares its settings with the others' in one
   collective first, and where they differ (other flags on one rank) rank 0 names the setting and stops every rank.
2. The output folder is judged by rank 0, the one that writes (:mod:`.out_folder`), and locked if it exists: a
   folder in use stops the script before any data is read.
3. The header: the runs, the device, the data, the folder, the processes, and what judging decided.
4. The data is loaded and its sizes checked against the published ones.
5. The folder is made if it did not exist and locked, judged again under the lock, and its record written.  So a
   start that fails (no data, a bad flag, a folder in use) leaves nothing behind.
6. The runs, the table, the figures.

Ctrl-C ends the script with exit status 130 and the command that continues (under MPI rank 0 prints it, with
``mpiexec -n N``: mpiexec gives Ctrl-C to every rank).  A refusal of the library — a checkpoint that does not fit, a
folder in use, a data set that cannot be found, a file that cannot be written — ends it with one line that says what
to do about the flags, exit status 1; under MPI it stops every rank (:meth:`World.stop_all_on_error`).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import sys

from threadpoolctl import threadpool_limits

from .. import __version__, distributed
from ..data import DatasetError, search_roots
from ..train import (ChangedSettingsError, CheckpointError, FewerEpochsError, FolderLockedError, OtherWorldSizeError,
                     folder_lock)
from . import out_folder
from .experiment import Experiment
from .flags import UsageError, parser
from .settings import judge

__all__ = ["run", "advice"]

OFFLINE_DATASET = "fashion-mnist"   # Debian's package dataset-fashion-mnist installs it from a package mirror


def run(script, argv=None):
    """Run ``script`` (a :class:`~.script.Script`) with the command line ``argv`` (``sys.argv[1:]`` when None); see
    the module docstring.  Ends with SystemExit for every status but success."""
    argv = list(sys.argv[1:] if argv is None else argv)
    world = _world_or_exit(script)
    with contextlib.ExitStack() as stack:
        if world.rank:   # rank 0 alone prints
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
        settings = _settings_or_exit(script, argv, world)
        experiment = Experiment(settings, script, world)
        held = stack.enter_context(contextlib.ExitStack())   # the folder's lock, held until the figures are drawn
        try:
            with world.stop_all_on_error(), threadpool_limits(limits=settings.threads):
                _start(script, settings, world, experiment, held)
        except KeyboardInterrupt:
            if world.rank == 0:
                experiment.redraw()
                print(experiment.interruption(), file=sys.stderr, flush=True)
            raise SystemExit(130) from None


def _world_or_exit(script):
    """This process's world; an MPI setting it cannot start with is one line (from rank 0) and exit status 2."""
    try:
        return distributed.world()
    except distributed.WorldSetupError as e:
        if e.rank == 0:
            print(f"python -m minibng.examples.{script.name}: error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _print_usage_error(script, error):
    if error.show_usage:
        sys.stderr.write(parser(script).format_usage())
    sys.stderr.write(f"python -m minibng.examples.{script.name}: error: {error}\n")
    sys.stderr.flush()


def _settings_or_exit(script, argv, world):
    """The judged settings; a usage error exits with status 2 (printed by rank 0).  Under MPI the ranks first compare
    what they judged: settings that differ, or a usage error on some ranks only, stop every rank with one message."""
    try:
        settings, refusal = judge(script, argv, world.size), None
        outcome = {"settings": settings.shared_by_every_rank()}
    except UsageError as e:
        settings, refusal, outcome = None, e, {"usage error": str(e)}
    texts = world.differing_texts(json.dumps(outcome, sort_keys=True), "every rank's settings")
    if texts is not None:
        world.stop_every_rank(_differences_between_ranks([json.loads(t) for t in texts]))
    if refusal is not None:
        if world.rank == 0:
            _print_usage_error(script, refusal)
        raise SystemExit(2)
    return settings


def _differences_between_ranks(outcomes) -> str:
    """One message naming what differs between the ranks' judged flags."""
    refused = [f"rank {rank}: {o['usage error']}" for rank, o in enumerate(outcomes) if "usage error" in o]
    if refused:
        return "the ranks were started with different flags, and some cannot run: " + "; ".join(refused)
    names = sorted(set().union(*(o["settings"] for o in outcomes)))
    parts = []
    for name in names:
        values = [json.dumps(o["settings"].get(name)) for o in outcomes]
        if len(set(values)) > 1:
            ranks = {value: [r for r, v in enumerate(values) if v == value] for value in dict.fromkeys(values)}
            parts.append(f"{name}: " + ", ".join(f"{value} on rank{'s' * (len(rs) > 1)} {', '.join(map(str, rs))}"
                                                 for value, rs in ranks.items()))
    return ("the ranks hold different settings (" + "; ".join(parts) + "); every rank must run the same experiment: "
            "start them all with the same flags")


def _start(script, settings, world, experiment, held):
    """Steps 2–6 of the module docstring; ``held`` (an ExitStack) holds the folder's lock."""
    try:
        judgement = _judged_folder(script, settings) if world.rank == 0 else None
        if judgement is not None and judgement.exists:
            held.enter_context(folder_lock(settings.out))   # a folder in use stops us before any data is read
        _print_header(script, settings, world)
        data = script.load_data(settings)
        _check_sizes(settings, data.sizes)
        if world.rank == 0:
            if not judgement.exists:
                _make_folder(script, settings)
                held.enter_context(folder_lock(settings.out))
            _judged_folder(script, settings)   # again, holding the lock: another run may have started there
            out_folder.write_record(settings)
        experiment.ready = True
        for key in script.runs(settings):
            script.train(experiment, data.sets, key)
        script.table(experiment)
        written = experiment.redraw()
    except (CheckpointError, FolderLockedError, DatasetError, OSError) as e:
        if isinstance(e, OSError) and e.filename is None:
            raise
        raise SystemExit(advice(e) + _offline_advice(e, script, settings)) from None
    print(f"\nwrote {', '.join(written)} in {settings.out}"
          + ("" if any(n.endswith(".png") for n in written) else " (no figure: no run finished an epoch)"))


def _judged_folder(script, settings):
    try:
        return out_folder.judge(settings)
    except UsageError as e:
        _print_usage_error(script, e)
        raise SystemExit(2) from None


def _make_folder(script, settings):
    try:
        os.makedirs(settings.out, exist_ok=True)
    except OSError as e:
        _print_usage_error(script, UsageError(f"--out {settings.out}: cannot create it ({e.strerror})"))
        raise SystemExit(2) from None


def _check_sizes(settings, sizes):
    if sizes != settings.data_sizes:
        raise SystemExit(f"error: {settings.dataset} holds {sizes} examples, not the published {settings.data_sizes}: "
                         "its files are not the published ones; delete them to fetch them again (docs/data.md)")


def _print_header(script, settings, world):
    found = [root / settings.dataset for root in search_roots(settings.data_dir)
             if (root / settings.dataset).is_dir()]
    where = f"from {found[0]}" if found else "(not found in any data folder: downloaded before the runs)"
    data = f"{settings.dataset} {where}"
    if settings.limited:
        data += f"; --limit: the first {settings.limit:,} {script.limit_unit}"
    output = settings.out + (" (--resume: each run continues from its checkpoint)" if settings.resume else "")
    lines = {"runs": script.describe_runs(settings),
             "device": f"{settings.device} ({settings.dtype}), {settings.threads} CPU thread(s)", "data": data,
             "output": output, "world": _world_line(world, settings)}
    print(f"python -m minibng.examples.{script.name} (minibng {__version__})")
    text = "".join(f"  {name:<8}{line}\n" for name, line in lines.items())
    print(text + "".join(f"  note    {note}\n" for note in settings.notes), end="", flush=True)


def _world_line(world, settings):
    """The header's line on the processes: their number, the global batch and the learning-rate rule."""
    if world.size == 1:
        return "1 process (mpiexec -n N trains data-parallel: docs/distributed.md)"
    rule = f"× {world.size}" if settings.lr_scaling == "linear" else "as given"
    return (f"{world.size} processes (MPI; rank 0 writes): global batch {world.size} × {settings.batch_size} = "
            f"{world.size * settings.batch_size}, learning rate {rule} (--lr-scaling {settings.lr_scaling})")


def advice(error) -> str:
    """The message that ends a script for a refusal of the library: the error, then what to do about it in the
    script's flags, from the data the error carries."""
    if isinstance(error, OSError):
        return f"error: cannot write {error.filename}: {error.strerror}; {_disk_advice(error)}"
    if isinstance(error, ChangedSettingsError):
        what = ("To continue those runs, rerun with the flags that started them (the checkpoint's values above); to "
                "start the new settings, give another --out.")
    elif isinstance(error, OtherWorldSizeError):
        what = (f"To continue, resume with mpiexec -n {error.saved_world_size}; to start afresh, give another "
                "--out.")
    elif isinstance(error, FewerEpochsError):
        what = f"To continue, pass --epochs {error.finished_epochs} or more; to start afresh, give another --out."
    elif isinstance(error, FolderLockedError):
        what = "To run now, give another --out."
    elif isinstance(error, DatasetError):
        what = "--data-dir DIR gives the examples the folder DIR that holds the data set's folder."
    else:
        what = ""
    return "\n".join(filter(None, [f"error: {error}", what]))


def _offline_advice(error, script, settings) -> str:
    """For a data set that cannot be had, the one a Debian package provides (installable from a package mirror, with
    no access to the data set's own servers), where the script takes it."""
    offers_it = OFFLINE_DATASET in script.datasets and settings.dataset != OFFLINE_DATASET
    if not (isinstance(error, DatasetError) and offers_it):
        return ""
    return (f"\nWithout internet: Debian's package dataset-fashion-mnist (apt install dataset-fashion-mnist) holds "
            f"Fashion-MNIST, which this script runs as --dataset {OFFLINE_DATASET}.")


def _disk_advice(error) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return ("the disk is full: free space on it, then rerun the same command with --resume (the checkpoint of "
                "every finished epoch is kept)")
    if error.errno == errno.EISDIR:
        return "a folder stands where minibng writes a file: move it away, or give another --out"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "make that folder writable, or give another --out"
    return "give another --out"
