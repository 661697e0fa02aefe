"""Atomic file writes, the one way minibng writes a file (checkpoints, logs, figures, downloads): a reader sees the
old file or the complete new one.  Also the logs' two formats, CSV (:func:`write_table`) and JSON lines
(:func:`write_jsonl`), written that way (plain text: nothing here pickles).

A base module: it imports nothing of minibng, so every part of the package may import it (the training run, the
data sets' downloads, the figures) without pulling in another.  ``minibng.train`` re-exports the three writers.

    with atomic_write("runs/adamng/checkpoint.npz") as f:
        f.write(data)

1. the bytes go to a temporary file beside the destination, ``.<name>.<host>~<pid>-<random>.tmp``;
2. it is flushed and fsynced, and ``check(temp_path)``, if given, may still refuse it (a download whose SHA-256
   is wrong): then the temporary file is removed and the destination keeps what it held;
3. it gets the permissions of any new file under the process's umask (0644 under the usual umask 022), not the
   0600 of ``tempfile.mkstemp``, so whoever may read the folder may read the results;
4. it is renamed over the destination (atomic on POSIX), and the folder is fsynced.

A disk error on the way (the disk is full, the folder is read-only) is re-raised as the same ``OSError`` naming the
destination, not the temporary file, so that a message can say which file could not be written.

A write killed before step 4 (kill -9, power loss) leaves its temporary file behind.  The next atomic write into
the same folder removes every such leftover of this machine whose process has exited; the temporary file of a live
process (a concurrent download into a shared cache) is left alone, and so is every file another machine wrote
(on a shared file system its process numbers mean nothing here).
"""
from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import re
import socket
import tempfile
import threading
from pathlib import Path

__all__ = ["atomic_write", "write_table", "write_jsonl", "remove_leftovers", "current_umask"]

_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"
_LEFTOVER = re.compile(r"^\..+\.([A-Za-z0-9_-]+)~(\d+)-[A-Za-z0-9_]+\.tmp$")
_umask_lock = threading.Lock()
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux's /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:  # elsewhere the only way to read it is to set it and set it back
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _process_exists(pid: int) -> bool:
    if os.name != "posix":
        return True  # no safe existence probe (os.kill would terminate it): never remove
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to another user
    return True


def remove_leftovers(folder) -> list[Path]:
    """Remove the temporary files that killed writes left in ``folder``; returns their paths."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if match and match.group(1) == _HOST and not _process_exists(int(match.group(2))):
            with contextlib.suppress(FileNotFoundError):
                os.remove(entry.path)
                removed.append(Path(entry.path))
    return removed


def _naming(error: OSError, path) -> OSError:
    """``error`` about the file system (:data:`_DISK_ERRORS`), as the same kind of error naming ``path``; any other
    error (a network error while a download streams in) as it is."""
    if error.errno not in _DISK_ERRORS:
        return error
    return type(error)(error.errno, error.strerror, str(path))


def _create_temporary(folder: Path, name: str) -> tuple[int, str]:
    """An open temporary file beside ``folder/name`` (its descriptor and path); the one place files are created."""
    return tempfile.mkstemp(dir=folder, prefix=f".{name}.{_HOST}~{os.getpid()}-", suffix=".tmp")


def _fsync_folder(folder) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to fsync a directory; the rename itself is still atomic
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="wb", check=None):
    """Open a temporary file beside ``path`` (``mode`` "wb" or "w", text as UTF-8); when the block ends without
    an exception, run steps 2–4 of the module docstring.  On any exception nothing is left behind."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    folder = path.parent.resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_leftovers(folder)
        fd, tmp = _create_temporary(folder, path.name)
    except OSError as e:
        raise _naming(e, path) from None
    try:
        text = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(Path(tmp))
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise _naming(e, path) from None
        raise
    _fsync_folder(folder)


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
