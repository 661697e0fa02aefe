"""IDX and CIFAR binary formats: byte-level oracles, round trips, the tarball path, normalization."""
import gzip
import hashlib
import io
import tarfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibng.data import checksums, cifar, root
from minibng.data.checksums import DatasetError, FileSpec
from minibng.data.idx import encode_idx, parse_idx, read_idx
from support import host, on


@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=3),
       dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]))
def test_idx_round_trip(shape, dtype):
    a = (np.arange(int(np.prod(shape))) * 3 - 7).astype(dtype).reshape(shape)
    np.testing.assert_array_equal(parse_idx(encode_idx(a)), a)


def test_idx_header_by_hand(tmp_path):
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(parse_idx(raw), [[1, 2, 3], [4, 5, 6]])
    (tmp_path / "a.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), [[1, 2, 3], [4, 5, 6]])
    for bad, reason in [(raw[:-1], "size mismatch"), (raw + b"\0", "size mismatch"), (b"\1" + raw[1:], "not an IDX"),
                        (raw[:2] + b"\x07" + raw[3:], "unknown IDX type"), (raw[:6], "truncated IDX header")]:
        with pytest.raises(DatasetError, match=reason):
            parse_idx(bad)
    (tmp_path / "b.gz").write_bytes(gzip.compress(raw)[:-6])
    with pytest.raises(DatasetError, match="corrupted gzip"):
        read_idx(tmp_path / "b.gz")


def test_cifar_record_layout_by_hand(tmp_path):
    """One CIFAR-100 record written byte by byte: coarse, fine, then the R, G, B planes row-major."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, 3072, dtype=np.uint8)
    (tmp_path / "one.bin").write_bytes(bytes([7, 93]) + pixels.tobytes())
    images, labels = cifar.read_batches([tmp_path / "one.bin"], 2)
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [[7, 93]]
    for c in range(3):
        for i in (0, 5, 31):
            for j in (0, 17, 31):
                assert images[0, c, i, j] == pixels[c * 1024 + i * 32 + j]


def fake_cifar(rng, n, label_bytes, classes):
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = np.stack([rng.integers(0, k, n) for k in classes], axis=1).astype(np.uint8)
    return images, labels


def install_fake_layout(monkeypatch, tmp_path, name, rng):
    """Small batch files in the exact binary format, a tarball of them, and a layout with their checksums."""
    real = cifar.DATASETS[name]
    folder = real.train[0].name.split("/")[0]
    contents = {}
    for spec in real.train + real.test:
        images, labels = fake_cifar(rng, 6, real.label_bytes, real.classes)
        contents[spec.name] = (images, labels, cifar.encode_records(images, labels))
    sums = {n: hashlib.sha256(c[2]).hexdigest() for n, c in contents.items()}
    tar_path = tmp_path / "build" / real.archive.name
    tar_path.parent.mkdir()
    with tarfile.open(tar_path, "w:gz") as tar:
        for member, (_, _, data) in contents.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        readme = tarfile.TarInfo(f"{folder}/readme.html")
        readme.size = 2
        tar.addfile(readme, io.BytesIO(b"hi"))
    tar_sha = hashlib.sha256(tar_path.read_bytes()).hexdigest()
    layout = cifar.CifarLayout(
        FileSpec(real.archive.name, (tar_sha,), None, ()),
        tuple(FileSpec(s.name, (sums[s.name],)) for s in real.train),
        tuple(FileSpec(s.name, (sums[s.name],)) for s in real.test), real.label_bytes, real.classes)
    monkeypatch.setitem(cifar.DATASETS, name, layout)
    return contents, tar_path, layout


def expected(contents, layout, column):
    def join(specs):
        return (np.concatenate([contents[s.name][0] for s in specs]),
                np.concatenate([contents[s.name][1][:, column] for s in specs]).astype(np.int64))
    return (*join(layout.train), *join(layout.test))


@pytest.mark.parametrize("name,label,column", [("cifar-10", "fine", 0), ("cifar-100", "fine", 1),
                                               ("cifar-100", "coarse", 0)])
def test_load_from_batch_files(isolated, monkeypatch, name, label, column):
    contents, _, layout = install_fake_layout(monkeypatch, isolated, name, np.random.default_rng(1))
    for member, (_, _, data) in contents.items():
        (isolated / "data" / name / member).parent.mkdir(parents=True, exist_ok=True)
        (isolated / "data" / name / member).write_bytes(data)
    got = cifar.load(name, data_dir=isolated / "data", download=False, label=label)
    for a, b in zip(got, expected(contents, layout, column)):
        np.testing.assert_array_equal(a, b)
    assert got.train_images.dtype == np.uint8 and got.train_labels.dtype == np.int64


@pytest.mark.parametrize("name", ["cifar-10", "cifar-100"])
def test_load_extracts_from_tarball_only(isolated, monkeypatch, name):
    contents, tar_path, layout = install_fake_layout(monkeypatch, isolated, name, np.random.default_rng(2))
    (isolated / "data" / name).mkdir(parents=True)
    tar_path.rename(isolated / "data" / name / tar_path.name)
    got = cifar.load(name, data_dir=isolated / "data", download=False)
    for a, b in zip(got, expected(contents, layout, layout.label_bytes - 1)):
        np.testing.assert_array_equal(a, b)
    for spec in layout.train + layout.test:
        assert (isolated / "data" / name / spec.name).is_file()
    assert not (isolated / "data" / name / spec.name.split("/")[0] / "readme.html").exists()


def test_corrupted_batch_file_is_refused(isolated, monkeypatch):
    contents, _, layout = install_fake_layout(monkeypatch, isolated, "cifar-10", np.random.default_rng(3))
    for member, (_, _, data) in contents.items():
        (isolated / "data" / "cifar-10" / member).parent.mkdir(parents=True, exist_ok=True)
        (isolated / "data" / "cifar-10" / member).write_bytes(data)
    victim = isolated / "data" / "cifar-10" / layout.test[0].name
    victim.write_bytes(victim.read_bytes()[:-3073])
    with pytest.raises(checksums.ChecksumError, match="test_batch.bin"):
        cifar.load("cifar-10", data_dir=isolated / "data", download=False)
    (isolated / "t.bin").write_bytes(b"\0" * 3074)
    with pytest.raises(DatasetError, match="whole number"):
        cifar.read_batches([isolated / "t.bin"], 1)


def test_missing_cifar_without_download_explains(isolated):
    with pytest.raises(DatasetError) as info:
        cifar.load("cifar-10", data_dir=isolated / "data", download=False)
    assert "cifar-10-binary.tar.gz" in str(info.value) and "by hand" in str(info.value)


def test_channel_mean_std_and_normalize(device):
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (9, 3, 4, 5), dtype=np.uint8)
    mean, std = cifar.channel_mean_std(on(device, images), chunk=4)
    for c in range(3):
        values = [images[n, c, i, j] / 255 for n in range(9) for i in range(4) for j in range(5)]
        assert abs(host(mean)[c] - np.mean(values)) < 1e-6 and abs(host(std)[c] - np.std(values)) < 1e-6
    z = cifar.normalize(on(device, images), mean, std)
    assert z.dtype == np.float32 and z.shape == images.shape
    np.testing.assert_allclose(host(z).mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(host(z).std(axis=(0, 2, 3)), 1, atol=1e-4)
