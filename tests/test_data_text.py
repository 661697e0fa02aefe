"""PTB streams and BPTT windows, and the RT-polarity tokenizer, vocabulary, encodings and splits (small data)."""
import hashlib
import io
import tarfile

import numpy as np
import pytest

from minibng.data import checksums, ptb, root, rt_polarity
from minibng.data.checksums import ChecksumError, FileSpec
from support import host, on


def place(folder, name, data: bytes) -> FileSpec:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return FileSpec(name, (hashlib.sha256(data).hexdigest(),))


@pytest.mark.parametrize("length,batch_size", [(23, 4), (100, 7), (10, 5)])
def test_batchify_matches_the_stream_layout(length, batch_size, device):
    ids = np.arange(length, dtype=np.int64) * 3 + 1
    streams = host(ptb.batchify(on(device, ids), batch_size))
    rows = length // batch_size
    assert streams.shape == (rows, batch_size)
    for t in range(rows):
        for n in range(batch_size):
            assert streams[t, n] == ids[n * rows + t]


@pytest.mark.parametrize("rows,bptt", [(11, 3), (10, 3), (9, 4), (5, 10)])
def test_bptt_windows_cover_the_streams(rows, bptt, device):
    streams = on(device, np.arange(rows * 2).reshape(rows, 2))
    full = [(host(a), host(b)) for a, b in ptb.bptt_windows(streams, bptt, drop_last=False)]
    assert len(full) == -(-(rows - 1) // bptt) == ptb.num_windows(rows, bptt, drop_last=False)
    np.testing.assert_array_equal(np.concatenate([a for a, _ in full]), host(streams)[:-1])
    np.testing.assert_array_equal(np.concatenate([b for _, b in full]), host(streams)[1:])
    kept = list(ptb.bptt_windows(streams, bptt))
    assert len(kept) == (rows - 1) // bptt and all(len(a) == bptt for a, _ in kept)
    resumed = [host(a) for a, _ in ptb.bptt_windows(streams, bptt, drop_last=False, start=1)]
    assert len(resumed) == len(full) - 1 and all(np.array_equal(r, f[0]) for r, f in zip(resumed, full[1:]))


def test_ptb_vocabulary_and_ids_from_small_files(isolated, monkeypatch):
    folder = isolated / "data" / "ptb"
    files = {"train": place(folder, "ptb.train.txt", b" b a b <unk> \n c b \n"),
             "valid": place(folder, "ptb.valid.txt", b" a z \n"),
             "test": place(folder, "ptb.test.txt", b" c \n")}
    monkeypatch.setattr(ptb, "FILES", files)
    corpus = ptb.load(data_dir=isolated / "data", download=False)
    assert corpus.vocab == ["b", "<eos>", "<unk>", "a", "c"]          # by count, ties alphabetically
    assert corpus.decode(corpus.train) == ["b", "a", "b", "<unk>", "<eos>", "c", "b", "<eos>"]
    assert corpus.decode(corpus.valid) == ["a", "<unk>", "<eos>"]     # 'z' is not in the training vocabulary
    assert corpus.train.dtype == np.int64


def test_ptb_corrupted_file_is_refused(isolated, monkeypatch):
    folder = isolated / "data" / "ptb"
    files = {s: place(folder, f"ptb.{s}.txt", b" a b \n") for s in ("train", "valid", "test")}
    monkeypatch.setattr(ptb, "FILES", files)
    (folder / "ptb.valid.txt").write_bytes(b" a c \n")
    with pytest.raises(ChecksumError, match="ptb.valid.txt"):
        ptb.load(data_dir=isolated / "data", download=False)


@pytest.mark.parametrize("text,tokens", [
    ("it's a can't-miss film , isn't it ?",
     ["it", "'s", "a", "ca", "n't", "miss", "film", ",", "is", "n't", "it", "?"]),
    ("WE'LL see (maybe)!", ["we'll", "see", "(", "maybe", ")", "!"]),   # as Kim: clitics split before lower-casing
    ("you're, they'd; i've -- ok", ["you", "'re", ",", "they", "'d", "i", "'ve", "ok"]),
    ("café \u2014 `quoted' 1999", ["caf", "`quoted'", "1999"]),
])
def test_kim_clean_str(text, tokens):
    assert rt_polarity.tokenize(text) == tokens
    assert rt_polarity.clean_str(text) == " ".join(tokens)


def test_reads_windows_1252_and_utf8_alike(tmp_path):
    text = "a gem \u2014 truly\u2026 na\u00efve\nsecond line\n"
    (tmp_path / "u").write_bytes(text.encode("utf-8"))
    (tmp_path / "w").write_bytes(text.replace("\n", "\r\n").encode("cp1252"))
    assert rt_polarity.read_lines(tmp_path / "u") == rt_polarity.read_lines(tmp_path / "w") == [
        "a gem \u2014 truly\u2026 na\u00efve", "second line"]


def test_vocab_encode_and_padding():
    sentences = [["b", "a"], ["a"], ["c", "a", "b"]]
    vocab = rt_polarity.build_vocab(sentences)
    assert vocab == ["<pad>", "a", "b", "c"]
    ids = rt_polarity.encode(sentences, {w: i for i, w in enumerate(vocab)})
    np.testing.assert_array_equal(ids, [[2, 1, 0], [1, 0, 0], [3, 1, 2]])


def test_rt_load_from_authors_archive(isolated, monkeypatch):
    pos, neg = "great fun \u2014 really\ngood\n".encode("cp1252"), b"dull , dull\nbad!\nworse\n"
    specs = {"pos": FileSpec("rt-polarity.pos", (hashlib.sha256(pos).hexdigest(),)),
             "neg": FileSpec("rt-polarity.neg", (hashlib.sha256(neg).hexdigest(),))}
    monkeypatch.setattr(rt_polarity, "FILES", specs)
    folder = isolated / "data" / "rt-polarity"
    folder.mkdir(parents=True)
    with tarfile.open(folder / "rt-polaritydata.tar.gz", "w:gz") as tar:
        for name, data in [("rt-polaritydata/rt-polarity.neg", neg), ("rt-polaritydata/rt-polarity.pos", pos)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = rt_polarity.load(data_dir=isolated / "data", download=False)
    assert (folder / "rt-polarity.pos").read_bytes() == pos
    assert data.labels.tolist() == [1, 1, 0, 0, 0] and data.lengths.tolist() == [3, 1, 3, 2, 1]
    assert data.ids.shape == (5, 3) and data.vocab[0] == "<pad>"
    assert [data.vocab[i] for i in data.ids[3]] == ["bad", "!", "<pad>"]


def test_rt_missing_explains_files_and_archive(isolated):
    with pytest.raises(checksums.DatasetError) as info:
        rt_polarity.load(data_dir=isolated / "data", download=False)
    message = str(info.value)
    assert "rt-polarity.pos" in message and "rt-polaritydata.tar.gz" in message and "by hand" in message


@pytest.mark.parametrize("n,seed", [(10662, 0), (101, 3)])
def test_train_val_split_is_a_seeded_partition(n, seed):
    train, val = rt_polarity.train_val_split(n, seed=seed)
    assert len(val) == round(n * 0.1) and len(train) + len(val) == n
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(n))
    again = rt_polarity.train_val_split(n, seed=seed)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(rt_polarity.train_val_split(n, seed=seed + 1)[1], val)


def test_kfold_partitions():
    folds = rt_polarity.kfold_splits(103, k=10, seed=1)
    tests = [test for _, test in folds]
    assert sorted(np.concatenate(tests).tolist()) == list(range(103))
    assert {len(t) for t in tests} == {10, 11}
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 103
