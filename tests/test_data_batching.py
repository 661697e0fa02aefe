"""Batches: the data set moved once, every sample once per epoch, exact resume from a pickle-free state."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibng.backend import device_of, get_array_module
from minibng.data import synthetic
from minibng.data.augment import RandomCropFlip
from minibng.data.batching import Batches
from support import host, on


def indexed(n):
    """x[i] holds i in every feature, y[i] = 10 i: a batch shows which samples it holds."""
    return np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1), np.arange(n, dtype=np.int64) * 10


@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (12, 4, False), (7, 7, True)])
def test_every_sample_once_per_epoch(n, batch_size, drop_last, device):
    x, y = indexed(n)
    loader = Batches(x, y, batch_size, seed=4, device=device, drop_last=drop_last)
    assert len(loader) == (n // batch_size if drop_last else -(-n // batch_size))
    assert device_of(loader.x) == device_of(on(device, x))
    orders = []
    for epoch in range(3):
        seen = []
        for xb, yb in loader:
            assert get_array_module(xb) is get_array_module(loader.x)
            assert len(xb) <= batch_size and (not drop_last or len(xb) == batch_size)
            np.testing.assert_array_equal(host(yb), host(xb)[:, 0].astype(np.int64) * 10)
            seen += host(yb).tolist()
        assert len(seen) == len(loader) * batch_size if drop_last else len(seen) == n
        assert len(set(seen)) == len(seen) and set(seen) <= set(range(0, 10 * n, 10))
        orders.append(seen)
        assert loader.epoch == epoch + 1 and loader.batch == 0
    assert orders[0] != orders[1] or n <= 1


def test_no_shuffle_keeps_data_order(device):
    x, y = indexed(9)
    got = [host(yb).tolist() for _, yb in Batches(x, y, 4, shuffle=False, device=device)]
    assert got == [[0, 10, 20, 30], [40, 50, 60, 70], [80]]


def test_same_seed_same_batches_different_seed_different(device):
    x, y = indexed(50)
    run = lambda seed: [host(yb).tolist() for _, yb in Batches(x, y, 8, seed=seed, device=device)]  # noqa: E731
    assert run(3) == run(3) and run(3) != run(4)


def test_resume_mid_epoch_from_npz_gives_the_same_batches(tmp_path, device):
    x, _ = synthetic.images(40, classes=4, size=8, seed=1)
    y = np.arange(40, dtype=np.int64)

    def fresh():
        return Batches(x, y, 6, seed=9, device=device, transform=RandomCropFlip(padding=2, seed=5))

    reference = fresh()
    expected = [(host(xb), host(yb)) for _ in range(3) for xb, yb in reference]

    first = fresh()
    got = []
    for xb, yb in first:                       # epoch 0 in full, then 3 batches of epoch 1
        got.append((host(xb), host(yb)))
    for k, (xb, yb) in enumerate(first):
        got.append((host(xb), host(yb)))
        if k == 2:
            break
    np.savez(tmp_path / "ckpt.npz", **first.state())
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as saved:
        state = {k: saved[k] for k in saved.files}
    assert int(state["epoch"]) == 1 and int(state["batch"]) == 3

    resumed = Batches(x, y, 6, seed=0, device=device, transform=RandomCropFlip(padding=2, seed=0))
    resumed.set_state(state)
    for _ in range(2):
        got += [(host(xb), host(yb)) for xb, yb in resumed]
    assert len(got) == len(expected) == 3 * len(reference)
    for (gx, gy), (ex, ey) in zip(got, expected):
        np.testing.assert_array_equal(gy, ey)
        np.testing.assert_array_equal(gx, ex)


def test_invalid_arguments(device):
    x, y = indexed(5)
    with pytest.raises(ValueError, match="samples"):
        Batches(x, y[:4], 2, device=device)
    with pytest.raises(ValueError, match="batch_size"):
        Batches(x, y, 0, device=device)
    with pytest.raises(ValueError, match="drop_last"):
        Batches(x, y, 6, drop_last=True, device=device)


def test_synthetic_sets_are_deterministic_and_balanced():
    x, y = synthetic.blobs(30, features=4, classes=3, seed=2)
    x2, y2 = synthetic.blobs(30, features=4, classes=3, seed=2)
    np.testing.assert_array_equal(x, x2)
    assert x.dtype == np.float32 and y.dtype == np.int64 and np.bincount(y).tolist() == [10, 10, 10]
    imgs, labels = synthetic.images(8, classes=4, channels=1, size=8, seed=0)
    assert imgs.shape == (8, 1, 8, 8) and imgs.dtype == np.uint8
    for img, label in zip(imgs, labels):
        assert np.argmax(img[0].mean(axis=1)) // 2 == label   # the bright band is the class's rows
    stream = synthetic.tokens(500, vocab=7, seed=1)
    assert stream.dtype == np.int64 and stream.min() >= 0 and stream.max() < 7


def two_epochs(loader):
    return [host(yb).tolist() for _ in range(2) for _, yb in loader]


@settings(max_examples=10)
@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), drop_last=st.booleans(), seed=st.integers(0, 2**31),
       stop=st.integers(0, 30))
def test_drawn_sizes_visit_each_sample_once_and_resume_anywhere(n, batch_size, drop_last, seed, stop, device):
    if drop_last and n < batch_size:
        return
    x, y = indexed(n)
    make = lambda s: Batches(x, y, batch_size, seed=s, drop_last=drop_last, device=device)  # noqa: E731
    expected = two_epochs(make(seed))
    for epoch in (expected[:len(expected) // 2], expected[len(expected) // 2:]):
        flat = [v for b in epoch for v in b]
        assert len(set(flat)) == len(flat) == (n // batch_size * batch_size if drop_last else n)
    first, got = make(seed), []
    stop = min(stop, len(expected))
    while len(got) < stop:                             # consume `stop` batches, possibly across the epoch end
        for _, yb in first:
            got.append(host(yb).tolist())
            if len(got) == stop:
                break
    resumed = make(0)
    resumed.set_state(first.state())
    while len(got) < len(expected):
        got += [host(yb).tolist() for _, yb in resumed]
    assert got == expected
