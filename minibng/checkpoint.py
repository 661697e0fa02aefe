"""Atomic, pickle-free files: checkpoints as .npz, logs as CSV and JSON lines.

A checkpoint is one .npz whose keys are ``model/<parameter or buffer name>``, ``optim/<state key>``,
``rng/<stream name>`` and ``meta/<name>`` (JSON text).  It is written with :func:`minibng.atomic.atomic_write`
(temporary file, fsync, rename), so an interrupted write never leaves a half-written checkpoint, and it is read
with ``allow_pickle=False``.  A file that cannot be read as such a checkpoint (truncated, corrupted, not an .npz,
a member that is not plain JSON or a plain array) raises :class:`CheckpointError` naming the file.
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib

import numpy as np

from .atomic import atomic_write

__all__ = ["CheckpointError", "atomic_write", "save_npz", "load_npz", "write_table", "write_jsonl"]


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not belong to the run that tries to resume from it."""


def what_to_do(path) -> str:
    """The advice every CheckpointError ends with."""
    return (f"delete {path} to start that run afresh, or resume from another folder "
            "(the checkpoint that run wrote)")


def save_npz(path, arrays: dict):
    """Write ``arrays`` (str -> array-like; dicts/lists under ``meta/`` are stored as JSON text) atomically."""
    stored = {}
    for key, value in arrays.items():
        if key.startswith("meta/"):
            value = np.array(json.dumps(value))
        stored[key] = np.asarray(value)
    buffer = io.BytesIO()
    np.savez(buffer, **stored)
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


def load_npz(path, source=None) -> dict:
    """The arrays of an .npz written by :func:`save_npz`, ``meta/`` entries decoded from JSON; read from ``source``
    (a file object holding its bytes) when given.

    Raises :class:`CheckpointError` (naming ``path`` and what to do) for a missing, truncated or corrupted file."""
    try:
        loaded = np.load(path if source is None else source, allow_pickle=False)
        if not hasattr(loaded, "files"):  # a bare array: an .npy file, not an .npz
            raise CheckpointError(f"checkpoint {path} is a single array (.npy), not a checkpoint (.npz); "
                                  + what_to_do(path))
        with loaded as data:
            return {key: json.loads(str(data[key])) if key.startswith("meta/") else data[key] for key in data.files}
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except CheckpointError:
        raise
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        # ValueError covers numpy's refusal of pickled data and JSON that does not decode; its advice to
        # unpickle is never passed on.
        reason = ("it holds pickled data, which minibng never loads" if "pickle" in str(e).lower()
                  else f"{type(e).__name__}: {e}")
        raise CheckpointError(f"checkpoint {path} is damaged or not a minibng checkpoint ({reason}); "
                              + what_to_do(path)) from None


def write_table(path, rows: list[dict], columns=None):
    """Write ``rows`` as CSV (``path``) atomically; columns default to the keys of the first row."""
    columns = columns or (list(rows[0]) if rows else [])
    with atomic_write(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_jsonl(path, rows: list[dict]):
    """Write ``rows`` as JSON lines (``path``) atomically."""
    with atomic_write(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
