"""Helpers for the audit's tests: the optional frameworks, and the hand-written candidates' files."""
import importlib
import os
from pathlib import Path

import pytest

CANDIDATES = Path(__file__).resolve().parent / "audit_candidates"
REQUIRE = "MINIBNG_REQUIRE_AUDIT_FRAMEWORKS"
INSTALL = {"torch": "pip install torch==2.13.0 (the CPU wheel)", "optax": "pip install optax jax"}


def require_framework(framework, module_level=False):
    """Import ``framework`` (torch, optax); without it the calling test (or, with ``module_level``, its whole module)
    skips, saying how to install it, or fails where ${REQUIRE} is set (as CI sets it)."""
    try:
        return importlib.import_module(framework)
    except ImportError as error:
        message = f"{framework} is not installed ({error}): {INSTALL[framework]}, or pip install -e \".[audit]\""
        if os.environ.get(REQUIRE, "") not in ("", "0"):
            pytest.fail(f"{message}; {REQUIRE} is set, so the {framework} tests may not skip")
        pytest.skip(message, allow_module_level=module_level)


def require(framework):
    """Import ``framework``'s candidates module (tests/audit_candidates/<framework>_candidates.py); without the
    framework the calling test module skips or fails, as :func:`require_framework` says."""
    require_framework(framework, module_level=True)
    return importlib.import_module(f"audit_candidates.{framework}_candidates")


def spec(framework, factory):
    """FILE.py:FACTORY of a candidate, for the command line."""
    return f"{CANDIDATES / f'{framework}_candidates.py'}:{factory}"
