"""CIFAR augmentation on the batch's device, and MNIST padding to 32×32."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibng.backend import RandomStream, get_array_module
from minibng.data.augment import Compose, RandomCropFlip, pad_to_32, random_crop_flip
from support import host, on


def images(n, c=3, h=6, w=5, seed=0):
    """Values 1..255, so the zero padding is distinguishable from the picture."""
    return np.random.default_rng(seed).integers(1, 256, (n, c, h, w), dtype=np.uint8)


def candidates(image, padding):
    """Every crop of the zero-padded image, flipped or not: the naive oracle."""
    c, h, w = image.shape
    padded = np.zeros((c, h + 2 * padding, w + 2 * padding), image.dtype)
    padded[:, padding:padding + h, padding:padding + w] = image
    for a, b, flip in itertools.product(range(2 * padding + 1), range(2 * padding + 1), (False, True)):
        crop = padded[:, a:a + h, b:b + w]
        yield (a, b, flip), (crop[:, :, ::-1] if flip else crop)


@pytest.mark.parametrize("padding", [1, 2, 4])
def test_every_output_is_a_crop_of_the_padded_image(padding, device):
    x = images(40, seed=padding)
    y = random_crop_flip(on(device, x), RandomStream(7), padding=padding)
    assert get_array_module(y) is get_array_module(on(device, x))
    assert y.shape == x.shape and y.dtype == x.dtype
    seen = set()
    for n in range(len(x)):
        matches = [key for key, crop in candidates(x[n], padding) if np.array_equal(host(y)[n], crop)]
        assert matches, f"image {n} is not a crop of its padded image"
        seen.update(matches)
    assert {flip for _, _, flip in seen} == {False, True}
    assert {a for a, _, _ in seen} == set(range(2 * padding + 1))


def test_float_batches_and_channels_kept_together(device):
    x = np.random.default_rng(3).standard_normal((12, 3, 8, 8)).astype(np.float32) + 10
    y = host(random_crop_flip(on(device, x), RandomStream(1), padding=2))
    assert y.dtype == np.float32
    for n in range(12):
        assert any(np.array_equal(y[n], crop) for _, crop in candidates(x[n], 2))


def test_flip_only_and_identity(device):
    x = images(64, seed=5)
    y = host(random_crop_flip(on(device, x), RandomStream(2), padding=0))
    flipped = [np.array_equal(y[n], x[n, :, :, ::-1]) for n in range(64)]
    assert all(flipped[n] or np.array_equal(y[n], x[n]) for n in range(64))
    assert 16 < sum(flipped) < 48
    np.testing.assert_array_equal(host(random_crop_flip(on(device, x), RandomStream(2), padding=0, flip=False)), x)


def test_seeded_reproducible_and_resumable(device):
    x = on(device, images(16, seed=9))
    a, b = RandomCropFlip(seed=11), RandomCropFlip(seed=11)
    first = host(a(x))
    np.testing.assert_array_equal(first, host(b(x)))
    assert not np.array_equal(host(a(x)), first)          # the stream advanced
    saved = a.state()
    expected = host(a(x))
    resumed = RandomCropFlip(seed=0)
    resumed.set_state(saved)
    np.testing.assert_array_equal(host(resumed(x)), expected)
    assert not np.array_equal(host(RandomCropFlip(seed=12)(x)), first)


def test_compose_state_round_trip(device):
    x = on(device, images(8, seed=1))
    pipeline = Compose(RandomCropFlip(seed=1), lambda z: z * 1, RandomCropFlip(padding=1, seed=2))
    pipeline(x)
    state = pipeline.state()
    assert state == (1, 1, 2, 1)
    expected = host(pipeline(x))
    other = Compose(RandomCropFlip(seed=5), lambda z: z * 1, RandomCropFlip(padding=1, seed=6))
    other.set_state(state)
    np.testing.assert_array_equal(host(other(x)), expected)


@pytest.mark.parametrize("shape", [(5, 28, 28), (5, 1, 28, 28)])
@pytest.mark.parametrize("channels", [1, 3])
def test_pad_to_32_centres_and_replicates(shape, channels, device):
    x = np.random.default_rng(0).integers(1, 256, shape, dtype=np.uint8)
    y = host(pad_to_32(on(device, x), channels=channels))
    assert y.shape == (5, channels, 32, 32) and y.dtype == np.uint8
    for c in range(channels):
        np.testing.assert_array_equal(y[:, c, 2:30, 2:30], x.reshape(5, 28, 28))
    border = y.copy()
    border[:, :, 2:30, 2:30] = 0
    assert not border.any()
    with pytest.raises(ValueError, match="channels"):
        pad_to_32(on(device, x), channels=2)


@settings(max_examples=10)
@given(n=st.integers(1, 6), c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
       padding=st.integers(0, 3), flip=st.booleans(), seed=st.integers(0, 2**31))
def test_crop_property_on_drawn_shapes(n, c, h, w, padding, flip, seed, device):
    x = images(n, c, h, w, seed=seed % 1000)
    y = host(random_crop_flip(on(device, x), RandomStream(seed), padding=padding, flip=flip))
    assert y.shape == x.shape
    for k in range(n):
        assert any(np.array_equal(y[k], crop) for (_, _, flipped), crop in candidates(x[k], padding)
                   if flip or not flipped)
