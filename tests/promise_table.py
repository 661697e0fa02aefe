"""The fault table: every bad input and interruption minibng promises to handle, as test cases.

A case is a function registered with ``@promise(id, given, outcome)`` into its module's ``PROMISES`` list; its
arguments are pytest fixtures (``tmp_path``, ``monkeypatch``, …; a module whose cases take ``device`` passes it).
Every ``tests/test_faults_*.py`` module names its section of the table (``SECTION``), registers its cases and runs
them as one parametrized test, and ``tests/test_faults_docs.py`` checks that docs/promises.md lists exactly these
cases, in the same words.
"""
import inspect
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Promise:
    id: str
    given: str      # the input or fault, as a user meets it
    outcome: str    # what minibng does about it
    check: Callable

    def run(self, request, **given):
        """Call the case with the fixtures its signature names; ``given`` supplies the parametrized ones (``device``),
        which pytest cannot look up by name."""
        names = inspect.signature(self.check).parameters
        self.check(**{name: given[name] if name in given else request.getfixturevalue(name) for name in names})

    def row(self) -> str:
        return f"| `{self.id}` | {self.given} | {self.outcome} |"


def registry():
    """A fresh list of cases and the decorator that fills it: ``PROMISES, promise = registry()``."""
    cases = []

    def promise(id, given, outcome):
        assert "|" not in given + outcome, f"{id}: a table cell cannot hold '|'"

        def register(check):
            cases.append(Promise(id, given, outcome, check))
            return check

        return register

    return cases, promise
