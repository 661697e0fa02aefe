"""Every loader on the real files.  Where the data is missing these tests skip, saying how to provide it; with
MINIBNG_REQUIRE_DATA=1 (CI) they fail instead.

MINIBNG_TEST_DATA    folder holding mnist/, ptb/, rt-polarity/ (default: ../shared/data beside the repository)
MINIBNG_TEST_FASHION folder holding fashion-mnist/ (default: /usr/share/datasets, Debian's dataset-fashion-mnist)
"""
import gzip
import hashlib
import io
import shutil
import tarfile

import numpy as np
import pytest

from minibng.data import download, mnist, ptb, rt_polarity
from minibng.data.checksums import ChecksumError, DatasetError
from support import real_data_root as real_root

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist(isolated):
    data = mnist.load("mnist", data_dir=real_root(), download=False)
    assert data.train_images.shape == (60000, 28, 28) and data.test_images.shape == (10000, 28, 28)
    assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.int64
    assert data.train_images.max() == 255 and data.train_images.min() == 0
    assert np.bincount(data.train_labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(data.test_labels).tolist() == MNIST_TEST_COUNTS


def test_fashion_mnist(isolated):
    data = mnist.load("fashion-mnist", download=False,
                      data_dir=real_root("fashion-mnist", "MINIBNG_TEST_FASHION", "/usr/share/datasets"))
    assert data.train_images.shape == (60000, 28, 28) and data.test_images.shape == (10000, 28, 28)
    assert np.bincount(data.train_labels).tolist() == [6000] * 10
    assert np.bincount(data.test_labels).tolist() == [1000] * 10
    assert data.train_images.dtype == np.uint8 and data.train_images.max() == 255


def copy_mnist(dest):
    """The four real MNIST files copied into dest/mnist."""
    folder = dest / "mnist"
    folder.mkdir(parents=True)
    for spec in mnist.FILES["mnist"].values():
        shutil.copy(real_root() / "mnist" / spec.name, folder / spec.name)
    return folder


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_mnist_copy_is_detected(isolated, damage):
    folder = copy_mnist(isolated / "data")
    victim = folder / "t10k-labels-idx1-ubyte.gz"
    data = victim.read_bytes()
    victim.write_bytes(data[:100] + bytes([data[100] ^ 0x10]) + data[101:] if damage == "flip" else data[:2000])
    with pytest.raises(ChecksumError) as info:
        mnist.load(data_dir=isolated / "data", download=False)
    message = str(info.value)
    assert str(victim) in message and mnist.FILES["mnist"][victim.name].sha256[0] in message
    assert hashlib.sha256(victim.read_bytes()).hexdigest() in message


def test_recompressed_and_decompressed_copies_are_accepted(isolated):
    folder = copy_mnist(isolated / "data")
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    content = gzip.decompress(labels.read_bytes())
    labels.write_bytes(gzip.compress(content, compresslevel=9, mtime=0))        # as Debian repacks them
    images = folder / "t10k-images-idx3-ubyte.gz"
    images.with_suffix("").write_bytes(gzip.decompress(images.read_bytes()))    # a gunzipped copy
    images.unlink()
    data = mnist.load(data_dir=isolated / "data", download=False)
    assert np.bincount(data.test_labels).tolist() == MNIST_TEST_COUNTS
    labels.write_bytes(gzip.compress(content[:-1] + b"\x00", mtime=0))        # same size, wrong content
    with pytest.raises(ChecksumError, match="decompressed content"):
        mnist.load(data_dir=isolated / "data", download=False)


def test_mnist_download_through_the_opener(isolated, monkeypatch):
    """With the network replaced by the real files, a missing data set is downloaded, verified and loaded."""
    urls, real = [], real_root()

    class Response(io.BytesIO):
        headers = {}

    def serve(url, timeout):
        urls.append(url)
        return Response((real / "mnist" / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(download, "_open_url", serve)
    data = mnist.load(data_dir=isolated / "fresh")
    assert np.bincount(data.test_labels).tolist() == MNIST_TEST_COUNTS
    assert sorted(p.name for p in (isolated / "fresh" / "mnist").iterdir()) == sorted(mnist.FILES["mnist"])
    assert all(u.startswith(mnist.MIRRORS["mnist"][0]) for u in urls) and len(urls) == 4


def test_mnist_offline_fails_with_help(isolated, monkeypatch):
    def offline(url, timeout):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(download, "_open_url", offline)
    with pytest.raises(DatasetError) as info:
        mnist.load(data_dir=isolated / "empty")
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "by hand" in message
    assert str(isolated / "empty" / "mnist" / "train-images-idx3-ubyte.gz") in message


def test_ptb(isolated):
    corpus = ptb.load(data_dir=real_root("ptb"), download=False)
    assert len(corpus.vocab) == 10000 and "<eos>" in corpus.word_to_id and "<unk>" in corpus.word_to_id
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (929589, 73760, 82430)
    eos = corpus.word_to_id["<eos>"]
    assert [int((s == eos).sum()) for s in (corpus.train, corpus.valid, corpus.test)] == [42068, 3370, 3761]
    assert corpus.decode(corpus.train[:3]) == ["aer", "banknote", "berlitz"]
    streams = ptb.batchify(corpus.train, 100)
    assert streams.shape == (9295, 100) and ptb.num_windows(len(streams), 40) == 232


def test_rt_polarity_utf8_copy(isolated):
    data = rt_polarity.load(data_dir=real_root("rt-polarity"), download=False)
    assert data.ids.shape == (10662, 56) and data.lengths.max() == 56 and data.lengths.min() >= 1
    assert int(data.labels.sum()) == 5331 and int((data.labels == 0).sum()) == 5331
    assert len(data.vocab) == 18765 and data.vocab[0] == "<pad>"
    assert (data.ids[np.arange(56)[None, :] >= data.lengths[:, None]] == 0).all()
    assert (data.ids[np.arange(56)[None, :] < data.lengths[:, None]] > 0).all()


def test_rt_polarity_authors_archive_windows_1252(isolated):
    """The authors' tarball (rebuilt from the real text in Windows-1252) extracts, verifies and loads alike."""
    folder = isolated / "data" / "rt-polarity"
    folder.mkdir(parents=True)
    with tarfile.open(folder / "rt-polaritydata.tar.gz", "w:gz") as tar:
        for kind in ("neg", "pos"):
            text = (real_root("rt-polarity") / "rt-polarity" / f"rt-polarity.{kind}").read_text("utf-8")
            data = text.encode("cp1252")
            info = tarfile.TarInfo(f"rt-polaritydata/rt-polarity.{kind}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    original = rt_polarity.load(data_dir=isolated / "data", download=False)
    assert (folder / "rt-polarity.pos").stat().st_size == rt_polarity.FILES["pos"].size
    utf8 = rt_polarity.load(data_dir=real_root("rt-polarity"), download=False)
    np.testing.assert_array_equal(original.ids, utf8.ids)
    assert original.vocab == utf8.vocab


def test_missing_real_data_skips_with_instructions_unless_required(tmp_path, monkeypatch):
    """On a fresh machine these tests skip and say how to provide the data; where CI requires it, they fail."""
    monkeypatch.setenv("MINIBNG_TEST_DATA", str(tmp_path))
    monkeypatch.delenv("MINIBNG_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"{tmp_path / 'ptb'} does not exist; set MINIBNG_TEST_DATA to "
                                                    "the folder holding ptb/ .*docs/data.md"):
        real_root("ptb")
    monkeypatch.setenv("MINIBNG_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="MINIBNG_REQUIRE_DATA is set, so this test may not skip"):
        real_root("ptb")
