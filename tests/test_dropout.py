"""Dropout masks from the counter-based generator: rate, scaling, reproducibility, threads."""

from __future__ import annotations

import numpy as np
import pytest

from pyreg import _core, kernels

M32 = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    """Independent pure-Python Philox4x32-10 (Salmon et al. 2011)."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (
            ((p1 >> 32) ^ c1 ^ k0) & M32,
            p1 & M32,
            ((p0 >> 32) ^ c3 ^ k1) & M32,
            p0 & M32,
        )
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    return [c0, c1, c2, c3]


# known-answer vectors of Random123's kat_vectors file: (counter, key, output)
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32, M32, M32, M32), (M32, M32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]  # fmt: skip


@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_generator_matches_philox_known_answers(ctr, key, expected):
    assert tuple(philox4x32_10(ctr, key)) == expected  # the python reference itself
    seed = key[0] | key[1] << 32
    step = ctr[2] | ctr[3] << 32
    words = _core.philox_words(seed, ctr[1], step, ctr[0] * 4, 4)
    assert tuple(int(w) for w in words) == expected


def test_generator_matches_reference_on_many_counters():
    seed, stream, step = 0x1234_5678_9ABC_DEF0, 3, 77
    words = _core.philox_words(seed, stream, step, 0, 64)
    for q in range(16):
        ref = philox4x32_10((q, stream, step, 0), (seed & M32, seed >> 32))
        assert [int(w) for w in words[4 * q : 4 * q + 4]] == ref


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_keep_rate_within_four_sigma_and_exact_scaling(rng, rate):
    x = rng.uniform(0.5, 1.5, (1000, 1000)).astype(np.float32)
    y, mask = kernels.dropout_forward(x, rate, seed=42, step=5, layer=1)
    n = mask.size
    keep = 1.0 - rate
    sigma = np.sqrt(n * keep * (1 - keep))
    assert abs(int(mask.sum()) - n * keep) < 4 * sigma
    scale = np.float32(1.0 / (1.0 - rate))
    np.testing.assert_array_equal(y[mask == 1], x[mask == 1] * scale)
    assert (y[mask == 0] == 0).all()


def test_inference_is_identity(rng):
    x = rng.standard_normal((32, 128)).astype(np.float32)
    y, mask = kernels.dropout_forward(x, 0.5, seed=1, training=False)
    np.testing.assert_array_equal(y, x)
    assert mask.all()


def test_rate_zero_is_identity(rng):
    x = rng.standard_normal((8, 9)).astype(np.float32)
    y, _ = kernels.dropout_forward(x, 0.0, seed=1)
    np.testing.assert_array_equal(y, x)


def test_same_key_same_mask_other_step_or_layer_other_mask():
    x = np.ones((64, 128), np.float32)
    _, a = kernels.dropout_forward(x, 0.5, seed=9, step=3, layer=1)
    _, b = kernels.dropout_forward(x, 0.5, seed=9, step=3, layer=1)
    _, c = kernels.dropout_forward(x, 0.5, seed=9, step=4, layer=1)
    _, d = kernels.dropout_forward(x, 0.5, seed=9, step=3, layer=2)
    _, e = kernels.dropout_forward(x, 0.5, seed=10, step=3, layer=1)
    np.testing.assert_array_equal(a, b)
    for other in (c, d, e):
        assert (a != other).mean() > 0.4  # independent masks differ in about half the places


def test_mask_independent_of_thread_count():
    x = np.ones((257, 131), np.float32)
    _, one = kernels.dropout_forward(x, 0.3, seed=5, step=11, threads=1)
    for t in (2, 3, 0):
        _, many = kernels.dropout_forward(x, 0.3, seed=5, step=11, threads=t)
        np.testing.assert_array_equal(many, one)


def test_mask_is_the_generator_compared_with_the_threshold():
    rows, cols, rate, seed, step, layer = 4, 6, 0.25, 123, 2, 1
    _, mask = kernels.dropout_forward(
        np.ones((rows, cols), np.float32), rate, seed=seed, step=step, layer=layer
    )
    words = _core.philox_words(seed, layer, step, 0, rows * cols).astype(np.uint64)
    threshold = round((1 - rate) * 2**32)
    np.testing.assert_array_equal(mask.ravel(), (words < threshold).astype(np.uint8))


def test_backward_applies_the_same_mask(rng):
    x = rng.standard_normal((32, 128)).astype(np.float32)
    _, mask = kernels.dropout_forward(x, 0.5, seed=3)
    dy = rng.standard_normal((32, 128)).astype(np.float32)
    dx = kernels.dropout_backward(dy, mask, 0.5)
    np.testing.assert_array_equal(
        dx, np.where(mask == 1, dy * np.float32(2.0), 0.0).astype(np.float32)
    )
