"""What every framework mirror of the optimizer audit offers (:class:`Mirror`), and how one is found by name."""
from __future__ import annotations

import importlib

__all__ = ["Mirror", "CandidateError", "mirror_for", "FRAMEWORKS"]

FRAMEWORKS = ("torch", "optax", "numpy")


class CandidateError(ValueError):
    """The candidate cannot be audited as given (FACTORY raised, or returned the wrong kind of object): a usage
    error of the command line, exit status 2."""


class Mirror:
    """A framework's side of the audit.  ``name``; ``install`` (how to get the framework); ``call`` (how FACTORY is
    called).  ``available()`` is None or why not; ``build(factory, model, dtype)`` calls FACTORY once and checks what
    it returned (raises CandidateError); ``run(factory, model, stream, gradients, dtype)`` returns the candidate's
    :class:`~.trajectory.Trajectory` on ``gradients`` (a fresh candidate per run)."""

    name = ""
    install = ""
    call = ""

    def module(self):
        raise NotImplementedError

    def available(self):
        """None when the framework imports; otherwise a sentence saying how to install it."""
        try:
            self.module()
        except ImportError as error:
            return f"{self.name} is not installed ({error}): {self.install}"
        return None

    def call_factory(self, factory, *args):
        try:
            return factory(*args)
        except Exception as error:
            raise CandidateError(f"{self.call}: FACTORY raised {type(error).__name__}: {error}") from None


def mirror_for(framework):
    """The :class:`Mirror` of ``framework`` ('torch', 'optax' or 'numpy')."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    module = importlib.import_module(f".{framework}_mirror", __package__)
    return getattr(module, {"torch": "TorchMirror", "optax": "OptaxMirror", "numpy": "NumpyMirror"}[framework])()
