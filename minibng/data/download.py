"""Find a data file under the data roots, or download it: verified, atomic, with a progress bar.

``fetch(dataset, spec, data_dir, download)`` is what every loader calls.  It returns the path of a verified
copy of ``spec`` in ``<root>/<dataset>/``, looking in :func:`minibng.data.root.search_roots` order.  When no
root holds the file it downloads it from the spec's mirrors into the first writable download root:

1. stream the response into a temporary file beside the destination, hashing it and showing a tqdm bar;
2. check the SHA-256 against the published sums *before* the file gets its name;
3. fsync, then rename over the destination (atomic on POSIX), then fsync the folder
   (:func:`minibng.files.atomic_write`, the one atomic write of the package).

A reader therefore sees either no file or the complete, verified file — never a partial one.  A folder (or
anything but a regular file) where a data file should be is skipped like an unreadable file, named in the error
when no root holds the file, and never downloaded into.  Every failure
(offline, HTTP error, wrong checksum, truncated transfer) raises :class:`DatasetError` naming the file, every place
it looked, what each mirror answered, and how to place the file by hand.  Connections time out after
``MINIBNG_DOWNLOAD_TIMEOUT`` seconds (10 by default; anything but a positive number is a ValueError), and a timeout
stops the remaining mirrors, so an offline machine fails in seconds instead of hanging.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from ..files import atomic_write
from .checksums import ChecksumError, DatasetError, FileSpec, not_a_file, verify_file
from .root import download_roots, first_writable, search_roots

__all__ = ["fetch", "find", "download_file", "atomic_write", "default_timeout"]

TIMEOUT_VAR = "MINIBNG_DOWNLOAD_TIMEOUT"
_CHUNK = 1 << 16
_USER_AGENT = "minibng-data/0.1"


def default_timeout() -> float:
    """Seconds a connection (or a stalled read) may take: ``$MINIBNG_DOWNLOAD_TIMEOUT``, else 10.

    A value that is not a positive number of seconds is a ValueError naming the variable."""
    text = os.environ.get(TIMEOUT_VAR, "10")
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is None or not 0 < seconds < float("inf"):
        raise ValueError(f"{TIMEOUT_VAR}={text!r} is not a positive number of seconds; "
                         f"set it to e.g. 30, or unset it for the default of 10")
    return seconds


def _open_url(url: str, timeout: float):
    """The network call, kept as one function so tests can replace it (no real network in tests)."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - https/http mirrors only


