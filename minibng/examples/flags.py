"""The command line of the experiment scripts: the flags every script shares (one meaning in all four), each
script's own, and the comma lists they take.

Parsing reads nothing and changes nothing.  A flag that is not given parses as None and :func:`parse` fills in the
script's default, or under ``--paper`` the paper's, so ``--paper`` is read once and the flags given keep their
values.  A value that cannot be taken raises :class:`UsageError`; the session prints it once, after the usage line,
and exits with status 2.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from .. import __version__, optim

__all__ = ["UsageError", "Flag", "SHARED_FLAGS", "parser", "parse", "count_or_all", "name_list", "integer_list"]


class UsageError(ValueError):
    """A flag (or an environment variable) the script cannot run with.  ``show_usage``: print the usage line first
    (not for an environment variable, which the usage line does not show)."""

    def __init__(self, message, show_usage=True):
        super().__init__(message)
        self.show_usage = show_usage


@dataclass(frozen=True)
class Flag:
    """One flag of a script: its name (``--depth``), what it means, and how argparse reads it."""

    name: str
    help: str
    type: Callable = str
    choices: tuple | None = None
    switch: bool = False            # present or not (store_true)
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.name[2:].replace("-", "_")


def count_or_all(text):
    """--limit's value: an integer (judged later), or 'all'."""
    if text == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'all', got {text!r}") from None


SHARED_FLAGS = (
    Flag("--dataset", "data set"),
    Flag("--optimizers", "comma list of optimizer presets, or 'paper' for the paper's set; presets: "
         + ", ".join(optim.preset_names())),
    Flag("--epochs", "epochs per run", type=int),
    Flag("--seeds", "comma list of seeds, one run each: initial weights, data order, dropout"),
    Flag("--lr", "learning rate of every optimizer (default: each preset's, the paper's)", type=float),
    Flag("--batch-size", "mini-batch size", type=int),
    Flag("--limit", "train on the first N {limit_unit} only, or on 'all'", type=count_or_all, metavar="N|all"),
    Flag("--threads", "CPU threads of BLAS and OpenMP, at most the cores this process may use (more stall); the last "
         "digits of a run depend on it", type=int),
    Flag("--device", "cpu, gpu or gpu:N (CuPy)"),
    Flag("--dtype", "floating-point type of the model, the data and the optimizer", choices=("float32", "float64")),
    Flag("--lr-scaling", "under mpiexec -n N: keep the learning rate (none: N ranks equal one process with N × "
         "--batch-size) or multiply it by N (linear)", choices=("none", "linear")),
    Flag("--data-dir", "an existing folder holding the data set's folder (default: searched, see docs/data.md; "
         "downloaded if missing)", metavar="DIR"),
    Flag("--out", "output folder: one folder per run, the table's metrics.csv, figures", metavar="DIR"),
    Flag("--resume", "continue every run from its checkpoint in --out", switch=True),
    Flag("--no-progress", "hide the progress bars (the lines per epoch remain)", switch=True),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """argparse's own refusals (an unknown flag, a word for a number, an invalid choice) as a UsageError."""
        raise UsageError(message)


def _help(flag, script) -> str:
    """The flag's help with the script's default and, where --paper changes it, the paper's."""
    text = flag.help.format(limit_unit=script.limit_unit)
    if flag.switch:
        return text
    shown = []
    default = script.defaults.get(flag.dest)
    if default is not None:
        shown.append(f"default: {default}")
    if flag.dest in script.paper and script.paper[flag.dest] != default:
        shown.append(f"--paper: {script.paper[flag.dest] if script.paper[flag.dest] is not None else 'the paper’s'}")
    return f"{text} ({'; '.join(shown)})" if shown else text


def _add(group, flag, script):
    if flag.switch:
        group.add_argument(flag.name, action="store_true", help=_help(flag, script))
    else:
        group.add_argument(flag.name, type=flag.type, choices=flag.choices, metavar=flag.metavar, default=None,
                           help=_help(flag, script))


def parser(script) -> argparse.ArgumentParser:
    """The parser of ``script`` (a :class:`~minibng.examples.script.Script`): its own flags, then the shared ones."""
    p = _Parser(prog=f"python -m minibng.examples.{script.name}", description=script.doc,
                formatter_class=argparse.RawDescriptionHelpFormatter)   # the script's docstring as written
    own = p.add_argument_group(f"flags of {script.name}")
    for flag in script.own_flags:
        _add(own, flag, script)
    shared = p.add_argument_group("flags of every experiment (the same meaning in all four)")
    for flag in SHARED_FLAGS:
        if flag.dest == "dataset":
            shared.add_argument("--dataset", choices=script.datasets, default=None,
                                help=f"data set (default: {script.datasets[0]})")
        else:
            _add(shared, flag, script)
    shared.add_argument("--paper", action="store_true", help=script.paper_help)
    shared.add_argument("--version", action="version", version=f"minibng {__version__}")
    return p


def parse(script, argv) -> argparse.Namespace:
    """The flags of ``argv`` with every one not given set to the script's default, or under ``--paper`` the paper's
    (values as typed: lists are still text; :mod:`.settings` judges them)."""
    given = parser(script).parse_args(argv)
    values = vars(given)
    for flag in [*script.own_flags, *SHARED_FLAGS]:
        if flag.switch or values[flag.dest] is not None:
            continue
        if given.paper and flag.dest in script.paper:
            values[flag.dest] = script.paper[flag.dest]
        else:
            values[flag.dest] = script.defaults.get(flag.dest)
    return argparse.Namespace(**values)


def _items(flag, text) -> list[str]:
    """The items of a comma list; an empty item (``1,,2``, a trailing comma) is a UsageError."""
    items = [item.strip() for item in str(text).split(",")]
    if "" in items:
        raise UsageError(f"{flag} must be a comma list without empty items, such as 0,1; got {text!r}")
    return items


def _without_repeats(flag, items, text):
    repeated = sorted({str(item) for item in items if items.count(item) > 1})
    if repeated:
        raise UsageError(f"{flag} {text!r} names {', '.join(repeated)} more than once; each run would be trained "
                         "twice into one folder: give each item once")


def name_list(flag, text, known, noun) -> tuple[str, ...]:
    """A comma list of names from ``known``, none empty, none repeated; ``noun`` says what a name names
    ("optimizer")."""
    names = _items(flag, text)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown {noun}(s) {unknown} in {flag}; choose from {', '.join(known)}")
    _without_repeats(flag, names, text)
    return tuple(names)


def integer_list(flag, text, minimum) -> tuple[int, ...]:
    """A comma list of integers ≥ ``minimum`` (``--seeds 0,1,2``), none empty, none repeated."""
    example, items = f"{minimum},{minimum + 1}", _items(flag, text)
    try:
        values = [int(item) for item in items]
    except ValueError:
        raise UsageError(f"{flag} must be a comma list of distinct integers >= {minimum}, such as {example}; got "
                         f"{text!r}") from None
    if min(values) < minimum:
        raise UsageError(f"{flag} must be a comma list of distinct integers >= {minimum}, such as {example}; got "
                         f"{text!r}")
    _without_repeats(flag, values, text)
    return tuple(values)
