"""Extraction of data set archives (tar, tar.gz) through a path filter.

Only regular-file members are ever written, and only inside the destination folder.  The whole archive is
refused (:class:`DatasetError`) when any member name is absolute, contains a ``..`` component, or is a link
or device — a well-formed data set archive has none of these, so their presence means a damaged or hostile
file — and, before anything is written, when a folder stands where a member is to be written.  Each member is
written atomically (temp file, fsync, rename) and, when a :class:`FileSpec` is given for it, verified by SHA-256
before it gets its name.
"""
from __future__ import annotations

import posixpath
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from ..files import atomic_write
from .checksums import DatasetError, FileSpec, not_a_file, sha256_file

__all__ = ["unsafe_member_reason", "extract"]

_CHUNK = 1 << 20


def unsafe_member_reason(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` may not be extracted (None when it is a plain file or folder with a relative path)."""
    name = member.name.replace("\\", "/")
    if name.startswith("/") or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' path component"
    if not (member.isfile() or member.isdir()):
        return "link or special file"
    return None


def _read_chunks(f):
    while chunk := f.read(_CHUNK):
        yield chunk


def extract(archive, dest_dir, members=None, specs: dict[str, FileSpec] | None = None) -> list[Path]:
    """Extract regular files of ``archive`` into ``dest_dir`` through the path filter; return the written paths.

    members   None (every regular file, at its own relative path), a list of member names (kept at their
              relative paths), or a dict {member name: destination path relative to ``dest_dir``}
    specs     optional {member name: FileSpec}; such a member must match one of the spec's SHA-256 sums
    """
    dest_dir = Path(dest_dir)
    if members is not None and not isinstance(members, dict):
        members = {m: m for m in members}
    written = []
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise DatasetError(f"{archive}: not a readable tar archive ({e})") from e
    with tar:
        try:
            infos = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DatasetError(f"{archive}: damaged tar archive ({e})") from e
        for info in infos:
            reason = unsafe_member_reason(info)
            if reason:
                raise DatasetError(f"{archive}: refusing to extract member '{info.name}' ({reason}); "
                                   f"the archive is damaged or not the original — delete it and fetch it again")
        by_name = {posixpath.normpath(i.name): i for i in infos if i.isfile()}
        wanted = members if members is not None else {n: n for n in by_name}
        missing = [n for n in wanted if posixpath.normpath(n) not in by_name]
        if missing:
            raise DatasetError(f"{archive}: member(s) {missing} missing; the archive is not the expected one")
        # Members in archive order, so a compressed archive is read forwards once, never rewound.
        order = sorted(wanted.items(), key=lambda kv: by_name[posixpath.normpath(kv[0])].offset)
        destinations = {name: (dest_dir / posixpath.normpath(target)).resolve() for name, target in order}
        for name, dest in destinations.items():   # every destination checked before anything is written
            if dest_dir.resolve() not in dest.parents:
                raise DatasetError(f"refusing to write '{wanted[name]}' outside {dest_dir}")
            if (problem := not_a_file(dest)) is not None:
                raise DatasetError(f"{archive}: cannot extract member '{name}' to {dest}: it is {problem}")
        for name, dest in destinations.items():
            info = by_name[posixpath.normpath(name)]
            spec = (specs or {}).get(name)

            def check(tmp, spec=spec, name=name):
                if spec is not None and (actual := sha256_file(tmp)) not in spec.sha256:
                    raise DatasetError(f"{archive}: member '{name}' has SHA-256 {actual}, expected "
                                       f"{' or '.join(spec.sha256)}; nothing was extracted for it")

            source = tar.extractfile(info)
            with atomic_write(dest, check=check) as f:
                f.writelines(_read_chunks(source))
            written.append(dest)
    return written