def _stream(response, name: str, total: int | None, digest):
    from tqdm import tqdm  # noqa: PLC0415 - only needed when downloading

    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=None,
              leave=False) as bar:
        while chunk := response.read(_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
            yield chunk


def download_file(url: str, dest, spec: FileSpec, timeout: float | None = None) -> Path:
    """Download ``url`` to ``dest``, accepting it only if its SHA-256 is one of ``spec.sha256``.

    A spec with no sums (an archive whose *members* are verified when extracted) is accepted as it comes.
    """
    dest = Path(dest)
    timeout = default_timeout() if timeout is None else timeout
    digest = hashlib.sha256()
    with _open_url(url, timeout) as response:
        length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
        total = int(length) if length and str(length).isdigit() else spec.size

        def check(tmp: Path):
            actual = digest.hexdigest()
            if spec.sha256 and actual not in spec.sha256:
                got = tmp.stat().st_size
                truncated = f"; got {got:,} of {total:,} bytes (truncated)" if total and got < total else ""
                raise ChecksumError(f"download of {url} has SHA-256 {actual}, expected "
                                    f"{' or '.join(spec.sha256)}{truncated}; the file was discarded")

        with atomic_write(dest, check=check) as f:
            f.writelines(_stream(response, spec.name, total, digest))
        return dest


def _probe(path: Path) -> tuple[bool, str | None]:
    """(is a readable file, why it cannot be used): an unreadable root or file, or a folder where the file should
    be, is noted, never fatal."""
    try:
        if not path.is_file():
            return False, not_a_file(path)
    except OSError as e:
        return False, f"cannot be looked into: {e.strerror or e}"
    if not os.access(path, os.R_OK):
        return False, "exists but cannot be read (permission denied); fix its permissions or remove it"
    return True, None


def _search(dataset: str, spec: FileSpec, data_dir=None) -> tuple[Path | None, list[tuple[Path, str | None]]]:
    looked = []
    for root in search_roots(data_dir):
        for name in spec.candidate_names():
            path = root / dataset / name
            usable, problem = _probe(path)
            looked.append((path, problem))
            if usable:
                return path, looked
    return None, looked


def find(dataset: str, spec: FileSpec, data_dir=None) -> tuple[Path | None, list[Path]]:
    """The first readable copy of ``spec`` under the search roots (unverified), and every path looked at.

    A root that cannot be read (permission denied) is skipped, and the next one is tried."""
    path, looked = _search(dataset, spec, data_dir)
    return path, [p for p, _ in looked]


def _by_hand(dataset: str, spec: FileSpec, data_dir) -> str:
    size = f"{spec.size:,} bytes, " if spec.size else ""
    sha = f"SHA-256 {spec.sha256[0]}" if spec.sha256 else "its members are verified when extracted"
    target = download_roots(data_dir)[0]
    urls = "".join(f"\n    {u}" for u in spec.urls) or "\n    (see docs/data.md)"
    hint = (f"\nThe data folder {data_dir} ends in '{dataset}': give the folder that holds '{dataset}/', not the "
            "data set's own folder." if data_dir is not None and Path(data_dir).name == dataset else "")
    return (f"To place it by hand: get '{spec.name}' ({size}{sha}) from{urls}\n"
            f"and save it as {target / dataset / spec.name} (or in '{dataset}/' under any folder listed "
            f"above; a data_dir DIR, or $MINIBNG_DATA=DIR, adds a folder DIR that holds '{dataset}/').\n"
            f"The data set's other files, if they are missing too: docs/data.md lists each, with its size and "
            f"SHA-256.{hint}")


def fetch(dataset: str, spec: FileSpec, data_dir=None, download: bool = True,
          timeout: float | None = None) -> Path:
    """Path of a verified copy of ``spec`` (found under a data root, or downloaded); see the module doc."""
    path, looked = _search(dataset, spec, data_dir)
    if path is not None:
        return verify_file(path, spec) if spec.sha256 else path
    where = "".join(f"\n  {p}" + (f" ({problem})" if problem else "") for p, problem in looked)
    missing = "has no usable copy" if any(problem for _, problem in looked) else "was not found"
    head = f"data set '{dataset}': file '{spec.name}' {missing}.\nLooked in:{where}\n"
    if not download:
        raise DatasetError(head + "Downloading is disabled (download=False).\n" + _by_hand(dataset, spec, data_dir))
    root = first_writable(download_roots(data_dir))
    if root is None:
        raise DatasetError(head + "No writable folder to download into among: "
                           + ", ".join(map(str, download_roots(data_dir))) + "\n" + _by_hand(dataset, spec, data_dir))
    dest = root / dataset / spec.name
    if (problem := not_a_file(dest)) is not None:
        raise DatasetError(f"{head}Cannot download into {dest}: it is {problem}.\n{_by_hand(dataset, spec, data_dir)}")
    timeout = default_timeout() if timeout is None else timeout
    failures = []
    for url in spec.urls:
        try:
            return download_file(url, dest, spec, timeout)
        except ChecksumError as e:
            failures.append(f"{url}: {e}")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            failures.append(f"{url}: {type(e).__name__}: {reason}")
            if isinstance(e, (socket.timeout, TimeoutError)) or isinstance(reason, (socket.timeout, TimeoutError)):
                failures.append("(timed out: the network looks unreachable, other mirrors not tried)")
                break
    tried = "".join(f"\n  {f}" for f in failures) or "\n  (no mirror known)"
    raise DatasetError(head + f"Download into {dest.parent} failed (offline?):{tried}\n"
                       + _by_hand(dataset, spec, data_dir))
