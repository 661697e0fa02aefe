"""Where data sets are looked for, and where downloads go.

Search order (first hit wins), each root holding one folder per data set (``mnist/``, ``cifar-10/``, ...):

1. ``data_dir`` — the ``--data-dir`` argument of the examples, when given;
2. ``$MINIBNG_DATA``, when set;
3. ``./datasets`` (the repository's local data root, relative to the working directory);
4. the user cache, ``$XDG_CACHE_HOME/minibng`` (``~/.cache/minibng`` when XDG_CACHE_HOME is unset);
5. the system roots: Debian's ``/usr/share/datasets`` (e.g. package ``dataset-fashion-mnist``).

Downloads go to the first *writable* root among the ones a user chose (``data_dir``, ``$MINIBNG_DATA``) and
the user cache — so by default into the cache, never into the working tree or a system folder.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "SYSTEM_ROOTS", "user_cache_dir", "search_roots", "download_roots", "first_writable"]

ENV_VAR = "MINIBNG_DATA"
LOCAL_ROOT = "datasets"
SYSTEM_ROOTS: tuple[Path, ...] = (Path("/usr/share/datasets"),)


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/minibng``, or ``~/.cache/minibng`` when XDG_CACHE_HOME is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "minibng"


def _unique(paths) -> list[Path]:
    seen, out = set(), []
    for p in paths:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            out.append(Path(p))
    return out


def _chosen_roots(data_dir) -> list[Path]:
    roots = []
    if data_dir is not None and str(data_dir) != "":
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get(ENV_VAR)
    if env:
        roots.append(Path(env).expanduser())
    return roots


def search_roots(data_dir=None) -> list[Path]:
    """Every root a data set is looked for in, in order (see the module docstring)."""
    return _unique(_chosen_roots(data_dir) + [Path.cwd() / LOCAL_ROOT, user_cache_dir(), *SYSTEM_ROOTS])


def download_roots(data_dir=None) -> list[Path]:
    """Roots a download may be written to, in order of preference: the chosen roots, then the user cache."""
    return _unique(_chosen_roots(data_dir) + [user_cache_dir()])


def first_writable(roots) -> Path | None:
    """The first root that this process may write into, or make (its nearest existing folder is writable), else
    None.  Nothing is made here: the download makes the folder when it writes its file, so one that fails leaves no
    empty folder behind."""
    for root in roots:
        place = Path(root).absolute()
        while not place.exists() and place != place.parent:
            place = place.parent
        if place.is_dir() and os.access(place, os.W_OK | os.X_OK):
            return root
    return None
