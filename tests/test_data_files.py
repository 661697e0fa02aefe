"""Data roots, SHA-256 verification, downloads (with a fake opener: no network) and safe archive extraction."""
import hashlib
import io
import os
import socket
import tarfile
import urllib.error

import pytest

from minibng.data import archive, checksums, download, root
from minibng.data.checksums import ChecksumError, DatasetError, FileSpec


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No data root outside tmp_path: env var unset, cwd, cache and system roots inside tmp_path."""
    monkeypatch.delenv("MINIBNG_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(root, "SYSTEM_ROOTS", (tmp_path / "system",))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    checksums._verified.clear()
    return tmp_path


class FakeResponse(io.BytesIO):
    def __init__(self, data, length=None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data) if length is None else length)}


def spec_for(data: bytes, name="blob.bin", urls=("https://mirror-a/blob.bin", "https://mirror-b/blob.bin")):
    return FileSpec(name, (hashlib.sha256(data).hexdigest(),), len(data), urls)


PAYLOAD = bytes(range(256)) * 37


def test_search_order_is_data_dir_env_local_cache_system(isolated, monkeypatch):
    monkeypatch.setenv("MINIBNG_DATA", str(isolated / "env"))
    roots = root.search_roots(isolated / "arg")
    assert [str(r) for r in roots] == [str(isolated / "arg"), str(isolated / "env"), str(isolated / "cwd" / "datasets"),
                                       str(isolated / "xdg" / "minibng"), str(isolated / "system")]
    assert root.download_roots(isolated / "arg") == [isolated / "arg", isolated / "env", isolated / "xdg" / "minibng"]


def test_cache_without_xdg_is_home_dot_cache(isolated, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(isolated / "home"))
    assert root.user_cache_dir() == isolated / "home" / ".cache" / "minibng"
    assert root.search_roots()[0] == isolated / "cwd" / "datasets"
    assert root.download_roots() == [isolated / "home" / ".cache" / "minibng"]


def test_first_root_holding_the_file_wins(isolated, monkeypatch):
    spec = spec_for(PAYLOAD)
    for where in ("system", "xdg/minibng"):
        (isolated / where / "toy").mkdir(parents=True)
        (isolated / where / "toy" / spec.name).write_bytes(PAYLOAD)
    assert download.fetch("toy", spec) == isolated / "xdg" / "minibng" / "toy" / spec.name
    (isolated / "cwd" / "datasets" / "toy").mkdir(parents=True)
    (isolated / "cwd" / "datasets" / "toy" / spec.name).write_bytes(PAYLOAD)
    assert download.fetch("toy", spec) == isolated / "cwd" / "datasets" / "toy" / spec.name
    monkeypatch.setenv("MINIBNG_DATA", str(isolated / "env"))
    (isolated / "env" / "toy").mkdir(parents=True)
    (isolated / "env" / "toy" / spec.name).write_bytes(PAYLOAD)
    assert download.fetch("toy", spec) == isolated / "env" / "toy" / spec.name


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend"])
def test_damaged_local_file_is_refused_with_both_checksums(isolated, damage):
    spec = spec_for(PAYLOAD)
    data = {"flip": PAYLOAD[:100] + bytes([PAYLOAD[100] ^ 1]) + PAYLOAD[101:], "truncate": PAYLOAD[:-7],
            "extend": PAYLOAD + b"\0"}[damage]
    path = isolated / "arg" / "toy" / spec.name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    with pytest.raises(ChecksumError) as info:
        download.fetch("toy", spec, data_dir=isolated / "arg")
    message = str(info.value)
    assert str(path) in message and spec.sha256[0] in message
    assert hashlib.sha256(data).hexdigest() in message and "Delete it" in message
    assert isinstance(info.value, RuntimeError)


def test_offline_failure_names_file_places_and_how_to_fix(isolated, monkeypatch):
    calls = []

    def offline(url, timeout):
        calls.append((url, timeout))
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(download, "_open_url", offline)
    spec = spec_for(PAYLOAD)
    with pytest.raises(DatasetError) as info:
        download.fetch("toy", spec, data_dir=isolated / "arg")
    message = str(info.value)
    for place in root.search_roots(isolated / "arg"):
        assert str(place / "toy" / spec.name) in message
    assert spec.name in message and "by hand" in message and spec.sha256[0] in message
    assert all(url in message for url in spec.urls) and "name resolution" in message
    assert [u for u, _ in calls] == list(spec.urls) and all(0 < t <= 10 for _, t in calls)
    assert not list((isolated / "arg").rglob("*.part")) and not list((isolated / "arg").rglob("*.tmp"))


def test_timeout_stops_trying_mirrors(isolated, monkeypatch):
    calls = []

    def black_hole(url, timeout):
        calls.append(url)
        raise urllib.error.URLError(socket.timeout("timed out"))

    monkeypatch.setattr(download, "_open_url", black_hole)
    with pytest.raises(DatasetError, match="unreachable"):
        download.fetch("toy", spec_for(PAYLOAD))
    assert len(calls) == 1


def test_download_disabled_says_so(isolated, monkeypatch):
    monkeypatch.setattr(download, "_open_url", lambda url, timeout: pytest.fail("must not download"))
    with pytest.raises(DatasetError, match="download=False"):
        download.fetch("toy", spec_for(PAYLOAD), download=False)


def test_download_goes_to_cache_verified(isolated, monkeypatch):
    served = []
    monkeypatch.setattr(download, "_open_url", lambda url, timeout: served.append(url) or FakeResponse(PAYLOAD))
    path = download.fetch("toy", spec_for(PAYLOAD))
    assert path == isolated / "xdg" / "minibng" / "toy" / "blob.bin"
    assert path.read_bytes() == PAYLOAD and served == ["https://mirror-a/blob.bin"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["blob.bin"]


def test_truncated_download_is_discarded_and_next_mirror_used(isolated, monkeypatch):
    def flaky(url, timeout):
        return FakeResponse(PAYLOAD[:1000], length=len(PAYLOAD)) if "mirror-a" in url else FakeResponse(PAYLOAD)

    monkeypatch.setattr(download, "_open_url", flaky)
    path = download.fetch("toy", spec_for(PAYLOAD), data_dir=isolated / "arg")
    assert path.read_bytes() == PAYLOAD and sorted(os.listdir(path.parent)) == ["blob.bin"]


def test_bad_download_everywhere_leaves_nothing(isolated, monkeypatch):
    monkeypatch.setattr(download, "_open_url", lambda url, timeout: FakeResponse(PAYLOAD[:1000], len(PAYLOAD)))
    with pytest.raises(DatasetError, match="truncated"):
        download.fetch("toy", spec_for(PAYLOAD), data_dir=isolated / "arg")
    assert os.listdir(isolated / "arg" / "toy") == []


def test_a_download_refused_by_its_check_keeps_the_old_file(tmp_path):
    """``check`` (a download's SHA-256) sees the complete temporary file and may refuse it: the destination keeps what
    it held and no temporary file is left.  (A write that fails half-way is the fault table's
    failed-write-keeps-file.)"""
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")

    def refuse(tmp):
        assert tmp.read_bytes() == b"rejected"
        raise ValueError("checksum mismatch")

    with pytest.raises(ValueError, match="checksum mismatch"):
        with download.atomic_write(dest, check=refuse) as f:
            f.write(b"rejected")
    assert dest.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]
    with download.atomic_write(dest, check=lambda tmp: None) as f:
        f.writelines([b"n", b"ew"])
    assert dest.read_bytes() == b"new" and os.listdir(tmp_path) == ["f.bin"]


def make_tar(path, members):
    """members: list of (TarInfo-like spec): (name, bytes) regular files, or (name, None, linkname) symlinks."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data, *link in members:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link[0]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("bad", [("../evil.txt", b"x"), ("data/../../evil.txt", b"x"), ("/tmp/evil.txt", b"x"),
                                 ("data/link", None, "../../etc/passwd")])
