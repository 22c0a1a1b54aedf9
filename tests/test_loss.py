"""Fused softmax + sparse categorical cross-entropy against NumPy float64."""

from __future__ import annotations

import numpy as np
import pytest

from pyreg import kernels


def reference(logits, labels):
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(len(z)), labels].mean()
    correct = int((np.argmax(logits, axis=1) == labels).sum())
    grad = np.exp(logp)
    grad[np.arange(len(z)), labels] -= 1
    return loss, correct, grad / len(z)


@pytest.mark.parametrize(("n", "k"), [(32, 10), (1, 1), (7, 3), (100, 37)])
def test_forward_and_backward_match_float64(rng, n, k):
    logits = (rng.standard_normal((n, k)) * 3).astype(np.float32)
    labels = rng.integers(0, k, n)
    loss, correct = kernels.softmax_cross_entropy(logits, labels)
    ref_loss, ref_correct, ref_grad = reference(logits, labels)
    assert loss == pytest.approx(ref_loss, rel=1e-6, abs=1e-6)
    assert correct == ref_correct
    np.testing.assert_allclose(
        kernels.softmax_cross_entropy_backward(logits, labels), ref_grad, rtol=1e-5, atol=1e-7
    )


def test_stable_for_large_logits():
    logits = np.array([[1e4, 0.0, -1e4], [3e4, 3e4 - 1.0, 0.0], [-1e4, -1e4, -1e4]], np.float32)
    labels = np.array([1, 0, 2])
    loss, correct = kernels.softmax_cross_entropy(logits, labels)
    ref_loss, ref_correct, ref_grad = reference(logits, labels)
    assert np.isfinite(loss)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    assert correct == ref_correct
    grad = kernels.softmax_cross_entropy_backward(logits, labels)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)


def test_backward_by_finite_differences():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((4, 5))
    labels = np.array([0, 4, 2, 2])
    grad = kernels.softmax_cross_entropy_backward(logits, labels)
    h = 1e-3
    for i in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[i] += h
        down[i] -= h
        num = (reference(up, labels)[0] - reference(down, labels)[0]) / (2 * h)
        assert grad[i] == pytest.approx(num, rel=1e-3, abs=1e-6)


def test_grad_scale_and_ties_take_the_first_maximum():
    logits = np.zeros((2, 3), np.float32)
    _, correct = kernels.softmax_cross_entropy(logits, [0, 1])
    assert correct == 1  # argmax of a tie is index 0, as numpy and keras take it
    g = kernels.softmax_cross_entropy_backward(logits, [0, 1], grad_scale=1.0)
    np.testing.assert_allclose(g, [[-2 / 3, 1 / 3, 1 / 3], [1 / 3, -2 / 3, 1 / 3]], rtol=1e-6)


def test_results_independent_of_threads(rng):
    logits = rng.standard_normal((1000, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 1000)
    one = kernels.softmax_cross_entropy_backward(logits, labels, threads=1)
    np.testing.assert_array_equal(
        kernels.softmax_cross_entropy_backward(logits, labels, threads=2), one
    )
    assert kernels.softmax_cross_entropy(
        logits, labels, threads=1
    ) == kernels.softmax_cross_entropy(logits, labels, threads=2)
