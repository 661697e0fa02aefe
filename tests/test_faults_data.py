"""Fault table, data sets: settings and files a loader cannot use, each named with what to do."""
import gzip
import hashlib
import io
import os
import pathlib
import re
import tarfile

import numpy as np
import pytest

from minibng.data import download, ptb
from minibng.data.archive import extract
from minibng.data.checksums import DatasetError, FileSpec
from minibng.data.idx import encode_idx, read_idx
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


@promise("data-file-is-a-folder", "a folder where a data file should be (`mnist/train-images-idx3-ubyte.gz/`, or "
         "a CIFAR batch file's place when its archive is extracted)", "`DatasetError` naming the folder: a folder, not "
         "the file, to remove or move away (never “was not found”); nothing is downloaded or extracted into it, and a "
         "copy under a later root is used")
def _data_file_is_a_folder(isolated, monkeypatch):
    offline(monkeypatch)
    folder = isolated / "first" / "toy" / "blob.bin"
    folder.mkdir(parents=True)
    for download_allowed in (False, True):
        with pytest.raises(DatasetError) as refusal:
            download.fetch("toy", spec(), data_dir=isolated / "first", download=download_allowed)
        message = str(refusal.value)
        assert f"{folder} (a folder, not the file: remove it or move it away, then run again)" in message
        assert "file 'blob.bin' has no usable copy" in message and "was not found" not in message
    assert f"Cannot download into {folder}: it is a folder, not the file" in message
    place(isolated / "second")
    monkeypatch.setenv("MINIBNG_DATA", str(isolated / "second"))
    assert download.fetch("toy", spec(), data_dir=isolated / "first") == isolated / "second" / "toy" / "blob.bin"
    archive = isolated / "batches.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("batches/a.bin", "batches/b.bin"):
            info = tarfile.TarInfo(name)
            info.size = len(PAYLOAD)
            tar.addfile(info, io.BytesIO(PAYLOAD))
    (isolated / "out" / "batches" / "b.bin").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"cannot extract member 'batches/b\.bin' to .*out/batches/b\.bin: it is a "
                                           "folder, not the file"):
        extract(archive, isolated / "out")
    assert not (isolated / "out" / "batches" / "a.bin").exists()       # checked before anything was written


def idx_spec(name="toy-idx1-ubyte.gz"):
    """A compressed IDX file as MNIST's are listed: the .gz file's SHA-256 and its content's."""
    raw = encode_idx(np.arange(6, dtype=np.uint8))
    packed = gzip.compress(raw, mtime=0)
    sums = (hashlib.sha256(packed).hexdigest(),)
    return raw, packed, FileSpec(name, sums, len(packed), (), hashlib.sha256(raw).hexdigest())


@promise("compressed-file-without-its-suffix", "the original `.gz` file saved without its suffix "
         "(`train-labels-idx1-ubyte`), or the decompressed file saved with it", "`DatasetError` naming the file, what "
         "it holds and the name to give it (its data is intact; never “corrupted”)")
def _compressed_file_without_its_suffix(isolated):
    raw, packed, toy = idx_spec()
    folder = isolated / "data" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy-idx1-ubyte").write_bytes(packed)
    with pytest.raises(DatasetError, match=re.escape(f"{folder}/toy-idx1-ubyte: this file is the gzip-compressed "
                                                     f"'toy-idx1-ubyte.gz', saved without its '.gz' suffix; rename it "
                                                     f"to {folder}/toy-idx1-ubyte.gz (its data is intact)")):
        download.fetch("toy", toy, data_dir=isolated / "data", download=False)
    (folder / "toy-idx1-ubyte").rename(folder / "toy-idx1-ubyte.gz")
    assert read_idx(download.fetch("toy", toy, data_dir=isolated / "data", download=False)).tolist() == list(range(6))
    (folder / "toy-idx1-ubyte.gz").write_bytes(raw)
    with pytest.raises(DatasetError, match=re.escape("is the decompressed content of 'toy-idx1-ubyte.gz', saved under "
                                                     f"the compressed name; rename it to {folder}/toy-idx1-ubyte ")):
        download.fetch("toy", toy, data_dir=isolated / "data", download=False)


@promise("idx-header-beyond-any-file", "an IDX file whose header claims 65536⁴ items", "`DatasetError` naming the "
         "file, the header's dimensions, the bytes they need and the bytes the file holds, and what to do (never "
         "NumPy's reshape error without the file's name)")
def _idx_header_beyond_any_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + (65536).to_bytes(4, "big") * 4)
    message = (f"{path}: IDX size mismatch: header says (65536, 65536, 65536, 65536) of uint8 "
               "(18,446,744,073,709,551,636 bytes), file holds 20 bytes (truncated or corrupted); delete it and let "
               "minibng fetch it again")
    with pytest.raises(DatasetError, match=re.escape(message)):
        read_idx(path)


@pytest.mark.parametrize("case", PROMISES, ids=lambda case: case.id)
def test_promise(case, request):
    case.run(request)