def test_extraction_refuses_unsafe_members(tmp_path, bad):
    tar = make_tar(tmp_path / "a.tar.gz", [("data/good.txt", b"good"), bad])
    out = tmp_path / "out" / "inner"
    with pytest.raises(DatasetError, match="refusing"):
        archive.extract(tar, out)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()
    assert not out.exists() or not any(out.rglob("*"))


def test_extraction_renames_and_verifies_members(tmp_path):
    tar = make_tar(tmp_path / "a.tar.gz", [("pkg/a.txt", b"alpha"), ("pkg/b.txt", b"beta"), ("pkg/c.txt", b"c")])
    written = archive.extract(tar, tmp_path / "out", {"pkg/b.txt": "b.txt", "pkg/a.txt": "sub/a.txt"},
                              specs={"pkg/a.txt": spec_for(b"alpha", "a.txt")})
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["b.txt", "sub/a.txt"]
    assert (tmp_path / "out" / "sub" / "a.txt").read_bytes() == b"alpha"
    assert not (tmp_path / "out" / "c.txt").exists()
    with pytest.raises(DatasetError, match="SHA-256"):
        archive.extract(tar, tmp_path / "out2", ["pkg/c.txt"], specs={"pkg/c.txt": spec_for(b"other")})
    assert not (tmp_path / "out2" / "pkg" / "c.txt").exists()
    with pytest.raises(DatasetError, match="missing"):
        archive.extract(tar, tmp_path / "out3", ["pkg/nope.txt"])


def test_real_http_client_against_a_local_server(isolated, monkeypatch):
    """The real opener (urllib) end to end, served from localhost: progress, Content-Length, verification."""
    import functools
    import http.server
    import threading

    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    served = isolated / "served"
    served.mkdir()
    (served / "blob.bin").write_bytes(PAYLOAD)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        spec = spec_for(PAYLOAD, urls=(base + "missing.bin", base + "blob.bin"))
        path = download.fetch("toy", spec, data_dir=isolated / "arg")
        assert path.read_bytes() == PAYLOAD
        wrong = FileSpec("blob.bin", ("0" * 64,), len(PAYLOAD), (base + "blob.bin",))
        with pytest.raises(DatasetError, match="HTTP Error 404|SHA-256"):
            download.fetch("toy2", wrong, data_dir=isolated / "arg")
    finally:
        server.shutdown()
        server.server_close()
    assert os.listdir(isolated / "arg" / "toy2") == []


def test_connection_closed_early_is_reported(isolated, monkeypatch):
    import http.client

    class Broken(FakeResponse):
        def read(self, size=-1):
            raise http.client.IncompleteRead(b"partial", 1000)

    monkeypatch.setattr(download, "_open_url", lambda url, timeout: Broken(PAYLOAD))
    with pytest.raises(DatasetError, match="IncompleteRead"):
        download.fetch("toy", spec_for(PAYLOAD), data_dir=isolated / "arg")
    assert os.listdir(isolated / "arg" / "toy") == []


def test_truncated_archive_is_refused(tmp_path):
    tar = make_tar(tmp_path / "a.tar.gz", [("pkg/a.txt", bytes(range(256)) * 400)])
    (tmp_path / "cut.tar.gz").write_bytes(tar.read_bytes()[:300])
    with pytest.raises(DatasetError):
        archive.extract(tmp_path / "cut.tar.gz", tmp_path / "out")
