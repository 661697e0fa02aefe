"""Atomic, pickle-free files: checkpoints as .npz, logs as CSV and JSON lines.

A checkpoint is one .npz whose keys are ``model/<parameter or buffer name>``, ``optim/<state key>``,
``rng/<stream name>`` and ``meta/<name>`` (JSON text).  It is written to a temporary file in the same folder,
flushed to disk and renamed over the old one, so an interrupted write never leaves a half-written checkpoint,
and it is read with ``allow_pickle=False``.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile

import numpy as np

__all__ = ["atomic_write", "save_npz", "load_npz", "write_table"]


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; on success fsync it and rename it to ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


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


def load_npz(path) -> dict:
    """The arrays of an .npz written by :func:`save_npz`, ``meta/`` entries decoded from JSON."""
    with np.load(path, allow_pickle=False) as data:
        return {key: json.loads(str(data[key])) if key.startswith("meta/") else data[key] for key in data.files}


def write_table(path, rows: list[dict], columns=None):
    """Write ``rows`` as CSV (``path``) atomically; columns default to the keys of the first row."""
    columns = columns or (list(rows[0]) if rows else [])
    with atomic_write(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_jsonl(path, rows: list[dict]):
    with atomic_write(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
