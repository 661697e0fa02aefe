"""What one experiment script is to the layer that runs it (:mod:`.session`): its flags and their defaults, the
published sizes of its data sets, and a function for each thing it does.

A script module (mnist_mlp.py, …) builds one :class:`Script` and its ``main`` is ``session.run(SCRIPT, argv)``.
The session calls the functions in this order, each with what the one before produced:

    judge(flags, shared, world_size) -> Settings     the script's own flags judged (pure; UsageError if bad)
    runs(settings) -> [key, …]                       every run, as a dict such as {"depth": 18, "optimizer": …}
    describe_runs(settings) -> str                   the header's line about them
    load_data(settings) -> Data                      host arrays, read or downloaded
    train(experiment, data.sets, key)                one run: model, optimizer, batches, experiment.fit(…)
    describe_epoch(metrics) -> str                   an epoch's line (after the run's name and the epoch)
    draw(experiment) -> [file names]                 the table's CSV files and the figures, from every epoch so far
    table(experiment)                                the table printed at the end
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .flags import Flag
from .report import describe_metrics
from .settings import usable_cores

__all__ = ["Script", "Data", "cpu_threads", "shared_defaults"]


@dataclass
class Data:
    """A script's loaded data: ``sets`` as its ``train`` takes them, and ``sizes``, the whole data set's number of
    examples per split (before --limit), which the session checks against the published ones."""

    sets: Any
    sizes: dict


def cpu_threads(share=2, most=4):
    """A default for --threads where matrices are large enough to share: 1/``share`` of the cores this process
    may use, at most ``most`` (threads beyond free cores spin and stall the others)."""
    return max(1, min(most, usable_cores() // share))


def shared_defaults(name) -> dict:
    """The defaults of the shared flags that are the same in every script."""
    return {"seeds": "0", "device": "cpu", "dtype": "float32", "lr_scaling": "none", "out": f"runs/{name}"}


@dataclass(frozen=True)
class Script:
    """One experiment script (see the module docstring for the order in which the session calls its functions).

    ``defaults`` and ``paper`` map a flag's dest (``batch_size``) to its value as typed (``"6,12,18"``): the quick
    run's, and what ``--paper`` switches to (None: "the paper's", decided per run, such as MNIST's epochs by depth).
    ``data_sizes`` maps each data set to its published number of examples per split; ``data_sizes[d]["train"]``
    is what ``--limit`` counts (``limit_unit`` names it)."""

    name: str
    doc: str
    datasets: tuple[str, ...]
    data_sizes: dict
    limit_unit: str
    defaults: dict
    paper: dict
    paper_optimizers: tuple[str, ...]
    paper_help: str
    judge: Callable
    runs: Callable
    describe_runs: Callable
    load_data: Callable
    train: Callable
    draw: Callable
    table: Callable
    describe_epoch: Callable = describe_metrics
    own_flags: tuple[Flag, ...] = field(default=())
