"""Fused dense forward/backward against NumPy float64, finite differences and TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from pyreg import _core, kernels

SHAPES = [(32, 784, 128), (32, 128, 10), (7, 13, 10), (33, 70, 17), (1, 1, 1), (5, 3, 200)]


def reference_forward(x, w, b, activation):
    z = x.astype(np.float64) @ w.astype(np.float64) + (0.0 if b is None else b.astype(np.float64))
    return {
        "relu": np.maximum(z, 0.0),
        "linear": z,
        "sigmoid": 1 / (1 + np.exp(-z)),
        "tanh": np.tanh(z),
    }[activation]


def make(rng, n, fan_in, units, density=1.0):
    x = rng.standard_normal((n, fan_in)).astype(np.float32)
    if density < 1.0:
        x[rng.random(x.shape) >= density] = 0.0
    w = (rng.standard_normal((fan_in, units)) / np.sqrt(fan_in)).astype(np.float32)
    b = rng.standard_normal(units).astype(np.float32)
    return x, w, b


@pytest.mark.parametrize(("n", "fan_in", "units"), SHAPES)
@pytest.mark.parametrize("activation", ["relu", "linear", "sigmoid", "tanh"])
@pytest.mark.parametrize("sparse", [False, True])
def test_forward_matches_float64(rng, n, fan_in, units, activation, sparse):
    x, w, b = make(rng, n, fan_in, units, density=0.3)
    y = kernels.dense_forward(x, w, b, activation, sparse=sparse)
    ref = reference_forward(x, w, b, activation)
    # float32 accumulation over fan_in terms of size ~1: error ~ fan_in * 2^-24 * |terms|
    tol = 1e-6 * np.sqrt(fan_in) * 8
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("sparse", [False, True])
# n: the sparse path's feature chunks (<= 256 rows) and its gemm over row tiles
@pytest.mark.parametrize("n", [2, 300])
def test_forward_with_no_features_is_the_activated_bias(n, sparse):
    # found by hypothesis: with 0 features the sparse chunk loop never ran and left y unwritten
    x, w = np.zeros((n, 0), np.float32), np.zeros((0, 3), np.float32)
    b = np.array([1.5, -2.0, 0.0], np.float32)
    y = kernels.dense_forward(x, w, b, "relu", sparse=sparse)
    np.testing.assert_array_equal(y, np.tile([1.5, 0.0, 0.0], (n, 1)).astype(np.float32))
    y = kernels.dense_forward(x, w, None, "linear", sparse=sparse)
    np.testing.assert_array_equal(y, np.zeros((n, 3), np.float32))


def test_forward_without_bias(rng):
    x, w, _ = make(rng, 9, 20, 30)
    np.testing.assert_allclose(
        kernels.dense_forward(x, w, None, "linear"), x.astype(np.float64) @ w, rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("n", [32, 256, 300])  # feature chunks up to 256 rows, the union gemm above
def test_sparse_path_equals_dense_path_exactly_on_mnist(mnist_flat, n):
    x = mnist_flat[0][:n]
    rng = np.random.default_rng(0)
    w = rng.uniform(-0.08, 0.08, (784, 128)).astype(np.float32)
    b = rng.standard_normal(128).astype(np.float32)
    dense = kernels.dense_forward(x, w, b, "relu", sparse=False)
    sparse = kernels.dense_forward(x, w, b, "relu", sparse=True)
    # skipping exact zeros does not change any sum: identical up to the sign of zero.
    np.testing.assert_array_equal(dense, sparse)


def test_forward_matches_naive_reference_kernel(rng):
    x, w, b = make(rng, 32, 784, 128)
    y_ref = np.empty((32, 128), np.float32)
    _core.dense_forward_ref(y_ref, x, w, b, "relu")
    np.testing.assert_allclose(kernels.dense_forward(x, w, b, "relu"), y_ref, rtol=2e-5, atol=2e-5)


def test_forward_results_independent_of_threads(rng):
    x, w, b = make(rng, 100, 784, 128, density=0.2)
    one = kernels.dense_forward(x, w, b, "relu", threads=1)
    for t in (2, 3, 0):
        np.testing.assert_array_equal(kernels.dense_forward(x, w, b, "relu", threads=t), one)


def test_out_argument_is_written(rng):
    x, w, b = make(rng, 4, 5, 6)
    out = np.full((4, 6), np.nan, np.float32)
    y = kernels.dense_forward(x, w, b, "relu", out=out)
    assert y is out
    assert np.isfinite(out).all()


@pytest.mark.parametrize(("n", "fan_in", "units"), SHAPES)
@pytest.mark.parametrize("activation", ["relu", "linear", "sigmoid", "tanh"])
def test_backward_matches_float64(rng, n, fan_in, units, activation):
    x, w, b = make(rng, n, fan_in, units)
    y = kernels.dense_forward(x, w, b, activation)
    dy = rng.standard_normal((n, units)).astype(np.float32)
    dx, dw, db = kernels.dense_backward(dy, y, x, w, activation)
    y64 = y.astype(np.float64)
    deriv = {"relu": (y64 > 0), "linear": 1.0, "sigmoid": y64 * (1 - y64), "tanh": 1 - y64**2}[
        activation
    ]
    dz = dy.astype(np.float64) * deriv
    tol = 1e-5 * np.sqrt(max(n, units, fan_in)) * 4
    np.testing.assert_allclose(dw, x.astype(np.float64).T @ dz, rtol=tol, atol=tol)
    np.testing.assert_allclose(db, dz.sum(0), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, dz @ w.astype(np.float64).T, rtol=tol, atol=tol)


def test_backward_without_dx(rng):
    x, w, b = make(rng, 8, 10, 12)
    y = kernels.dense_forward(x, w, b)
    dx, dw, db = kernels.dense_backward(np.ones_like(y), y, x, w, need_dx=False)
    assert dx is None
    assert dw.shape == (10, 12)
    assert db.shape == (12,)


@pytest.mark.parametrize("activation", ["relu", "linear", "tanh", "sigmoid"])
def test_backward_by_finite_differences(activation):
    """d/dθ of L = sum(R * act(x @ w + b)), central differences in float64 on a tiny shape."""
    rng = np.random.default_rng(7)
    x, w, b = (a.astype(np.float64) for a in make(rng, 3, 4, 5))
    r = rng.standard_normal((3, 5))

    def loss(x_, w_, b_):
        return float((r * reference_forward(x_, w_, b_, activation)).sum())

    y = kernels.dense_forward(x, w, b, activation)
    dx, dw, db = kernels.dense_backward(r, y, x, w, activation)
    h = 1e-6
    for arr, grad in ((x, dx), (w, dw), (b, db)):
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + h
            up = loss(x, w, b)
            arr[i] = old - h
            down = loss(x, w, b)
            arr[i] = old
            num[i] = (up - down) / (2 * h)
        # float32 kernels: agreement to ~1e-5 relative of the gradient's scale
        np.testing.assert_allclose(grad, num, rtol=1e-4, atol=1e-4 * np.abs(num).max())


@pytest.mark.keras
def test_forward_and_backward_match_tensorflow_on_the_study_shapes(keras_mod, mnist_flat):
    import tensorflow as tf

    rng = np.random.default_rng(3)
    for fan_in, units, x in ((784, 128, mnist_flat[0][:32]), (128, 10, None)):
        if x is None:
            x = np.maximum(rng.standard_normal((32, fan_in)), 0).astype(np.float32)
        limit = np.sqrt(6 / (fan_in + units))
        w = rng.uniform(-limit, limit, (fan_in, units)).astype(np.float32)
        b = rng.uniform(-0.1, 0.1, units).astype(np.float32)
        r = rng.standard_normal((32, units)).astype(np.float32)
        xt, wt, bt = tf.Variable(x), tf.Variable(w), tf.Variable(b)
        with tf.GradientTape() as tape:
            yt = tf.nn.relu(tf.matmul(xt, wt) + bt)
            loss = tf.reduce_sum(yt * r)
        gx, gw, gb = tape.gradient(loss, [xt, wt, bt])
        y = kernels.dense_forward(x, w, b, "relu")
        np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-5)
        dx, dw, db = kernels.dense_backward(r, y, x, w, "relu")
        np.testing.assert_allclose(dw, gw.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(db, gb.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dx, gx.numpy(), rtol=1e-4, atol=1e-4)
