"""One writer per output folder: an advisory lock that dies with its process (the run lock).

    with folder_lock("runs/adamng"):   # FolderLockedError if another process is writing there
        ...

The lock is ``fcntl.flock`` on ``<folder>/.minibng.lock`` (``msvcrt.locking`` on Windows), a file holding its holder's
process id, host and start time, which a refusal quotes.  The holder removes the file when it lets go, so a finished
run leaves none behind; the operating system releases the lock when its holder exits in any way, kill -9 included,
so a dead run never blocks the next one (its file stays until the next run into the folder takes and lets go of the
lock).  Because a file is removed while others may have opened it, taking the lock checks that the file it locked
is still the one at the path, and starts over if not.  The lock is not re-entrant: a second ``folder_lock`` on the
same folder is refused even within one process.

A lock path that cannot be opened (it is a folder, or the folder is read-only) raises the operating system's
``OSError``, which names the path.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import socket

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

from .errors import FolderLockedError

__all__ = ["folder_lock", "LOCK_NAME"]

LOCK_NAME = ".minibng.lock"


def _try_lock(fd) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _unlock(fd) -> None:
    with contextlib.suppress(OSError):
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _holder(path) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read().strip()
    except OSError:
        text = ""
    if not text:
        return "another process"
    words = text.split()
    mine = len(words) > 1 and words[0] == "pid" and words[1] == str(os.getpid())
    return f"{text}{' (this process)' if mine else ''}"


def _still_at(fd, path) -> bool:
    """True when the open file ``fd`` is the file now at ``path`` (not one its last holder removed)."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


def _acquire(folder, path) -> int:
    """Open and lock ``path``; returns the descriptor.  Raises FolderLockedError while another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if not _try_lock(fd):
            os.close(fd)
            raise FolderLockedError(folder, _holder(path))
        if _still_at(fd, path):
            return fd
        _unlock(fd)   # its holder removed this file as we opened it: lock the file at the path now
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder):
    """Hold ``folder``'s lock (creating the folder) for the ``with`` block; see the module docstring."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_NAME)
    fd = _acquire(folder, path)
    try:
        started = datetime.datetime.now().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {started}\n".encode())
        yield path
    finally:
        with contextlib.suppress(OSError):   # removed while still locked, so no one takes a file about to vanish
            os.remove(path)
        _unlock(fd)
        os.close(fd)
