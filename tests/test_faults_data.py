"""Fault table, data sets: settings and files a loader cannot use, each named with what to do."""
import hashlib
import os
import pathlib

import pytest

from minibng.data import download, ptb
from minibng.data.checksums import DatasetError, FileSpec
from promise_table import registry

SECTION = "Data sets"
PROMISES, promise = registry()
PAYLOAD = b"minibng test file\n" * 50


def spec():
    return FileSpec("blob.bin", (hashlib.sha256(PAYLOAD).hexdigest(),), len(PAYLOAD), ("https://mirror-a/blob.bin",))


def place(root):
    (root / "toy").mkdir(parents=True)
    (root / "toy" / "blob.bin").write_bytes(PAYLOAD)


def offline(monkeypatch):
    monkeypatch.setattr(download, "_open_url", lambda url, timeout: pytest.fail("must not download"))


@promise("download-timeout-not-a-number", "`MINIBNG_DOWNLOAD_TIMEOUT=ten` when a file must be downloaded",
         "`ValueError` naming the variable and its value, with an example value; no mirror is tried")
def _timeout_not_a_number(isolated, monkeypatch):
    offline(monkeypatch)
    for text in ("ten", "0", "-5", "inf"):
        monkeypatch.setenv("MINIBNG_DOWNLOAD_TIMEOUT", text)
        with pytest.raises(ValueError, match=f"MINIBNG_DOWNLOAD_TIMEOUT='{text}' is not a positive number of seconds"):
            download.fetch("toy", spec())
    monkeypatch.setenv("MINIBNG_DOWNLOAD_TIMEOUT", "2.5")
    assert download.default_timeout() == 2.5


@promise("unreadable-data-root", "a data root that cannot be looked into (permission denied), before the root "
         "that holds the file", "the root is skipped and the next one used; when no root holds the file, the "
         "error lists the unreadable root with the reason")
def _unreadable_root(isolated, monkeypatch):
    offline(monkeypatch)
    locked, open_root = isolated / "locked", isolated / "open"
    place(open_root)
    is_file = pathlib.Path.is_file

    def denied(path):
        if locked in path.parents:
            raise PermissionError(13, "Permission denied", str(path))
        return is_file(path)

    monkeypatch.setattr(pathlib.Path, "is_file", denied)
    monkeypatch.setenv("MINIBNG_DATA", str(open_root))
    assert download.fetch("toy", spec(), data_dir=locked) == open_root / "toy" / "blob.bin"
    monkeypatch.delenv("MINIBNG_DATA")
    with pytest.raises(DatasetError, match=r"locked/toy/blob.bin \(cannot be looked into: Permission denied\)"):
        download.fetch("toy", spec(), data_dir=locked, download=False)


@promise("unreadable-data-file", "a data file that exists but cannot be read, before a readable copy",
         "that copy is skipped and the next root's copy used; when none is readable, the error says to fix the "
         "permissions or remove the file")
def _unreadable_file(isolated, monkeypatch):
    offline(monkeypatch)
    first, second = isolated / "first", isolated / "second"
    place(first)
    place(second)
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: first not in pathlib.Path(path).parents
                        and access(path, mode))
    monkeypatch.setenv("MINIBNG_DATA", str(second))
    assert download.fetch("toy", spec(), data_dir=first) == second / "toy" / "blob.bin"
    monkeypatch.delenv("MINIBNG_DATA")
    with pytest.raises(DatasetError, match="exists but cannot be read .*fix its permissions or remove it"):
        download.fetch("toy", spec(), data_dir=first, download=False)


@promise("ptb-not-utf8", "`ptb.read_words` on a file that is not UTF-8 text",
         "`DatasetError` naming the file and the offset of the first bad byte, saying to delete it and fetch it "
         "again")
def _ptb_not_utf8(tmp_path):
    path = tmp_path / "ptb.train.txt"
    path.write_bytes(b" the cat\n sat \xff on\n")
    with pytest.raises(DatasetError, match=f"{path}: not UTF-8 text \\(byte 0xff at offset 14\\).*delete it"):
        ptb.read_words(path)
    path.write_bytes(b" the cat\r\n sat\n")
    assert ptb.read_words(path) == ["the", "cat", "<eos>", "sat", "<eos>"]


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, request):
    case.run(request)
