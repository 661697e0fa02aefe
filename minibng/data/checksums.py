"""What a data file must be (its name, mirrors and SHA-256), and the check that a file on disk is it.

A file is accepted when the SHA-256 of its bytes is one of the published sums of the distributed file.  For a
gzip-compressed file whose *content* sum is known, two more forms are accepted, because they hold the same data:
a re-compressed copy (Debian repacks the Fashion-MNIST ``.gz`` files: different bytes, identical content) and the
decompressed file itself under the name without ``.gz``.  The two names swapped — the ``.gz`` file saved without
its suffix, or the decompressed file saved with it — is an error saying which name to give the file.  Anything else
is an error that names the file, the expected and the actual sums, and what to do; a corrupted or truncated file is
never used.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DatasetError", "ChecksumError", "FileSpec", "sha256_file", "sha256_bytes", "verify_file", "not_a_file"]

_CHUNK = 1 << 20


class DatasetError(RuntimeError):
    """A data set file is missing, cannot be downloaded, or is not the file it should be."""


class ChecksumError(DatasetError):
    """A file's SHA-256 is not the published one (corrupted, truncated, or another version)."""


@dataclass(frozen=True)
class FileSpec:
    """One file of a data set.

    name            the original file name, as found in the data set's folder
    sha256          accepted SHA-256 sums of the file (hex), most common distribution first
    size            bytes of the first distribution (for messages and docs; None when unknown)
    urls            download mirrors, tried in order
    content_sha256  for a ``.gz`` file: SHA-256 of its decompressed content (None when unknown)
    """

    name: str
    sha256: tuple[str, ...]
    size: int | None = None
    urls: tuple[str, ...] = field(default=())
    content_sha256: str | None = None

    @property
    def raw_name(self) -> str | None:
        """The decompressed file's name (``x.gz`` -> ``x``), when its content sum is known."""
        if self.content_sha256 and self.name.endswith(".gz"):
            return self.name[:-3]
        return None

    def candidate_names(self) -> list[str]:
        return [self.name] + ([self.raw_name] if self.raw_name else [])


def not_a_file(path: Path) -> str | None:
    """Why ``path``, which exists, cannot be a data file (a folder stands there, …); None if it is a file or absent."""
    if path.is_file() or not path.exists():
        return None
    kind = "a folder" if path.is_dir() else "not a regular file"
    return f"{kind}, not the file: remove it or move it away, then run again"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, gunzip: bool = False) -> str:
    """Hex SHA-256 of a file's bytes (of its decompressed content when ``gunzip``)."""
    digest = hashlib.sha256()
    opener = gzip.open if gunzip else open
    with opener(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_gzip(path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


# Files already verified in this process, keyed by (path, size, mtime): loading a data set twice hashes it once.
_verified: set[tuple[str, int, int]] = set()


def _mismatch(path: Path, spec: FileSpec, expected, actual: str, note: str = "") -> ChecksumError:
    size = path.stat().st_size
    want = f" ({spec.size:,} bytes)" if spec.size and path.name == spec.name else ""
    return ChecksumError(
        f"{path}: SHA-256 mismatch{note}.\n"
        f"  expected: {' or '.join(expected)}{want}\n"
        f"  actual:   {actual} ({size:,} bytes)\n"
        f"The file is corrupted, truncated, or another version of '{spec.name}'; it was not used. "
        f"Delete it and run again to download a fresh copy, or replace it by hand with the original file "
        f"(sources and checksums: docs/data.md and datasets/README.md)."
    )


def _swapped_names(path: Path, spec: FileSpec, actual: str) -> DatasetError | None:
    """The error for a file that holds the data of ``spec`` under the other of its two names (``x.gz`` and ``x``):
    the compressed file without its suffix, or the decompressed one with it; None for any other file."""
    if spec.raw_name is None:
        return None
    compressed = _is_gzip(path) and (actual in spec.sha256 or _content_sum(path) == spec.content_sha256)
    if path.name == spec.raw_name and compressed:
        held, right = f"the gzip-compressed '{spec.name}', saved without its '.gz' suffix", spec.name
    elif path.name == spec.name and actual == spec.content_sha256:
        held, right = f"the decompressed content of '{spec.name}', saved under the compressed name", spec.raw_name
    else:
        return None
    return DatasetError(f"{path}: this file is {held}; rename it to {path.with_name(right)} (its data is intact)")


def _content_sum(path: Path) -> str | None:
    """SHA-256 of a gzip file's decompressed content; None when it does not decompress."""
    try:
        return sha256_file(path, gunzip=True)
    except (OSError, EOFError, zlib.error):
        return None


def verify_file(path, spec: FileSpec) -> Path:
    """Check that ``path`` holds the data of ``spec``; return the path, or raise :class:`ChecksumError`."""
    path = Path(path)
    stat = path.stat()
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return path
    actual = sha256_file(path)
    if (swapped := _swapped_names(path, spec, actual)) is not None:
        raise swapped
    if path.name == spec.raw_name:
        if actual != spec.content_sha256:
            raise _mismatch(path, spec, [spec.content_sha256], actual, " (decompressed file)")
    elif actual not in spec.sha256:
        if not (spec.content_sha256 and _is_gzip(path)):
            raise _mismatch(path, spec, spec.sha256, actual)
        try:
            content = sha256_file(path, gunzip=True)
        except (OSError, EOFError, zlib.error) as e:
            raise _mismatch(path, spec, spec.sha256, actual, f" and it does not decompress ({e})") from None
        if content != spec.content_sha256:
            raise _mismatch(path, spec, spec.sha256, actual,
                            f" and its decompressed content's SHA-256 {content} is not {spec.content_sha256}")
    _verified.add(key)
    return path
